// SPDX-License-Identifier: MPL-2.0
//! The MTCNN face-detection cascade (P-Net → R-Net → O-Net), following facenet-pytorch
//! 2.6.0's `detect_face` step by step.
//!
//! 1. An image pyramid with scales `12 / min_face_size · factor^k` while the short side
//!    of the scaled frame is at least 12 px; each level is area-resampled (PyTorch
//!    `interpolate(mode="area")`, i.e. adaptive average pooling) to
//!    `(int(h·s + 1), int(w·s + 1))` and run through P-Net.
//! 2. Every P-Net cell with face probability `>= thresholds[0]` gives a candidate box
//!    (stride 2, cell size 12); NMS (IoU `nms[0]`) per scale, then over all scales
//!    (IoU `nms[1]`); P-Net's box regression; boxes squared (`rerec`).
//! 3. Each candidate, clipped to the frame, is area-resampled to R-Net's 24x24 input
//!    (all candidates in one batch); probability `> thresholds[1]`, NMS (IoU `nms[2]`),
//!    box regression, squared again.
//! 4. Likewise 48x48 crops for O-Net (one batch): probability `> thresholds[2]`, five
//!    landmarks, box regression, NMS with the "Min" overlap (`nms[3]`).
//!
//! Boxes are exactly the values facenet-pytorch returns (frame pixels). facenet-pytorch
//! inherits MATLAB's inclusive 1-based box convention: a box `x0..x1` covers the pixel
//! columns `x0 - 1 .. x1` (0-based, end exclusive), so in this crate's continuous
//! coordinates the left and top edges lie about one pixel further out than the returned
//! values; the landmarks are already continuous 0-based coordinates. The difference is
//! kept so that results compare one to one with facenet-pytorch (and py-feat).

use std::collections::BTreeMap;

use ndarray::{ArrayD, ArrayViewD, IxDyn};

use super::{BBox, Detection, DetectorKind, FaceError, Frame};
use crate::runtime::{InputSpec, Layout, Model, PixelColour, Role};

/// P-Net output stride in pyramid-level pixels.
const STRIDE: usize = 2;
/// P-Net receptive field (cell size) in pyramid-level pixels.
const CELL: usize = 12;
/// Largest pyramid level (pixels) the detector builds; guards against absurd upsampling
/// when `min_face_size` is far below 12.
const MAX_LEVEL_PIXELS: usize = 1 << 26;

/// Settings of the MTCNN cascade; the defaults are facenet-pytorch's `MTCNN()` defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MtcnnConfig {
    /// Smallest face size searched for, in frame pixels (the first pyramid scale is
    /// `12 / min_face_size`). Default 20.
    pub min_face_size: f32,
    /// Pyramid scale step, in `(0, 1)`. Default 0.709.
    pub scale_factor: f32,
    /// Face probability thresholds of P-Net (`>=`), R-Net and O-Net (`>`).
    /// Default `[0.6, 0.7, 0.7]`.
    pub thresholds: [f32; 3],
    /// NMS thresholds: P-Net per scale (IoU), P-Net over all scales (IoU), R-Net (IoU),
    /// O-Net (intersection over the smaller box, "Min"). Default `[0.5, 0.7, 0.7, 0.7]`.
    pub nms: [f32; 4],
}

impl Default for MtcnnConfig {
    fn default() -> Self {
        MtcnnConfig {
            min_face_size: 20.0,
            scale_factor: 0.709,
            thresholds: [0.6, 0.7, 0.7],
            nms: [0.5, 0.7, 0.7, 0.7],
        }
    }
}

impl MtcnnConfig {
    /// Checks that every value is finite and in range: `min_face_size > 0`,
    /// `0 < scale_factor < 1`, thresholds in `[0, 1]`, NMS thresholds in `(0, 1]`.
    pub fn validate(&self) -> Result<(), FaceError> {
        if !(self.min_face_size.is_finite() && self.min_face_size > 0.0) {
            return Err(FaceError::Parameter(format!(
                "MTCNN min face size {} must be a positive number of pixels",
                self.min_face_size
            )));
        }
        if !(self.scale_factor > 0.0 && self.scale_factor < 1.0) {
            return Err(FaceError::Parameter(format!(
                "MTCNN scale factor {} must be between 0 and 1 (exclusive)",
                self.scale_factor
            )));
        }
        if let Some(t) = self.thresholds.iter().find(|t| !(0.0..=1.0).contains(*t)) {
            return Err(FaceError::Parameter(format!(
                "MTCNN probability threshold {t} must be in [0, 1]"
            )));
        }
        if let Some(t) = self.nms.iter().find(|t| !(**t > 0.0 && **t <= 1.0)) {
            return Err(FaceError::Parameter(format!(
                "MTCNN NMS threshold {t} must be in (0, 1]"
            )));
        }
        Ok(())
    }
}

/// The scales of the MTCNN image pyramid for a `width` x `height` frame, largest first:
/// `m·factor^k` with `m = 12 / min_face_size`, while `min(width, height)·m·factor^k >= 12`
/// (facenet-pytorch's loop, in double precision). Empty when the frame is smaller than
/// `min_face_size`.
///
/// The `f32` parameters are widened through their shortest decimal form, so `0.709`
/// means the same double as Python's `0.709` and the pyramid sizes match facenet-pytorch
/// exactly.
pub fn scale_pyramid(width: usize, height: usize, min_face_size: f32, factor: f32) -> Vec<f64> {
    let (minsize, factor) = (widen(min_face_size), widen(factor));
    let mut scales = Vec::new();
    if !(minsize > 0.0 && factor > 0.0 && factor < 1.0) {
        return scales;
    }
    let m = CELL as f64 / minsize;
    let mut minl = width.min(height) as f64 * m;
    let mut scale = m;
    while minl >= CELL as f64 {
        scales.push(scale);
        scale *= factor;
        minl *= factor;
    }
    scales
}

/// `f32` → `f64` through the shortest decimal that round-trips (0.709f32 → 0.709).
fn widen(v: f32) -> f64 {
    v.to_string().parse().unwrap_or(v as f64)
}

/// Height and width of the pyramid level at `scale`: `(int(h·s + 1), int(w·s + 1))`.
fn level_size(width: usize, height: usize, scale: f64) -> (usize, usize) {
    (
        (height as f64 * scale + 1.0) as usize,
        (width as f64 * scale + 1.0) as usize,
    )
}

/// A candidate box `[x0, y0, x1, y1]` with its probability and the regression offsets of
/// the stage that produced it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Candidate {
    b: [f32; 4],
    score: f32,
    reg: [f32; 4],
}

/// facenet-pytorch `generateBoundingBox` for one image: every cell of the `h` x `w` face
/// probability map `prob` with `prob >= threshold` becomes a box in frame pixels
/// (`floor((2·x + 1) / scale)`, `floor((2·x + 12) / scale)`), carrying its four
/// regression values from `reg` (`[4, h, w]`, planar). Row-major order.
fn generate_bounding_boxes(
    prob: &[f32],
    reg: &[f32],
    h: usize,
    w: usize,
    scale: f32,
    threshold: f32,
    out: &mut Vec<Candidate>,
) {
    let plane = h * w;
    debug_assert!(prob.len() >= plane && reg.len() >= 4 * plane);
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            let p = prob[i];
            if p >= threshold {
                let q1 = |v: usize| ((STRIDE * v + 1) as f32 / scale).floor();
                let q2 = |v: usize| ((STRIDE * v + CELL) as f32 / scale).floor();
                out.push(Candidate {
                    b: [q1(x), q1(y), q2(x), q2(y)],
                    score: p,
                    reg: [
                        reg[i],
                        reg[plane + i],
                        reg[2 * plane + i],
                        reg[3 * plane + i],
                    ],
                });
            }
        }
    }
}

/// facenet-pytorch `rerec`: the square with side `max(w, h)` (no `+1`) centred on the box.
fn rerec(b: [f32; 4]) -> [f32; 4] {
    let h = b[3] - b[1];
    let w = b[2] - b[0];
    let l = w.max(h);
    let x0 = b[0] + w * 0.5 - l * 0.5;
    let y0 = b[1] + h * 0.5 - l * 0.5;
    [x0, y0, x0 + l, y0 + l]
}

/// facenet-pytorch `bbreg`: shifts each edge by `reg · size` with the inclusive size
/// `x1 - x0 + 1`.
fn bbreg(b: [f32; 4], reg: [f32; 4]) -> [f32; 4] {
    let w = b[2] - b[0] + 1.0;
    let h = b[3] - b[1] + 1.0;
    [
        b[0] + reg[0] * w,
        b[1] + reg[1] * h,
        b[2] + reg[2] * w,
        b[3] + reg[3] * h,
    ]
}

/// The P-Net regression after the cross-scale NMS (facenet-pytorch inlines it there;
/// unlike [`bbreg`] it uses the exclusive size `x1 - x0`).
fn pnet_regress(b: [f32; 4], reg: [f32; 4]) -> [f32; 4] {
    let w = b[2] - b[0];
    let h = b[3] - b[1];
    [
        b[0] + reg[0] * w,
        b[1] + reg[1] * h,
        b[2] + reg[2] * w,
        b[3] + reg[3] * h,
    ]
}

/// A pixel rectangle `[x, x + w) × [y, y + h)` (0-based), non-empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rect {
    x: usize,
    y: usize,
    w: usize,
    h: usize,
}

/// facenet-pytorch `pad` + the crop slice `[y-1:ey, x-1:ex]`: truncates the box to
/// integers, clips it to the `width` x `height` frame; `None` when nothing is left
/// (facenet-pytorch skips such crops too).
fn crop_rect(b: [f32; 4], width: usize, height: usize) -> Option<Rect> {
    // `trunc().int()`; `as` saturates (and maps NaN to 0, which the clipping handles).
    let t = |v: f32| v.trunc() as i64;
    let x = t(b[0]).max(1);
    let y = t(b[1]).max(1);
    let ex = t(b[2]).min(width as i64);
    let ey = t(b[3]).min(height as i64);
    if ex > x - 1 && ey > y - 1 {
        Some(Rect {
            x: (x - 1) as usize,
            y: (y - 1) as usize,
            w: (ex - x + 1) as usize,
            h: (ey - y + 1) as usize,
        })
    } else {
        None
    }
}

/// How two boxes' overlap is measured in NMS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Overlap {
    /// torchvision `nms`: intersection over union, areas `(x1 - x0)·(y1 - y0)`.
    Union,
    /// facenet-pytorch `nms_numpy(…, "Min")`: intersection over the smaller area, with
    /// inclusive sizes `x1 - x0 + 1`.
    Min,
}

/// Greedy NMS: indices of the kept boxes, best score first (stable on ties). A box is
/// dropped when its overlap with a kept one is above `threshold`. NaN scores are dropped.
fn nms_indices(boxes: &[([f32; 4], f32)], threshold: f32, overlap: Overlap) -> Vec<usize> {
    let mut order: Vec<usize> = (0..boxes.len()).filter(|&i| !boxes[i].1.is_nan()).collect();
    order.sort_by(|&a, &b| boxes[b].1.total_cmp(&boxes[a].1));
    let add = match overlap {
        Overlap::Union => 0.0,
        Overlap::Min => 1.0,
    };
    let area = |b: &[f32; 4]| (b[2] - b[0] + add) * (b[3] - b[1] + add);
    let mut suppressed = vec![false; boxes.len()];
    let mut keep = Vec::new();
    for (k, &i) in order.iter().enumerate() {
        if suppressed[i] {
            continue;
        }
        keep.push(i);
        let bi = &boxes[i].0;
        let ai = area(bi);
        for &j in &order[k + 1..] {
            if suppressed[j] {
                continue;
            }
            let bj = &boxes[j].0;
            let iw = (bi[2].min(bj[2]) - bi[0].max(bj[0]) + add).max(0.0);
            let ih = (bi[3].min(bj[3]) - bi[1].max(bj[1]) + add).max(0.0);
            let inter = iw * ih;
            let o = match overlap {
                Overlap::Union => inter / (ai + area(bj) - inter),
                Overlap::Min => inter / ai.min(area(bj)),
            };
            if o > threshold {
                suppressed[j] = true;
            }
        }
    }
    keep
}

/// NMS on candidates in place (kept ones, best first).
fn nms_candidates(cands: &mut Vec<Candidate>, threshold: f32, overlap: Overlap) {
    let pairs: Vec<([f32; 4], f32)> = cands.iter().map(|c| (c.b, c.score)).collect();
    let keep = nms_indices(&pairs, threshold, overlap);
    let kept: Vec<Candidate> = keep.iter().map(|&i| cands[i]).collect();
    *cands = kept;
}

/// Per-pixel `[r, g, b]` summed-area table of a frame (wrapping `u32`: a window sum is
/// exact whenever the window holds fewer than 2^32 / 255 ≈ 16.8 M pixels, which every
/// pooling window here does).
#[derive(Debug, Default)]
struct IntegralImage {
    width: usize,
    height: usize,
    /// `(height + 1) x (width + 1) x 3`, row 0 and column 0 zero.
    sums: Vec<u32>,
}

impl IntegralImage {
    fn build(&mut self, frame: &Frame<'_>) {
        let (w, h) = (frame.width(), frame.height());
        let stride = (w + 1) * 3;
        self.width = w;
        self.height = h;
        self.sums.clear();
        self.sums.resize((h + 1) * stride, 0);
        let bpp = frame.format().bytes_per_pixel();
        let off = frame.format().rgb_offsets();
        for y in 0..h {
            let row = frame.row(y);
            let (above, cur) = self.sums.split_at_mut((y + 1) * stride);
            let above = &above[y * stride..];
            let mut acc = [0u32; 3];
            for x in 0..w {
                let p = &row[x * bpp..(x + 1) * bpp];
                for c in 0..3 {
                    acc[c] = acc[c].wrapping_add(p[off[c]] as u32);
                    let k = (x + 1) * 3 + c;
                    cur[k] = above[k].wrapping_add(acc[c]);
                }
            }
        }
    }

    /// Sum of channel `c` over rows `y0..y1`, columns `x0..x1`.
    #[inline]
    fn sum(&self, x0: usize, y0: usize, x1: usize, y1: usize, c: usize) -> u32 {
        let s = (self.width + 1) * 3;
        let at = |x: usize, y: usize| self.sums[y * s + x * 3 + c];
        at(x1, y1)
            .wrapping_sub(at(x0, y1))
            .wrapping_sub(at(x1, y0))
            .wrapping_add(at(x0, y0))
    }

    /// Adaptive average pooling (PyTorch `interpolate(mode="area")`) of `rect` to
    /// `out_w` x `out_h`, normalised, written planar (`[3, out_h, out_w]`) into `dst`.
    /// Output pixel `i` averages input pixels `floor(i·n/out) .. ceil((i+1)·n/out)`;
    /// the mean is computed as PyTorch does, `sum / kh / kw` in `f32`.
    fn resample(
        &self,
        rect: Rect,
        out_w: usize,
        out_h: usize,
        norm: &Norm,
        dst: &mut [f32],
        cols: &mut Vec<(usize, usize)>,
    ) {
        let plane = out_w * out_h;
        debug_assert!(dst.len() >= 3 * plane);
        debug_assert!(rect.x + rect.w <= self.width && rect.y + rect.h <= self.height);
        let start = |a: usize, out: usize, n: usize| a * n / out;
        let end = |a: usize, out: usize, n: usize| ((a + 1) * n).div_ceil(out);
        cols.clear();
        cols.extend((0..out_w).map(|j| {
            (
                rect.x + start(j, out_w, rect.w),
                rect.x + end(j, out_w, rect.w),
            )
        }));
        for i in 0..out_h {
            let y0 = rect.y + start(i, out_h, rect.h);
            let y1 = rect.y + end(i, out_h, rect.h);
            let kh = (y1 - y0) as f32;
            for (j, &(x0, x1)) in cols.iter().enumerate() {
                let kw = (x1 - x0) as f32;
                for (k, &c) in norm.order.iter().enumerate() {
                    let v = self.sum(x0, y0, x1, y1, c) as f32 / kh / kw;
                    dst[k * plane + i * out_w + j] = (v - norm.mean[k]) / norm.std[k];
                }
            }
        }
    }
}

/// How a stage's input tensor is made from RGB values.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Norm {
    /// Tensor channel `k` takes RGB channel `order[k]`.
    order: [usize; 3],
    mean: [f32; 3],
    std: [f32; 3],
}

/// One network of the cascade with what its contract says about it.
#[derive(Debug)]
struct Stage {
    model: Model,
    input: String,
    reg: String,
    prob: String,
    landmarks: Option<String>,
    width: usize,
    height: usize,
    norm: Norm,
}

impl Stage {
    fn new(model: Model, stage: &str) -> Result<Self, FaceError> {
        let c = model.contract();
        let name = &c.name;
        if c.role != Role::FaceDetector {
            return Err(FaceError::Parameter(format!(
                "model {name} has role `{}`, MTCNN {stage} needs `face-detector`",
                c.role
            )));
        }
        let kind = DetectorKind::from_contract(c)?;
        if kind != DetectorKind::Mtcnn {
            return Err(FaceError::DetectorKind(format!(
                "{kind} (model {name}; the MTCNN cascade needs affect.detector.kind = mtcnn)"
            )));
        }
        match c.prop("affect.detector.stage") {
            Some(s) if s.trim() == stage => {}
            found => {
                return Err(FaceError::Parameter(format!(
                    "model {name} has affect.detector.stage = {}, expected `{stage}` (pass the P-Net, R-Net and O-Net models in that order)",
                    found.map_or_else(|| "(missing)".to_owned(), |s| format!("`{s}`"))
                )));
            }
        }
        let InputSpec::Image(input) = &c.input else {
            return Err(FaceError::Parameter(format!(
                "model {name} has no image input"
            )));
        };
        if input.layout != Layout::Nchw {
            return Err(FaceError::Parameter(format!(
                "model {name}: MTCNN networks take NCHW input, the contract says NHWC"
            )));
        }
        let order = match input.colour {
            PixelColour::Rgb => [0, 1, 2],
            PixelColour::Bgr => [2, 1, 0],
            PixelColour::Grey => {
                return Err(FaceError::Parameter(format!(
                    "model {name}: MTCNN networks take RGB or BGR input, the contract says GREY"
                )));
            }
        };
        let three = |v: &[f32], what: &str| -> Result<[f32; 3], FaceError> {
            match *v {
                [a] => Ok([a; 3]),
                [a, b, c] => Ok([a, b, c]),
                _ => Err(FaceError::Parameter(format!(
                    "model {name}: {} input {what} values, expected 1 or 3",
                    v.len()
                ))),
            }
        };
        // mean / std are per tensor channel (the model's colour order)
        let mean = three(&input.mean, "mean")?;
        let std = three(&input.std, "std")?;
        let want = if stage == "onet" { 3 } else { 2 };
        if c.outputs.len() < want {
            return Err(FaceError::Output(format!(
                "model {name} lists {} outputs in affect.output.names, MTCNN {stage} needs {want} (bbox_reg, prob{})",
                c.outputs.len(),
                if want == 3 { ", landmarks" } else { "" }
            )));
        }
        if stage == "pnet" && (input.width != CELL || input.height != CELL) {
            return Err(FaceError::Size(format!(
                "model {name}: P-Net input size must be {CELL}x{CELL} (its cell size), the contract says {}x{}",
                input.width, input.height
            )));
        }
        Ok(Stage {
            input: input.name.clone(),
            reg: c.outputs[0].clone(),
            prob: c.outputs[1].clone(),
            landmarks: c.outputs.get(2).filter(|_| want == 3).cloned(),
            width: input.width,
            height: input.height,
            norm: Norm { order, mean, std },
            model,
        })
    }

    /// Runs the network on `batch` tensors of `[3, height, width]` held in `data`.
    fn run(
        &mut self,
        data: &[f32],
        shape: [usize; 4],
    ) -> Result<BTreeMap<String, ArrayD<f32>>, FaceError> {
        let n: usize = shape.iter().product();
        let view = ArrayViewD::from_shape(IxDyn(&shape), &data[..n])
            .map_err(|e| FaceError::Size(format!("MTCNN input tensor {shape:?}: {e}")))?;
        self.model
            .run_f32(&[(self.input.as_str(), view)])
            .map_err(|e| FaceError::Output(e.to_string()))
    }
}

/// The output `name` of `out` as a contiguous slice of shape `shape`.
fn output<'a>(
    out: &'a BTreeMap<String, ArrayD<f32>>,
    name: &str,
    shape: &[usize],
    model: &str,
) -> Result<&'a [f32], FaceError> {
    let a = out
        .get(name)
        .ok_or_else(|| FaceError::Output(format!("model {model} gave no output `{name}`")))?;
    if a.shape() != shape {
        return Err(FaceError::Output(format!(
            "model {model}: output `{name}` has shape {:?}, expected {shape:?}",
            a.shape()
        )));
    }
    a.as_slice().ok_or_else(|| {
        FaceError::Output(format!("model {model}: output `{name}` is not contiguous"))
    })
}

/// Buffers reused from frame to frame.
#[derive(Debug, Default)]
struct Scratch {
    integral: IntegralImage,
    input: Vec<f32>,
    cols: Vec<(usize, usize)>,
    level: Vec<Candidate>,
    cands: Vec<Candidate>,
    rects: Vec<Rect>,
}

/// The MTCNN cascade on three ONNX models (facenet-pytorch's P-Net, R-Net and O-Net as
/// converted by `weights/convert/mtcnn.py`). See the module documentation for the steps.
#[derive(Debug)]
pub struct MtcnnDetector {
    pnet: Stage,
    rnet: Stage,
    onet: Stage,
    config: MtcnnConfig,
    scratch: Scratch,
}

impl MtcnnDetector {
    /// A detector from the three networks. Each model's contract must say role
    /// `face-detector`, `affect.detector.kind = mtcnn` and `affect.detector.stage` =
    /// `pnet` / `rnet` / `onet` respectively, with an RGB (or BGR) NCHW image input and
    /// the outputs `bbox_reg, prob` (+ `landmarks` for O-Net) in `affect.output.names`.
    pub fn new(
        pnet: Model,
        rnet: Model,
        onet: Model,
        config: MtcnnConfig,
    ) -> Result<Self, FaceError> {
        config.validate()?;
        Ok(MtcnnDetector {
            pnet: Stage::new(pnet, "pnet")?,
            rnet: Stage::new(rnet, "rnet")?,
            onet: Stage::new(onet, "onet")?,
            config,
            scratch: Scratch::default(),
        })
    }

    /// The settings in use.
    pub fn config(&self) -> &MtcnnConfig {
        &self.config
    }

    /// Changes the settings (validated first; unchanged on error).
    pub fn set_config(&mut self, config: MtcnnConfig) -> Result<(), FaceError> {
        config.validate()?;
        self.config = config;
        Ok(())
    }

    /// Detects faces in `frame`. Returns boxes in frame pixels (facenet-pytorch's values,
    /// see the module documentation), five landmarks each in ArcFace order — left eye,
    /// right eye (as seen in the image), nose tip, left and right mouth corner — and the
    /// O-Net probability as score; best score first. Boxes may extend past the frame.
    pub fn detect(&mut self, frame: &Frame<'_>) -> Result<Vec<Detection>, FaceError> {
        let (width, height) = (frame.width(), frame.height());
        let cfg = self.config;
        let scales = scale_pyramid(width, height, cfg.min_face_size, cfg.scale_factor);
        if scales.is_empty() {
            return Ok(Vec::new());
        }
        let s = &mut self.scratch;
        s.integral.build(frame);
        let whole = Rect {
            x: 0,
            y: 0,
            w: width,
            h: height,
        };

        // Stage 1: P-Net on the pyramid.
        s.cands.clear();
        for &scale in &scales {
            let (hs, ws) = level_size(width, height, scale);
            if hs.saturating_mul(ws) > MAX_LEVEL_PIXELS {
                return Err(FaceError::Size(format!(
                    "MTCNN pyramid level {ws}x{hs} is too large (min face size {} on a {width}x{height} frame)",
                    cfg.min_face_size
                )));
            }
            let n = 3 * hs * ws;
            if s.input.len() < n {
                s.input.resize(n, 0.0);
            }
            s.integral
                .resample(whole, ws, hs, &self.pnet.norm, &mut s.input, &mut s.cols);
            let out = self.pnet.run(&s.input, [1, 3, hs, ws])?;
            let name = &self.pnet.model.contract().name;
            let (oh, ow) = match out.get(&self.pnet.prob).map(|a| a.shape()) {
                Some(&[1, 2, oh, ow]) => (oh, ow),
                other => {
                    return Err(FaceError::Output(format!(
                        "model {name}: output `{}` has shape {other:?}, expected [1, 2, h, w]",
                        self.pnet.prob
                    )));
                }
            };
            let prob = output(&out, &self.pnet.prob, &[1, 2, oh, ow], name)?;
            let reg = output(&out, &self.pnet.reg, &[1, 4, oh, ow], name)?;
            s.level.clear();
            generate_bounding_boxes(
                &prob[oh * ow..],
                reg,
                oh,
                ow,
                scale as f32,
                cfg.thresholds[0],
                &mut s.level,
            );
            nms_candidates(&mut s.level, cfg.nms[0], Overlap::Union);
            s.cands.extend_from_slice(&s.level);
        }
        nms_candidates(&mut s.cands, cfg.nms[1], Overlap::Union);
        for c in &mut s.cands {
            c.b = rerec(pnet_regress(c.b, c.reg));
        }

        // Stage 2: R-Net on 24x24 crops, one batch.
        let n = self.crop_batch(Which::R)?;
        if n == 0 {
            return Ok(Vec::new());
        }
        let s = &mut self.scratch;
        let out = self
            .rnet
            .run(&s.input, [n, 3, self.rnet.height, self.rnet.width])?;
        let name = &self.rnet.model.contract().name;
        let prob = output(&out, &self.rnet.prob, &[n, 2], name)?;
        let reg = output(&out, &self.rnet.reg, &[n, 4], name)?;
        let mut next = Vec::with_capacity(n);
        for (i, c) in s.cands.iter().enumerate() {
            let p = prob[2 * i + 1];
            if p > cfg.thresholds[1] {
                next.push(Candidate {
                    b: c.b,
                    score: p,
                    reg: [reg[4 * i], reg[4 * i + 1], reg[4 * i + 2], reg[4 * i + 3]],
                });
            }
        }
        nms_candidates(&mut next, cfg.nms[2], Overlap::Union);
        for c in &mut next {
            c.b = rerec(bbreg(c.b, c.reg));
        }
        s.cands = next;

        // Stage 3: O-Net on 48x48 crops, one batch.
        let n = self.crop_batch(Which::O)?;
        if n == 0 {
            return Ok(Vec::new());
        }
        let s = &mut self.scratch;
        let out = self
            .onet
            .run(&s.input, [n, 3, self.onet.height, self.onet.width])?;
        let name = &self.onet.model.contract().name;
        let prob = output(&out, &self.onet.prob, &[n, 2], name)?;
        let reg = output(&out, &self.onet.reg, &[n, 4], name)?;
        let lm_name = self.onet.landmarks.as_deref().unwrap_or("landmarks");
        let lm = output(&out, lm_name, &[n, 10], name)?;
        let mut dets = Vec::new();
        let mut boxes = Vec::new();
        for (i, c) in s.cands.iter().enumerate() {
            let p = prob[2 * i + 1];
            if p > cfg.thresholds[2] {
                let b = c.b;
                let w = b[2] - b[0] + 1.0;
                let h = b[3] - b[1] + 1.0;
                let l = &lm[10 * i..10 * i + 10];
                let keypoints = (0..5)
                    .map(|k| [w * l[k] + b[0] - 1.0, h * l[5 + k] + b[1] - 1.0])
                    .collect();
                let r = bbreg(
                    b,
                    [reg[4 * i], reg[4 * i + 1], reg[4 * i + 2], reg[4 * i + 3]],
                );
                boxes.push((r, p));
                dets.push(Detection {
                    bbox: BBox::new(r[0], r[1], r[2], r[3]),
                    keypoints,
                    score: p,
                });
            }
        }
        let keep = nms_indices(&boxes, cfg.nms[3], Overlap::Min);
        let mut slots: Vec<Option<Detection>> = dets.into_iter().map(Some).collect();
        Ok(keep.iter().filter_map(|&i| slots[i].take()).collect())
    }

    /// Crops every candidate in `scratch.cands` (clipped to the frame, as facenet-pytorch
    /// `pad` does) and resamples it to the stage's input size into `scratch.input`;
    /// candidates with nothing left inside the frame are dropped. Returns the batch size.
    fn crop_batch(&mut self, which: Which) -> Result<usize, FaceError> {
        let stage = match which {
            Which::R => &self.rnet,
            Which::O => &self.onet,
        };
        let s = &mut self.scratch;
        let (fw, fh) = (s.integral.width, s.integral.height);
        s.rects.clear();
        let mut kept = 0;
        for i in 0..s.cands.len() {
            if let Some(r) = crop_rect(s.cands[i].b, fw, fh) {
                s.cands[kept] = s.cands[i];
                s.rects.push(r);
                kept += 1;
            }
        }
        s.cands.truncate(kept);
        let (w, h) = (stage.width, stage.height);
        let per = 3 * w * h;
        let total = kept
            .checked_mul(per)
            .ok_or_else(|| FaceError::Size(format!("{kept} MTCNN crops overflow")))?;
        if s.input.len() < total {
            s.input.resize(total, 0.0);
        }
        for (k, r) in s.rects.iter().enumerate() {
            s.integral.resample(
                *r,
                w,
                h,
                &stage.norm,
                &mut s.input[k * per..(k + 1) * per],
                &mut s.cols,
            );
        }
        Ok(kept)
    }
}

/// Which crop stage.
#[derive(Debug, Clone, Copy)]
enum Which {
    R,
    O,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::face::PixelFormat;

    #[test]
    fn pyramid_matches_facenet_pytorch() {
        // Python: m = 12/20; minl = 562*m; while minl >= 12: scales.append(s); s *= 0.709; minl *= 0.709
        let s = scale_pyramid(572, 562, 20.0, 0.709);
        assert_eq!(s.len(), 10);
        assert_eq!(s[0], 0.6);
        assert_eq!(s[1], 0.6 * 0.709);
        assert_eq!(s[2], 0.6 * 0.709 * 0.709);
        let last = *s.last().unwrap();
        assert!(562.0 * last >= 12.0 && 562.0 * last * 0.709 < 12.0);
        // sizes int(h*s + 1), int(w*s + 1)
        assert_eq!(level_size(572, 562, s[0]), (338, 344));
        assert_eq!(level_size(572, 562, s[1]), (240, 244));
        // 640x360: 360*0.6 = 216 → 9 levels (216·0.709^8 ≈ 13.3, ·0.709 ≈ 9.4)
        assert_eq!(scale_pyramid(640, 360, 20.0, 0.709).len(), 9);
        // too small for the smallest face, or nonsense parameters
        assert!(scale_pyramid(19, 100, 20.0, 0.709).is_empty());
        assert_eq!(scale_pyramid(20, 100, 20.0, 0.709).len(), 1);
        assert!(scale_pyramid(640, 360, 20.0, 1.0).is_empty());
        assert!(scale_pyramid(640, 360, f32::NAN, 0.709).is_empty());
        assert_eq!(widen(0.709), 0.709f64);
    }

    #[test]
    fn bounding_boxes_from_probability_map() {
        // 3 x 4 map; cells (x=1, y=0) and (x=3, y=2) pass 0.6, (x=0, y=1) equals it.
        let (h, w) = (3, 4);
        let mut prob = vec![0.1f32; h * w];
        prob[1] = 0.9;
        prob[4] = 0.6;
        prob[2 * 4 + 3] = 0.7;
        let reg: Vec<f32> = (0..4 * h * w).map(|v| v as f32 * 0.01).collect();
        let mut out = Vec::new();
        generate_bounding_boxes(&prob, &reg, h, w, 0.5, 0.6, &mut out);
        assert_eq!(out.len(), 3);
        // row-major: (1,0), (0,1), (3,2)
        let c = out[0];
        assert_eq!(c.b, [6.0, 2.0, 28.0, 24.0]); // floor((2x+1)/s), floor((2x+12)/s)
        assert_eq!(c.score, 0.9);
        for (r, want) in c.reg.iter().zip([0.01, 0.13, 0.25, 0.37]) {
            assert!((r - want).abs() < 1e-6, "{:?}", c.reg);
        }
        assert_eq!(out[1].b, [2.0, 6.0, 24.0, 28.0]);
        assert_eq!(out[1].score, 0.6);
        let c = out[2];
        assert_eq!(c.b, [14.0, 10.0, 36.0, 32.0]);
        assert!((c.reg[3] - (36 + 11) as f32 * 0.01).abs() < 1e-6);
        // non-integer scale floors
        out.clear();
        generate_bounding_boxes(&prob, &reg, h, w, 0.45, 0.8, &mut out);
        assert_eq!(out.len(), 1);
        // 3/0.45 = 6.67, 1/0.45 = 2.22, 14/0.45 = 31.1, 12/0.45 = 26.7
        assert_eq!(out[0].b, [6.0, 2.0, 31.0, 26.0]);
    }

    #[test]
    fn rerec_squares_about_the_centre() {
        assert_eq!(rerec([10.0, 20.0, 50.0, 40.0]), [10.0, 10.0, 50.0, 50.0]);
        assert_eq!(rerec([0.0, 0.0, 10.0, 30.0]), [-10.0, 0.0, 20.0, 30.0]);
        let sq = [1.0, 2.0, 5.0, 6.0];
        assert_eq!(rerec(sq), sq);
    }

    #[test]
    fn box_regression() {
        let b = [10.0, 20.0, 29.0, 59.0]; // inclusive size 20 x 40
        assert_eq!(bbreg(b, [0.0; 4]), b);
        assert_eq!(bbreg(b, [0.1, -0.25, 0.5, 0.05]), [12.0, 10.0, 39.0, 61.0]);
        // P-Net's inline regression uses the exclusive size (19 x 39)
        assert_eq!(
            pnet_regress(b, [1.0, 1.0, -1.0, 0.0]),
            [29.0, 59.0, 10.0, 59.0]
        );
    }

    #[test]
    fn crop_rect_clips_like_pad() {
        // inside: x=10.7 -> 10 -> slice [9, 30)
        assert_eq!(
            crop_rect([10.7, 5.2, 30.9, 25.0], 100, 50),
            Some(Rect {
                x: 9,
                y: 4,
                w: 21,
                h: 21
            })
        );
        // partly outside: clipped to [0, 100) x [0, 50)
        assert_eq!(
            crop_rect([-20.0, -3.5, 140.0, 80.0], 100, 50),
            Some(Rect {
                x: 0,
                y: 0,
                w: 100,
                h: 50
            })
        );
        // outside: nothing
        assert_eq!(crop_rect([120.0, 0.0, 140.0, 20.0], 100, 50), None);
        assert_eq!(crop_rect([-40.0, 0.0, -5.0, 20.0], 100, 50), None);
        assert_eq!(crop_rect([f32::NAN; 4], 100, 50), None);
    }

    #[test]
    fn nms_union_and_min() {
        let boxes = [
            ([0.0, 0.0, 10.0, 10.0], 0.8),
            ([1.0, 1.0, 11.0, 11.0], 0.9), // IoU with the first 81/119 = 0.68
            ([20.0, 20.0, 30.0, 30.0], 0.5),
            ([2.0, 2.0, 8.0, 8.0], 0.95), // inside the first two: IoU 0.36, Min 1
            ([0.0, 0.0, 1.0, 1.0], f32::NAN),
        ];
        assert_eq!(nms_indices(&boxes, 0.7, Overlap::Union), vec![3, 1, 0, 2]);
        assert_eq!(nms_indices(&boxes, 0.5, Overlap::Union), vec![3, 1, 2]);
        assert_eq!(nms_indices(&boxes, 0.7, Overlap::Min), vec![3, 2]);
        assert!(nms_indices(&[], 0.5, Overlap::Min).is_empty());
    }

    /// Adaptive average pooling the slow way.
    fn naive_area(src: &[f32], sw: usize, sh: usize, ow: usize, oh: usize) -> Vec<f32> {
        let mut out = vec![0.0; ow * oh];
        for i in 0..oh {
            let (y0, y1) = (i * sh / oh, ((i + 1) * sh).div_ceil(oh));
            for j in 0..ow {
                let (x0, x1) = (j * sw / ow, ((j + 1) * sw).div_ceil(ow));
                let mut s = 0.0;
                for y in y0..y1 {
                    for x in x0..x1 {
                        s += src[y * sw + x];
                    }
                }
                out[i * ow + j] = s / (y1 - y0) as f32 / (x1 - x0) as f32;
            }
        }
        out
    }

    #[test]
    fn area_resampling_matches_adaptive_pooling() {
        let (w, h) = (13, 9);
        let rgb: Vec<u8> = (0..w * h * 3)
            .map(|i| ((i * 37 + 11) % 256) as u8)
            .collect();
        let frame = Frame::packed(&rgb, w, h, PixelFormat::Rgb).unwrap();
        let mut ii = IntegralImage::default();
        ii.build(&frame);
        let identity = Norm {
            order: [0, 1, 2],
            mean: [0.0; 3],
            std: [1.0; 3],
        };
        let mut cols = Vec::new();
        let rect = Rect {
            x: 2,
            y: 1,
            w: 10,
            h: 7,
        };
        for (ow, oh) in [(4, 3), (10, 7), (24, 24), (1, 1)] {
            let mut dst = vec![0.0; 3 * ow * oh];
            ii.resample(rect, ow, oh, &identity, &mut dst, &mut cols);
            for c in 0..3 {
                let src: Vec<f32> = (0..rect.h)
                    .flat_map(|y| (0..rect.w).map(move |x| (x, y)))
                    .map(|(x, y)| rgb[((rect.y + y) * w + rect.x + x) * 3 + c] as f32)
                    .collect();
                let want = naive_area(&src, rect.w, rect.h, ow, oh);
                assert_eq!(
                    &dst[c * ow * oh..(c + 1) * ow * oh],
                    &want[..],
                    "{ow}x{oh} c{c}"
                );
            }
        }
        // normalisation and channel order (BGR model, MTCNN mean/std)
        let bgr = Norm {
            order: [2, 1, 0],
            mean: [127.5; 3],
            std: [128.0; 3],
        };
        let mut dst = vec![0.0; 3];
        let px = Rect {
            x: 0,
            y: 0,
            w: 1,
            h: 1,
        };
        ii.resample(px, 1, 1, &bgr, &mut dst, &mut cols);
        assert_eq!(dst[0], (rgb[2] as f32 - 127.5) * 0.0078125);
        assert_eq!(dst[2], (rgb[0] as f32 - 127.5) * 0.0078125);
    }

    #[test]
    fn config_validation() {
        assert!(MtcnnConfig::default().validate().is_ok());
        let bad = [
            MtcnnConfig {
                min_face_size: 0.0,
                ..Default::default()
            },
            MtcnnConfig {
                scale_factor: 1.0,
                ..Default::default()
            },
            MtcnnConfig {
                thresholds: [0.6, f32::NAN, 0.7],
                ..Default::default()
            },
            MtcnnConfig {
                nms: [0.5, 0.7, 0.0, 0.7],
                ..Default::default()
            },
        ];
        for c in bad {
            assert!(
                matches!(c.validate(), Err(FaceError::Parameter(_))),
                "{c:?}"
            );
        }
    }
}
