// SPDX-License-Identifier: MPL-2.0
//! `affect-annotate`: annotates files and streams with the audio-visual pipeline of
//! `make demo`, built in-process (the plugin is registered statically: no
//! `GST_PLUGIN_PATH` needed) from what each input actually has.
//!
//! Archive mode (default): every input (paths, URIs, `--list` files) gets a result folder
//! `OUTPUT/<id>/` with `affect.ndjson`, the Aff-Wild2 CSV files `affect_track<N>.*.csv`,
//! `speech.ndjson`, optionally `annotated.mp4`, and `summary.json` (frames, faces, tracks,
//! mean valence/arousal, expression histogram, real-time factor, errors). Folders appear
//! atomically and a re-run skips inputs already done with the same key (see
//! [`manifest`]); `--jobs N` runs N pipelines at once; `--shard I/N` (or `--shards N`
//! with `JOB_COMPLETION_INDEX`) takes a deterministic slice. The run summary lists every
//! input's status; the exit code is 1 when any input failed.
//!
//! Live mode (`--live URI`): see [`live`].

mod inputs;
mod live;
mod manifest;
mod pipeline;
mod progress;
mod summary;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::{Value, json};

use inputs::{Input, Shard};
use manifest::HashMode;
use pipeline::{AnnotatePipeline, Live, PipelineOptions, RunFiles};
use progress::{Progress, ProgressMode};

/// Annotate media with valence, arousal and expressions (gst-affect).
#[derive(Debug, Parser)]
#[command(name = "affect-annotate", version)]
struct Args {
    /// Inputs: paths or URIs (file://, http(s)://, rtsp://, srt://, anything uridecodebin opens).
    inputs: Vec<String>,
    /// A list file with one input per line (`#` comments; `-` = standard input). Repeatable.
    #[arg(short, long)]
    list: Vec<PathBuf>,
    /// Output folder: one result folder per input, the run summary.
    #[arg(short, long, default_value = "annotated")]
    output: PathBuf,
    /// Pipelines run at once in this process.
    #[arg(short, long, default_value_t = 1)]
    jobs: usize,
    /// Take slice I of N of the input list (input j belongs to slice j mod N).
    #[arg(long, value_name = "I/N")]
    shard: Option<String>,
    /// Take slice JOB_COMPLETION_INDEX of N (Kubernetes Indexed Job).
    #[arg(long, value_name = "N", conflicts_with = "shard")]
    shards: Option<usize>,
    /// Also write an annotated video (annotated.mp4, H.264).
    #[arg(long)]
    video: bool,
    /// Run facecrop without the face mesh (faster; no "who speaks").
    #[arg(long)]
    no_mesh: bool,
    /// Extra properties for every model-running element, e.g. "provider=cuda threads=1".
    #[arg(long, default_value = "")]
    props: String,
    /// What identifies a local input's content in the manifest.
    #[arg(long, value_enum, default_value_t = HashMode::Stat)]
    hash: HashMode,
    /// Run inputs again that failed in an earlier run (they are skipped otherwise).
    #[arg(long)]
    retry_failed: bool,
    /// An input that delivers no data for this many seconds fails.
    #[arg(long, default_value_t = 60)]
    stall_timeout: u64,
    /// Progress display.
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
    progress: ProgressMode,
    /// Seconds between plain progress lines (when not on a terminal).
    #[arg(long, default_value_t = 10.0)]
    progress_interval: f64,
    /// Where the run summary goes (default OUTPUT/run-summary[-shard-I-of-N].json).
    #[arg(long)]
    run_summary: Option<PathBuf>,
    /// Live mode: annotate one stream around the clock, NDJSON on standard output.
    #[arg(long)]
    live: bool,
    /// Live mode: HTTP health endpoint (200 while buffers flow, 503 otherwise).
    #[arg(long)]
    health_port: Option<u16>,
    /// Live mode: seconds without a buffer before health goes down.
    #[arg(long, default_value_t = 2.0)]
    health_timeout: f64,
    /// Live mode: seconds without a buffer before the pipeline is rebuilt.
    #[arg(long, default_value_t = 10)]
    restart_after: u64,
    /// Live mode: give up after this many restarts (default: never).
    #[arg(long)]
    max_restarts: Option<u64>,
    /// Live mode: a `channel` field added to every output line.
    #[arg(long)]
    channel: Option<String>,
}

/// What happened to one input in this run.
struct Report {
    spec: String,
    id: String,
    status: String,
    error: Option<String>,
    skipped: bool,
    media_seconds: f64,
}

/// Everything the workers share.
struct Ctx {
    out: PathBuf,
    opts: PipelineOptions,
    hash: HashMode,
    models: String,
    retry_failed: bool,
    progress: Arc<Progress>,
}

fn main() {
    let args = Args::parse();
    std::process::exit(match real_main(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("affect-annotate: {e}");
            2
        }
    });
}

fn real_main(args: Args) -> Result<i32, String> {
    gst::init().map_err(|e| format!("GStreamer: {e}"))?;
    gstaffect::plugin_register_static().map_err(|e| format!("plugin: {e}"))?;
    let opts = PipelineOptions {
        mesh: !args.no_mesh,
        props: args.props.clone(),
        video: args.video && !args.live,
        live: args.live,
        stall_timeout: Duration::from_secs(if args.live {
            args.restart_after
        } else {
            args.stall_timeout
        }),
    };
    check_props(&opts.props)?;
    let mut specs = args.inputs.clone();
    for l in &args.list {
        specs.extend(inputs::read_list(l)?);
    }
    if args.live {
        let [spec] = specs.as_slice() else {
            return Err("--live takes exactly one input (one channel per process)".into());
        };
        let input = Input::parse(spec)?;
        let lo = live::LiveOptions {
            channel: args.channel.clone(),
            health_port: args.health_port,
            health_timeout: Duration::from_secs_f64(args.health_timeout),
            max_restarts: args.max_restarts,
        };
        return Ok(live::run(&input, &opts, &lo));
    }
    if specs.is_empty() {
        return Err("no inputs (give paths, URIs or --list FILE)".into());
    }
    let shard = match (&args.shard, args.shards) {
        (Some(s), _) => Some(Shard::parse(s)?),
        (None, Some(n)) => Some(Shard::from_job_index(n)?),
        (None, None) => None,
    };
    let selected = inputs::select(&specs, shard);
    std::fs::create_dir_all(&args.output)
        .map_err(|e| format!("output {}: {e}", args.output.display()))?;
    let stale = manifest::clean_stale(&args.output);
    let jobs = args.jobs.max(1).min(selected.len().max(1));
    let progress = Progress::new(selected.len(), jobs, args.progress);
    if stale > 0 {
        progress.print(&format!(
            "affect-annotate: removed {stale} unfinished result(s) of an interrupted run"
        ));
    }
    let ctx = Ctx {
        out: args.output.clone(),
        opts,
        hash: args.hash,
        models: manifest::models_version(),
        retry_failed: args.retry_failed,
        progress: progress.clone(),
    };
    let started = Instant::now();
    let display = progress.spawn(Duration::from_secs_f64(args.progress_interval.max(0.1)));
    let next = AtomicUsize::new(0);
    let reports: Vec<Report> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..jobs)
            .map(|job| {
                let (ctx, next, selected) = (&ctx, &next, &selected);
                scope.spawn(move || {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = selected.get(i) else { break };
                        mine.push((i, run_item(ctx, job, item)));
                    }
                    mine
                })
            })
            .collect();
        let mut all: Vec<(usize, Report)> = workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect();
        all.sort_by_key(|(i, _)| *i);
        all.into_iter().map(|(_, r)| r).collect()
    });
    progress.finish(display);
    let wall = started.elapsed().as_secs_f64();
    let failed: Vec<&Report> = reports.iter().filter(|r| r.status != "ok").collect();
    let ran = reports.iter().filter(|r| !r.skipped).count();
    let media: f64 = reports
        .iter()
        .filter(|r| !r.skipped)
        .map(|r| r.media_seconds)
        .sum();
    let run = json!({
        "inputs": reports.len(),
        "ok": reports.len() - failed.len(),
        "failed": failed.len(),
        "skipped": reports.iter().filter(|r| r.skipped).count(),
        "processed": ran,
        "jobs": jobs,
        "shard": shard.map(|s| format!("{}/{}", s.index, s.count)),
        "wall_seconds": wall,
        "media_seconds": media,
        "real_time_factor": if wall > 0.0 { media / wall } else { 0.0 },
        "inputs_per_hour": if wall > 0.0 { ran as f64 * 3600.0 / wall } else { 0.0 },
        "errors": failed.iter().map(|r| json!({"input": r.spec, "id": r.id, "error": r.error})).collect::<Vec<_>>(),
        "results": reports.iter().map(|r| json!({"input": r.spec, "id": r.id, "status": r.status, "skipped": r.skipped})).collect::<Vec<_>>(),
    });
    let summary_path = args.run_summary.clone().unwrap_or_else(|| {
        args.output.join(match shard {
            Some(s) => format!("run-summary-shard-{}-of-{}.json", s.index, s.count),
            None => "run-summary.json".into(),
        })
    });
    let text = serde_json::to_string_pretty(&run).map_err(|e| e.to_string())?;
    manifest::write_atomic(&summary_path, text.as_bytes())
        .map_err(|e| format!("run summary {}: {e}", summary_path.display()))?;
    eprintln!(
        "affect-annotate: {} inputs: {} ok, {} failed, {} done before; {:.1} s; summary {}",
        reports.len(),
        reports.len() - failed.len(),
        failed.len(),
        reports.len() - ran,
        wall,
        summary_path.display()
    );
    for r in &failed {
        eprintln!(
            "  failed: {}: {}",
            r.spec,
            r.error.as_deref().unwrap_or("unknown")
        );
    }
    Ok(if failed.is_empty() { 0 } else { 1 })
}

/// Refuses `--props` that are not `key=value` words (they would break the pipeline text).
fn check_props(props: &str) -> Result<(), String> {
    for p in props.split_whitespace() {
        let ok = p.split_once('=').is_some_and(|(k, v)| {
            !k.is_empty()
                && !v.is_empty()
                && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !v.contains(['!', '"', '\''])
        });
        if !ok {
            return Err(format!("--props: `{p}` is not key=value"));
        }
    }
    Ok(())
}

/// One input of the list: parse errors become failed reports.
fn run_item(ctx: &Ctx, job: usize, item: &Result<Input, (String, String)>) -> Report {
    match item {
        Ok(input) => run_input(ctx, job, input),
        Err((spec, e)) => {
            ctx.progress.end(job, true, &format!("failed: {spec}: {e}"));
            Report {
                spec: spec.clone(),
                id: String::new(),
                status: "failed".into(),
                error: Some(e.clone()),
                skipped: false,
                media_seconds: 0.0,
            }
        }
    }
}

fn run_input(ctx: &Ctx, job: usize, input: &Input) -> Report {
    let id = manifest::result_id(input);
    let material = manifest::key_material(input, ctx.hash, &ctx.models, &ctx.opts.settings_json());
    let key = manifest::key_of(&material);
    let mut report = Report {
        spec: input.spec.clone(),
        id: id.clone(),
        status: "failed".into(),
        error: None,
        skipped: false,
        media_seconds: 0.0,
    };
    if let Some(prev) = manifest::finished(&ctx.out, &id)
        && prev.get("key").and_then(Value::as_str) == Some(key.as_str())
    {
        let status = prev
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("failed");
        if status == "ok" || !ctx.retry_failed {
            report.status = status.to_owned();
            report.error = prev.get("error").and_then(Value::as_str).map(str::to_owned);
            report.skipped = true;
            let line = match &report.error {
                Some(e) => format!("failed before (skipped): {}: {e}", input.spec),
                None => format!("done before (skipped): {} -> {id}", input.spec),
            };
            ctx.progress.end(job, status != "ok", &line);
            return report;
        }
    }
    let base = json!({
        "input": input.spec,
        "uri": input.uri,
        "id": id,
        "key": key,
        "manifest": material,
        "tool": concat!("affect-annotate ", env!("CARGO_PKG_VERSION")),
    });
    let started = Instant::now();
    let staging = match manifest::Staging::new(&ctx.out, &id) {
        Ok(s) => s,
        Err(e) => {
            let e = format!(
                "cannot create a staging folder in {}: {e}",
                ctx.out.display()
            );
            ctx.progress
                .end(job, true, &format!("failed: {}: {e}", input.spec));
            report.error = Some(e);
            return report;
        }
    };
    let live = Arc::new(Live::default());
    ctx.progress.begin(job, &input.spec, live.clone());
    let result = annotate(ctx, input, &staging.dir, live);
    let wall = started.elapsed().as_secs_f64();
    let summary = match result {
        Ok((outcome, stats, outputs)) => {
            report.media_seconds = outcome.media_ns as f64 / 1e9;
            summary::success(base, &outcome, &stats, wall, outputs)
        }
        Err(e) => {
            let _ = staging.clear();
            summary::failure(base, &e, wall)
        }
    };
    let status = summary["status"].as_str().unwrap_or("failed").to_owned();
    let error = summary
        .get("error")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let line = match staging.publish(&ctx.out, &id, &summary) {
        Ok(_) => {
            report.status = status.clone();
            report.error = error.clone();
            match &error {
                None => format!(
                    "ok: {} -> {id} ({} frames, {} faces, {:.2}x real time)",
                    input.spec,
                    summary["frames"],
                    summary["faces"],
                    summary["real_time_factor"].as_f64().unwrap_or(0.0)
                ),
                Some(e) => format!("failed: {}: {e}", input.spec),
            }
        }
        Err(e) => {
            let e = format!("cannot write the result of {}: {e}", input.spec);
            report.status = "failed".into();
            report.error = Some(e.clone());
            format!("failed: {e}")
        }
    };
    ctx.progress.end(job, report.status != "ok", &line);
    report
}

/// Runs the pipeline of one input into `dir` and writes its derived files.
fn annotate(
    ctx: &Ctx,
    input: &Input,
    dir: &Path,
    live: Arc<Live>,
) -> Result<(pipeline::RunOutcome, summary::ResultStats, Vec<String>), String> {
    if let Some(p) = &input.local {
        match std::fs::metadata(p) {
            Ok(m) if m.is_file() => {}
            Ok(_) => return Err(format!("{} is not a file", p.display())),
            Err(e) => return Err(format!("cannot open {}: {e}", p.display())),
        }
    }
    let files = RunFiles::in_dir(dir, ctx.opts.video);
    let ndjson = files.ndjson.clone();
    let pipe = AnnotatePipeline::new(&input.uri, files, &ctx.opts, live)?;
    let stop = AtomicBool::new(false);
    let outcome = pipe.run(&ctx.opts, &stop, |_| {})?;
    drop(pipe);
    if !ndjson.exists() {
        // An input without video has no faces: an empty NDJSON keeps the layout uniform.
        std::fs::write(&ndjson, b"").map_err(|e| format!("{}: {e}", ndjson.display()))?;
    }
    let stats = summary::read_stats(&ndjson)?;
    let speech: String = outcome
        .speech
        .iter()
        .map(|e| serde_json::to_string(e).unwrap_or_default() + "\n")
        .collect();
    std::fs::write(dir.join("speech.ndjson"), speech).map_err(|e| format!("speech.ndjson: {e}"))?;
    let mut outputs: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    outputs.push(manifest::SUMMARY.into());
    outputs.sort();
    Ok((outcome, stats, outputs))
}
