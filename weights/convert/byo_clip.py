#!/usr/bin/env python3
"""CLIP ViT-B/32 image encoder (your checkpoint) -> a `face-feature` ONNX embedding model.

The checkpoint is a Hugging Face `transformers` folder (config.json + model.safetensors
or pytorch_model.bin) of a CLIPModel (e.g. a copy of openai/clip-vit-base-patch32) or of
a CLIPVisionModelWithProjection; only the vision tower and its projection are read.
Preprocessing: RGB resized to the config's image size (224), CLIP's mean/std (from the
folder's preprocessor_config.json when present, else CLIP's published
0.48145466,0.4578275,0.40821073 / 0.26862954,0.26130258,0.27577711 on 0..1), NCHW.
CLIP itself resizes the short side (bicubic) and centre-crops; featextract resizes the
square face crop bilinearly, which is the same geometry for a square crop.

Output `embedding` [B,512]: `image_embeds`, the projected image embedding CLIP compares
with text (not L2-normalised; normalise it yourself for cosine similarities), as
`CLIPModel.get_image_features` returns it.

Usage:
  python byo_clip.py --checkpoint clip-vit-base-patch32/ --out weights/clip-b32.onnx [--check]
  python byo_clip.py --random-init 0 --out /tmp/clip-random.onnx
Licence: OpenAI's CLIP weights are released under the MIT licence of the CLIP repository
(its model card restricts deployment use cases; read it); recorded as MIT unless you pass
--license.
"""

import torch

import byo_common as bc

CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


def vit_b32_config():
    """openai/clip-vit-base-patch32's vision tower."""
    from transformers import CLIPVisionConfig

    return CLIPVisionConfig(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                            num_attention_heads=12, image_size=224, patch_size=32,
                            projection_dim=512, hidden_act="quick_gelu", layer_norm_eps=1e-5,
                            num_channels=3)


def network(folder=None):
    from transformers import CLIPVisionModelWithProjection

    return bc.hf_network(CLIPVisionModelWithProjection, vit_b32_config, folder)


def mean_std(folder):
    c = bc.preprocessor_config(folder)
    return c.get("image_mean", CLIP_MEAN), c.get("image_std", CLIP_STD)


class Embedding(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(pixel_values=x).image_embeds


def main():
    ap = bc.common_args(__doc__.splitlines()[0], "MIT")
    args = ap.parse_args()
    net = bc.hf_build_or_load(args, network)
    model = Embedding(net).eval()
    size, dim = net.config.image_size, net.config.projection_dim
    mean, std = mean_std(args.checkpoint)
    x = torch.randn(2, 3, size, size)
    bc.write(args, model, x, "input", ["embedding"],
             bc.face_props(args.name or "clip-vit-b32", args.license, size, mean, std,
                           ["embedding"], dim,
                           "CLIP ViT-B/32 image encoder (user checkpoint), converted by "
                           "weights/convert/byo_clip.py"))


if __name__ == "__main__":
    main()
