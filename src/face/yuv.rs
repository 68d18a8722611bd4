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
        out.resize(w * h * 3, 0);
        let c = coeffs(self.matrix, self.full_range);
        for (row, dst) in out.chunks_exact_mut(w * 3).enumerate().take(h) {
            let yrow = &self.y.0[row * self.y.1..row * self.y.1 + w];
            let cy = row / 2;
            for (x, px) in dst.chunks_exact_mut(3).enumerate() {
                let (u, v) = if self.nv12 {
                    let o = cy * self.u.1 + (x / 2) * 2;
                    (self.u.0[o], self.u.0[o + 1])
                } else {
                    (
                        self.u.0[cy * self.u.1 + x / 2],
                        self.v.0[cy * self.v.1 + x / 2],
                    )
                };
                let yy = (yrow[x] as i32 - c.yo) * c.ys;
                let (u, v) = (u as i32 - 128, v as i32 - 128);
                px[0] = clamp8(yy + c.cr * v + 8192);
                px[1] = clamp8(yy - c.cgu * u - c.cgv * v + 8192);
                px[2] = clamp8(yy + c.cb * u + 8192);
            }
        }
        Ok(())
    }
}
