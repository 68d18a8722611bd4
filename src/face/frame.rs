// SPDX-License-Identifier: MPL-2.0
//! Borrowed 8-bit video frames in packed RGB-family formats.

use super::FaceError;

/// Packed 8-bit pixel formats (the byte order in memory, as GStreamer names them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PixelFormat {
    /// `R G B`
    Rgb,
    /// `B G R`
    Bgr,
    /// `R G B A`
    Rgba,
    /// `B G R A`
    Bgra,
    /// `A R G B`
    Argb,
    /// `A B G R`
    Abgr,
    /// `R G B x` (padding byte)
    Rgbx,
    /// `B G R x`
    Bgrx,
    /// `x R G B`
    Xrgb,
    /// `x B G R`
    Xbgr,
    /// One grey byte per pixel (`GRAY8`).
    Gray8,
}

impl PixelFormat {
    /// Bytes per pixel.
    pub fn bytes_per_pixel(self) -> usize {
        match self {
            PixelFormat::Rgb | PixelFormat::Bgr => 3,
            PixelFormat::Gray8 => 1,
            _ => 4,
        }
    }

    /// Byte offsets of red, green and blue inside a pixel (all 0 for grey).
    pub fn rgb_offsets(self) -> [usize; 3] {
        match self {
            PixelFormat::Rgb | PixelFormat::Rgba | PixelFormat::Rgbx => [0, 1, 2],
            PixelFormat::Bgr | PixelFormat::Bgra | PixelFormat::Bgrx => [2, 1, 0],
            PixelFormat::Argb | PixelFormat::Xrgb => [1, 2, 3],
            PixelFormat::Abgr | PixelFormat::Xbgr => [3, 2, 1],
            PixelFormat::Gray8 => [0, 0, 0],
        }
    }

    /// The format for a GStreamer video format name (`RGB`, `BGRx`, `GRAY8`, …).
    pub fn from_gst_name(name: &str) -> Option<Self> {
        Some(match name {
            "RGB" => PixelFormat::Rgb,
            "BGR" => PixelFormat::Bgr,
            "RGBA" => PixelFormat::Rgba,
            "BGRA" => PixelFormat::Bgra,
            "ARGB" => PixelFormat::Argb,
            "ABGR" => PixelFormat::Abgr,
            "RGBx" => PixelFormat::Rgbx,
            "BGRx" => PixelFormat::Bgrx,
            "xRGB" => PixelFormat::Xrgb,
            "xBGR" => PixelFormat::Xbgr,
            "GRAY8" => PixelFormat::Gray8,
            _ => return None,
        })
    }
}

/// A borrowed frame: `height` rows of `stride` bytes, each starting with `width` pixels.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    data: &'a [u8],
    width: usize,
    height: usize,
    stride: usize,
    format: PixelFormat,
}

impl<'a> Frame<'a> {
    /// Wraps `data`; checks that the size is non-zero, `stride` holds a row and `data`
    /// holds all rows (the last row may end right after its pixels).
    pub fn new(
        data: &'a [u8],
        width: usize,
        height: usize,
        stride: usize,
        format: PixelFormat,
    ) -> Result<Self, FaceError> {
        if width == 0 || height == 0 {
            return Err(FaceError::Size(format!("frame is {width}x{height}")));
        }
        let row = width
            .checked_mul(format.bytes_per_pixel())
            .ok_or_else(|| FaceError::Size(format!("frame width {width} overflows")))?;
        if stride < row {
            return Err(FaceError::Size(format!(
                "stride {stride} is smaller than a row of {width} {format:?} pixels ({row} bytes)"
            )));
        }
        let need = (height - 1)
            .checked_mul(stride)
            .and_then(|v| v.checked_add(row))
            .ok_or_else(|| FaceError::Size(format!("frame {width}x{height} overflows")))?;
        if data.len() < need {
            return Err(FaceError::Size(format!(
                "{width}x{height} {format:?} frame with stride {stride} needs {need} bytes, got {}",
                data.len()
            )));
        }
        Ok(Frame {
            data,
            width,
            height,
            stride,
            format,
        })
    }

    /// A tightly packed frame (`stride = width * bytes_per_pixel`).
    pub fn packed(
        data: &'a [u8],
        width: usize,
        height: usize,
        format: PixelFormat,
    ) -> Result<Self, FaceError> {
        Self::new(
            data,
            width,
            height,
            width.saturating_mul(format.bytes_per_pixel()),
            format,
        )
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// Bytes from one row to the next.
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// Pixel format.
    pub fn format(&self) -> PixelFormat {
        self.format
    }

    /// The whole buffer (rows `stride` bytes apart).
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// The bytes of row `y` (`width * bytes_per_pixel` of them).
    ///
    /// # Panics
    /// If `y >= height` (callers index rows they computed from the frame size).
    pub fn row(&self, y: usize) -> &'a [u8] {
        let start = y * self.stride;
        &self.data[start..start + self.width * self.format.bytes_per_pixel()]
    }

    /// `[r, g, b]` of pixel `(x, y)`, or `None` outside the frame.
    pub fn rgb(&self, x: usize, y: usize) -> Option<[u8; 3]> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let bpp = self.format.bytes_per_pixel();
        let [r, g, b] = self.format.rgb_offsets();
        let p = &self.row(y)[x * bpp..(x + 1) * bpp];
        Some([p[r], p[g], p[b]])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_sizes() {
        let buf = vec![0u8; 10 * 4 * 3];
        assert!(Frame::packed(&buf, 10, 4, PixelFormat::Rgb).is_ok());
        assert!(Frame::packed(&buf, 10, 5, PixelFormat::Rgb).is_err());
        assert!(Frame::packed(&buf, 0, 4, PixelFormat::Rgb).is_err());
        assert!(Frame::new(&buf, 10, 4, 20, PixelFormat::Rgb).is_err());
        // stride padding: last row may be short
        let buf = vec![0u8; 32 * 3 + 30];
        assert!(Frame::new(&buf, 10, 4, 32, PixelFormat::Rgb).is_ok());
    }

    #[test]
    fn byte_offsets() {
        let px = [10u8, 20, 30, 40];
        let f = |fmt| Frame::packed(&px, 1, 1, fmt).unwrap().rgb(0, 0).unwrap();
        assert_eq!(f(PixelFormat::Rgba), [10, 20, 30]);
        assert_eq!(f(PixelFormat::Bgrx), [30, 20, 10]);
        assert_eq!(f(PixelFormat::Argb), [20, 30, 40]);
        assert_eq!(f(PixelFormat::Xbgr), [40, 30, 20]);
        assert_eq!(f(PixelFormat::Gray8), [10, 10, 10]);
        assert_eq!(PixelFormat::from_gst_name("BGRx"), Some(PixelFormat::Bgrx));
    }
}
