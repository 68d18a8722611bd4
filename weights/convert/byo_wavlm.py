#!/usr/bin/env python3
"""WavLM-base-plus (your checkpoint) -> an `audio-feature` ONNX speech representation.

The checkpoint is a Hugging Face `transformers` folder (config.json + weights) of a WavLM
model, e.g. a copy of microsoft/wavlm-base-plus (12 layers, hidden 768, relative position
buckets 320 up to 800). The graph reads `audio` float32 [B, window] 16 kHz mono in [-1, 1]
and writes `embedding` [B,768]: the last hidden state averaged over the window's frames
(49 frames of 20 ms per second). When the folder's preprocessor_config.json says
`do_normalize: true` (or --normalize), each window is first scaled to zero mean and unit
variance as the feature extractor does (`(x - mean) / sqrt(var + 1e-7)`), inside the graph.

The window is fixed in the graph (the tracer bakes the frame count into WavLM's relative
position bias): `--window` samples (default 16000 = 1 s), declared with `--hop` (default
4000 = 250 ms) in `affect.input.window` / `affect.input.hop`. One 1 s window took 0.34 s
on one core (ONNX Runtime 1.31.1): at a 250 ms hop that is 1.4 core-seconds per second of
audio; use a GPU, more threads or a longer hop for live streams.

Usage:
  python byo_wavlm.py --checkpoint wavlm-base-plus/ --out weights/wavlm-base-plus.onnx [--check]
  python byo_wavlm.py --random-init 0 --out /tmp/wavlm-random.onnx
Licence: Microsoft publishes WavLM's weights under the MIT licence of the unilm
repository (model card of microsoft/wavlm-base-plus); recorded as MIT unless --license.
"""

import torch

import byo_common as bc


def base_plus_config():
    """microsoft/wavlm-base-plus's architecture."""
    from transformers import WavLMConfig

    return WavLMConfig(hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                       intermediate_size=3072, hidden_act="gelu", feat_extract_norm="group",
                       **bc.WAV2VEC2_FEATURE_ENCODER, conv_bias=False,
                       do_stable_layer_norm=False, num_buckets=320, max_bucket_distance=800,
                       layer_norm_eps=1e-5)


def network(folder=None):
    from transformers import WavLMModel

    return bc.hf_network(WavLMModel, base_plus_config, folder)


def do_normalize(folder, default=False):
    return bool(bc.preprocessor_config(folder).get("do_normalize", default))


class Pooled(torch.nn.Module):
    """Mean over frames of the last hidden state, optional per-window normalisation."""

    def __init__(self, net, normalize):
        super().__init__()
        self.net, self.normalize = net, normalize

    def forward(self, x):
        if self.normalize:
            x = bc.normalise_windows(x)
        return self.net(input_values=x).last_hidden_state.mean(dim=1)


def main():
    ap = bc.common_args(__doc__.splitlines()[0], "MIT")
    ap.add_argument("--window", type=int, default=16000, help="samples per run (16 kHz)")
    ap.add_argument("--hop", type=int, default=4000, help="samples between runs")
    ap.add_argument("--normalize", action="store_true",
                    help="normalise each window (default: the folder's preprocessor_config)")
    args = ap.parse_args()
    net = bc.hf_build_or_load(args, network)
    normalize = args.normalize or do_normalize(args.checkpoint)
    model = Pooled(net, normalize).eval()
    x = 0.1 * torch.randn(2, args.window)
    dim = net.config.hidden_size
    bc.write(args, model, x, "audio", ["embedding"],
             bc.audio_props(args.name or "wavlm-base-plus", args.license, args.window, args.hop,
                            ["embedding"], dim,
                            "WavLM (user checkpoint), mean of the last hidden state, "
                            f"{'normalised windows, ' if normalize else ''}"
                            "converted by weights/convert/byo_wavlm.py"))


if __name__ == "__main__":
    main()
