// SPDX-License-Identifier: MPL-2.0
//! Similarity alignment of face landmarks onto a canonical template (ArcFace 112x112).

use super::{DetectorKind, FaceError};

/// The standard ArcFace 5-point template for 112x112 crops (left eye, right eye — as seen
/// in the image —, nose tip, left and right mouth corner), in OpenCV pixel coordinates
/// (pixel centres on integers).
pub const ARCFACE_112: [[f32; 2]; 5] = [
    [38.2946, 51.6963],
    [73.5318, 51.5014],
    [56.0252, 71.7366],
    [41.5493, 92.3655],
    [70.7299, 92.2041],
];

/// BlazeFace landmarks used for alignment: right eye (image left), left eye (image
/// right), nose tip, mouth centre — the first four of its six.
pub const BLAZEFACE_ALIGN_INDICES: [usize; 4] = [0, 1, 2, 3];

/// The ArcFace template restricted to BlazeFace's points: both eyes, nose tip, and the
/// mouth centre as the midpoint of the two mouth corners (OpenCV coordinates, 112x112).
pub fn blazeface_arcface_112() -> [[f32; 2]; 4] {
    let [e0, e1, n, m0, m1] = ARCFACE_112;
    [e0, e1, n, [(m0[0] + m1[0]) / 2.0, (m0[1] + m1[1]) / 2.0]]
}

/// A 2-D similarity (rotation, uniform scale, translation; no reflection):
/// `x' = a x - b y + tx`, `y' = b x + a y + ty`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Similarity {
    /// `scale · cos(angle)`.
    pub a: f64,
    /// `scale · sin(angle)`.
    pub b: f64,
    /// Translation x.
    pub tx: f64,
    /// Translation y.
    pub ty: f64,
}

impl Similarity {
    /// The identity.
    pub const IDENTITY: Similarity = Similarity {
        a: 1.0,
        b: 0.0,
        tx: 0.0,
        ty: 0.0,
    };

    /// Rotation by `angle` radians and scaling by `scale` about the origin, then `t`.
    pub fn new(scale: f64, angle: f64, t: [f64; 2]) -> Self {
        Similarity {
            a: scale * angle.cos(),
            b: scale * angle.sin(),
            tx: t[0],
            ty: t[1],
        }
    }

    /// Applies the transform to a point.
    pub fn apply(&self, p: [f32; 2]) -> [f32; 2] {
        let (x, y) = (p[0] as f64, p[1] as f64);
        [
            (self.a * x - self.b * y + self.tx) as f32,
            (self.b * x + self.a * y + self.ty) as f32,
        ]
    }

    /// Scale factor.
    pub fn scale(&self) -> f64 {
        self.a.hypot(self.b)
    }

    /// Rotation angle in radians.
    pub fn angle(&self) -> f64 {
        self.b.atan2(self.a)
    }

    /// The inverse transform, `None` when the scale is zero or not finite.
    pub fn inverse(&self) -> Option<Similarity> {
        let d = self.a * self.a + self.b * self.b;
        if !(d.is_finite() && d > 0.0) {
            return None;
        }
        let (a, b) = (self.a / d, -self.b / d);
        Some(Similarity {
            a,
            b,
            tx: -(a * self.tx - b * self.ty),
            ty: -(b * self.tx + a * self.ty),
        })
    }

    /// The 2x3 matrix `[[a, -b, tx], [b, a, ty]]` (as `cv2.warpAffine` takes it).
    pub fn matrix(&self) -> [[f64; 3]; 2] {
        [[self.a, -self.b, self.tx], [self.b, self.a, self.ty]]
    }
}

/// Least-squares similarity mapping `src` onto `dst` (Umeyama 1991 without reflection; in
/// 2-D it has the closed form used here). Needs at least 2 finite, not all coincident
/// source points and as many destination points.
pub fn similarity_transform(src: &[[f32; 2]], dst: &[[f32; 2]]) -> Result<Similarity, FaceError> {
    if src.len() != dst.len() || src.len() < 2 {
        return Err(FaceError::Alignment(format!(
            "need at least 2 point pairs, got {} source and {} template points",
            src.len(),
            dst.len()
        )));
    }
    if src.iter().chain(dst).flatten().any(|v| !v.is_finite()) {
        return Err(FaceError::Alignment("landmarks are not finite".into()));
    }
    let n = src.len() as f64;
    let mean = |pts: &[[f32; 2]]| {
        let (sx, sy) = pts
            .iter()
            .fold((0.0, 0.0), |(x, y), p| (x + p[0] as f64, y + p[1] as f64));
        (sx / n, sy / n)
    };
    let (msx, msy) = mean(src);
    let (mdx, mdy) = mean(dst);
    let (mut dot, mut cross, mut var) = (0.0, 0.0, 0.0);
    for (s, d) in src.iter().zip(dst) {
        let (sx, sy) = (s[0] as f64 - msx, s[1] as f64 - msy);
        let (dx, dy) = (d[0] as f64 - mdx, d[1] as f64 - mdy);
        dot += sx * dx + sy * dy;
        cross += sx * dy - sy * dx;
        var += sx * sx + sy * sy;
    }
    if var.is_nan() || var <= 1e-12 {
        return Err(FaceError::Alignment(
            "landmarks coincide (degenerate face)".into(),
        ));
    }
    let (a, b) = (dot / var, cross / var);
    if !(a.is_finite() && b.is_finite()) || a == 0.0 && b == 0.0 {
        return Err(FaceError::Alignment("degenerate template".into()));
    }
    Ok(Similarity {
        a,
        b,
        tx: mdx - (a * msx - b * msy),
        ty: mdy - (b * msx + a * msy),
    })
}

/// Where selected detector landmarks should land in a square crop.
#[derive(Debug, Clone, PartialEq)]
pub struct AlignTemplate {
    size: usize,
    margin: f32,
    indices: Vec<usize>,
    points: Vec<[f32; 2]>,
}

impl AlignTemplate {
    /// The ArcFace-consistent template for `kind` in a `size`×`size` crop.
    ///
    /// The 112x112 template is scaled to `size` (continuous coordinates: OpenCV's
    /// `p` becomes `(p + 0.5) · size / 112`) and then shrunk toward the crop centre by
    /// `1 / (1 + margin)`: `margin` 0 is the standard ArcFace crop, 0.25 shows 25 % more
    /// of the surroundings in each direction.
    pub fn for_detector(kind: DetectorKind, size: usize, margin: f32) -> Result<Self, FaceError> {
        match kind {
            DetectorKind::Mtcnn => {
                Self::from_arcface_points(&ARCFACE_112, vec![0, 1, 2, 3, 4], size, margin)
            }
            _ => Self::from_arcface_points(
                &blazeface_arcface_112(),
                BLAZEFACE_ALIGN_INDICES.to_vec(),
                size,
                margin,
            ),
        }
    }

    /// A template from points in ArcFace 112x112 OpenCV coordinates; `indices[k]` is the
    /// detector landmark that goes to `points[k]`.
    pub fn from_arcface_points(
        points: &[[f32; 2]],
        indices: Vec<usize>,
        size: usize,
        margin: f32,
    ) -> Result<Self, FaceError> {
        if size == 0 || size > 4096 {
            return Err(FaceError::Parameter(format!(
                "crop size {size} (must be 1..=4096)"
            )));
        }
        if !(margin.is_finite() && margin > -1.0) {
            return Err(FaceError::Parameter(format!(
                "crop margin {margin} (must be > -1)"
            )));
        }
        if points.len() != indices.len() || points.len() < 2 {
            return Err(FaceError::Parameter(format!(
                "{} template points for {} landmark indices",
                points.len(),
                indices.len()
            )));
        }
        let k = size as f32 / 112.0;
        let c = size as f32 / 2.0;
        let shrink = 1.0 / (1.0 + margin);
        let points = points
            .iter()
            .map(|p| {
                [
                    c + ((p[0] + 0.5) * k - c) * shrink,
                    c + ((p[1] + 0.5) * k - c) * shrink,
                ]
            })
            .collect();
        Ok(AlignTemplate {
            size,
            margin,
            indices,
            points,
        })
    }

    /// Crop side in pixels.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The margin it was made with.
    pub fn margin(&self) -> f32 {
        self.margin
    }

    /// Template points in crop pixels (continuous coordinates).
    pub fn points(&self) -> &[[f32; 2]] {
        &self.points
    }

    /// Which detector landmark goes to each template point.
    pub fn indices(&self) -> &[usize] {
        &self.indices
    }

    /// The similarity from frame pixels to crop pixels that best puts the detection's
    /// landmarks (all of them, in the detector's order) on the template.
    pub fn transform(&self, keypoints: &[[f32; 2]]) -> Result<Similarity, FaceError> {
        let src: Vec<[f32; 2]> = self
            .indices
            .iter()
            .map(|&i| {
                keypoints.get(i).copied().ok_or_else(|| {
                    FaceError::Alignment(format!(
                        "landmark {i} missing (detection has {})",
                        keypoints.len()
                    ))
                })
            })
            .collect::<Result<_, _>>()?;
        similarity_transform(&src, &self.points)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_maps_to_itself() {
        for kind in [DetectorKind::BlazeFaceFull, DetectorKind::Mtcnn] {
            let t = AlignTemplate::for_detector(kind, 112, 0.0).unwrap();
            let mut kps = t.points().to_vec();
            kps.extend([[0.0, 0.0], [1.0, 1.0]]); // ears etc. are ignored
            let s = t.transform(&kps).unwrap();
            assert!((s.a - 1.0).abs() < 1e-4 && s.b.abs() < 1e-4);
            assert!(s.tx.abs() < 1e-4 && s.ty.abs() < 1e-4);
        }
    }

    #[test]
    fn recovers_rotated_scaled_shifted_points() {
        let t = AlignTemplate::for_detector(DetectorKind::BlazeFaceShort, 112, 0.0).unwrap();
        let m = Similarity::new(1.7, 30f64.to_radians(), [250.0, -40.0]);
        let moved: Vec<[f32; 2]> = t.points().iter().map(|&p| m.apply(p)).collect();
        let s = t.transform(&moved).unwrap();
        for (p, q) in moved.iter().zip(t.points()) {
            let r = s.apply(*p);
            assert!((r[0] - q[0]).abs() < 0.5 && (r[1] - q[1]).abs() < 0.5);
        }
        assert!((s.scale() - 1.0 / 1.7).abs() < 1e-6);
        assert!((s.angle() + 30f64.to_radians()).abs() < 1e-6);
        // inverse
        let inv = s.inverse().unwrap();
        let p = inv.apply(s.apply([10.0, 20.0]));
        assert!((p[0] - 10.0).abs() < 1e-3 && (p[1] - 20.0).abs() < 1e-3);
    }

    #[test]
    fn least_squares_with_noise() {
        let t = AlignTemplate::for_detector(DetectorKind::Mtcnn, 112, 0.0).unwrap();
        let m = Similarity::new(2.0, -0.4, [100.0, 80.0]);
        let noise = [
            [0.8, -0.5],
            [-0.6, 0.3],
            [0.2, 0.9],
            [-0.4, -0.7],
            [0.1, 0.2],
        ];
        let moved: Vec<[f32; 2]> = t
            .points()
            .iter()
            .zip(noise)
            .map(|(&p, n)| {
                let q = m.apply(p);
                [q[0] + n[0], q[1] + n[1]]
            })
            .collect();
        let s = t.transform(&moved).unwrap();
        for (p, q) in moved.iter().zip(t.points()) {
            let r = s.apply(*p);
            assert!((r[0] - q[0]).abs() < 1.0 && (r[1] - q[1]).abs() < 1.0);
        }
    }

    #[test]
    fn margin_size_and_errors() {
        let t0 = AlignTemplate::for_detector(DetectorKind::Mtcnn, 224, 0.0).unwrap();
        let t1 = AlignTemplate::for_detector(DetectorKind::Mtcnn, 224, 1.0).unwrap();
        assert!((t0.points()[0][0] - (38.2946 + 0.5) * 2.0).abs() < 1e-4);
        for (a, b) in t0.points().iter().zip(t1.points()) {
            assert!((b[0] - (112.0 + (a[0] - 112.0) / 2.0)).abs() < 1e-4);
            assert!((b[1] - (112.0 + (a[1] - 112.0) / 2.0)).abs() < 1e-4);
        }
        assert!(AlignTemplate::for_detector(DetectorKind::Mtcnn, 0, 0.0).is_err());
        assert!(AlignTemplate::for_detector(DetectorKind::Mtcnn, 112, f32::NAN).is_err());
        assert!(t0.transform(&[[1.0, 1.0]; 3]).is_err()); // too few
        assert!(t0.transform(&[[1.0, 1.0]; 5]).is_err()); // coincident
        let mut bad = t0.points().to_vec();
        bad[2][0] = f32::NAN;
        assert!(t0.transform(&bad).is_err());
        assert!(Similarity::new(0.0, 0.0, [0.0, 0.0]).inverse().is_none());
    }
}
