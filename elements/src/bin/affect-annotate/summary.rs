// SPDX-License-Identifier: MPL-2.0
//! The per-input summary (`summary.json`) and the run summary.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};

use crate::pipeline::RunOutcome;

/// What the NDJSON of one input says, in numbers.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ResultStats {
    /// Face records (one per face per frame).
    pub faces: u64,
    /// Distinct face tracks.
    pub tracks: Vec<u64>,
    /// Mean valence over the face records (None without any).
    pub mean_valence: Option<f64>,
    /// Mean arousal over the face records.
    pub mean_arousal: Option<f64>,
    /// Top expression counts, every class listed.
    pub expressions: BTreeMap<String, u64>,
}

/// Reads `avfuse`'s NDJSON (a missing file is an input without faces).
pub fn read_stats(ndjson: &Path) -> Result<ResultStats, String> {
    let mut st = ResultStats::default();
    for e in affect::EXPRESSIONS {
        st.expressions.insert(e.to_owned(), 0);
    }
    use std::io::BufRead;
    // Line by line: hours of video with several faces make files of hundreds of MB.
    let file = match std::fs::File::open(ndjson) {
        Ok(f) => std::io::BufReader::new(f),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(st),
        Err(e) => return Err(format!("{}: {e}", ndjson.display())),
    };
    let (mut sv, mut sa) = (0.0f64, 0.0f64);
    let mut tracks = std::collections::BTreeSet::new();
    for (n, line) in file.lines().enumerate() {
        let line = line.map_err(|e| format!("{}: {e}", ndjson.display()))?;
        let r = affect::results::AffectRecord::from_json_line(&line)
            .map_err(|e| format!("{} line {}: {e}", ndjson.display(), n + 1))?;
        st.faces += 1;
        sv += f64::from(r.face.valence);
        sa += f64::from(r.face.arousal);
        tracks.insert(r.face.track_id);
        *st.expressions.entry(r.expression.clone()).or_default() += 1;
    }
    if st.faces > 0 {
        st.mean_valence = Some(sv / st.faces as f64);
        st.mean_arousal = Some(sa / st.faces as f64);
    }
    st.tracks = tracks.into_iter().collect();
    Ok(st)
}

/// The summary of an input that went through.
pub fn success(
    base: Value,
    out: &RunOutcome,
    stats: &ResultStats,
    wall_s: f64,
    outputs: Vec<String>,
) -> Value {
    let media_s = out.media_ns as f64 / 1e9;
    let mut v = base;
    let fields = json!({
        "status": "ok",
        "streams": { "video": out.has_video, "audio": out.has_audio },
        "frames": out.frames,
        "faces": stats.faces,
        "tracks": stats.tracks.len(),
        "track_ids": stats.tracks,
        "mean_valence": stats.mean_valence,
        "mean_arousal": stats.mean_arousal,
        "expressions": stats.expressions,
        "speech_segments": out.speech.iter().filter(|s| s.event == "speech-start").count(),
        "media_seconds": media_s,
        "wall_seconds": wall_s,
        "real_time_factor": if wall_s > 0.0 { media_s / wall_s } else { 0.0 },
        "errors": [],
        "warnings": out.warnings,
        "outputs": outputs,
    });
    merge(&mut v, fields);
    v
}

/// The summary of an input that failed.
pub fn failure(base: Value, error: &str, wall_s: f64) -> Value {
    let mut v = base;
    merge(
        &mut v,
        json!({
            "status": "failed",
            "error": error,
            "errors": [error],
            "wall_seconds": wall_s,
            "outputs": [],
        }),
    );
    v
}

fn merge(into: &mut Value, from: Value) {
    if let (Some(a), Value::Object(b)) = (into.as_object_mut(), from) {
        a.extend(b);
    }
}
