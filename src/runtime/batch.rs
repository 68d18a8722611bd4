// SPDX-License-Identifier: MPL-2.0
//! Cross-stream batching on a shared session: the requests of several callers (element
//! instances in different pipelines and threads) gathered into one run.
//!
//! The first caller with no run being gathered becomes the *leader*: it waits until the
//! pending requests hold [`BatchConfig::max_batch`] items or [`BatchConfig::max_latency`]
//! has passed since it arrived, takes the pending requests (in arrival order, up to
//! `max_batch` items, at least its own), concatenates their inputs along axis 0, runs the
//! session once and hands every caller its rows of every output. Other callers wait for
//! their result; a request left over (the batch was full) is led by its own caller as soon
//! as the leader has taken its batch. No caller waits for one that never comes: a stream
//! that stops (EOS, error, blocked) only means the batch runs at the deadline with fewer
//! items. The latency a caller can be given on top of the run itself is therefore at most
//! `max_latency` (plus the runs queued before its own, which take turns on the session).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use ndarray::{ArrayD, ArrayViewD, Axis, concatenate};

use super::RuntimeError;

/// How requests to a shared session are gathered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct BatchConfig {
    /// Most items (rows along axis 0) in one run; 0 or 1 = no batching.
    pub max_batch: usize,
    /// Longest a leader waits for more items after its own request arrived.
    pub max_latency: Duration,
}

impl BatchConfig {
    /// Whether requests are gathered at all.
    pub fn is_on(&self) -> bool {
        self.max_batch > 1
    }
}

/// Outputs of a run, by name.
pub type Outputs = BTreeMap<String, ArrayD<f32>>;

/// Runs the session once on named inputs.
pub(crate) type RunFn<'a> =
    dyn Fn(&[(&str, ArrayViewD<'_, f32>)]) -> Result<Outputs, RuntimeError> + 'a;

struct Request {
    id: u64,
    inputs: Vec<(String, ArrayD<f32>)>,
    items: usize,
}

impl Request {
    /// What must agree for requests to share a run: the input names and every axis but
    /// the first (MTCNN's pyramid levels, say, differ in size and run apart).
    fn fits(&self, other: &Request) -> bool {
        self.inputs.len() == other.inputs.len()
            && self
                .inputs
                .iter()
                .zip(&other.inputs)
                .all(|((n, a), (m, b))| n == m && a.shape().get(1..) == b.shape().get(1..))
    }
}

#[derive(Default)]
struct Queue {
    next_id: u64,
    pending: Vec<Request>,
    leading: bool,
    results: HashMap<u64, Result<Outputs, RuntimeError>>,
    runs: u64,
}

/// The gathering point of one shared session.
pub(crate) struct Batcher {
    cfg: BatchConfig,
    queue: Mutex<Queue>,
    changed: Condvar,
}

impl Batcher {
    pub(crate) fn new(cfg: BatchConfig) -> Self {
        Batcher {
            cfg,
            queue: Mutex::new(Queue::default()),
            changed: Condvar::new(),
        }
    }

    /// Runs so far (each one session run, whatever the number of requests in it).
    pub(crate) fn runs(&self) -> u64 {
        self.queue.lock().unwrap_or_else(|e| e.into_inner()).runs
    }

    /// Requests so far.
    pub(crate) fn requests(&self) -> u64 {
        self.queue.lock().unwrap_or_else(|e| e.into_inner()).next_id
    }

    /// Submits one request of `items` rows (every input's axis 0) and waits for its rows
    /// of every output. `run` runs the session on concatenated inputs (called by
    /// whichever caller leads the batch).
    pub(crate) fn submit(
        &self,
        inputs: &[(&str, ArrayViewD<'_, f32>)],
        items: usize,
        run: &RunFn<'_>,
    ) -> Result<Outputs, RuntimeError> {
        let lock = || self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let mut q = lock();
        let id = q.next_id;
        q.next_id += 1;
        q.pending.push(Request {
            id,
            inputs: inputs
                .iter()
                .map(|(n, a)| ((*n).to_owned(), a.to_owned()))
                .collect(),
            items,
        });
        self.changed.notify_all();
        loop {
            if let Some(r) = q.results.remove(&id) {
                return r;
            }
            if !q.leading && q.pending.iter().any(|r| r.id == id) {
                q.leading = true;
                let deadline = Instant::now() + self.cfg.max_latency;
                // Only the leader removes requests, others append: our place is fixed.
                let mine = q.pending.iter().position(|r| r.id == id).unwrap_or(0);
                loop {
                    let me = &q.pending[mine];
                    let total: usize = q
                        .pending
                        .iter()
                        .filter(|r| r.fits(me))
                        .map(|r| r.items)
                        .sum();
                    let now = Instant::now();
                    if total >= self.cfg.max_batch || now >= deadline {
                        break;
                    }
                    q = self
                        .changed
                        .wait_timeout(q, deadline - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
                // Up to max_batch items of requests that fit ours, in arrival order; our
                // own request always goes.
                let me = q.pending.remove(mine);
                let mut n = me.items;
                let mut taken = Vec::new();
                let mut rest = Vec::new();
                for r in q.pending.drain(..) {
                    if r.fits(&me) && n + r.items <= self.cfg.max_batch.max(1) {
                        n += r.items;
                        taken.push(r);
                    } else {
                        rest.push(r);
                    }
                }
                taken.insert(0, me);
                q.pending = rest;
                q.leading = false;
                q.runs += 1;
                self.changed.notify_all();
                drop(q);
                let results = run_batch(&taken, run);
                q = lock();
                for (r, res) in taken.iter().zip(results) {
                    q.results.insert(r.id, res);
                }
                self.changed.notify_all();
                continue;
            }
            q = self.changed.wait(q).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// One run on the concatenated inputs of `taken`; each request's rows of every output.
fn run_batch(taken: &[Request], run: &RunFn<'_>) -> Vec<Result<Outputs, RuntimeError>> {
    // Every caller of the batch gets the error (as text: errors are not `Clone`).
    let all = |e: RuntimeError| {
        let (name, message) = match e {
            RuntimeError::Run { name, message } => (name, message),
            other => ("batch".to_owned(), other.to_string()),
        };
        taken
            .iter()
            .map(|_| {
                Err(RuntimeError::Run {
                    name: name.clone(),
                    message: message.clone(),
                })
            })
            .collect()
    };
    if let [only] = taken {
        let views: Vec<(&str, ArrayViewD<'_, f32>)> = only
            .inputs
            .iter()
            .map(|(n, a)| (n.as_str(), a.view()))
            .collect();
        return vec![run(&views)];
    }
    let mut joined: Vec<(String, ArrayD<f32>)> = Vec::new();
    for (k, (name, _)) in taken[0].inputs.iter().enumerate() {
        let parts: Vec<ArrayViewD<'_, f32>> = taken
            .iter()
            .filter_map(|r| r.inputs.get(k).filter(|(n, _)| n == name))
            .map(|(_, a)| a.view())
            .collect();
        if parts.len() != taken.len() {
            return all(RuntimeError::Run {
                name: "batch".into(),
                message: format!("batched requests disagree on input `{name}`"),
            });
        }
        match concatenate(Axis(0), &parts) {
            Ok(a) => joined.push((name.clone(), a)),
            Err(e) => {
                return all(RuntimeError::Run {
                    name: "batch".into(),
                    message: format!("batched requests cannot be joined on `{name}`: {e}"),
                });
            }
        }
    }
    let views: Vec<(&str, ArrayViewD<'_, f32>)> =
        joined.iter().map(|(n, a)| (n.as_str(), a.view())).collect();
    let out = match run(&views) {
        Ok(o) => o,
        Err(e) => return all(e),
    };
    let total: usize = taken.iter().map(|r| r.items).sum();
    let mut offset = 0;
    taken
        .iter()
        .map(|r| {
            let mut mine = Outputs::new();
            for (name, arr) in &out {
                if arr.ndim() == 0 || arr.shape()[0] != total {
                    return Err(RuntimeError::Run {
                        name: "batch".into(),
                        message: format!(
                            "output `{name}` has shape {:?}: its first axis is not the batch of {total}",
                            arr.shape()
                        ),
                    });
                }
                mine.insert(
                    name.clone(),
                    arr.slice_axis(Axis(0), (offset..offset + r.items).into())
                        .to_owned(),
                );
            }
            offset += r.items;
            Ok(mine)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{ArrayD, IxDyn};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// y = 2x + row sum, per row: a "model" whose rows do not mix.
    fn fake(inputs: &[(&str, ArrayViewD<'_, f32>)]) -> Result<Outputs, RuntimeError> {
        let x = &inputs[0].1;
        let mut y = x.mapv(|v| 2.0 * v);
        for (mut row, src) in y.outer_iter_mut().zip(x.outer_iter()) {
            let sum: f32 = src.iter().sum();
            row.mapv_inplace(|v| v + sum);
        }
        Ok(Outputs::from([("y".to_owned(), y)]))
    }

    fn request(k: usize, rows: usize) -> ArrayD<f32> {
        ArrayD::from_shape_fn(IxDyn(&[rows, 3]), |i| (k * 10 + i[0] * 3 + i[1]) as f32)
    }

    /// Submits `input(k)` from `n` threads at once through `b` with `run`; each
    /// thread's input and result, in thread order.
    fn from_threads(
        b: &Arc<Batcher>,
        n: usize,
        input: fn(usize) -> ArrayD<f32>,
        run: impl Fn(&[(&str, ArrayViewD<'_, f32>)]) -> Result<Outputs, RuntimeError>
        + Send
        + Sync
        + 'static,
    ) -> Vec<(ArrayD<f32>, Result<Outputs, RuntimeError>)> {
        let run = Arc::new(run);
        let handles: Vec<_> = (0..n)
            .map(|k| {
                let (b, run) = (b.clone(), run.clone());
                std::thread::spawn(move || {
                    let x = input(k);
                    let out = b.submit(&[("x", x.view())], x.shape()[0], &*run);
                    (x, out)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    }

    #[test]
    fn concurrent_requests_are_run_together_and_routed_back() {
        let b = Arc::new(Batcher::new(BatchConfig {
            max_batch: 8,
            max_latency: Duration::from_millis(200),
        }));
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let runs = from_threads(
            &b,
            8,
            |k| request(k, 1 + k % 2),
            move |i| {
                counted.fetch_add(1, Ordering::SeqCst);
                fake(i)
            },
        );
        for (x, out) in runs {
            assert_eq!(out.unwrap()["y"], fake(&[("x", x.view())]).unwrap()["y"]);
        }
        // 12 rows in batches of at most 8: fewer runs than requests.
        let runs = calls.load(Ordering::SeqCst);
        assert!((2..8).contains(&runs), "{runs} runs");
        assert_eq!(b.runs() as usize, runs);
    }

    #[test]
    fn a_lone_request_runs_at_the_deadline_and_a_full_batch_at_once() {
        let b = Batcher::new(BatchConfig {
            max_batch: 4,
            max_latency: Duration::from_millis(30),
        });
        let x = request(1, 2);
        // Nobody else comes: it runs alone once the deadline passes.
        let out = b.submit(&[("x", x.view())], 2, &fake).unwrap();
        assert_eq!(out["y"], fake(&[("x", x.view())]).unwrap()["y"]);
        // A request as large as the batch does not wait for anyone.
        let big = request(2, 4);
        let b = Batcher::new(BatchConfig {
            max_batch: 4,
            max_latency: Duration::from_secs(3600),
        });
        let out = b.submit(&[("x", big.view())], 4, &fake).unwrap();
        assert_eq!(out["y"].shape(), &[4, 3]);
    }

    #[test]
    fn errors_reach_every_caller_of_the_batch() {
        let b = Arc::new(Batcher::new(BatchConfig {
            max_batch: 2,
            max_latency: Duration::from_secs(5),
        }));
        let one = |k| request(k, 1);
        for (_, out) in from_threads(&b, 2, one, |_| {
            Err(RuntimeError::Run {
                name: "m".into(),
                message: "boom".into(),
            })
        }) {
            let e = out.unwrap_err();
            assert!(e.to_string().contains("boom"), "{e}");
        }
        // Outputs whose first axis is not the batch are refused, not mis-routed.
        let b = Arc::new(Batcher::new(BatchConfig {
            max_batch: 2,
            max_latency: Duration::from_secs(5),
        }));
        for (_, out) in from_threads(&b, 2, one, |_| {
            Ok(Outputs::from([(
                "y".to_owned(),
                ArrayD::zeros(IxDyn(&[1])),
            )]))
        }) {
            let e = out.unwrap_err();
            assert!(e.to_string().contains("not the batch"), "{e}");
        }
    }

    #[test]
    fn a_stream_that_stops_never_holds_the_others() {
        // One caller submits once and goes away; another keeps submitting alone: every
        // one of its calls completes (each at the deadline, there is nobody to wait for).
        let b = Arc::new(Batcher::new(BatchConfig {
            max_batch: 8,
            max_latency: Duration::from_millis(20),
        }));
        let b2 = b.clone();
        std::thread::spawn(move || {
            let x = request(9, 1);
            b2.submit(&[("x", x.view())], 1, &fake).unwrap();
        })
        .join()
        .unwrap();
        for k in 0..5 {
            let x = request(k, 1);
            let out = b.submit(&[("x", x.view())], 1, &fake).unwrap();
            assert_eq!(out["y"], fake(&[("x", x.view())]).unwrap()["y"]);
        }
    }

    #[test]
    fn requests_of_other_shapes_run_apart() {
        let b = Arc::new(Batcher::new(BatchConfig {
            max_batch: 8,
            max_latency: Duration::from_millis(100),
        }));
        // Two requests of 3 columns, two of 5.
        let input = |k: usize| {
            let cols = if k.is_multiple_of(2) { 3 } else { 5 };
            ArrayD::from_shape_fn(IxDyn(&[1, cols]), |i| (k + i[1]) as f32)
        };
        for (x, out) in from_threads(&b, 4, input, fake) {
            assert_eq!(out.unwrap()["y"], fake(&[("x", x.view())]).unwrap()["y"]);
        }
        assert!(b.runs() >= 2);
    }
}
