//! YUV 4:2:0 (I420, NV12) to packed RGB, for detectors and crops that read RGB.
//!
//! Converting once per frame into a reused buffer keeps the samplers simple and costs
//! about one memory pass; the coefficients follow the stream's matrix (BT.601 or
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
    pub fn to_rgb(&self, out: &mut Vec<u8>) -> Result<(), FaceError> {
        self.check()?;
        let (w, h) = (self.width, self.height);
        let cw = w.div_ceil(2);
        out.resize(w * h * 3, 0);
        let c = coeffs(self.matrix, self.full_range);
        // Two pixels share one (u, v): per pair the chroma terms are computed once, and
        // the rows are zipped so that the inner loop has no index checks (`check` made
        // sure every row slice below exists).
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
        for (row, dst) in out.chunks_exact_mut(w * 3).enumerate().take(h) {
            let yrow = &self.y.0[row * self.y.1..row * self.y.1 + w];
            let cy = row / 2;
            let pixels = dst.chunks_mut(6).zip(yrow.chunks(2));
            if self.nv12 {
                let uv = &self.u.0[cy * self.u.1..cy * self.u.1 + 2 * cw];
                for ((d, ys), uv) in pixels.zip(uv.chunks_exact(2)) {
                    pair(d, ys, uv[0], uv[1]);
                }
            } else {
                let urow = &self.u.0[cy * self.u.1..cy * self.u.1 + cw];
                let vrow = &self.v.0[cy * self.v.1..cy * self.v.1 + cw];
                for (((d, ys), &u), &v) in pixels.zip(urow).zip(vrow) {
                    pair(d, ys, u, v);
                }
            }
        }
        Ok(())
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

    #[test]
    fn i420_and_nv12_match_the_float_reference_within_one_level() {
        // Odd sizes (a last column/row sharing half a chroma sample) and padded strides.
        for &(w, h) in &[(7usize, 5usize), (16, 9), (1, 1), (33, 2)] {
            let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
            let (ys, cs) = (w + 3, cw + 5);
            let yp = bytes(ys * h, 1);
            let up = bytes(cs * ch, 2);
            let vp = bytes(cs * ch, 3);
            // NV12: the same U and V interleaved.
            let uvs = 2 * cw + 4;
            let mut uv = vec![0u8; uvs * ch];
            for r in 0..ch {
                for x in 0..cw {
                    uv[r * uvs + 2 * x] = up[r * cs + x];
                    uv[r * uvs + 2 * x + 1] = vp[r * cs + x];
                }
            }
            for m in [YuvMatrix::Bt601, YuvMatrix::Bt709] {
                for full in [false, true] {
                    let i420 = Yuv420 {
                        width: w,
                        height: h,
                        y: (&yp, ys),
                        u: (&up, cs),
                        v: (&vp, cs),
                        nv12: false,
                        matrix: m,
                        full_range: full,
                    };
                    let nv12 = Yuv420 {
                        u: (&uv, uvs),
                        v: (&[], 0),
                        nv12: true,
                        ..i420
                    };
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
