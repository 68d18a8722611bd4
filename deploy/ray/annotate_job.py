"""An archive annotated on a Ray cluster: each Ray task runs `affect-annotate` on a batch
of the inputs, with the CPUs (and GPUs) it declares, into one shared output folder.

    python deploy/ray/annotate_job.py --address HEAD:6379 --list LIST --output /shared/out

- LIST: a local path or any fsspec URL (s3://, gs://, http(s)://, ...: fsspec's protocol
  packages must be installed); one input per line, `#` comments. Inputs are what
  `affect-annotate` opens on the worker: paths on a filesystem every node mounts at the
  same place, or URIs (file://, http(s)://, rtsp://, srt://).
- OUTPUT: a folder every node mounts at the same path (NFS, CephFS, ...). Each input's
  result folder appears there atomically (assembled in OUTPUT/.tmp, then renamed) with a
  keyed manifest entry, so a task that is run again skips what is finished.
- A task whose worker or node dies is retried by Ray (`--max-retries`); its affect-annotate
  process dies with it (parent-death signal) and the retry resumes the batch. An input
  that fails (bad file) is recorded as failed in its summary and not retried.
- Progress: one line per finished batch (inputs done, inputs/hour, ETA), and the
  affect-annotate lines of every task (Ray forwards workers' output to the driver).
- The run summary (OUTPUT/ray-run-summary.json) lists every input with its status; the
  exit code is 1 when any input failed.
"""

import argparse
import ctypes
import json
import os
import pathlib
import resource
import signal
import subprocess
import sys
import tempfile
import time

import fsspec
import ray


def read_list(url):
    """The inputs of a list file (local path or fsspec URL)."""
    with fsspec.open(url, "rt") as f:
        lines = [line.strip() for line in f]
    return [line for line in lines if line and not line.startswith("#")]


def batches_of(inputs, size):
    return [inputs[i : i + size] for i in range(0, len(inputs), size)]


def _die_with_parent():
    """In the child: SIGKILL when the Ray worker that started it dies (prctl PR_SET_PDEATHSIG)."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGKILL)


@ray.remote
def annotate_batch(index, inputs, output, binary, jobs, extra):
    """Runs affect-annotate on `inputs`; returns its run summary and where it ran."""
    state = pathlib.Path(output) / ".ray"
    state.mkdir(parents=True, exist_ok=True)
    ctx = ray.get_runtime_context()
    # Attempts so far of this batch (a file per attempt: a retry sees its predecessors).
    attempt = len(list(state.glob(f"batch-{index:05d}.attempt-*"))) + 1
    marker = state / f"batch-{index:05d}.attempt-{attempt}"
    marker.write_text(json.dumps({"pid": os.getpid(), "node": ctx.get_node_id(), "started": time.time()}))
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(inputs) + "\n")
        list_path = f.name
    summary = state / f"batch-{index:05d}.summary.json"
    cmd = [binary, "--list", list_path, "--output", output, "--jobs", str(jobs),
           "--progress", "lines", "--run-summary", str(summary), *extra]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        proc = subprocess.run(cmd, preexec_fn=_die_with_parent, stdout=sys.stdout, stderr=sys.stderr)
    finally:
        os.unlink(list_path)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode not in (0, 1):
        # Usage errors, a crash: the task fails (and is not retried: same input, same end).
        raise RuntimeError(f"affect-annotate exited {proc.returncode} on batch {index}")
    run = json.loads(summary.read_text())
    return {"index": index, "attempt": attempt, "node": ctx.get_node_id(), "pid": os.getpid(), "run": run,
            "cpu_seconds": cpu}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--address", default=os.environ.get("RAY_ADDRESS", "auto"), help="Ray cluster (HOST:PORT, ray://..., auto)")
    ap.add_argument("--list", required=True, help="list of inputs: a path or an fsspec URL")
    ap.add_argument("--output", required=True, help="shared output folder (same path on every node)")
    ap.add_argument("--binary", default="affect-annotate", help="affect-annotate on the workers")
    ap.add_argument("--batch-size", type=int, default=8, help="inputs per task")
    ap.add_argument("--cpus-per-task", type=float, default=1.0)
    ap.add_argument("--gpus-per-task", type=float, default=0.0)
    ap.add_argument("--jobs-per-task", type=int, default=1, help="pipelines per task (affect-annotate --jobs)")
    ap.add_argument("--max-retries", type=int, default=3, help="retries of a task whose worker died")
    ap.add_argument("--annotate-arg", action="append", default=[], help="extra affect-annotate argument (repeatable)")
    args = ap.parse_args(argv)

    inputs = read_list(args.list)
    if not inputs:
        sys.exit("annotate_job: the list has no inputs")
    output = os.path.abspath(args.output)
    os.makedirs(output, exist_ok=True)
    batches = batches_of(inputs, max(1, args.batch_size))
    ray.init(address=args.address, log_to_driver=True)
    task = annotate_batch.options(
        num_cpus=args.cpus_per_task, num_gpus=args.gpus_per_task,
        max_retries=args.max_retries, retry_exceptions=False,
    )
    started = time.monotonic()
    pending = {task.remote(i, b, output, args.binary, args.jobs_per_task, args.annotate_arg): i
               for i, b in enumerate(batches)}
    print(f"annotate_job: {len(inputs)} inputs in {len(batches)} tasks on "
          f"{len(ray.nodes())} nodes ({ray.cluster_resources().get('CPU', 0):.0f} CPUs)", flush=True)
    results, broken = [], []
    done_inputs = 0
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        index = pending.pop(ready[0])
        try:
            r = ray.get(ready[0])
        except Exception as e:  # a task that failed for good (retries used up, bad binary)
            broken.append({"batch": index, "inputs": batches[index], "error": str(e).splitlines()[0]})
            print(f"annotate_job: batch {index} failed: {broken[-1]['error']}", flush=True)
            continue
        results.append(r)
        done_inputs += len(batches[index])
        elapsed = time.monotonic() - started
        rate = done_inputs / elapsed * 3600 if elapsed > 0 else 0
        eta = (len(inputs) - done_inputs) / (done_inputs / elapsed) if done_inputs else float("nan")
        print(f"annotate_job: progress {done_inputs}/{len(inputs)} inputs, {len(results)}/{len(batches)} tasks, "
              f"{rate:.0f} inputs/hour, eta {eta:.0f} s (batch {index} attempt {r['attempt']})", flush=True)
    wall = time.monotonic() - started
    per_input = [x for r in sorted(results, key=lambda r: r["index"]) for x in r["run"]["results"]]
    failed = [x for x in per_input if x["status"] != "ok"]
    errors = [e for r in results for e in r["run"]["errors"]]
    summary = {
        "inputs": len(inputs),
        "tasks": len(batches),
        "ok": len(per_input) - len(failed),
        "failed": len(failed) + sum(len(b["inputs"]) for b in broken),
        "retried_tasks": sum(1 for r in results if r["attempt"] > 1),
        "nodes": sorted({r["node"] for r in results}),
        "wall_seconds": wall,
        "inputs_per_hour": len(inputs) * 3600 / wall if wall > 0 else 0,
        "cpus": ray.cluster_resources().get("CPU", 0),
        "media_seconds": sum(r["run"].get("media_seconds", 0) for r in results),
        "cpu_seconds": sum(r["cpu_seconds"] for r in results),
        "errors": errors,
        "broken_tasks": broken,
        "results": per_input,
        "attempts": [{"batch": r["index"], "attempt": r["attempt"], "node": r["node"]} for r in results],
    }
    tmp = pathlib.Path(output) / ".ray-run-summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2))
    os.replace(tmp, pathlib.Path(output) / "ray-run-summary.json")
    print(f"annotate_job: {summary['ok']} ok, {summary['failed']} failed, {summary['retried_tasks']} tasks retried, "
          f"{wall:.1f} s, {summary['inputs_per_hour']:.0f} inputs/hour", flush=True)
    return 0 if summary["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
