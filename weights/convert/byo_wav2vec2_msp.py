#!/usr/bin/env python3
"""audEERING wav2vec2 dimensional speech emotion (your checkpoint) -> an `audio-feature` ONNX model.

The model is audeering/wav2vec2-large-robust-12-ft-emotion-msp-dim: a Wav2Vec2
large-robust (hidden 1024, 16 heads, stable layer norm, layer-normalised conv feature
encoder with biases) pruned to 12 transformer layers, then the model card's
`RegressionHead` (dropout, Linear 1024->1024, tanh, dropout, Linear 1024->3) on the
hidden states averaged over time; the three outputs are arousal, dominance, valence
(about 0..1; the config's id2label). The checkpoint is a Hugging Face `transformers`
folder (config.json + weights) with the `wav2vec2.*` and `classifier.*` tensors as the
model card's `EmotionModel` saves them.

The graph reads `audio` float32 [B, window] 16 kHz mono in [-1, 1], normalises each
window to zero mean and unit variance (`(x - mean) / sqrt(var + 1e-7)`, the model's
Wav2Vec2FeatureExtractor with do_normalize=True) and writes
- `embedding` [B,1024]: the pooled hidden states (what the head reads), and
- `dims` [B,3]: arousal, dominance, valence (`affect.output.feature-names`), the default
  feature vector.
`affect.output.names = embedding,dims`: featextract attaches `dims`; `output=embedding`
gives the 1024-d vector for a fusion model you train. The window is fixed in the graph:
`--window` (default 32000 = 2 s; the model was trained on whole utterances, shorter
windows give noisier dims), `--hop` (default 8000 = 0.5 s). A 2 s window took 0.6 s on
one core (ONNX Runtime 1.31.1), so at the default hop the model needs ~1.2 core-seconds
per second of audio: use a GPU, more threads or a longer hop for live streams.

Usage:
  python byo_wav2vec2_msp.py --checkpoint wav2vec2-large-robust-12-ft-emotion-msp-dim/ \
      --out weights/w2v2-msp-dim.onnx [--check]
  python byo_wav2vec2_msp.py --random-init 0 --out /tmp/w2v2-random.onnx
Licence: audEERING publishes this model under CC BY-NC-SA 4.0 (model card): NON-COMMERCIAL
use only; recorded as CC-BY-NC-SA-4.0 unless you pass --license.
"""

import torch
from torch import nn

import byo_common as bc

DIM_LABELS = ["arousal", "dominance", "valence"]


def large_robust_12_config():
    """The architecture of audeering/wav2vec2-large-robust-12-ft-emotion-msp-dim."""
    from transformers import Wav2Vec2Config

    return Wav2Vec2Config(hidden_size=1024, num_hidden_layers=12, num_attention_heads=16,
                          intermediate_size=4096, hidden_act="gelu", feat_extract_norm="layer",
                          **bc.WAV2VEC2_FEATURE_ENCODER, conv_bias=True,
                          do_stable_layer_norm=True, layer_norm_eps=1e-5, num_labels=3,
                          final_dropout=0.1,
                          id2label={0: "arousal", 1: "dominance", 2: "valence"},
                          label2id={"arousal": 0, "dominance": 1, "valence": 2},
                          vocab_size=None)


def emotion_model_class():
    """The model card's `EmotionModel` and `RegressionHead`, as published."""
    from transformers import Wav2Vec2Model
    from transformers.models.wav2vec2.modeling_wav2vec2 import Wav2Vec2PreTrainedModel

    class RegressionHead(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.dense = nn.Linear(config.hidden_size, config.hidden_size)
            self.dropout = nn.Dropout(config.final_dropout)
            self.out_proj = nn.Linear(config.hidden_size, config.num_labels)

        def forward(self, features, **kwargs):
            x = self.dropout(features)
            x = torch.tanh(self.dense(x))
            x = self.dropout(x)
            return self.out_proj(x)

    class EmotionModel(Wav2Vec2PreTrainedModel):
        def __init__(self, config):
            super().__init__(config)
            self.config = config
            self.wav2vec2 = Wav2Vec2Model(config)
            self.classifier = RegressionHead(config)
            self.post_init()

        def forward(self, input_values):
            hidden_states = self.wav2vec2(input_values)[0]
            hidden_states = torch.mean(hidden_states, dim=1)
            return hidden_states, self.classifier(hidden_states)

    return EmotionModel


def network(folder=None):
    return bc.hf_network(emotion_model_class(), large_robust_12_config, folder)


class Normalised(nn.Module):
    """Per-window normalisation, then the model: (embedding, dims)."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(bc.normalise_windows(x))


def main():
    ap = bc.common_args(__doc__.splitlines()[0], "CC-BY-NC-SA-4.0")
    ap.add_argument("--window", type=int, default=32000, help="samples per run (16 kHz)")
    ap.add_argument("--hop", type=int, default=8000, help="samples between runs")
    args = ap.parse_args()
    net = bc.hf_build_or_load(args, network)
    labels = [net.config.id2label[i] for i in range(net.config.num_labels)]
    model = Normalised(net).eval()
    x = 0.1 * torch.randn(2, args.window)
    outs = ["embedding", "dims"]
    bc.write(args, model, x, "audio", outs,
             bc.audio_props(args.name or "w2v2-msp-dim", args.license, args.window, args.hop,
                            outs, len(labels),
                            "audEERING wav2vec2-large-robust-12-ft-emotion-msp-dim (user "
                            "checkpoint), converted by weights/convert/byo_wav2vec2_msp.py",
                            {"affect.output.feature-names": ",".join(labels)}))


if __name__ == "__main__":
    main()
