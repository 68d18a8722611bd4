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
    let sub: Vec<f64> = (0..ss).map(|k| (k as f64 + 0.5) / ss as f64).collect();
    let norm = 1.0 / (ss * ss) as f32;

    let (fw, fh) = (frame.width() as f64, frame.height() as f64);
    let bpp = frame.format().bytes_per_pixel();
    let offs = frame.format().rgb_offsets();
    let [ro, go, bo] = offs;
    let (data, stride) = (frame.data(), frame.stride());
    let (iw, ih) = (frame.width() as i64, frame.height() as i64);
    // pixel at (x, y) as rgb floats, black outside
    let fetch = |x: i64, y: i64| -> [f32; 3] {
        if x < 0 || y < 0 || x as f64 >= fw || y as f64 >= fh {
            return [0.0; 3];
        }
        let row = frame.row(y as usize);
        let p = &row[x as usize * bpp..(x as usize + 1) * bpp];
        [p[ro] as f32, p[go] as f32, p[bo] as f32]
    };
    for (j, out_row) in out.chunks_exact_mut(width * 3).enumerate() {
        for (i, px) in out_row.chunks_exact_mut(3).enumerate() {
            let mut acc = [0.0f32; 3];
            for &sy in &sub {
                for &sx in &sub {
                    let (cx, cy) = (i as f64 + sx, j as f64 + sy);
                    // frame continuous coordinates → pixel-centre index space
                    let x = inv.a * cx - inv.b * cy + inv.tx - 0.5;
                    let y = inv.b * cx + inv.a * cy + inv.ty - 0.5;
                    if x < -1.0 || y < -1.0 || x >= fw || y >= fh {
                        continue;
                    }
                    // floor without a libm call: x, y >= -1 here
                    let (x0, y0) = ((x + 1.0) as i64 - 1, (y + 1.0) as i64 - 1);
                    let (wx, wy) = ((x - x0 as f64) as f32, (y - y0 as f64) as f32);
                    if x0 >= 0 && y0 >= 0 && x0 + 1 < iw && y0 + 1 < ih {
                        // inside: all four pixels exist
                        let i00 = y0 as usize * stride + x0 as usize * bpp;
                        let quad = &data[i00..i00 + stride + 2 * bpp];
                        for (a, &o) in acc.iter_mut().zip(&offs) {
                            let p00 = quad[o] as f32;
                            let p10 = quad[bpp + o] as f32;
                            let p01 = quad[stride + o] as f32;
                            let p11 = quad[stride + bpp + o] as f32;
                            let top = p00 + (p10 - p00) * wx;
                            let bottom = p01 + (p11 - p01) * wx;
                            *a += top + (bottom - top) * wy;
                        }
                        continue;
                    }
                    let p00 = fetch(x0, y0);
                    let p10 = fetch(x0 + 1, y0);
                    let p01 = fetch(x0, y0 + 1);
                    let p11 = fetch(x0 + 1, y0 + 1);
                    for c in 0..3 {
                        let top = p00[c] + (p10[c] - p00[c]) * wx;
                        let bottom = p01[c] + (p11[c] - p01[c]) * wx;
                        acc[c] += top + (bottom - top) * wy;
                    }
                }
            }
            for c in 0..3 {
                px[c] = ((acc[c] * norm).clamp(0.0, 255.0) + 0.5) as u8;
            }
        }
    }
    Ok(())
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
