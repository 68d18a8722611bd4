// SPDX-License-Identifier: MPL-2.0
//! The examples run: examples/file.sh and examples/network.sh (against HLS this test
//! serves on 127.0.0.1, and against MPEG-TS it sends over SRT on 127.0.0.1) write an
//! annotated mp4 and NDJSON; the Rust app (elements/examples/read_results.rs) and the
//! Python app (examples/read_results.py) read the same per-frame results from metas and
//! messages. examples/webcam.sh needs a camera and is only checked for syntax and its
//! refusal of a missing device.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use affect::results::AffectRecord;

/// How long one example may run (the sample clip takes a few seconds).
const LIMIT: Duration = Duration::from_secs(180);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn plugin_dir() -> PathBuf {
    let dir = common::plugin_dir();
    assert!(
        dir.join("libgstaffect.so").exists(),
        "libgstaffect.so not found in {} — build the plugin first (`make test` does)",
        dir.display()
    );
    dir
}

/// Runs `cmd` with the plugin on GST_PLUGIN_PATH and a registry in `scratch`, killing it
/// after [`LIMIT`]; panics with its output unless it succeeds.
fn run(mut cmd: Command, scratch: &Path) -> String {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .current_dir(repo())
        .env("GST_PLUGIN_PATH", plugin_dir())
        .env("GST_REGISTRY", scratch.join("registry.bin"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    // Drain the pipes while waiting, so a chatty child never blocks on a full pipe.
    let out = child.stdout.take().map(read_in_thread);
    let err = child.stderr.take().map(read_in_thread);
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break Some(s);
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let join = |h: Option<std::thread::JoinHandle<Vec<u8>>>| {
        String::from_utf8_lossy(&h.map(|h| h.join().unwrap()).unwrap_or_default()).into_owned()
    };
    let (stdout, stderr) = (join(out), join(err));
    let status = status.unwrap_or_else(|| panic!("{what} ran past {LIMIT:?}:\n{stdout}\n{stderr}"));
    assert!(
        status.success(),
        "{what} failed ({status}):\n{stdout}\n{stderr}"
    );
    stdout
}

fn read_in_thread<R: std::io::Read + Send + 'static>(mut r: R) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        buf
    })
}

fn bash(script: &str, args: &[&Path]) -> Command {
    let mut c = Command::new("bash");
    c.arg(repo().join("examples").join(script)).args(args);
    c
}

/// Checks what file.sh / network.sh wrote: a non-empty mp4 and NDJSON with one valid
/// record per frame per face. Returns the number of frames with a face.
fn check_outputs(out: &Path) -> usize {
    let mp4 = std::fs::read(out.join("annotated.mp4")).expect("annotated.mp4 written");
    assert!(
        mp4.len() > 10_000 && &mp4[4..8] == b"ftyp",
        "annotated.mp4 is not an mp4 ({} bytes)",
        mp4.len()
    );
    let text = std::fs::read_to_string(out.join("affect.ndjson")).expect("affect.ndjson written");
    let mut frames = BTreeSet::new();
    let mut seen = BTreeSet::new();
    for (i, line) in text.lines().enumerate() {
        let r = AffectRecord::from_json_line(line)
            .unwrap_or_else(|e| panic!("affect.ndjson line {}: {e}", i + 1));
        assert!(
            seen.insert((r.pts, r.face.track_id)),
            "two records for track {} at pts {}",
            r.face.track_id,
            r.pts
        );
        frames.insert(r.pts);
    }
    // The sample clip: 72 frames at 30 fps, one face in every one of them.
    assert!(
        frames.len() >= 60 && frames.len() <= 73,
        "{} frames with a face, expected about 72",
        frames.len()
    );
    assert_eq!(seen.len(), frames.len(), "one face per frame in the sample");
    frames.len()
}

#[test]
fn file_script_writes_annotated_mp4_and_ndjson() {
    let dir = common::scratch("example-file");
    let out = dir.join("out");
    let stdout = run(bash("file.sh", &[&common::media("sample.mp4"), &out]), &dir);
    let frames = check_outputs(&out);
    assert!(
        stdout.contains(&format!("({frames} face records)")),
        "{stdout}"
    );
    assert!(out.join("affect_track1.va.csv").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The summary line of read_results (Rust or Python), after checking the frame lines.
fn summary(stdout: &str) -> String {
    let frame_lines = stdout.lines().filter(|l| l.starts_with("frame ")).count();
    let last = stdout.lines().last().unwrap_or_default().to_owned();
    assert!(last.starts_with("summary: "), "no summary:\n{stdout}");
    assert!(last.contains(&format!("frames={frame_lines} ")), "{last}");
    assert!(last.contains(" mismatches=0 "), "{last}");
    assert!(!stdout.contains("MISMATCH"), "{stdout}");
    let with_faces: usize = last
        .split_whitespace()
        .find_map(|w| w.strip_prefix("frames-with-faces="))
        .and_then(|n| n.parse().ok())
        .expect("frames-with-faces in the summary");
    assert!(with_faces >= 60, "{last}");
    last
}

#[test]
fn rust_and_python_apps_read_the_same_results() {
    let dir = common::scratch("example-apps");
    let clip = common::media("sample.mp4");
    let app = plugin_dir().join("examples").join("read_results");
    assert!(
        app.exists(),
        "{} not built: `cargo test --all-targets` (or `cargo build --examples`) builds it",
        app.display()
    );
    let mut rust = Command::new(&app);
    rust.arg(&clip);
    let rust_out = run(rust, &dir);
    // Debian's python3 has PyGObject; another python3 may come first on PATH.
    let mut python = Command::new("/usr/bin/python3");
    python
        .arg(repo().join("examples/read_results.py"))
        .arg(&clip);
    let python_out = run(python, &dir);

    let (r, p) = (summary(&rust_out), summary(&python_out));
    assert_eq!(r, p, "the Rust and Python apps disagree");
    // Same frames, faces, boxes and expressions line by line, and the same valence and
    // arousal up to the last printed digit (both runs go through ONNX Runtime).
    let (rl, pl): (Vec<&str>, Vec<&str>) =
        (rust_out.lines().collect(), python_out.lines().collect());
    assert_eq!(rl.len(), pl.len());
    for (a, b) in rl.iter().zip(&pl) {
        let (wa, wb): (Vec<&str>, Vec<&str>) = (a.split(' ').collect(), b.split(' ').collect());
        assert_eq!(wa.len(), wb.len(), "{a}\n{b}");
        for (x, y) in wa.iter().zip(&wb) {
            let value = |w: &str| {
                w.strip_prefix("v=")
                    .or_else(|| w.strip_prefix("a="))
                    .and_then(|n| n.parse::<f64>().ok())
            };
            match (value(x), value(y)) {
                (Some(u), Some(v)) => assert!((u - v).abs() <= 0.0015, "{a}\n{b}"),
                _ => assert_eq!(x, y, "{a}\n{b}"),
            }
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A minimal HTTP/1.1 file server on 127.0.0.1 for the files of one folder (GET only).
struct FileServer {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FileServer {
    fn start(root: PathBuf) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind on loopback");
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let _ = stream.set_nonblocking(false);
                        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                        let _ = serve(stream, &root);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        FileServer {
            port,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(stream: std::net::TcpStream, root: &Path) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
    }
    let mut parts = request.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let name = path.trim_start_matches('/').split('?').next().unwrap_or("");
    let file = (!name.is_empty() && !name.contains('/') && !name.contains(".."))
        .then(|| std::fs::read(root.join(name)).ok())
        .flatten();
    let mut stream = stream;
    match (method, file) {
        ("GET", Some(body)) => {
            let kind = if name.ends_with(".m3u8") {
                "application/vnd.apple.mpegurl"
            } else {
                "video/mp2t"
            };
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )?;
            stream.write_all(&body)?;
        }
        _ => write!(
            stream,
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )?,
    }
    stream.flush()
}

#[test]
fn network_script_reads_hls_served_on_loopback() {
    let dir = common::scratch("example-network");
    let hls = dir.join("hls");
    std::fs::create_dir_all(&hls).unwrap();
    // The sample clip as HLS video on demand: one MPEG-TS segment (H.264 + AAC, no
    // re-encoding) and its playlist. (hlssink2 would cut segments itself, but it
    // sometimes hangs at end-of-stream on a loaded machine.)
    let mut mux = Command::new("gst-launch-1.0");
    mux.arg("-q").args(
        format!(
            "filesrc location={} ! qtdemux name=d d.video_0 ! h264parse ! queue \
             ! mpegtsmux name=m ! filesink location={} d.audio_0 ! aacparse ! queue ! m.",
            common::media("sample.mp4").display(),
            hls.join("seg00000.ts").display()
        )
        .split_whitespace(),
    );
    run(mux, &dir);
    std::fs::write(
        hls.join("playlist.m3u8"),
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:3\n#EXT-X-MEDIA-SEQUENCE:0\n\
         #EXTINF:2.404,\nseg00000.ts\n#EXT-X-ENDLIST\n",
    )
    .unwrap();

    let server = FileServer::start(hls);
    let uri = format!("http://127.0.0.1:{}/playlist.m3u8", server.port);
    let out = dir.join("out");
    let stdout = run(bash("network.sh", &[Path::new(&uri), &out]), &dir);
    drop(server);
    let frames = check_outputs(&out);
    assert!(
        stdout.contains(&format!("({frames} face records)")),
        "{stdout}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Whether some UDP socket is bound to local port `port` (Linux /proc/net/udp*).
fn udp_bound(port: u16) -> bool {
    let suffix = format!(":{port:04X}");
    ["/proc/net/udp", "/proc/net/udp6"].iter().any(|f| {
        std::fs::read_to_string(f).is_ok_and(|t| {
            t.lines()
                .filter_map(|l| l.split_whitespace().nth(1))
                .any(|local| local.ends_with(&suffix))
        })
    })
}

/// Sends the sample clip as MPEG-TS over SRT (caller) to 127.0.0.1:`port`, paced in real
/// time, once the receiver's listener is bound. `mpegtsmux alignment=7` (7 TS packets =
/// 1316 bytes per buffer) is what SRT's live mode needs: libsrt refuses larger messages,
/// so an unaligned mux loses every large frame (the key frame with SPS/PPS first). The
/// connection is made in PAUSED, before the first buffer is sent (buffers written while
/// the caller still connects are lost), and stays open 1 s after the last buffer (longer
/// than SRT's 125 ms latency) so that the tail is delivered.
fn srt_send(port: u16, deadline: Instant) -> Result<(), String> {
    use gst::prelude::*;
    common::init();
    while !udp_bound(port) {
        if Instant::now() > deadline {
            return Err(format!("no SRT listener on port {port}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let desc = format!(
        "filesrc location={} ! qtdemux name=d d.video_0 ! h264parse ! queue \
         ! mpegtsmux name=m alignment=7 ! srtsink uri=srt://127.0.0.1:{port}?mode=caller sync=true \
         d.audio_0 ! aacparse ! queue ! m.",
        common::media("sample.mp4").display()
    );
    let pipe = gst::parse::launch(&desc).map_err(|e| e.to_string())?;
    let bus = pipe.bus().unwrap();
    let mut result = Err("no EOS within 60 s".to_owned());
    if pipe.set_state(gst::State::Paused).is_ok()
        && pipe.state(gst::ClockTime::from_seconds(10)).0.is_ok()
    {
        std::thread::sleep(Duration::from_millis(500));
        if pipe.set_state(gst::State::Playing).is_ok() {
            for msg in bus.iter_timed(gst::ClockTime::from_seconds(60)) {
                match msg.view() {
                    gst::MessageView::Eos(_) => {
                        result = Ok(());
                        break;
                    }
                    gst::MessageView::Error(e) => {
                        result = Err(format!("{} ({:?})", e.error(), e.debug()));
                        break;
                    }
                    _ => {}
                }
            }
        }
    } else {
        result = Err("the SRT sender did not preroll".to_owned());
    }
    std::thread::sleep(Duration::from_secs(1));
    let _ = pipe.set_state(gst::State::Null);
    result
}

#[test]
fn network_script_reads_srt_mpegts_sent_on_loopback() {
    common::init();
    for name in ["srtsrc", "srtsink", "mpegtsmux"] {
        assert!(
            gst::ElementFactory::find(name).is_some(),
            "{name} missing: install gstreamer1.0-plugins-bad (`make setup`)"
        );
    }
    let dir = common::scratch("example-network-srt");
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free UDP port on loopback")
        .port();
    // network.sh listens (srtsrc mode=listener, EOS when the sender disconnects); the
    // test sends from a thread once the listener is up.
    let sender =
        std::thread::spawn(move || srt_send(port, Instant::now() + Duration::from_secs(90)));
    let uri = format!("srt://127.0.0.1:{port}?mode=listener");
    let out = dir.join("out");
    let stdout = run(bash("network.sh", &[Path::new(&uri), &out]), &dir);
    sender
        .join()
        .unwrap()
        .expect("the sender delivered the clip");
    let frames = check_outputs(&out);
    assert!(
        stdout.contains(&format!("({frames} face records)")),
        "{stdout}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn webcam_script_is_valid_but_not_run() {
    println!(
        "skipping examples/webcam.sh: it needs a V4L2 camera, a microphone and a display, \
         which test machines do not have; checking its syntax and its refusal of a missing camera"
    );
    let script = repo().join("examples/webcam.sh");
    let syntax = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        syntax.status.success(),
        "{}",
        String::from_utf8_lossy(&syntax.stderr)
    );
    let missing = Command::new("bash")
        .arg(&script)
        .arg("/dev/no-such-camera")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no camera at /dev/no-such-camera"));
}
