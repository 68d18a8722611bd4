// SPDX-License-Identifier: MPL-2.0
//! `affect-annotate` end to end: good and bad inputs in one run, re-runs that do no work,
//! `kill -9` and resume, shards, and live mode's health endpoint on an SRT loopback source.

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gst::prelude::*;
use serde_json::Value;

fn annotate_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_affect-annotate"))
}

/// Runs `affect-annotate ARGS` to the end; returns its exit code and stderr.
fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(annotate_bin())
        .args(args)
        .args(["--progress", "lines"])
        .output()
        .expect("affect-annotate runs");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code().unwrap_or(-1), err)
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
    )
    .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Runs a gst-launch style pipeline in-process to EOS (panics on error).
fn gst_run(desc: &str) {
    common::init();
    let p = gst::parse::launch(desc).unwrap();
    p.set_state(gst::State::Playing).unwrap();
    assert!(common::wait_eos(&p.bus().unwrap(), 60), "{desc}: no EOS");
    p.set_state(gst::State::Null).unwrap();
}

/// Decoded video frames of an MP4 file.
fn count_video_frames(path: &Path) -> usize {
    common::collect(
        &format!(
            "filesrc location={} ! qtdemux ! h264parse ! avdec_h264 ! fakesink name=out",
            path.display()
        ),
        60,
        |_| (),
    )
    .len()
}

/// The test media: video only, audio only, missing, truncated before its index (no
/// stream can be found), sample with both, truncated after its index (the streams end
/// before the declared duration).
fn media_set(dir: &Path) -> [PathBuf; 6] {
    let sample = common::media("sample.mp4");
    let vo = dir.join("video_only.mp4");
    let ao = dir.join("audio_only.m4a");
    let missing = dir.join("missing.mp4");
    let truncated = dir.join("truncated.mp4");
    gst_run(&format!(
        "filesrc location={} ! qtdemux name=d d.video_0 ! queue ! h264parse ! mp4mux ! filesink location={}",
        sample.display(),
        vo.display()
    ));
    gst_run(&format!(
        "filesrc location={} ! qtdemux name=d d.audio_0 ! queue ! aacparse ! mp4mux ! filesink location={}",
        sample.display(),
        ao.display()
    ));
    let bytes = std::fs::read(&sample).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let faststart = dir.join("faststart.mp4");
    let cut = dir.join("cut_short.mp4");
    gst_run(&format!(
        "filesrc location={} ! qtdemux name=d d.video_0 ! queue ! h264parse ! mp4mux faststart=true name=m \
         ! filesink location={} d.audio_0 ! queue ! aacparse ! m.",
        sample.display(),
        faststart.display()
    ));
    let bytes = std::fs::read(&faststart).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() * 6 / 10]).unwrap();
    [vo, ao, missing, truncated, sample, cut]
}

/// Result folders of an output folder (not the staging area), by name.
fn result_dirs(out: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(out)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.is_dir() && !p.file_name().unwrap().to_string_lossy().starts_with('.')
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Entries left in the staging area.
fn staging_entries(out: &Path) -> Vec<String> {
    std::fs::read_dir(out.join(".tmp"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Every result folder is whole: its summary parses; a success has its NDJSON (every line a
/// valid record) and speech file, a failure nothing but its summary.
fn assert_results_whole(out: &Path) {
    for d in result_dirs(out) {
        let s = read_json(&d.join("summary.json"));
        let files: Vec<String> = std::fs::read_dir(&d)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        match s["status"].as_str() {
            Some("ok") => {
                let recs = common::ndjson_records(&d.join("affect.ndjson"));
                assert_eq!(
                    recs.len() as u64,
                    s["faces"].as_u64().unwrap(),
                    "{}",
                    d.display()
                );
                assert!(d.join("speech.ndjson").exists());
                let mut listed: Vec<String> = s["outputs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().to_owned())
                    .collect();
                let mut have = files.clone();
                listed.sort();
                have.sort();
                assert_eq!(listed, have, "{}: outputs listed", d.display());
            }
            Some("failed") => assert_eq!(files, vec!["summary.json".to_owned()], "{}", d.display()),
            other => panic!("{}: status {other:?}", d.display()),
        }
    }
}

/// The summary's numbers are those of its NDJSON.
fn assert_summary_matches_ndjson(dir: &Path) {
    let s = read_json(&dir.join("summary.json"));
    let recs = common::ndjson_records(&dir.join("affect.ndjson"));
    assert_eq!(s["faces"].as_u64().unwrap() as usize, recs.len());
    let tracks: std::collections::BTreeSet<u64> = recs.iter().map(|r| r.face.track_id).collect();
    assert_eq!(s["tracks"].as_u64().unwrap() as usize, tracks.len());
    let hist = s["expressions"].as_object().unwrap();
    assert_eq!(hist.len(), 8);
    for (name, n) in hist {
        let want = recs.iter().filter(|r| &r.expression == name).count();
        assert_eq!(n.as_u64().unwrap() as usize, want, "{name}");
    }
    if !recs.is_empty() {
        let mv = recs.iter().map(|r| f64::from(r.face.valence)).sum::<f64>() / recs.len() as f64;
        let ma = recs.iter().map(|r| f64::from(r.face.arousal)).sum::<f64>() / recs.len() as f64;
        assert!((s["mean_valence"].as_f64().unwrap() - mv).abs() < 1e-9);
        assert!((s["mean_arousal"].as_f64().unwrap() - ma).abs() < 1e-9);
    }
    let (media, wall, rtf) = (
        s["media_seconds"].as_f64().unwrap(),
        s["wall_seconds"].as_f64().unwrap(),
        s["real_time_factor"].as_f64().unwrap(),
    );
    assert!(media > 0.0 && wall > 0.0);
    assert!((rtf - media / wall).abs() < 1e-9 * rtf.max(1.0));
}

fn summary_of(out: &Path, stem: &str) -> (PathBuf, Value) {
    let d = result_dirs(out)
        .into_iter()
        .find(|d| {
            d.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&format!("{stem}-"))
        })
        .unwrap_or_else(|| panic!("no result for {stem} in {}", out.display()));
    let s = read_json(&d.join("summary.json"));
    (d, s)
}

fn mtimes(out: &Path) -> Vec<(PathBuf, std::time::SystemTime)> {
    let mut v = Vec::new();
    for d in result_dirs(out) {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            v.push((e.path(), e.metadata().unwrap().modified().unwrap()));
        }
    }
    v.sort();
    v
}

#[test]
fn good_and_bad_inputs_in_one_run_and_a_rerun_that_does_nothing() {
    let dir = common::scratch("annotate-mixed");
    let out = dir.join("out");
    let _ = std::fs::remove_dir_all(&out);
    let inputs = media_set(&dir);
    let mut args: Vec<String> = inputs.iter().map(|p| p.display().to_string()).collect();
    args.extend(["-o".into(), out.display().to_string(), "--video".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();

    let (code, err) = run(&args);
    assert_eq!(code, 1, "exit code with failed inputs; stderr:\n{err}");
    let rs = read_json(&out.join("run-summary.json"));
    assert_eq!(rs["inputs"], 6);
    assert_eq!(rs["ok"], 3, "{rs:#}");
    assert_eq!(rs["failed"], 3, "{rs:#}");
    assert_eq!(rs["processed"], 6);
    let errors = rs["errors"].as_array().unwrap();
    let error_of = |name: &str| -> String {
        errors
            .iter()
            .find(|e| e["input"].as_str().unwrap().ends_with(name))
            .unwrap_or_else(|| panic!("no error for {name}: {rs:#}"))["error"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let missing = error_of("missing.mp4");
    assert!(
        missing.contains("cannot open") && missing.contains("missing.mp4"),
        "{missing}"
    );
    let truncated = error_of("truncated.mp4");
    assert!(truncated.contains("no playable stream"), "{truncated}");
    let cut = error_of("cut_short.mp4");
    assert!(cut.contains("truncated input"), "{cut}");
    assert!(
        err.contains("failed: ") && err.contains("missing.mp4"),
        "{err}"
    );
    assert!(
        staging_entries(&out).is_empty(),
        "{:?}",
        staging_entries(&out)
    );
    assert_results_whole(&out);

    // Video only: faces from the picture, no speech; the same frames as the sample.
    let (vo_dir, vo) = summary_of(&out, "video_only");
    assert_eq!(vo["streams"]["video"], true);
    assert_eq!(vo["streams"]["audio"], false);
    assert_eq!(vo["speech_segments"], 0);
    assert_summary_matches_ndjson(&vo_dir);
    // Audio only: no faces, the sample's speech.
    let (ao_dir, ao) = summary_of(&out, "audio_only");
    assert_eq!(ao["streams"]["video"], false);
    assert_eq!(ao["streams"]["audio"], true);
    assert_eq!(
        (ao["frames"].as_u64(), ao["faces"].as_u64()),
        (Some(0), Some(0))
    );
    assert!(ao["speech_segments"].as_u64().unwrap() >= 1, "{ao:#}");
    assert!(!ao_dir.join("annotated.mp4").exists());
    // Both: every decoded frame through avfuse, and into the annotated video.
    let (sd, sample) = summary_of(&out, "sample");
    assert_summary_matches_ndjson(&sd);
    let frames = count_video_frames(&inputs[4]);
    assert_eq!(sample["frames"].as_u64().unwrap() as usize, frames);
    assert_eq!(vo["frames"].as_u64().unwrap() as usize, frames);
    assert!(sample["faces"].as_u64().unwrap() > 0 && sample["tracks"].as_u64().unwrap() >= 1);
    assert_eq!(sample["speech_segments"], ao["speech_segments"]);
    assert_eq!(count_video_frames(&sd.join("annotated.mp4")), frames);
    let csv = sd.join("affect_track1.va.csv");
    let rows = std::fs::read_to_string(&csv).unwrap().lines().count();
    assert!(rows > 1, "{}: {rows} lines", csv.display());

    // A re-run does nothing and says the same.
    let before = mtimes(&out);
    let (code2, err2) = run(&args);
    assert_eq!(code2, 1, "{err2}");
    let rs2 = read_json(&out.join("run-summary.json"));
    assert_eq!(rs2["processed"], 0, "{rs2:#}");
    assert_eq!(rs2["skipped"], 6);
    assert_eq!(rs2["errors"], rs["errors"]);
    assert_eq!(mtimes(&out), before, "a re-run rewrote results");

    // A changed setting is a different key: the input runs again.
    let (code3, _) = run(&[
        inputs[0].to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--video",
        "--no-mesh",
    ]);
    assert_eq!(code3, 0);
    let rs3 = read_json(&out.join("run-summary.json"));
    assert_eq!(rs3["processed"], 1, "{rs3:#}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn kill_9_then_resume_equals_an_uninterrupted_run() {
    let dir = common::scratch("annotate-kill");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut list = String::new();
    for (i, name) in [
        "sample.mp4",
        "single_face.mp4",
        "no_face.mp4",
        "sample.mp4",
        "single_face.mp4",
    ]
    .iter()
    .enumerate()
    {
        let p = dir.join(format!("in{i}_{name}"));
        std::fs::copy(common::media(name), &p).unwrap();
        list += &format!("{}\n", p.display());
    }
    let list_path = dir.join("list.txt");
    std::fs::write(&list_path, list).unwrap();
    let (a, b) = (dir.join("a"), dir.join("b"));

    // Uninterrupted, two pipelines at once.
    let (code, err) = run(&[
        "--list",
        list_path.to_str().unwrap(),
        "-o",
        a.to_str().unwrap(),
        "--jobs",
        "2",
    ]);
    assert_eq!(code, 0, "{err}");

    // One at a time, killed once the first result is in and the second is being made.
    let mut child = Command::new(annotate_bin())
        .args([
            "--list",
            list_path.to_str().unwrap(),
            "-o",
            b.to_str().unwrap(),
            "--progress",
            "none",
        ])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    loop {
        if !result_dirs(&b).is_empty() && !staging_entries(&b).is_empty() {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "no result within 120 s"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let done_at_kill = result_dirs(&b).len();
    assert!(
        (1..5).contains(&done_at_kill),
        "{done_at_kill} results at the kill"
    );
    // The input in progress left its staging folder (unless the kill fell between one
    // input's publication and the next one's start).
    let left = staging_entries(&b).len();
    assert!(left <= 1, "{left} staging folders");
    assert_results_whole(&b);

    let (code, err) = run(&[
        "--list",
        list_path.to_str().unwrap(),
        "-o",
        b.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    if left > 0 {
        assert!(err.contains("removed 1 unfinished"), "{err}");
    }
    let rs = read_json(&b.join("run-summary.json"));
    assert_eq!(
        rs["skipped"].as_u64().unwrap() as usize,
        done_at_kill,
        "{rs:#}"
    );
    assert_eq!(rs["processed"].as_u64().unwrap() as usize, 5 - done_at_kill);
    assert!(staging_entries(&b).is_empty());
    assert_results_whole(&b);

    // Same results, file for file.
    let names = |d: &Path| -> Vec<String> {
        result_dirs(d)
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    };
    assert_eq!(names(&a), names(&b));
    assert_eq!(names(&a).len(), 5);
    let mut compared = 0;
    for id in names(&a) {
        for e in std::fs::read_dir(a.join(&id)).unwrap().flatten() {
            let f = e.file_name();
            if f == "summary.json" {
                let (sa, sb) = (read_json(&e.path()), read_json(&b.join(&id).join(&f)));
                for k in [
                    "key",
                    "frames",
                    "faces",
                    "tracks",
                    "mean_valence",
                    "mean_arousal",
                    "expressions",
                ] {
                    assert_eq!(sa[k], sb[k], "{id} {k}");
                }
            } else {
                let (x, y) = (
                    std::fs::read(e.path()).unwrap(),
                    std::fs::read(b.join(&id).join(&f)).unwrap(),
                );
                assert!(
                    x == y,
                    "{id}/{}: differs from the uninterrupted run",
                    f.to_string_lossy()
                );
                compared += 1;
            }
        }
    }
    assert!(compared >= 10, "{compared} files compared");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn shards_cover_the_list_exactly_once() {
    let dir = common::scratch("annotate-shards");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // Missing files fail at once: this is about which process takes which input.
    let specs: Vec<String> = (0..11)
        .map(|i| dir.join(format!("clip{i:02}.mp4")).display().to_string())
        .collect();
    let list = dir.join("list.txt");
    std::fs::write(&list, specs.join("\n") + "\n" + &specs[3] + "\n").unwrap(); // a duplicate line
    let out = dir.join("out");
    let mut taken: Vec<String> = Vec::new();
    for i in 0..3 {
        let (code, err) = run(&[
            "--list",
            list.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--shard",
            &format!("{i}/3"),
        ]);
        assert_eq!(code, 1, "{err}");
        let rs = read_json(&out.join(format!("run-summary-shard-{i}-of-3.json")));
        assert_eq!(rs["shard"], format!("{i}/3"));
        for r in rs["results"].as_array().unwrap() {
            taken.push(r["input"].as_str().unwrap().to_owned());
        }
    }
    let mut want = specs.clone();
    want.sort();
    taken.sort();
    assert_eq!(taken, want, "every input in exactly one shard");
    assert_eq!(result_dirs(&out).len(), 11);

    // An Indexed Job pod: the index from JOB_COMPLETION_INDEX.
    let ids = |v: &Value| -> Vec<String> {
        v["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let by_flag = ids(&read_json(&out.join("run-summary-shard-1-of-3.json")));
    let status = Command::new(annotate_bin())
        .args([
            "--list",
            list.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--shards",
            "3",
            "--progress",
            "none",
        ])
        .env("JOB_COMPLETION_INDEX", "1")
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(1));
    let by_env = ids(&read_json(&out.join("run-summary-shard-1-of-3.json")));
    assert_eq!(by_flag, by_env);
    assert_eq!(by_flag.len(), 4); // inputs 1, 4, 7, 10 of 11
    // Bad slices are refused with a message, not run.
    let (code, err) = run(&[
        "--list",
        list.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--shard",
        "3/3",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("not below the count"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The HTTP status of the health endpoint (0 when it does not answer).
fn health(port: u16) -> u16 {
    let Ok(mut s) = std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(500),
    ) else {
        return 0;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut r = String::new();
    let _ = s.read_to_string(&mut r);
    r.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// A live SRT source on `port` (listener): a face at 10 fps, H.264 in MPEG-TS.
fn srt_source(port: u16) -> std::process::Child {
    Command::new("gst-launch-1.0")
        .args(["-q", "filesrc", &format!("location={}", common::media("single_face.jpg").display())])
        .args("! jpegdec ! imagefreeze is-live=true ! video/x-raw,framerate=10/1 ! videoconvert ! videoscale \
               ! video/x-raw,width=320,height=240 ! openh264enc gop-size=10 ! h264parse config-interval=-1 \
               ! mpegtsmux alignment=7 ! srtsink wait-for-connection=false"
            .split_whitespace())
        .arg(format!("uri=srt://127.0.0.1:{port}?mode=listener"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("gst-launch-1.0 runs")
}

fn wait_health(port: u16, want: u16, within: Duration) -> Option<Duration> {
    let t0 = Instant::now();
    while t0.elapsed() < within {
        if health(port) == want {
            return Some(t0.elapsed());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

/// A live RTSP source on `port` (gst-rtsp-server through Python): a face at 10 fps, H.264.
fn rtsp_source(port: u16) -> std::process::Child {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/python/rtsp_source.py");
    Command::new("/usr/bin/python3")
        .arg(script)
        .arg(port.to_string())
        .arg(common::media("single_face.jpg"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 runs")
}

/// Live mode on `uri` served by `source(port)`: health up while buffers flow, down within
/// 5 s of the source stopping, up again when it comes back; NDJSON faces on stdout.
fn live_health_follows_the_source(
    name: &str,
    uri: &str,
    port: u16,
    source: fn(u16) -> std::process::Child,
) {
    let dir = common::scratch(name);
    let hp = free_port();
    let mut src = source(port);
    let stdout = dir.join("live.ndjson");
    let mut live = Command::new(annotate_bin())
        .args(["--live", uri, "--health-port", &hp.to_string()])
        .args(["--channel", "test", "--restart-after", "3"])
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let result = (|| -> Result<(), String> {
        wait_health(hp, 200, Duration::from_secs(60)).ok_or("health never came up")?;
        // Up while buffers flow.
        for _ in 0..10 {
            std::thread::sleep(Duration::from_millis(200));
            if health(hp) != 200 {
                return Err("health went down while the source plays".into());
            }
        }
        let _ = src.kill();
        let _ = src.wait();
        let down = wait_health(hp, 503, Duration::from_secs(10)).ok_or("health stayed up")?;
        if down > Duration::from_secs(5) {
            return Err(format!(
                "health went down {down:?} after the source stopped"
            ));
        }
        // The source comes back: the pipeline is rebuilt and health comes back up.
        src = source(port);
        wait_health(hp, 200, Duration::from_secs(60))
            .ok_or("no recovery after the source came back")?;
        Ok(())
    })();
    let _ = src.kill();
    let _ = live.kill();
    let _ = src.wait();
    let _ = live.wait();
    result.unwrap_or_else(|e| panic!("{uri}: {e}"));
    let text = std::fs::read_to_string(&stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 5, "{} NDJSON lines on stdout", lines.len());
    for l in &lines {
        let r = affect::results::AffectRecord::from_json_line(l).unwrap();
        assert!(r.face.bbox.width > 20.0, "{l}");
        let v: Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["channel"], "test");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn live_health_follows_an_srt_source() {
    let port = free_port();
    live_health_follows_the_source(
        "annotate-live-srt",
        &format!("srt://127.0.0.1:{port}"),
        port,
        srt_source,
    );
}

#[test]
fn live_health_follows_an_rtsp_source() {
    let port = free_port();
    live_health_follows_the_source(
        "annotate-live-rtsp",
        &format!("rtsp://127.0.0.1:{port}/face"),
        port,
        rtsp_source,
    );
}

#[test]
fn a_changed_file_runs_again_unless_keyed_by_content() {
    let dir = common::scratch("annotate-hash");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let clip = dir.join("clip.mp4");
    std::fs::copy(common::media("single_face.mp4"), &clip).unwrap();
    let out = dir.join("out");
    let processed = |extra: &[&str]| -> u64 {
        let mut args = vec![
            clip.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--no-mesh",
        ];
        args.extend_from_slice(extra);
        let (code, err) = run(&args);
        assert_eq!(code, 0, "{err}");
        read_json(&out.join("run-summary.json"))["processed"]
            .as_u64()
            .unwrap()
    };
    let touch = || {
        let f = std::fs::File::options().append(true).open(&clip).unwrap();
        f.set_modified(std::time::SystemTime::now() + Duration::from_secs(5))
            .unwrap();
    };
    assert_eq!(processed(&[]), 1);
    assert_eq!(processed(&[]), 0, "unchanged: skipped");
    touch();
    assert_eq!(processed(&[]), 1, "a new modification time is a new key");
    assert_eq!(processed(&["--hash", "content"]), 1, "another key kind");
    touch();
    assert_eq!(
        processed(&["--hash", "content"]),
        0,
        "same content, new time: skipped"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn http_inputs_give_the_file_results_and_a_missing_url_a_clear_error() {
    let dir = common::scratch("annotate-http");
    let _ = std::fs::remove_dir_all(&dir);
    let site = dir.join("site");
    std::fs::create_dir_all(&site).unwrap();
    std::fs::copy(common::media("sample.mp4"), site.join("talk.mp4")).unwrap();
    let port = free_port();
    let mut server = Command::new("/usr/bin/python3")
        .args([
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            &port.to_string(),
        ])
        .arg("--directory")
        .arg(&site)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 http.server");
    let t0 = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "http.server did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (file_out, http_out) = (dir.join("file"), dir.join("http"));
    let url = format!("http://127.0.0.1:{port}/talk.mp4");
    let gone = format!("http://127.0.0.1:{port}/gone.mp4");
    let (c1, e1) = run(&[
        site.join("talk.mp4").to_str().unwrap(),
        "-o",
        file_out.to_str().unwrap(),
    ]);
    let (c2, e2) = run(&[&url, &gone, "-o", http_out.to_str().unwrap()]);
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(c1, 0, "{e1}");
    assert_eq!(c2, 1, "{e2}");
    let rs = read_json(&http_out.join("run-summary.json"));
    assert_eq!(
        (rs["ok"].as_u64(), rs["failed"].as_u64()),
        (Some(1), Some(1)),
        "{rs:#}"
    );
    let err = rs["errors"][0]["error"].as_str().unwrap();
    assert!(err.contains("Not Found") || err.contains("404"), "{err}");
    let (fd, _) = summary_of(&file_out, "talk");
    let (hd, hs) = summary_of(&http_out, "talk");
    assert_eq!(hs["uri"], url.as_str());
    assert!(
        std::fs::read(fd.join("affect.ndjson")).unwrap()
            == std::fs::read(hd.join("affect.ndjson")).unwrap(),
        "the same clip over HTTP gives other results"
    );
    std::fs::remove_dir_all(&dir).ok();
}
