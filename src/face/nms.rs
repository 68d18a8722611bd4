// SPDX-License-Identifier: MPL-2.0
//! Non-maximum suppression (MediaPipe's weighted variant and the plain one), and the
//! `min-face-size` / `max-faces` filters.

use super::{BBox, Detection, FaceError, Letterbox};

/// Intersection over union of two boxes; 0 when either is empty or invalid.
pub fn iou(a: &BBox, b: &BBox) -> f32 {
    if !(a.is_valid() && b.is_valid()) {
        return 0.0;
    }
    let ix = (a.x1.min(b.x1) - a.x0.max(b.x0)).max(0.0);
    let iy = (a.y1.min(b.y1) - a.y0.max(b.y0)).max(0.0);
    let inter = ix * iy;
    let union = a.area() + b.area() - inter;
    if union > 0.0 && inter.is_finite() {
        (inter / union).clamp(0.0, 1.0)
    } else {
        0.0
    }
}

/// Indices of `dets` with a finite score, best first (stable on ties).
fn sorted_indices(dets: &[Detection]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..dets.len())
        .filter(|&i| dets[i].score.is_finite())
        .collect();
    idx.sort_by(|&a, &b| dets[b].score.total_cmp(&dets[a].score));
    idx
}

/// MediaPipe's weighted NMS: repeatedly take the best remaining detection; every
/// remaining detection whose IoU with it is above `iou_threshold` (itself included)
/// joins its cluster; the cluster becomes one detection whose box and landmarks are the
/// score-weighted means and whose score is the best one's. Output is best first.
/// Detections with a NaN score are dropped.
pub fn weighted_nms(dets: &[Detection], iou_threshold: f32) -> Vec<Detection> {
    let mut remaining = sorted_indices(dets);
    let mut out = Vec::new();
    let mut rest = Vec::with_capacity(remaining.len());
    while let Some(&best) = remaining.first() {
        let lead = &dets[best];
        let (mut bx, mut total) = ([0.0f32; 4], 0.0f32);
        let mut kps = vec![[0.0f32; 2]; lead.keypoints.len()];
        rest.clear();
        for &i in &remaining {
            let d = &dets[i];
            if i == best || iou(&d.bbox, &lead.bbox) > iou_threshold {
                let w = d.score;
                total += w;
                bx[0] += d.bbox.x0 * w;
                bx[1] += d.bbox.y0 * w;
                bx[2] += d.bbox.x1 * w;
                bx[3] += d.bbox.y1 * w;
                for (acc, p) in kps.iter_mut().zip(&d.keypoints) {
                    acc[0] += p[0] * w;
                    acc[1] += p[1] * w;
                }
            } else {
                rest.push(i);
            }
        }
        let merged = if total > 0.0 {
            Detection {
                bbox: BBox::new(bx[0] / total, bx[1] / total, bx[2] / total, bx[3] / total),
                keypoints: kps.iter().map(|p| [p[0] / total, p[1] / total]).collect(),
                score: lead.score,
            }
        } else {
            lead.clone()
        };
        out.push(merged);
        std::mem::swap(&mut remaining, &mut rest);
    }
    out
}

/// Plain (hard) NMS: keep the best remaining detection, drop every other with IoU above
/// `iou_threshold`, repeat. Output is best first; NaN scores are dropped.
pub fn nms(dets: &[Detection], iou_threshold: f32) -> Vec<Detection> {
    let mut out: Vec<Detection> = Vec::new();
    for i in sorted_indices(dets) {
        let d = &dets[i];
        if out.iter().all(|k| iou(&k.bbox, &d.bbox) <= iou_threshold) {
            out.push(d.clone());
        }
    }
    out
}

/// Drops faces whose box's longer side is below `min_face_size` (in the boxes'
/// coordinate system, pixels after [`Detection::to_frame`]) and keeps at most
/// `max_faces` (0 = no limit) of the highest-scoring ones, best first.
pub fn filter_detections(
    mut dets: Vec<Detection>,
    min_face_size: f32,
    max_faces: usize,
) -> Vec<Detection> {
    dets.retain(|d| {
        d.score.is_finite()
            && d.bbox.is_valid()
            && d.bbox.width().max(d.bbox.height()) >= min_face_size
    });
    dets.sort_by(|a, b| b.score.total_cmp(&a.score));
    if max_faces > 0 {
        dets.truncate(max_faces);
    }
    dets
}

/// Which suppression [`postprocess`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SuppressionKind {
    /// MediaPipe's weighted NMS ([`weighted_nms`]), what BlazeFace was tuned with.
    #[default]
    Weighted,
    /// Hard NMS ([`nms`]).
    Hard,
}

/// Settings of the detection post-processing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PostProcess {
    /// IoU above which two detections are the same face (BlazeFace: 0.3).
    pub iou_threshold: f32,
    /// Which NMS.
    pub suppression: SuppressionKind,
    /// Minimum face size in frame pixels (longer box side); 0 keeps all.
    pub min_face_size: f32,
    /// At most this many faces, best first; 0 = no limit.
    pub max_faces: usize,
}

impl Default for PostProcess {
    fn default() -> Self {
        PostProcess {
            iou_threshold: 0.3,
            suppression: SuppressionKind::Weighted,
            min_face_size: 0.0,
            max_faces: 0,
        }
    }
}

/// NMS on decoded detections (normalised coordinates), mapping to frame pixels through
/// `letterbox`, then [`filter_detections`]. Best first.
pub fn postprocess(
    dets: &[Detection],
    letterbox: &Letterbox,
    settings: &PostProcess,
) -> Result<Vec<Detection>, FaceError> {
    if !(settings.iou_threshold.is_finite() && settings.min_face_size.is_finite()) {
        return Err(FaceError::Parameter(format!(
            "iou threshold {} / min face size {} must be finite",
            settings.iou_threshold, settings.min_face_size
        )));
    }
    let merged = match settings.suppression {
        SuppressionKind::Weighted => weighted_nms(dets, settings.iou_threshold),
        SuppressionKind::Hard => nms(dets, settings.iou_threshold),
    };
    let in_frame = merged.iter().map(|d| d.to_frame(letterbox)).collect();
    Ok(filter_detections(
        in_frame,
        settings.min_face_size,
        settings.max_faces,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(x0: f32, y0: f32, x1: f32, y1: f32, score: f32) -> Detection {
        Detection {
            bbox: BBox::new(x0, y0, x1, y1),
            keypoints: vec![[x0, y0], [x1, y1]],
            score,
        }
    }

    #[test]
    fn iou_basics() {
        let a = BBox::new(0.0, 0.0, 2.0, 2.0);
        assert_eq!(iou(&a, &a), 1.0);
        assert!((iou(&a, &BBox::new(1.0, 0.0, 3.0, 2.0)) - 1.0 / 3.0).abs() < 1e-6);
        assert_eq!(iou(&a, &BBox::new(5.0, 5.0, 6.0, 6.0)), 0.0);
        assert_eq!(iou(&a, &BBox::new(f32::NAN, 0.0, 1.0, 1.0)), 0.0);
        assert_eq!(iou(&a, &BBox::new(1.0, 1.0, 1.0, 1.0)), 0.0);
    }

    #[test]
    fn weighted_merges_overlapping() {
        let dets = vec![
            det(0.0, 0.0, 10.0, 10.0, 0.6),
            det(1.0, 1.0, 11.0, 11.0, 0.9),
        ];
        let out = weighted_nms(&dets, 0.3);
        assert_eq!(out.len(), 1);
        let d = &out[0];
        assert_eq!(d.score, 0.9);
        let w = |a: f32, b: f32| (a * 0.6 + b * 0.9) / 1.5;
        assert!((d.bbox.x0 - w(0.0, 1.0)).abs() < 1e-6);
        assert!((d.bbox.y1 - w(10.0, 11.0)).abs() < 1e-6);
        assert!((d.keypoints[1][0] - w(10.0, 11.0)).abs() < 1e-6);
        // hard NMS keeps the best one unchanged
        let h = nms(&dets, 0.3);
        assert_eq!(h.len(), 1);
        assert_eq!(h[0], dets[1]);
    }

    #[test]
    fn disjoint_kept_best_first() {
        let dets = vec![
            det(0.0, 0.0, 10.0, 10.0, 0.6),
            det(20.0, 20.0, 30.0, 30.0, 0.9),
            det(0.0, 0.0, 1.0, 1.0, f32::NAN),
        ];
        let out = weighted_nms(&dets, 0.3);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0], dets[1]);
        assert_eq!(out[1], dets[0]);
        assert_eq!(nms(&dets, 0.3).len(), 2);
    }

    #[test]
    fn iou_threshold_decides() {
        // IoU = 1/3
        let dets = vec![det(0.0, 0.0, 2.0, 2.0, 0.9), det(1.0, 0.0, 3.0, 2.0, 0.8)];
        assert_eq!(weighted_nms(&dets, 0.3).len(), 1);
        assert_eq!(weighted_nms(&dets, 0.4).len(), 2);
        assert_eq!(nms(&dets, 0.3).len(), 1);
        assert_eq!(nms(&dets, 0.4).len(), 2);
        assert!(weighted_nms(&[], 0.3).is_empty());
    }

    #[test]
    fn filters_size_and_count() {
        let dets = vec![
            det(0.0, 0.0, 10.0, 10.0, 0.6),
            det(20.0, 20.0, 60.0, 60.0, 0.7),
            det(100.0, 0.0, 150.0, 50.0, 0.9),
            det(200.0, 0.0, 190.0, 50.0, 0.99), // invalid box
        ];
        let out = filter_detections(dets.clone(), 20.0, 0);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].score, 0.9);
        let out = filter_detections(dets, 0.0, 1);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].score, 0.9);
    }

    #[test]
    fn postprocess_maps_to_frame() {
        let lb = Letterbox::new(200, 100, 128, 128).unwrap();
        // the frame occupies y in [0.25, 0.75] of the square
        let dets = vec![det(0.25, 0.25, 0.75, 0.75, 0.9)];
        let out = postprocess(&dets, &lb, &PostProcess::default()).unwrap();
        assert_eq!(out.len(), 1);
        let b = out[0].bbox;
        assert!((b.x0 - 50.0).abs() < 1e-3 && (b.x1 - 150.0).abs() < 1e-3);
        assert!((b.y0 - 0.0).abs() < 1e-3 && (b.y1 - 100.0).abs() < 1e-3);
    }
}
