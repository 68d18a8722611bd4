// SPDX-License-Identifier: MPL-2.0
//! Progress: a bar per running input and one for the run (fps, ETA) on a terminal, plain
//! lines otherwise (logs, CI, Ray, Kubernetes).

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::pipeline::Live;

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressMode {
    /// Bars when standard error is a terminal, lines otherwise.
    Auto,
    /// Redrawn bars (ANSI).
    Bar,
    /// A plain line per running input every interval.
    Lines,
    /// Nothing but the results.
    None,
}

struct Slot {
    name: String,
    live: Arc<Live>,
    started: Instant,
}

/// Shared progress of a run.
pub struct Progress {
    total: usize,
    done: AtomicUsize,
    failed: AtomicUsize,
    slots: Mutex<Vec<Option<Slot>>>,
    started: Instant,
    bars: bool,
    /// Lines drawn by the last bar redraw (erased by the next one).
    drawn: Mutex<usize>,
    quit: AtomicBool,
    mode: ProgressMode,
}

fn clock(d: f64) -> String {
    if !d.is_finite() || d < 0.0 {
        return "--:--".into();
    }
    let s = d.round() as u64;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

impl Progress {
    /// Progress of `total` inputs run by `jobs` workers.
    pub fn new(total: usize, jobs: usize, mode: ProgressMode) -> Arc<Progress> {
        use std::io::IsTerminal;
        let bars = match mode {
            ProgressMode::Bar => true,
            ProgressMode::Auto => std::io::stderr().is_terminal(),
            _ => false,
        };
        Arc::new(Progress {
            total,
            done: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            slots: Mutex::new((0..jobs).map(|_| None).collect()),
            started: Instant::now(),
            bars,
            drawn: Mutex::new(0),
            quit: AtomicBool::new(false),
            mode,
        })
    }

    /// Worker `job` starts an input.
    pub fn begin(&self, job: usize, name: &str, live: Arc<Live>) {
        if let Some(s) = self.lock_slots().get_mut(job) {
            *s = Some(Slot {
                name: name.to_owned(),
                live,
                started: Instant::now(),
            });
        }
    }

    /// Worker `job` finished an input; `line` is printed (above the bars).
    pub fn end(&self, job: usize, failed: bool, line: &str) {
        if let Some(s) = self.lock_slots().get_mut(job) {
            *s = None;
        }
        self.done.fetch_add(1, Ordering::Relaxed);
        if failed {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
        self.print(line);
    }

    /// Prints a line (above the bars on a terminal).
    pub fn print(&self, line: &str) {
        let mut err = std::io::stderr().lock();
        if self.bars {
            let mut drawn = self.drawn.lock().unwrap_or_else(|p| p.into_inner());
            let _ = write!(err, "{}", erase(*drawn));
            *drawn = 0;
        }
        let _ = writeln!(err, "{line}");
    }

    fn lock_slots(&self) -> std::sync::MutexGuard<'_, Vec<Option<Slot>>> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Lines describing the run now: the run first, then each running input.
    fn render(&self) -> Vec<String> {
        let slots = self.lock_slots();
        let elapsed = self.started.elapsed().as_secs_f64();
        let done = self.done.load(Ordering::Relaxed);
        let mut partial = 0.0;
        let mut fps_total = 0.0;
        let mut lines = Vec::new();
        for (j, s) in slots.iter().enumerate() {
            let Some(s) = s else { continue };
            let pos = s.live.position_ns.load(Ordering::Relaxed) as f64 / 1e9;
            let dur = s.live.duration_ns.load(Ordering::Relaxed) as f64 / 1e9;
            let t = s.started.elapsed().as_secs_f64().max(1e-3);
            let frames = s.live.frames.load(Ordering::Relaxed) as f64;
            let fps = frames / t;
            fps_total += fps;
            let frac = if dur > 0.0 { (pos / dur).min(1.0) } else { 0.0 };
            partial += frac;
            let eta = if pos > 0.0 && dur > 0.0 {
                (dur - pos).max(0.0) * t / pos
            } else {
                f64::NAN
            };
            let bar = if self.bars {
                let w = 20;
                let n = (frac * w as f64).round() as usize;
                format!("[{}{}] ", "#".repeat(n), ".".repeat(w - n))
            } else {
                String::new()
            };
            lines.push(format!(
                "  job {j} {bar}{:>3.0}% {:.1}/{:.1} s {:.1} fps eta {} {}",
                frac * 100.0,
                pos,
                dur,
                fps,
                clock(eta),
                s.name
            ));
        }
        let f = (done as f64 + partial) / self.total.max(1) as f64;
        let eta = if f > 0.0 {
            elapsed * (1.0 - f) / f
        } else {
            f64::NAN
        };
        let head = format!(
            "progress: {done}/{} inputs ({} failed) {:.1} fps elapsed {} eta {}",
            self.total,
            self.failed.load(Ordering::Relaxed),
            fps_total,
            clock(elapsed),
            clock(eta)
        );
        let mut all = vec![head];
        all.extend(lines);
        all
    }

    /// Starts the display thread (`interval` between plain lines); stop it with [`finish`].
    pub fn spawn(self: &Arc<Self>, interval: Duration) -> Option<std::thread::JoinHandle<()>> {
        if self.mode == ProgressMode::None {
            return None;
        }
        let me = self.clone();
        Some(std::thread::spawn(move || {
            let tick = if me.bars {
                Duration::from_millis(250)
            } else {
                interval
            };
            let mut last = Instant::now();
            while !me.quit.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                if last.elapsed() < tick {
                    continue;
                }
                last = Instant::now();
                let lines = me.render();
                let mut err = std::io::stderr().lock();
                if me.bars {
                    let mut drawn = me.drawn.lock().unwrap_or_else(|p| p.into_inner());
                    let _ = write!(err, "{}", erase(*drawn));
                    for l in &lines {
                        let _ = writeln!(err, "{l}");
                    }
                    *drawn = lines.len();
                } else {
                    for l in &lines {
                        let _ = writeln!(err, "{l}");
                    }
                }
            }
        }))
    }

    /// Stops the display thread and clears the bars.
    pub fn finish(&self, handle: Option<std::thread::JoinHandle<()>>) {
        self.quit.store(true, Ordering::Relaxed);
        if let Some(h) = handle {
            let _ = h.join();
        }
        if self.bars {
            let mut drawn = self.drawn.lock().unwrap_or_else(|p| p.into_inner());
            eprint!("{}", erase(*drawn));
            *drawn = 0;
        }
    }
}

/// ANSI: move up `n` lines, clearing each.
fn erase(n: usize) -> String {
    "\x1b[1A\x1b[2K".repeat(n)
}
