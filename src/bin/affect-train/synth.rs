// SPDX-License-Identifier: MPL-2.0
//! `affect-train synth`: writes a synthetic data set with known structure in the
//! Aff-Wild2 layout (see `affect::dataset::synth`).

use std::path::PathBuf;

use affect::dataset::synth::{SynthConfig, write_layout};

/// Arguments of `affect-train synth`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output data root (annotations/ and features/ are created in it).
    #[arg(long)]
    pub out: PathBuf,
    /// Seed of everything.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Training videos.
    #[arg(long, default_value_t = 32)]
    pub train: usize,
    /// Validation videos.
    #[arg(long, default_value_t = 8)]
    pub val: usize,
    /// Frames per video.
    #[arg(long, default_value_t = 256)]
    pub frames: usize,
    /// Visual feature dimension.
    #[arg(long, default_value_t = 16)]
    pub visual_dim: usize,
    /// Audio feature dimension.
    #[arg(long, default_value_t = 12)]
    pub audio_dim: usize,
    /// Frames by which the annotations lag the features.
    #[arg(long, default_value_t = 2)]
    pub lag: usize,
    /// Standard deviation of the feature noise.
    #[arg(long, default_value_t = 0.1)]
    pub noise: f32,
    /// Fraction of frames in missing-modality spans (per modality).
    #[arg(long, default_value_t = 0.1)]
    pub missing: f32,
    /// Fraction of frames with invalid labels.
    #[arg(long, default_value_t = 0.05)]
    pub invalid: f32,
}

/// Runs `affect-train synth`.
pub fn run(a: Args) -> Result<(), String> {
    if a.visual_dim == 0 || a.audio_dim == 0 || a.frames == 0 {
        return Err("--visual-dim, --audio-dim and --frames must be positive".into());
    }
    for (name, v) in [("--missing", a.missing), ("--invalid", a.invalid)] {
        if !(0.0..0.9).contains(&v) {
            return Err(format!("{name} must be in [0, 0.9), got {v}"));
        }
    }
    if !a.noise.is_finite() || a.noise < 0.0 {
        return Err(format!("--noise must be ≥ 0, got {}", a.noise));
    }
    let cfg = SynthConfig {
        seed: a.seed,
        visual_dim: a.visual_dim,
        audio_dim: a.audio_dim,
        lag: a.lag,
        noise: a.noise,
        missing: a.missing,
        invalid: a.invalid,
    };
    let bar = indicatif::ProgressBar::new_spinner().with_message("writing synthetic data set");
    bar.enable_steady_tick(std::time::Duration::from_millis(100));
    let (tr, va) =
        write_layout(&a.out, &cfg, a.train, a.val, a.frames).map_err(|e| e.to_string())?;
    bar.finish_and_clear();
    println!(
        "wrote {} training and {} validation videos of {} frames to {}",
        tr.len(),
        va.len(),
        a.frames,
        a.out.display()
    );
    Ok(())
}
