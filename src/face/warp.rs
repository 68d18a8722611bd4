// SPDX-License-Identifier: MPL-2.0
//! Cutting aligned face crops out of a frame.

use super::{FaceError, Frame, Similarity};

/// Largest crop side accepted.
const MAX_CROP: usize = 4096;

/// Warps `frame` into a new packed RGB crop of `width`×`height`; `frame_to_crop` maps
/// frame pixels to crop pixels (e.g. [`AlignTemplate::transform`](super::AlignTemplate::transform)).
/// See [`warp_rgb_into`].
pub fn warp_rgb(
    frame: &Frame<'_>,
    frame_to_crop: &Similarity,
    width: usize,
    height: usize,
) -> Result<Vec<u8>, FaceError> {
    let mut out = vec![0u8; width.saturating_mul(height).saturating_mul(3)];
    warp_rgb_into(frame, frame_to_crop, width, height, &mut out)?;
    Ok(out)
}

/// Warps `frame` into `out` (packed RGB, `width * height * 3` bytes).
///
/// Each crop pixel centre is mapped back into the frame and sampled bilinearly; samples
/// outside the frame are black. When the crop is smaller than the face in the frame
/// (shrinking by more than 1.5×), each crop pixel averages a grid of `ceil(shrink / 2)`²
/// (at most 4×4) bilinear samples so that the crop does not alias.
pub fn warp_rgb_into(
    frame: &Frame<'_>,
    frame_to_crop: &Similarity,
    width: usize,
    height: usize,
    out: &mut [u8],
) -> Result<(), FaceError> {
    warp_with(frame, frame_to_crop, width, height, out, true)
}

/// [`warp_rgb_into`], with the AVX2 build of the warp allowed (`simd`, where the CPU has
/// it) or not (the baseline build, for tests that both give the same bytes).
fn warp_with(
    frame: &Frame<'_>,
    frame_to_crop: &Similarity,
    width: usize,
    height: usize,
    out: &mut [u8],
    simd: bool,
) -> Result<(), FaceError> {
    if width == 0 || height == 0 || width > MAX_CROP || height > MAX_CROP {
        return Err(FaceError::Size(format!(
            "crop is {width}x{height} (each side must be 1..={MAX_CROP})"
        )));
    }
    if out.len() != width * height * 3 {
        return Err(FaceError::Size(format!(
            "crop buffer has {} bytes, {width}x{height} RGB needs {}",
            out.len(),
            width * height * 3
        )));
    }
    let inv = frame_to_crop.inverse().ok_or_else(|| {
        FaceError::Alignment(format!("transform {frame_to_crop:?} is not invertible"))
    })?;
    if ![inv.a, inv.b, inv.tx, inv.ty].iter().all(|v| v.is_finite()) {
        return Err(FaceError::Alignment("transform is not finite".into()));
    }
    // frame pixels per crop pixel
    let step = inv.scale();
    // each bilinear sample covers about 2 frame pixels: one sample per 2 pixels of step
    let ss = if step > 1.5 {
        ((step / 2.0).ceil() as usize).clamp(1, 4)
    } else {
        1
    };
    #[cfg(target_arch = "x86_64")]
    if simd && std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        unsafe { warp_avx2(frame, &inv, ss, width, out) };
        return Ok(());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = simd;
    warp_any::<false>(frame, &inv, ss, width, out);
    Ok(())
}

/// [`warp_any`] compiled for AVX2: the same operations in the same order (no fused
/// multiply-adds), so the same bytes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn warp_avx2(frame: &Frame<'_>, inv: &Similarity, ss: usize, width: usize, out: &mut [u8]) {
    warp_any::<true>(frame, inv, ss, width, out);
}

#[inline(always)]
fn warp_any<const SIMD: bool>(
    frame: &Frame<'_>,
    inv: &Similarity,
    ss: usize,
    width: usize,
    out: &mut [u8],
) {
    match frame.format().bytes_per_pixel() {
        1 => warp_rows::<1, SIMD>(frame, inv, ss, width, out),
        3 => warp_rows::<3, SIMD>(frame, inv, ss, width, out),
        _ => warp_rows::<4, SIMD>(frame, inv, ss, width, out),
    }
}

/// Fractional bits of the fixed-point frame coordinates.
const COORD_BITS: u32 = 16;

/// The warp proper: `ss`² bilinear samples per crop pixel, stepped along each crop row
/// in fixed point (`COORD_BITS`: no float → int conversions per sample), interpolated
/// and summed per row in `f32` with all bytes of a pixel as one small vector.
#[inline(always)]
fn warp_rows<const BPP: usize, const SIMD: bool>(
    frame: &Frame<'_>,
    inv: &Similarity,
    ss: usize,
    width: usize,
    out: &mut [u8],
) {
    let one = (1i64 << COORD_BITS) as f64;
    let fixed = |v: f64| -> i64 { (v * one).round() as i64 };
    let [ro, go, bo] = frame.format().rgb_offsets();
    let (ro, go, bo) = (ro.min(BPP - 1), go.min(BPP - 1), bo.min(BPP - 1));
    let (data, stride) = (frame.data(), frame.stride());
    let (iw, ih) = (frame.width() as i64, frame.height() as i64);
    // along a crop row, frame x moves by a and y by b per crop pixel
    let (dx, dy) = (fixed(inv.a), fixed(inv.b));
    let sub: Vec<f64> = (0..ss).map(|k| (k as f64 + 0.5) / ss as f64).collect();
    let scale = 1.0 / (ss * ss) as f32;
    // pixel (x, y), black outside
    let fetch = |x: i64, y: i64| -> [f32; BPP] {
        let mut p = [0.0; BPP];
        if x >= 0 && y >= 0 && x < iw && y < ih {
            let src = &frame.row(y as usize)[x as usize * BPP..][..BPP];
            for (d, &s) in p.iter_mut().zip(src) {
                *d = s as f32;
            }
        }
        p
    };
    // sums of the samples of each crop pixel, all bytes of the pixel (one small vector)
    // four lanes whatever BPP (the first BPP are used), so that the SIMD path adds whole
    // 128-bit vectors
    let mut acc = vec![[0f32; 4]; width];
    let rows = out.len() / (width * 3);
    for (j, out_row) in out.chunks_exact_mut(width * 3).enumerate() {
        acc.fill([0.0; 4]);
        if j + PREFETCH_AHEAD < rows {
            prefetch_crop_row(frame, inv, width, j + PREFETCH_AHEAD);
        }
        for &sy in &sub {
            for &sx in &sub {
                let (cx, cy) = (sx, j as f64 + sy);
                // frame continuous coordinates → pixel-centre index space
                let mut x = fixed(inv.a * cx - inv.b * cy + inv.tx - 0.5);
                let mut y = fixed(inv.b * cx + inv.a * cy + inv.ty - 0.5);
                // Sample positions move linearly along the row, so when the first and the
                // last have all four pixels inside the frame, every one in between does:
                // then the row needs no per-sample bounds tests (same arithmetic).
                let last = width as i64 - 1;
                let end = |v: i64, d: i64| d.checked_mul(last).and_then(|d| v.checked_add(d));
                let fast = match (end(x, dx), end(y, dy)) {
                    (Some(xe), Some(ye)) => {
                        all_four_inside(x, y, iw, ih) && all_four_inside(xe, ye, iw, ih)
                    }
                    _ => false,
                };
                // SIMD (AVX2 build, 3- or 4-byte pixels): both pixels of a bilinear row
                // in one 8-byte load, all channels of a sample as one 4-lane vector;
                // the same operations in the same order as the scalar loop below (no
                // fused multiply-adds), so the same bytes. The 8-byte loads need the
                // last sample's bottom row to have 8 bytes left.
                #[cfg(target_arch = "x86_64")]
                if SIMD && BPP >= 3 && fast {
                    let (x_end, y_end) = (
                        (x + dx * (width as i64 - 1)) >> COORD_BITS,
                        (y + dy * (width as i64 - 1)) >> COORD_BITS,
                    );
                    // pixel indices move monotonically along the row: the largest are
                    // at one end or the other
                    let x_max = (x >> COORD_BITS).max(x_end) as usize;
                    let y_max = (y >> COORD_BITS).max(y_end) as usize;
                    if (y_max + 1) * stride + x_max * BPP + 8 <= data.len() {
                        // SAFETY: every sample's four pixels are inside the frame (`fast`),
                        // so its indices are non-negative, and its 8-byte loads end inside
                        // `data` (checked for the largest indices just above).
                        unsafe { simd::bilinear_row::<BPP>(data, stride, x, y, dx, dy, &mut acc) };
                        continue;
                    }
                }
                if fast {
                    for a in acc.iter_mut() {
                        let (x0, y0, wx, wy) = next_sample(&mut x, &mut y, dx, dy);
                        let i00 = y0 as usize * stride + x0 as usize * BPP;
                        let (top, _) = data[i00..i00 + 2 * BPP].as_chunks::<BPP>();
                        let (bottom, _) =
                            data[i00 + stride..i00 + stride + 2 * BPP].as_chunks::<BPP>();
                        let (t0, t1, b0, b1) = (&top[0], &top[1], &bottom[0], &bottom[1]);
                        for c in 0..BPP {
                            let (q0, q1) = (t0[c] as f32, t1[c] as f32);
                            let (q2, q3) = (b0[c] as f32, b1[c] as f32);
                            let t = q0 + (q1 - q0) * wx;
                            let b = q2 + (q3 - q2) * wx;
                            a[c] += t + (b - t) * wy;
                        }
                    }
                    continue;
                }
                for a in acc.iter_mut() {
                    let (x0, y0, wx, wy) = next_sample(&mut x, &mut y, dx, dy);
                    if x0 < -1 || y0 < -1 || x0 >= iw || y0 >= ih {
                        continue; // wholly outside: black
                    }
                    let mut q = [[0f32; BPP]; 4];
                    if x0 >= 0 && y0 >= 0 && x0 + 1 < iw && y0 + 1 < ih {
                        // inside: all four pixels exist
                        let i00 = y0 as usize * stride + x0 as usize * BPP;
                        let (top, _) = data[i00..i00 + 2 * BPP].as_chunks::<BPP>();
                        let (bottom, _) =
                            data[i00 + stride..i00 + stride + 2 * BPP].as_chunks::<BPP>();
                        for c in 0..BPP {
                            q[0][c] = top[0][c] as f32;
                            q[1][c] = top[1][c] as f32;
                            q[2][c] = bottom[0][c] as f32;
                            q[3][c] = bottom[1][c] as f32;
                        }
                    } else {
                        q = [
                            fetch(x0, y0),
                            fetch(x0 + 1, y0),
                            fetch(x0, y0 + 1),
                            fetch(x0 + 1, y0 + 1),
                        ];
                    }
                    for c in 0..BPP {
                        let t = q[0][c] + (q[1][c] - q[0][c]) * wx;
                        let b = q[2][c] + (q[3][c] - q[2][c]) * wx;
                        a[c] += t + (b - t) * wy;
                    }
                }
            }
        }
        for (o, a) in out_row.chunks_exact_mut(3).zip(&acc) {
            for (d, &k) in o.iter_mut().zip(&[ro, go, bo]) {
                // in 0.5..=255.5 (NaN: 0 either way): through i32 is the same value and
                // converts in one instruction
                *d = ((a[k] * scale).clamp(0.0, 255.0) + 0.5) as i32 as u8;
            }
        }
    }
}

/// The AVX2 build's bilinear row (see [`warp_rows`]).
#[cfg(target_arch = "x86_64")]
mod simd {
    use std::arch::x86_64::*;

    use super::next_sample;

    /// Adds, to each of `acc`'s pixels, the bilinear sample at fixed-point position
    /// `(x, y) + k (dx, dy)` of a 3- or 4-byte-per-pixel frame, all channels at once
    /// (lanes past `BPP` get unused values).
    ///
    /// # Safety
    /// The CPU must have SSE4.1; for every sample the 8 bytes from its top-left pixel in
    /// its row and in the next row must lie inside `data`, at non-negative indices.
    #[inline(always)]
    pub(super) unsafe fn bilinear_row<const BPP: usize>(
        data: &[u8],
        stride: usize,
        mut x: i64,
        mut y: i64,
        dx: i64,
        dy: i64,
        acc: &mut [[f32; 4]],
    ) {
        let base = data.as_ptr();
        for a in acc.iter_mut() {
            let (x0, y0, wx, wy) = next_sample(&mut x, &mut y, dx, dy);
            let i00 = y0 as usize * stride + x0 as usize * BPP;
            // SAFETY: the caller's contract (loads inside `data`, SSE4.1).
            unsafe {
                let top = _mm_loadl_epi64(base.add(i00).cast());
                let bottom = _mm_loadl_epi64(base.add(i00 + stride).cast());
                let px = |v: __m128i| _mm_cvtepi32_ps(_mm_cvtepu8_epi32(v));
                let next = |v: __m128i| {
                    if BPP == 3 {
                        _mm_srli_si128::<3>(v)
                    } else {
                        _mm_srli_si128::<4>(v)
                    }
                };
                let (q0, q1) = (px(top), px(next(top)));
                let (q2, q3) = (px(bottom), px(next(bottom)));
                let (wx, wy) = (_mm_set1_ps(wx), _mm_set1_ps(wy));
                let t = _mm_add_ps(q0, _mm_mul_ps(_mm_sub_ps(q1, q0), wx));
                let b = _mm_add_ps(q2, _mm_mul_ps(_mm_sub_ps(q3, q2), wx));
                let sample = _mm_add_ps(t, _mm_mul_ps(_mm_sub_ps(b, t), wy));
                let sum = _mm_add_ps(_mm_loadu_ps(a.as_ptr()), sample);
                _mm_storeu_ps(a.as_mut_ptr(), sum);
            }
        }
    }
}

/// How many crop rows ahead [`warp_rows`] prefetches the frame lines a row reads.
const PREFETCH_AHEAD: usize = 2;

/// Asks the CPU to fetch the frame's cache lines that crop row `j` will read.
///
/// The warp runs right after the detector, whose weights and activations have pushed
/// the frame out of the caches, and a crop row starts on new frame rows that the
/// hardware prefetcher cannot predict: without this the warp waits on memory for about
/// half its time. Walks the row's centre line in cache-line steps and touches the frame
/// rows its samples span. A hint only: no effect on the result.
#[inline(always)]
fn prefetch_crop_row(frame: &Frame<'_>, inv: &Similarity, width: usize, j: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let (data, stride) = (frame.data(), frame.stride());
        let bpp = frame.format().bytes_per_pixel();
        let (iw, ih) = (frame.width() as f64, frame.height() as f64);
        let cy = j as f64 + 0.5;
        let at = |cx: f64| {
            (
                inv.a * cx - inv.b * cy + inv.tx,
                inv.b * cx + inv.a * cy + inv.ty,
            )
        };
        let ((x0, y0), (x1, y1)) = (at(0.0), at(width as f64));
        // frame rows a crop pixel's samples and their bilinear neighbours reach on
        // either side of the centre line
        let reach = (0.5 * (inv.a.abs() + inv.b.abs())).ceil() + 1.0;
        let per_line = (64 / bpp.max(1)) as f64;
        let steps = ((x1 - x0).abs() / per_line).ceil().min(256.0) as usize + 1;
        for k in 0..=steps {
            let t = k as f64 / steps as f64;
            let (x, y) = (x0 + (x1 - x0) * t, y0 + (y1 - y0) * t);
            if !(x > -per_line && x < iw + per_line && y > -reach && y < ih + reach) {
                continue; // also NaN
            }
            let col = x.clamp(0.0, iw - 1.0) as usize * bpp;
            let first = (y - reach).max(0.0) as usize;
            let last = ((y + reach) as usize).min(frame.height().saturating_sub(1));
            for r in first..=last {
                let i = r * stride + col;
                if i < data.len() {
                    // SAFETY: a prefetch of an address inside `data`; it reads nothing
                    // and cannot fault.
                    unsafe { _mm_prefetch::<_MM_HINT_T0>(data.as_ptr().add(i).cast()) };
                }
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (frame, inv, width, j);
}

/// The sample at fixed-point position `(x, y)`: its top-left pixel and the bilinear
/// weights `(x0, y0, wx, wy)`; then steps the position by `(dx, dy)` (the next crop pixel).
#[inline(always)]
fn next_sample(x: &mut i64, y: &mut i64, dx: i64, dy: i64) -> (i64, i64, f32, f32) {
    let wmask = (1i64 << COORD_BITS) - 1;
    let unit = 1.0 / (1i64 << COORD_BITS) as f32;
    let (x0, y0) = (*x >> COORD_BITS, *y >> COORD_BITS);
    let wx = (*x & wmask) as i32 as f32 * unit;
    let wy = (*y & wmask) as i32 as f32 * unit;
    *x += dx;
    *y += dy;
    (x0, y0, wx, wy)
}

/// Whether the bilinear sample at fixed-point pixel-centre coordinates `(x, y)` has all
/// four of its pixels inside an `iw`×`ih` frame.
#[inline(always)]
fn all_four_inside(x: i64, y: i64, iw: i64, ih: i64) -> bool {
    let (x0, y0) = (x >> COORD_BITS, y >> COORD_BITS);
    x0 >= 0 && y0 >= 0 && x0 + 1 < iw && y0 + 1 < ih
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::face::PixelFormat;

    /// A frame whose pixel (x, y) is (x, y, 100) in RGBx.
    fn ramp(w: usize, h: usize) -> Vec<u8> {
        (0..h)
            .flat_map(|y| (0..w).flat_map(move |x| [x as u8, y as u8, 100, 255]))
            .collect()
    }

    /// The straightforward float warp (f64 coordinates, f32 bilinear), for comparison.
    fn reference(
        frame: &Frame,
        frame_to_crop: &Similarity,
        width: usize,
        height: usize,
    ) -> Vec<u8> {
        let inv = frame_to_crop.inverse().unwrap();
        let step = inv.scale();
        let ss = if step > 1.5 {
            ((step / 2.0).ceil() as usize).clamp(1, 4)
        } else {
            1
        };
        let mut out = vec![0u8; width * height * 3];
        for j in 0..height {
            for i in 0..width {
                let mut acc = [0.0f32; 3];
                for ky in 0..ss {
                    for kx in 0..ss {
                        let cx = i as f64 + (kx as f64 + 0.5) / ss as f64;
                        let cy = j as f64 + (ky as f64 + 0.5) / ss as f64;
                        let x = inv.a * cx - inv.b * cy + inv.tx - 0.5;
                        let y = inv.b * cx + inv.a * cy + inv.ty - 0.5;
                        let (x0, y0) = (x.floor(), y.floor());
                        let (wx, wy) = ((x - x0) as f32, (y - y0) as f32);
                        let p = |dx: f64, dy: f64| -> [f32; 3] {
                            let (px, py) = (x0 + dx, y0 + dy);
                            if px < 0.0 || py < 0.0 {
                                return [0.0; 3];
                            }
                            frame
                                .rgb(px as usize, py as usize)
                                .map_or([0.0; 3], |v| v.map(f32::from))
                        };
                        let (p00, p10, p01, p11) =
                            (p(0.0, 0.0), p(1.0, 0.0), p(0.0, 1.0), p(1.0, 1.0));
                        for c in 0..3 {
                            let top = p00[c] + (p10[c] - p00[c]) * wx;
                            let bottom = p01[c] + (p11[c] - p01[c]) * wx;
                            acc[c] += top + (bottom - top) * wy;
                        }
                    }
                }
                for c in 0..3 {
                    let v = acc[c] / (ss * ss) as f32;
                    out[(j * width + i) * 3 + c] = (v.clamp(0.0, 255.0) + 0.5) as u8;
                }
            }
        }
        out
    }

    #[test]
    fn matches_float_reference() {
        let (w, h) = (211, 157);
        let mut state = 0x9e37_79b9_u32;
        let noise: Vec<u8> = (0..w * h * 4)
            .map(|i| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                if i % 3 == 0 {
                    (state >> 24) as u8
                } else {
                    (i / 4 % w + i / (4 * w)) as u8
                }
            })
            .collect();
        let rgb: Vec<u8> = noise.chunks(4).flat_map(|p| [p[0], p[1], p[2]]).collect();
        let grey: Vec<u8> = noise.chunks(4).map(|p| p[0]).collect();
        let frames = [
            Frame::packed(&noise, w, h, PixelFormat::Bgrx).unwrap(),
            Frame::packed(&noise, w, h, PixelFormat::Xrgb).unwrap(),
            Frame::packed(&rgb, w, h, PixelFormat::Rgb).unwrap(),
            Frame::packed(&grey, w, h, PixelFormat::Gray8).unwrap(),
        ];
        // scales from enlarging to 8× shrinking (1 to 4×4 samples), rotated, partly outside
        for (scale, angle, t) in [
            (1.0, 0.0, [-10.25, -20.5]),
            (2.3, 0.4, [-30.0, 40.0]),
            (0.7, -0.3, [-20.0, 10.0]),
            (0.45, 1.2, [60.0, -30.0]),
            (0.3, 0.1, [5.0, -2.0]),
            (0.12, -2.5, [40.0, 30.0]),
        ] {
            let s = Similarity::new(scale, angle, t);
            for frame in &frames {
                let (cw, ch) = (48, 40);
                let got = warp_rgb(frame, &s, cw, ch).unwrap();
                let want = reference(frame, &s, cw, ch);
                for (k, (a, b)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        (*a as i32 - *b as i32).abs() <= 1,
                        "{:?} scale {scale} angle {angle}: byte {k}: {a} vs {b}",
                        frame.format()
                    );
                }
            }
        }
    }

    /// The AVX2 build (used where the CPU has it) and the baseline build give the same
    /// bytes: crops wholly inside the frame (the row fast path), partly and wholly
    /// outside, every pixel layout, 1 to 4×4 samples per pixel.
    #[test]
    fn simd_and_baseline_builds_agree() {
        let (w, h) = (211, 157);
        let mut state = 0x1234_5678_u32;
        let noise: Vec<u8> = (0..w * h * 4)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                (state >> 24) as u8
            })
            .collect();
        let rgb: Vec<u8> = noise.chunks(4).flat_map(|p| [p[0], p[1], p[2]]).collect();
        let grey: Vec<u8> = noise.chunks(4).map(|p| p[0]).collect();
        let frames = [
            Frame::packed(&noise, w, h, PixelFormat::Bgrx).unwrap(),
            Frame::packed(&rgb, w, h, PixelFormat::Rgb).unwrap(),
            Frame::packed(&grey, w, h, PixelFormat::Gray8).unwrap(),
        ];
        let mut inside_rows = 0;
        for (scale, angle, t) in [
            (1.0, 0.0, [-10.25, -20.5]),
            (0.6, 0.2, [-40.0, -30.0]),
            (2.3, 0.4, [-30.0, 40.0]),
            (0.3, 0.1, [5.0, -2.0]),
            (0.12, -2.5, [40.0, 30.0]),
            (1.0, 0.0, [-500.0, 0.0]),
        ] {
            let s = Similarity::new(scale, angle, t);
            let inv = s.inverse().unwrap();
            let (cw, ch) = (48, 40);
            // rows whose first and last samples are inside take the fast path
            inside_rows += (0..ch)
                .filter(|&j| {
                    let p = |x: f64| {
                        let y = j as f64 + 0.5;
                        let fx = inv.a * x - inv.b * y + inv.tx - 0.5;
                        let fy = inv.b * x + inv.a * y + inv.ty - 0.5;
                        fx >= 0.0 && fy >= 0.0 && fx < w as f64 - 1.0 && fy < h as f64 - 1.0
                    };
                    p(0.5) && p(cw as f64 - 0.5)
                })
                .count();
            for frame in &frames {
                let mut simd = vec![0u8; cw * ch * 3];
                let mut base = vec![1u8; cw * ch * 3];
                warp_with(frame, &s, cw, ch, &mut simd, true).unwrap();
                warp_with(frame, &s, cw, ch, &mut base, false).unwrap();
                assert_eq!(
                    simd,
                    base,
                    "{:?} scale {scale} angle {angle}",
                    frame.format()
                );
            }
        }
        assert!(
            inside_rows >= 2 * 40,
            "fast path exercised on {inside_rows} rows"
        );
    }

    #[test]
    fn translation_copies_pixels() {
        let data = ramp(64, 48);
        let frame = Frame::packed(&data, 64, 48, PixelFormat::Rgbx).unwrap();
        // crop (0,0) = frame (10, 20)
        let s = Similarity::new(1.0, 0.0, [-10.0, -20.0]);
        let crop = warp_rgb(&frame, &s, 16, 8).unwrap();
        for j in 0..8 {
            for i in 0..16 {
                let p = &crop[(j * 16 + i) * 3..][..3];
                assert_eq!(p, [10 + i as u8, 20 + j as u8, 100]);
            }
        }
    }

    #[test]
    fn rotation_and_outside_black() {
        let data = ramp(32, 32);
        let frame = Frame::packed(&data, 32, 32, PixelFormat::Rgbx).unwrap();
        // 90° rotation about the frame centre: crop (i, j) ← frame rotated
        let c = 16.0;
        let r = Similarity::new(1.0, std::f64::consts::FRAC_PI_2, [0.0, 0.0]);
        let centre = r.apply([c, c]);
        let s = Similarity {
            tx: c as f64 - centre[0] as f64,
            ty: c as f64 - centre[1] as f64,
            ..r
        };
        let crop = warp_rgb(&frame, &s, 32, 32).unwrap();
        // crop pixel centre (i+0.5, j+0.5) comes from frame point inv(...) = (j+0.5, 31.5-i)
        for (i, j) in [(0usize, 0usize), (5, 7), (31, 31), (20, 3)] {
            let p = &crop[(j * 32 + i) * 3..][..3];
            assert_eq!(p, [j as u8, 31 - i as u8, 100], "({i},{j})");
        }
        // shifted far away: all black
        let far = Similarity::new(1.0, 0.0, [-1000.0, 0.0]);
        assert!(
            warp_rgb(&frame, &far, 8, 8)
                .unwrap()
                .iter()
                .all(|&v| v == 0)
        );
    }

    #[test]
    fn downscale_averages() {
        // 1-px checkerboard shrunk 4×: mid grey, not aliasing to black/white
        let (w, h) = (64, 64);
        let data: Vec<u8> = (0..h)
            .flat_map(|y| (0..w).map(move |x| if (x + y) % 2 == 0 { 255 } else { 0 }))
            .collect();
        let frame = Frame::packed(&data, w, h, PixelFormat::Gray8).unwrap();
        let crop = warp_rgb(&frame, &Similarity::new(0.25, 0.0, [0.0, 0.0]), 16, 16).unwrap();
        for v in &crop[3 * 17..3 * 18] {
            assert!((*v as i32 - 128).abs() < 20, "{v}");
        }
    }

    #[test]
    fn bad_arguments() {
        let data = ramp(4, 4);
        let frame = Frame::packed(&data, 4, 4, PixelFormat::Rgbx).unwrap();
        assert!(warp_rgb(&frame, &Similarity::IDENTITY, 0, 4).is_err());
        let zero = Similarity::new(0.0, 0.0, [0.0, 0.0]);
        assert!(warp_rgb(&frame, &zero, 4, 4).is_err());
        let mut small = vec![0u8; 5];
        assert!(warp_rgb_into(&frame, &Similarity::IDENTITY, 4, 4, &mut small).is_err());
    }
}
