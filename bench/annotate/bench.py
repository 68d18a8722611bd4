"""Archive throughput of affect-annotate (release build) on this machine, side by side in
one run: `--jobs 1` vs `--jobs 2`, and the Ray job (deploy/ray/annotate_job.py) on a local
head node with 2 CPUs vs `affect-annotate --jobs 2` (the engine's overhead, as a ratio), in
three shapes: 2 one-CPU tasks at a time, each `affect-annotate --jobs 1` on a batch of N/4
inputs (4 tasks) or of N/2 (one task per worker); and one 2-CPU task of all N inputs running
`--jobs 2` (the local run inside one Ray task: Ray's own cost alone). Each configuration runs
twice, interleaved, on a fresh output folder each time; the figures are the means, with
both runs shown (other work on the machine makes single runs noisy).

Inputs: N copies of the demo clip (the README's full AV pipeline, face mesh on).
Inputs/hour = inputs / wall time; real-time factor = media seconds / wall seconds.
Ray's wall time is the job's (from its first task submitted to its last result), not the
cluster's start-up, which is reported apart.

usage: bench.py AFFECT_ANNOTATE MEDIA_CLIP [N]   (python of tests/python/ray-venv.sh)
"""

import json
import os
import pathlib
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

JOB = pathlib.Path(__file__).resolve().parent.parent.parent / "deploy" / "ray" / "annotate_job.py"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def local_run(binary, lst, out, jobs):
    t0 = time.monotonic()
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([binary, "--list", str(lst), "-o", str(out), "--jobs", str(jobs), "--progress", "none"],
                   check=True, stderr=subprocess.DEVNULL)
    wall = time.monotonic() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    s = json.loads((out / "run-summary.json").read_text())
    assert s["ok"] == s["inputs"], s
    return wall, s["media_seconds"], (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime), 0.0


def group_cpu(pgid):
    """CPU seconds used so far by the live processes of a process group (Ray's own)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for d in pathlib.Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            f = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(f[2]) == pgid:  # fields after the name: state ppid pgrp ... utime(11) stime(12)
            total += int(f[11]) + int(f[12])
    return total / tick


RAY_PGID = None


def ray_run(binary, lst, out, address, batch, cpus, jobs):
    c0 = group_cpu(RAY_PGID)
    subprocess.run([sys.executable, str(JOB), "--address", address, "--list", str(lst), "--output", str(out),
                    "--binary", binary, "--batch-size", str(batch), "--cpus-per-task", str(cpus),
                    "--jobs-per-task", str(jobs)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    s = json.loads((out / "ray-run-summary.json").read_text())
    assert s["ok"] == s["inputs"], s
    return s["wall_seconds"], s["media_seconds"], s["cpu_seconds"], group_cpu(RAY_PGID) - c0


def main():
    binary, clip = sys.argv[1], pathlib.Path(sys.argv[2])
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 32
    work = pathlib.Path(tempfile.mkdtemp(prefix="afb-", dir="/tmp"))
    head = None
    try:
        for i in range(n):
            shutil.copy(clip, work / f"in{i:03d}.mp4")
        lst = work / "list.txt"
        lst.write_text("".join(f"{work / f'in{i:03d}.mp4'}\n" for i in range(n)))
        port = free_port()
        env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
        t0 = time.monotonic()
        head = subprocess.Popen([str(pathlib.Path(sys.executable).parent / "ray"), "start", "--head", "--port", str(port),
                                 "--num-cpus", "2", "--include-dashboard=false", "--node-ip-address", "127.0.0.1",
                                 "--object-store-memory", str(80 * 1024 * 1024), "--temp-dir", str(work / "ray"),
                                 "--disable-usage-stats", "--block"],
                                env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        global RAY_PGID
        RAY_PGID = head.pid
        import ray
        while True:
            try:
                ray.init(address=f"127.0.0.1:{port}", logging_level="ERROR")
                break
            except Exception:
                if time.monotonic() - t0 > 120:
                    raise
                time.sleep(1)
        ray.shutdown()
        cluster_up = time.monotonic() - t0
        batch = max(1, n // 4)
        runs = {"jobs1": [], "jobs2": [], "ray2": [], "ray2one": [], "ray1x2": []}
        k = 0
        for _ in range(2):
            for name in runs:
                k += 1
                out = work / f"out{k}"
                if name == "ray2":
                    runs[name].append(ray_run(binary, lst, out, f"127.0.0.1:{port}", batch, 1, 1))
                elif name == "ray2one":
                    runs[name].append(ray_run(binary, lst, out, f"127.0.0.1:{port}", (n + 1) // 2, 1, 1))
                elif name == "ray1x2":
                    runs[name].append(ray_run(binary, lst, out, f"127.0.0.1:{port}", n, 2, 2))
                else:
                    runs[name].append(local_run(binary, lst, out, int(name[-1])))
                shutil.rmtree(out)
        print(f"archive: {n} copies of {clip.name} ({runs['jobs1'][0][1] / n:.2f} s of media each), "
              f"{os.cpu_count()} cores, release build, face mesh on")
        mean, cpu, own = {}, {}, {}
        for name, rs in runs.items():
            walls = [w for w, _, _, _ in rs]
            media = rs[0][1]
            w = sum(walls) / len(walls)
            mean[name] = w
            cpu[name] = sum(c for _, _, c, _ in rs) / len(rs) / n
            own[name] = sum(o for _, _, _, o in rs) / len(rs)
            label = {"jobs1": "affect-annotate --jobs 1", "jobs2": "affect-annotate --jobs 2",
                     "ray2": f"Ray, 2 x 1 CPU, --jobs 1, tasks of {batch}",
                     "ray2one": f"Ray, 2 x 1 CPU, --jobs 1, tasks of {(n + 1) // 2}",
                     "ray1x2": f"Ray, 1 x 2 CPUs, --jobs 2, a task of {n}"}[name]
            print(f"  {label:<38} {n * 3600 / w:7.0f} inputs/hour  {n * 3600 / w / 2:6.0f} inputs/hour/core  "
                  f"real-time factor {media / w:5.2f}  cpu {cpu[name]:.2f} s/input  "
                  f"(wall {' / '.join(f'{x:.1f}' for x in walls)} s)")
        print(f"  --jobs 2 vs --jobs 1: {mean['jobs1'] / mean['jobs2']:.2f}x the throughput")
        for name in ("ray2", "ray2one", "ray1x2"):
            ratio = mean["jobs2"] / mean[name]
            total = (cpu[name] * n + own[name]) / (cpu["jobs2"] * n)
            print(f"  {name}: Ray vs --jobs 2: {ratio:.3f} of the local throughput by wall time "
                  f"(overhead {100 * (1 - ratio):+.1f} %; target: within 10 %); by CPU: {total:.3f}x the local "
                  f"CPU (affect-annotate {cpu[name] / cpu['jobs2']:.3f}x, Ray's own processes {own[name]:.1f} CPU-s)")
        print(f"  Ray cluster start {cluster_up:.1f} s, not counted")
        print(f"  load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores "
              "(other work on the machine makes wall times noisy; CPU seconds much less so)")
    finally:
        if head is not None:
            try:
                os.killpg(head.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            head.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
