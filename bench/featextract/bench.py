"""featextract benchmark, Python side: the same models on the same inputs (written by
elements/tests/featextract_bench.rs) from a plain onnxruntime loop, one thread, and the
side-by-side ratios.

Equal work for faces: the element prepares every crop itself (grey, bilinear resize to
64x64, normalisation) and attaches metas; the Python loop starts from the same RGB crops
and prepares them the way a user would (numpy luma weights, cv2.resize INTER_LINEAR,
normalisation) before session.run. The run-only figures (session.run on the element's
own preprocessed tensors) are printed too."""
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

cv2.setNumThreads(1)

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


cw, chh = rust["crop_width"], rust["crop_height"]
crops5 = np.fromfile(work / "faces5.rgb", dtype=np.uint8).reshape(-1, chh, cw, 3)
crops_clip = np.fromfile(work / "clip.rgb", dtype=np.uint8).reshape(-1, chh, cw, 3)
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
MEAN, STD = np.float32(rust["mean"]), np.float32(rust["std"])


def prepare(crop):
    """One RGB crop -> [1, 64, 64] float32, as the model's contract says."""
    grey = crop.astype(np.float32) @ LUMA
    return ((cv2.resize(grey, (64, 64), interpolation=cv2.INTER_LINEAR) - MEAN) / STD)[None]


# The two preprocessings agree (sanity check of "equal work").
prep_diff = float(np.abs(np.stack([prepare(c) for c in crops5]) - faces5).max())


def run_faces(frames, batched, prep=None):
    """Seconds for `frames` (each an array of faces): prepared [n,1,64,64] tensors, or
    with `prep` RGB crops [n,H,W,3] prepared inside the timed loop."""
    one = (lambda c: c[None]) if prep is None else (lambda c: prep(c)[None])
    many = (lambda f: f) if prep is None else (lambda f: np.stack([prep(c) for c in f]))
    fer.run(["features", "probs"], {"input": many(frames[0])})  # warm-up
    t = time.perf_counter()
    for f in frames:
        if batched:
            fer.run(["features", "probs"], {"input": many(f)})
        else:
            for c in f:
                fer.run(["features", "probs"], {"input": one(c)})
    return time.perf_counter() - t


five_frames = [faces5] * rust["five_frames"]
clip_frames = [clip[i % len(clip)][None] for i in range(rust["clip_frames"])]
py = {
    "five_batched_s": run_faces(five_frames, True),
    "five_single_s": run_faces(five_frames, False),
    "clip_batched_s": run_faces(clip_frames, True),
    "clip_single_s": run_faces(clip_frames, False),
}
five_crops = [crops5] * rust["five_frames"]
clip_crops = [crops_clip[i % len(crops_clip)][None] for i in range(rust["clip_frames"])]
py_eq = {
    "five_batched_s": run_faces(five_crops, True, prepare),
    "five_single_s": run_faces(five_crops, False, prepare),
    "clip_batched_s": run_faces(clip_crops, True, prepare),
    "clip_single_s": run_faces(clip_crops, False, prepare),
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
print(f"onnxruntime {ort.__version__}, one thread each, one core. element = featextract (preprocessing + metas "
      f"included); Python equal work = cv2/numpy preprocessing + session.run (max |diff| of the two "
      f"preprocessings {prep_diff:.1e}); Python run-only = session.run on the element's tensors")
print(f"{'':42} {'element /s':>12} {'py equal /s':>12} {'ratio':>7} {'py run /s':>12} {'ratio':>7}")
for name, count, key, unit in rows:
    e = count / rust[key]
    p = count / py[key]
    if key in py_eq:
        q = count / py_eq[key]
        print(f"{name:42} {e:12.1f} {q:12.1f} {e / q:6.2f}x {p:12.1f} {e / p:6.2f}x")
    else:
        print(f"{name:42} {e:12.1f} {p:12.1f} {e / p:6.2f}x {'(no preprocessing)':>20}")
print("  target: element >= 1.1x the Python loop at equal work")
print(f"audio windows, element batch-size 16: {n / rust['audio_batched_s']:.1f}/s")
b = rust["five_single_s"] / rust["five_batched_s"]
bp = py["five_single_s"] / py["five_batched_s"]
c = rust["clip_single_s"] / rust["clip_batched_s"]
print(f"batched / unbatched on the 5-face photo: element {b:.2f}x (target >= 1.5x), python {bp:.2f}x")
print(f"batched / unbatched on the 1-face clip: element {c:.2f}x (one face per frame: nothing to batch)")
