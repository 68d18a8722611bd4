// SPDX-License-Identifier: MPL-2.0
//! Quality metrics for tests and benchmarks: RMS, SNR, SI-SDR, alignment lag, energy-based
//! speech labels, ROC AUC, accuracy and balanced accuracy.

/// Root mean square (0 for an empty slice).
pub fn rms(x: &[f32]) -> f64 {
    if x.is_empty() {
        return 0.0;
    }
    (x.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
}

/// `10·log10(P(signal) / P(noise))` in dB (infinite when the noise is silent).
pub fn snr_db(signal: &[f32], noise: &[f32]) -> f64 {
    let ps: f64 = signal.iter().map(|&v| (v as f64).powi(2)).sum();
    let pn: f64 = noise.iter().map(|&v| (v as f64).powi(2)).sum();
    10.0 * (ps / pn).log10()
}

/// Scale-invariant signal-to-distortion ratio of `estimate` against `reference`, in dB
/// (Le Roux et al. 2019): both are made zero-mean, the reference is scaled by
/// `α = ⟨ŝ, s⟩ / ⟨s, s⟩`, and SI-SDR = `10·log10(‖αs‖² / ‖αs − ŝ‖²)`. Compares the common
/// length of the two slices.
pub fn si_sdr_db(reference: &[f32], estimate: &[f32]) -> f64 {
    let n = reference.len().min(estimate.len());
    if n == 0 {
        return f64::NEG_INFINITY;
    }
    let mr = reference[..n].iter().map(|&v| v as f64).sum::<f64>() / n as f64;
    let me = estimate[..n].iter().map(|&v| v as f64).sum::<f64>() / n as f64;
    let (mut dot, mut ss) = (0.0f64, 0.0f64);
    for (&r, &e) in reference[..n].iter().zip(&estimate[..n]) {
        let s = r as f64 - mr;
        dot += s * (e as f64 - me);
        ss += s * s;
    }
    if ss == 0.0 {
        return f64::NEG_INFINITY;
    }
    let alpha = dot / ss;
    let (mut pt, mut pe) = (0.0f64, 0.0f64);
    for (&r, &e) in reference[..n].iter().zip(&estimate[..n]) {
        let t = alpha * (r as f64 - mr);
        let d = (e as f64 - me) - t;
        pt += t * t;
        pe += d * d;
    }
    10.0 * (pt / pe).log10()
}

/// The lag (in samples, `-max_lag..=max_lag`, less than the signals' length) at which `estimate` best matches
/// `reference` by normalised cross-correlation: 0 when they are aligned, positive when
/// `estimate` is late.
pub fn best_lag(reference: &[f32], estimate: &[f32], max_lag: usize) -> isize {
    let n = reference.len().min(estimate.len());
    let mut best = (f64::NEG_INFINITY, 0isize);
    for lag in -(max_lag as isize)..=(max_lag as isize) {
        // pairs (reference[i], estimate[i + lag]) with both indices in 0..n
        let (r, e) = if lag >= 0 {
            (&reference[..n - lag as usize], &estimate[lag as usize..n])
        } else {
            (
                &reference[(-lag) as usize..n],
                &estimate[..n - (-lag) as usize],
            )
        };
        let c: f64 = r.iter().zip(e).map(|(&a, &b)| a as f64 * b as f64).sum();
        if c > best.0 {
            best = (c, lag);
        }
    }
    best.1
}

/// Speech labels per frame of `frame` samples from a clean signal's energy: a frame is
/// speech when its energy is within `threshold_db` (e.g. −40) of the loudest frame; then
/// non-speech gaps shorter than `min_gap_frames` between speech frames are filled (the
/// closures between syllables are part of the utterance for a VAD).
pub fn energy_labels(
    clean: &[f32],
    frame: usize,
    threshold_db: f64,
    min_gap_frames: usize,
) -> Vec<bool> {
    let energies: Vec<f64> = clean
        .chunks(frame.max(1))
        .map(|c| c.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / c.len() as f64)
        .collect();
    let max = energies.iter().cloned().fold(0.0f64, f64::max);
    let thr = max * 10f64.powf(threshold_db / 10.0);
    let mut labels: Vec<bool> = energies.iter().map(|&e| max > 0.0 && e > thr).collect();
    let mut last_speech: Option<usize> = None;
    for i in 0..labels.len() {
        if labels[i] {
            if let Some(j) = last_speech
                && i - j - 1 < min_gap_frames
            {
                labels[j + 1..i].iter_mut().for_each(|l| *l = true);
            }
            last_speech = Some(i);
        }
    }
    labels
}

/// Start and end (exclusive) frame indices of the runs of `true` in `labels`.
pub fn label_segments(labels: &[bool]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, &l) in labels.iter().enumerate() {
        match (l, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, labels.len()));
    }
    out
}

/// Area under the ROC curve of `scores` for the binary `labels` (Mann–Whitney U, ties
/// counted half). `NaN` when one class is absent.
pub fn roc_auc(scores: &[f32], labels: &[bool]) -> f64 {
    let n = scores.len().min(labels.len());
    let mut idx: Vec<usize> = (0..n).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut rank_sum_pos = 0.0f64;
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        let avg_rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            if labels[k] {
                rank_sum_pos += avg_rank;
            }
        }
        i = j + 1;
    }
    let pos = labels[..n].iter().filter(|&&l| l).count() as f64;
    let neg = n as f64 - pos;
    if pos == 0.0 || neg == 0.0 {
        return f64::NAN;
    }
    (rank_sum_pos - pos * (pos + 1.0) / 2.0) / (pos * neg)
}

/// Binary classification figures of `scores ≥ threshold` against `labels`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BinaryScores {
    /// Fraction of frames classified right.
    pub accuracy: f64,
    /// Mean of the true-positive and true-negative rates.
    pub balanced_accuracy: f64,
    /// True-positive rate (recall of speech).
    pub tpr: f64,
    /// True-negative rate (recall of non-speech).
    pub tnr: f64,
}

/// Accuracy, balanced accuracy, TPR and TNR of `scores ≥ threshold`.
pub fn binary_scores(scores: &[f32], labels: &[bool], threshold: f32) -> BinaryScores {
    let n = scores.len().min(labels.len());
    let (mut tp, mut tn, mut p, mut q) = (0usize, 0usize, 0usize, 0usize);
    for i in 0..n {
        let pred = scores[i] >= threshold;
        if labels[i] {
            p += 1;
            tp += pred as usize;
        } else {
            q += 1;
            tn += (!pred) as usize;
        }
    }
    let tpr = if p > 0 {
        tp as f64 / p as f64
    } else {
        f64::NAN
    };
    let tnr = if q > 0 {
        tn as f64 / q as f64
    } else {
        f64::NAN
    };
    BinaryScores {
        accuracy: (tp + tn) as f64 / n.max(1) as f64,
        balanced_accuracy: (tpr + tnr) / 2.0,
        tpr,
        tnr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn si_sdr_is_scale_invariant_and_measures_noise() {
        let s: Vec<f32> = (0..10_000).map(|i| (i as f32 * 0.01).sin()).collect();
        let scaled: Vec<f32> = s.iter().map(|v| v * 0.3 + 0.01).collect();
        assert!(si_sdr_db(&s, &scaled) > 100.0);
        let n = crate::audio::synth::white_noise(10_000, 1);
        let noisy: Vec<f32> = s.iter().zip(&n).map(|(a, b)| a + 0.1 * b).collect();
        // Signal power 0.5, noise power 0.01 → 17 dB.
        let v = si_sdr_db(&s, &noisy);
        assert!((v - 17.0).abs() < 0.3, "{v}");
    }

    #[test]
    fn lag_is_found() {
        let s = crate::audio::synth::white_noise(4000, 2);
        let mut late = vec![0.0; 30];
        late.extend_from_slice(&s[..3970]);
        assert_eq!(best_lag(&s, &late, 50), 30);
        assert_eq!(best_lag(&late, &s, 50), -30);
        assert_eq!(best_lag(&s, &s, 50), 0);
    }

    #[test]
    fn auc_and_balanced_accuracy() {
        let labels = [false, false, true, true];
        assert_eq!(roc_auc(&[0.1, 0.2, 0.8, 0.9], &labels), 1.0);
        assert_eq!(roc_auc(&[0.9, 0.8, 0.2, 0.1], &labels), 0.0);
        assert_eq!(roc_auc(&[0.5, 0.5, 0.5, 0.5], &labels), 0.5);
        assert!(roc_auc(&[0.5], &[true]).is_nan());
        // Always "speech" on 90 % speech: accuracy 0.9, balanced 0.5.
        let labels: Vec<bool> = (0..10).map(|i| i > 0).collect();
        let b = binary_scores(&[1.0; 10], &labels, 0.5);
        assert!((b.accuracy - 0.9).abs() < 1e-12);
        assert!((b.balanced_accuracy - 0.5).abs() < 1e-12);
    }

    #[test]
    fn labels_fill_short_gaps() {
        let mut x = vec![0.0f32; 100];
        for v in &mut x[10..30] {
            *v = 1.0;
        }
        for v in &mut x[40..50] {
            *v = 1.0;
        }
        for v in &mut x[80..90] {
            *v = 1.0;
        }
        let l = energy_labels(&x, 10, -40.0, 2);
        assert_eq!(
            l,
            vec![
                false, true, true, true, true, false, false, false, true, false
            ]
        );
        assert_eq!(label_segments(&l), vec![(1, 5), (8, 9)]);
    }
}
