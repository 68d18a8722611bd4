// SPDX-License-Identifier: MPL-2.0
//! Aff-Wild2 annotation files (ABAW challenges), one `.txt` per video or subject.
//!
//! - **VA** (`VA_Estimation_Challenge`): first line `valence,arousal`, then one line
//!   `v,a` per video frame, each in [-1, 1]; `-5` marks an invalid frame (the official
//!   files write `-5,-5`).
//! - **EXPR** (`EXPR_Recognition_Challenge`): first line the 8 class names
//!   `Neutral,Anger,Disgust,Fear,Happiness,Sadness,Surprise,Other`, then one class
//!   index 0..=7 per frame; `-1` marks an invalid frame.
//!
//! Line `i + 2` of a file is video frame `i`. Whitespace around values and a trailing
//! `\r` are accepted, as are empty lines at the end of the file; anything else that does
//! not fit (bad header, empty line inside, not a number, a value out of range, a wrong
//! number of fields) is a [`DataError::Annotation`] naming the file and the 1-based line.

use std::path::Path;

use super::{DataError, write_atomic};
use crate::EXPRESSIONS;
use crate::metrics::{EXPR_INVALID, VA_INVALID};

/// The header line of a VA file.
pub const VA_HEADER: &str = "valence,arousal";

/// Per-frame `(valence, arousal)`, `-5` where invalid.
pub type VaLabels = Vec<[f32; 2]>;
/// Per-frame class index, `-1` where invalid.
pub type ExprLabels = Vec<i64>;

/// The header line of an EXPR file.
pub fn expr_header() -> String {
    EXPRESSIONS.join(",")
}

/// The data lines of `text` after checking its header: `(1-based line number, line)`.
fn body<'a>(
    text: &'a str,
    path: &Path,
    header_ok: impl Fn(&str) -> bool,
    expected: &str,
) -> Result<Vec<(usize, &'a str)>, DataError> {
    let err = |line: usize, message: String| DataError::Annotation {
        path: path.to_owned(),
        line,
        message,
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l.trim()));
    match lines.next() {
        None => {
            return Err(err(
                1,
                format!("empty file, expected the header `{expected}`"),
            ));
        }
        Some((n, h)) if !header_ok(h) => {
            return Err(err(n, format!("bad header `{h}`, expected `{expected}`")));
        }
        Some(_) => {}
    }
    let mut out: Vec<(usize, &str)> = lines.collect();
    while out.last().is_some_and(|(_, l)| l.is_empty()) {
        out.pop();
    }
    if let Some((n, _)) = out.iter().find(|(_, l)| l.is_empty()) {
        return Err(err(*n, "empty line inside the file".into()));
    }
    Ok(out)
}

/// Parses the text of a VA file (`path` only names it in errors).
pub fn parse_va(text: &str, path: &Path) -> Result<VaLabels, DataError> {
    let header_ok = |h: &str| {
        let f: Vec<&str> = h.split(',').map(str::trim).collect();
        f.len() == 2 && f[0].eq_ignore_ascii_case("valence") && f[1].eq_ignore_ascii_case("arousal")
    };
    let lines = body(text, path, header_ok, VA_HEADER)?;
    let mut out = Vec::with_capacity(lines.len());
    for (n, line) in lines {
        let err = |message: String| DataError::Annotation {
            path: path.to_owned(),
            line: n,
            message,
        };
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() != 2 {
            return Err(err(format!(
                "expected `valence,arousal`, found {} field(s) in `{line}`",
                fields.len()
            )));
        }
        let mut va = [0.0f32; 2];
        for (d, (f, what)) in fields.iter().zip(["valence", "arousal"]).enumerate() {
            let v: f32 = f
                .parse()
                .map_err(|_| err(format!("{what} `{f}` is not a number")))?;
            if v != VA_INVALID && !(v.is_finite() && (-1.0..=1.0).contains(&v)) {
                return Err(err(format!(
                    "{what} {f} is outside [-1, 1] and not the invalid marker -5"
                )));
            }
            va[d] = v;
        }
        out.push(va);
    }
    Ok(out)
}

/// Parses the text of an EXPR file (`path` only names it in errors).
pub fn parse_expr(text: &str, path: &Path) -> Result<ExprLabels, DataError> {
    let header_ok = |h: &str| {
        let f: Vec<&str> = h.split(',').map(str::trim).collect();
        f.len() == EXPRESSIONS.len()
            && f.iter()
                .zip(EXPRESSIONS)
                .all(|(a, b)| a.eq_ignore_ascii_case(b))
    };
    let lines = body(text, path, header_ok, &expr_header())?;
    let mut out = Vec::with_capacity(lines.len());
    for (n, line) in lines {
        let err = |message: String| DataError::Annotation {
            path: path.to_owned(),
            line: n,
            message,
        };
        let c: i64 = line
            .parse()
            .map_err(|_| err(format!("class `{line}` is not an integer")))?;
        if c != EXPR_INVALID && !(0..EXPRESSIONS.len() as i64).contains(&c) {
            return Err(err(format!(
                "class {c} is outside 0..=7 and not the invalid marker -1"
            )));
        }
        out.push(c);
    }
    Ok(out)
}

fn read_text(path: &Path) -> Result<String, DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    String::from_utf8(bytes).map_err(|e| DataError::Annotation {
        path: path.to_owned(),
        line: 1,
        message: format!("not UTF-8 text ({e})"),
    })
}

/// Reads a VA file.
pub fn read_va(path: &Path) -> Result<VaLabels, DataError> {
    parse_va(&read_text(path)?, path)
}

/// Reads an EXPR file.
pub fn read_expr(path: &Path) -> Result<ExprLabels, DataError> {
    parse_expr(&read_text(path)?, path)
}

/// The text of a VA file. Values that are not valid (outside [-1, 1], NaN) are written
/// as the invalid marker `-5`, so the output always parses.
pub fn format_va(frames: &[[f32; 2]]) -> String {
    let mut s = String::with_capacity(16 * (frames.len() + 1));
    s.push_str(VA_HEADER);
    s.push('\n');
    for f in frames {
        let valid = |v: f32| v.is_finite() && (-1.0..=1.0).contains(&v);
        if valid(f[0]) && valid(f[1]) {
            s.push_str(&format!("{},{}\n", f[0], f[1]));
        } else {
            s.push_str("-5,-5\n");
        }
    }
    s
}

/// The text of an EXPR file; classes outside 0..=7 are written as `-1`.
pub fn format_expr(frames: &[i64]) -> String {
    let mut s = expr_header();
    s.push('\n');
    for &c in frames {
        let c = if (0..EXPRESSIONS.len() as i64).contains(&c) {
            c
        } else {
            EXPR_INVALID
        };
        s.push_str(&format!("{c}\n"));
    }
    s
}

/// Writes a VA file atomically ([`format_va`]).
pub fn write_va(path: &Path, frames: &[[f32; 2]]) -> Result<(), DataError> {
    write_atomic(path, format_va(frames).as_bytes())
}

/// Writes an EXPR file atomically ([`format_expr`]).
pub fn write_expr(path: &Path, frames: &[i64]) -> Result<(), DataError> {
    write_atomic(path, format_expr(frames).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> &'static Path {
        Path::new("video1.txt")
    }

    fn annotation_err(r: Result<impl std::fmt::Debug, DataError>) -> (usize, String) {
        match r {
            Err(DataError::Annotation { line, message, .. }) => (line, message),
            other => panic!("expected an annotation error, got {other:?}"),
        }
    }

    #[test]
    fn va_parses_with_invalid_frames_and_crlf() {
        let text = "valence,arousal\r\n0.5,-0.25\r\n-5,-5\r\n 1 , -1 \r\n\r\n";
        let va = parse_va(text, p()).unwrap();
        assert_eq!(va, vec![[0.5, -0.25], [-5.0, -5.0], [1.0, -1.0]]);
        // Header only: zero frames.
        assert!(parse_va("valence,arousal\n", p()).unwrap().is_empty());
    }

    #[test]
    fn va_errors_name_file_and_line() {
        let (line, msg) = annotation_err(parse_va("valence;arousal\n0,0\n", p()));
        assert_eq!(line, 1);
        assert!(msg.contains("bad header `valence;arousal`"), "{msg}");
        let (line, msg) = annotation_err(parse_va("valence,arousal\n0,0\n0.1,abc\n", p()));
        assert_eq!(line, 3);
        assert!(msg.contains("arousal `abc` is not a number"), "{msg}");
        let (line, msg) = annotation_err(parse_va("valence,arousal\n0,0\n0,0\n1.5,0\n", p()));
        assert_eq!(line, 4);
        assert!(msg.contains("outside [-1, 1]"), "{msg}");
        let (line, msg) = annotation_err(parse_va("valence,arousal\n0,0,0\n", p()));
        assert_eq!(line, 2);
        assert!(msg.contains("3 field(s)"), "{msg}");
        let (line, msg) = annotation_err(parse_va("valence,arousal\n0,0\n\n0,0\n", p()));
        assert_eq!(line, 3);
        assert!(msg.contains("empty line"), "{msg}");
        let (line, _) = annotation_err(parse_va("", p()));
        assert_eq!(line, 1);
        let (_, msg) = annotation_err(parse_va("valence,arousal\nNaN,0\n", p()));
        assert!(msg.contains("outside"), "{msg}");
        // The Display form names file and line.
        let e = parse_va("valence,arousal\nx,0\n", p()).unwrap_err();
        assert!(e.to_string().starts_with("video1.txt:2: "), "{e}");
    }

    #[test]
    fn expr_parses_and_reports_errors() {
        let text = "Neutral,Anger,Disgust,Fear,Happiness,Sadness,Surprise,Other\n0\n7\n-1\n4\n";
        assert_eq!(parse_expr(text, p()).unwrap(), vec![0, 7, -1, 4]);
        let (line, msg) = annotation_err(parse_expr("Neutral,Anger\n0\n", p()));
        assert_eq!(line, 1);
        assert!(msg.contains("expected `Neutral,Anger,Disgust"), "{msg}");
        let h = expr_header();
        let (line, msg) = annotation_err(parse_expr(&format!("{h}\n0\n8\n"), p()));
        assert_eq!(line, 3);
        assert!(msg.contains("class 8 is outside 0..=7"), "{msg}");
        let (line, msg) = annotation_err(parse_expr(&format!("{h}\n0.5\n"), p()));
        assert_eq!(line, 2);
        assert!(msg.contains("not an integer"), "{msg}");
        let (_, msg) = annotation_err(parse_expr(&format!("{h}\n-2\n"), p()));
        assert!(msg.contains("class -2"), "{msg}");
    }

    #[test]
    fn round_trips_through_files() {
        let dir = std::env::temp_dir().join(format!("affect-ann-{}", std::process::id()));
        let va = vec![[0.125f32, -0.5], [-5.0, -5.0], [1.0, 0.0], [-0.3, 0.7]];
        let vp = dir.join("VA").join("a.txt");
        write_va(&vp, &va).unwrap();
        assert_eq!(read_va(&vp).unwrap(), va);
        let ex = vec![0i64, -1, 7, 3, 3];
        let ep = dir.join("EXPR").join("a.txt");
        write_expr(&ep, &ex).unwrap();
        assert_eq!(read_expr(&ep).unwrap(), ex);
        // Unwritable values become the invalid markers.
        assert_eq!(
            format_va(&[[f32::NAN, 0.0], [2.0, 0.0]]),
            "valence,arousal\n-5,-5\n-5,-5\n"
        );
        assert!(format_expr(&[9, -3]).ends_with("\n-1\n-1\n"));
        // A missing file names the path.
        let e = read_va(&dir.join("missing.txt")).unwrap_err();
        assert!(e.to_string().contains("missing.txt"), "{e}");
        std::fs::write(dir.join("bin.txt"), [0xff, 0xfe, 0x00]).unwrap();
        let (line, msg) = annotation_err(read_va(&dir.join("bin.txt")));
        assert_eq!(line, 1);
        assert!(msg.contains("UTF-8"), "{msg}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
