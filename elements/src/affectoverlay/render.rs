// SPDX-License-Identifier: MPL-2.0
//! Drawing: cairo + Pango into one premultiplied ARGB surface that covers every face's
//! drawings, wrapped as a `GstVideoOverlayComposition` of one rectangle.

use pangocairo::{cairo, pango};

use crate::meta::FaceRoi;

/// Frame height the font size and the automatic line width are given for.
pub(super) const REFERENCE_HEIGHT: f64 = 480.0;

/// What to draw and how (a copy of the element's settings).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct DrawOptions {
    /// Face boxes.
    pub boxes: bool,
    /// Track id, top expression and its probability.
    pub labels: bool,
    /// Valence and arousal bars.
    pub va: bool,
    /// Landmark points.
    pub landmarks: bool,
    /// Pango font description; its size is for a [`REFERENCE_HEIGHT`]-line frame.
    pub font_desc: String,
    /// Box line width in pixels; 0 = 2 px at [`REFERENCE_HEIGHT`] lines, scaled.
    pub line_width: f64,
}

/// Track colours (RGB in \[0, 1\]), picked by track id.
const PALETTE: [[f64; 3]; 8] = [
    [0.12, 0.75, 1.00],
    [1.00, 0.80, 0.10],
    [0.85, 0.35, 1.00],
    [0.20, 0.95, 0.75],
    [1.00, 0.45, 0.65],
    [0.65, 0.95, 0.25],
    [1.00, 0.55, 0.20],
    [0.55, 0.65, 1.00],
];

fn track_colour(track_id: u64) -> [f64; 3] {
    PALETTE[(track_id % PALETTE.len() as u64) as usize]
}

fn lerp(a: [f64; 3], b: [f64; 3], t: f64) -> [f64; 3] {
    let t = t.clamp(0.0, 1.0);
    [
        a[0] + (b[0] - a[0]) * t,
        a[1] + (b[1] - a[1]) * t,
        a[2] + (b[2] - a[2]) * t,
    ]
}

/// Valence colour: red at −1, yellow at 0, green at +1.
pub(super) fn valence_colour(v: f64) -> [f64; 3] {
    const RED: [f64; 3] = [0.92, 0.12, 0.10];
    const YELLOW: [f64; 3] = [0.95, 0.85, 0.15];
    const GREEN: [f64; 3] = [0.10, 0.85, 0.25];
    if v < 0.0 {
        lerp(YELLOW, RED, -v)
    } else {
        lerp(YELLOW, GREEN, v)
    }
}

/// Arousal colour: blue at −1, orange at +1.
pub(super) fn arousal_colour(a: f64) -> [f64; 3] {
    const BLUE: [f64; 3] = [0.15, 0.40, 1.00];
    const ORANGE: [f64; 3] = [1.00, 0.55, 0.05];
    lerp(BLUE, ORANGE, (a + 1.0) / 2.0)
}

/// An axis-aligned rectangle in frame pixels.
#[derive(Debug, Clone, Copy)]
struct Rect {
    x: f64,
    y: f64,
    w: f64,
    h: f64,
}

impl Rect {
    fn union(self, o: Rect) -> Rect {
        let x0 = self.x.min(o.x);
        let y0 = self.y.min(o.y);
        let x1 = (self.x + self.w).max(o.x + o.w);
        let y1 = (self.y + self.h).max(o.y + o.h);
        Rect {
            x: x0,
            y: y0,
            w: x1 - x0,
            h: y1 - y0,
        }
    }

    fn grow(self, d: f64) -> Rect {
        Rect {
            x: self.x - d,
            y: self.y - d,
            w: self.w + 2.0 * d,
            h: self.h + 2.0 * d,
        }
    }

    /// Moves the rectangle horizontally into `[0, width]` where it fits.
    fn keep_in_width(mut self, width: f64) -> Rect {
        if self.x + self.w > width {
            self.x = width - self.w;
        }
        self.x = self.x.max(0.0);
        self
    }
}

struct Label {
    layout: pango::Layout,
    rect: Rect,
}

struct VaPanel {
    rect: Rect,
    letters: [pango::Layout; 2],
    values: [f64; 2],
    row_h: f64,
    letter_w: f64,
}

/// Everything drawn for one face, in frame pixels.
struct FacePlan {
    colour: [f64; 3],
    bbox: Rect,
    label: Option<Label>,
    va: Option<VaPanel>,
    landmarks: Vec<[f32; 2]>,
    /// The speaker marker (a loudspeaker with sound waves) outside the box's top-right
    /// corner: centre and size, when the face is the active speaker.
    speaker: Option<([f64; 2], f64)>,
}

/// Sizes derived from the frame height and the options.
struct Metrics {
    scale: f64,
    line_width: f64,
    pad: f64,
    font: pango::FontDescription,
    small_font: pango::FontDescription,
}

impl Metrics {
    fn new(opts: &DrawOptions, height: u32) -> Metrics {
        let scale = (height as f64 / REFERENCE_HEIGHT).clamp(0.25, 16.0);
        let line_width = if opts.line_width > 0.0 {
            opts.line_width
        } else {
            (2.0 * scale).max(1.0)
        };
        let mut font = pango::FontDescription::from_string(&opts.font_desc);
        if font.family().is_none_or(|f| f.is_empty()) {
            font.set_family("Sans");
        }
        let size = if font.size() > 0 {
            font.size() as f64
        } else {
            12.0 * pango::SCALE as f64
        };
        let absolute = font.is_size_absolute();
        let sized = |font: &mut pango::FontDescription, s: f64| {
            let s = s.max(pango::SCALE as f64);
            if absolute {
                font.set_absolute_size(s);
            } else {
                font.set_size(s.round() as i32);
            }
        };
        sized(&mut font, size * scale);
        let mut small_font = font.clone();
        sized(&mut small_font, size * scale * 0.8);
        Metrics {
            scale,
            line_width,
            pad: (3.0 * scale).max(1.0).round(),
            font,
            small_font,
        }
    }
}

fn layout(
    probe: &cairo::Context,
    font: &pango::FontDescription,
    text: &str,
) -> (pango::Layout, f64, f64) {
    let layout = pangocairo::functions::create_layout(probe);
    layout.set_font_description(Some(font));
    layout.set_text(text);
    let (_ink, logical) = layout.pixel_extents();
    (layout, logical.width() as f64, logical.height() as f64)
}

/// The label text of a face: track id, and top expression with its probability; "
/// speaking" after it when `avfuse` judged the face the active speaker.
pub(super) fn label_text(face: &FaceRoi) -> String {
    match &face.affect {
        Some(a) => format!(
            "#{} {} {:.0}%{}",
            face.track_id,
            a.expression(),
            100.0 * a.probabilities[a.top_index()],
            if is_speaker(face) { " speaking" } else { "" }
        ),
        None => format!("#{}", face.track_id),
    }
}

fn is_speaker(face: &FaceRoi) -> bool {
    face.affect.as_ref().and_then(|a| a.speaker) == Some(true)
}

fn plan_face(
    probe: &cairo::Context,
    face: &FaceRoi,
    opts: &DrawOptions,
    m: &Metrics,
    (width, height): (f64, f64),
) -> FacePlan {
    let b = &face.bbox;
    let bbox = Rect {
        x: b.x as f64,
        y: b.y as f64,
        w: b.width as f64,
        h: b.height as f64,
    };
    let half = m.line_width / 2.0;
    let label = opts.labels.then(|| {
        let (layout, tw, th) = layout(probe, &m.font, &label_text(face));
        let (w, h) = (tw + 2.0 * m.pad, th + 2.0 * m.pad);
        let mut y = bbox.y - half - h;
        if y < 0.0 {
            y = bbox.y + half;
        }
        let rect = Rect {
            x: bbox.x - half,
            y,
            w,
            h,
        }
        .keep_in_width(width);
        Label { layout, rect }
    });
    let va = match (&face.affect, opts.va) {
        (Some(a), true) => {
            let (lv, wv, hv) = layout(probe, &m.small_font, "V");
            let (la, wa, ha) = layout(probe, &m.small_font, "A");
            let row_h = hv.max(ha);
            let letter_w = wv.max(wa);
            let gap = (2.0 * m.scale).round().max(1.0);
            let w = (bbox.w + m.line_width).max(100.0 * m.scale);
            let h = 2.0 * m.pad + 2.0 * row_h + gap;
            let mut y = bbox.y + bbox.h + half;
            if y + h > height {
                y = bbox.y + bbox.h - half - h;
            }
            let rect = Rect {
                x: bbox.x - half,
                y,
                w,
                h,
            }
            .keep_in_width(width);
            Some(VaPanel {
                rect,
                letters: [lv, la],
                values: [a.valence as f64, a.arousal as f64],
                row_h,
                letter_w,
            })
        }
        _ => None,
    };
    let size = (14.0 * m.scale).max(8.0);
    let speaker = is_speaker(face).then(|| {
        let x = (bbox.x + bbox.w + half + size * 0.7).min(width - size * 0.7);
        let y = (bbox.y + size * 0.7).max(size * 0.7);
        ([x, y], size)
    });
    FacePlan {
        colour: track_colour(face.track_id),
        bbox,
        label,
        va,
        speaker,
        landmarks: if opts.landmarks {
            face.landmarks.clone()
        } else {
            Vec::new()
        },
    }
}

impl FacePlan {
    /// The area this face draws on, before clipping to the frame.
    fn extent(&self, m: &Metrics, boxes: bool) -> Option<Rect> {
        let mut r: Option<Rect> = None;
        let mut add = |x: Rect| r = Some(r.map_or(x, |r| r.union(x)));
        if boxes {
            add(self.bbox.grow(m.line_width));
        }
        if let Some(l) = &self.label {
            add(l.rect);
        }
        if let Some(v) = &self.va {
            add(v.rect);
        }
        if let Some(([x, y], size)) = self.speaker {
            add(Rect {
                x,
                y,
                w: 0.0,
                h: 0.0,
            }
            .grow(size * 0.7 + 2.0));
        }
        let radius = landmark_radius(m);
        for p in &self.landmarks {
            add(Rect {
                x: p[0] as f64,
                y: p[1] as f64,
                w: 0.0,
                h: 0.0,
            }
            .grow(radius + 1.0));
        }
        r
    }
}

fn landmark_radius(m: &Metrics) -> f64 {
    (2.5 * m.scale).max(1.5)
}

fn draw_face(
    cr: &cairo::Context,
    f: &FacePlan,
    opts: &DrawOptions,
    m: &Metrics,
) -> Result<(), cairo::Error> {
    let [r, g, b] = f.colour;
    if opts.boxes {
        let bx = &f.bbox;
        cr.rectangle(bx.x, bx.y, bx.w, bx.h);
        cr.set_source_rgba(0.0, 0.0, 0.0, 0.5);
        // One dark pixel on each side keeps the line visible on bright pictures.
        cr.set_line_width(m.line_width + 2.0);
        cr.stroke_preserve()?;
        cr.set_source_rgb(r, g, b);
        cr.set_line_width(m.line_width);
        cr.stroke()?;
    }
    let radius = landmark_radius(m);
    for p in &f.landmarks {
        cr.new_sub_path();
        cr.arc(
            p[0] as f64,
            p[1] as f64,
            radius,
            0.0,
            2.0 * std::f64::consts::PI,
        );
    }
    if !f.landmarks.is_empty() {
        cr.set_source_rgb(r, g, b);
        cr.fill_preserve()?;
        cr.set_source_rgba(0.0, 0.0, 0.0, 0.6);
        cr.set_line_width(1.0);
        cr.stroke()?;
    }
    if let Some(l) = &f.label {
        let q = l.rect;
        cr.rectangle(q.x, q.y, q.w, q.h);
        cr.set_source_rgba(r, g, b, 0.85);
        cr.fill()?;
        // Dark text on light track colours, white on dark ones.
        if 0.299 * r + 0.587 * g + 0.114 * b > 0.55 {
            cr.set_source_rgb(0.0, 0.0, 0.0);
        } else {
            cr.set_source_rgb(1.0, 1.0, 1.0);
        }
        cr.move_to(q.x + m.pad, q.y + m.pad);
        pangocairo::functions::update_layout(cr, &l.layout);
        pangocairo::functions::show_layout(cr, &l.layout);
    }
    if let Some(v) = &f.va {
        draw_va(cr, v, m)?;
    }
    if let Some((c, size)) = f.speaker {
        draw_speaker(cr, c, size, f.colour)?;
    }
    Ok(())
}

/// A loudspeaker with two sound waves, `size` wide, centred at `c`, in the track colour
/// on a dark disc (visible on any picture).
fn draw_speaker(
    cr: &cairo::Context,
    c: [f64; 2],
    size: f64,
    [r, g, b]: [f64; 3],
) -> Result<(), cairo::Error> {
    let [x, y] = c;
    cr.new_path();
    cr.arc(x, y, size * 0.7, 0.0, 2.0 * std::f64::consts::PI);
    cr.set_source_rgba(0.0, 0.0, 0.0, 0.6);
    cr.fill()?;
    let u = size / 14.0;
    // The speaker: a box and a cone.
    cr.move_to(x - 6.0 * u, y - 2.0 * u);
    cr.line_to(x - 3.0 * u, y - 2.0 * u);
    cr.line_to(x + 1.0 * u, y - 6.0 * u);
    cr.line_to(x + 1.0 * u, y + 6.0 * u);
    cr.line_to(x - 3.0 * u, y + 2.0 * u);
    cr.line_to(x - 6.0 * u, y + 2.0 * u);
    cr.close_path();
    cr.set_source_rgb(r, g, b);
    cr.fill()?;
    // Two waves.
    cr.set_line_width(1.5 * u);
    for radius in [4.0 * u, 7.0 * u] {
        cr.new_sub_path();
        cr.arc(x + 1.0 * u, y, radius, -0.8, 0.8);
    }
    cr.stroke()?;
    Ok(())
}

fn draw_va(cr: &cairo::Context, v: &VaPanel, m: &Metrics) -> Result<(), cairo::Error> {
    let p = v.rect;
    cr.rectangle(p.x, p.y, p.w, p.h);
    cr.set_source_rgba(0.0, 0.0, 0.0, 0.6);
    cr.fill()?;
    let gap = p.h - 2.0 * m.pad - 2.0 * v.row_h;
    let bar_x = p.x + m.pad + v.letter_w + m.pad;
    let bar_w = (p.x + p.w - m.pad - bar_x).max(2.0);
    let bar_h = (v.row_h * 0.55).round().max(2.0);
    let centre = bar_x + bar_w / 2.0;
    let tick = m.scale.max(1.0);
    for (i, letter) in v.letters.iter().enumerate() {
        let row_y = p.y + m.pad + i as f64 * (v.row_h + gap);
        cr.set_source_rgb(1.0, 1.0, 1.0);
        cr.move_to(p.x + m.pad, row_y);
        pangocairo::functions::update_layout(cr, letter);
        pangocairo::functions::show_layout(cr, letter);

        let y = row_y + (v.row_h - bar_h) / 2.0;
        cr.rectangle(bar_x, y, bar_w, bar_h);
        cr.set_source_rgba(0.35, 0.35, 0.35, 0.9);
        cr.fill()?;
        let value = if v.values[i].is_finite() {
            v.values[i].clamp(-1.0, 1.0)
        } else {
            0.0
        };
        let [r, g, b] = if i == 0 {
            valence_colour(value)
        } else {
            arousal_colour(value)
        };
        let end = centre + value * bar_w / 2.0;
        cr.rectangle(centre.min(end), y, (end - centre).abs(), bar_h);
        cr.set_source_rgb(r, g, b);
        cr.fill()?;
        cr.rectangle(centre - tick / 2.0, y - tick, tick, bar_h + 2.0 * tick);
        cr.set_source_rgb(1.0, 1.0, 1.0);
        cr.fill()?;
    }
    Ok(())
}

/// Cairo's ARGB32 (premultiplied, native-endian words) as a GStreamer format.
#[cfg(target_endian = "little")]
const CAIRO_FORMAT: gst_video::VideoFormat = gst_video::VideoFormat::Bgra;
#[cfg(target_endian = "big")]
const CAIRO_FORMAT: gst_video::VideoFormat = gst_video::VideoFormat::Argb;

/// Renders the faces of a `width`×`height` frame. `Ok(None)` when nothing is drawn
/// (no faces, everything switched off, or every drawing outside the frame).
pub(super) fn render(
    faces: &[FaceRoi],
    opts: &DrawOptions,
    width: u32,
    height: u32,
) -> Result<Option<gst_video::VideoOverlayComposition>, String> {
    if faces.is_empty() || width == 0 || height == 0 {
        return Ok(None);
    }
    let m = Metrics::new(opts, height);
    let probe_surface =
        cairo::ImageSurface::create(cairo::Format::ARgb32, 1, 1).map_err(|e| e.to_string())?;
    let probe = cairo::Context::new(&probe_surface).map_err(|e| e.to_string())?;
    let frame = (width as f64, height as f64);
    let plans: Vec<FacePlan> = faces
        .iter()
        .map(|f| plan_face(&probe, f, opts, &m, frame))
        .collect();
    let extent = plans
        .iter()
        .filter_map(|p| p.extent(&m, opts.boxes))
        .reduce(Rect::union);
    let Some(extent) = extent else {
        return Ok(None);
    };
    // Whole pixels, clipped to the frame.
    let x0 = extent.x.floor().clamp(0.0, frame.0) as i32;
    let y0 = extent.y.floor().clamp(0.0, frame.1) as i32;
    let x1 = (extent.x + extent.w).ceil().clamp(0.0, frame.0) as i32;
    let y1 = (extent.y + extent.h).ceil().clamp(0.0, frame.1) as i32;
    let (w, h) = (x1 - x0, y1 - y0);
    if w <= 0 || h <= 0 {
        return Ok(None);
    }

    let surface =
        cairo::ImageSurface::create(cairo::Format::ARgb32, w, h).map_err(|e| e.to_string())?;
    {
        let cr = cairo::Context::new(&surface).map_err(|e| e.to_string())?;
        cr.translate(-x0 as f64, -y0 as f64);
        for p in &plans {
            draw_face(&cr, p, opts, &m).map_err(|e| e.to_string())?;
        }
    }
    surface.flush();
    let stride = surface.stride();
    let data = surface.take_data().map_err(|e| e.to_string())?;
    let mut buffer = gst::Buffer::from_mut_slice(data);
    {
        let buffer = buffer
            .get_mut()
            .ok_or_else(|| "overlay buffer is not writable".to_string())?;
        gst_video::VideoMeta::add_full(
            buffer,
            gst_video::VideoFrameFlags::empty(),
            CAIRO_FORMAT,
            w as u32,
            h as u32,
            &[0],
            &[stride],
        )
        .map_err(|e| e.to_string())?;
    }
    let rect = gst_video::VideoOverlayRectangle::new_raw(
        &buffer,
        x0,
        y0,
        w as u32,
        h as u32,
        gst_video::VideoOverlayFormatFlags::PREMULTIPLIED_ALPHA,
    );
    // From a reference: gst_video_overlay_composition_new() takes its own reference, and
    // gstreamer-video's `From<VideoOverlayRectangle>` hands it ours as well, leaking one
    // rectangle (with its buffer and memory) per frame (seen with GST_TRACERS=leaks).
    Ok(Some(gst_video::VideoOverlayComposition::from(&rect)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use affect::results::{FaceAffect, FaceBox};

    fn face(affect: bool) -> FaceRoi {
        let bbox = FaceBox {
            x: 100.0,
            y: 100.0,
            width: 120.0,
            height: 140.0,
        };
        let mut p = [0.02f32; 8];
        p[4] = 0.86;
        FaceRoi {
            id: 0,
            track_id: 3,
            bbox,
            score: Some(0.9),
            landmarks: vec![[130.0, 150.0]],
            mesh: Vec::new(),
            mesh_score: None,
            mesh_age: None,
            affect: affect.then_some(FaceAffect {
                track_id: 3,
                bbox,
                valence: 0.5,
                arousal: -0.5,
                probabilities: p,
                ..Default::default()
            }),
        }
    }

    fn opts() -> DrawOptions {
        DrawOptions {
            boxes: true,
            labels: true,
            va: true,
            landmarks: true,
            font_desc: "Sans 12".into(),
            line_width: 0.0,
        }
    }

    #[test]
    fn colours_run_between_their_ends() {
        assert!(valence_colour(-1.0)[0] > 0.9 && valence_colour(-1.0)[1] < 0.2);
        assert!(valence_colour(1.0)[1] > 0.8 && valence_colour(1.0)[0] < 0.2);
        assert!(arousal_colour(-1.0)[2] > 0.9 && arousal_colour(1.0)[0] > 0.9);
        assert_eq!(valence_colour(-5.0), valence_colour(-1.0));
    }

    #[test]
    fn labels_name_track_and_top_expression() {
        assert_eq!(label_text(&face(true)), "#3 Happiness 86%");
        assert_eq!(label_text(&face(false)), "#3");
    }

    #[test]
    fn the_speaking_face_gets_a_marker_and_says_so() {
        gst::init().unwrap();
        let mut f = face(true);
        if let Some(a) = f.affect.as_mut() {
            a.speaking = Some(0.8);
            a.speaker = Some(true);
        }
        assert_eq!(label_text(&f), "#3 Happiness 86% speaking");
        // Without labels the drawn area is the box and the V/A panel below it (x up to
        // ~222); the marker sits right of the box's top-right corner.
        let no_labels = DrawOptions {
            labels: false,
            ..opts()
        };
        let quiet = render(&[face(true)], &no_labels, 640, 480)
            .unwrap()
            .unwrap();
        let speaking = render(&[f], &no_labels, 640, 480).unwrap().unwrap();
        let (x0, _, w0, _) = quiet.rectangle(0).unwrap().render_rectangle();
        let (x1, _, w1, _) = speaking.rectangle(0).unwrap().render_rectangle();
        assert!(x0 + (w0 as i32) < 230, "{x0} {w0}");
        assert!(x1 + w1 as i32 >= 220 + 18, "{x1} {w1}");
    }

    #[test]
    fn one_rectangle_covers_the_face_inside_the_frame() {
        gst::init().unwrap();
        let c = render(&[face(true)], &opts(), 640, 480).unwrap().unwrap();
        assert_eq!(c.n_rectangles(), 1);
        let (x, y, w, h) = c.rectangle(0).unwrap().render_rectangle();
        assert!(x <= 98 && y < 100 - 10 && x >= 0 && y >= 0, "{x} {y}");
        assert!(x + w as i32 >= 222 && y + h as i32 > 242 + 10, "{w} {h}");
        assert!(x + w as i32 <= 640 && y + h as i32 <= 480);
        // A face at the frame's corner stays inside the frame.
        let mut f = face(true);
        f.bbox = FaceBox {
            x: 600.0,
            y: 0.0,
            width: 40.0,
            height: 480.0,
        };
        let c = render(&[f], &opts(), 640, 480).unwrap().unwrap();
        let (x, y, w, h) = c.rectangle(0).unwrap().render_rectangle();
        assert!(x >= 0 && y == 0 && x + w as i32 <= 640 && h == 480);
        let none = DrawOptions {
            boxes: false,
            labels: false,
            va: false,
            landmarks: false,
            ..opts()
        };
        assert!(render(&[face(true)], &none, 640, 480).unwrap().is_none());
        assert!(render(&[], &opts(), 640, 480).unwrap().is_none());
    }
}
