// SPDX-License-Identifier: MPL-2.0
//! What to annotate: inputs from the command line and list files, their URIs, and the
//! deterministic slice (`--shard I/N`) a process takes.

use std::path::{Path, PathBuf};

/// One input, as given and as GStreamer opens it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    /// The input as the user wrote it (a path or a URI).
    pub spec: String,
    /// The URI `uridecodebin` opens.
    pub uri: String,
    /// The local file, when the input is one (a path or a `file://` URI).
    pub local: Option<PathBuf>,
}

impl Input {
    /// Parses a path or a URI. Relative paths are made absolute against the current
    /// folder, so that the same list gives the same keys wherever the run starts from the
    /// same folder.
    pub fn parse(spec: &str) -> Result<Input, String> {
        let spec = spec.trim();
        if spec.is_empty() {
            return Err("empty input".into());
        }
        if let Some((scheme, _)) = spec.split_once("://")
            && !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        {
            let local = if scheme.eq_ignore_ascii_case("file") {
                Some(
                    gst::glib::filename_from_uri(spec)
                        .map_err(|e| format!("{spec}: not a valid file URI ({e})"))?
                        .0,
                )
            } else {
                None
            };
            return Ok(Input {
                spec: spec.to_owned(),
                uri: spec.to_owned(),
                local,
            });
        }
        let path = absolute(Path::new(spec));
        let uri = gst::glib::filename_to_uri(&path, None)
            .map_err(|e| format!("{spec}: cannot make a URI of this path ({e})"))?
            .to_string();
        Ok(Input {
            spec: spec.to_owned(),
            uri,
            local: Some(path),
        })
    }

    /// The name the input is known by in keys and result folders: the absolute path of a
    /// local file, else the URI.
    pub fn canonical(&self) -> String {
        match &self.local {
            Some(p) => p.to_string_lossy().into_owned(),
            None => self.uri.clone(),
        }
    }
}

/// `path` made absolute against the current folder (without touching the file system
/// otherwise: the file may not exist).
fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_owned()
    } else {
        std::env::current_dir()
            .map(|d| d.join(path))
            .unwrap_or_else(|_| path.to_owned())
    }
}

/// Reads a list file: one input per line; blank lines and lines starting with `#` are
/// skipped. `-` reads standard input.
pub fn read_list(path: &Path) -> Result<Vec<String>, String> {
    let text = if path == Path::new("-") {
        std::io::read_to_string(std::io::stdin()).map_err(|e| format!("standard input: {e}"))?
    } else {
        std::fs::read_to_string(path).map_err(|e| format!("list {}: {e}", path.display()))?
    };
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect())
}

/// A slice of the input list: input `j` (0-based, in list order after removing
/// duplicates) belongs to shard `j mod count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This process's slice, `0..count`.
    pub index: usize,
    /// Number of slices.
    pub count: usize,
}

impl Shard {
    /// Parses `I/N`.
    pub fn parse(s: &str) -> Result<Shard, String> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("--shard {s}: expected I/N, e.g. 0/4"))?;
        let index = i
            .trim()
            .parse::<usize>()
            .map_err(|_| format!("--shard {s}: `{i}` is not a shard index"))?;
        let count = n
            .trim()
            .parse::<usize>()
            .map_err(|_| format!("--shard {s}: `{n}` is not a shard count"))?;
        Shard::new(index, count).map_err(|e| format!("--shard {s}: {e}"))
    }

    /// A checked shard.
    pub fn new(index: usize, count: usize) -> Result<Shard, String> {
        if count == 0 {
            return Err("the shard count must be at least 1".into());
        }
        if index >= count {
            return Err(format!(
                "shard index {index} is not below the count {count}"
            ));
        }
        Ok(Shard { index, count })
    }

    /// The shard of a Kubernetes Indexed Job pod: index from `JOB_COMPLETION_INDEX`.
    pub fn from_job_index(count: usize) -> Result<Shard, String> {
        let v = std::env::var("JOB_COMPLETION_INDEX")
            .map_err(|_| "--shards needs JOB_COMPLETION_INDEX (set by an Indexed Job)")?;
        let index = v
            .trim()
            .parse::<usize>()
            .map_err(|_| format!("JOB_COMPLETION_INDEX `{v}` is not a number"))?;
        Shard::new(index, count)
    }

    /// Whether the `position`-th input (0-based) is in this slice.
    pub fn takes(&self, position: usize) -> bool {
        position % self.count == self.index
    }
}

/// The inputs of one process: `specs` parsed, duplicates (same canonical name) removed
/// keeping the first, then the shard's slice. Unparseable inputs are returned as errors
/// in their place so that the run reports them.
pub fn select(specs: &[String], shard: Option<Shard>) -> Vec<Result<Input, (String, String)>> {
    let mut seen = std::collections::HashSet::new();
    let mut all = Vec::new();
    for s in specs {
        match Input::parse(s) {
            Ok(i) => {
                if seen.insert(i.canonical()) {
                    all.push(Ok(i));
                }
            }
            Err(e) => {
                if seen.insert(s.clone()) {
                    all.push(Err((s.clone(), e)));
                }
            }
        }
    }
    all.into_iter()
        .enumerate()
        .filter(|(j, _)| shard.is_none_or(|sh| sh.takes(*j)))
        .map(|(_, i)| i)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_the_list_once() {
        let specs: Vec<String> = (0..23).map(|i| format!("/m/{i}.mp4")).collect();
        let mut seen = Vec::new();
        for i in 0..4 {
            for x in select(&specs, Some(Shard::new(i, 4).unwrap())) {
                seen.push(x.unwrap().spec);
            }
        }
        seen.sort();
        let mut want = specs.clone();
        want.sort();
        assert_eq!(seen, want);
    }

    #[test]
    fn parses_uris_and_paths() {
        let i = Input::parse("rtsp://cam/1").unwrap();
        assert_eq!(i.uri, "rtsp://cam/1");
        assert!(i.local.is_none());
        let p = Input::parse("/tmp/a b.mp4").unwrap();
        assert_eq!(p.uri, "file:///tmp/a%20b.mp4");
        assert_eq!(Input::parse(&p.uri).unwrap().local, p.local);
        assert!(Shard::parse("4/4").is_err());
        assert!(Shard::parse("x").is_err());
        assert_eq!(Shard::parse("1/3").unwrap(), Shard { index: 1, count: 3 });
    }
}
