// SPDX-License-Identifier: MPL-2.0
//! `affect-train export`: a checkpoint of `fit` → ONNX fusion model.

use std::path::PathBuf;

use affect::train::fit::{export_onnx, load_checkpoint, load_meta};

/// Arguments of `affect-train export`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run folder of `affect-train fit` (spec.json, meta.json, checkpoints).
    #[arg(long)]
    run: PathBuf,
    /// Which checkpoint: `best` or `last`.
    #[arg(long, default_value = "best")]
    checkpoint: String,
    /// Output `.onnx` file.
    #[arg(long)]
    out: PathBuf,
    /// `affect.name` (default: the run's).
    #[arg(long)]
    name: Option<String>,
}

/// Runs `affect-train export`.
pub fn run(a: Args) -> Result<(), String> {
    if !matches!(a.checkpoint.as_str(), "best" | "last") {
        return Err(format!(
            "--checkpoint must be best or last, got {}",
            a.checkpoint
        ));
    }
    let (spec, model) = load_checkpoint(
        &a.run.join("spec.json"),
        &a.run.join(format!("{}.bpk", a.checkpoint)),
    )
    .map_err(|e| e.to_string())?;
    let mut meta = load_meta(&a.run.join("meta.json")).map_err(|e| e.to_string())?;
    if let Some(n) = a.name {
        meta.name = n;
    }
    export_onnx(&model, &spec, &meta, &a.out).map_err(|e| e.to_string())?;
    println!(
        "exported {} ({}, T={}) to {}",
        meta.name,
        spec.kind.name(),
        spec.window,
        a.out.display()
    );
    Ok(())
}
