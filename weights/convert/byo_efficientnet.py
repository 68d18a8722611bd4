#!/usr/bin/env python3
"""EfficientNet-B0 (your ImageNet checkpoint) -> a `face-feature` ONNX embedding model.

A generic image embedding of the face crop: the 1280-d globally pooled features before
the ImageNet classifier. Two checkpoint layouts are read, told apart by their keys:
- torchvision's `efficientnet_b0` state dict (`features.0.0.weight`, ...; e.g. the
  IMAGENET1K_V1 file `efficientnet_b0_rwightman-7f5810bc.pth`);
- timm's `efficientnet_b0` state dict or pickled module (`conv_stem.weight`, ...).
The classifier weights in the file are not used (any number of classes is fine).

Preprocessing: RGB resized to 224x224, ImageNet mean/std (affect.input.mean
123.675,116.28,103.53 / std 58.395,57.12,57.375), NCHW. Output `embedding` [B,1280]
(`affect.output.names = embedding`). Nothing here knows about faces or affect: the vector
is for a fusion model you train (`affect-train`).

Usage:
  python byo_efficientnet.py --checkpoint efficientnet_b0.pth --out weights/effnet-b0.onnx [--check]
  python byo_efficientnet.py --random-init 0 [--arch timm] --out /tmp/effnet-random.onnx
Licence: that of your checkpoint (torchvision's and timm's ImageNet weights are published
under BSD-3-Clause / Apache-2.0 code licences, but ImageNet's terms restrict the data to
non-commercial research; recorded as `unknown` unless you pass --license).
"""

import sys

import torch

import byo_common as bc

SIZE = 224


def network(arch, num_classes=1000):
    """EfficientNet-B0 of torchvision or timm with a `num_classes`-way classifier."""
    if arch == "torchvision":
        import torchvision

        return torchvision.models.efficientnet_b0(weights=None, num_classes=num_classes)
    import timm

    return timm.create_model("efficientnet_b0", pretrained=False, num_classes=num_classes)


def detect(sd):
    if any(k.startswith("features.0.0.") for k in sd):
        return "torchvision"
    if any(k.startswith("conv_stem.") for k in sd):
        return "timm"
    sys.exit("checkpoint is neither a torchvision (features.*) nor a timm (conv_stem.*) "
             "EfficientNet-B0 state dict")


class Embedding(torch.nn.Module):
    """Pooled 1280-d features of either implementation."""

    def __init__(self, net, arch):
        super().__init__()
        self.net, self.arch = net, arch

    def forward(self, x):
        if self.arch == "torchvision":
            return torch.flatten(self.net.avgpool(self.net.features(x)), 1)
        return self.net.forward_head(self.net.forward_features(x), pre_logits=True)


def load(checkpoint):
    sd = bc.load_state_dict(checkpoint)
    arch = detect(sd)
    head = "classifier.1." if arch == "torchvision" else "classifier."
    n_classes = sd[head + "weight"].shape[0] if head + "weight" in sd else 1000
    net = network(arch, n_classes)
    net.load_state_dict(sd, strict=True)
    return net, arch


def main():
    ap = bc.common_args(__doc__.splitlines()[0], "unknown")
    ap.add_argument("--arch", choices=["torchvision", "timm"], default="torchvision",
                    help="implementation for --random-init (a checkpoint says which)")
    args = ap.parse_args()
    net, arch = bc.build_or_load(args, lambda: (network(args.arch), args.arch), load)
    model = Embedding(net, arch).eval()
    x = torch.randn(2, 3, SIZE, SIZE)
    bc.write(args, model, x, "input", ["embedding"],
             bc.face_props(args.name or f"efficientnet-b0-{arch}", args.license, SIZE,
                           bc.IMAGENET_MEAN, bc.IMAGENET_STD, ["embedding"], 1280,
                           "EfficientNet-B0 (user checkpoint), converted by "
                           "weights/convert/byo_efficientnet.py"))


if __name__ == "__main__":
    main()
