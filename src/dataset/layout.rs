// SPDX-License-Identifier: MPL-2.0
//! A data root in the Aff-Wild2 layout, subjects, splits, folds and training windows.
//!
//! ```text
//! <root>/annotations/VA_Estimation_Challenge/Train_Set/<name>.txt
//! <root>/annotations/VA_Estimation_Challenge/Validation_Set/<name>.txt
//! <root>/annotations/EXPR_Recognition_Challenge/Train_Set/<name>.txt
//! <root>/annotations/EXPR_Recognition_Challenge/Validation_Set/<name>.txt
//! <root>/features/<name>.safetensors
//! ```
//!
//! `<name>` is the video's file stem, or stem + `_left` / `_right` for a video with two
//! annotated subjects. An annotation is matched with the feature file of the same name.
//! Aff-Wild2 annotations are often a line longer or shorter than the video: a subject
//! uses the common prefix of both and says so ([`Subject::trimmed`]).
//!
//! Splits are the folders. For k-fold cross-validation ([`Fold`]) the videos of both
//! folders are pooled and dealt into K folds by a seeded shuffle; the two subjects of a
//! video stay in the same fold.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::DataError;
use super::annotations::{ExprLabels, VaLabels, read_expr, read_va};
use super::features::FeatureFile;
use super::sequences::{SequenceSet, Task};
use crate::metrics::{EXPR_INVALID, VA_INVALID};

/// The annotation folder of a task.
pub fn task_folder(task: Task) -> &'static str {
    match task {
        Task::Va => "VA_Estimation_Challenge",
        Task::Expr => "EXPR_Recognition_Challenge",
    }
}

/// A split as given by the Aff-Wild2 folders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// `Train_Set`.
    Train,
    /// `Validation_Set`.
    Validation,
}

impl Split {
    /// The folder name.
    pub fn folder(self) -> &'static str {
        match self {
            Split::Train => "Train_Set",
            Split::Validation => "Validation_Set",
        }
    }
}

/// Fold `index` (1-based) of `count`, e.g. `2/6`; the fold's videos are the validation
/// set, the other folds the training set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fold {
    /// 1..=count.
    pub index: usize,
    /// K ≥ 2.
    pub count: usize,
}

impl std::str::FromStr for Fold {
    type Err = DataError;

    /// Parses `k/K` with 1 ≤ k ≤ K and K ≥ 2.
    fn from_str(s: &str) -> Result<Self, DataError> {
        let bad = || {
            DataError::Layout(format!(
                "fold `{s}`: expected k/K with 1 <= k <= K and K >= 2, e.g. 1/6"
            ))
        };
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let index: usize = k.trim().parse().map_err(|_| bad())?;
        let count: usize = n.trim().parse().map_err(|_| bad())?;
        if count < 2 || index == 0 || index > count {
            return Err(bad());
        }
        Ok(Fold { index, count })
    }
}

/// The labels of one subject.
#[derive(Debug, Clone, PartialEq)]
pub enum Labels {
    /// Valence, arousal per frame (-5 invalid).
    Va(VaLabels),
    /// Class per frame (-1 invalid).
    Expr(ExprLabels),
}

impl Labels {
    /// Frames labelled (valid or not).
    pub fn len(&self) -> usize {
        match self {
            Labels::Va(v) => v.len(),
            Labels::Expr(v) => v.len(),
        }
    }

    /// `true` without frames.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Frames with a valid label.
    pub fn valid(&self) -> usize {
        match self {
            Labels::Va(v) => v
                .iter()
                .filter(|f| f[0] != VA_INVALID && f[1] != VA_INVALID)
                .count(),
            Labels::Expr(v) => v.iter().filter(|&&c| c != EXPR_INVALID).count(),
        }
    }

    fn truncate(&mut self, n: usize) {
        match self {
            Labels::Va(v) => v.truncate(n),
            Labels::Expr(v) => v.truncate(n),
        }
    }
}

/// One annotated subject with its features, cut to the frames both files have.
#[derive(Debug, Clone, PartialEq)]
pub struct Subject {
    /// The annotation / feature file stem.
    pub name: String,
    /// Features, `frames` rows.
    pub features: FeatureFile,
    /// Labels, `frames` rows.
    pub labels: Labels,
    /// `Some((annotation frames, feature frames))` when the two differed and the common
    /// prefix is used.
    pub trimmed: Option<(usize, usize)>,
}

impl Subject {
    /// Frames used.
    pub fn frames(&self) -> usize {
        self.features.frames()
    }

    /// A sentence about a length mismatch, if there was one.
    pub fn trim_note(&self) -> Option<String> {
        self.trimmed.map(|(a, f)| {
            format!(
                "{}: annotation has {a} frames, features {f}: using the first {}",
                self.name,
                a.min(f)
            )
        })
    }
}

/// The video a subject belongs to: its name without `_left` / `_right`.
pub fn video_of(name: &str) -> &str {
    name.strip_suffix("_left")
        .or_else(|| name.strip_suffix("_right"))
        .unwrap_or(name)
}

/// SplitMix64: a small deterministic generator for shuffles.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Deals `names` into `k` folds: videos ([`video_of`]) sorted, shuffled with `seed`
/// (Fisher–Yates, SplitMix64) and dealt round-robin; returns each name's fold, 0-based.
/// The same names, `k` and `seed` always give the same folds.
pub fn kfold(names: &[String], k: usize, seed: u64) -> Vec<usize> {
    let k = k.max(1);
    let mut videos: Vec<&str> = names.iter().map(|n| video_of(n)).collect();
    videos.sort_unstable();
    videos.dedup();
    let mut state = seed;
    for i in (1..videos.len()).rev() {
        let j = (splitmix(&mut state) % (i as u64 + 1)) as usize;
        videos.swap(i, j);
    }
    let fold: BTreeMap<&str, usize> = videos
        .iter()
        .enumerate()
        .map(|(i, v)| (*v, i % k))
        .collect();
    names.iter().map(|n| fold[video_of(n)]).collect()
}

/// A data root in the Aff-Wild2 layout.
#[derive(Debug, Clone)]
pub struct DataRoot {
    root: PathBuf,
}

impl DataRoot {
    /// `root` must be a folder.
    pub fn new(root: &Path) -> Result<Self, DataError> {
        if !root.is_dir() {
            return Err(DataError::Layout(format!(
                "data root {} is not a folder",
                root.display()
            )));
        }
        Ok(DataRoot {
            root: root.to_owned(),
        })
    }

    /// The root folder.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// `<root>/annotations/<task folder>/<split folder>`.
    pub fn annotation_dir(&self, task: Task, split: Split) -> PathBuf {
        self.root
            .join("annotations")
            .join(task_folder(task))
            .join(split.folder())
    }

    /// `<root>/features`.
    pub fn features_dir(&self) -> PathBuf {
        self.root.join("features")
    }

    /// `<root>/features/<name>.safetensors`.
    pub fn feature_path(&self, name: &str) -> PathBuf {
        self.features_dir().join(format!("{name}.safetensors"))
    }

    /// Names (stems) of the annotation files of a split, sorted. A missing folder is an
    /// error naming it.
    pub fn names(&self, task: Task, split: Split) -> Result<Vec<String>, DataError> {
        let dir = self.annotation_dir(task, split);
        let rd = std::fs::read_dir(&dir).map_err(|e| DataError::io(&dir, e))?;
        let mut out = Vec::new();
        for e in rd {
            let e = e.map_err(|e| DataError::io(&dir, e))?;
            let p = e.path();
            if p.is_file()
                && p.extension().is_some_and(|x| x == "txt")
                && let Some(stem) = p.file_stem().and_then(|s| s.to_str())
            {
                out.push(stem.to_owned());
            }
        }
        out.sort();
        Ok(out)
    }

    /// The annotation files selected by a split, or by a fold of the pooled Train_Set +
    /// Validation_Set (`Split::Validation` = the fold, `Split::Train` = the other folds):
    /// `(name, annotation path)`, sorted by name. A name in both folders is taken from
    /// Train_Set. Errors: missing folders (both, for a fold), nothing selected.
    pub fn select(
        &self,
        task: Task,
        split: Split,
        fold: Option<(Fold, u64)>,
    ) -> Result<Vec<(String, PathBuf)>, DataError> {
        let mut out: Vec<(String, PathBuf)> = Vec::new();
        match fold {
            None => {
                let dir = self.annotation_dir(task, split);
                for n in self.names(task, split)? {
                    let p = dir.join(format!("{n}.txt"));
                    out.push((n, p));
                }
            }
            Some((fold, seed)) => {
                let mut pool: BTreeMap<String, PathBuf> = BTreeMap::new();
                let mut found = false;
                for s in [Split::Validation, Split::Train] {
                    let dir = self.annotation_dir(task, s);
                    if !dir.is_dir() {
                        continue;
                    }
                    found = true;
                    for n in self.names(task, s)? {
                        let p = dir.join(format!("{n}.txt"));
                        pool.insert(n, p);
                    }
                }
                if !found {
                    return Err(DataError::Layout(format!(
                        "no annotation folder {} or {}",
                        self.annotation_dir(task, Split::Train).display(),
                        self.annotation_dir(task, Split::Validation).display()
                    )));
                }
                let names: Vec<String> = pool.keys().cloned().collect();
                let folds = kfold(&names, fold.count, seed);
                for (n, f) in names.into_iter().zip(folds) {
                    let in_fold = f + 1 == fold.index;
                    if in_fold == (split == Split::Validation) {
                        let p = pool.remove(&n).unwrap_or_default();
                        out.push((n, p));
                    }
                }
            }
        }
        if out.is_empty() {
            return Err(DataError::Layout(format!(
                "no {} annotation selected in {} ({}{})",
                task_folder(task),
                self.root.display(),
                split.folder(),
                fold.map(|(f, _)| format!(", fold {}/{}", f.index, f.count))
                    .unwrap_or_default()
            )));
        }
        Ok(out)
    }

    /// Reads one subject: the annotation at `annotation` and `features/<name>.safetensors`,
    /// cut to their common prefix. A missing feature file is an error naming it (run
    /// `affect-train extract`).
    pub fn load_subject(
        &self,
        task: Task,
        name: &str,
        annotation: &Path,
    ) -> Result<Subject, DataError> {
        let mut labels = match task {
            Task::Va => Labels::Va(read_va(annotation)?),
            Task::Expr => Labels::Expr(read_expr(annotation)?),
        };
        let fpath = self.feature_path(name);
        if !fpath.is_file() {
            return Err(DataError::Layout(format!(
                "no feature file {} for annotation {} (run affect-train extract)",
                fpath.display(),
                annotation.display()
            )));
        }
        let mut features = FeatureFile::read(&fpath)?;
        let (a, f) = (labels.len(), features.frames());
        let n = a.min(f);
        labels.truncate(n);
        features.truncate(n);
        Ok(Subject {
            name: name.to_owned(),
            features,
            labels,
            trimmed: (a != f).then_some((a, f)),
        })
    }

    /// [`Self::select`] then [`Self::load_subject`] for each; all subjects must share
    /// the feature dimensions (else an error naming the first file that differs).
    pub fn load(
        &self,
        task: Task,
        split: Split,
        fold: Option<(Fold, u64)>,
    ) -> Result<Vec<Subject>, DataError> {
        let mut out: Vec<Subject> = Vec::new();
        for (name, path) in self.select(task, split, fold)? {
            let s = self.load_subject(task, &name, &path)?;
            if let Some(first) = out.first() {
                let dims = |s: &Subject| (s.features.visual_dim, s.features.audio_dim);
                if dims(first) != dims(&s) {
                    return Err(DataError::Features {
                        path: self.feature_path(&name),
                        message: format!(
                            "visual/audio dimensions {:?} differ from {:?} of {}",
                            dims(&s),
                            dims(first),
                            first.name
                        ),
                    });
                }
            }
            out.push(s);
        }
        Ok(out)
    }
}

/// Where each window of [`sequences`] comes from: subject index and first frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowOrigin {
    /// Index into the subjects.
    pub subject: usize,
    /// First frame of the window.
    pub start: usize,
    /// Real (unpadded) frames in the window.
    pub len: usize,
}

/// Cuts subjects into windows of `t` frames every `hop` frames, starting at frame 0;
/// the last window of a subject (the one reaching its end) is padded at the end with
/// zero features, masks 0 and invalid labels. A subject of `n` frames gives
/// `max(1, ceil((n - t) / hop) + 1)` windows (none when `n` = 0). The labels of the other
/// task are all invalid. Errors: `t` or `hop` zero, no subjects, dimensions that differ,
/// labels of the other task.
pub fn sequences(
    subjects: &[Subject],
    task: Task,
    t: usize,
    hop: usize,
) -> Result<(SequenceSet, Vec<WindowOrigin>), DataError> {
    if t == 0 || hop == 0 {
        return Err(DataError::Layout(format!(
            "window {t} and hop {hop} must be positive"
        )));
    }
    let first = subjects
        .first()
        .ok_or_else(|| DataError::Layout("no subjects to cut into sequences".into()))?;
    let (dv, da) = (first.features.visual_dim, first.features.audio_dim);
    let mut set = SequenceSet {
        t,
        dv,
        da,
        ..Default::default()
    };
    let mut origins = Vec::new();
    for (si, s) in subjects.iter().enumerate() {
        let f = &s.features;
        if (f.visual_dim, f.audio_dim) != (dv, da) {
            return Err(DataError::Layout(format!(
                "{}: visual/audio dimensions ({}, {}) differ from ({dv}, {da}) of {}",
                s.name, f.visual_dim, f.audio_dim, first.name
            )));
        }
        let kind_ok = matches!(
            (&s.labels, task),
            (Labels::Va(_), Task::Va) | (Labels::Expr(_), Task::Expr)
        );
        if !kind_ok {
            return Err(DataError::Layout(format!(
                "{}: labels of the other task than {task:?}",
                s.name
            )));
        }
        let n = f.frames().min(s.labels.len());
        let mut start = 0;
        while start < n {
            let len = t.min(n - start);
            for k in 0..t {
                let i = start + k;
                if k < len {
                    set.visual.extend_from_slice(f.visual_row(i));
                    set.audio.extend_from_slice(f.audio_row(i));
                    set.visual_mask.push(f.visual_mask[i]);
                    set.audio_mask.push(f.audio_mask[i]);
                } else {
                    set.visual.extend(std::iter::repeat_n(0.0, dv));
                    set.audio.extend(std::iter::repeat_n(0.0, da));
                    set.visual_mask.push(0.0);
                    set.audio_mask.push(0.0);
                }
                let (va, valid, ex) = match (&s.labels, k < len) {
                    (Labels::Va(v), true) if v[i][0] != VA_INVALID && v[i][1] != VA_INVALID => {
                        (v[i], 1.0, EXPR_INVALID)
                    }
                    (Labels::Expr(e), true) => ([0.0, 0.0], 0.0, e[i]),
                    _ => ([0.0, 0.0], 0.0, EXPR_INVALID),
                };
                set.va.extend_from_slice(&va);
                set.va_valid.push(valid);
                set.expr.push(ex);
            }
            origins.push(WindowOrigin {
                subject: si,
                start,
                len,
            });
            set.n += 1;
            if start + t >= n {
                break;
            }
            start += hop;
        }
    }
    Ok((set, origins))
}

/// The windows `avfuse` feeds its model for the frames `frames` of one subject: for
/// frame `i`, the `t` rows ending at `i` (row `t - 1` is frame `i`), with the rows before
/// the start of the file, and those at or before the last frame where the track had no
/// window in `avfuse` (`active` 0, the track was dropped), replaced by zeros with masks
/// 0 — so a model run on window `k` and read at step `t - 1` gives what `avfuse` computed
/// for that frame. Labels are left invalid. Frames past the end are skipped.
pub fn frame_windows(f: &FeatureFile, frames: std::ops::Range<usize>, t: usize) -> SequenceSet {
    frame_windows_ahead(f, frames, t, 0)
}

/// [`frame_windows`] for a model that reads `lookahead` future frames
/// (`affect.fusion.lookahead-frames`): the window of frame `i` ends at frame
/// `i + lookahead`. Rows past the end of the file, and rows after a frame where the track
/// was dropped (`active` 0) later than `i`, are zeros with masks 0 — the context that
/// exists when `avfuse` flushes a held frame at the end of the stream or of the track.
pub fn frame_windows_ahead(
    f: &FeatureFile,
    frames: std::ops::Range<usize>,
    t: usize,
    lookahead: usize,
) -> SequenceSet {
    let (dv, da) = (f.visual_dim, f.audio_dim);
    let total = f.frames();
    let end = frames.end.min(total);
    let start = frames.start.min(end);
    let n = end - start;
    let mut set = SequenceSet {
        n,
        t,
        dv,
        da,
        visual: Vec::with_capacity(n * t * dv),
        audio: Vec::with_capacity(n * t * da),
        visual_mask: Vec::with_capacity(n * t),
        audio_mask: Vec::with_capacity(n * t),
        va: vec![0.0; n * t * 2],
        va_valid: vec![0.0; n * t],
        expr: vec![EXPR_INVALID; n * t],
        expr_weight: Vec::new(),
    };
    // Last inactive frame at or before each frame.
    let mut last_inactive: Option<usize> = None;
    for j in 0..start {
        if f.active[j] <= 0.0 {
            last_inactive = Some(j);
        }
    }
    // First inactive frame after frame i (recomputed when i passes it).
    let next_inactive_after = |i: usize| {
        (i + 1..total)
            .find(|&j| f.active[j] <= 0.0)
            .unwrap_or(total)
    };
    let mut next_inactive = next_inactive_after(start);
    for i in start..end {
        if f.active[i] <= 0.0 {
            last_inactive = Some(i);
        }
        if lookahead > 0 && next_inactive <= i {
            next_inactive = next_inactive_after(i);
        }
        for k in 0..t {
            // Row k of the window is frame i + lookahead + 1 + k - t.
            let row = (i + lookahead + 1 + k).checked_sub(t);
            let row = row.filter(|&r| {
                last_inactive.is_none_or(|li| r > li) && (r <= i || r < next_inactive)
            });
            match row {
                Some(r) => {
                    set.visual.extend_from_slice(f.visual_row(r));
                    set.audio.extend_from_slice(f.audio_row(r));
                    set.visual_mask.push(f.visual_mask[r]);
                    set.audio_mask.push(f.audio_mask[r]);
                }
                None => {
                    set.visual.extend(std::iter::repeat_n(0.0, dv));
                    set.audio.extend(std::iter::repeat_n(0.0, da));
                    set.visual_mask.push(0.0);
                    set.audio_mask.push(0.0);
                }
            }
        }
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::annotations::{write_expr, write_va};
    use crate::dataset::features::FeatureMetadata;

    fn features(n: usize, offset: f32) -> FeatureFile {
        let mut f = FeatureFile::new(2, 1, FeatureMetadata::default());
        for i in 0..n {
            let x = offset + i as f32;
            f.push(
                Some(&[x, -x]),
                1.0,
                Some(&[x * 0.5]),
                1.0,
                Some(i as u64),
                [0.0; 4],
                true,
            );
        }
        f
    }

    fn temp_root(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("affect-layout-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn fold_parsing() {
        assert_eq!("2/6".parse::<Fold>().unwrap(), Fold { index: 2, count: 6 });
        for bad in ["0/6", "7/6", "1/1", "x/6", "3", "1/"] {
            let e = bad.parse::<Fold>().unwrap_err();
            assert!(e.to_string().contains(&format!("fold `{bad}`")), "{e}");
        }
    }

    #[test]
    fn kfold_is_deterministic_balanced_and_keeps_subjects_together() {
        let names: Vec<String> = (0..12)
            .map(|i| format!("v{i:02}"))
            .chain([
                "v03_left".into(),
                "v03_right".into(),
                "w_left".into(),
                "w_right".into(),
            ])
            .collect();
        let a = kfold(&names, 6, 7);
        assert_eq!(a, kfold(&names, 6, 7));
        assert_ne!(a, kfold(&names, 6, 8), "another seed deals differently");
        let fold_of = |n: &str| {
            let i = names
                .iter()
                .position(|x| video_of(x) == video_of(n))
                .unwrap();
            a[i]
        };
        assert_eq!(fold_of("v03_left"), fold_of("v03_right"));
        assert_eq!(fold_of("v03_left"), fold_of("v03"));
        assert_eq!(fold_of("w_left"), fold_of("w_right"));
        // 13 videos (v00..v11, w) in 6 folds: sizes 3,2,2,2,2,2 by video.
        let mut per_fold = [0usize; 6];
        let mut videos: Vec<&str> = names.iter().map(|n| video_of(n)).collect();
        videos.sort();
        videos.dedup();
        for v in videos {
            per_fold[fold_of(v)] += 1;
        }
        per_fold.sort();
        assert_eq!(per_fold, [2, 2, 2, 2, 2, 3]);
    }

    #[test]
    fn root_matches_names_trims_and_selects() {
        let d = temp_root("root");
        let root = DataRoot::new(&d).unwrap();
        let va_train = root.annotation_dir(Task::Va, Split::Train);
        let va_val = root.annotation_dir(Task::Va, Split::Validation);
        // a: annotation one frame longer than the features; b: exact; c: no features.
        write_va(
            &va_train.join("a.txt"),
            &[[0.1, 0.2], [-5.0, -5.0], [0.3, 0.4], [0.5, 0.6]],
        )
        .unwrap();
        write_va(&va_train.join("b_left.txt"), &[[0.0, 0.0], [0.1, 0.1]]).unwrap();
        write_va(&va_val.join("c.txt"), &[[0.0, 0.0]]).unwrap();
        features(3, 0.0).write(&root.feature_path("a")).unwrap();
        features(2, 10.0)
            .write(&root.feature_path("b_left"))
            .unwrap();

        assert_eq!(
            root.names(Task::Va, Split::Train).unwrap(),
            vec!["a", "b_left"]
        );
        let subjects = root.load(Task::Va, Split::Train, None).unwrap();
        assert_eq!(subjects.len(), 2);
        assert_eq!(subjects[0].frames(), 3);
        assert_eq!(subjects[0].trimmed, Some((4, 3)));
        assert_eq!(subjects[0].labels.len(), 3);
        assert_eq!(subjects[0].labels.valid(), 2);
        assert!(
            subjects[0]
                .trim_note()
                .unwrap()
                .contains("annotation has 4 frames, features 3")
        );
        assert_eq!(subjects[1].trimmed, None);
        // c has no feature file.
        let e = root.load(Task::Va, Split::Validation, None).unwrap_err();
        assert!(e.to_string().contains("c.safetensors"), "{e}");
        // EXPR folder missing: error naming it.
        let e = root.load(Task::Expr, Split::Train, None).unwrap_err();
        assert!(e.to_string().contains("EXPR_Recognition_Challenge"), "{e}");
        // Folds pool both folders; every name in exactly one validation fold.
        let mut seen = Vec::new();
        for k in 1..=3 {
            let fold = Fold { index: k, count: 3 };
            let val = root.select(Task::Va, Split::Validation, Some((fold, 1)));
            let tr = root
                .select(Task::Va, Split::Train, Some((fold, 1)))
                .unwrap();
            let val: Vec<String> = val
                .map(|v| v.into_iter().map(|x| x.0).collect())
                .unwrap_or_default();
            for n in &val {
                assert!(!tr.iter().any(|x| &x.0 == n));
            }
            assert_eq!(val.len() + tr.len(), 3);
            seen.extend(val);
        }
        seen.sort();
        assert_eq!(seen, vec!["a", "b_left", "c"]);
        // EXPR file with a bad line: file and line in the error.
        let ex = root.annotation_dir(Task::Expr, Split::Train);
        write_expr(&ex.join("a.txt"), &[0, 1]).unwrap();
        std::fs::write(
            ex.join("b_left.txt"),
            format!("{}\n0\n9\n", crate::dataset::annotations::expr_header()),
        )
        .unwrap();
        let e = root.load(Task::Expr, Split::Train, None).unwrap_err();
        assert!(e.to_string().contains("b_left.txt:3: class 9"), "{e}");
        assert!(DataRoot::new(&d.join("nope")).is_err());
        let _ = std::fs::remove_dir_all(&d);
    }

    fn subject(name: &str, n: usize, labels: Labels) -> Subject {
        Subject {
            name: name.into(),
            features: features(n, 0.0),
            labels,
            trimmed: None,
        }
    }

    #[test]
    fn frame_windows_follow_avfuse_track_windows() {
        // 6 frames, visual = frame index + 1; frame 3 inactive (track dropped).
        let mut f = FeatureFile::new(1, 1, FeatureMetadata::default());
        for i in 0..6 {
            let x = i as f32 + 1.0;
            if i == 3 {
                f.push_absent(Some(i));
            } else {
                f.push(Some(&[x]), 1.0, Some(&[-x]), 1.0, Some(i), [0.0; 4], true);
            }
        }
        let set = frame_windows(&f, 1..6, 3);
        assert_eq!((set.n, set.t), (5, 3));
        // Frame 1: [pad, f0, f1]; frame 2: [f0, f1, f2]; frame 3: [pad, pad, pad];
        // frame 4: [pad, pad, f4]; frame 5: [pad, f4, f5].
        assert_eq!(
            set.visual,
            vec![0., 1., 2., 1., 2., 3., 0., 0., 0., 0., 0., 5., 0., 5., 6.]
        );
        assert_eq!(
            set.visual_mask,
            vec![0., 1., 1., 1., 1., 1., 0., 0., 0., 0., 0., 1., 0., 1., 1.]
        );
        assert_eq!(set.audio[5], -3.0);
        assert_eq!(set.expr, vec![-1; 15]);
        // Past the end: clipped.
        assert_eq!(frame_windows(&f, 4..99, 1).n, 2);
        assert_eq!(frame_windows(&f, 9..12, 1).n, 0);

        // One frame of lookahead: the window of frame i ends at i + 1; rows after the
        // drop (frame 3) or past the end are padding.
        let ahead = frame_windows_ahead(&f, 0..6, 3, 1);
        // Frame 0: [pad, f0, f1]; 1: [f0, f1, f2]; 2: [f1, f2, pad (3 dropped)];
        // 3: [pad, pad, f4]; 4: [pad, f4, f5]; 5: [f4, f5, pad (end)].
        assert_eq!(
            ahead.visual,
            vec![
                0., 1., 2., 1., 2., 3., 2., 3., 0., 0., 0., 5., 0., 5., 6., 5., 6., 0.
            ]
        );
        assert_eq!(ahead.visual_mask.iter().sum::<f32>(), 12.0);
        assert_eq!(frame_windows_ahead(&f, 1..6, 3, 0), set);
    }

    #[test]
    fn windows_cover_every_frame_with_padding() {
        let va: VaLabels = (0..7)
            .map(|i| {
                if i == 2 {
                    [-5.0, -5.0]
                } else {
                    [i as f32 * 0.1, 0.0]
                }
            })
            .collect();
        let s = subject("a", 7, Labels::Va(va));
        let (set, origins) = sequences(std::slice::from_ref(&s), Task::Va, 4, 2).unwrap();
        // Starts 0, 2, 4 (4 + 4 >= 7 stops): ceil((7-4)/2)+1 = 3 windows.
        assert_eq!(set.n, 3);
        assert_eq!(
            origins.iter().map(|o| (o.start, o.len)).collect::<Vec<_>>(),
            vec![(0, 4), (2, 4), (4, 3)]
        );
        assert_eq!((set.t, set.dv, set.da), (4, 2, 1));
        assert_eq!(set.visual.len(), 3 * 4 * 2);
        // Window 1 frame 0 is frame 2: invalid label, features present.
        assert_eq!(set.va_valid[4], 0.0);
        assert_eq!(set.visual[4 * 2], 2.0);
        // Window 2: frames 4, 5, 6 then one padded step.
        assert_eq!(&set.visual_mask[8..12], &[1.0, 1.0, 1.0, 0.0]);
        assert_eq!(&set.va_valid[8..12], &[1.0, 1.0, 1.0, 0.0]);
        assert!((set.va[2 * 9] - 0.5).abs() < 1e-6);
        assert_eq!(set.expr, vec![-1; 12]);
        // Short subject: one padded window; EXPR labels.
        let s = subject("b", 2, Labels::Expr(vec![3, -1]));
        let (set, _) = sequences(&[s], Task::Expr, 5, 5).unwrap();
        assert_eq!(set.n, 1);
        assert_eq!(set.expr, vec![3, -1, -1, -1, -1]);
        assert_eq!(set.va_valid, vec![0.0; 5]);
        assert!(sequences(&[], Task::Va, 4, 2).is_err());
        let s = subject("c", 3, Labels::Expr(vec![0, 0, 0]));
        assert!(sequences(&[s], Task::Expr, 4, 0).is_err());
    }
}
