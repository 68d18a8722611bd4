#!/usr/bin/env python3
"""HSEmotion / EmotiEffLib `enet_b0_8_va_mtl` (your checkpoint) -> a `face-feature` ONNX model.

The model: timm's EfficientNet-B0 whose classifier is one Linear(1280, 10): 8 AffectNet
expression logits (Anger, Contempt, Disgust, Fear, Happiness, Neutral, Sadness, Surprise,
the hsemotion / emotiefflib `idx_to_class` order) then valence and arousal (raw linear
outputs, the last two of the head, as `HSEmotionRecognizer.predict_emotions` returns
them; no package code names the two, valence first is assumed from the name `va`). The checkpoint is the package's `enet_b0_8_va_mtl.pt` (a whole pickled timm
module; loading it needs timm importable and runs pickle: only use a file you trust) or a
state dict of the same network.

Preprocessing as the packages do it: RGB resized to 224x224, ImageNet mean/std
(affect.input.mean 123.675,116.28,103.53 / std 58.395,57.12,57.375), NCHW.

Outputs (`affect.output.names = probs,embedding,va_expr`):
- `probs`     [B,8]  softmax of the 8 expression logits, model order; with
                     `affect.output.affwild2-map = 1,7,2,3,4,0,5,6` featextract attaches
                     them in the Aff-Wild2 order. Contempt has no Aff-Wild2 class and is
                     mapped to `Other` (a judgement call: Aff-Wild2's Other holds every
                     expression outside the seven).
- `embedding` [B,1280] the pooled features before the head (`featextract output=embedding`:
                     the vector to train a fusion model on, as the ABAW entries did).
- `va_expr`   [B,10] the default feature vector: valence, arousal, then the 8 expression
                     probabilities in Aff-Wild2 order (Neutral..Other; Other = Contempt),
                     named in `affect.output.feature-names`. This is what the
                     `fusion-passthrough` model reads (`fusion_passthrough.py`).

Usage:
  python byo_hsemotion.py --checkpoint enet_b0_8_va_mtl.pt --out weights/hsemotion-va.onnx [--check]
  python byo_hsemotion.py --random-init 0 --out /tmp/hsemotion-random.onnx
Licence: HSEmotion / EmotiEffLib code and models are Apache-2.0 (package metadata of
hsemotion 0.3.0 and emotiefflib 1.1.1); the model was trained on AffectNet, whose own
licence restricts use to research: check before commercial use.
"""

import torch

import byo_common as bc

HSE_LABELS = ["Anger", "Contempt", "Disgust", "Fear", "Happiness", "Neutral", "Sadness", "Surprise"]
# HSEmotion class -> Aff-Wild2 index (Contempt -> Other).
TO_AFFWILD2 = {"Anger": 1, "Contempt": 7, "Disgust": 2, "Fear": 3, "Happiness": 4,
               "Neutral": 0, "Sadness": 5, "Surprise": 6}
AFFWILD2_MAP = [TO_AFFWILD2[label] for label in HSE_LABELS]
SIZE = 224
FEATURE_NAMES = ["valence", "arousal"] + [f"p_{c}" for c in bc.AFFWILD2]


def network():
    """The exact architecture: timm efficientnet_b0 with a 10-way head."""
    import timm

    return timm.create_model("efficientnet_b0", pretrained=False, num_classes=10)


def load(checkpoint):
    net = network()
    sd = bc.load_state_dict(checkpoint)
    # Some exports keep the head as Sequential(Linear): classifier.0.* -> classifier.*
    sd = {k.replace("classifier.0.", "classifier."): v for k, v in sd.items()}
    net.load_state_dict(sd, strict=True)
    return net


class Wrapped(torch.nn.Module):
    """The backbone and its head, with the outputs above."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        # Aff-Wild2 slot k takes model class perm[k].
        perm = [AFFWILD2_MAP.index(k) for k in range(8)]
        self.register_buffer("perm", torch.tensor(perm, dtype=torch.long), persistent=False)

    def forward(self, x):
        emb = self.net.forward_head(self.net.forward_features(x), pre_logits=True)
        head = self.net.classifier(emb)
        probs = torch.softmax(head[:, :8], dim=1)
        va_expr = torch.cat([head[:, 8:10], probs[:, self.perm]], dim=1)
        return probs, emb, va_expr


OUTPUTS = ["probs", "embedding", "va_expr"]


def main():
    ap = bc.common_args(__doc__.splitlines()[0], "Apache-2.0")
    args = ap.parse_args()
    net = bc.build_or_load(args, network, load)
    model = Wrapped(net).eval()
    x = torch.randn(2, 3, SIZE, SIZE)
    bc.write(args, model, x, "input", OUTPUTS,
             bc.face_props(args.name or "hsemotion-enet-b0-8-va-mtl", args.license, SIZE,
                           bc.IMAGENET_MEAN, bc.IMAGENET_STD, OUTPUTS, 10,
                           "HSEmotion / EmotiEffLib enet_b0_8_va_mtl (user checkpoint), "
                           "converted by weights/convert/byo_hsemotion.py",
                           {"affect.output.feature-names": ",".join(FEATURE_NAMES),
                            "affect.output.labels": ",".join(HSE_LABELS),
                            "affect.output.affwild2-map": ",".join(str(i) for i in AFFWILD2_MAP)}))


if __name__ == "__main__":
    main()
