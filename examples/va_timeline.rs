// SPDX-License-Identifier: MPL-2.0
//! Draws valence and arousal over time, one line per face track, from an NDJSON file of
//! [`AffectRecord`]s (what `avfuse location=…` and `make demo` write) into a PNG.
//!
//! ```sh
//! cargo run --example va_timeline -- out/affect.ndjson out/va-timeline.png
//! ```
//!
//! Two panels share the time axis (seconds of buffer pts): valence on top, arousal
//! below, both on [-1, 1]. A track's line breaks where the track was not seen for more
//! than a few frames. Text is drawn with a system TrueType font (DejaVu Sans, Debian
//! package `fonts-dejavu-core`; `VA_TIMELINE_FONT=/path/to/font.ttf` picks another).
//! The PNG is written to a temporary file beside the output and renamed into place, so
//! a reader never sees half a picture.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use affect::results::AffectRecord;
use plotters::prelude::*;

/// Picture size in pixels (width, height).
pub const SIZE: (u32, u32) = (1200, 760);

/// Where the font is looked for, in order, after `VA_TIMELINE_FONT`.
const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
];

/// Line colours of the tracks (Tableau 10), repeated past ten tracks.
const COLOURS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, output] = args.as_slice() else {
        eprintln!("usage: va_timeline AFFECT.ndjson OUT.png");
        return ExitCode::from(2);
    };
    match run(Path::new(input), Path::new(output)) {
        Ok(n) => {
            println!("va_timeline: {n} face records → {output}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("va_timeline: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Reads `input`, draws the timeline into `output` (PNG, [`SIZE`]) and returns the
/// number of face records drawn.
pub fn run(input: &Path, output: &Path) -> Result<usize, String> {
    let text = std::fs::read_to_string(input)
        .map_err(|e| format!("cannot read {}: {e}", input.display()))?;
    let records = parse_ndjson(&text).map_err(|e| format!("{}: {e}", input.display()))?;
    let title = input
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    draw_timeline(&records, &title, output, SIZE)?;
    Ok(records.len())
}

/// Parses NDJSON records (blank lines are skipped). An error names the 1-based line:
/// `line 3: expected value at line 1 column 1`.
pub fn parse_ndjson(text: &str) -> Result<Vec<AffectRecord>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| AffectRecord::from_json_line(l).map_err(|e| format!("line {}: {e}", i + 1)))
        .collect()
}

/// A track's points (seconds, valence, arousal), split where the track was unseen.
type Segments = Vec<Vec<(f64, f64, f64)>>;

/// Groups records by track, sorted by time, and splits a track where the gap between
/// two of its records is more than 2.5 frame steps (the median step between distinct
/// pts of the file, or a record's duration when there is only one pts).
fn tracks(records: &[AffectRecord]) -> BTreeMap<u64, Segments> {
    let mut pts: Vec<u64> = records.iter().map(|r| r.pts).collect();
    pts.sort_unstable();
    pts.dedup();
    let mut steps: Vec<u64> = pts.windows(2).map(|w| w[1] - w[0]).collect();
    steps.sort_unstable();
    let step = steps
        .get(steps.len() / 2)
        .copied()
        .or_else(|| records.iter().find_map(|r| r.duration))
        .unwrap_or(40_000_000)
        .max(1);
    let max_gap = step as f64 * 2.5;

    let mut by_track: BTreeMap<u64, Vec<&AffectRecord>> = BTreeMap::new();
    for r in records {
        by_track.entry(r.face.track_id).or_default().push(r);
    }
    by_track
        .into_iter()
        .map(|(id, mut rs)| {
            rs.sort_by_key(|r| r.pts);
            let mut segments: Segments = Vec::new();
            let mut last: Option<u64> = None;
            for r in rs {
                if last.is_none_or(|l| (r.pts - l) as f64 > max_gap) {
                    segments.push(Vec::new());
                }
                last = Some(r.pts);
                if let Some(seg) = segments.last_mut() {
                    seg.push((
                        r.pts as f64 / 1e9,
                        r.face.valence as f64,
                        r.face.arousal as f64,
                    ));
                }
            }
            (id, segments)
        })
        .collect()
}

/// Loads the TrueType font for the chart text once per process.
fn load_font() -> Result<(), String> {
    static FONT: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    FONT.get_or_init(|| {
        let candidates: Vec<PathBuf> = std::env::var_os("VA_TIMELINE_FONT")
            .map(PathBuf::from)
            .into_iter()
            .chain(FONT_PATHS.iter().map(PathBuf::from))
            .collect();
        let path = candidates.iter().find(|p| p.is_file()).ok_or_else(|| {
            format!(
                "no TrueType font found (looked for {}): install Debian's fonts-dejavu-core \
                 or set VA_TIMELINE_FONT=/path/to/font.ttf",
                candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?;
        let bytes =
            std::fs::read(path).map_err(|e| format!("cannot read font {}: {e}", path.display()))?;
        // plotters keeps fonts for the whole process: the bytes live as long.
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
            .map_err(|_| format!("{} is not a usable TrueType/OpenType font", path.display()))
    })
    .clone()
}

/// Draws valence (top) and arousal (bottom) over time per track into a PNG at `output`
/// of `size` pixels, written atomically (temporary file in the same folder, renamed).
pub fn draw_timeline(
    records: &[AffectRecord],
    title: &str,
    output: &Path,
    size: (u32, u32),
) -> Result<(), String> {
    load_font()?;
    let tracks = tracks(records);
    let t_end = records
        .iter()
        .map(|r| (r.pts + r.duration.unwrap_or(0)) as f64 / 1e9)
        .fold(0.0f64, f64::max)
        .max(0.1);

    let mut pixels = vec![0u8; size.0 as usize * size.1 as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, size).into_drawing_area();
        let err = |e: DrawingAreaErrorKind<_>| format!("drawing failed: {e}");
        root.fill(&WHITE).map_err(err)?;
        let heading = if tracks.is_empty() {
            format!("Valence and arousal per face track — {title} (no face records)")
        } else {
            format!(
                "Valence and arousal per face track — {title} ({} records, {} track{})",
                records.len(),
                tracks.len(),
                if tracks.len() == 1 { "" } else { "s" }
            )
        };
        let root = root
            .margin(6, 0, 0, 0)
            .titled(&heading, ("sans-serif", 24).into_font())
            .map_err(err)?;
        // The track legend lives in a strip on the right, off the data.
        let legend_width = if tracks.is_empty() { 0 } else { 130 };
        let (plots, legend) = root.split_horizontally(size.0.saturating_sub(legend_width));
        for (i, id) in tracks.keys().enumerate() {
            let colour = COLOURS[i % COLOURS.len()];
            let y = 50 + 28 * i as i32;
            legend
                .draw(&PathElement::new([(8, y), (36, y)], colour.stroke_width(3)))
                .map_err(err)?;
            legend
                .draw(&Text::new(
                    format!("track {id}"),
                    (44, y - 9),
                    ("sans-serif", 18).into_font(),
                ))
                .map_err(err)?;
        }
        let panels = plots.split_evenly((2, 1));
        for (panel, (name, pick)) in panels.iter().zip([
            (
                "valence",
                (|p: &(f64, f64, f64)| p.1) as fn(&(f64, f64, f64)) -> f64,
            ),
            ("arousal", |p: &(f64, f64, f64)| p.2),
        ]) {
            let mut chart = ChartBuilder::on(panel)
                .margin(12)
                .x_label_area_size(44)
                .y_label_area_size(64)
                .build_cartesian_2d(0.0..t_end, -1.0..1.0)
                .map_err(err)?;
            chart
                .configure_mesh()
                .x_desc("time (s)")
                .y_desc(name)
                .axis_desc_style(("sans-serif", 20))
                .label_style(("sans-serif", 16))
                .light_line_style(RGBColor(235, 235, 235))
                .bold_line_style(RGBColor(200, 200, 200))
                .y_labels(9)
                .x_labels(12)
                .draw()
                .map_err(err)?;
            chart
                .draw_series(DashedLineSeries::new(
                    [(0.0, 0.0), (t_end, 0.0)],
                    6,
                    4,
                    BLACK.stroke_width(1),
                ))
                .map_err(err)?;
            for (i, segments) in tracks.values().enumerate() {
                let colour = COLOURS[i % COLOURS.len()];
                for seg in segments {
                    // A lone point (one frame between gaps) gets a dot so it stays visible.
                    let line =
                        LineSeries::new(seg.iter().map(|p| (p.0, pick(p))), colour.stroke_width(2))
                            .point_size(if seg.len() == 1 { 3 } else { 0 });
                    chart.draw_series(line).map_err(err)?;
                }
            }
        }
        root.present().map_err(err)?;
    }
    let image = image::RgbImage::from_raw(size.0, size.1, pixels)
        .ok_or_else(|| "pixel buffer has the wrong size".to_string())?;
    write_png_atomically(&image, output)
}

/// Writes `image` as PNG to a temporary file next to `output`, then renames it over `output`.
fn write_png_atomically(image: &image::RgbImage, output: &Path) -> Result<(), String> {
    let dir = match output.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = output
        .file_name()
        .ok_or_else(|| format!("{} is not a file path", output.display()))?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let written = image
        .save_with_format(&tmp, image::ImageFormat::Png)
        .map_err(|e| format!("cannot write {}: {e}", tmp.display()))
        .and_then(|()| {
            std::fs::rename(&tmp, output).map_err(|e| {
                format!(
                    "cannot rename {} to {}: {e}",
                    tmp.display(),
                    output.display()
                )
            })
        });
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}
