#!/usr/bin/env python3
# Reproduces weights/silero-vad.onnx from the `silero-vad` PyPI package.
#
# Fresh venv (Python 3.11), exact packages used when the committed file was made:
#   pip install silero-vad==6.2.3 torch==2.8.0 onnx==1.23.2 onnxruntime==1.32.0 numpy==2.4.6
# System tools: espeak-ng (1.51) and sox (14.4.2) for the speech test file (sox -D: no dither,
# so the wav is bit-exact between runs).
#
# What it does:
#   1. `pip download --no-deps silero-vad==6.2.3`, checks the wheel sha256 and takes
#      silero_vad/data/silero_vad.onnx out of it (the file load_silero_vad(onnx=True) uses).
#   2. Adds the affect.* contract (weights/CONTRACT.md) to metadata_props. The graph, the
#      opset and everything else is left byte-identical (checked below).
#   3. Verifies on espeak-ng speech: the package's own OnnxWrapper (and get_speech_timestamps)
#      against plain onnxruntime fed as documented in the contract, per 512-sample chunk.
#
# Feeding (what OnnxWrapper.__call__ does at 16 kHz, batch 1):
#   input : float32 [1, 576] = the last 64 samples of the previous 512-sample chunk
#           (zeros before the first chunk) followed by the current 512 samples, audio in [-1, 1]
#   state : float32 [2, 1, 128], zeros at the start, then the previous run's `stateN`
#   sr    : int64 scalar (0-d tensor) = 16000
#   output: float32 [1, 1] speech probability of the 512-sample chunk; stateN: float32 [2, 1, 128]
#
# Usage: python silero_vad.py [--out PATH] [--wheel PATH]   (default out: ../silero-vad.onnx)
import argparse
import hashlib
import io
import os
import subprocess
import sys
import tempfile
import wave
import zipfile

import numpy as np
import onnx
import onnxruntime as ort

PKG, VERSION = "silero-vad", "6.2.3"
WHEEL = "silero_vad-6.2.3-py3-none-any.whl"
WHEEL_SHA256 = "7b7f5436cfcb02fae583a05b512ea96467fd449fe54cb49a5e4f06c51a1e43b8"
SOURCE_FILE = "silero_vad/data/silero_vad.onnx"
TEXT = ("The quick brown fox jumps over the lazy dog. She sells sea shells by the sea shore, "
        "and then she rests for a while. How are you feeling today?")
REF_RANGES = [(0, 10), (78, 88)]  # chunk indices whose probabilities are printed as reference numbers

PROPS = {
    "affect.contract": "1",
    "affect.role": "vad",
    "affect.name": "silero-vad",
    "affect.input.name": "input",
    "affect.input.sample-rate": "16000",
    "affect.input.window": "512",
    "affect.input.hop": "512",
    "affect.output.names": "output,stateN",
    "affect.vad.context": "64",
    "affect.vad.state-input": "state",
    "affect.vad.state-output": "stateN",
    "affect.vad.sr-input": "sr",
    "affect.vad.state-shape": "2,1,128",
    "affect.source": f"PyPI {PKG} {VERSION}, {SOURCE_FILE}",
    "affect.license": "MIT",
}


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def get_wheel(tmp, wheel):
    if wheel is None:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q",
                        f"{PKG}=={VERSION}", "-d", tmp], check=True)
        wheel = os.path.join(tmp, WHEEL)
    got = sha256(wheel)
    if got != WHEEL_SHA256:
        sys.exit(f"wheel sha256 mismatch: {got}")
    return wheel


def speech_wav(tmp):
    raw, out = os.path.join(tmp, "s_raw.wav"), os.path.join(tmp, "s16k.wav")
    subprocess.run(["espeak-ng", "-w", raw, TEXT], check=True)
    subprocess.run(["sox", raw, "-D", "-r", "16000", "-c", "1", "-b", "16", out], check=True)
    with wave.open(out) as w:
        assert w.getframerate() == 16000 and w.getnchannels() == 1 and w.getsampwidth() == 2
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    print(f"speech: {len(pcm)} samples, wav sha256 {sha256(out)}")
    return pcm.astype(np.float32) / 32768.0


def plain_ort(path, audio):
    """Documented feeding, nothing from the package."""
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    n = -(-len(audio) // 512) * 512
    audio = np.pad(audio, (0, n - len(audio)))  # last chunk zero-padded, as get_speech_timestamps does
    state = np.zeros((2, 1, 128), np.float32)
    context = np.zeros((1, 64), np.float32)
    sr = np.array(16000, dtype=np.int64)
    probs = []
    for i in range(0, n, 512):
        x = np.concatenate([context, audio[None, i:i + 512]], axis=1)
        out, state = sess.run(None, {"input": x, "state": state, "sr": sr})
        context = x[:, -64:]
        probs.append(float(out[0, 0]))
    return np.array(probs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                  "..", "silero-vad.onnx"))
    ap.add_argument("--wheel", help="use this already downloaded wheel")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        wheel = get_wheel(tmp, args.wheel)
        with zipfile.ZipFile(wheel) as z:
            z.extractall(os.path.join(tmp, "pkg"))
        src = os.path.join(tmp, "pkg", SOURCE_FILE)
        print(f"source {SOURCE_FILE}: sha256 {sha256(src)}")

        m = onnx.load(src)
        graph_before = m.graph.SerializeToString()
        assert not m.metadata_props, "source already has metadata_props"
        onnx.helper.set_model_props(m, PROPS)
        onnx.checker.check_model(m)
        assert m.graph.SerializeToString() == graph_before
        with open(args.out, "wb") as f:
            f.write(m.SerializeToString())
        m2 = onnx.load(args.out)
        assert m2.graph.SerializeToString() == graph_before
        m2.ClearField("metadata_props")
        m0 = onnx.load(src)
        assert m2.SerializeToString() == m0.SerializeToString(), "model differs beyond metadata"
        print(f"wrote {args.out}: {os.path.getsize(args.out)} bytes, sha256 {sha256(args.out)}")

        # ---- verification ----
        import torch
        sys.path.insert(0, os.path.join(tmp, "pkg"))
        from silero_vad.utils_vad import OnnxWrapper, get_speech_timestamps

        audio = speech_wav(tmp)
        ref = OnnxWrapper(src, force_onnx_cpu=True)  # the package's wrapper on the package's file
        p_pkg = ref.audio_forward(torch.from_numpy(audio), 16000).numpy()[0]
        p_pkg_out = OnnxWrapper(args.out, force_onnx_cpu=True).audio_forward(
            torch.from_numpy(audio), 16000).numpy()[0]
        p_plain = plain_ort(args.out, audio)
        print(f"chunks: {len(p_plain)} (512 samples each)")
        print(f"max |pkg OnnxWrapper(src) - plain ORT(out)|    = {np.abs(p_pkg - p_plain).max():.3g}")
        print(f"max |pkg OnnxWrapper(out) - pkg OnnxWrapper(src)| = {np.abs(p_pkg_out - p_pkg).max():.3g}")
        assert np.abs(p_pkg - p_plain).max() <= 1e-6

        # get_speech_timestamps with the package model vs. with the documented feeding
        class Plain:
            def __init__(self, path):
                self.probs, self.i = plain_ort(path, audio), 0

            def reset_states(self):
                self.i = 0

            def __call__(self, chunk, sr):
                p = self.probs[self.i]
                self.i += 1
                return torch.tensor([[p]])

        ts_pkg = get_speech_timestamps(torch.from_numpy(audio), ref, sampling_rate=16000)
        ts_plain = get_speech_timestamps(torch.from_numpy(audio), Plain(args.out), sampling_rate=16000)
        print(f"get_speech_timestamps (package): {ts_pkg}")
        print(f"get_speech_timestamps identical with documented feeding: {ts_pkg == ts_plain}")
        assert ts_pkg == ts_plain
        for a, b in REF_RANGES:
            print(f"reference probabilities, chunks {a}..{b - 1} (samples {a * 512}..{b * 512 - 1}),"
                  " state carried from chunk 0:")
            print("  " + ", ".join(f"{p:.6f}" for p in p_plain[a:b]))


if __name__ == "__main__":
    main()
