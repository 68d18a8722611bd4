// SPDX-License-Identifier: MPL-2.0
//! Live mode (`--live URI`): one channel around the clock. Results go to standard output
//! as NDJSON (one line per face per frame, for a cluster's log shipper); the pipeline is
//! rebuilt when the source is lost (an error, an end of stream, or no buffer for
//! `--restart-after`); `--health-port` answers HTTP `200` only while buffers flow through
//! the whole pipeline, `503` otherwise (a Kubernetes liveness probe).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::inputs::Input;
use crate::pipeline::{AnnotatePipeline, Live, PipelineOptions, RunFiles};

/// Live mode settings.
pub struct LiveOptions {
    /// Name added to every output line (`channel`).
    pub channel: Option<String>,
    /// Health endpoint port.
    pub health_port: Option<u16>,
    /// Health is down when the last buffer is older than this.
    pub health_timeout: Duration,
    /// Stop after this many pipeline restarts (None: never).
    pub max_restarts: Option<u64>,
}

/// Serves the health endpoint for whichever pipeline is current.
fn serve_health(
    listener: TcpListener,
    current: Arc<Mutex<Arc<Live>>>,
    timeout: Duration,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            let live = current.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let (code, body) = match live.since_last_buffer() {
                Some(d) if d <= timeout => (
                    "200 OK",
                    format!(
                        "ok: {} frames, last buffer {} ms ago\n",
                        live.frames.load(std::sync::atomic::Ordering::Relaxed),
                        d.as_millis()
                    ),
                ),
                Some(d) => (
                    "503 Service Unavailable",
                    format!("no buffer for {} ms\n", d.as_millis()),
                ),
                None => ("503 Service Unavailable", "no buffer yet\n".to_owned()),
            };
            let _ = write!(
                s,
                "HTTP/1.1 {code}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    })
}

/// Runs one live input until killed (or `max_restarts`). Returns the exit code.
pub fn run(input: &Input, opts: &PipelineOptions, lo: &LiveOptions) -> i32 {
    let current = Arc::new(Mutex::new(Arc::new(Live::default())));
    if let Some(port) = lo.health_port {
        match TcpListener::bind(("0.0.0.0", port)) {
            Ok(l) => {
                serve_health(l, current.clone(), lo.health_timeout);
                eprintln!("affect-annotate: health on port {port}");
            }
            Err(e) => {
                eprintln!("affect-annotate: cannot listen on health port {port}: {e}");
                return 2;
            }
        }
    }
    let stop = AtomicBool::new(false);
    let mut restarts = 0u64;
    let mut backoff = Duration::from_secs(1);
    loop {
        let live = Arc::new(Live::default());
        *current.lock().unwrap_or_else(|p| p.into_inner()) = live.clone();
        // No files in live mode: the results come from the bus.
        let files = RunFiles {
            ndjson: std::path::PathBuf::new(),
            csv_prefix: std::path::PathBuf::new(),
            video: None,
        };
        let result = AnnotatePipeline::new(&input.uri, files, opts, live.clone()).and_then(|p| {
            let channel = lo.channel.clone();
            p.run(opts, &stop, |s| print_affect(s, channel.as_deref()))
        });
        let reason = match result {
            Ok(_) => "end of stream".to_owned(),
            Err(e) => e,
        };
        if live.flowing.load(std::sync::atomic::Ordering::Relaxed) {
            backoff = Duration::from_secs(1);
        }
        eprintln!(
            "affect-annotate: {} lost ({reason}); restarting in {} s",
            input.uri,
            backoff.as_secs()
        );
        restarts += 1;
        if lo.max_restarts.is_some_and(|m| restarts > m) {
            eprintln!("affect-annotate: giving up after {} restarts", restarts - 1);
            return 1;
        }
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

/// Prints the faces of an `affect` message as NDJSON lines on standard output.
fn print_affect(s: &gst::StructureRef, channel: Option<&str>) {
    let Ok(m) = gstaffect::meta::AffectMessage::try_from(s) else {
        return;
    };
    let mut out = std::io::stdout().lock();
    for face in m.faces {
        let mut r = affect::results::AffectRecord::new(
            m.timestamp.map(|t| t.nseconds()).unwrap_or(0),
            face,
        );
        r.duration = m.duration.map(|t| t.nseconds());
        r.running_time = m.running_time.map(|t| t.nseconds());
        r.stream_time = m.stream_time.map(|t| t.nseconds());
        let line = match channel {
            Some(c) => {
                let mut v = serde_json::to_value(&r).unwrap_or_default();
                if let Some(o) = v.as_object_mut() {
                    o.insert("channel".into(), c.into());
                }
                v.to_string()
            }
            None => r.to_json_line(),
        };
        let _ = writeln!(out, "{line}");
    }
    let _ = out.flush();
}
