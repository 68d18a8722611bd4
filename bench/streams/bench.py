"""Many streams, one process: throughput and resident memory of N pipelines in one
process against N separate processes, in one run.

Clip: the demo clip (.cache/media/sample.mp4: 640x360 30 fps, 2.4 s, one face, speech)
concatenated `--passes` times without re-encoding (concat ! mp4mux, cached under --work).
Pipeline (the README's, to fakesink sync=false), every element at its defaults:

    filesrc ! decodebin
      video: queue ! videoconvert ! facecrop ! queue ! featextract ! queue ! avfuse
      audio: queue ! audioconvert ! audioresample ! F32LE 48 kHz mono
             ! audiodenoise vad=silero ! featextract ! queue ! avfuse.audio_sink

Every measurement runs in child processes pinned with `taskset` to the same cores (all
allowed, by default both):

* idle: a process with GStreamer initialised and the plugin loaded, nothing else: its
  resident memory is the floor every process pays.
* one process, N pipelines (N = 1, 4, 8): all built, prerolled in PAUSED (models loaded),
  then set to PLAYING together; timed PLAYING -> every pipeline's EOS. The buses are
  drained meanwhile (avfuse posts a message per frame by default; an application reads
  them). Default `share-session=true` (one ONNX Runtime session per model per process),
  and again with `share-session=false` on every model-running element (facecrop, both
  featextracts, audiodenoise, avfuse: a session each).
* separate processes: N children, each one pipeline, started together; each prerolls,
  says so, and waits; when all are ready they are told to play; the span is the first
  PLAYING to the last EOS (CLOCK_MONOTONIC, the same clock in every process).
* adaptive: one pipeline with `facecrop detect-interval=0` and `featextract interval=0` on
  the video branch (detector / face model only when the picture / the face crop changed).

Numbers: wall of the span; aggregate real-time factor = media played by all streams in
the span / wall; total = launch -> every process exited (start-up, model loading and
preroll included); peak resident memory = VmHWM of the process (of every process,
summed, for separate processes); memory per added stream = (peak(N) - peak(1)) / (N - 1).
Best of `--repeat` (interleaved) by aggregate real-time factor; peak memory from the
same run.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from benchlib import PREROLLED, cpu_busy, gst_init, rendered  # noqa: E402

FPS = 30
NS = (1, 4, 8)
MODEL_ELEMENTS = ("facecrop", "featextract", "audiodenoise", "avfuse")

# targets of the issue
MB_PER_STREAM = 40.0
ADAPTIVE_RTF = 12.0


# --------------------------------------------------------------------------- set-up


def gst_run(Gst, desc, what):
    p = Gst.parse_launch(desc)
    p.set_state(Gst.State.PLAYING)
    msg = p.get_bus().timed_pop_filtered(300 * Gst.SECOND, Gst.MessageType.EOS | Gst.MessageType.ERROR)
    p.set_state(Gst.State.NULL)
    if msg is None or msg.type != Gst.MessageType.EOS:
        raise SystemExit(f"{what} failed: {msg.parse_error() if msg else 'timeout'}")


def loop_clip(media, work, passes):
    """The clip concatenated `passes` times without re-encoding (as bench/pipeline does)."""
    os.makedirs(work, exist_ok=True)
    clip = os.path.join(work, f"sample-x{passes}.mp4")
    key = f"{os.path.abspath(media)} {os.path.getsize(media)} {int(os.path.getmtime(media))} {passes} v1"
    stamp = clip + ".stamp"
    if not (os.path.exists(clip) and os.path.exists(stamp) and open(stamp).read() == key):
        Gst = gst_init()
        srcs = " ".join(
            f"filesrc location={media} ! qtdemux name=d{i} d{i}.video_0 ! queue ! cv. d{i}.audio_0 ! queue ! ca."
            for i in range(passes)
        )
        gst_run(Gst, f"concat name=cv ! h264parse ! queue ! mp4mux name=m ! filesink location={clip} "
                     f"concat name=ca ! aacparse ! queue ! m. {srcs}", "looping the clip")
        with open(stamp, "w") as f:
            f.write(key)
    return clip


def pipeline_desc(clip, idx, share=True, variant="demo"):
    s = "" if share else " share-session=false"
    video = {
        "demo": f"facecrop{s} ! queue ! featextract{s}",
        "adaptive": f"facecrop detect-interval=0{s} ! queue ! featextract interval=0{s}",
    }[variant]
    return (
        f'filesrc location="{clip}" ! decodebin name=d{idx} '
        f"d{idx}. ! queue ! videoconvert ! {video} ! queue "
        f"! avfuse name=f{idx}{s} ! fakesink name=out{idx} sync=false "
        f"d{idx}. ! queue ! audioconvert ! audioresample ! audio/x-raw,format=F32LE,rate=48000,channels=1 "
        f"! audiodenoise vad=silero{s} ! featextract{s} ! queue ! f{idx}.audio_sink"
    )


def vm_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


# --------------------------------------------------------------------------- children


def child_idle(_a):
    Gst = gst_init()
    for name in MODEL_ELEMENTS:
        if Gst.ElementFactory.find(name) is None:
            raise SystemExit(f"{name} not found (GST_PLUGIN_PATH)")
        Gst.ElementFactory.find(name).load()
    print(json.dumps({"rss_kb": vm_kb("VmRSS"), "hwm_kb": vm_kb("VmHWM")}))


def child_run(a):
    """`--n` pipelines in this process: preroll all, play all, wait for every EOS."""
    Gst = gst_init()
    for name in MODEL_ELEMENTS:
        if Gst.ElementFactory.find(name) is None:
            raise SystemExit(f"{name} not found (GST_PLUGIN_PATH)")
    pipes = [Gst.parse_launch(pipeline_desc(a.clip, i, a.share == 1, a.variant)) for i in range(a.n)]
    sinks = [p.get_by_name(f"out{i}") for i, p in enumerate(pipes)]
    buses = [p.get_bus() for p in pipes]
    for p in pipes:
        p.set_state(Gst.State.PAUSED)
    for p, bus in zip(pipes, buses):
        ret, _, _ = p.get_state(300 * Gst.SECOND)
        if ret == Gst.StateChangeReturn.FAILURE:
            msg = bus.pop_filtered(Gst.MessageType.ERROR)
            raise SystemExit(f"pipeline failed to preroll: {msg.parse_error() if msg else ret}")
    rss_ready = vm_kb("VmRSS")
    if a.barrier:
        print("ready", flush=True)
        if sys.stdin.readline().strip() != "go":
            raise SystemExit("no go")
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.monotonic()
    for p in pipes:
        p.set_state(Gst.State.PLAYING)
    done = [None] * a.n
    deadline = t0 + 900
    want = Gst.MessageType.EOS | Gst.MessageType.ERROR
    # Round robin over the buses: drains every bus (the filter drops other messages, e.g.
    # avfuse's per-frame ones) and notes each pipeline's EOS within ~10 ms.
    while any(d is None for d in done):
        if time.monotonic() > deadline:
            raise SystemExit("timeout waiting for EOS")
        for i, bus in enumerate(buses):
            if done[i] is not None:
                continue
            msg = bus.timed_pop_filtered(10 * Gst.MSECOND // max(1, a.n), want)
            if msg is None:
                continue
            if msg.type == Gst.MessageType.ERROR:
                raise SystemExit(f"pipeline {i} failed: {msg.parse_error()}")
            done[i] = time.monotonic()
    t1 = max(done)
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    frames = [rendered(s) - PREROLLED for s in sinks]
    rss_end = vm_kb("VmRSS")
    hwm = vm_kb("VmHWM")
    for p in pipes:
        p.set_state(Gst.State.NULL)
    print(json.dumps({
        "t0": t0, "t1": t1, "seconds": t1 - t0, "frames": frames, "media_s": sum(frames) / FPS,
        "cpu": (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime),
        "rss_ready_kb": rss_ready, "rss_end_kb": rss_end, "hwm_kb": hwm,
    }))


# --------------------------------------------------------------------------- orchestration


class Runner:
    def __init__(self, cpus, work, clip):
        self.cpus, self.work, self.clip = cpus, work, clip
        self.ids = {int(c) for c in cpus.split(",")}
        self.foreign = []  # (label, share of the pinned cores other processes used)

    def cmd(self, *args):
        return ["taskset", "-c", self.cpus, sys.executable, os.path.abspath(__file__),
                "--work", self.work, "--media", "-", "--clip", self.clip, *args]

    def spawn(self, nproc, args, label):
        """`nproc` children with `args`; with nproc > 1 (or barrier) they meet before
        playing. Returns (their JSON results, launch -> all exited seconds)."""
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        b0, t0 = cpu_busy(self.ids), time.perf_counter()
        barrier = nproc > 1
        extra = ["--barrier"] if barrier else []
        procs = [subprocess.Popen(self.cmd(*args, *extra), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True) for _ in range(nproc)]
        if barrier:
            for p in procs:
                line = p.stdout.readline().strip()
                if line != "ready":
                    for q in procs:
                        q.kill()
                    raise SystemExit(f"benchmark child did not get ready ({label}): {line!r}")
            for p in procs:
                p.stdin.write("go\n")
                p.stdin.flush()
        outs = []
        for p in procs:
            out, _ = p.communicate()
            if p.returncode != 0:
                raise SystemExit(f"benchmark child failed ({p.returncode}): {label}")
            outs.append(json.loads(out.strip().splitlines()[-1]))
        t1, b1 = time.perf_counter(), cpu_busy(self.ids)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        own = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
        self.foreign.append((label, max(0.0, (b1 - b0) - own) / ((t1 - t0) * len(self.ids))))
        return outs, t1 - t0

    def one_process(self, n, share=True, variant="demo"):
        label = f"one process N={n}" + ("" if share else " unshared") + ("" if variant == "demo" else f" {variant}")
        [r], total = self.spawn(1, ["--child", "run", "--n", str(n), "--share", str(int(share)),
                                    "--variant", variant], label)
        return {"seconds": r["seconds"], "media_s": r["media_s"], "rtf": r["media_s"] / r["seconds"],
                "cpu": r["cpu"], "hwm_mb": r["hwm_kb"] / 1024, "ready_mb": r["rss_ready_kb"] / 1024,
                "total": total, "frames": r["frames"]}

    def separate(self, n):
        rs, total = self.spawn(n, ["--child", "run", "--n", "1"], f"separate N={n}")
        span = max(r["t1"] for r in rs) - min(r["t0"] for r in rs)
        media = sum(r["media_s"] for r in rs)
        return {"seconds": span, "media_s": media, "rtf": media / span, "cpu": sum(r["cpu"] for r in rs),
                "hwm_mb": sum(r["hwm_kb"] for r in rs) / 1024, "ready_mb": sum(r["rss_ready_kb"] for r in rs) / 1024,
                "total": total, "frames": [f for r in rs for f in r["frames"]]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--media", required=True)
    ap.add_argument("--passes", type=int, default=6)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--child", choices=["idle", "run"])
    ap.add_argument("--clip")
    ap.add_argument("--n", type=int, default=1)
    ap.add_argument("--share", type=int, default=1)
    ap.add_argument("--variant", default="demo", choices=["demo", "adaptive"])
    ap.add_argument("--barrier", action="store_true")
    a = ap.parse_args()
    if a.child:
        return {"idle": child_idle, "run": child_run}[a.child](a)

    allowed = sorted(os.sched_getaffinity(0))
    cores = max(1, min(a.cores, len(allowed)))
    cpus = ",".join(str(c) for c in allowed[:cores])
    clip = loop_clip(a.media, a.work, a.passes)
    run = Runner(cpus, a.work, clip)
    t_start = time.perf_counter()

    [idle], _ = run.spawn(1, ["--child", "idle"], "idle")
    plans = {}
    for n in NS:
        plans[("one", n)] = lambda n=n: run.one_process(n)
        plans[("unshared", n)] = lambda n=n: run.one_process(n, share=False)
        plans[("separate", n)] = lambda n=n: run.separate(n)
    plans[("adaptive", 1)] = lambda: run.one_process(1, variant="adaptive")
    best, foreign = {}, {}
    for _ in range(a.repeat):
        for k, fn in plans.items():
            r = fn()
            if k not in best or r["rtf"] > best[k]["rtf"]:
                best[k] = r
                foreign[k] = run.foreign[-1][1]

    stream_s = best[("one", 1)]["media_s"]
    for k, r in best.items():
        expect = k[1] * stream_s
        if abs(r["media_s"] - expect) > 0.5:
            raise SystemExit(f"{k}: played {r['media_s']:.2f} s of media, expected {expect:.2f} s (frames {r['frames']})")

    def per_added(kind, n):
        return (best[(kind, n)]["hwm_mb"] - best[(kind, 1)]["hwm_mb"]) / (n - 1) if n > 1 else None

    print()
    print(f"many streams benchmark: {os.path.basename(a.media)} x {a.passes} ({stream_s:.1f} s of media per stream, "
          f"640x360 30 fps, one face, speech), {cores} cores (CPUs {cpus}), best of {a.repeat}; "
          f"bench took {time.perf_counter() - t_start:.0f} s")
    print("  pipeline: decodebin -> facecrop -> featextract (video) | audiodenoise vad=silero -> featextract (audio) "
          "-> avfuse -> fakesink sync=false; element defaults")
    print(f"  idle process (GStreamer initialised, plugin loaded): RSS {idle['rss_kb'] / 1024:.1f} MB, "
          f"peak {idle['hwm_kb'] / 1024:.1f} MB")
    print("  span = all PLAYING -> last EOS (models loaded, prerolled); total = launch -> every process exited; "
          "RSS peak = VmHWM (summed over processes); other % = share of the cores other processes used")
    print(f"  CPU s = CPU seconds of the span (all processes); busy = CPU s / span, out of {cores} cores (idle cores "
          "with work left: streams waiting on each other, e.g. for a shared session's turn)")
    hdr = (f"  {'configuration':<34} {'N':>2} {'span s':>7} {'agg RTF':>8} {'CPU s':>7} {'busy':>5} {'total s':>8} "
           f"{'RSS peak MB':>11} {'MB/added stream':>15} {'other %':>7}")
    print(hdr)
    print("  " + "-" * (len(hdr) - 2))
    names = {"one": "one process, share-session=true", "unshared": "one process, share-session=false",
             "separate": "separate processes (sum)", "adaptive": "one process, adaptive (interval=0)"}
    for kind in ("one", "unshared", "separate", "adaptive"):
        for n in NS:
            if (kind, n) not in best:
                continue
            r = best[(kind, n)]
            pa = per_added(kind, n)
            pa_s = f"{pa:15.1f}" if pa is not None else f"{'-':>15}"
            print(f"  {names[kind]:<34} {n:>2} {r['seconds']:7.2f} {r['rtf']:7.2f}x {r['cpu']:7.2f} "
                  f"{r['cpu'] / r['seconds']:5.2f} {r['total']:8.2f} {r['hwm_mb']:11.1f} {pa_s} {100 * foreign[(kind, n)]:7.1f}")

    print()
    print("  sharing saves (one process, unshared - shared peak RSS): " + ", ".join(
        f"N={n} {best[('unshared', n)]['hwm_mb'] - best[('one', n)]['hwm_mb']:.1f} MB" for n in NS)
        + "; separate - one process: " + ", ".join(
        f"N={n} {best[('separate', n)]['hwm_mb'] - best[('one', n)]['hwm_mb']:.1f} MB" for n in NS))
    print("  throughput one process / separate processes (agg RTF): " + ", ".join(
        f"N={n} {best[('one', n)]['rtf'] / best[('separate', n)]['rtf']:.2f}x" for n in NS)
        + "; unshared / shared: " + ", ".join(
        f"N={n} {best[('unshared', n)]['rtf'] / best[('one', n)]['rtf']:.2f}x" for n in NS))

    multi = [n for n in NS if n > 1]
    worst_mb = max(per_added("one", n) for n in multi)
    thr_ok = all(best[("one", n)]["rtf"] >= best[("separate", n)]["rtf"] for n in multi)
    adapt = best[("adaptive", 1)]["rtf"]
    verdict = lambda ok: "met" if ok else "NOT met"  # noqa: E731
    print()
    print("  targets:")
    mem = ", ".join(f"N={n} {per_added('one', n):.1f} MB" for n in multi)
    print(f"    memory per added stream, one process (share-session=true) <= {MB_PER_STREAM:.0f} MB: "
          f"{mem} -> {verdict(worst_mb <= MB_PER_STREAM)}")
    thr = ", ".join(f"N={n} {best[('one', n)]['rtf']:.2f}x vs {best[('separate', n)]['rtf']:.2f}x" for n in multi)
    print(f"    aggregate throughput one process >= separate processes: {thr} -> {verdict(thr_ok)}")
    print(f"    adaptive one stream >= {ADAPTIVE_RTF:.0f}x real time: {adapt:.2f}x -> {verdict(adapt >= ADAPTIVE_RTF)}")
    worst = max(foreign.items(), key=lambda x: x[1])
    print(f"  other processes on the cores (worst kept run): {100 * worst[1]:.1f} % ({worst[0][0]} N={worst[0][1]})")
    if worst[1] > 0.05:
        print("  WARNING: other processes used the measured cores during a kept run: the numbers above are not "
              "reliable; rerun on an idle machine")


if __name__ == "__main__":
    main()
