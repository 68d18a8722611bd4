"""featextract benchmark, Python side: the same models on the same preprocessed inputs
(written by elements/tests/featextract_bench.rs) from a plain onnxruntime loop, one
thread, and the side-by-side ratios."""
import json
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

work = Path(sys.argv[1])
weights = Path(sys.argv[2])
rust = json.loads((work / "rust.json").read_text())


def session(name):
    o = ort.SessionOptions()
    o.intra_op_num_threads = 1
    o.inter_op_num_threads = 1
    return ort.InferenceSession(str(weights / name), o, providers=["CPUExecutionProvider"])


fer = session("fer-mini-xception.onnx")
oww = session("oww-speech-embedding.onnx")
faces5 = np.fromfile(work / "faces5.f32", dtype=np.float32).reshape(-1, 1, 64, 64)
clip = np.fromfile(work / "clip.f32", dtype=np.float32).reshape(-1, 1, 64, 64)
audio = np.fromfile(work / "audio.f32", dtype=np.float32)


def run_faces(frames, batched):
    """frames: list of [n,1,64,64] arrays; returns seconds."""
    fer.run(["features", "probs"], {"input": frames[0]})  # warm-up
    t = time.perf_counter()
    for f in frames:
        if batched:
            fer.run(["features", "probs"], {"input": f})
        else:
            for i in range(len(f)):
                fer.run(["features", "probs"], {"input": f[i : i + 1]})
    return time.perf_counter() - t


five_frames = [faces5] * rust["five_frames"]
clip_frames = [clip[i % len(clip)][None] for i in range(rust["clip_frames"])]
py = {
    "five_batched_s": run_faces(five_frames, True),
    "five_single_s": run_faces(five_frames, False),
    "clip_batched_s": run_faces(clip_frames, True),
    "clip_single_s": run_faces(clip_frames, False),
}
n = rust["audio_windows"]
oww.run(None, {"audio": audio[None, :12512]})
t = time.perf_counter()
for k in range(n):
    oww.run(None, {"audio": audio[None, k * 1280 : k * 1280 + 12512]})
py["audio_single_s"] = time.perf_counter() - t

faces5_n = 5 * rust["five_frames"]
clip_n = rust["clip_frames"]
rows = [
    ("5-face photo, batched (1 run/frame)", faces5_n, "five_batched_s", "faces"),
    ("5-face photo, unbatched (5 runs/frame)", faces5_n, "five_single_s", "faces"),
    ("1-face clip, batch-size 16", clip_n, "clip_batched_s", "faces"),
    ("1-face clip, batch-size 1", clip_n, "clip_single_s", "faces"),
    ("audio windows (16 kHz, 1 window/run)", n, "audio_single_s", "windows"),
]
print(f"onnxruntime {ort.__version__}, one thread each; element = featextract (preprocessing + metas included), Python = session.run loop on preprocessed inputs")
print(f"{'':42} {'element /s':>12} {'python /s':>12} {'element/python':>15}")
for name, count, key, unit in rows:
    e = count / rust[key]
    p = count / py[key]
    print(f"{name:42} {e:12.1f} {p:12.1f} {e / p:15.2f}x")
print(f"audio windows, element batch-size 16: {n / rust['audio_batched_s']:.1f}/s")
b = rust["five_single_s"] / rust["five_batched_s"]
bp = py["five_single_s"] / py["five_batched_s"]
c = rust["clip_single_s"] / rust["clip_batched_s"]
print(f"batched / unbatched on the 5-face photo: element {b:.2f}x (target >= 1.5x), python {bp:.2f}x")
print(f"batched / unbatched on the 1-face clip: element {c:.2f}x (one face per frame: nothing to batch)")
