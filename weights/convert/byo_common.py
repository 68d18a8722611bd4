"""Shared parts of the bring-your-own-backbone converters (`byo_*.py`).

Each converter turns a checkpoint the user already has (a local file or folder; nothing
is downloaded) into one ONNX file that carries the `affect.*` contract
(`weights/CONTRACT.md`), so `featextract model=PATH` runs it. The pieces every converter
shares live here:

- `load_state_dict`: a checkpoint file as a state dict, whatever way it was saved (a bare
  state dict, a dict holding one under `state_dict` / `model`, a whole pickled module,
  safetensors);
- `export`: `torch.onnx.export` (the TorchScript exporter, opset 17, one file, dynamic
  batch axis), then the contract written into `metadata_props` and the file checked;
- `face_props` / `audio_props`: the contract's `metadata_props` of a face or an audio
  model;
- `parity`: max |ONNX Runtime - PyTorch| per output on given inputs;
- `common_args` / `build_or_load`: the command line every converter takes
  (`--checkpoint PATH` or `--random-init SEED`, `--out`, `--name`, `--check`), and the
  network it asks for (`hf_network` for transformers models);
- `normalise_windows`: the per-window zero-mean, unit-variance scaling of the speech
  models' feature extractors, inside the graph;
- `write`: `export`, then what was written and, with `--check`, the parity (`finish`).

The weights' licence is the user's checkpoint's, not this project's: the converters
write what they know into `affect.license` (`--license` overrides it).
"""

import argparse
import hashlib
import json
import os
import sys

import numpy as np

# Keep PyTorch to the cores it is given and quiet about the deprecated TorchScript
# exporter, which is still the fast, well-trodden path for these architectures.
import warnings

warnings.filterwarnings("ignore", category=DeprecationWarning)
warnings.filterwarnings("ignore", category=FutureWarning)

import onnx  # noqa: E402
import torch  # noqa: E402

OPSET = 17
AFFWILD2 = ["Neutral", "Anger", "Disgust", "Fear", "Happiness", "Sadness", "Surprise", "Other"]
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
RATE = 16000  # the audio models' sample rate
# The convolutional feature encoder of the wav2vec2 family (WavLM reuses it): 7 layers of
# 512 channels, 400-sample receptive field, 320-sample stride (one frame per 20 ms at
# 16 kHz), GELU, then a 128-tap convolutional position embedding in 16 groups.
WAV2VEC2_FEATURE_ENCODER = dict(
    feat_extract_activation="gelu", conv_dim=(512,) * 7, conv_stride=(5, 2, 2, 2, 2, 2, 2),
    conv_kernel=(10, 3, 3, 3, 3, 2, 2), num_conv_pos_embeddings=128,
    num_conv_pos_embedding_groups=16)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def floats(values, scale=255.0):
    """Per-channel statistics on 0..1 values as the contract's 0..255 values."""
    return ",".join(f"{v * scale:.6g}" for v in values)


def preprocessor_config(folder):
    """The Hugging Face folder's preprocessor_config.json as a dict ({} without a folder or
    without the file)."""
    p = folder and os.path.join(folder, "preprocessor_config.json")
    if p and os.path.exists(p):
        with open(p) as f:
            return json.load(f)
    return {}


def load_state_dict(path):
    """The state dict of a checkpoint file, however it was saved."""
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        return load_file(path)
    # Whole pickled modules (HSEmotion's .pt files) need weights_only=False: only load
    # checkpoints you trust, as with torch.load anywhere.
    obj = torch.load(path, map_location="cpu", weights_only=False)
    if isinstance(obj, torch.nn.Module):
        return obj.state_dict()
    if isinstance(obj, dict):
        for key in ("state_dict", "model", "model_state_dict"):
            if key in obj and isinstance(obj[key], dict):
                obj = obj[key]
                break
        if isinstance(obj, dict) and all(torch.is_tensor(v) for v in obj.values()):
            # DataParallel / Lightning prefixes.
            for prefix in ("module.", "model."):
                if obj and all(k.startswith(prefix) for k in obj):
                    obj = {k[len(prefix):]: v for k, v in obj.items()}
            return obj
    sys.exit(f"{path}: not a state dict or a pickled torch module ({type(obj).__name__})")


def _props(role, name, input_name, input_props, outputs, dim):
    """The contract's keys every model has, in the order they are written: contract, role,
    name, input name, then `input_props`, then output names and dimension."""
    p = {
        "affect.contract": "1",
        "affect.role": role,
        "affect.name": name,
        "affect.input.name": input_name,
    }
    p.update(input_props)
    p["affect.output.names"] = ",".join(outputs)
    p["affect.output.dim"] = str(dim)
    return p


def face_props(name, license_, size, mean, std, outputs, dim, source, extra=None):
    """`metadata_props` of a `face-feature` model reading `input` NCHW RGB `size`x`size`,
    normalised with `mean` / `std` (per channel on 0..1, written on 0..255); `extra` keys
    come after `affect.output.dim`, before `affect.source` and `affect.license`."""
    p = _props("face-feature", name, "input", {
        "affect.input.size": f"{size}x{size}",
        "affect.input.layout": "NCHW",
        "affect.input.colour": "RGB",
        "affect.input.mean": floats(mean),
        "affect.input.std": floats(std),
    }, outputs, dim)
    p.update(extra or {})
    p["affect.source"] = source
    p["affect.license"] = license_
    return p


def audio_props(name, license_, window, hop, outputs, dim, source, extra=None):
    """`metadata_props` of an `audio-feature` model reading `audio` [B, window] at 16 kHz
    every `hop` samples; `extra` keys come last, after `affect.license`."""
    p = _props("audio-feature", name, "audio", {
        "affect.input.sample-rate": str(RATE),
        "affect.input.window": str(window),
        "affect.input.hop": str(hop),
    }, outputs, dim)
    p["affect.source"] = source
    p["affect.license"] = license_
    p.update(extra or {})
    return p


def normalise_windows(x):
    """Each row of `x` [B, samples] scaled to zero mean and unit variance,
    `(x - mean) / sqrt(var + 1e-7)`, as transformers' Wav2Vec2FeatureExtractor does with
    do_normalize=True (traced into the graph)."""
    m = x.mean(dim=1, keepdim=True)
    v = ((x - m) ** 2).mean(dim=1, keepdim=True)
    return (x - m) / torch.sqrt(v + 1e-7)


def export(module, example, path, input_name, output_names, props, dynamic_time=False):
    """Exports `module` (eval mode) on `example` (one input tensor) to `path` with the
    contract `props`; the batch axis is dynamic (and the time axis when asked)."""
    module.eval()
    axes = {input_name: {0: "batch"}}
    if dynamic_time:
        axes[input_name][1] = "samples"
    for o in output_names:
        axes[o] = {0: "batch"}
    tmp = path + ".tmp"
    with torch.no_grad():
        torch.onnx.export(
            module,
            (example,),
            tmp,
            dynamo=False,
            input_names=[input_name],
            output_names=list(output_names),
            dynamic_axes=axes,
            opset_version=OPSET,
            do_constant_folding=True,
        )
    m = onnx.load(tmp)
    onnx.helper.set_model_props(m, props)
    onnx.checker.check_model(m)
    onnx.save(m, path)
    os.remove(tmp)
    return path


def run_onnx(path, feeds):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, min(2, os.cpu_count() or 1))
    s = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in s.get_outputs()]
    return dict(zip(names, s.run(None, feeds)))


def parity(module, path, input_name, x, output_names):
    """max |ONNX Runtime - PyTorch| per output on input `x` (numpy float32)."""
    with torch.no_grad():
        ref = module(torch.from_numpy(x))
    if torch.is_tensor(ref):
        ref = (ref,)
    got = run_onnx(path, {input_name: x})
    return {n: float(np.abs(got[n] - r.numpy()).max()) for n, r in zip(output_names, ref)}


def common_args(description, license_default):
    """The parser of the options every converter takes; a converter adds its own."""
    ap = argparse.ArgumentParser(description=description)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="the checkpoint you have (local file or folder)")
    src.add_argument("--random-init", type=int, metavar="SEED",
                     help="the same architecture with random weights (tests, plumbing; "
                          "its numbers mean nothing)")
    ap.add_argument("--out", required=True, help="ONNX file to write")
    ap.add_argument("--name", help="affect.name (default: the backbone's name)")
    ap.add_argument("--license", default=license_default,
                    help=f"affect.license to record (default: {license_default})")
    ap.add_argument("--check", action="store_true",
                    help="after writing, compare ONNX Runtime with PyTorch on random input")
    return ap


def build_or_load(args, build, load):
    """The network the command line asks for: with `--random-init SEED`, `build()` after
    `torch.manual_seed(SEED)`; with `--checkpoint PATH`, `load(PATH)`."""
    if args.random_init is not None:
        torch.manual_seed(args.random_init)
        return build()
    return load(args.checkpoint)


def hf_network(cls, config, folder=None):
    """A transformers model of class `cls`: random weights on `config()` without a
    folder, else `cls.from_pretrained(folder)` with eager attention."""
    if folder is None:
        return cls(config())
    return cls.from_pretrained(folder, attn_implementation="eager")


def hf_build_or_load(args, network):
    """`build_or_load` for a transformers model, where `network()` builds the random one
    and `network(folder)` loads the checkpoint; attention is set to the eager
    implementation, the one the TorchScript exporter traces."""
    net = build_or_load(args, network, network)
    net.config._attn_implementation = "eager"
    return net


def write(args, module, x, input_name, output_names, props):
    """Exports `module` on `x` (a torch tensor) to `--out` with the contract `props`, then
    reports it (`finish`)."""
    export(module, x, args.out, input_name, output_names, props)
    finish(args, module, x.numpy(), input_name, output_names)


def finish(args, module, x, input_name, output_names, tol=1e-4):
    """Prints what was written and, with --check, the parity on `x`."""
    print(f"wrote {args.out}: {os.path.getsize(args.out)} bytes, sha256 {sha256(args.out)}")
    if args.check:
        d = parity(module, args.out, input_name, x, output_names)
        print("max |onnx - torch|: " + ", ".join(f"{k} {v:.3g}" for k, v in d.items()))
        if max(d.values()) > tol:
            sys.exit(f"parity above {tol}")
