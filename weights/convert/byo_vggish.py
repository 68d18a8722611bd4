#!/usr/bin/env python3
"""VGGish (your checkpoint) -> an `audio-feature` ONNX audio-event embedding, log-mel front end in the graph.

VGGish is Google's AudioSet embedding network (TensorFlow models/research/audioset).
torchvision has no VGGish; the architecture is built here exactly as the torchvggish
package (harritaylor's PyTorch port, `torchvggish.torchvggish.VGG`, Apache-2.0) builds it,
so its state dict loads unchanged: `features` = conv3x3 64, pool, 128, pool, 256, 256,
pool, 512, 512, pool (ReLU after every conv, 2x2 max pools); the [B,512,6,4] map is
transposed to TensorFlow's [B,6,4,512] order and flattened; `embeddings` = Linear 12288 ->
4096 -> 4096 -> 128, each followed by ReLU. The checkpoint is torchvggish's state dict
(`vggish-10086976.pth`); `--pca vggish_pca_params-970ea276.pth` adds the AudioSet
release's PCA/whitening, clipping to [-2, 2] and 8-bit quantisation as torchvggish's
`Postprocessor` does (values 0..255 as float).

The log-mel front end of `vggish_input.waveform_to_examples` / `mel_features` runs inside
the graph: 96 frames of 400 samples (25 ms) every 160 (10 ms), periodic Hann window,
|rfft| with n_fft 512 (the 400 samples zero-padded; DFT as MatMul with cos/sin
constants), 64 HTK-mel bands 125..7500 Hz (mel_features' triangular weights, bin 0
zeroed) applied to the magnitude (not the power), `log(mel + 0.01)`. Input `audio`
float32 [B,15600] (0.975 s at 16 kHz: 96 frames, one VGGish example), hop `--hop`
(default 7680 = 0.48 s, half an example; VGGish's own examples do not overlap, 15360).
Output `embedding` [B,128] (`pca` [B,128] too, then the default, with --pca).

Usage:
  python byo_vggish.py --checkpoint vggish-10086976.pth [--pca vggish_pca_params-970ea276.pth] \
      --out weights/vggish.onnx [--check]
  python byo_vggish.py --random-init 0 --out /tmp/vggish-random.onnx
Licence: Google's VGGish weights are Apache-2.0 (tensorflow/models), as is torchvggish;
recorded as Apache-2.0 unless --license.
"""

import numpy as np
import torch
from torch import nn

import byo_common as bc

RATE, WIN, HOP_FRAME, NFFT, FRAMES, BANDS = 16000, 400, 160, 512, 96, 64
WINDOW = (FRAMES - 1) * HOP_FRAME + WIN  # 15600
LOW_HZ, HIGH_HZ, LOG_OFFSET = 125.0, 7500.0, 0.01


def hertz_to_mel(f):
    """HTK mel scale, as mel_features.hertz_to_mel."""
    return 1127.0 * np.log(1.0 + f / 700.0)


def mel_matrix():
    """[257, 64] weights of mel_features.spectrogram_to_mel_matrix(64, 257, 16000, 125, 7500)."""
    bins_mel = hertz_to_mel(np.linspace(0.0, RATE / 2.0, NFFT // 2 + 1))
    edges = np.linspace(hertz_to_mel(LOW_HZ), hertz_to_mel(HIGH_HZ), BANDS + 2)
    m = np.empty((NFFT // 2 + 1, BANDS))
    for i in range(BANDS):
        lo, c, hi = edges[i:i + 3]
        m[:, i] = np.maximum(0.0, np.minimum((bins_mel - lo) / (c - lo), (hi - bins_mel) / (hi - c)))
    m[0, :] = 0.0
    return m


def make_layers():
    layers, c = [], 1
    for v in [64, "M", 128, "M", 256, 256, "M", 512, 512, "M"]:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(c, v, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            c = v
    return nn.Sequential(*layers)


class VGG(nn.Module):
    """torchvggish's VGG without its postprocessor: [B,1,96,64] log-mel -> [B,128]."""

    def __init__(self):
        super().__init__()
        self.features = make_layers()
        self.embeddings = nn.Sequential(
            nn.Linear(512 * 4 * 6, 4096), nn.ReLU(True),
            nn.Linear(4096, 4096), nn.ReLU(True),
            nn.Linear(4096, 128), nn.ReLU(True))

    def forward(self, x):
        x = self.features(x)
        x = torch.transpose(x, 1, 3)
        x = torch.transpose(x, 1, 2)
        x = x.contiguous().view(x.size(0), -1)
        return self.embeddings(x)


class FrontEnd(nn.Module):
    """waveform [B,15600] -> log-mel examples [B,1,96,64]."""

    def __init__(self):
        super().__init__()
        n = np.arange(WIN)
        hann = 0.5 - 0.5 * np.cos(2 * np.pi * n / WIN)  # periodic, mel_features.periodic_hann
        k = np.arange(NFFT // 2 + 1)
        ang = 2 * np.pi * np.outer(n, k) / NFFT
        idx = np.arange(FRAMES)[:, None] * HOP_FRAME + n[None, :]
        f32 = lambda a: torch.tensor(a, dtype=torch.float32)  # noqa: E731
        self.register_buffer("idx", torch.tensor(idx, dtype=torch.long), persistent=False)
        self.register_buffer("cos", f32(hann[:, None] * np.cos(ang)), persistent=False)
        self.register_buffer("sin", f32(hann[:, None] * np.sin(ang)), persistent=False)
        self.register_buffer("mel", f32(mel_matrix()), persistent=False)

    def forward(self, x):
        frames = x[:, self.idx]  # [B,96,400]
        re, im = frames @ self.cos, frames @ self.sin
        mag = torch.sqrt(re * re + im * im)
        return torch.log(mag @ self.mel + LOG_OFFSET).unsqueeze(1)


class Pca(nn.Module):
    """torchvggish Postprocessor: PCA/whitening, clip to [-2, 2], quantise to 0..255."""

    def __init__(self, params):
        super().__init__()
        self.register_buffer("matrix", torch.as_tensor(np.asarray(params["pca_eigen_vectors"])).float())
        self.register_buffer("means", torch.as_tensor(np.asarray(params["pca_means"]).reshape(1, -1)).float())

    def forward(self, e):
        c = torch.clamp((e - self.means) @ self.matrix.t(), -2.0, 2.0)
        return torch.round((c + 2.0) * (255.0 / 4.0))


def load(checkpoint):
    """torchvggish's state dict in the VGG above."""
    vgg = VGG()
    vgg.load_state_dict(bc.load_state_dict(checkpoint), strict=True)
    return vgg


class Model(nn.Module):
    def __init__(self, vgg, pca=None):
        super().__init__()
        self.front, self.vgg, self.pca = FrontEnd(), vgg, pca

    def forward(self, x):
        e = self.vgg(self.front(x))
        return (e, self.pca(e)) if self.pca is not None else e


def main():
    ap = bc.common_args(__doc__.splitlines()[0], "Apache-2.0")
    ap.add_argument("--pca", help="torchvggish's vggish_pca_params .pth (adds output `pca`)")
    ap.add_argument("--hop", type=int, default=7680, help="samples between runs")
    args = ap.parse_args()
    vgg = bc.build_or_load(args, VGG, load)
    pca = Pca(torch.load(args.pca, map_location="cpu", weights_only=False)) if args.pca else None
    model = Model(vgg, pca).eval()
    outs = ["embedding", "pca"] if pca is not None else ["embedding"]
    x = 0.1 * torch.randn(2, WINDOW)
    bc.write(args, model, x, "audio", outs,
             bc.audio_props(args.name or "vggish", args.license, WINDOW, args.hop, outs, 128,
                            "VGGish (user checkpoint, torchvggish layout) with the log-mel "
                            "front end in the graph, converted by weights/convert/byo_vggish.py"))


if __name__ == "__main__":
    main()
