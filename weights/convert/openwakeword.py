#!/usr/bin/env python3
# Reproduces weights/oww-speech-embedding.onnx from the `openwakeword` 0.4.0 PyPI package.
#
# Fresh venv (Python 3.11), exact packages used when the committed file was made:
#   pip install openwakeword==0.4.0 onnx==1.23.2 onnxruntime==1.32.0 numpy==2.4.6
#   (openwakeword pulls scipy, scikit-learn, tqdm; only its AudioFeatures class is used, for verification)
# System tools: espeak-ng (1.51) and sox (14.4.2) for the speech test file.
#
# The wheel (and the sdist alike) ships openwakeword/resources/models/melspectrogram.onnx and
# embedding_model.onnx. This script merges them into ONE graph with the package's Python glue as
# ONNX ops (what AudioFeatures._get_embeddings does):
#   audio  float32 [B, N], 16 kHz mono in [-1, 1]    (x 32768 in the graph: the package feeds int16 values)
#   melspectrogram.onnx, except the top_db=80 floor (ReduceMax) is taken per batch item instead of
#                        over the whole batch (identical for B = 1)
#   spec / 10 + 2                                      (AudioFeatures melspec_transform)
#   F = (N - 512) // 160 + 1 frames; K = (F - 76) // 8 + 1 windows of 76 frames every 8 frames (Gather)
#   embedding_model.onnx on [B*K, 76, 32, 1]
#   embeddings float32 [B, K, 96]
# Contract: window 12512 samples (= 76 frames: 75*160 + 512) and hop 1280 (= 8 frames = 80 ms): one
# run gives K = 1 embedding, consecutive runs give consecutive 80 ms embeddings, and every embedding
# is a function of its own 12512 samples only (the top_db floor included), so chunking does not matter.
# Longer inputs work too (K = (N - 12512) // 1280 + 1) but then the top_db floor is shared by the run.
#
# Verification (espeak-ng speech): for every 1280-sample step, merged(window) against the package's
# AudioFeatures._get_embeddings(int16 window); the same as one batch; merged(whole clip) against
# _get_embeddings(whole clip); max |diff| must be <= 1e-4.
#
# Usage: python openwakeword.py [--out PATH] [--wheel PATH]
import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import wave
import zipfile

import numpy as np
import onnx
from onnx import TensorProto, compose, helper, numpy_helper

PKG, VERSION = "openwakeword", "0.4.0"
WHEEL = "openwakeword-0.4.0-py3-none-any.whl"
WHEEL_SHA256 = "2c353f49a35d384507403efde3db439353d8281a52d08a0e42a5b493e5145075"
MEL_FILE = "openwakeword/resources/models/melspectrogram.onnx"
EMB_FILE = "openwakeword/resources/models/embedding_model.onnx"
TEXT = ("The quick brown fox jumps over the lazy dog. She sells sea shells by the sea shore, "
        "and then she rests for a while. How are you feeling today?")
WINDOW, HOP = 12512, 1280

PROPS = {
    "affect.contract": "1",
    "affect.role": "audio-feature",
    "affect.name": "oww-speech-embedding",
    "affect.input.name": "audio",
    "affect.input.sample-rate": "16000",
    "affect.input.window": str(WINDOW),
    "affect.input.hop": str(HOP),
    "affect.output.names": "embeddings",
    "affect.output.dim": "96",
    "affect.source": f"PyPI {PKG} {VERSION}, {MEL_FILE} + {EMB_FILE} + AudioFeatures glue",
    "affect.license": "CC-BY-NC-SA-4.0",
}


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def const(name, value, dtype=np.int64):
    return helper.make_node("Constant", [], [name], name=name,
                            value=numpy_helper.from_array(np.array(value, dtype=dtype), name))


def build(mel_path, emb_path):
    mel = compose.add_prefix(onnx.load(mel_path), "mel/")
    emb = compose.add_prefix(onnx.load(emb_path), "emb/")
    assert [i.name for i in mel.graph.input] == ["mel/input"]
    assert [i.name for i in emb.graph.input] == ["emb/input_1"]
    assert [o.name for o in emb.graph.output] == ["emb/conv2d_19"]

    nodes = [const("audio_scale", 32768.0, np.float32),
             helper.make_node("Mul", ["audio", "audio_scale"], ["mel/input"], name="to_int16_scale")]

    # mel nodes; the last two (Sub max-80, Cast) and Clip(x, max-80, inf) get the per-item floor
    mel_nodes = list(mel.graph.node)
    rmax = [n for n in mel_nodes if n.op_type == "ReduceMax"]
    assert len(rmax) == 1 and mel_nodes[-1].op_type == "Clip" and mel_nodes[-1].input[0] == rmax[0].input[0]
    clip_max = {i.name: numpy_helper.to_array(i) for i in mel.graph.initializer}[mel_nodes[-1].input[2]]
    assert np.isinf(clip_max)
    for n in mel_nodes:
        if n.op_type == "ReduceMax":
            n = helper.make_node("ReduceMax", list(n.input), list(n.output), name="mel/reducemax_per_item",
                                 axes=[1, 2, 3], keepdims=1)
        elif n is mel_nodes[-1]:
            # Clip(x, lo, +inf) == Max(x, lo); Clip needs a scalar lo, the per-item floor is [B,1,1,1]
            n = helper.make_node("Max", [n.input[0], n.input[1]], list(n.output), name="mel/floor_top_db")
        nodes.append(n)
    spec = mel.graph.output[0].name  # [B, 1, F, 32]

    nodes += [
        const("ten", 10.0, np.float32), const("two", 2.0, np.float32),
        helper.make_node("Div", [spec, "ten"], ["spec_div"], name="melspec_transform_div"),
        helper.make_node("Add", ["spec_div", "two"], ["spec_t"], name="melspec_transform_add"),
        const("ax1", [1]),
        helper.make_node("Squeeze", ["spec_t", "ax1"], ["spec3"], name="squeeze_channel"),  # [B,F,32]
        helper.make_node("Shape", ["spec3"], ["spec3_shape"], name="spec_shape"),
        const("i0", [0]), const("i1", [1]), const("i2", [2]),
        helper.make_node("Slice", ["spec3_shape", "i0", "i1"], ["B"], name="batch_dim"),
        helper.make_node("Slice", ["spec3_shape", "i1", "i2"], ["F"], name="frames_dim"),
        # K = (F - 76) // 8 + 1
        const("c76", [76]), const("c8", [8]), const("c1", [1]),
        helper.make_node("Sub", ["F", "c76"], ["F_m76"], name="k_sub"),
        helper.make_node("Div", ["F_m76", "c8"], ["F_div8"], name="k_div"),
        helper.make_node("Add", ["F_div8", "c1"], ["K"], name="k_add"),
        # idx[k, t] = 8 k + t, [K, 76]
        const("s0", 0), const("s1", 1), const("s8", 8), const("s76", 76),
        helper.make_node("Squeeze", ["K"], ["K_s"], name="k_scalar"),
        helper.make_node("Range", ["s0", "K_s", "s1"], ["k_range"], name="k_range"),
        helper.make_node("Mul", ["k_range", "s8"], ["k_start"], name="k_start"),
        helper.make_node("Unsqueeze", ["k_start", "ax1"], ["k_start_col"], name="k_start_col"),
        helper.make_node("Range", ["s0", "s76", "s1"], ["t_range"], name="t_range"),
        helper.make_node("Add", ["k_start_col", "t_range"], ["win_idx"], name="win_idx"),
        helper.make_node("Gather", ["spec3", "win_idx"], ["windows"], name="windows", axis=1),  # [B,K,76,32]
        const("emb_in_shape", [-1, 76, 32, 1]),
        helper.make_node("Reshape", ["windows", "emb_in_shape"], ["emb/input_1"], name="to_embedding_batch"),
    ]
    nodes += list(emb.graph.node)
    nodes += [
        const("c96", [96]),
        helper.make_node("Concat", ["B", "K", "c96"], ["out_shape"], name="out_shape", axis=0),
        helper.make_node("Reshape", ["emb/conv2d_19", "out_shape"], ["embeddings"], name="embeddings"),
    ]
    used = {i for n in nodes for i in n.input}
    graph = helper.make_graph(
        nodes, "oww_speech_embedding",
        [helper.make_tensor_value_info("audio", TensorProto.FLOAT, ["B", "N"])],
        [helper.make_tensor_value_info("embeddings", TensorProto.FLOAT, ["B", "K", 96])],
        [i for i in list(mel.graph.initializer) + list(emb.graph.initializer) if i.name in used])
    opset = max(o.version for m in (mel, emb) for o in m.opset_import if o.domain in ("", "ai.onnx"))
    assert opset == 13
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                          producer_name="gst-affect weights/convert/openwakeword.py")
    m.ir_version = 7
    m.doc_string = ("openWakeWord 0.4.0 melspectrogram + Google speech_embedding re-implementation, "
                    "merged with the AudioFeatures glue; audio [B,N] in [-1,1] at 16 kHz -> [B,K,96]")
    return m


def speech_pcm(tmp):
    raw, out = os.path.join(tmp, "s_raw.wav"), os.path.join(tmp, "s16k.wav")
    subprocess.run(["espeak-ng", "-w", raw, TEXT], check=True)
    subprocess.run(["sox", raw, "-D", "-r", "16000", "-c", "1", "-b", "16", out], check=True)
    with wave.open(out) as w:
        assert w.getframerate() == 16000 and w.getnchannels() == 1 and w.getsampwidth() == 2
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").copy()
    print(f"speech: {len(pcm)} samples, wav sha256 {sha256(out)}")
    return pcm


def verify(out, tmp, pkg_dir):
    import onnxruntime as ort
    sys.path.insert(0, pkg_dir)
    sys.modules.pop("openwakeword", None)  # this script is openwakeword.py too
    from openwakeword.utils import AudioFeatures

    af = AudioFeatures(melspec_onnx_model_path=os.path.join(pkg_dir, MEL_FILE),
                       embedding_onnx_model_path=os.path.join(pkg_dir, EMB_FILE), ncpu=1)
    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    sess = ort.InferenceSession(out, sess_options=so, providers=["CPUExecutionProvider"])

    pcm = speech_pcm(tmp)
    starts = list(range(0, len(pcm) - WINDOW + 1, HOP))
    ref = np.stack([af._get_embeddings(pcm[s:s + WINDOW]) for s in starts])  # [n, 96]
    wins = np.stack([pcm[s:s + WINDOW] for s in starts]).astype(np.float32) / 32768.0
    single = np.concatenate([sess.run(None, {"audio": w[None]})[0] for w in wins])  # [n,1,96]
    assert single.shape == (len(starts), 1, 96), single.shape
    d1 = np.abs(single[:, 0] - ref).max()
    batch = sess.run(None, {"audio": wins})[0]
    d2 = np.abs(batch[:, 0] - ref).max()
    whole_ref = af._get_embeddings(pcm)
    whole = sess.run(None, {"audio": (pcm.astype(np.float32) / 32768.0)[None]})[0][0]
    assert whole.shape == whole_ref.shape, (whole.shape, whole_ref.shape)
    d3 = np.abs(whole - whole_ref).max()
    d4 = np.abs(single[:, 0] - whole_ref[:len(starts)]).max()
    print(f"windows: {len(starts)} x {WINDOW} samples, hop {HOP}; embedding range "
          f"[{ref.min():.3f}, {ref.max():.3f}]")
    print(f"max |merged(window)    - package _get_embeddings(window)|     = {d1:.3g}")
    print(f"max |merged(batch {len(starts)}) - package _get_embeddings(window)|     = {d2:.3g}")
    print(f"max |merged(whole clip) - package _get_embeddings(whole clip)| = {d3:.3g}  (K = {len(whole)})")
    print(f"info: max |per-window (streaming) - package whole clip| = {d4:.3g} "
          "(top_db floor: per window vs per clip)")
    # the package's streaming path (AudioFeatures.__call__ with 1280-sample chunks): after chunk k the new
    # embedding covers samples [1280 k - 12640, 1280 k - 128); its top_db floor is per 8-frame mel group.
    # espeak-ng silence is digital zero (-100 dB mel), where the floors differ; with a noise floor added
    # (+-200 LSB, seeded) no floor is active and all three paths agree.
    def streaming_diff(x):
        af2 = AudioFeatures(melspec_onnx_model_path=os.path.join(pkg_dir, MEL_FILE),
                            embedding_onnx_model_path=os.path.join(pkg_dir, EMB_FILE), ncpu=1)
        d = 0.0
        for k in range(1, len(x) // HOP + 1):
            af2(x[(k - 1) * HOP:k * HOP])
            if k >= 11:
                s = HOP * k - 12640
                e = sess.run(None, {"audio": (x[s:s + WINDOW].astype(np.float32) / 32768.0)[None]})[0][0, 0]
                d = max(d, np.abs(e - af2.feature_buffer[-1]).max())
        return d

    d5 = streaming_diff(pcm)
    print(f"info: max |merged(window) - package streaming __call__| = {d5:.3g} (top_db floor per 8-frame group)")
    rng = np.random.default_rng(0)
    noisy = np.clip(pcm.astype(np.int32) + rng.integers(-200, 201, len(pcm)), -32768, 32767).astype(np.int16)
    d6 = streaming_diff(noisy)
    whole_n = af._get_embeddings(noisy)
    d7 = max(np.abs(sess.run(None, {"audio": (noisy[s:s + WINDOW].astype(np.float32) / 32768.0)[None]})[0][0, 0]
                    - whole_n[j]).max() for j, s in enumerate(starts))
    print(f"speech + noise floor: max |merged(window) - package streaming __call__| = {d6:.3g}, "
          f"max |merged(window) - package whole clip| = {d7:.3g}")
    np.set_printoptions(precision=6, suppress=True, linewidth=200)
    print(f"reference: window starting at sample {starts[10]}, embeddings[0, 0, :8] = {single[10, 0, :8]}")
    assert max(d1, d2, d3, d6, d7) <= 1e-4


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                  "..", "oww-speech-embedding.onnx"))
    ap.add_argument("--wheel", help="already downloaded wheel")
    ap.add_argument("--no-verify", action="store_true")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel
        if wheel is None:
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q",
                            f"{PKG}=={VERSION}", "-d", tmp], check=True)
            wheel = os.path.join(tmp, WHEEL)
        got = sha256(wheel)
        if got != WHEEL_SHA256:
            sys.exit(f"wheel sha256 mismatch: {got}")
        pkg_dir = os.path.join(tmp, "pkg")
        with zipfile.ZipFile(wheel) as z:
            z.extractall(pkg_dir)
        for f in (MEL_FILE, EMB_FILE):
            print(f"source {f}: sha256 {sha256(os.path.join(pkg_dir, f))}")
        m = build(os.path.join(pkg_dir, MEL_FILE), os.path.join(pkg_dir, EMB_FILE))
        helper.set_model_props(m, PROPS)
        onnx.checker.check_model(m, full_check=True)
        with open(args.out, "wb") as f:
            f.write(m.SerializeToString())
        print(f"wrote {args.out}: {os.path.getsize(args.out)} bytes, sha256 {sha256(args.out)}")
        if not args.no_verify:
            verify(args.out, tmp, pkg_dir)


if __name__ == "__main__":
    main()
