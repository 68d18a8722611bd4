// SPDX-License-Identifier: MPL-2.0
//! Training losses on burn tensors, with invalid frames masked out.
//!
//! - [`ccc_loss`]: 1 − CCC per dimension (valence, arousal), averaged; the CCC is
//!   computed over every valid frame of the batch (all sequences together).
//! - [`cross_entropy`]: cross-entropy with label smoothing, averaged over valid frames.
//! - [`soft_f1_loss`]: 1 − soft macro-F1 (softmax probabilities as soft counts).
//!
//! No NaN: a batch without a valid frame gives a finite loss with zero gradient
//! (CCC 0, cross-entropy 0, soft F1 0).
//!
//! The `valid` masks are per-frame **weights**: 0 leaves a frame out, 1 is a real label,
//! a weight `w` in (0, 1) (a pseudo-label, `affect-train fit --pseudo-labels`) counts the
//! frame as `w` frames — weighted means and variances in the CCC, the weighted mean
//! `Σ w·l / Σ w` of the cross-entropy, and `w`-weighted soft counts in the soft F1. A frame
//! of weight ½ thus weighs exactly like one of weight 1 appearing half as often.

use burn::tensor::Tensor;
use burn::tensor::activation::{log_softmax, softmax};

/// Keeps denominators away from 0.
pub const EPS: f32 = 1e-8;

/// 1 − CCC averaged over the last axis of `pred`/`target` \[B,T,K\] (K = 2 for VA), over the
/// frames weighted by `valid` \[B,T\] (weighted means, variances and covariance; 0 = left
/// out). Returns a 1-element tensor.
pub fn ccc_loss(pred: Tensor<3>, target: Tensor<3>, valid: Tensor<2>) -> Tensor<1> {
    let [_, _, k] = pred.dims();
    let w = valid.unsqueeze_dim::<3>(2); // [B,T,1]
    let n = w.clone().sum().clamp_min(EPS); // [1]
    // Weighted sums over B and T for each of the K dimensions → [K].
    let wsum = |x: Tensor<3>| -> Tensor<1> { (x * w.clone()).sum_dims_squeeze::<1, _>(&[0, 1]) };
    let mp = wsum(pred.clone()) / n.clone();
    let my = wsum(target.clone()) / n.clone();
    let dp = pred - mp.clone().reshape([1, 1, k]);
    let dy = target - my.clone().reshape([1, 1, k]);
    let vp = wsum(dp.clone() * dp.clone()) / n.clone();
    let vy = wsum(dy.clone() * dy.clone()) / n.clone();
    let cov = wsum(dp * dy) / n;
    let diff = mp - my;
    let ccc = cov * 2.0 / (vp + vy + diff.clone() * diff + EPS);
    ccc.mean().neg() + 1.0
}

/// Cross-entropy of `logits` \[B,T,C\] against one-hot `target` \[B,T,C\] smoothed to
/// `(1 − smoothing) · onehot + smoothing / C`, averaged over the frames weighted by
/// `valid` \[B,T\] (`Σ w·l / Σ w`; 0 = left out). Returns a 1-element tensor.
pub fn cross_entropy(
    logits: Tensor<3>,
    target: Tensor<3>,
    valid: Tensor<2>,
    smoothing: f32,
) -> Tensor<1> {
    let [_, _, c] = logits.dims();
    let q = target * (1.0 - smoothing) + smoothing / c as f32;
    let per_frame = (q * log_softmax(logits, 2)).sum_dim(2).neg(); // [B,T,1]
    let w = valid.unsqueeze_dim::<3>(2);
    // Σ w, not clamped to 1: a batch of pseudo-labels only (all w < 1) is still a mean.
    let n = w.clone().sum().clamp_min(EPS);
    (per_frame * w).sum() / n
}

/// 1 − soft macro-F1 over the C classes of `logits` \[B,T,C\] against one-hot `target`,
/// over the frames weighted by `valid` \[B,T\]: per class `2·tp / (2·tp + fp + fn)` with
/// softmax probabilities as soft counts, each frame's counts times its weight (`tp = Σ w·p·y`,
/// not `Σ w²·p·y`). Returns a 1-element tensor.
pub fn soft_f1_loss(logits: Tensor<3>, target: Tensor<3>, valid: Tensor<2>) -> Tensor<1> {
    let w = valid.unsqueeze_dim::<3>(2);
    let p = softmax(logits, 2) * w.clone();
    let tp = (p.clone() * target.clone()).sum_dims_squeeze::<1, _>(&[0, 1]);
    let y = target * w;
    let sp = p.sum_dims_squeeze::<1, _>(&[0, 1]);
    let sy = y.sum_dims_squeeze::<1, _>(&[0, 1]);
    // 2tp + fp + fn = Σp + Σy.
    let f1 = tp * 2.0 / (sp + sy + EPS);
    f1.mean().neg() + 1.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::{cpu_device, train_device};
    use burn::tensor::{Device, TensorData};

    fn t3(v: &[f32], s: [usize; 3], d: &Device) -> Tensor<3> {
        Tensor::from_data(TensorData::new(v.to_vec(), s), d)
    }
    fn t2(v: &[f32], s: [usize; 2], d: &Device) -> Tensor<2> {
        Tensor::from_data(TensorData::new(v.to_vec(), s), d)
    }
    fn scalar(t: Tensor<1>) -> f32 {
        t.into_data().iter::<f32>().next().unwrap()
    }

    #[test]
    fn ccc_loss_matches_hand_computation_and_masks_invalid_frames() {
        let _rng = crate::train::models::testing::rng_lock();
        let d = cpu_device();
        // Valence: pred 1,2,3 vs target 2,4,6 → means 2, 4; var 2/3, 8/3; cov 4/3;
        // CCC = (8/3) / (2/3 + 8/3 + 4) = 8/22. Arousal: constant prediction → CCC 0.
        // A 4th frame is invalid and holds garbage that must not count.
        let pred = t3(&[1., 0.5, 2., 0.5, 3., 0.5, 100., -100.], [1, 4, 2], &d);
        let target = t3(&[2., 1., 4., 2., 6., 3., -5., -5.], [1, 4, 2], &d);
        let valid = t2(&[1., 1., 1., 0.], [1, 4], &d);
        let l = scalar(ccc_loss(pred, target.clone(), valid.clone()));
        let want = 1.0 - (8.0 / 22.0 + 0.0) / 2.0;
        assert!((l - want).abs() < 1e-6, "{l} vs {want}");
        // Perfect prediction → 0; across two sequences of the batch (global CCC).
        let target2 = t3(&[2., 1., 4., 2., 6., 3., 1., 5.], [2, 2, 2], &d);
        let l = scalar(ccc_loss(target2.clone(), target2, t2(&[1.; 4], [2, 2], &d)));
        assert!(l.abs() < 1e-6, "{l}");
        // Sign flip → CCC −1 for both → loss 2.
        let p = t3(&[1., -1., -1., 1.], [1, 2, 2], &d);
        let l = scalar(ccc_loss(p.clone(), p.neg(), t2(&[1., 1.], [1, 2], &d)));
        assert!((l - 2.0).abs() < 1e-6, "{l}");
    }

    #[test]
    fn all_invalid_frames_give_finite_losses_and_zero_gradients() {
        let _rng = crate::train::models::testing::rng_lock();
        let d = train_device();
        let logits = t3(&[1., 2., 3., 4.], [1, 2, 2], &d).require_grad();
        let target = t3(&[1., 0., 0., 1.], [1, 2, 2], &d);
        let valid = t2(&[0., 0.], [1, 2], &d);
        for (i, l) in [
            ccc_loss(logits.clone(), target.clone(), valid.clone()),
            cross_entropy(logits.clone(), target.clone(), valid.clone(), 0.1),
            soft_f1_loss(logits.clone(), target.clone(), valid.clone()),
        ]
        .into_iter()
        .enumerate()
        {
            let v = scalar(l.clone().inner());
            assert!(v.is_finite(), "loss {i}: {v}");
            let grads = l.backward();
            let g = logits.grad(&grads).unwrap();
            assert!(
                g.into_data().iter::<f32>().all(|x| x == 0.0),
                "loss {i} has a gradient through invalid frames"
            );
        }
    }

    #[test]
    fn cross_entropy_with_label_smoothing_by_hand() {
        let _rng = crate::train::models::testing::rng_lock();
        let d = cpu_device();
        // p = softmax(0, ln 3) = (0.25, 0.75); class 1, ε = 0.1 → q = (0.05, 0.95):
        // −(0.05 ln 0.25 + 0.95 ln 0.75) = 0.342612675. Frame 2 is invalid (garbage logits).
        let logits = t3(&[0., 3f32.ln(), 50., -50.], [1, 2, 2], &d);
        let target = t3(&[0., 1., 0., 0.], [1, 2, 2], &d);
        let valid = t2(&[1., 0.], [1, 2], &d);
        let l = scalar(cross_entropy(
            logits.clone(),
            target.clone(),
            valid.clone(),
            0.1,
        ));
        let want = -(0.05 * 0.25f32.ln() + 0.95 * 0.75f32.ln());
        assert!((l - want).abs() < 1e-6, "{l} vs {want}");
        // No smoothing: −ln 0.75.
        let l = scalar(cross_entropy(logits, target, valid, 0.0));
        assert!((l + 0.75f32.ln()).abs() < 1e-6, "{l}");
        // Uniform logits over 8 classes: ln 8 whatever the smoothing.
        let z = Tensor::<3>::zeros([2, 3, 8], &d);
        let mut oh = vec![0.0f32; 48];
        for f in 0..6 {
            oh[f * 8 + f % 8] = 1.0;
        }
        let l = scalar(cross_entropy(
            z,
            t3(&oh, [2, 3, 8], &d),
            t2(&[1.; 6], [2, 3], &d),
            0.2,
        ));
        assert!((l - 8f32.ln()).abs() < 1e-5, "{l}");
    }

    #[test]
    fn fractional_mask_weights_a_frame_by_its_weight() {
        let _rng = crate::train::models::testing::rng_lock();
        let d = cpu_device();
        // CCC, weights (1, 1, ½): the weighted statistics of pred (1, 1, 2, 2, 3) vs target
        // (2, 2, 4, 4, 6) with weights 2,2,1 → mean 1.8 / 3.6, var 0.56 / 2.24, cov 1.12,
        // CCC = 2.24 / (0.56 + 2.24 + 1.8²) = 2.24 / 6.04; arousal: constant pred → 0.
        let pred = t3(&[1., 0.5, 2., 0.5, 3., 0.5], [1, 3, 2], &d);
        let target = t3(&[2., 1., 4., 2., 6., 3.], [1, 3, 2], &d);
        let l = scalar(ccc_loss(pred, target, t2(&[1., 1., 0.5], [1, 3], &d)));
        let want = 1.0 - (2.24 / 6.04) / 2.0;
        assert!((l - want).abs() < 1e-6, "{l} vs {want}");
        // Cross-entropy (no smoothing): frame 1 real, p = (¼, ¾), class 1 → −ln ¾; frame 2
        // weight ½, p = (½, ½), class 0 → ln 2: (ln 4/3 + ½ ln 2) / 1.5.
        let logits = t3(&[0., 3f32.ln(), 0., 0.], [1, 2, 2], &d);
        let target = t3(&[0., 1., 1., 0.], [1, 2, 2], &d);
        let half = t2(&[1., 0.5], [1, 2], &d);
        let l = scalar(cross_entropy(
            logits.clone(),
            target.clone(),
            half.clone(),
            0.0,
        ));
        let want = ((4.0f32 / 3.0).ln() + 0.5 * 2f32.ln()) / 1.5;
        assert!((l - want).abs() < 1e-6, "{l} vs {want}");
        // A batch of one pseudo-labelled frame alone is still its mean: ln 2.
        let l = scalar(cross_entropy(
            logits.clone(),
            target.clone(),
            t2(&[0., 0.5], [1, 2], &d),
            0.0,
        ));
        assert!((l - 2f32.ln()).abs() < 1e-6, "{l}");
        // Soft F1 with weights (1, ½): class 0: tp ½·½ = ¼, Σp ¼ + ½·½ = ½, Σy ½ → F1 ½;
        // class 1: tp ¾, Σp ¾ + ½·½ = 1, Σy 1 → F1 ¾. Loss 1 − (½ + ¾)/2 = 0.375.
        let l = scalar(soft_f1_loss(logits, target, half));
        assert!((l - 0.375).abs() < 1e-6, "{l}");
    }

    #[test]
    fn soft_f1_loss_by_hand() {
        let _rng = crate::train::models::testing::rng_lock();
        let d = cpu_device();
        // Frame 1: p = (0.25, 0.75), class 1; frame 2: p = (0.5, 0.5), class 0.
        // Class 0: tp 0.5, fp 0.25, fn 0.5 → F1 = 1/1.75; class 1: tp 0.75, fp 0.5,
        // fn 0.25 → F1 = 1.5/2.25. Loss = 1 − mean. Frame 3 invalid.
        let logits = t3(&[0., 3f32.ln(), 0., 0., 9., -9.], [1, 3, 2], &d);
        let target = t3(&[0., 1., 1., 0., 0., 1.], [1, 3, 2], &d);
        let valid = t2(&[1., 1., 0.], [1, 3], &d);
        let l = scalar(soft_f1_loss(logits, target, valid));
        let want = 1.0 - (1.0 / 1.75 + 1.5 / 2.25) / 2.0;
        assert!((l - want).abs() < 1e-6, "{l} vs {want}");
        // Confident and right → ≈ 0.
        let logits = t3(&[20., -20., -20., 20.], [1, 2, 2], &d);
        let target = t3(&[1., 0., 0., 1.], [1, 2, 2], &d);
        let l = scalar(soft_f1_loss(logits, target, t2(&[1., 1.], [1, 2], &d)));
        assert!(l.abs() < 1e-6, "{l}");
    }
}
