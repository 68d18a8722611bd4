// SPDX-License-Identifier: MPL-2.0
//! Evaluation metrics of the ABAW challenges, shared by `affect-train fit` / `eval` and
//! the tests: concordance correlation coefficient (CCC) for valence/arousal, and macro-F1
//! with a confusion matrix for the 8 Aff-Wild2 expression classes.
//!
//! Everything accumulates in `f64`. Invalid frames are excluded, with the Aff-Wild2
//! markers: a valence/arousal label of [`VA_INVALID`] (-5) and an expression label of
//! [`EXPR_INVALID`] (-1). No function returns NaN: where a metric has no data (every
//! frame invalid) the result is a [`MetricError`].
//!
//! # Definitions
//!
//! **CCC** (Lin 1989), over the valid frames, with population (`ddof = 0`) moments:
//!
//! ```text
//! CCC = 2·cov(x, y) / (var(x) + var(y) + (mean(x) − mean(y))²)
//! ```
//!
//! Constant predictions are defined by the formula: `cov = 0`, so CCC = 0 whenever the
//! denominator is positive (the truth varies or the means differ). The one case where the
//! formula is 0/0 — both constant *and* equal, i.e. the prediction equals the truth on
//! every valid frame — is defined as 1 (perfect agreement).
//!
//! **Macro-F1** follows scikit-learn's
//! `f1_score(y_true, y_pred, average="macro", labels=range(8), zero_division=z)`: per
//! class `F1 = 2·TP / (2·TP + FP + FN)`, averaged over all 8 classes. A class absent from
//! both truth and prediction has 0/0 and scores `z` ([`ZeroDivision`]); the default
//! ([`ZeroDivision::Zero`], sklearn's default behaviour) counts it as 0, so a validation
//! set missing a class cannot reach macro-F1 1. A class predicted but never true (or true
//! but never predicted) has F1 0 by the formula.
//!
//! **Confusion matrix**: `m[t][p]` counts valid frames of true class `t` predicted as `p`
//! (sklearn's `confusion_matrix(y_true, y_pred, labels=range(8))`).

use std::fmt;

/// Valence/arousal label of an invalid frame in Aff-Wild2 annotations.
pub const VA_INVALID: f32 = -5.0;
/// Expression label of an invalid frame in Aff-Wild2 annotations.
pub const EXPR_INVALID: i64 = -1;
/// Number of expression classes ([`crate::EXPRESSIONS`]).
pub const NUM_CLASSES: usize = 8;

/// Why a metric cannot be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MetricError {
    /// Predictions and labels differ in length.
    #[error("{what}: {predictions} predictions for {labels} labels")]
    Length {
        /// Which metric.
        what: &'static str,
        /// Number of predictions.
        predictions: usize,
        /// Number of labels.
        labels: usize,
    },
    /// Every frame is invalid (or there are none): the metric is undefined.
    #[error("{what}: no valid frame (all {frames} frames are marked invalid)")]
    NoValidFrames {
        /// Which metric.
        what: &'static str,
        /// Frames given.
        frames: usize,
    },
    /// A prediction is NaN or infinite.
    #[error("{what}: prediction {index} is not finite ({value})")]
    NonFinitePrediction {
        /// Which metric.
        what: &'static str,
        /// Frame index.
        index: usize,
        /// The value.
        value: f64,
    },
    /// A label is neither valid nor the invalid marker.
    #[error(
        "{what}: label {index} = {value} is neither in {range} nor the invalid marker {marker}"
    )]
    BadLabel {
        /// Which metric.
        what: &'static str,
        /// Frame index.
        index: usize,
        /// The value.
        value: f64,
        /// The valid range, in words.
        range: &'static str,
        /// The invalid marker.
        marker: f64,
    },
    /// A predicted class index is outside 0..8.
    #[error("{what}: predicted class {value} at frame {index} is outside 0..{NUM_CLASSES}")]
    BadClass {
        /// Which metric.
        what: &'static str,
        /// Frame index.
        index: usize,
        /// The value.
        value: i64,
    },
}

/// `true` when a valence or arousal label marks a valid frame; `Err` for a value that is
/// neither in [-1, 1] nor [`VA_INVALID`].
fn va_label_valid(what: &'static str, index: usize, v: f32) -> Result<bool, MetricError> {
    if v == VA_INVALID {
        Ok(false)
    } else if v.is_finite() && (-1.0..=1.0).contains(&v) {
        Ok(true)
    } else {
        Err(MetricError::BadLabel {
            what,
            index,
            value: v as f64,
            range: "[-1, 1]",
            marker: VA_INVALID as f64,
        })
    }
}

/// CCC of two equally long `f64` series (no masking; at least one value).
fn ccc_f64(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len() as f64;
    let mx = x.iter().sum::<f64>() / n;
    let my = y.iter().sum::<f64>() / n;
    let (mut vx, mut vy, mut cov) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        let (dx, dy) = (a - mx, b - my);
        vx += dx * dx;
        vy += dy * dy;
        cov += dx * dy;
    }
    let (vx, vy, cov) = (vx / n, vy / n, cov / n);
    let den = vx + vy + (mx - my) * (mx - my);
    if den > 0.0 {
        2.0 * cov / den
    } else {
        // Both constant and equal: the prediction is the truth.
        1.0
    }
}

/// CCC of `pred` against `truth` over the frames whose label is not [`VA_INVALID`].
///
/// Errors: different lengths, no valid frame, a non-finite prediction on a valid frame,
/// a label that is neither in [-1, 1] nor -5.
pub fn ccc(pred: &[f32], truth: &[f32]) -> Result<f64, MetricError> {
    const WHAT: &str = "CCC";
    if pred.len() != truth.len() {
        return Err(MetricError::Length {
            what: WHAT,
            predictions: pred.len(),
            labels: truth.len(),
        });
    }
    let mut x = Vec::with_capacity(pred.len());
    let mut y = Vec::with_capacity(pred.len());
    for (i, (&p, &t)) in pred.iter().zip(truth).enumerate() {
        if !va_label_valid(WHAT, i, t)? {
            continue;
        }
        if !p.is_finite() {
            return Err(MetricError::NonFinitePrediction {
                what: WHAT,
                index: i,
                value: p as f64,
            });
        }
        x.push(p as f64);
        y.push(t as f64);
    }
    if x.is_empty() {
        return Err(MetricError::NoValidFrames {
            what: WHAT,
            frames: pred.len(),
        });
    }
    Ok(ccc_f64(&x, &y))
}

/// CCC of valence, arousal and their mean (the ABAW VA score).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct VaCcc {
    /// CCC of valence.
    pub valence: f64,
    /// CCC of arousal.
    pub arousal: f64,
    /// (valence + arousal) / 2.
    pub mean: f64,
    /// Valid frames used.
    pub frames: usize,
}

impl fmt::Display for VaCcc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CCC valence {:.4}, arousal {:.4}, mean {:.4} ({} frames)",
            self.valence, self.arousal, self.mean, self.frames
        )
    }
}

/// CCC of valence and arousal; `pred` and `truth` hold `(valence, arousal)` per frame.
///
/// A frame counts when *both* labels are valid (Aff-Wild2 marks an invalid frame
/// `-5,-5`; a frame with one -5 is excluded from both dimensions, as the ABAW
/// evaluation does). Errors as [`ccc`].
pub fn va_ccc(pred: &[[f32; 2]], truth: &[[f32; 2]]) -> Result<VaCcc, MetricError> {
    const WHAT: &str = "VA CCC";
    if pred.len() != truth.len() {
        return Err(MetricError::Length {
            what: WHAT,
            predictions: pred.len(),
            labels: truth.len(),
        });
    }
    let mut cols: [(Vec<f64>, Vec<f64>); 2] = Default::default();
    for (i, (p, t)) in pred.iter().zip(truth).enumerate() {
        let v0 = va_label_valid(WHAT, i, t[0])?;
        let v1 = va_label_valid(WHAT, i, t[1])?;
        if !(v0 && v1) {
            continue;
        }
        for d in 0..2 {
            if !p[d].is_finite() {
                return Err(MetricError::NonFinitePrediction {
                    what: WHAT,
                    index: i,
                    value: p[d] as f64,
                });
            }
            cols[d].0.push(p[d] as f64);
            cols[d].1.push(t[d] as f64);
        }
    }
    if cols[0].0.is_empty() {
        return Err(MetricError::NoValidFrames {
            what: WHAT,
            frames: pred.len(),
        });
    }
    let valence = ccc_f64(&cols[0].0, &cols[0].1);
    let arousal = ccc_f64(&cols[1].0, &cols[1].1);
    Ok(VaCcc {
        valence,
        arousal,
        mean: (valence + arousal) / 2.0,
        frames: cols[0].0.len(),
    })
}

/// What a class absent from both truth and prediction (F1 = 0/0) scores, as
/// scikit-learn's `zero_division`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ZeroDivision {
    /// Scores 0 (sklearn's default `"warn"` behaves so; the ABAW convention).
    #[default]
    Zero,
    /// Scores 1.
    One,
}

impl ZeroDivision {
    fn value(self) -> f64 {
        match self {
            ZeroDivision::Zero => 0.0,
            ZeroDivision::One => 1.0,
        }
    }
}

/// An 8×8 confusion matrix over the valid frames: `counts[t][p]` = frames of true class
/// `t` predicted as `p`.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct ConfusionMatrix {
    /// Rows: true class; columns: predicted class ([`crate::EXPRESSIONS`] order).
    pub counts: [[u64; NUM_CLASSES]; NUM_CLASSES],
}

impl ConfusionMatrix {
    /// Counts `pred` against `truth`, skipping frames labelled [`EXPR_INVALID`].
    ///
    /// Errors: different lengths, no valid frame, a label outside 0..8 that is not -1, a
    /// prediction outside 0..8 on a valid frame.
    pub fn new(pred: &[i64], truth: &[i64]) -> Result<Self, MetricError> {
        const WHAT: &str = "macro-F1";
        if pred.len() != truth.len() {
            return Err(MetricError::Length {
                what: WHAT,
                predictions: pred.len(),
                labels: truth.len(),
            });
        }
        let mut m = ConfusionMatrix::default();
        let mut valid = 0usize;
        for (i, (&p, &t)) in pred.iter().zip(truth).enumerate() {
            if t == EXPR_INVALID {
                continue;
            }
            if !(0..NUM_CLASSES as i64).contains(&t) {
                return Err(MetricError::BadLabel {
                    what: WHAT,
                    index: i,
                    value: t as f64,
                    range: "0..=7",
                    marker: EXPR_INVALID as f64,
                });
            }
            if !(0..NUM_CLASSES as i64).contains(&p) {
                return Err(MetricError::BadClass {
                    what: WHAT,
                    index: i,
                    value: p,
                });
            }
            m.counts[t as usize][p as usize] += 1;
            valid += 1;
        }
        if valid == 0 {
            return Err(MetricError::NoValidFrames {
                what: WHAT,
                frames: pred.len(),
            });
        }
        Ok(m)
    }

    /// Valid frames counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().flatten().sum()
    }

    /// F1 of each class, `2·TP / (2·TP + FP + FN)`; 0/0 scores `zero_division`.
    pub fn f1_per_class(&self, zero_division: ZeroDivision) -> [f64; NUM_CLASSES] {
        let mut out = [0.0; NUM_CLASSES];
        for (k, o) in out.iter_mut().enumerate() {
            let tp = self.counts[k][k] as f64;
            let fn_: f64 = (0..NUM_CLASSES)
                .filter(|&p| p != k)
                .map(|p| self.counts[k][p] as f64)
                .sum();
            let fp: f64 = (0..NUM_CLASSES)
                .filter(|&t| t != k)
                .map(|t| self.counts[t][k] as f64)
                .sum();
            let den = 2.0 * tp + fp + fn_;
            *o = if den > 0.0 {
                2.0 * tp / den
            } else {
                zero_division.value()
            };
        }
        out
    }

    /// Mean of [`Self::f1_per_class`] over the 8 classes.
    pub fn macro_f1(&self, zero_division: ZeroDivision) -> f64 {
        self.f1_per_class(zero_division).iter().sum::<f64>() / NUM_CLASSES as f64
    }

    /// Fraction of valid frames predicted right.
    pub fn accuracy(&self) -> f64 {
        let tp: u64 = (0..NUM_CLASSES).map(|k| self.counts[k][k]).sum();
        tp as f64 / self.total().max(1) as f64
    }
}

impl fmt::Display for ConfusionMatrix {
    /// A table: one row per true class, one column per predicted class.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:>10}", "true\\pred")?;
        for name in crate::EXPRESSIONS {
            write!(f, " {:>6}", &name[..name.len().min(6)])?;
        }
        writeln!(f)?;
        for (t, row) in self.counts.iter().enumerate() {
            write!(f, "{:>10}", crate::EXPRESSIONS[t])?;
            for c in row {
                write!(f, " {c:>6}")?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

/// Macro-F1 over the 8 classes with sklearn's default `zero_division` (0); see
/// [`ConfusionMatrix::macro_f1`]. Errors as [`ConfusionMatrix::new`].
pub fn macro_f1(pred: &[i64], truth: &[i64]) -> Result<f64, MetricError> {
    Ok(ConfusionMatrix::new(pred, truth)?.macro_f1(ZeroDivision::Zero))
}

/// Index of the largest finite value (the predicted class of a row of logits or
/// probabilities); `None` when no value is finite. Ties go to the lowest index, as
/// numpy's `argmax`.
pub fn argmax(row: &[f32]) -> Option<usize> {
    let mut best: Option<(usize, f32)> = None;
    for (k, &v) in row.iter().enumerate() {
        if v.is_finite() && best.is_none_or(|(_, b)| v > b) {
            best = Some((k, v));
        }
    }
    best.map(|(k, _)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ccc_of_identity_and_negation() {
        let x = [0.1f32, -0.4, 0.7, 0.2, -0.9];
        assert!((ccc(&x, &x).unwrap() - 1.0).abs() < 1e-12);
        let neg: Vec<f32> = x.iter().map(|v| -v).collect();
        // CCC(−x, x) with mean m and variance v: 2·(−v) / (2v + 4m²).
        let n = x.len() as f64;
        let m = x.iter().map(|&v| v as f64).sum::<f64>() / n;
        let v = x.iter().map(|&a| (a as f64 - m).powi(2)).sum::<f64>() / n;
        let want = -2.0 * v / (2.0 * v + 4.0 * m * m);
        assert!((ccc(&neg, &x).unwrap() - want).abs() < 1e-12);
    }

    #[test]
    fn ccc_masks_invalid_frames() {
        // The -5 frames carry wild predictions that would ruin the score.
        let pred = [0.5f32, 100.0, -0.5, 0.25, -100.0];
        let truth = [0.5f32, -5.0, -0.5, 0.25, -5.0];
        assert!((ccc(&pred, &truth).unwrap() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn ccc_constant_prediction() {
        // cov = 0 and the truth varies → 0.
        assert_eq!(ccc(&[0.3; 4], &[0.1, 0.2, 0.3, 0.4]).unwrap(), 0.0);
        // Constant truth, constant different prediction → 0 (denominator (Δmean)²).
        assert_eq!(ccc(&[0.3; 3], &[0.1; 3]).unwrap(), 0.0);
        // Constant and equal: 0/0, defined as 1.
        assert_eq!(ccc(&[0.1; 3], &[0.1; 3]).unwrap(), 1.0);
    }

    #[test]
    fn ccc_errors() {
        assert!(matches!(
            ccc(&[0.1, 0.2], &[-5.0, -5.0]),
            Err(MetricError::NoValidFrames { frames: 2, .. })
        ));
        assert!(matches!(
            ccc(&[], &[]),
            Err(MetricError::NoValidFrames { .. })
        ));
        assert!(matches!(
            ccc(&[0.1], &[0.1, 0.2]),
            Err(MetricError::Length { .. })
        ));
        let e = ccc(&[0.1, f32::NAN], &[0.1, 0.2]).unwrap_err();
        assert!(matches!(
            e,
            MetricError::NonFinitePrediction { index: 1, .. }
        ));
        // NaN on an invalid frame does not matter.
        assert!(ccc(&[0.1, f32::NAN, 0.3], &[0.1, -5.0, 0.2]).is_ok());
        let e = ccc(&[0.1, 0.2], &[0.1, 1.5]).unwrap_err();
        assert!(e.to_string().contains("label 1 = 1.5"), "{e}");
    }

    #[test]
    fn va_ccc_drops_frames_with_one_invalid_value() {
        let pred = [[0.1f32, 0.2], [0.9, -0.9], [0.3, 0.1], [-0.2, 0.4]];
        let truth = [[0.1f32, 0.2], [-5.0, 0.5], [0.3, 0.1], [-0.2, 0.4]];
        let r = va_ccc(&pred, &truth).unwrap();
        assert_eq!(r.frames, 3);
        assert!((r.valence - 1.0).abs() < 1e-12 && (r.arousal - 1.0).abs() < 1e-12);
        assert!((r.mean - 1.0).abs() < 1e-12);
        assert!(matches!(
            va_ccc(&pred, &[[-5.0, -5.0]; 4]),
            Err(MetricError::NoValidFrames { .. })
        ));
    }

    #[test]
    fn f1_by_hand() {
        // truth 0,0,1,1,2 ; pred 0,1,1,1,0 (frame 5 invalid).
        let truth = [0, 0, 1, 1, 2, -1];
        let pred = [0, 1, 1, 1, 0, 5];
        let m = ConfusionMatrix::new(&pred, &truth).unwrap();
        assert_eq!(m.total(), 5);
        assert_eq!(m.counts[0][0], 1);
        assert_eq!(m.counts[0][1], 1);
        assert_eq!(m.counts[2][0], 1);
        let f1 = m.f1_per_class(ZeroDivision::Zero);
        // class 0: tp 1, fp 1, fn 1 → 0.5; class 1: tp 2, fp 1, fn 0 → 0.8; class 2: 0.
        assert!((f1[0] - 0.5).abs() < 1e-12);
        assert!((f1[1] - 0.8).abs() < 1e-12);
        assert_eq!(f1[2], 0.0);
        assert!((m.macro_f1(ZeroDivision::Zero) - 1.3 / 8.0).abs() < 1e-12);
        // 5 classes absent from both → 1 each with zero_division = 1.
        assert!((m.macro_f1(ZeroDivision::One) - 6.3 / 8.0).abs() < 1e-12);
        assert!((m.accuracy() - 0.6).abs() < 1e-12);
    }

    #[test]
    fn f1_errors() {
        assert!(matches!(
            macro_f1(&[0, 1], &[-1, -1]),
            Err(MetricError::NoValidFrames { .. })
        ));
        assert!(matches!(
            macro_f1(&[0, 8], &[0, 1]),
            Err(MetricError::BadClass {
                index: 1,
                value: 8,
                ..
            })
        ));
        assert!(matches!(
            macro_f1(&[0, 1], &[0, 9]),
            Err(MetricError::BadLabel { index: 1, .. })
        ));
        assert!(matches!(
            macro_f1(&[0], &[0, 1]),
            Err(MetricError::Length { .. })
        ));
    }

    #[test]
    fn argmax_rules() {
        assert_eq!(argmax(&[0.1, 0.7, 0.7, 0.2]), Some(1));
        assert_eq!(argmax(&[f32::NAN, 0.2, f32::INFINITY]), Some(1));
        assert_eq!(argmax(&[f32::NAN]), None);
    }
}
