"""Shared pieces of the Python-side benchmarks (bench/facecrop, bench/pipeline,
bench/longrun): GStreamer start-up, counting rendered frames, an onnxruntime session, and the orchestrator's
pinned child processes with their check for other processes on the measured cores."""

import json
import os
import resource
import subprocess
import sys
import time


def gst_init():
    import gi

    gi.require_version("Gst", "1.0")
    from gi.repository import Gst

    Gst.init(None)
    return Gst


def rendered(sink):
    """Buffers a sink has rendered, from its own `stats` counter: counting this way runs no
    Python callback in a streaming thread the benchmark measures. After preroll the sink
    holds one buffer (already processed upstream) that it renders in PLAYING."""
    return sink.get_property("stats").get_uint64("rendered")[1]


PREROLLED = 1  # buffers processed before PLAYING: the one the sink prerolled on


def make_session(path, threads):
    """onnxruntime CPU session with `threads` intra-op threads (one inter-op thread)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    return ort.InferenceSession(path, sess_options=so, providers=["CPUExecutionProvider"])


def cpu_busy(cpus):
    """Busy seconds (not idle, not iowait) of the given CPUs so far, from /proc/stat."""
    tick = os.sysconf("SC_CLK_TCK")
    busy = 0
    with open("/proc/stat") as f:
        for line in f:
            name, *vals = line.split()
            if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
                v = [int(x) for x in vals]
                busy += sum(v[:8]) - v[3] - v[4]  # user..steal, less idle and iowait
    return busy / tick


FOREIGN = []  # (label, share of the measured cores used by other processes)


def run_child(script, cpus, args, label=""):
    """Runs `script` with `args` in a child pinned with taskset; notes how much of the
    pinned cores other processes took meanwhile (a busy machine makes the numbers
    meaningless). Returns the JSON object the child printed last."""
    cmd = ["taskset", "-c", cpus, sys.executable, os.path.abspath(script), *args]
    ids = {int(c) for c in cpus.split(",")}
    r0, b0, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), cpu_busy(ids), time.perf_counter()
    res = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    r1, b1, t1 = resource.getrusage(resource.RUSAGE_CHILDREN), cpu_busy(ids), time.perf_counter()
    if res.returncode != 0:
        raise SystemExit(f"benchmark child failed ({res.returncode}): {' '.join(cmd)}")
    own = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
    FOREIGN.append((label, max(0.0, (b1 - b0) - own) / ((t1 - t0) * len(ids))))
    return json.loads(res.stdout.strip().splitlines()[-1])
