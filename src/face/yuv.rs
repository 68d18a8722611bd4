// SPDX-License-Identifier: MPL-2.0
//! YUV 4:2:0 (I420, NV12) to packed RGB, for detectors and crops that read RGB.
//!
//! Converting once per frame into a reused buffer keeps the samplers simple and costs
//! about one memory pass (16 pixels per step with AVX2); the coefficients follow the stream's matrix (BT.601 or
//! BT.709) and range (limited or full).

use super::FaceError;

/// YUV→RGB matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum YuvMatrix {
    /// ITU-R BT.601 (SD).
    #[default]
    Bt601,
    /// ITU-R BT.709 (HD).
    Bt709,
}

/// A borrowed 4:2:0 frame: a luma plane and either separate U/V planes (I420) or one
/// interleaved UV plane (NV12).
#[derive(Debug, Clone, Copy)]
pub struct Yuv420<'a> {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Luma plane and its stride.
    pub y: (&'a [u8], usize),
    /// Chroma: `U`, `V` planes with strides (I420) …
    pub u: (&'a [u8], usize),
    /// … and the `V` plane (I420); for NV12 `u` holds interleaved UV and `v` is unused.
    pub v: (&'a [u8], usize),
    /// True for NV12 (interleaved UV in `u`).
    pub nv12: bool,
    /// Matrix.
    pub matrix: YuvMatrix,
    /// True when Y spans 0..255 (full range), false for 16..235.
    pub full_range: bool,
}

/// Fixed-point coefficients (×2^14): r = y' + cr·v', g = y' − cg_u·u' − cg_v·v', b = y' + cb·u'.
struct Coeffs {
    ys: i32,
    yo: i32,
    cr: i32,
    cgu: i32,
    cgv: i32,
    cb: i32,
}

fn coeffs(m: YuvMatrix, full: bool) -> Coeffs {
    let (kr, kb) = match m {
        YuvMatrix::Bt601 => (0.299f64, 0.114f64),
        YuvMatrix::Bt709 => (0.2126, 0.0722),
    };
    let kg = 1.0 - kr - kb;
    let (ys, cs, yo) = if full {
        (1.0, 1.0, 0)
    } else {
        (255.0 / 219.0, 255.0 / 224.0, 16)
    };
    let f = |v: f64| (v * 16384.0).round() as i32;
    Coeffs {
        ys: f(ys),
        yo,
        cr: f(2.0 * (1.0 - kr) * cs),
        cgu: f(2.0 * (1.0 - kb) * kb / kg * cs),
        cgv: f(2.0 * (1.0 - kr) * kr / kg * cs),
        cb: f(2.0 * (1.0 - kb) * cs),
    }
}

#[inline]
fn clamp8(v: i32) -> u8 {
    (v >> 14).clamp(0, 255) as u8
}

impl Yuv420<'_> {
    fn check(&self) -> Result<(), FaceError> {
        let (w, h) = (self.width, self.height);
        if w == 0 || h == 0 {
            return Err(FaceError::Size(format!("frame is {w}x{h}")));
        }
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        let need = |plane: &[u8], stride: usize, row: usize, rows: usize, what: &str| {
            if stride < row || plane.len() < (rows - 1) * stride + row {
                Err(FaceError::Size(format!(
                    "{what} plane too small for {w}x{h}"
                )))
            } else {
                Ok(())
            }
        };
        need(self.y.0, self.y.1, w, h, "Y")?;
        if self.nv12 {
            need(self.u.0, self.u.1, 2 * cw, ch, "UV")
        } else {
            need(self.u.0, self.u.1, cw, ch, "U")?;
            need(self.v.0, self.v.1, cw, ch, "V")
        }
    }

    /// Converts into `out` (packed RGB, resized to `width * height * 3`).
    ///
    /// On x86-64 CPUs with AVX2, 16 pixels at a time (same fixed-point arithmetic, so
    /// the output is bit-identical to the scalar path).
    pub fn to_rgb(&self, out: &mut Vec<u8>) -> Result<(), FaceError> {
        self.convert(out, true)
    }

    fn convert(&self, out: &mut Vec<u8>, simd: bool) -> Result<(), FaceError> {
        self.check()?;
        let (w, h) = (self.width, self.height);
        let cw = w.div_ceil(2);
        out.resize(w * h * 3, 0);
        let c = coeffs(self.matrix, self.full_range);
        #[cfg(target_arch = "x86_64")]
        let simd = simd && std::arch::is_x86_feature_detected!("avx2");
        #[cfg(not(target_arch = "x86_64"))]
        let _ = simd;
        for (row, dst) in out.chunks_exact_mut(w * 3).enumerate().take(h) {
            let yrow = &self.y.0[row * self.y.1..row * self.y.1 + w];
            let cy = row / 2;
            // `check` made sure every row slice below exists.
            let (urow, vrow): (&[u8], &[u8]) = if self.nv12 {
                (&self.u.0[cy * self.u.1..cy * self.u.1 + 2 * cw], &[])
            } else {
                (
                    &self.u.0[cy * self.u.1..cy * self.u.1 + cw],
                    &self.v.0[cy * self.v.1..cy * self.v.1 + cw],
                )
            };
            // Whole 16-pixel groups with AVX2, the rest (or everything) scalar.
            #[cfg(target_arch = "x86_64")]
            let done = if simd {
                // SAFETY: AVX2 is present (checked above); the row function reads and
                // writes only within the slices it is given.
                unsafe { avx2::row(yrow, urow, vrow, self.nv12, dst, &c) }
            } else {
                0
            };
            #[cfg(not(target_arch = "x86_64"))]
            let done = 0;
            scalar_row(
                &yrow[done..],
                urow,
                vrow,
                self.nv12,
                done / 2,
                &mut dst[done * 3..],
                &c,
            );
        }
        Ok(())
    }
}

/// Converts one row from pixel `2 * chroma_start` on (`ys`, `dst` start there; `u`, `v`
/// are the whole chroma rows).
fn scalar_row(
    ys: &[u8],
    u: &[u8],
    v: &[u8],
    nv12: bool,
    chroma_start: usize,
    dst: &mut [u8],
    c: &Coeffs,
) {
    // Two pixels share one (u, v): per pair the chroma terms are computed once, and the
    // rows are zipped so that the inner loop has no index checks.
    let pair = |dst: &mut [u8], ys: &[u8], u: u8, v: u8| {
        let (u, v) = (u as i32 - 128, v as i32 - 128);
        let (r, g, b) = (
            c.cr * v + 8192,
            8192 - c.cgu * u - c.cgv * v,
            c.cb * u + 8192,
        );
        for (px, &y) in dst.chunks_exact_mut(3).zip(ys) {
            let yy = (y as i32 - c.yo) * c.ys;
            px[0] = clamp8(yy + r);
            px[1] = clamp8(yy + g);
            px[2] = clamp8(yy + b);
        }
    };
    let pixels = dst.chunks_mut(6).zip(ys.chunks(2));
    if nv12 {
        for ((d, ys), uv) in pixels.zip(u[2 * chroma_start..].chunks_exact(2)) {
            pair(d, ys, uv[0], uv[1]);
        }
    } else {
        for (((d, ys), &u), &v) in pixels.zip(&u[chroma_start..]).zip(&v[chroma_start..]) {
            pair(d, ys, u, v);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    //! The row conversion with AVX2: 16 pixels per step in 32-bit lanes with the scalar
    //! path's coefficients, rounding and clamping, then packed RGB via byte shuffles.
    use std::arch::x86_64::*;

    use super::Coeffs;

    /// Byte-shuffle masks that put channel `ch` of 16 pixels into output chunk `k` of 48
    /// packed RGB bytes (0x80 = zero).
    const fn mask(ch: usize, k: usize) -> [u8; 16] {
        let mut m = [0x80u8; 16];
        let mut p = 0;
        while p < 16 {
            let q = 16 * k + p;
            if q % 3 == ch {
                m[p] = (q / 3) as u8;
            }
            p += 1;
        }
        m
    }
    const MASKS: [[[u8; 16]; 3]; 3] = [
        [mask(0, 0), mask(1, 0), mask(2, 0)],
        [mask(0, 1), mask(1, 1), mask(2, 1)],
        [mask(0, 2), mask(1, 2), mask(2, 2)],
    ];
    /// NV12: even bytes (U) to the low half, odd bytes (V) to the high half.
    const DEINTERLEAVE: [u8; 16] = [0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15];

    /// Converts as many whole 16-pixel groups of the row as there are; returns how many
    /// pixels were written (a multiple of 16).
    ///
    /// # Safety
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn row(
        ys: &[u8],
        u: &[u8],
        v: &[u8],
        nv12: bool,
        dst: &mut [u8],
        c: &Coeffs,
    ) -> usize {
        let groups = (ys.len() / 16).min(dst.len() / 48).min(if nv12 {
            u.len() / 16
        } else {
            u.len().min(v.len()) / 8
        });
        let s = _mm256_set1_epi32;
        let (ys_c, yo) = (s(c.ys), s(c.yo));
        let (cr, cgu, cgv, cb) = (s(c.cr), s(c.cgu), s(c.cgv), s(c.cb));
        let (half, c128) = (s(8192), s(128));
        // SAFETY: 16-byte constant arrays.
        let masks = MASKS.map(|k| k.map(|m| unsafe { _mm_loadu_si128(m.as_ptr().cast()) }));
        let deint = unsafe { _mm_loadu_si128(DEINTERLEAVE.as_ptr().cast()) };
        // SAFETY (all loads/stores): gi < groups keeps every access inside the slices.
        unsafe {
            for gi in 0..groups {
                let y = _mm_loadu_si128(ys.as_ptr().add(16 * gi).cast());
                let (uu, vv) = if nv12 {
                    let uv =
                        _mm_shuffle_epi8(_mm_loadu_si128(u.as_ptr().add(16 * gi).cast()), deint);
                    (uv, _mm_srli_si128(uv, 8))
                } else {
                    (
                        _mm_loadl_epi64(u.as_ptr().add(8 * gi).cast()),
                        _mm_loadl_epi64(v.as_ptr().add(8 * gi).cast()),
                    )
                };
                // Each chroma sample serves two pixels.
                let (uu, vv) = (_mm_unpacklo_epi8(uu, uu), _mm_unpacklo_epi8(vv, vv));
                // Pixels 0..8 (`lo`) and 8..16 (`hi`) of the group, one channel per entry.
                let eight = |y: __m128i, uu: __m128i, vv: __m128i| {
                    let yy =
                        _mm256_mullo_epi32(_mm256_sub_epi32(_mm256_cvtepu8_epi32(y), yo), ys_c);
                    let uq = _mm256_sub_epi32(_mm256_cvtepu8_epi32(uu), c128);
                    let vq = _mm256_sub_epi32(_mm256_cvtepu8_epi32(vv), c128);
                    let yh = _mm256_add_epi32(yy, half);
                    let r = _mm256_add_epi32(yh, _mm256_mullo_epi32(cr, vq));
                    let g = _mm256_sub_epi32(
                        _mm256_sub_epi32(yh, _mm256_mullo_epi32(cgu, uq)),
                        _mm256_mullo_epi32(cgv, vq),
                    );
                    let b = _mm256_add_epi32(yh, _mm256_mullo_epi32(cb, uq));
                    [r, g, b].map(|c| _mm256_srai_epi32(c, 14))
                };
                let lo = eight(y, uu, vv);
                let sh = |x: __m128i| _mm_srli_si128(x, 8);
                let hi = eight(sh(y), sh(uu), sh(vv));
                let chans = [[lo[0], hi[0]], [lo[1], hi[1]], [lo[2], hi[2]]];
                // 2×8 i32 → 16 i16 (in-lane pack, then undo the lane interleave) → 16 u8
                // clamped to 0..255.
                let bytes = chans.map(|[lo, hi]| {
                    let w = _mm256_permute4x64_epi64(_mm256_packs_epi32(lo, hi), 0xD8);
                    _mm_packus_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1))
                });
                let out = dst.as_mut_ptr().add(48 * gi);
                for (k, m) in masks.iter().enumerate() {
                    let chunk = _mm_or_si128(
                        _mm_or_si128(
                            _mm_shuffle_epi8(bytes[0], m[0]),
                            _mm_shuffle_epi8(bytes[1], m[1]),
                        ),
                        _mm_shuffle_epi8(bytes[2], m[2]),
                    );
                    _mm_storeu_si128(out.add(16 * k).cast(), chunk);
                }
            }
        }
        16 * groups
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Independent reference: the textbook conversion in f64 (Y' = ys·(Y − yo),
    /// R = Y' + 2(1−Kr)·cs·V', G = Y' − 2(1−Kb)Kb/Kg·cs·U' − 2(1−Kr)Kr/Kg·cs·V',
    /// B = Y' + 2(1−Kb)·cs·U'), rounded and clamped.
    fn reference(y: u8, u: u8, v: u8, m: YuvMatrix, full: bool) -> [u8; 3] {
        let (kr, kb) = match m {
            YuvMatrix::Bt601 => (0.299, 0.114),
            YuvMatrix::Bt709 => (0.2126, 0.0722),
        };
        let kg = 1.0 - kr - kb;
        let (ys, cs, yo) = if full {
            (1.0, 1.0, 0.0)
        } else {
            (255.0 / 219.0, 255.0 / 224.0, 16.0)
        };
        let yy = ys * (y as f64 - yo);
        let (u, v) = (u as f64 - 128.0, v as f64 - 128.0);
        let r = yy + 2.0 * (1.0 - kr) * cs * v;
        let g = yy - 2.0 * (1.0 - kb) * kb / kg * cs * u - 2.0 * (1.0 - kr) * kr / kg * cs * v;
        let b = yy + 2.0 * (1.0 - kb) * cs * u;
        [r, g, b].map(|x| x.round().clamp(0.0, 255.0) as u8)
    }

    /// Deterministic pseudo-random bytes (LCG).
    fn bytes(n: usize, seed: u32) -> Vec<u8> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (s >> 24) as u8
            })
            .collect()
    }

    /// Random planes of a `w`×`h` 4:2:0 frame with padded strides, as I420 and as NV12
    /// (the same U and V samples interleaved).
    struct Planes {
        w: usize,
        h: usize,
        y: (Vec<u8>, usize),
        u: (Vec<u8>, usize),
        v: (Vec<u8>, usize),
        uv: (Vec<u8>, usize),
    }

    impl Planes {
        fn new(w: usize, h: usize, seed: u32) -> Self {
            let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
            let (ys, cs, uvs) = (w + 3, cw + 5, 2 * cw + 4);
            let (u, v) = (bytes(cs * ch, seed + 1), bytes(cs * ch, seed + 2));
            let mut uv = vec![0u8; uvs * ch];
            for r in 0..ch {
                for x in 0..cw {
                    uv[r * uvs + 2 * x] = u[r * cs + x];
                    uv[r * uvs + 2 * x + 1] = v[r * cs + x];
                }
            }
            Planes {
                w,
                h,
                y: (bytes(ys * h, seed), ys),
                u: (u, cs),
                v: (v, cs),
                uv: (uv, uvs),
            }
        }

        /// The frame as I420 and as NV12.
        fn frames(&self, matrix: YuvMatrix, full_range: bool) -> [Yuv420<'_>; 2] {
            let i420 = Yuv420 {
                width: self.w,
                height: self.h,
                y: (&self.y.0, self.y.1),
                u: (&self.u.0, self.u.1),
                v: (&self.v.0, self.v.1),
                nv12: false,
                matrix,
                full_range,
            };
            let nv12 = Yuv420 {
                u: (&self.uv.0, self.uv.1),
                v: (&[], 0),
                nv12: true,
                ..i420
            };
            [i420, nv12]
        }
    }

    #[test]
    fn i420_and_nv12_match_the_float_reference_within_one_level() {
        // Odd sizes (a last column/row sharing half a chroma sample) and padded strides.
        for &(w, h) in &[(7usize, 5usize), (16, 9), (1, 1), (33, 2)] {
            let planes = Planes::new(w, h, 1);
            let (yp, ys) = (&planes.y.0, planes.y.1);
            let (up, vp, cs) = (&planes.u.0, &planes.v.0, planes.u.1);
            for m in [YuvMatrix::Bt601, YuvMatrix::Bt709] {
                for full in [false, true] {
                    let [i420, nv12] = planes.frames(m, full);
                    let (mut a, mut b) = (Vec::new(), Vec::new());
                    i420.to_rgb(&mut a).unwrap();
                    nv12.to_rgb(&mut b).unwrap();
                    assert_eq!(a, b, "I420 and NV12 of the same samples differ");
                    for row in 0..h {
                        for x in 0..w {
                            let want = reference(
                                yp[row * ys + x],
                                up[(row / 2) * cs + x / 2],
                                vp[(row / 2) * cs + x / 2],
                                m,
                                full,
                            );
                            let got = &a[(row * w + x) * 3..][..3];
                            for k in 0..3 {
                                assert!(
                                    (got[k] as i32 - want[k] as i32).abs() <= 1,
                                    "{w}x{h} {m:?} full={full} ({x},{row}) ch{k}: {} vs {}",
                                    got[k],
                                    want[k]
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn simd_rows_equal_the_scalar_path_bit_for_bit() {
        // Widths around the 16-pixel groups, odd widths, padded strides, every byte value.
        for w in [1usize, 15, 16, 17, 31, 32, 33, 47, 64, 100, 641] {
            let planes = Planes::new(w, 3, 7 + w as u32);
            for m in [YuvMatrix::Bt601, YuvMatrix::Bt709] {
                for full in [false, true] {
                    for f in planes.frames(m, full) {
                        let (mut a, mut b) = (Vec::new(), Vec::new());
                        f.convert(&mut a, true).unwrap();
                        f.convert(&mut b, false).unwrap();
                        assert_eq!(a, b, "w={w} {m:?} full={full} nv12={}", f.nv12);
                    }
                }
            }
        }
    }

    #[test]
    fn short_planes_are_an_error_not_a_panic() {
        let y = [0u8; 10];
        let f = Yuv420 {
            width: 4,
            height: 4,
            y: (&y, 4),
            u: (&y, 2),
            v: (&y, 2),
            nv12: false,
            matrix: YuvMatrix::Bt601,
            full_range: false,
        };
        assert!(f.to_rgb(&mut Vec::new()).is_err());
        assert!(Yuv420 { width: 0, ..f }.to_rgb(&mut Vec::new()).is_err());
    }
}
