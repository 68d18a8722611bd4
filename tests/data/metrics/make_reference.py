#!/usr/bin/env python3
"""Reference values for tests/metrics.rs, computed independently of the Rust code.

CCC: the formula in numpy (float64, population moments); macro-F1 and the confusion
matrix: scikit-learn's f1_score(average="macro", labels=range(8), zero_division=z) and
confusion_matrix(labels=range(8)). Invalid frames (VA -5, EXPR -1) are removed before
the call, as src/metrics/ does. Inputs are float32 values (written exactly) so Rust
reads the same numbers.

Run once (the output is committed):
    python3 -m venv .cache/venv-h1 && .cache/venv-h1/bin/pip install numpy scikit-learn
    .cache/venv-h1/bin/python tests/data/metrics/make_reference.py > tests/data/metrics/reference.json
"""
import json
import sys

import numpy as np
import sklearn
from sklearn.metrics import confusion_matrix, f1_score

rng = np.random.default_rng(20260125)


def ccc_numpy(x, y):
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    mx, my = x.mean(), y.mean()
    vx, vy = x.var(), y.var()
    cov = np.mean((x - mx) * (y - my))
    den = vx + vy + (mx - my) ** 2
    # 0/0 (both constant and equal): defined as 1 (perfect agreement), see src/metrics/.
    return float(2 * cov / den) if den > 0 else 1.0


def f32(a):
    return [float(v) for v in np.asarray(a, dtype=np.float32)]


def ccc_case(name, pred, truth):
    pred = np.asarray(pred, dtype=np.float32)
    truth = np.asarray(truth, dtype=np.float32)
    valid = truth != -5.0
    case = {"name": name, "pred": f32(pred), "truth": f32(truth)}
    if valid.sum() == 0:
        case["error"] = "no_valid_frames"
    else:
        case["ccc"] = ccc_numpy(pred[valid], truth[valid])
    return case


def va_case(name, pred, truth):
    pred = np.asarray(pred, dtype=np.float32)
    truth = np.asarray(truth, dtype=np.float32)
    valid = (truth[:, 0] != -5.0) & (truth[:, 1] != -5.0)
    case = {"name": name, "pred": [f32(r) for r in pred], "truth": [f32(r) for r in truth]}
    if valid.sum() == 0:
        case["error"] = "no_valid_frames"
    else:
        v = ccc_numpy(pred[valid, 0], truth[valid, 0])
        a = ccc_numpy(pred[valid, 1], truth[valid, 1])
        case.update(valence=v, arousal=a, mean=(v + a) / 2, frames=int(valid.sum()))
    return case


def f1_case(name, pred, truth):
    pred = np.asarray(pred, dtype=np.int64)
    truth = np.asarray(truth, dtype=np.int64)
    valid = truth != -1
    case = {"name": name, "pred": pred.tolist(), "truth": truth.tolist()}
    if valid.sum() == 0:
        case["error"] = "no_valid_frames"
        return case
    yt, yp = truth[valid], pred[valid]
    labels = list(range(8))
    case["macro_f1_zero_division_0"] = float(f1_score(yt, yp, average="macro", labels=labels, zero_division=0))
    case["macro_f1_zero_division_1"] = float(f1_score(yt, yp, average="macro", labels=labels, zero_division=1))
    case["f1_per_class_zero_division_0"] = [float(v) for v in f1_score(yt, yp, average=None, labels=labels, zero_division=0)]
    case["confusion"] = confusion_matrix(yt, yp, labels=labels).tolist()
    return case


def main():
    ccc = []
    n = 240
    t = np.clip(rng.normal(0.1, 0.4, n), -1, 1)
    p = np.clip(0.7 * t + rng.normal(0.05, 0.2, n), -1, 1)
    t_inv = t.copy()
    t_inv[rng.choice(n, 40, replace=False)] = -5.0
    ccc.append(ccc_case("correlated", p, t))
    ccc.append(ccc_case("correlated_with_invalid_frames", p, t_inv))
    ccc.append(ccc_case("negated", -t, t))
    ccc.append(ccc_case("shifted", t + 0.3, t))
    ccc.append(ccc_case("constant_prediction", np.full(n, 0.2), t))
    ccc.append(ccc_case("constant_truth_other_mean", np.full(5, 0.4), np.full(5, -0.3)))
    ccc.append(ccc_case("constant_equal", np.full(5, 0.25), np.full(5, 0.25)))
    ccc.append(ccc_case("single_valid_frame", [0.3, 0.9, -0.2], [-5.0, 0.5, -5.0]))
    ccc.append(ccc_case("all_invalid", [0.1, 0.2, 0.3], [-5.0, -5.0, -5.0]))

    va = []
    m = 180
    tv = np.clip(rng.normal(0.0, 0.5, (m, 2)), -1, 1)
    pv = np.clip(tv * [0.8, 0.5] + rng.normal(0, [0.15, 0.3], (m, 2)), -1, 1)
    tv_inv = tv.copy()
    tv_inv[rng.choice(m, 20, replace=False)] = -5.0
    tv_inv[rng.choice(m, 7, replace=False), 0] = -5.0  # one dimension only: frame dropped
    tv_inv[rng.choice(m, 7, replace=False), 1] = -5.0
    va.append(va_case("va_correlated", pv, tv))
    va.append(va_case("va_with_invalid_frames", pv, tv_inv))
    va.append(va_case("va_all_invalid", pv[:4], np.full((4, 2), -5.0)))

    f1 = []
    k = 300
    yt = rng.integers(0, 8, k)
    yp = np.where(rng.random(k) < 0.6, yt, rng.integers(0, 8, k))
    yt_inv = yt.copy()
    yt_inv[rng.choice(k, 30, replace=False)] = -1
    f1.append(f1_case("random_8_classes", yp, yt))
    f1.append(f1_case("with_invalid_frames", yp, yt_inv))
    # Class 7 (Other) and 3 (Fear) never in truth nor prediction.
    yt2 = rng.choice([0, 1, 2, 4, 5, 6], k)
    yp2 = np.where(rng.random(k) < 0.5, yt2, rng.choice([0, 1, 2, 4, 5, 6], k))
    f1.append(f1_case("two_classes_never_present", yp2, yt2))
    # Class 6 predicted but never true; class 5 true but never predicted.
    yt3 = rng.choice([0, 1, 5], 60)
    yp3 = np.where(yt3 == 5, 0, np.where(rng.random(60) < 0.3, 6, yt3))
    f1.append(f1_case("predicted_never_true", yp3, yt3))
    f1.append(f1_case("constant_prediction", np.full(50, 4), rng.integers(0, 8, 50)))
    f1.append(f1_case("perfect", yt[:100], yt[:100]))
    f1.append(f1_case("all_invalid", [0, 1, 2], [-1, -1, -1]))

    json.dump(
        {
            "generator": "tests/data/metrics/make_reference.py",
            "numpy": np.__version__,
            "sklearn": sklearn.__version__,
            "ccc": ccc,
            "va": va,
            "f1": f1,
        },
        sys.stdout,
        indent=1,
    )
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
