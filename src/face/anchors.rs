// SPDX-License-Identifier: MPL-2.0
//! SSD anchors as MediaPipe's `SsdAnchorsCalculator` makes them for BlazeFace.

/// An anchor centre in normalised input coordinates (BlazeFace anchors have a fixed
/// size of 1, so only the centre matters).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Anchor {
    /// Centre x in `0..1`.
    pub x: f32,
    /// Centre y in `0..1`.
    pub y: f32,
}

/// The subset of MediaPipe's `SsdAnchorsCalculatorOptions` that BlazeFace uses
/// (`fixed_anchor_size = true`, `aspect_ratios = [1.0]`).
#[derive(Debug, Clone, PartialEq)]
pub struct SsdAnchorOptions {
    /// Model input width in pixels.
    pub input_width: usize,
    /// Model input height in pixels.
    pub input_height: usize,
    /// One stride per layer; consecutive layers with the same stride share one grid.
    pub strides: Vec<usize>,
    /// Horizontal anchor offset inside a cell (0.5 = cell centre).
    pub offset_x: f32,
    /// Vertical anchor offset inside a cell.
    pub offset_y: f32,
    /// Anchors per layer and cell: 2 when MediaPipe's `interpolated_scale_aspect_ratio`
    /// is non-zero (one per aspect ratio plus the interpolated one), else 1.
    pub anchors_per_layer: usize,
}

impl SsdAnchorOptions {
    /// BlazeFace short range: 128x128, strides `[8, 16, 16, 16]`, 2 anchors per layer (896).
    pub fn blazeface_short() -> Self {
        SsdAnchorOptions {
            input_width: 128,
            input_height: 128,
            strides: vec![8, 16, 16, 16],
            offset_x: 0.5,
            offset_y: 0.5,
            anchors_per_layer: 2,
        }
    }

    /// BlazeFace full range: 192x192, stride 4, 1 anchor per cell (2304).
    pub fn blazeface_full() -> Self {
        SsdAnchorOptions {
            input_width: 192,
            input_height: 192,
            strides: vec![4],
            offset_x: 0.5,
            offset_y: 0.5,
            anchors_per_layer: 1,
        }
    }
}

/// Generates the anchors: layer group by layer group (consecutive layers with the same
/// stride form one group), then rows, then columns, with the group's repeats innermost.
/// A zero stride is skipped.
pub fn ssd_anchors(opts: &SsdAnchorOptions) -> Vec<Anchor> {
    let mut anchors = Vec::new();
    let strides = &opts.strides;
    let mut layer = 0;
    while layer < strides.len() {
        let stride = strides[layer];
        let mut last = layer;
        let mut repeats = 0;
        while last < strides.len() && strides[last] == stride {
            repeats += opts.anchors_per_layer;
            last += 1;
        }
        layer = last;
        if stride == 0 {
            continue;
        }
        let grid_h = opts.input_height.div_ceil(stride);
        let grid_w = opts.input_width.div_ceil(stride);
        anchors.reserve(grid_h * grid_w * repeats);
        for y in 0..grid_h {
            let ay = (y as f32 + opts.offset_y) / grid_h as f32;
            for x in 0..grid_w {
                let ax = (x as f32 + opts.offset_x) / grid_w as f32;
                for _ in 0..repeats {
                    anchors.push(Anchor { x: ax, y: ay });
                }
            }
        }
    }
    anchors
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: Anchor, x: f32, y: f32) -> bool {
        (a.x - x).abs() < 1e-6 && (a.y - y).abs() < 1e-6
    }

    #[test]
    fn short_range_anchors() {
        let a = ssd_anchors(&SsdAnchorOptions::blazeface_short());
        assert_eq!(a.len(), 896);
        // 16x16 grid, 2 per cell
        assert!(close(a[0], 0.5 / 16.0, 0.5 / 16.0));
        assert!(close(a[1], 0.5 / 16.0, 0.5 / 16.0));
        assert!(close(a[2], 1.5 / 16.0, 0.5 / 16.0));
        assert!(close(a[511], 15.5 / 16.0, 15.5 / 16.0));
        // 8x8 grid, 6 per cell
        for &anchor in &a[512..518] {
            assert!(close(anchor, 0.5 / 8.0, 0.5 / 8.0));
        }
        assert!(close(a[518], 1.5 / 8.0, 0.5 / 8.0));
        assert!(close(a[512 + 6 * 8], 0.5 / 8.0, 1.5 / 8.0));
        assert!(close(a[895], 7.5 / 8.0, 7.5 / 8.0));
    }

    #[test]
    fn full_range_anchors() {
        let a = ssd_anchors(&SsdAnchorOptions::blazeface_full());
        assert_eq!(a.len(), 2304);
        assert!(close(a[0], 0.5 / 48.0, 0.5 / 48.0));
        assert!(close(a[1], 1.5 / 48.0, 0.5 / 48.0));
        assert!(close(a[48], 0.5 / 48.0, 1.5 / 48.0));
        assert!(close(a[2303], 47.5 / 48.0, 47.5 / 48.0));
    }

    #[test]
    fn degenerate_options() {
        let mut o = SsdAnchorOptions::blazeface_full();
        o.strides = vec![0];
        assert!(ssd_anchors(&o).is_empty());
        o.strides.clear();
        assert!(ssd_anchors(&o).is_empty());
    }
}
