"""The Ray job under a node failure, on this machine: a head node and a second worker node
(both on loopback, one CPU each), N inputs (copies of the test clips), the worker node
killed (SIGKILL to its whole process group) while it annotates an input. Afterwards every
input must have exactly one complete result, equal to an uninterrupted affect-annotate
run's, nothing half-written may be visible, and at least one task must have been retried.

usage: ray_fault_test.py AFFECT_ANNOTATE N_INPUTS MEDIA_DIR
Run with the python of tests/python/ray-venv.sh. Stops only the Ray processes it started.
"""

import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import ray

HERE = pathlib.Path(__file__).resolve().parent
JOB = HERE.parent.parent / "deploy" / "ray" / "annotate_job.py"
CLIPS = ["sample.mp4", "single_face.mp4", "no_face.mp4"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fail(msg):
    raise SystemExit(f"ray_fault_test: FAILED: {msg}")


def result_dirs(out):
    return sorted(p for p in out.iterdir() if p.is_dir() and not p.name.startswith("."))


def main():
    binary, n, media = sys.argv[1], int(sys.argv[2]), pathlib.Path(sys.argv[3])
    work = pathlib.Path(tempfile.mkdtemp(prefix="afr-", dir="/tmp"))  # short: Ray's socket paths
    procs = []  # Ray nodes: each in its own process group
    driver = None
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0",
               RAY_health_check_period_ms="500", RAY_health_check_failure_threshold="4",
               RAY_health_check_initial_delay_ms="1000")
    t_start = time.monotonic()
    try:
        # Inputs and the uninterrupted reference.
        (work / "in").mkdir()
        inputs = []
        for i in range(n):
            clip = CLIPS[i % len(CLIPS)]
            p = work / "in" / f"in{i:02d}_{clip}"
            shutil.copy(media / clip, p)
            inputs.append((p, clip))
        (work / "list.txt").write_text("".join(f"{p}\n" for p, _ in inputs))
        ref = work / "ref"
        subprocess.run([binary, "-o", str(ref), "--progress", "none", *[str(media / c) for c in CLIPS]],
                       check=True, stderr=subprocess.DEVNULL)
        reference = {}
        for d in result_dirs(ref):
            s = json.loads((d / "summary.json").read_text())
            reference[pathlib.Path(s["input"]).name] = (d / "affect.ndjson").read_bytes()

        # The cluster: head + one worker node, one CPU each.
        port = free_port()
        ray_bin = str(pathlib.Path(sys.executable).parent / "ray")
        common = ["--num-cpus", "1", "--node-ip-address", "127.0.0.1",
                  "--object-store-memory", str(80 * 1024 * 1024), "--disable-usage-stats", "--block"]
        head = subprocess.Popen([ray_bin, "start", "--head", "--port", str(port), "--include-dashboard=false",
                                 "--temp-dir", str(work / "ray"), *common],
                                env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(head)
        address = f"127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                ray.init(address=address, logging_level="ERROR", log_to_driver=False)
                break
            except Exception:
                if time.monotonic() > deadline:
                    fail("the head node did not start")
                time.sleep(1)
        head_id = ray.get_runtime_context().get_node_id()
        worker = subprocess.Popen([ray_bin, "start", "--address", address, *common],
                                  env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(worker)
        while len([x for x in ray.nodes() if x["Alive"]]) < 2:
            if time.monotonic() > deadline:
                fail("the worker node did not join")
            time.sleep(0.5)
        worker_id = next(x["NodeID"] for x in ray.nodes() if x["Alive"] and x["NodeID"] != head_id)
        ray.shutdown()
        cluster_up = time.monotonic() - t_start

        # The job, and the worker node killed in the middle of an input.
        out = work / "out"
        # The list as a URL: read through fsspec.
        driver = subprocess.Popen([sys.executable, str(JOB), "--address", address, "--list", f"file://{work}/list.txt",
                                   "--output", str(out), "--binary", binary, "--batch-size", "1"],
                                  env=env, stdout=open(work / "driver.log", "w"), stderr=subprocess.STDOUT)
        killed = None
        deadline = time.monotonic() + 300
        while killed is None:
            if driver.poll() is not None:
                fail("the job ended before the worker node could be killed:\n" + (work / "driver.log").read_text())
            if time.monotonic() > deadline:
                fail("no task ran on the worker node")
            state = out / ".ray"
            for m in sorted(state.glob("batch-*.attempt-1")) if state.exists() else []:
                try:
                    info = json.loads(m.read_text())
                except ValueError:
                    continue
                batch = m.name.split(".")[0]
                busy = (out / ".tmp").exists() and any((out / ".tmp").iterdir())
                if (info["node"] == worker_id and not (state / f"{batch}.summary.json").exists()
                        and busy and len(result_dirs(out)) >= max(1, n // 4)):
                    os.killpg(worker.pid, signal.SIGKILL)
                    try:
                        os.kill(info["pid"], signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    killed = batch
                    break
            time.sleep(0.05)
        done_at_kill = len(result_dirs(out))
        try:
            rc = driver.wait(timeout=600)
        except subprocess.TimeoutExpired:
            fail("the job did not finish within 600 s after the kill")
        log = (work / "driver.log").read_text()
        if rc != 0:
            fail(f"the job exited {rc}:\n{log}")

        # Every input exactly once, complete, equal to the reference; nothing half-written.
        summary = json.loads((out / "ray-run-summary.json").read_text())
        if summary["ok"] != n or summary["failed"] != 0:
            fail(f"{summary['ok']} ok, {summary['failed']} failed of {n}")
        if summary["retried_tasks"] < 1:
            fail(f"no task was retried after the kill of {killed}")
        dirs = result_dirs(out)
        if len(dirs) != n:
            fail(f"{len(dirs)} result folders for {n} inputs")
        seen = set()
        for d in dirs:
            s = json.loads((d / "summary.json").read_text())
            if s["status"] != "ok":
                fail(f"{d.name}: {s['status']}")
            name = pathlib.Path(s["input"]).name
            if name in seen:
                fail(f"{name} has two results")
            seen.add(name)
            clip = name.split("_", 1)[1]
            if (d / "affect.ndjson").read_bytes() != reference[clip]:
                fail(f"{d.name}: NDJSON differs from the uninterrupted run of {clip}")
        if seen != {p.name for p, _ in inputs}:
            fail("results do not match the inputs")
        leftovers = list((out / ".tmp").iterdir()) if (out / ".tmp").exists() else []
        if leftovers:
            fail(f"left in the staging area: {leftovers}")
        print(f"ray_fault_test: {n} inputs on 2 nodes, worker node killed during {killed} "
              f"({done_at_kill} results in); {summary['retried_tasks']} task(s) retried; all {n} results complete "
              f"and equal to an uninterrupted run; job {summary['wall_seconds']:.1f} s "
              f"({summary['inputs_per_hour']:.0f} inputs/hour), cluster start {cluster_up:.1f} s: passed")
    finally:
        if driver is not None and driver.poll() is None:
            driver.kill()
            driver.wait()
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
