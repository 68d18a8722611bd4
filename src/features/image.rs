// SPDX-License-Identifier: MPL-2.0
//! Face crop → model input tensor, driven by the model's [`ImageInput`] contract.
//!
//! Steps, in this order (the same in the element and in the trainer):
//! 1. colour: RGB as is, BGR swapped, or GREY = `0.299 R + 0.587 G + 0.114 B` (the
//!    ITU-R BT.601 luma weights OpenCV's `cvtColor(BGR2GRAY)` uses; kept in float, not
//!    rounded to 8 bits), at the crop's resolution;
//! 2. bilinear resize to the model's `WxH` with half-pixel centres (OpenCV's
//!    `INTER_LINEAR`: `src = (dst + 0.5) · scale − 0.5`, clamped at the borders);
//! 3. `(x − mean[c]) / std[c]` on 0..255 values;
//! 4. NCHW or NHWC layout.

use crate::runtime::{ImageInput, Layout, PixelColour};

/// Why a crop cannot be prepared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CropError {
    /// The crop's byte count is not `width · height · 3`.
    #[error("crop of {width}x{height} has {len} bytes, expected {expected} (packed RGB)")]
    BadSize {
        /// Crop width.
        width: usize,
        /// Crop height.
        height: usize,
        /// Bytes given.
        len: usize,
        /// Bytes expected.
        expected: usize,
    },
    /// The output slice is not one item long.
    #[error("output holds {got} values, one item needs {want}")]
    BadOutput {
        /// Values given.
        got: usize,
        /// Values needed.
        want: usize,
    },
}

/// Prepares packed RGB face crops for one image model.
#[derive(Debug, Clone)]
pub struct CropPreprocessor {
    spec: ImageInput,
    scratch: Vec<f32>,
    /// Per output column: the two source columns and the weight of the second.
    xs: Vec<(usize, usize, f32)>,
}

impl CropPreprocessor {
    /// A preprocessor for `spec` (the model's image input contract).
    pub fn new(spec: &ImageInput) -> Self {
        CropPreprocessor {
            spec: spec.clone(),
            scratch: Vec::new(),
            xs: Vec::new(),
        }
    }

    /// The contract it follows.
    pub fn spec(&self) -> &ImageInput {
        &self.spec
    }

    /// Values per item (`C · H · W`).
    pub fn item_len(&self) -> usize {
        self.spec.colour.channels() * self.spec.width * self.spec.height
    }

    /// Shape of a batch of `n` items, in the model's layout.
    pub fn batch_shape(&self, n: usize) -> Vec<usize> {
        let (c, h, w) = (
            self.spec.colour.channels(),
            self.spec.height,
            self.spec.width,
        );
        match self.spec.layout {
            Layout::Nchw => vec![n, c, h, w],
            Layout::Nhwc => vec![n, h, w, c],
        }
    }

    /// Writes one crop (`width × height` packed RGB bytes) into `out` (one item long).
    pub fn prepare(
        &mut self,
        rgb: &[u8],
        width: usize,
        height: usize,
        out: &mut [f32],
    ) -> Result<(), CropError> {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { self.prepare_avx2(rgb, width, height, out) };
        }
        self.prepare_impl(rgb, width, height, out)
    }

    /// [`prepare`](Self::prepare) compiled for AVX2: the same operations in the same
    /// order (no fused multiply-adds), so the same values.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn prepare_avx2(
        &mut self,
        rgb: &[u8],
        width: usize,
        height: usize,
        out: &mut [f32],
    ) -> Result<(), CropError> {
        self.prepare_impl(rgb, width, height, out)
    }

    #[inline(always)]
    fn prepare_impl(
        &mut self,
        rgb: &[u8],
        width: usize,
        height: usize,
        out: &mut [f32],
    ) -> Result<(), CropError> {
        let expected = width * height * 3;
        if rgb.len() != expected || width == 0 || height == 0 {
            return Err(CropError::BadSize {
                width,
                height,
                len: rgb.len(),
                expected,
            });
        }
        if out.len() != self.item_len() {
            return Err(CropError::BadOutput {
                got: out.len(),
                want: self.item_len(),
            });
        }
        let c = self.spec.colour.channels();
        // 1. colour, planar float at the source resolution (one loop per colour kind so
        //    that each vectorises).
        let plane = width * height;
        self.scratch.clear();
        self.scratch.resize(c * plane, 0.0);
        let px = rgb.chunks_exact(3);
        match self.spec.colour {
            PixelColour::Grey => {
                for (d, p) in self.scratch.iter_mut().zip(px) {
                    let (r, g, b) = (p[0] as f32, p[1] as f32, p[2] as f32);
                    *d = 0.299 * r + 0.587 * g + 0.114 * b;
                }
            }
            PixelColour::Rgb | PixelColour::Bgr => {
                let (first, rest) = self.scratch.split_at_mut(plane);
                let (second, third) = rest.split_at_mut(plane);
                let (ri, bi) = match self.spec.colour {
                    PixelColour::Bgr => (2, 0),
                    _ => (0, 2),
                };
                for (((a, g), b), p) in first
                    .iter_mut()
                    .zip(second.iter_mut())
                    .zip(third.iter_mut())
                    .zip(px)
                {
                    *a = p[ri] as f32;
                    *g = p[1] as f32;
                    *b = p[bi] as f32;
                }
            }
        }
        // 2.–4. resize, normalise, lay out: per channel and output row, the two source
        //       rows are fixed; per column the taps come from one table.
        let (ow, oh) = (self.spec.width, self.spec.height);
        let sx = width as f32 / ow as f32;
        let sy = height as f32 / oh as f32;
        let coord = |d: usize, s: f32, n: usize| -> (usize, usize, f32) {
            let x = ((d as f32 + 0.5) * s - 0.5).max(0.0);
            let x0 = (x.floor() as usize).min(n - 1);
            let x1 = (x0 + 1).min(n - 1);
            (x0, x1, x - x0 as f32)
        };
        self.xs.clear();
        self.xs.extend((0..ow).map(|x| coord(x, sx, width)));
        for ch in 0..c {
            let p = &self.scratch[ch * plane..(ch + 1) * plane];
            let (mean, std) = (self.spec.mean[ch], self.spec.std[ch]);
            for y in 0..oh {
                let (y0, y1, fy) = coord(y, sy, height);
                let (r0, r1) = (&p[y0 * width..][..width], &p[y1 * width..][..width]);
                let value = |&(x0, x1, fx): &(usize, usize, f32)| {
                    let top = r0[x0] * (1.0 - fx) + r0[x1] * fx;
                    let bot = r1[x0] * (1.0 - fx) + r1[x1] * fx;
                    let v = top * (1.0 - fy) + bot * fy;
                    (v - mean) / std
                };
                match self.spec.layout {
                    Layout::Nchw => {
                        let row = &mut out[(ch * oh + y) * ow..][..ow];
                        for (o, t) in row.iter_mut().zip(&self.xs) {
                            *o = value(t);
                        }
                    }
                    Layout::Nhwc => {
                        let row = &mut out[y * ow * c..][..ow * c];
                        for (o, t) in row.iter_mut().skip(ch).step_by(c).zip(&self.xs) {
                            *o = value(t);
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(colour: PixelColour, layout: Layout, w: usize, h: usize) -> ImageInput {
        let c = colour.channels();
        ImageInput {
            name: "input".into(),
            width: w,
            height: h,
            layout,
            colour,
            mean: vec![127.5; c],
            std: vec![127.5; c],
        }
    }

    #[test]
    fn identity_size_grey_and_layouts() {
        // 2x1 crop: red, blue.
        let rgb = [255u8, 0, 0, 0, 0, 255];
        let mut p = CropPreprocessor::new(&spec(PixelColour::Grey, Layout::Nchw, 2, 1));
        let mut out = vec![0.0; 2];
        p.prepare(&rgb, 2, 1, &mut out).unwrap();
        assert!((out[0] - (0.299 * 255.0 - 127.5) / 127.5).abs() < 1e-6);
        assert!((out[1] - (0.114 * 255.0 - 127.5) / 127.5).abs() < 1e-6);

        let mut p = CropPreprocessor::new(&spec(PixelColour::Bgr, Layout::Nhwc, 2, 1));
        let mut out = vec![0.0; 6];
        p.prepare(&rgb, 2, 1, &mut out).unwrap();
        assert_eq!(out, [-1.0, -1.0, 1.0, 1.0, -1.0, -1.0]);
        let mut p = CropPreprocessor::new(&spec(PixelColour::Rgb, Layout::Nchw, 2, 1));
        p.prepare(&rgb, 2, 1, &mut out).unwrap();
        assert_eq!(out, [1.0, -1.0, -1.0, -1.0, -1.0, 1.0]);
        assert_eq!(p.batch_shape(3), [3, 3, 1, 2]);
        assert!(p.prepare(&rgb, 3, 1, &mut out).is_err());
    }

    #[test]
    fn bilinear_matches_half_pixel_centres() {
        // 4x1 grey ramp 0, 85, 170, 255 (R=G=B) → 2x1: src x = 0.5 and 2.5.
        let rgb: Vec<u8> = [0u8, 85, 170, 255]
            .iter()
            .flat_map(|&v| [v, v, v])
            .collect();
        let mut s = spec(PixelColour::Grey, Layout::Nchw, 2, 1);
        s.mean = vec![0.0];
        s.std = vec![1.0];
        let mut p = CropPreprocessor::new(&s);
        let mut out = vec![0.0; 2];
        p.prepare(&rgb, 4, 1, &mut out).unwrap();
        assert!(
            (out[0] - 42.5).abs() < 1e-3 && (out[1] - 212.5).abs() < 1e-3,
            "{out:?}"
        );
    }

    /// The steps of the module doc, one value at a time (the first implementation).
    fn reference(spec: &ImageInput, rgb: &[u8], width: usize, height: usize) -> Vec<f32> {
        let c = spec.colour.channels();
        let px = |x: usize, y: usize, ch: usize| -> f32 {
            let p = &rgb[(y * width + x) * 3..][..3];
            let (r, g, b) = (p[0] as f32, p[1] as f32, p[2] as f32);
            match (spec.colour, ch) {
                (PixelColour::Grey, _) => 0.299 * r + 0.587 * g + 0.114 * b,
                (PixelColour::Rgb, 0) | (PixelColour::Bgr, 2) => r,
                (_, 1) => g,
                _ => b,
            }
        };
        let (ow, oh) = (spec.width, spec.height);
        let coord = |d: usize, s: f32, n: usize| {
            let x = ((d as f32 + 0.5) * s - 0.5).max(0.0);
            let x0 = (x.floor() as usize).min(n - 1);
            (x0, (x0 + 1).min(n - 1), x - x0 as f32)
        };
        let mut out = vec![0.0; c * ow * oh];
        for y in 0..oh {
            let (y0, y1, fy) = coord(y, height as f32 / oh as f32, height);
            for x in 0..ow {
                let (x0, x1, fx) = coord(x, width as f32 / ow as f32, width);
                for ch in 0..c {
                    let top = px(x0, y0, ch) * (1.0 - fx) + px(x1, y0, ch) * fx;
                    let bot = px(x0, y1, ch) * (1.0 - fx) + px(x1, y1, ch) * fx;
                    let v = (top * (1.0 - fy) + bot * fy - spec.mean[ch]) / spec.std[ch];
                    let idx = match spec.layout {
                        Layout::Nchw => (ch * oh + y) * ow + x,
                        Layout::Nhwc => (y * ow + x) * c + ch,
                    };
                    out[idx] = v;
                }
            }
        }
        out
    }

    #[test]
    fn equals_the_per_value_reference_bit_for_bit() {
        let mut seed = 3u32;
        for (w, h, ow, oh) in [
            (112, 112, 64, 64),
            (7, 5, 3, 4),
            (5, 9, 11, 2),
            (1, 1, 2, 2),
        ] {
            let rgb: Vec<u8> = (0..w * h * 3)
                .map(|_| {
                    seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    (seed >> 24) as u8
                })
                .collect();
            for colour in [PixelColour::Grey, PixelColour::Rgb, PixelColour::Bgr] {
                for layout in [Layout::Nchw, Layout::Nhwc] {
                    let mut sp = spec(colour, layout, ow, oh);
                    sp.mean = (0..colour.channels()).map(|k| 100.0 + k as f32).collect();
                    sp.std = (0..colour.channels())
                        .map(|k| 50.0 + 3.0 * k as f32)
                        .collect();
                    let mut p = CropPreprocessor::new(&sp);
                    let mut out = vec![f32::NAN; p.item_len()];
                    p.prepare(&rgb, w, h, &mut out).unwrap();
                    assert_eq!(
                        out,
                        reference(&sp, &rgb, w, h),
                        "{w}x{h}->{ow}x{oh} {colour:?} {layout:?}"
                    );
                }
            }
        }
    }
}
