// SPDX-License-Identifier: MPL-2.0
//! Fuzz tests of the readers of untrusted files: the NDJSON result reader
//! ([`AffectRecord::from_json_line`]) and the Aff-Wild2 annotation readers
//! ([`affect::dataset::annotations`]). Random bytes (random lengths, invalid UTF-8) and
//! mutated valid inputs, from a seeded generator (the same cases on every run): no
//! panic, errors are `Err` values, valid inputs round-trip.

use std::path::{Path, PathBuf};

use affect::dataset::DataError;
use affect::dataset::annotations::{
    format_expr, format_va, parse_expr, parse_va, read_expr, read_va,
};
use affect::results::{AffectRecord, FaceAffect, FaceBox};

/// splitmix64: small, seeded, good enough to pick bytes and mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
    fn chance(&mut self, p: f32) -> bool {
        self.unit() < p
    }
    /// Random bytes: uniform, ASCII-heavy, or from the readers' own alphabet.
    fn bytes(&mut self, max_len: usize) -> Vec<u8> {
        let len = self.below(max_len + 1);
        let mode = self.below(3);
        const ALPHABET: &[u8] = b"{}[]\":,.-+eE0123456789 \n\r\tnulltruefalseNaNpts_boxvalence";
        (0..len)
            .map(|_| match mode {
                0 => self.next() as u8,
                1 => (self.below(0x60) + 0x20) as u8,
                _ => ALPHABET[self.below(ALPHABET.len())],
            })
            .collect()
    }
}

/// Tokens that stress number and string parsing when spliced into a valid input.
const NASTY: &[&str] = &[
    "NaN",
    "-NaN",
    "inf",
    "-inf",
    "1e999",
    "-1e999",
    "1e-999",
    "340282366920938463463374607431768211456",
    "-9223372036854775809",
    "18446744073709551616",
    "0x10",
    "-0",
    "",
    "\"",
    "\\u0000",
    "\u{feff}",
    "é",
    "\u{10ffff}",
    "null",
    "[]",
    "{}",
    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
    ",",
    "\n",
    "\r\n",
    "-5",
    "-1",
    "8",
    "1.0000001",
];

/// Mutates `input`: byte flips, insertions, deletions, truncation, splices of
/// [`NASTY`] tokens and repeats of a slice. May produce invalid UTF-8.
fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(v.len() + 1);
        match rng.below(6) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 => v.insert(at, rng.next() as u8),
            2 if at < v.len() => {
                let n = rng.below(v.len() - at + 1);
                v.drain(at..at + n);
            }
            3 => v.truncate(at),
            4 => {
                let t = NASTY[rng.below(NASTY.len())].as_bytes();
                let n = rng.below(8).min(v.len() - at);
                v.splice(at..at + n, t.iter().copied());
            }
            _ if at < v.len() => {
                let n = rng.below(v.len() - at).min(64);
                let piece = v[at..at + n].to_vec();
                let to = rng.below(v.len() + 1);
                v.splice(to..to, piece);
            }
            _ => {}
        }
    }
    v
}

fn random_record(rng: &mut Rng) -> AffectRecord {
    let mut p = [0.0f32; 8];
    for x in &mut p {
        *x = rng.unit();
    }
    let s: f32 = p.iter().sum();
    if s > 0.0 {
        for x in &mut p {
            *x /= s;
        }
    }
    let opt = |rng: &mut Rng| rng.chance(0.5).then(|| rng.next() >> rng.below(64));
    let mut r = AffectRecord::new(
        rng.next(),
        FaceAffect {
            track_id: rng.next() >> rng.below(64),
            bbox: FaceBox {
                x: rng.unit() * 4000.0 - 100.0,
                y: rng.unit() * 4000.0 - 100.0,
                width: rng.unit() * 1000.0,
                height: rng.unit() * 1000.0,
            },
            valence: rng.unit() * 2.0 - 1.0,
            arousal: rng.unit() * 2.0 - 1.0,
            probabilities: p,
            ..Default::default()
        },
    );
    r.duration = opt(rng);
    r.running_time = opt(rng);
    r.stream_time = opt(rng);
    r
}

/// Checks the invariants of whatever `from_json_line` accepted: finite values, valence
/// and arousal in range, a known expression.
fn check_accepted(r: &AffectRecord, line: &str) {
    let f = &r.face;
    let finite = [
        f.valence,
        f.arousal,
        f.bbox.x,
        f.bbox.y,
        f.bbox.width,
        f.bbox.height,
    ]
    .iter()
    .chain(&f.probabilities)
    .all(|v| v.is_finite());
    assert!(finite, "accepted a non-finite value: {line:?}");
    assert!((-1.0..=1.0).contains(&f.valence) && (-1.0..=1.0).contains(&f.arousal));
    assert!(
        affect::results::expression_index(&r.expression).is_ok(),
        "{line:?}"
    );
}

#[test]
fn ndjson_line_reader_survives_random_bytes() {
    let mut rng = Rng(0x5eed_0001);
    for _ in 0..50_000 {
        let b = rng.bytes(300);
        // The reader takes text: lossy conversion of invalid UTF-8, as a line reader
        // that does not check would hand it over, and the valid-UTF-8 prefix.
        let lossy = String::from_utf8_lossy(&b).into_owned();
        if let Ok(r) = AffectRecord::from_json_line(&lossy) {
            check_accepted(&r, &lossy);
        }
        let valid = match std::str::from_utf8(&b) {
            Ok(s) => s,
            Err(e) => std::str::from_utf8(&b[..e.valid_up_to()]).unwrap(),
        };
        if let Ok(r) = AffectRecord::from_json_line(valid) {
            check_accepted(&r, valid);
        }
    }
}

#[test]
fn ndjson_valid_lines_round_trip_and_mutations_do_not_panic() {
    let mut rng = Rng(0x5eed_0002);
    let mut accepted_mutants = 0usize;
    for i in 0..5_000 {
        let r = random_record(&mut rng);
        let line = r.to_json_line();
        assert!(!line.contains('\n'));
        let back = AffectRecord::from_json_line(&line)
            .unwrap_or_else(|e| panic!("valid line refused ({e}): {line}"));
        assert_eq!(back, r, "{line}");
        assert_eq!(back.to_json_line(), line);
        // A partial line (what a full disk leaves) never parses.
        let cut = rng.below(line.len());
        assert!(
            AffectRecord::from_json_line(&line[..cut]).is_err(),
            "a partial line parsed: {:?}",
            &line[..cut]
        );
        for _ in 0..10 {
            let m = mutate(&mut rng, line.as_bytes());
            let text = String::from_utf8_lossy(&m);
            match AffectRecord::from_json_line(&text) {
                Ok(r) => {
                    check_accepted(&r, &text);
                    accepted_mutants += 1;
                }
                Err(e) => assert!(!e.is_empty(), "empty error for {text:?}"),
            }
        }
        if i % 500 == 0 {
            // Records with out-of-range values are refused or clamped, never NaN.
            let mut bad = r.clone();
            bad.face.valence = 7.0;
            let got = AffectRecord::from_json_line(&bad.to_json_line()).unwrap();
            assert_eq!(got.face.valence, 1.0);
        }
    }
    // The mutations are not all fatal: some still parse (e.g. a changed digit).
    assert!(accepted_mutants > 0);
}

fn p() -> &'static Path {
    Path::new("fuzz.txt")
}

/// An annotation error names the file and a line inside the text (or line 1).
fn check_annotation_err(e: &DataError, text_lines: usize) {
    match e {
        DataError::Annotation {
            path,
            line,
            message,
        } => {
            assert_eq!(path, p());
            assert!(*line >= 1 && *line <= text_lines.max(1), "line {line}");
            assert!(!message.is_empty());
        }
        other => panic!("not an annotation error: {other:?}"),
    }
}

fn random_va(rng: &mut Rng) -> Vec<[f32; 2]> {
    (0..rng.below(50))
        .map(|_| {
            if rng.chance(0.1) {
                [-5.0, -5.0]
            } else {
                [rng.unit() * 2.0 - 1.0, rng.unit() * 2.0 - 1.0]
            }
        })
        .collect()
}

fn random_expr(rng: &mut Rng) -> Vec<i64> {
    (0..rng.below(50))
        .map(|_| rng.below(9) as i64 - 1)
        .collect()
}

#[test]
fn annotation_parsers_survive_random_and_mutated_text() {
    let mut rng = Rng(0x5eed_0003);
    for _ in 0..3_000 {
        let va = random_va(&mut rng);
        let va_text = format_va(&va);
        assert_eq!(parse_va(&va_text, p()).unwrap(), va, "{va_text}");
        let ex = random_expr(&mut rng);
        let ex_text = format_expr(&ex);
        assert_eq!(parse_expr(&ex_text, p()).unwrap(), ex, "{ex_text}");
        for base in [va_text.as_bytes(), ex_text.as_bytes()] {
            for _ in 0..5 {
                let m = mutate(&mut rng, base);
                let text = String::from_utf8_lossy(&m);
                let lines = text.lines().count();
                match parse_va(&text, p()) {
                    Ok(v) => assert!(
                        v.iter()
                            .flatten()
                            .all(|x| *x == -5.0 || (x.is_finite() && (-1.0..=1.0).contains(x)))
                    ),
                    Err(e) => check_annotation_err(&e, lines),
                }
                match parse_expr(&text, p()) {
                    Ok(v) => assert!(v.iter().all(|c| (-1..=7).contains(c))),
                    Err(e) => check_annotation_err(&e, lines),
                }
            }
        }
    }
    for _ in 0..10_000 {
        let b = rng.bytes(200);
        let text = String::from_utf8_lossy(&b);
        let lines = text.lines().count();
        if let Err(e) = parse_va(&text, p()) {
            check_annotation_err(&e, lines);
        }
        if let Err(e) = parse_expr(&text, p()) {
            check_annotation_err(&e, lines);
        }
    }
}

fn scratch() -> PathBuf {
    let d = std::env::temp_dir().join(format!("affect-reader-fuzz-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The file readers get raw bytes, invalid UTF-8 included: an error naming the file.
#[test]
fn annotation_file_readers_survive_random_bytes() {
    let dir = scratch();
    let mut rng = Rng(0x5eed_0004);
    for i in 0..500 {
        let path = dir.join(format!("f{}.txt", i % 7));
        let b = if rng.chance(0.5) {
            rng.bytes(400)
        } else {
            let base = if rng.chance(0.5) {
                format_va(&random_va(&mut rng))
            } else {
                format_expr(&random_expr(&mut rng))
            };
            mutate(&mut rng, base.as_bytes())
        };
        std::fs::write(&path, &b).unwrap();
        for e in [read_va(&path).err(), read_expr(&path).err()]
            .into_iter()
            .flatten()
        {
            let msg = e.to_string();
            assert!(msg.contains(&format!("f{}.txt", i % 7)), "{msg}");
            if std::str::from_utf8(&b).is_err() {
                assert!(msg.contains("UTF-8"), "{msg}");
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
