#!/usr/bin/env python3
"""The bring-your-own-backbone converters on randomly initialised models of the exact
architectures (run by elements/tests/byo_backbones.rs, in the venv of byo-venv.sh).

usage: check_byo.py WORK [BACKBONE ...]

WORK holds what the Rust test wrote: `crops.u8` (K aligned 112x112 RGB face crops from
facecrop, packed) and `speech16k.f32` (espeak-ng speech at 16 kHz). For each backbone:

1. a random model of the architecture is built from the package the real one comes from
   (timm / torchvision / transformers / torchvggish), batch-norm statistics calibrated
   on the face crops so outputs move with the face (calibrate_norms), and saved the way
   the real checkpoint is distributed (pickled timm module, torchvision state dict, HF
   folder, torchvggish state dict + PCA parameters);
2. the converter's command line turns that checkpoint into WORK/models/NAME.onnx;
3. the reference is computed from the saved checkpoint by the packages' own code path
   (e.g. HSEmotionRecognizer's split of the head, CLIPModel.get_image_features,
   Wav2Vec2FeatureExtractor's normalisation, torchvggish's mel_features and VGG), on
   real inputs: the face crops resized as featextract does (bilinear, half-pixel
   centres) and normalised, speech windows (and one of silence);
4. max |ONNX Runtime - reference| per output must be <= 1e-4; the inputs and the
   reference outputs are written as float32 files with WORK/ref/NAME.json for the Rust
   side, which runs the same inputs through the project's runtime.

Also writes WORK/models/fusion-passthrough.onnx (the bundled file's arguments: the Rust
test compares bytes) and passthrough variants for the audio dimensions.
"""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CONVERT = os.path.join(ROOT, "weights", "convert")
sys.path.insert(0, CONVERT)
import byo_common as bc  # noqa: E402

TOL = 1e-4
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


def calibrate_norms(net, x, seed):
    """Random batch-norm affine parameters, and running statistics measured on the real
    inputs `x` (one train-mode pass, cumulative average): with its init statistics a
    random network gives nearly the same output for every face (std 1e-4 across faces);
    calibrated, its activations are unit-scale and move with the input as a trained
    network's do."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.BatchNorm1d)):
                n = m.num_features
                m.weight.copy_(0.5 + torch.rand(n, generator=g))
                m.bias.copy_(0.1 * torch.randn(n, generator=g))
                m.reset_running_stats()
                m.momentum = None
        net.train()
        net(torch.from_numpy(x))
    return net.eval()


def convert(script, args, out):
    t = time.time()
    r = subprocess.run([sys.executable, os.path.join(CONVERT, script), *args, "--out", out],
                       capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"{script} failed:\n{r.stdout}\n{r.stderr}")
    print(f"  {script}: {r.stdout.strip().splitlines()[-1]} ({time.time() - t:.1f} s)")


def write(work, name, x, refs, extra=None):
    """Input and reference outputs as float32 files + WORK/ref/NAME.json."""
    d = os.path.join(work, "ref")
    os.makedirs(d, exist_ok=True)
    meta = {"input": f"{name}.input.f32", "input_shape": list(x.shape), "outputs": {}}
    x.astype("<f4").tofile(os.path.join(d, meta["input"]))
    for o, v in refs.items():
        f = f"{name}.{o}.f32"
        v.astype("<f4").tofile(os.path.join(d, f))
        meta["outputs"][o] = {"file": f, "shape": list(v.shape)}
    meta.update(extra or {})
    with open(os.path.join(d, f"{name}.json"), "w") as f:
        json.dump(meta, f, indent=1)


def compare(name, path, input_name, x, refs, work, extra=None):
    got = bc.run_onnx(path, {input_name: x})
    diffs = {}
    for o, r in refs.items():
        assert got[o].shape == r.shape, (name, o, got[o].shape, r.shape)
        diffs[o] = float(np.abs(got[o] - r).max())
        print(f"PARITY {name} {o} {list(r.shape)}: max |onnx - torch| {diffs[o]:.3g} "
              f"(max |value| {float(np.abs(r).max()):.3g})")
        assert np.isfinite(r).all() and float(np.abs(r).max()) > 1e-3, \
            f"{name}.{o}: degenerate reference"
        assert diffs[o] <= TOL, f"{name}.{o}: {diffs[o]} > {TOL}"
    write(work, name, x, refs, dict(extra or {}, parity=diffs))
    return diffs


def face_inputs(work, size, mean, std):
    """featextract's preprocessing of the crops: bilinear resize with half-pixel centres,
    then (x - mean) / std on 0..255 values, NCHW."""
    raw = np.fromfile(os.path.join(work, "crops.u8"), dtype=np.uint8)
    crops = raw.reshape(-1, 112, 112, 3).astype(np.float32)
    t = torch.from_numpy(crops).permute(0, 3, 1, 2)
    t = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False, antialias=False)
    m = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1) * 255
    s = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1) * 255
    return ((t - m) / s).numpy().astype(np.float32)


def speech_windows(work, window, k=3):
    """k windows spread over the speech, plus one of digital silence."""
    s = np.fromfile(os.path.join(work, "speech16k.f32"), dtype="<f4")
    assert len(s) >= window, (len(s), window)
    starts = np.linspace(0, len(s) - window, k).astype(int)
    w = [s[a:a + window] for a in starts] + [np.zeros(window, np.float32)]
    return np.stack(w).astype(np.float32)


# --- face backbones -------------------------------------------------------------------

def check_hsemotion(work):
    import timm
    import byo_hsemotion as h

    torch.manual_seed(1)
    x = face_inputs(work, 224, bc.IMAGENET_MEAN, bc.IMAGENET_STD)
    net = calibrate_norms(timm.create_model("efficientnet_b0", pretrained=False, num_classes=10),
                          x, 1)
    # Scale the random head so that, on these crops, every output has mean 0 and standard
    # deviation 0.5: valence and arousal then vary inside [-1, 1] (the factors are 0.2..2,
    # no amplification of rounding noise).
    with torch.no_grad():
        emb = net.forward_head(net.forward_features(torch.from_numpy(x)), pre_logits=True)
        scale = 0.5 / net.classifier(emb).std(dim=0)
        assert float(scale.max()) < 10, scale
        net.classifier.weight.mul_(scale[:, None])
        net.classifier.bias.copy_(-(emb @ net.classifier.weight.t()).mean(dim=0))
    ckpt = os.path.join(work, "ckpt", "enet_b0_8_va_mtl.pt")
    torch.save(net, ckpt)  # a whole pickled timm module, as HSEmotion distributes it
    out = os.path.join(work, "models", "hsemotion.onnx")
    convert("byo_hsemotion.py", ["--checkpoint", ckpt], out)
    # HSEmotionRecognizer: classifier split off, features through the model, scores =
    # features . W^T + b; expressions = scores[:, :-2] (softmax), VA = scores[:, -2:].
    model = torch.load(ckpt, map_location="cpu", weights_only=False).eval()
    w, b = model.classifier.weight.detach().numpy(), model.classifier.bias.detach().numpy()
    model.classifier = torch.nn.Identity()
    with torch.no_grad():
        feats = model(torch.from_numpy(x)).numpy()
    scores = feats.astype(np.float64) @ w.T.astype(np.float64) + b
    e = np.exp(scores[:, :8] - scores[:, :8].max(1, keepdims=True))
    probs = e / e.sum(1, keepdims=True)
    perm = [h.AFFWILD2_MAP.index(k) for k in range(8)]
    va_expr = np.concatenate([scores[:, 8:10], probs[:, perm]], axis=1)
    refs = {"probs": probs.astype(np.float32), "embedding": feats,
            "va_expr": va_expr.astype(np.float32)}
    return compare("hsemotion", out, "input", x, refs, work)


def check_efficientnet(work):
    import torchvision

    torch.manual_seed(2)
    x = face_inputs(work, 224, bc.IMAGENET_MEAN, bc.IMAGENET_STD)
    net = calibrate_norms(torchvision.models.efficientnet_b0(weights=None), x, 2)
    ckpt = os.path.join(work, "ckpt", "efficientnet_b0.pth")
    torch.save(net.state_dict(), ckpt)
    out = os.path.join(work, "models", "efficientnet.onnx")
    convert("byo_efficientnet.py", ["--checkpoint", ckpt], out)
    # torchvision's own forward with the classifier removed: the pooled features.
    net.classifier = torch.nn.Identity()
    with torch.no_grad():
        emb = net(torch.from_numpy(x)).numpy()
    return compare("efficientnet", out, "input", x, {"embedding": emb}, work)


def check_efficientnet_timm(work):
    """The timm layout of the same network (conv_stem.*), read by the same script."""
    import timm

    x = face_inputs(work, 224, bc.IMAGENET_MEAN, bc.IMAGENET_STD)
    torch.manual_seed(7)
    net = calibrate_norms(timm.create_model("efficientnet_b0", pretrained=False), x, 7)
    ckpt = os.path.join(work, "ckpt", "efficientnet_b0_timm.pth")
    torch.save(net.state_dict(), ckpt)
    out = os.path.join(work, "models", "efficientnet-timm.onnx")
    convert("byo_efficientnet.py", ["--checkpoint", ckpt], out)
    net.reset_classifier(0)  # timm's own way to get the pooled features
    with torch.no_grad():
        emb = net(torch.from_numpy(x)).numpy()
    return compare("efficientnet-timm", out, "input", x, {"embedding": emb}, work)


def check_random_init(work):
    """--random-init with the script's own --check (ONNX Runtime vs PyTorch on random
    input), for the converters that are quick to export."""
    for script in ("byo_hsemotion.py", "byo_efficientnet.py", "byo_vggish.py"):
        out = os.path.join(work, "models", script.replace(".py", "-random.onnx"))
        r = subprocess.run([sys.executable, os.path.join(CONVERT, script), "--random-init", "0",
                            "--check", "--out", out], capture_output=True, text=True)
        assert r.returncode == 0 and "max |onnx - torch|" in r.stdout, (script, r.stdout, r.stderr)
        print(f"  {script} --random-init 0 --check: {r.stdout.strip().splitlines()[-1]}")
        os.remove(out)


def check_clip(work):
    from transformers import CLIPConfig, CLIPModel
    import byo_clip

    torch.manual_seed(3)
    cfg = CLIPConfig(vision_config=byo_clip.vit_b32_config().to_dict(), projection_dim=512)
    full = CLIPModel(cfg).eval()
    folder = os.path.join(work, "ckpt", "clip-vit-base-patch32")
    full.save_pretrained(folder)
    with open(os.path.join(folder, "preprocessor_config.json"), "w") as f:
        json.dump({"image_mean": byo_clip.CLIP_MEAN, "image_std": byo_clip.CLIP_STD,
                   "crop_size": 224, "size": 224}, f)
    out = os.path.join(work, "models", "clip.onnx")
    convert("byo_clip.py", ["--checkpoint", folder], out)
    ref = CLIPModel.from_pretrained(folder, attn_implementation="eager").eval()
    x = face_inputs(work, 224, byo_clip.CLIP_MEAN, byo_clip.CLIP_STD)
    with torch.no_grad():
        e = ref.get_image_features(pixel_values=torch.from_numpy(x))
    if not torch.is_tensor(e):
        e = e.pooler_output if getattr(e, "pooler_output", None) is not None else e[0]
    del full, ref
    return compare("clip", out, "input", x, {"embedding": e.numpy()}, work)


# --- audio backbones ------------------------------------------------------------------

def check_wavlm(work):
    from transformers import WavLMModel
    import byo_wavlm

    torch.manual_seed(4)
    net = WavLMModel(byo_wavlm.base_plus_config()).eval()
    folder = os.path.join(work, "ckpt", "wavlm-base-plus")
    net.save_pretrained(folder)
    with open(os.path.join(folder, "preprocessor_config.json"), "w") as f:
        json.dump({"do_normalize": False, "sampling_rate": 16000, "feature_size": 1}, f)
    del net
    out = os.path.join(work, "models", "wavlm.onnx")
    convert("byo_wavlm.py", ["--checkpoint", folder], out)
    ref = WavLMModel.from_pretrained(folder, attn_implementation="eager").eval()
    x = speech_windows(work, 16000)
    with torch.no_grad():
        emb = ref(input_values=torch.from_numpy(x)).last_hidden_state.mean(dim=1).numpy()
    return compare("wavlm", out, "audio", x, {"embedding": emb}, work,
                   {"window": 16000, "hop": 4000})


def check_wav2vec2_msp(work):
    from transformers import Wav2Vec2FeatureExtractor
    import byo_wav2vec2_msp as w

    torch.manual_seed(5)
    net = w.network().eval()
    folder = os.path.join(work, "ckpt", "w2v2-msp-dim")
    net.save_pretrained(folder)
    del net
    out = os.path.join(work, "models", "w2v2-msp.onnx")
    convert("byo_wav2vec2_msp.py", ["--checkpoint", folder], out)
    ref = w.emotion_model_class().from_pretrained(folder, attn_implementation="eager").eval()
    x = speech_windows(work, 32000)
    # The model card's process_func: the processor's normalisation, then the model.
    fe = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0,
                                  do_normalize=True, return_attention_mask=True)
    y = np.stack([fe(row, sampling_rate=16000)["input_values"][0] for row in x]).astype(np.float32)
    with torch.no_grad():
        emb, dims = ref(torch.from_numpy(y))
    return compare("w2v2-msp", out, "audio", x, {"embedding": emb.numpy(), "dims": dims.numpy()},
                   work, {"window": 32000, "hop": 8000})


def load_by_path(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def check_vggish(work):
    import byo_vggish

    spec = importlib.util.find_spec("torchvggish")
    pkg_dir = os.path.dirname(spec.origin)
    tv = load_by_path("tv_model", os.path.join(pkg_dir, "torchvggish.py"))
    mf = load_by_path("tv_mel", os.path.join(pkg_dir, "mel_features.py"))
    torch.manual_seed(6)
    vgg = tv._vgg(postprocess=False).eval()  # torchvggish's exact architecture
    with torch.no_grad():  # default init dies in the ReLUs after 4 linear layers
        for m in vgg.modules():
            if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)):
                m.bias.uniform_(0.0, 0.05)
    ckpt = os.path.join(work, "ckpt", "vggish-random.pth")
    torch.save(vgg.state_dict(), ckpt)
    rng = np.random.default_rng(6)
    q, _ = np.linalg.qr(rng.normal(size=(128, 128)))
    pca = {"pca_eigen_vectors": (q * 4.0).astype(np.float32),
           "pca_means": rng.normal(0.1, 0.05, size=(128,)).astype(np.float32)}
    pca_file = os.path.join(work, "ckpt", "vggish_pca_params.pth")
    torch.save(pca, pca_file)
    out = os.path.join(work, "models", "vggish.onnx")
    convert("byo_vggish.py", ["--checkpoint", ckpt, "--pca", pca_file], out)
    # The front end our graph computes vs mel_features (float64 numpy) and the mel matrix.
    m_ours = byo_vggish.mel_matrix()
    m_pkg = mf.spectrogram_to_mel_matrix(num_mel_bins=64, num_spectrogram_bins=257,
                                         audio_sample_rate=16000, lower_edge_hertz=125,
                                         upper_edge_hertz=7500)
    assert np.array_equal(m_ours, m_pkg), "mel matrix differs from mel_features"
    x = speech_windows(work, byo_vggish.WINDOW)
    ex = np.stack([mf.log_mel_spectrogram(row.astype(np.float64), audio_sample_rate=16000,
                                          log_offset=0.01, window_length_secs=0.025,
                                          hop_length_secs=0.010, num_mel_bins=64,
                                          lower_edge_hertz=125, upper_edge_hertz=7500)
                   for row in x])
    assert ex.shape == (len(x), 96, 64), ex.shape
    front = byo_vggish.FrontEnd()
    with torch.no_grad():
        ours = front(torch.from_numpy(x)).numpy()[:, 0]
    d_front = float(np.abs(ours - ex).max())
    print(f"PARITY vggish log-mel (in-graph front end vs mel_features) max diff {d_front:.3g}")
    assert d_front <= TOL, d_front
    with torch.no_grad():
        emb = vgg(torch.from_numpy(ex[:, None].astype(np.float32)))
        # torchvggish's Postprocessor (its __init__ downloads the parameters: set them).
        post = object.__new__(tv.Postprocessor)
        post._pca_matrix = torch.as_tensor(pca["pca_eigen_vectors"]).float()
        post._pca_means = torch.as_tensor(pca["pca_means"].reshape(-1, 1)).float()
        quant = post.postprocess(emb)
        unrounded = torch.clamp(post._pca_matrix @ (emb.t() - post._pca_means), -2, 2).t()
        unrounded = (unrounded + 2.0) * (255.0 / 4.0)
    got = bc.run_onnx(out, {"audio": x})
    # Quantised values: equal, except where the unrounded value lies within 1e-3 of a
    # rounding boundary (float32 noise of 1e-5 may land either side of it).
    frac = np.abs(unrounded.numpy() - np.floor(unrounded.numpy()) - 0.5)
    differ = got["pca"] != quant.numpy()
    assert not (differ & (frac > 1e-3)).any(), "quantised PCA output differs"
    print(f"PARITY vggish pca: {int(differ.sum())} of {differ.size} quantised values on a "
          "rounding boundary differ by 1")
    return compare("vggish", out, "audio", x, {"embedding": emb.numpy()}, work,
                   {"window": byo_vggish.WINDOW, "hop": 7680, "front_end": d_front})


CHECKS = {
    "hsemotion": check_hsemotion,
    "efficientnet": check_efficientnet,
    "efficientnet-timm": check_efficientnet_timm,
    "clip": check_clip,
    "wavlm": check_wavlm,
    "w2v2-msp": check_wav2vec2_msp,
    "vggish": check_vggish,
    "random-init": check_random_init,
}


def main():
    work = sys.argv[1]
    names = sys.argv[2:] or list(CHECKS)
    for d in ("ckpt", "models", "ref"):
        os.makedirs(os.path.join(work, d), exist_ok=True)
    # The bundled passthrough (default arguments) and one per audio dimension.
    pt = os.path.join(CONVERT, "fusion_passthrough.py")
    for args, out in [([], "fusion-passthrough.onnx"),
                      (["--audio-dim", "768"], "fusion-passthrough-768.onnx"),
                      (["--audio-dim", "3"], "fusion-passthrough-3.onnx"),
                      (["--audio-dim", "128"], "fusion-passthrough-128.onnx")]:
        subprocess.run([sys.executable, pt, *args, "--out", os.path.join(work, "models", out)],
                       check=True, capture_output=True)
    for n in names:
        t = time.time()
        print(f"{n}:")
        CHECKS[n](work)
        # The checkpoints are not needed after the comparison (up to 660 MB each).
        shutil.rmtree(os.path.join(work, "ckpt"))
        os.makedirs(os.path.join(work, "ckpt"))
        print(f"  {n} done in {time.time() - t:.1f} s")
    print("byo check OK")


if __name__ == "__main__":
    main()
