#!/usr/bin/env python3
"""Writes `fusion-passthrough.onnx`: a fusion model that passes a face model's own valence,
arousal and expression through avfuse, averaged over the window. Not learned.

For face models that predict valence/arousal themselves (HSEmotion `enet_b0_8_va_mtl`
converted by `byo_hsemotion.py`), avfuse needs no trained fusion model: this graph reads
the face model's feature vector `visual` [B,T,10] laid out as `valence, arousal,
p_Neutral, p_Anger, p_Disgust, p_Fear, p_Happiness, p_Sadness, p_Surprise, p_Other`
(the `va_expr` output of byo_hsemotion.py, `affect.fusion.visual-input = features`) and
writes, for every step t, the masked mean over the window's frames 0..=t (CumSum along
T; avfuse reports the newest step, i.e. the mean over the whole window of
`affect.fusion.window` frames, frames without a face (visual_mask 0) left out):

  va[t]   = clip(sum_s<=t m_s * v_s[0:2] / sum_s<=t m_s, -1, 1)
  expr[t] = log(max(sum_s<=t m_s * v_s[2:10] / sum_s<=t m_s, 0) + 1e-6)

so avfuse's softmax(expr) gives the mean probabilities (to 1e-5). With no face in the
window: va 0, Neutral. NaN/inf values count as 0 and masks are clipped to [0, 1]. Audio is
read by nobody: `audio` [B,T,--audio-dim] (default 164, the dimension of the default
audio model `voice-prosody`, so the standard pipeline's audio branch links without
avfuse's dimension warning) and `audio_mask` are inputs only because the fusion contract
has them.

Its numbers are only as good as the user's face checkpoint: it adds nothing but the
average. The bundled file names no face model (`affect.fusion.visual-model` absent), so
avfuse checks only the dimension (10): any other 10-d face model would be read as if it
were this layout. `--face-model PATH` writes a copy bound to one converted face model
(its affect.name and sha256), which avfuse then enforces.

Usage:
  python fusion_passthrough.py [--window 12] [--audio-dim 164] [--face-model hsemotion.onnx] \
      [--out weights/fusion-passthrough.onnx]
Deterministic: the same arguments write the same bytes (the script builds twice and compares).
"""

import argparse
import hashlib
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

AFFWILD2 = ["Neutral", "Anger", "Disgust", "Fear", "Happiness", "Sadness", "Surprise", "Other"]
LAYOUT = ["valence", "arousal"] + [f"p_{c}" for c in AFFWILD2]
DV = len(LAYOUT)


def build(window, audio_dim, face_model=None):
    f32 = TensorProto.FLOAT
    inputs = [
        helper.make_tensor_value_info("visual", f32, ["B", "T", DV]),
        helper.make_tensor_value_info("audio", f32, ["B", "T", audio_dim]),
        helper.make_tensor_value_info("visual_mask", f32, ["B", "T"]),
        helper.make_tensor_value_info("audio_mask", f32, ["B", "T"]),
    ]
    outputs = [
        helper.make_tensor_value_info("va", f32, ["B", "T", 2]),
        helper.make_tensor_value_info("expr", f32, ["B", "T", 8]),
    ]
    c = lambda name, a: numpy_helper.from_array(np.asarray(a), name)  # noqa: E731
    inits = [
        c("zero", np.float32(0)), c("one", np.float32(1)), c("minus_one", np.float32(-1)),
        c("tiny", np.float32(1e-6)), c("axis_t", np.int64(1)), c("axes_2", np.array([2], np.int64)),
        c("s0", np.array([0], np.int64)), c("s2", np.array([2], np.int64)),
        c("s10", np.array([DV], np.int64)),
        c("neutral", np.eye(8, dtype=np.float32)[0]),
    ]
    n = helper.make_node
    nodes = [
        # Clean: NaN / inf -> 0, mask in [0, 1].
        n("IsNaN", ["visual"], ["v_nan"]),
        n("IsInf", ["visual"], ["v_inf"]),
        n("Or", ["v_nan", "v_inf"], ["v_bad"]),
        n("Where", ["v_bad", "zero", "visual"], ["v"]),
        n("IsNaN", ["visual_mask"], ["m_nan"]),
        n("Where", ["m_nan", "zero", "visual_mask"], ["m0"]),
        n("Clip", ["m0", "zero", "one"], ["m1"]),
        n("Unsqueeze", ["m1", "axes_2"], ["m"]),
        # Masked running mean along T.
        n("Mul", ["v", "m"], ["vm"]),
        n("CumSum", ["vm", "axis_t"], ["num"]),
        n("CumSum", ["m", "axis_t"], ["den"]),
        n("Max", ["den", "tiny"], ["den_safe"]),
        n("Div", ["num", "den_safe"], ["mean"]),
        n("Greater", ["den", "tiny"], ["has"]),
        # Valence, arousal.
        n("Slice", ["mean", "s0", "s2", "axes_2"], ["va_mean"]),
        n("Clip", ["va_mean", "minus_one", "one"], ["va"]),
        # Expression: mean probabilities, Neutral where no face was seen yet.
        n("Slice", ["mean", "s2", "s10", "axes_2"], ["p_mean"]),
        n("Max", ["p_mean", "zero"], ["p_pos"]),
        n("Where", ["has", "p_pos", "neutral"], ["p"]),
        n("Add", ["p", "tiny"], ["p_eps"]),
        n("Log", ["p_eps"], ["expr"]),
    ]
    graph = helper.make_graph(nodes, "fusion_passthrough", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="gst-affect weights/convert/fusion_passthrough.py")
    model.ir_version = 8
    props = {
        "affect.contract": "1",
        "affect.role": "fusion",
        "affect.name": "fusion-passthrough",
        "affect.output.names": "va,expr",
        "affect.fusion.window": str(window),
        "affect.fusion.visual-dim": str(DV),
        "affect.fusion.audio-dim": str(audio_dim),
        "affect.fusion.visual-input": "features",
        "affect.output.feature-names": ",".join(LAYOUT),
        "affect.source": "gst-affect weights/convert/fusion_passthrough.py (not learned: "
                         "the face model's own valence, arousal and expression, averaged)",
        "affect.license": "MPL-2.0",
    }
    if face_model:
        fm = onnx.load(face_model, load_external_data=False)
        meta = {p.key: p.value for p in fm.metadata_props}
        names = meta.get("affect.output.feature-names", "").split(",")
        if names != LAYOUT:
            raise SystemExit(f"{face_model}: affect.output.feature-names is {names}, "
                             f"passthrough needs {LAYOUT}")
        with open(face_model, "rb") as f:
            props["affect.fusion.visual-model"] = meta["affect.name"]
            props["affect.fusion.visual-sha256"] = hashlib.sha256(f.read()).hexdigest()
    helper.set_model_props(model, props)
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--window", type=int, default=12,
                    help="frames averaged (affect.fusion.window; 12 = 0.48 s at 25 fps)")
    ap.add_argument("--audio-dim", type=int, default=164)
    ap.add_argument("--face-model", help="bind to this converted face model (name, sha256)")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                  "..", "fusion-passthrough.onnx"))
    args = ap.parse_args()
    a = build(args.window, args.audio_dim, args.face_model)
    b = build(args.window, args.audio_dim, args.face_model)
    assert a == b, "not deterministic"
    with open(args.out, "wb") as f:
        f.write(a)
    print(f"wrote {args.out}: {len(a)} bytes, sha256 {hashlib.sha256(a).hexdigest()}")


if __name__ == "__main__":
    main()
