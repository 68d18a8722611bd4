// SPDX-License-Identifier: MPL-2.0
//! `curves.png` of `affect-train fit`: training and validation loss (left) and the
//! validation metric (right) per epoch, drawn with plotters into a pixel buffer and
//! written as PNG atomically. Text uses a system TrueType font (DejaVu Sans, Debian
//! package `fonts-dejavu-core`; `AFFECT_FONT=/path/to/font.ttf` picks another).

use std::path::{Path, PathBuf};

use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::train::report::{EpochReport, FitReport};

const FONT_PATHS: [&str; 4] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
];

fn load_font() -> Result<(), String> {
    static FONT: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    FONT.get_or_init(|| {
        let candidates: Vec<PathBuf> = std::env::var_os("AFFECT_FONT")
            .map(PathBuf::from)
            .into_iter()
            .chain(FONT_PATHS.iter().map(PathBuf::from))
            .collect();
        let path = candidates.iter().find(|p| p.is_file()).ok_or_else(|| {
            "no TrueType font for curves.png: install Debian's fonts-dejavu-core or set \
             AFFECT_FONT=/path/to/font.ttf"
                .to_string()
        })?;
        let bytes =
            std::fs::read(path).map_err(|e| format!("cannot read font {}: {e}", path.display()))?;
        // plotters keeps fonts for the whole process.
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
            .map_err(|_| format!("{} is not a usable TrueType font", path.display()))
    })
    .clone()
}

/// Draws the curves of `report` into a `size` PNG at `path` (atomic write).
pub fn draw(report: &FitReport, path: &Path, size: (u32, u32)) -> Result<(), String> {
    load_font()?;
    let eps = &report.epochs;
    let last = eps.last().map_or(1, |e| e.epoch).max(2) as f64;
    let mut pixels = vec![0u8; size.0 as usize * size.1 as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, size).into_drawing_area();
        let err = |e: DrawingAreaErrorKind<_>| format!("drawing failed: {e}");
        root.fill(&WHITE).map_err(err)?;
        let (left, right) = root.split_horizontally(size.0 / 2);
        let finite = |v: f64| if v.is_finite() { v } else { 0.0 };
        let lmax = eps
            .iter()
            .flat_map(|e| [finite(e.train_loss), finite(e.val_loss)])
            .fold(0.0f64, f64::max)
            .max(1e-3)
            * 1.05;
        let metric_name = if eps.iter().any(|e| e.f1.is_some()) {
            "validation macro-F1"
        } else {
            "validation mean CCC"
        };
        let mut c = ChartBuilder::on(&left)
            .caption("loss", ("sans-serif", 20))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(50)
            .build_cartesian_2d(1f64..last, 0f64..lmax)
            .map_err(err)?;
        c.configure_mesh().x_desc("epoch").draw().map_err(err)?;
        for (name, colour, pick) in [
            (
                "train",
                BLUE,
                (|e: &EpochReport| e.train_loss) as fn(&_) -> f64,
            ),
            ("validation", RED, |e| e.val_loss),
        ] {
            c.draw_series(LineSeries::new(
                eps.iter().map(|e| (e.epoch as f64, finite(pick(e)))),
                colour,
            ))
            .map_err(err)?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
        }
        c.configure_series_labels()
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
        let mut c = ChartBuilder::on(&right)
            .caption(metric_name, ("sans-serif", 20))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(50)
            .build_cartesian_2d(1f64..last, -0.1f64..1.0)
            .map_err(err)?;
        c.configure_mesh().x_desc("epoch").draw().map_err(err)?;
        c.draw_series(LineSeries::new(
            eps.iter().map(|e| (e.epoch as f64, finite(e.metric))),
            GREEN,
        ))
        .map_err(err)?;
        if report.best_epoch > 0 {
            c.draw_series(std::iter::once(Circle::new(
                (report.best_epoch as f64, finite(report.best_metric)),
                5,
                BLACK.filled(),
            )))
            .map_err(err)?;
        }
        root.present().map_err(err)?;
    }
    let img = image::RgbImage::from_raw(size.0, size.1, pixels)
        .ok_or_else(|| "pixel buffer of the wrong size".to_string())?;
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| format!("PNG encoding failed: {e}"))?;
    crate::dataset::write_atomic(path, &png).map_err(|e| e.to_string())
}
