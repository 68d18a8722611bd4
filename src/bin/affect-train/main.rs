// SPDX-License-Identifier: MPL-2.0
//! `affect-train`: the offline trainer of gst-affect's fusion models.
//!
//! Subcommands: `extract` (features from videos through the project's own elements),
//! `synth` (a synthetic data set with known structure), `fit` (train), `eval` (an
//! exported `.onnx` through ONNX Runtime), `export` (checkpoint → ONNX) and `ensemble`
//! (weighted decision fusion of several exported models into one graph).

mod ensemble;
mod eval;
mod export;
mod extract;
mod fit;
mod synth;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Learns gst-affect fusion models from Aff-Wild2-style annotations and exports ONNX
/// files that the `avfuse` element loads.
#[derive(Debug, Parser)]
#[command(
    name = "affect-train",
    version,
    about = "Trains gst-affect's fusion models (valence/arousal or 8 expressions) on Aff-Wild2-style annotations and exports ONNX files for the avfuse element",
    long_about = "Trains gst-affect's fusion models (valence/arousal or 8 expressions) on Aff-Wild2-style annotations and exports ONNX files for the avfuse element.\n\n\
A typical run:\n  \
affect-train extract --videos clips/ --out data   (features through the elements themselves)\n  \
affect-train fit --data data --task va --model tcn --out runs/tcn\n  \
affect-train eval --model runs/tcn/best.onnx --data data --task va\n\n\
fit picks the epoch on the model as avfuse runs it (one window ending at each frame, read at its newest step) and reports the chunk metric beside it. Every model is causal; --lookahead-frames K lets one read K future frames, which avfuse honours with K frames of added latency.",
    after_help = "Models: attention, tcn, mfn, mctn, transformer. See the README (Training) and ARCHITECTURE.md."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run facecrop/featextract/audiodenoise/avfuse over a folder of videos and write
    /// the per-frame aligned features avfuse feeds its model.
    Extract(extract::Args),
    /// Write a synthetic data set with known structure (tests, demos).
    Synth(synth::Args),
    /// Train a fusion model.
    Fit(fit::Args),
    /// Evaluate an exported ONNX fusion model through ONNX Runtime on a split.
    Eval(eval::Args),
    /// Export a checkpoint to an ONNX fusion model.
    Export(export::Args),
    /// Combine exported models into one weighted-ensemble ONNX graph.
    Ensemble(ensemble::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Extract(a) => extract::run(a),
        Command::Synth(a) => synth::run(a),
        Command::Fit(a) => fit::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Export(a) => export::run(a),
        Command::Ensemble(a) => ensemble::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("affect-train: {e}");
            ExitCode::FAILURE
        }
    }
}
