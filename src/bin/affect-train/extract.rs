// SPDX-License-Identifier: MPL-2.0
//! `affect-train extract`: per-frame features from videos through the project's own
//! elements, so training sees exactly what `avfuse` feeds its model at inference.
//!
//! Per video, GstDiscoverer (in-process, `gstreamer-pbutils`) reads the streams and the
//! duration — a file it cannot read is an error naming it — then a `gst-launch-1.0`
//! subprocess runs the inference pipeline of `make demo` (`decodebin → facecrop
//! mesh=true → featextract → avfuse`, and for a video with an audio stream `audiodenoise
//! → featextract → avfuse.audio_sink`) with `avfuse dump-location`: with the mesh, avfuse
//! gives a face the voice only while its mouth moves with it, so a listener's audio mask
//! is 0, as at inference (`--no-mesh`: every face gets the voice, as in a pipeline
//! without the mesh). The elements run in
//! that subprocess; the core library does not link GStreamer (this binary does, for the
//! discoverer only). Tracks are then picked per annotated subject: one annotation file
//! `<stem>.txt` → the longest face track; `<stem>_left` / `<stem>_right` → the two
//! longest tracks, left = the smaller mean box x. A video without annotations gets
//! `<stem>.safetensors` from its longest track. Output: `<out>/features/<name>.safetensors`
//! ([`affect::dataset::features`]).
//!
//! `--visual-input probabilities` (default) runs avfuse with its default model
//! `fusion-baseline`, which reads the face model's 8 expression probabilities;
//! `--visual-input features`, a `--face-model` or an `--audio-model` other than the
//! bundled defaults, needs a fusion model that reads those vectors: extract writes `<out>/extract-probe.onnx`, a
//! fusion graph whose only job is to declare that contract — the visual input, the feature
//! models with their sha256, the dimensions, the audio mask (its outputs are zeros and
//! are not used). `--audio-mask speech` (default) dumps voice-activity-gated audio masks
//! (as the default fusion model reads them), `present` masks that are 1 wherever aligned
//! audio exists; the files record which, and `fit` exports models that declare it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use affect::dataset::{DataRoot, FeatureFile, Split, Task};
use affect::onnx::{Attr, Dim, GraphBuilder};
use affect::runtime::{FeatureModelRef, ModelContract};
use indicatif::{ProgressBar, ProgressStyle};

/// What avfuse's model reads as `visual` (`--visual-input`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum VisualInput {
    /// The face model's 8 expression probabilities (fusion-baseline).
    Probabilities,
    /// The face model's feature vector (128-d for fer-mini-xception).
    Features,
}

/// What the dumped audio mask holds (`--audio-mask`): the contract key
/// `affect.fusion.audio-mask` of the model avfuse runs while extracting; the feature files
/// record it, and a fusion model trained on them declares it, so that avfuse gives the
/// model the masks it was trained with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AudioMask {
    /// The voice-activity probability of each aligned audio window (from audiodenoise's
    /// VAD; 0 where nobody speaks), as the default fusion model reads it.
    Speech,
    /// 1 wherever an aligned audio vector exists, speech or not.
    Present,
}

impl From<AudioMask> for affect::runtime::AudioMaskKind {
    fn from(m: AudioMask) -> Self {
        match m {
            AudioMask::Speech => Self::Speech,
            AudioMask::Present => Self::Present,
        }
    }
}

/// Arguments of `affect-train extract`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Folder of videos (mp4, mov, mkv, avi, webm, m4v, mpg).
    #[arg(long)]
    pub videos: PathBuf,
    /// Data root: annotations are looked up in <out>/annotations/…, features written to
    /// <out>/features/.
    #[arg(long)]
    pub out: PathBuf,
    /// What the visual vectors are.
    #[arg(long, value_enum, default_value = "probabilities")]
    pub visual_input: VisualInput,
    /// The face feature model featextract runs on the face crops (a bundled model name
    /// or a path, e.g. a checkpoint converted by weights/convert/byo_*.py). Default: the
    /// bundled face model that fusion-baseline reads. The feature files record it, and a
    /// fusion model trained on them declares it. With `--visual-input probabilities` the
    /// model must map its classes to the 8 Aff-Wild2 expressions
    /// (`affect.output.affwild2-map`), else use `--visual-input features`.
    #[arg(long)]
    pub face_model: Option<String>,
    /// The audio feature model featextract runs (a bundled model name or a path); the
    /// feature files record it, and a fusion model trained on them declares it.
    #[arg(long, default_value = affect::features::DEFAULT_AUDIO_MODEL)]
    pub audio_model: String,
    /// Run facecrop without the face mesh. avfuse then cannot tell who speaks and gives
    /// the voice to every face (its `audio-attribution=speaker` falls back to `all`), as
    /// in a pipeline without `facecrop mesh=true`. Default: with the mesh, as `make demo`
    /// and affect-annotate run, so a face's audio mask is 0 while someone else speaks
    /// (a listener in a reaction video) and training sees what inference gives.
    #[arg(long)]
    pub no_mesh: bool,
    /// What the audio mask of the feature files holds.
    #[arg(long, value_enum, default_value = "speech")]
    pub audio_mask: AudioMask,
    /// gst-launch-1.0 to run.
    #[arg(long, default_value = "gst-launch-1.0")]
    pub gst_launch: PathBuf,
    /// Keep the per-track dumps in <out>/.extract/<stem>/.
    #[arg(long)]
    pub keep_dumps: bool,
    /// Seconds one video's pipeline may run before it is stopped (an error). Default:
    /// 10 × the video's duration, at least 60 s (600 s when the duration is unknown).
    #[arg(long)]
    pub timeout: Option<u64>,
}

/// Seconds GstDiscoverer may take to read one file's streams.
const DISCOVER_TIMEOUT_S: u64 = 30;
/// Default `--timeout`: this many times the video's duration …
const TIMEOUT_PER_MEDIA_SECOND: u64 = 10;
/// … and at least this many seconds …
const MIN_TIMEOUT_S: u64 = 60;
/// … or this many seconds when the duration is unknown.
const UNKNOWN_DURATION_TIMEOUT_S: u64 = 600;

/// What GstDiscoverer says about one video.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MediaInfo {
    /// It has an audio stream.
    pub audio: bool,
    /// Its duration, if known.
    pub duration: Option<std::time::Duration>,
}

impl MediaInfo {
    /// The pipeline's time limit when `--timeout` is not given: 10 × the duration, at
    /// least 60 s; 600 s when the duration is unknown.
    pub fn default_timeout_s(&self) -> u64 {
        match self.duration {
            Some(d) => {
                let t = d.as_secs_f64() * TIMEOUT_PER_MEDIA_SECOND as f64;
                (t.ceil() as u64).max(MIN_TIMEOUT_S)
            }
            None => UNKNOWN_DURATION_TIMEOUT_S,
        }
    }
}

/// Reads the streams and duration of `video` in-process with GstDiscoverer. A file it
/// cannot read (not media, a missing decoder, a timeout) or one without a video stream
/// is an error naming the file and the reason.
fn discover(video: &Path) -> Result<MediaInfo, String> {
    gst::init().map_err(|e| format!("cannot initialise GStreamer: {e}"))?;
    let abs = std::path::absolute(video).map_err(|e| format!("{}: {e}", video.display()))?;
    let uri = gst::glib::filename_to_uri(&abs, None)
        .map_err(|e| format!("{}: no URI for this path: {e}", video.display()))?;
    let discoverer = gst_pbutils::Discoverer::new(gst::ClockTime::from_seconds(DISCOVER_TIMEOUT_S))
        .map_err(|e| format!("cannot create a GstDiscoverer: {e}"))?;
    let info = discoverer
        .discover_uri(&uri)
        .map_err(|e| format!("{}: cannot read it as media: {e}", video.display()))?;
    if info.video_streams().is_empty() {
        return Err(format!(
            "{}: cannot read it as media: no video stream",
            video.display()
        ));
    }
    Ok(MediaInfo {
        audio: !info.audio_streams().is_empty(),
        duration: info
            .duration()
            .filter(|d| d.nseconds() > 0)
            .map(|d| std::time::Duration::from_nanos(d.nseconds())),
    })
}

/// Runs `cmd` with its output in files under `dir` (no pipe can fill up), killing it
/// after `timeout_s` seconds. Returns the exit status, stdout and stderr.
fn run_with_timeout(
    mut cmd: Command,
    dir: &Path,
    timeout_s: u64,
) -> Result<(std::process::ExitStatus, String, String), String> {
    let out_path = dir.join("gst-launch.stdout");
    let err_path = dir.join("gst-launch.stderr");
    let file = |p: &Path| std::fs::File::create(p).map_err(|e| format!("{}: {e}", p.display()));
    cmd.stdout(file(&out_path)?).stderr(file(&err_path)?);
    let mut child = cmd.spawn().map_err(|e| format!("cannot start: {e}"))?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(timeout_s);
    let status = loop {
        match child.try_wait().map_err(|e| e.to_string())? {
            Some(s) => break s,
            None if std::time::Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("no end after {timeout_s} s (--timeout): stopped"));
            }
            None => std::thread::sleep(std::time::Duration::from_millis(50)),
        }
    };
    let read = |p: &Path| {
        let text = std::fs::read(p)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let _ = std::fs::remove_file(p);
        text
    };
    Ok((status, read(&out_path), read(&err_path)))
}

const VIDEO_EXTENSIONS: [&str; 9] = [
    "mp4", "mov", "mkv", "avi", "webm", "m4v", "mpg", "mpeg", "flv",
];
/// The probe model's name.
pub const PROBE_NAME: &str = "extract-probe";

/// The folder holding libgstaffect.so: `GST_PLUGIN_PATH` if set, else the folder of
/// this executable if it holds the plugin.
fn plugin_path() -> Result<Option<String>, String> {
    if std::env::var_os("GST_PLUGIN_PATH").is_some_and(|v| !v.is_empty()) {
        return Ok(None);
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
    match exe.parent() {
        Some(d) if d.join("libgstaffect.so").is_file() => Ok(Some(d.display().to_string())),
        _ => Err(format!(
            "cannot find the gst-affect plugin: set GST_PLUGIN_PATH to the folder of libgstaffect.so (not next to {})",
            exe.display()
        )),
    }
}

/// Videos of `dir`, sorted.
fn list_videos(dir: &Path) -> Result<Vec<PathBuf>, String> {
    if !dir.is_dir() {
        return Err(format!("video folder {} does not exist", dir.display()));
    }
    let rd = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut out: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .and_then(|x| x.to_str())
                    .is_some_and(|x| VIDEO_EXTENSIONS.contains(&x.to_ascii_lowercase().as_str()))
        })
        .collect();
    out.sort();
    if out.is_empty() {
        return Err(format!(
            "no videos ({}) in {}",
            VIDEO_EXTENSIONS.join(", "),
            dir.display()
        ));
    }
    Ok(out)
}

/// The `extract-probe` fusion graph: reads `visual` \[B,T,dv\] feature vectors, outputs
/// zeros; it exists to make avfuse feed (and dump) the face model's feature vectors.
pub fn probe_model(
    dv: usize,
    da: usize,
    visual: &FeatureModelRef,
    audio: &FeatureModelRef,
) -> GraphBuilder {
    let mut g = GraphBuilder::new(PROBE_NAME);
    let bt = |d: i64| [Dim::from("batch"), Dim::from("time"), Dim::Fixed(d)];
    let bt2 = [Dim::from("batch"), Dim::from("time")];
    g.input("visual", &bt(dv as i64))
        .input("audio", &bt(da as i64))
        .input("visual_mask", &bt2)
        .input("audio_mask", &bt2)
        .output("va", &bt(2))
        .output("expr", &bt(8));
    g.constant("zero", &[], &[0.0]);
    g.constant_i64("last_axis", &[1], &[-1]);
    g.constant_i64("first8", &[1], &[0]);
    g.constant_i64("to8", &[1], &[8]);
    // va = 0 · [visual_mask, audio_mask]; expr = 0 · (the first ≤ 8 visual values,
    // zero-padded to 8).
    g.node("Unsqueeze", &["visual_mask", "last_axis"], &["vm3"], &[])
        .node("Unsqueeze", &["audio_mask", "last_axis"], &["am3"], &[])
        .node(
            "Concat",
            &["vm3", "am3"],
            &["masks"],
            &[("axis", Attr::Int(-1))],
        )
        .node("Mul", &["masks", "zero"], &["va"], &[])
        .node(
            "ReduceSum",
            &["visual", "last_axis"],
            &["vsum"],
            &[("keepdims", Attr::Int(1))],
        )
        .node("Mul", &["vsum", "zero"], &["vzero"], &[])
        .node(
            "Concat",
            &[
                "vzero", "vzero", "vzero", "vzero", "vzero", "vzero", "vzero", "vzero",
            ],
            &["expr"],
            &[("axis", Attr::Int(-1))],
        );
    g.meta("affect.contract", "1")
        .meta("affect.role", "fusion")
        .meta("affect.name", PROBE_NAME)
        .meta("affect.fusion.window", "1")
        .meta("affect.fusion.visual-dim", dv.to_string())
        .meta("affect.fusion.audio-dim", da.to_string())
        .meta("affect.fusion.visual-input", "features")
        .meta("affect.fusion.visual-model", visual.name.clone())
        .meta("affect.fusion.visual-sha256", visual.sha256.clone())
        .meta("affect.fusion.audio-model", audio.name.clone())
        .meta("affect.fusion.audio-sha256", audio.sha256.clone())
        .meta("affect.output.names", "va,expr")
        .meta("affect.output.labels", affect::EXPRESSIONS.join(","))
        .meta(
            "affect.source",
            "gst-affect affect-train extract: NOT a model; outputs zeros, declares visual-input = features so avfuse dumps the face model's feature vectors",
        )
        .meta("affect.license", "MPL-2.0");
    g
}

/// `affect.output.dim` of a feature model file (from its contract) and its sha256.
fn output_dim(path: &Path) -> Result<(usize, String), String> {
    let contract = ModelContract::read_file(path).map_err(|e| e.to_string())?;
    let dim = contract
        .output_dim
        .ok_or_else(|| format!("{} declares no affect.output.dim", path.display()))?;
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((dim, affect::weights::sha256_hex(&bytes)))
}

/// The name (file stem) and sha256 of a feature model file, and its output dimension.
fn model_ref(path: &Path) -> Result<(FeatureModelRef, usize), String> {
    let (dim, sha256) = output_dim(path)?;
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .ok_or_else(|| format!("{}: file name is not UTF-8", path.display()))?
        .to_owned();
    Ok((FeatureModelRef { name, sha256 }, dim))
}

/// Writes `<out>/extract-probe.onnx`: the features (or 8 expression probabilities) of
/// the face model at `face_path` and the vectors of the audio model at `audio_path`.
fn write_probe(
    out: &Path,
    visual_input: VisualInput,
    face_path: &Path,
    audio_path: &Path,
    audio_mask: AudioMask,
) -> Result<PathBuf, String> {
    let (visual, face_dim) = model_ref(face_path)?;
    let (audio, da) = model_ref(audio_path)?;
    let dv = match visual_input {
        VisualInput::Features => face_dim,
        VisualInput::Probabilities => affect::EXPRESSIONS.len(),
    };
    let mut g = probe_model(dv, da, &visual, &audio);
    if visual_input == VisualInput::Probabilities {
        g.meta("affect.fusion.visual-input", "probabilities");
    }
    g.meta(
        "affect.fusion.audio-mask",
        affect::runtime::AudioMaskKind::from(audio_mask).as_str(),
    );
    let path = out.join(format!("{PROBE_NAME}.onnx"));
    affect::dataset::write_atomic(&path, &g.to_bytes()).map_err(|e| e.to_string())?;
    Ok(path)
}

/// The gst-launch arguments of the inference pipeline for one video.
fn pipeline(
    video: &Path,
    dump: &Path,
    mesh: bool,
    model: Option<&Path>,
    face_model: Option<&Path>,
    audio_model: Option<&Path>,
) -> Vec<String> {
    let mut desc = format!(
        "filesrc location=\"{}\" ! decodebin name=d \
         d. ! queue ! videoconvert ! facecrop mesh={mesh} ! featextract{} ! queue \
         ! avfuse name=f post-messages=false dump-location=\"{}\"{} ! fakesink sync=false",
        video.display(),
        face_model
            .map(|m| format!(" model=\"{}\"", m.display()))
            .unwrap_or_default(),
        dump.join("track%u.safetensors").display(),
        model
            .map(|m| format!(" model=\"{}\"", m.display()))
            .unwrap_or_default()
    );
    if let Some(m) = audio_model {
        desc.push_str(&format!(
            " d. ! queue ! audioconvert ! audioresample ! audio/x-raw,format=F32LE,rate=48000,channels=1 \
             ! audiodenoise ! featextract model=\"{}\" ! queue ! f.audio_sink",
            m.display()
        ));
    }
    // gst-launch splits its arguments itself; one argument per token keeps the quoting.
    let mut args = vec!["-q".to_owned()];
    args.extend(shell_words(&desc));
    args
}

/// Splits on spaces outside double quotes, dropping the quotes.
fn shell_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in s.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            ' ' if !quoted => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                any = false;
            }
            _ => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Face frames of a track (rows with a box).
fn face_frames(f: &FeatureFile) -> usize {
    f.boxes.iter().filter(|b| b[2] > 0.0 && b[3] > 0.0).count()
}

fn mean_x(f: &FeatureFile) -> f64 {
    let (mut s, mut n) = (0.0, 0usize);
    for b in &f.boxes {
        if b[2] > 0.0 {
            s += (b[0] + b[2] / 2.0) as f64;
            n += 1;
        }
    }
    if n == 0 { 0.0 } else { s / n as f64 }
}

/// Picks tracks for the subjects of `stem`: `subjects` are the annotated names found
/// (stem, stem_left, stem_right). Returns `(name, track id)` pairs.
pub fn pick_tracks(
    stem: &str,
    subjects: &[String],
    tracks: &BTreeMap<u64, FeatureFile>,
) -> Vec<(String, u64)> {
    let mut by_len: Vec<(u64, usize)> =
        tracks.iter().map(|(id, f)| (*id, face_frames(f))).collect();
    // Longest first; ties to the lower id.
    by_len.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let left = format!("{stem}_left");
    let right = format!("{stem}_right");
    let two = subjects.iter().any(|s| *s == left || *s == right);
    let mut out = Vec::new();
    if two {
        let mut pair: Vec<u64> = by_len.iter().take(2).map(|t| t.0).collect();
        pair.sort_by(|a, b| mean_x(&tracks[a]).total_cmp(&mean_x(&tracks[b])));
        match pair.as_slice() {
            [l, r] => {
                out.push((left, *l));
                out.push((right, *r));
            }
            [one] => {
                // One face only: it is the subject whose side it is on.
                let side = if subjects.contains(&left) && !subjects.contains(&right) {
                    left
                } else if subjects.contains(&right) && !subjects.contains(&left) {
                    right
                } else {
                    left
                };
                out.push((side, *one));
            }
            _ => {}
        }
        out.retain(|(n, _)| subjects.contains(n));
    } else if let Some((id, _)) = by_len.first() {
        out.push((stem.to_owned(), *id));
    }
    out
}

/// Runs `affect-train extract`.
pub fn run(args: Args) -> Result<(), String> {
    let videos = list_videos(&args.videos)?;
    std::fs::create_dir_all(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
    let root = DataRoot::new(&args.out).map_err(|e| e.to_string())?;
    let plugin_dir = plugin_path()?;
    let default_audio = affect::weights::resolve_model(affect::features::DEFAULT_AUDIO_MODEL);
    let audio_path = affect::weights::resolve_model(&args.audio_model);
    let (default_visual, _) =
        affect::fusion::feature_refs(&affect::weights::weights_dir()).map_err(|e| e.to_string())?;
    let default_face = affect::weights::resolve_model(&default_visual.name);
    let face_path = args
        .face_model
        .as_deref()
        .map_or_else(|| default_face.clone(), affect::weights::resolve_model);
    if !face_path.is_file() {
        return Err(format!(
            "--face-model {}: no such model file",
            face_path.display()
        ));
    }
    // The default fusion model reads the default face model's probabilities, the
    // default audio model and speech masks; anything else needs the probe to declare it.
    let model = if args.visual_input == VisualInput::Probabilities
        && face_path == default_face
        && audio_path == default_audio
        && args.audio_mask == AudioMask::Speech
    {
        None
    } else {
        Some(write_probe(
            &args.out,
            args.visual_input,
            &face_path,
            &audio_path,
            args.audio_mask,
        )?)
    };
    let face_model = (face_path != default_face).then_some(face_path.as_path());
    // Annotated names, all tasks and splits.
    let mut annotated: Vec<String> = Vec::new();
    for task in [Task::Va, Task::Expr] {
        for split in [Split::Train, Split::Validation] {
            if let Ok(n) = root.names(task, split) {
                annotated.extend(n);
            }
        }
    }
    annotated.sort();
    annotated.dedup();

    let bar = ProgressBar::new(videos.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("extract {bar:40} {pos}/{len} videos {elapsed} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let work = args.out.join(".extract");
    let mut written = 0usize;
    let mut notes = Vec::new();
    for video in &videos {
        let stem = video
            .file_stem()
            .and_then(|s| s.to_str())
            .ok_or_else(|| format!("{}: file name is not UTF-8", video.display()))?
            .to_owned();
        bar.set_message(stem.clone());
        let media = discover(video).inspect_err(|_| bar.abandon())?;
        let dump = work.join(&stem);
        let _ = std::fs::remove_dir_all(&dump);
        std::fs::create_dir_all(&dump).map_err(|e| format!("{}: {e}", dump.display()))?;
        let timeout = args.timeout.unwrap_or_else(|| media.default_timeout_s());
        let mut cmd = Command::new(&args.gst_launch);
        cmd.args(pipeline(
            video,
            &dump,
            !args.no_mesh,
            model.as_deref(),
            face_model,
            media.audio.then_some(audio_path.as_path()),
        ));
        if let Some(p) = &plugin_dir {
            cmd.env("GST_PLUGIN_PATH", p);
        }
        let (status, stdout, stderr) = run_with_timeout(cmd, &dump, timeout)
            .map_err(|e| format!("{} on {}: {e}", args.gst_launch.display(), video.display()))?;
        if !status.success() || stdout.contains("ERROR:") || stderr.contains("ERROR:") {
            bar.abandon();
            let all = format!("{stdout}{stderr}");
            let tail: Vec<&str> = all.lines().rev().take(15).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            return Err(format!(
                "the pipeline failed on {} ({}):\n{}",
                video.display(),
                status,
                tail.join("\n")
            ));
        }
        let mut tracks = BTreeMap::new();
        for e in std::fs::read_dir(&dump).map_err(|e| format!("{}: {e}", dump.display()))? {
            let p = e.map_err(|e| e.to_string())?.path();
            let id = p
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix("track"))
                .and_then(|n| n.strip_suffix(".safetensors"))
                .and_then(|n| n.parse::<u64>().ok());
            if let Some(id) = id {
                tracks.insert(id, FeatureFile::read(&p).map_err(|e| e.to_string())?);
            }
        }
        let subjects: Vec<String> = annotated
            .iter()
            .filter(|n| {
                n.as_str() == stem
                    || n.as_str() == format!("{stem}_left")
                    || n.as_str() == format!("{stem}_right")
            })
            .cloned()
            .collect();
        let picked = pick_tracks(&stem, &subjects, &tracks);
        if picked.is_empty() {
            notes.push(format!(
                "{}: no face track, nothing written",
                video.display()
            ));
        }
        for want in &subjects {
            if !picked.iter().any(|(n, _)| n == want) {
                notes.push(format!(
                    "{}: no face track left for subject {want}",
                    video.display()
                ));
            }
        }
        for (name, id) in picked {
            let mut f = tracks[&id].clone();
            f.meta.source = video
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let path = root.feature_path(&name);
            f.write(&path).map_err(|e| e.to_string())?;
            written += 1;
            let line = format!(
                "{name}: track {id}, {} frames, {} with a face → {}",
                f.frames(),
                face_frames(&f),
                path.display()
            );
            bar.suspend(|| eprintln!("{line}"));
        }
        if !args.keep_dumps {
            let _ = std::fs::remove_dir_all(&dump);
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    if !args.keep_dumps {
        let _ = std::fs::remove_dir(&work);
    }
    for n in &notes {
        eprintln!("note: {n}");
    }
    println!(
        "extracted {written} feature file(s) from {} video(s) into {}",
        videos.len(),
        root.features_dir().display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_timeout_follows_the_duration() {
        let info = |secs: Option<f64>| MediaInfo {
            audio: false,
            duration: secs.map(std::time::Duration::from_secs_f64),
        };
        assert_eq!(info(Some(2.4)).default_timeout_s(), 60);
        assert_eq!(info(Some(6.01)).default_timeout_s(), 61);
        assert_eq!(info(Some(3600.0)).default_timeout_s(), 36_000);
        assert_eq!(info(None).default_timeout_s(), 600);
    }

    #[test]
    fn words_keep_quoted_paths() {
        assert_eq!(shell_words("a b=\"x y\" ! c"), vec!["a", "b=x y", "!", "c"]);
    }

    fn track(xs: &[f32]) -> FeatureFile {
        let mut f = FeatureFile::new(1, 1, Default::default());
        for &x in xs {
            if x < 0.0 {
                f.push_absent(None);
            } else {
                f.push(
                    Some(&[0.0]),
                    1.0,
                    None,
                    0.0,
                    None,
                    [x, 0.0, 10.0, 10.0],
                    true,
                );
            }
        }
        f
    }

    #[test]
    fn picks_longest_and_left_right() {
        let mut t = BTreeMap::new();
        t.insert(1, track(&[500.0, 500.0, -1.0]));
        t.insert(2, track(&[10.0, 10.0, 10.0]));
        t.insert(3, track(&[300.0, -1.0, -1.0]));
        assert_eq!(pick_tracks("v", &["v".into()], &t), vec![("v".into(), 2)]);
        let lr = vec!["v_left".to_owned(), "v_right".to_owned()];
        assert_eq!(
            pick_tracks("v", &lr, &t),
            vec![("v_left".into(), 2), ("v_right".into(), 1)]
        );
        assert!(pick_tracks("v", &["v".into()], &BTreeMap::new()).is_empty());
    }
}
