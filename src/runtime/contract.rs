// SPDX-License-Identifier: MPL-2.0
//! The `affect.*` model contract (see `weights/CONTRACT.md`): what a model says about
//! itself in its ONNX `metadata_props`, parsed into types and checked against its graph.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use super::RuntimeError;

/// The contract version this code reads.
pub const CONTRACT_VERSION: u32 = 1;

/// What a model is for; elements refuse models of the wrong role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Finds faces and landmarks in a frame.
    FaceDetector,
    /// Turns an aligned face crop into a feature vector (and maybe class probabilities).
    FaceFeature,
    /// Turns an audio window into a feature vector.
    AudioFeature,
    /// Voice activity detection.
    Vad,
    /// Fuses visual and audio feature sequences into valence/arousal and expressions.
    Fusion,
    /// Dense face landmarks (a face mesh) from a face crop.
    FaceMesh,
}

impl Role {
    /// The string used in `affect.role`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::FaceDetector => "face-detector",
            Role::FaceFeature => "face-feature",
            Role::AudioFeature => "audio-feature",
            Role::Vad => "vad",
            Role::Fusion => "fusion",
            Role::FaceMesh => "face-mesh",
        }
    }

    fn is_image(self) -> bool {
        matches!(
            self,
            Role::FaceDetector | Role::FaceFeature | Role::FaceMesh
        )
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Ok(match s {
            "face-detector" => Role::FaceDetector,
            "face-feature" => Role::FaceFeature,
            "audio-feature" => Role::AudioFeature,
            "vad" => Role::Vad,
            "fusion" => Role::Fusion,
            "face-mesh" => Role::FaceMesh,
            _ => return Err(()),
        })
    }
}

/// Memory layout of an image input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `[N, C, H, W]`
    Nchw,
    /// `[N, H, W, C]`
    Nhwc,
}

/// Channel order of an image input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelColour {
    /// Red, green, blue.
    Rgb,
    /// Blue, green, red.
    Bgr,
    /// One luma channel.
    Grey,
}

impl PixelColour {
    /// Number of channels the model expects.
    pub fn channels(self) -> usize {
        match self {
            PixelColour::Grey => 1,
            _ => 3,
        }
    }
}

/// An image input: the model sees `(pixel - mean) / std` of 0..255 values.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageInput {
    /// Graph input name.
    pub name: String,
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Tensor layout.
    pub layout: Layout,
    /// Channel order.
    pub colour: PixelColour,
    /// Per-channel mean (one value per channel).
    pub mean: Vec<f32>,
    /// Per-channel standard deviation (one value per channel, all non-zero).
    pub std: Vec<f32>,
}

/// An audio input: mono float samples at `sample_rate`, `window` per run, `hop` apart.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioInput {
    /// Graph input name.
    pub name: String,
    /// Samples per second.
    pub sample_rate: u32,
    /// Samples per model run.
    pub window: usize,
    /// Samples between two runs.
    pub hop: usize,
}

/// A feature model a fusion model was trained on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureModelRef {
    /// The feature model's `affect.name`.
    pub name: String,
    /// sha256 of the feature model file.
    pub sha256: String,
}

/// What a fusion model reads: `visual` `[B,T,Dv]`, `audio` `[B,T,Da]` and their masks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FusionSpec {
    /// Frames per run (T).
    pub window: usize,
    /// Future frames the model reads, `affect.fusion.lookahead-frames` (0 when absent):
    /// the newest step of a window ending at frame `i + lookahead` is the result for
    /// frame `i`. Less than `window`.
    pub lookahead: usize,
    /// Visual feature dimension (Dv).
    pub visual_dim: usize,
    /// Audio feature dimension (Da).
    pub audio_dim: usize,
    /// The face-feature model it was trained on, when declared.
    pub visual_model: Option<FeatureModelRef>,
    /// The audio-feature model it was trained on, when declared.
    pub audio_model: Option<FeatureModelRef>,
    /// What its `audio_mask` means, `affect.fusion.audio-mask` (`present` when absent).
    pub audio_mask: AudioMaskKind,
}

/// What a fusion model's `audio_mask` input holds, `affect.fusion.audio-mask`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AudioMaskKind {
    /// `present` (the default): 1 where an aligned audio vector exists, 0 where none does.
    #[default]
    Present,
    /// `speech`: the `present` mask times the vector's speech weight, the mean voice
    /// activity probability over the audio the vector was computed on (so only speech
    /// reaches the model; music, tones and noise get a mask near 0).
    Speech,
}

impl AudioMaskKind {
    /// The key's value for this kind.
    pub fn as_str(self) -> &'static str {
        match self {
            AudioMaskKind::Present => "present",
            AudioMaskKind::Speech => "speech",
        }
    }

    /// The value to write into a contract: `None` for the default (`present`), which a
    /// contract says by leaving the key out.
    pub fn declared(self) -> Option<String> {
        (self != AudioMaskKind::Present).then(|| self.as_str().to_owned())
    }
}

impl FromStr for AudioMaskKind {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "present" => Ok(AudioMaskKind::Present),
            "speech" => Ok(AudioMaskKind::Speech),
            _ => Err(()),
        }
    }
}

/// The input side of a contract, by role.
#[derive(Debug, Clone, PartialEq)]
pub enum InputSpec {
    /// Face detector or face feature model.
    Image(ImageInput),
    /// Audio feature model or VAD.
    Audio(AudioInput),
    /// Fusion model.
    Fusion(FusionSpec),
}

/// A model's parsed `affect.*` contract.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelContract {
    /// What the model is for.
    pub role: Role,
    /// Short model name (`affect.name`).
    pub name: String,
    /// What it reads.
    pub input: InputSpec,
    /// Graph outputs the elements read, in order.
    pub outputs: Vec<String>,
    /// Feature dimension of the feature output (feature roles).
    pub output_dim: Option<usize>,
    /// Class labels of the probability output, if the model classifies.
    pub labels: Vec<String>,
    /// Every `affect.*` key, for role-specific keys (e.g. `affect.detector.kind`).
    pub props: BTreeMap<String, String>,
}

/// What is wrong with a contract.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContractError {
    /// A required key is absent.
    #[error("metadata key `{key}` is missing (see weights/CONTRACT.md)")]
    MissingKey {
        /// The missing key.
        key: String,
    },
    /// A key has a value that cannot be used.
    #[error("metadata key `{key}` has value `{value}`, expected {expected}")]
    BadValue {
        /// The key.
        key: String,
        /// Its value.
        value: String,
        /// What would be accepted.
        expected: String,
    },
    /// The model is for another job.
    #[error("model role is `{found}`, this element needs `{expected}`")]
    WrongRole {
        /// What the element needs.
        expected: Role,
        /// What the model declares.
        found: Role,
    },
    /// The contract names a tensor the graph does not have.
    #[error("the contract names {kind} `{name}`, but the graph has only [{available}]")]
    MissingTensor {
        /// `input` or `output`.
        kind: &'static str,
        /// The name from the contract.
        name: String,
        /// The graph's names.
        available: String,
    },
    /// The graph's tensor shape disagrees with the contract.
    #[error("{kind} `{name}` has shape {shape:?}, but the contract implies {expected}")]
    ShapeMismatch {
        /// `input` or `output`.
        kind: &'static str,
        /// Tensor name.
        name: String,
        /// The graph's shape (-1 for dynamic dimensions).
        shape: Vec<i64>,
        /// What the contract implies.
        expected: String,
    },
}

/// What [`ModelContract::read_file`] needs of an ONNX `ModelProto`: the IR version
/// (field 1), whether it has a non-empty graph (field 7, skipped, not decoded) and the
/// `metadata_props` (field 14). Read the way protobuf C++ (ONNX Runtime's parser) reads a
/// message: unknown fields are skipped and a zero tag or an end-group tag ends it, so a
/// file ONNX Runtime loads (trailing zero bytes included) is not refused here.
fn read_model_header(mut b: &[u8]) -> Result<ModelHeader, String> {
    fn varint(b: &mut &[u8]) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = b.split_first().ok_or("truncated varint")?;
            *b = rest;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("varint longer than 10 bytes".into())
    }
    fn take<'a>(b: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
        if n > b.len() {
            return Err(format!(
                "a field of {n} bytes runs past the end of the file"
            ));
        }
        let (head, rest) = b.split_at(n);
        *b = rest;
        Ok(head)
    }
    let (mut ir_version, mut graph, mut props) = (0i64, false, Vec::new());
    while !b.is_empty() {
        let key = varint(&mut b)?;
        let (field, wire) = (key >> 3, key & 7);
        if key == 0 || wire == 4 {
            break;
        }
        match wire {
            0 => {
                let v = varint(&mut b)?;
                if field == 1 {
                    ir_version = v as i64;
                }
            }
            1 => {
                take(&mut b, 8)?;
            }
            5 => {
                take(&mut b, 4)?;
            }
            2 => {
                let n = usize::try_from(varint(&mut b)?).map_err(|e| e.to_string())?;
                let body = take(&mut b, n)?;
                match field {
                    7 => graph |= !body.is_empty(),
                    14 => {
                        let e =
                            <crate::onnx::proto::StringStringEntryProto as prost::Message>::decode(
                                body,
                            )
                            .map_err(|e| format!("metadata_props: {e}"))?;
                        props.push((e.key, e.value));
                    }
                    _ => {}
                }
            }
            _ => return Err(format!("field {field} has wire type {wire}")),
        }
    }
    Ok(ModelHeader {
        ir_version,
        graph,
        props,
    })
}

/// What [`read_model_header`] found.
struct ModelHeader {
    ir_version: i64,
    graph: bool,
    props: Vec<(String, String)>,
}

struct Props<'a>(&'a BTreeMap<String, String>);

impl Props<'_> {
    fn get(&self, key: &str) -> Result<&str, ContractError> {
        self.0
            .get(key)
            .map(|s| s.trim())
            .ok_or_else(|| ContractError::MissingKey { key: key.into() })
    }

    fn bad(key: &str, value: &str, expected: &str) -> ContractError {
        ContractError::BadValue {
            key: key.into(),
            value: value.into(),
            expected: expected.into(),
        }
    }

    fn parse<T: FromStr>(&self, key: &str, expected: &str) -> Result<T, ContractError> {
        let v = self.get(key)?;
        v.parse().map_err(|_| Self::bad(key, v, expected))
    }

    fn positive(&self, key: &str) -> Result<usize, ContractError> {
        let v: usize = self.parse(key, "a positive integer")?;
        if v == 0 {
            return Err(Self::bad(key, "0", "a positive integer"));
        }
        Ok(v)
    }

    fn list(&self, key: &str) -> Result<Vec<String>, ContractError> {
        let v = self.get(key)?;
        let items: Vec<String> = v
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        if items.is_empty() {
            return Err(Self::bad(key, v, "a non-empty comma-separated list"));
        }
        Ok(items)
    }

    fn floats(&self, key: &str, n: usize) -> Result<Vec<f32>, ContractError> {
        let v = self.get(key)?;
        let expected = format!("1 or {n} comma-separated finite numbers");
        let vals: Vec<f32> = v
            .split(',')
            .map(|s| s.trim().parse::<f32>())
            .collect::<Result<_, _>>()
            .map_err(|_| Self::bad(key, v, &expected))?;
        if vals.iter().any(|x| !x.is_finite()) {
            return Err(Self::bad(key, v, &expected));
        }
        match vals.len() {
            1 => Ok(vec![vals[0]; n]),
            l if l == n => Ok(vals),
            _ => Err(Self::bad(key, v, &expected)),
        }
    }
}

impl ModelContract {
    /// Parses a contract from a model's metadata_props. Keys not starting with `affect.` are ignored.
    pub fn from_props(all: &BTreeMap<String, String>) -> Result<Self, ContractError> {
        let props: BTreeMap<String, String> = all
            .iter()
            .filter(|(k, _)| k.starts_with("affect."))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let p = Props(&props);

        let version: u32 = p.parse("affect.contract", "an integer")?;
        if version != CONTRACT_VERSION {
            return Err(Props::bad(
                "affect.contract",
                &version.to_string(),
                &format!("{CONTRACT_VERSION} (the version this build reads)"),
            ));
        }
        let role: Role = p.parse(
            "affect.role",
            "one of face-detector, face-feature, face-mesh, audio-feature, vad, fusion",
        )?;
        let name = p.get("affect.name")?.to_owned();
        if name.is_empty() {
            return Err(Props::bad("affect.name", "", "a non-empty name"));
        }

        let input = if role.is_image() {
            let size = p.get("affect.input.size")?;
            let (w, h) = size
                .split_once(['x', 'X'])
                .and_then(|(w, h)| Some((w.trim().parse().ok()?, h.trim().parse().ok()?)))
                .filter(|&(w, h): &(usize, usize)| w > 0 && h > 0)
                .ok_or_else(|| Props::bad("affect.input.size", size, "WxH, e.g. 128x128"))?;
            let layout = match p.get("affect.input.layout")? {
                "NCHW" | "nchw" => Layout::Nchw,
                "NHWC" | "nhwc" => Layout::Nhwc,
                v => return Err(Props::bad("affect.input.layout", v, "NCHW or NHWC")),
            };
            let colour = match p.get("affect.input.colour")? {
                "RGB" | "rgb" => PixelColour::Rgb,
                "BGR" | "bgr" => PixelColour::Bgr,
                "GREY" | "grey" | "GRAY" | "gray" => PixelColour::Grey,
                v => return Err(Props::bad("affect.input.colour", v, "RGB, BGR or GREY")),
            };
            let c = colour.channels();
            let mean = p.floats("affect.input.mean", c)?;
            let std = p.floats("affect.input.std", c)?;
            if std.contains(&0.0) {
                return Err(Props::bad(
                    "affect.input.std",
                    p.get("affect.input.std")?,
                    "non-zero values",
                ));
            }
            InputSpec::Image(ImageInput {
                name: p.get("affect.input.name")?.to_owned(),
                width: w,
                height: h,
                layout,
                colour,
                mean,
                std,
            })
        } else if role == Role::Fusion {
            let model_ref = |which: &str| -> Result<Option<FeatureModelRef>, ContractError> {
                let nk = format!("affect.fusion.{which}-model");
                let sk = format!("affect.fusion.{which}-sha256");
                match (props.get(&nk), props.get(&sk)) {
                    (None, None) => Ok(None),
                    (Some(_), None) => Err(ContractError::MissingKey { key: sk }),
                    (None, Some(_)) => Err(ContractError::MissingKey { key: nk }),
                    (Some(n), Some(s)) => {
                        let s = s.trim().to_ascii_lowercase();
                        if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
                            return Err(Props::bad(&sk, &s, "64 hexadecimal digits"));
                        }
                        Ok(Some(FeatureModelRef {
                            name: n.trim().to_owned(),
                            sha256: s,
                        }))
                    }
                }
            };
            let window = p.positive("affect.fusion.window")?;
            let lookahead = match p.0.get("affect.fusion.lookahead-frames") {
                None => 0,
                Some(_) => {
                    let k: usize = p.parse(
                        "affect.fusion.lookahead-frames",
                        "a number of frames less than affect.fusion.window",
                    )?;
                    if k >= window {
                        return Err(Props::bad(
                            "affect.fusion.lookahead-frames",
                            &k.to_string(),
                            "a number of frames less than affect.fusion.window",
                        ));
                    }
                    k
                }
            };
            let audio_mask = match p.0.get("affect.fusion.audio-mask") {
                None => AudioMaskKind::Present,
                Some(_) => p.parse(
                    "affect.fusion.audio-mask",
                    "`present` (audio mask 1 where audio features exist) or `speech` (gated by voice activity)",
                )?,
            };
            InputSpec::Fusion(FusionSpec {
                window,
                lookahead,
                visual_dim: p.positive("affect.fusion.visual-dim")?,
                audio_dim: p.positive("affect.fusion.audio-dim")?,
                visual_model: model_ref("visual")?,
                audio_model: model_ref("audio")?,
                audio_mask,
            })
        } else {
            let sample_rate: u32 = p.parse("affect.input.sample-rate", "a rate in Hz")?;
            if !(1000..=384_000).contains(&sample_rate) {
                return Err(Props::bad(
                    "affect.input.sample-rate",
                    &sample_rate.to_string(),
                    "a rate between 1000 and 384000 Hz",
                ));
            }
            InputSpec::Audio(AudioInput {
                name: p.get("affect.input.name")?.to_owned(),
                sample_rate,
                window: p.positive("affect.input.window")?,
                hop: p.positive("affect.input.hop")?,
            })
        };

        let outputs = p.list("affect.output.names")?;
        let output_dim = match role {
            Role::FaceFeature | Role::AudioFeature => Some(p.positive("affect.output.dim")?),
            _ if props.contains_key("affect.output.dim") => Some(p.positive("affect.output.dim")?),
            _ => None,
        };
        let labels = if props.contains_key("affect.output.labels") {
            p.list("affect.output.labels")?
        } else {
            Vec::new()
        };
        if role == Role::FaceDetector {
            let kind = p.get("affect.detector.kind")?;
            if !matches!(kind, "blazeface-short" | "blazeface-full" | "mtcnn") {
                return Err(Props::bad(
                    "affect.detector.kind",
                    kind,
                    "blazeface-short, blazeface-full or mtcnn",
                ));
            }
        }

        if role == Role::FaceMesh {
            p.positive("affect.mesh.landmarks")?;
        }

        Ok(ModelContract {
            role,
            name,
            input,
            outputs,
            output_dim,
            labels,
            props,
        })
    }

    /// Reads the contract of the model file at `path` without ONNX Runtime: checks that
    /// the file is an ONNX model (a protobuf `ModelProto` with an IR version and a graph)
    /// and parses its `affect.*` metadata. Cheap next to a session (the graph and its
    /// weights are skipped, not decoded), so elements can refuse a wrong file on
    /// NULL→READY, before their neighbours start checking models of their own.
    pub fn read_file(path: &Path) -> Result<Self, RuntimeError> {
        let bytes = std::fs::read(path).map_err(|source| RuntimeError::ModelFile {
            path: path.to_owned(),
            source,
        })?;
        let not_onnx = |reason: String| RuntimeError::NotOnnx {
            path: path.to_owned(),
            reason,
        };
        let ModelHeader {
            ir_version,
            graph,
            props,
        } = read_model_header(&bytes)
            .map_err(|e| not_onnx(format!("not a protobuf ModelProto ({e})")))?;
        if ir_version <= 0 {
            return Err(not_onnx(
                "no ONNX IR version (field 1 of a ModelProto)".into(),
            ));
        }
        if !graph {
            return Err(not_onnx("no graph (field 7 of a ModelProto)".into()));
        }
        let props: BTreeMap<String, String> = props.into_iter().collect();
        ModelContract::from_props(&props).map_err(|source| RuntimeError::Contract {
            path: path.to_owned(),
            source,
        })
    }

    /// Refuses the contract unless it declares `expected`.
    pub fn expect_role(&self, expected: Role) -> Result<(), ContractError> {
        if self.role == expected {
            Ok(())
        } else {
            Err(ContractError::WrongRole {
                expected,
                found: self.role,
            })
        }
    }

    /// A role-specific key (`affect.` prefix included), if present.
    pub fn prop(&self, key: &str) -> Option<&str> {
        self.props.get(key).map(String::as_str)
    }

    /// Checks the contract against the graph's inputs and outputs (name → shape, -1 = dynamic).
    pub fn check_graph(
        &self,
        inputs: &[(String, Vec<i64>)],
        outputs: &[(String, Vec<i64>)],
    ) -> Result<(), ContractError> {
        let names = |t: &[(String, Vec<i64>)]| {
            t.iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let find = |kind: &'static str, t: &[(String, Vec<i64>)], name: &str| {
            t.iter()
                .find(|(n, _)| n == name)
                .map(|(_, s)| s.clone())
                .ok_or_else(|| ContractError::MissingTensor {
                    kind,
                    name: name.to_owned(),
                    available: names(t),
                })
        };
        for o in &self.outputs {
            find("output", outputs, o)?;
        }
        match &self.input {
            InputSpec::Image(img) => {
                let shape = find("input", inputs, &img.name)?;
                let c = img.colour.channels() as i64;
                let (w, h) = (img.width as i64, img.height as i64);
                let want = match img.layout {
                    Layout::Nchw => [-1, c, h, w],
                    Layout::Nhwc => [-1, h, w, c],
                };
                let ok = shape.len() == 4
                    && shape
                        .iter()
                        .zip(want)
                        .skip(1)
                        .all(|(&s, w)| s < 0 || s == w);
                if !ok {
                    return Err(ContractError::ShapeMismatch {
                        kind: "input",
                        name: img.name.clone(),
                        shape,
                        expected: format!("{:?} ({:?})", &want[1..], img.layout),
                    });
                }
            }
            InputSpec::Audio(a) => {
                let shape = find("input", inputs, &a.name)?;
                let last = shape.last().copied().unwrap_or(0);
                if shape.is_empty() || (last >= 0 && last != a.window as i64) {
                    return Err(ContractError::ShapeMismatch {
                        kind: "input",
                        name: a.name.clone(),
                        shape,
                        expected: format!("last dimension {} (the window)", a.window),
                    });
                }
            }
            InputSpec::Fusion(f) => {
                for (name, dim) in [("visual", Some(f.visual_dim)), ("audio", Some(f.audio_dim))]
                    .into_iter()
                    .chain([("visual_mask", None), ("audio_mask", None)])
                {
                    let shape = find("input", inputs, name)?;
                    let rank = if dim.is_some() { 3 } else { 2 };
                    let last_ok = dim.is_none_or(|d| {
                        let l = shape.last().copied().unwrap_or(0);
                        l < 0 || l == d as i64
                    });
                    if shape.len() != rank || !last_ok {
                        return Err(ContractError::ShapeMismatch {
                            kind: "input",
                            name: name.into(),
                            shape,
                            expected: match dim {
                                Some(d) => format!("[B, T, {d}]"),
                                None => "[B, T]".into(),
                            },
                        });
                    }
                }
            }
        }
        if let Some(dim) = self.output_dim
            && matches!(self.role, Role::FaceFeature | Role::AudioFeature)
        {
            // The feature output is the last one named unless an element selects another;
            // at least one output must carry `dim` in its last axis.
            let any = self.outputs.iter().any(|o| {
                outputs
                    .iter()
                    .find(|(n, _)| n == o)
                    .and_then(|(_, s)| s.last())
                    .is_some_and(|&l| l < 0 || l == dim as i64)
            });
            if !any {
                return Err(ContractError::ShapeMismatch {
                    kind: "output",
                    name: self.outputs.join(","),
                    shape: outputs
                        .iter()
                        .find(|(n, _)| self.outputs.contains(n))
                        .map(|(_, s)| s.clone())
                        .unwrap_or_default(),
                    expected: format!("last dimension {dim} (affect.output.dim)"),
                });
            }
        }
        if self.role == Role::FaceMesh {
            // The first output holds (x, y, z) per landmark in its last axis.
            let n: usize = self
                .prop("affect.mesh.landmarks")
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            let name = &self.outputs[0];
            let shape = find("output", outputs, name)?;
            if shape.last().is_none_or(|&l| l >= 0 && l != 3 * n as i64) {
                return Err(ContractError::ShapeMismatch {
                    kind: "output",
                    name: name.clone(),
                    shape,
                    expected: format!("last dimension {} (3 x affect.mesh.landmarks)", 3 * n),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_file_reads_bundled_models_and_refuses_what_is_not_onnx() {
        let dir = std::env::temp_dir().join(format!("affect-read-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fer = crate::weights::resolve_model("fer-mini-xception");
        let c = ModelContract::read_file(&fer).unwrap();
        assert_eq!(
            (c.role, c.name.as_str()),
            (Role::FaceFeature, "fer-mini-xception")
        );
        let bytes = std::fs::read(&fer).unwrap();
        let meta: BTreeMap<String, String> = crate::onnx::read_metadata(&bytes)
            .unwrap()
            .into_iter()
            .collect();
        assert_eq!(c, ModelContract::from_props(&meta).unwrap());
        // Trailing zero bytes end the message for protobuf C++ (ONNX Runtime loads such
        // files), so they do here.
        let padded = dir.join("padded.onnx");
        std::fs::write(&padded, [&bytes[..], b"\0\0"].concat()).unwrap();
        assert_eq!(ModelContract::read_file(&padded).unwrap(), c);

        for (name, content) in [
            ("text.onnx", &b"this is not a model, just some words\n"[..]),
            ("truncated.onnx", &bytes[..bytes.len() / 2]),
            ("empty.onnx", &b""[..]),
        ] {
            let p = dir.join(name);
            std::fs::write(&p, content).unwrap();
            let e = ModelContract::read_file(&p).unwrap_err();
            assert!(matches!(e, RuntimeError::NotOnnx { .. }), "{name}: {e}");
            assert!(
                e.to_string()
                    .starts_with(&format!("{} is not an ONNX model: ", p.display())),
                "{e}"
            );
        }
        let e = ModelContract::read_file(&dir.join("missing.onnx")).unwrap_err();
        assert!(matches!(e, RuntimeError::ModelFile { .. }), "{e}");
    }

    fn props(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn detector() -> BTreeMap<String, String> {
        props(&[
            ("affect.contract", "1"),
            ("affect.role", "face-detector"),
            ("affect.name", "blazeface-full"),
            ("affect.input.name", "input"),
            ("affect.input.size", "192x192"),
            ("affect.input.layout", "NHWC"),
            ("affect.input.colour", "RGB"),
            ("affect.input.mean", "127.5"),
            ("affect.input.std", "127.5"),
            ("affect.output.names", "regressors, classificators"),
            ("affect.detector.kind", "blazeface-full"),
            ("onnx.other", "ignored"),
        ])
    }

    #[test]
    fn parses_image_contract() {
        let c = ModelContract::from_props(&detector()).unwrap();
        assert_eq!(c.role, Role::FaceDetector);
        assert_eq!(c.outputs, ["regressors", "classificators"]);
        let InputSpec::Image(img) = &c.input else {
            panic!("not an image input")
        };
        assert_eq!((img.width, img.height), (192, 192));
        assert_eq!(img.mean, [127.5; 3]);
        assert_eq!(c.prop("affect.detector.kind"), Some("blazeface-full"));
        assert!(!c.props.contains_key("onnx.other"));
        c.expect_role(Role::FaceDetector).unwrap();
        assert_eq!(
            c.expect_role(Role::Fusion),
            Err(ContractError::WrongRole {
                expected: Role::Fusion,
                found: Role::FaceDetector
            })
        );
    }

    #[test]
    fn every_required_key_is_named_when_missing() {
        for key in [
            "affect.contract",
            "affect.role",
            "affect.name",
            "affect.input.name",
            "affect.input.size",
            "affect.input.layout",
            "affect.input.colour",
            "affect.input.mean",
            "affect.input.std",
            "affect.output.names",
            "affect.detector.kind",
        ] {
            let mut p = detector();
            p.remove(key);
            let err = ModelContract::from_props(&p).unwrap_err();
            assert_eq!(err, ContractError::MissingKey { key: key.into() }, "{key}");
            assert!(err.to_string().contains(key));
        }
    }

    #[test]
    fn bad_values_are_refused() {
        for (key, value) in [
            ("affect.contract", "2"),
            ("affect.role", "detector"),
            ("affect.input.size", "192"),
            ("affect.input.size", "0x10"),
            ("affect.input.layout", "CHW"),
            ("affect.input.colour", "YUV"),
            ("affect.input.mean", "1,2"),
            ("affect.input.std", "0"),
            ("affect.input.std", "nan"),
            ("affect.detector.kind", "yolo"),
        ] {
            let mut p = detector();
            p.insert(key.into(), value.into());
            match ModelContract::from_props(&p) {
                Err(ContractError::BadValue { key: k, .. }) => assert_eq!(k, key),
                other => panic!("{key}={value}: {other:?}"),
            }
        }
    }

    #[test]
    fn audio_and_fusion_contracts() {
        let a = ModelContract::from_props(&props(&[
            ("affect.contract", "1"),
            ("affect.role", "audio-feature"),
            ("affect.name", "speech"),
            ("affect.input.name", "audio"),
            ("affect.input.sample-rate", "16000"),
            ("affect.input.window", "1280"),
            ("affect.input.hop", "1280"),
            ("affect.output.names", "embedding"),
            ("affect.output.dim", "96"),
        ]))
        .unwrap();
        assert_eq!(
            a.input,
            InputSpec::Audio(AudioInput {
                name: "audio".into(),
                sample_rate: 16000,
                window: 1280,
                hop: 1280
            })
        );
        assert_eq!(a.output_dim, Some(96));
        a.check_graph(
            &[("audio".into(), vec![1, 1280])],
            &[("embedding".into(), vec![1, 96])],
        )
        .unwrap();
        assert!(matches!(
            a.check_graph(
                &[("audio".into(), vec![1, 1000])],
                &[("embedding".into(), vec![1, 96])]
            ),
            Err(ContractError::ShapeMismatch { .. })
        ));

        let mut f = props(&[
            ("affect.contract", "1"),
            ("affect.role", "fusion"),
            ("affect.name", "baseline"),
            ("affect.fusion.window", "1"),
            ("affect.fusion.visual-dim", "8"),
            ("affect.fusion.audio-dim", "96"),
            ("affect.output.names", "va,expr"),
            ("affect.fusion.visual-model", "fer"),
        ]);
        assert_eq!(
            ModelContract::from_props(&f),
            Err(ContractError::MissingKey {
                key: "affect.fusion.visual-sha256".into()
            })
        );
        f.insert("affect.fusion.visual-sha256".into(), "ab".repeat(32));
        let c = ModelContract::from_props(&f).unwrap();
        let InputSpec::Fusion(spec) = &c.input else {
            panic!()
        };
        assert_eq!(spec.visual_model.as_ref().unwrap().name, "fer");
        assert!(spec.audio_model.is_none());
        let ins = [
            ("visual".to_string(), vec![-1, -1, 8]),
            ("audio".to_string(), vec![-1, -1, 96]),
            ("visual_mask".to_string(), vec![-1, -1]),
            ("audio_mask".to_string(), vec![-1, -1]),
        ];
        let outs = [
            ("va".to_string(), vec![-1, -1, 2]),
            ("expr".to_string(), vec![-1, -1, 8]),
        ];
        c.check_graph(&ins, &outs).unwrap();
        let err = c.check_graph(&ins[..3], &outs).unwrap_err();
        assert!(err.to_string().contains("audio_mask"), "{err}");
    }

    fn fusion_props(audio_mask: Option<&str>) -> BTreeMap<String, String> {
        let mut f = props(&[
            ("affect.contract", "1"),
            ("affect.role", "fusion"),
            ("affect.name", "gated"),
            ("affect.fusion.window", "4"),
            ("affect.fusion.visual-dim", "8"),
            ("affect.fusion.audio-dim", "164"),
            ("affect.output.names", "va,expr"),
        ]);
        if let Some(v) = audio_mask {
            f.insert("affect.fusion.audio-mask".into(), v.into());
        }
        f
    }

    fn audio_mask_of(f: &BTreeMap<String, String>) -> Result<AudioMaskKind, ContractError> {
        match ModelContract::from_props(f)?.input {
            InputSpec::Fusion(spec) => Ok(spec.audio_mask),
            other => panic!("not a fusion input: {other:?}"),
        }
    }

    #[test]
    fn fusion_audio_mask_is_present_by_default_or_speech() {
        assert_eq!(
            audio_mask_of(&fusion_props(None)),
            Ok(AudioMaskKind::Present)
        );
        assert_eq!(
            audio_mask_of(&fusion_props(Some("present"))),
            Ok(AudioMaskKind::Present)
        );
        assert_eq!(
            audio_mask_of(&fusion_props(Some(" speech "))),
            Ok(AudioMaskKind::Speech)
        );
        for k in [AudioMaskKind::Present, AudioMaskKind::Speech] {
            assert_eq!(k.as_str().parse(), Ok(k));
        }
    }

    #[test]
    fn an_unknown_fusion_audio_mask_refuses_the_model() {
        for bad in ["vad", "Speech", "", "present,speech"] {
            let e = audio_mask_of(&fusion_props(Some(bad))).unwrap_err();
            let ContractError::BadValue { key, value, .. } = &e else {
                panic!("{bad}: {e:?}")
            };
            assert_eq!(key, "affect.fusion.audio-mask");
            assert_eq!(value, bad.trim());
            let text = e.to_string();
            assert!(
                text.contains("affect.fusion.audio-mask")
                    && text.contains("`present`")
                    && text.contains("`speech`"),
                "{text}"
            );
        }
    }

    fn face_mesh() -> BTreeMap<String, String> {
        props(&[
            ("affect.contract", "1"),
            ("affect.role", "face-mesh"),
            ("affect.name", "face-mesh"),
            ("affect.input.name", "input"),
            ("affect.input.size", "192x192"),
            ("affect.input.layout", "NHWC"),
            ("affect.input.colour", "RGB"),
            ("affect.input.mean", "0"),
            ("affect.input.std", "255"),
            ("affect.output.names", "landmarks,score"),
            ("affect.mesh.landmarks", "468"),
            ("affect.mesh.roi-scale", "1.5"),
        ])
    }

    #[test]
    fn face_mesh_contract_is_an_image_contract_with_a_landmark_count() {
        let c = ModelContract::from_props(&face_mesh()).unwrap();
        assert_eq!((c.role, c.name.as_str()), (Role::FaceMesh, "face-mesh"));
        assert_eq!("face-mesh".parse(), Ok(Role::FaceMesh));
        assert_eq!(Role::FaceMesh.to_string(), "face-mesh");
        let InputSpec::Image(img) = &c.input else {
            panic!("not an image input: {:?}", c.input)
        };
        assert_eq!(
            (img.width, img.height, img.layout),
            (192, 192, Layout::Nhwc)
        );
        assert_eq!(
            (img.mean.clone(), img.std.clone()),
            (vec![0.0; 3], vec![255.0; 3])
        );
        assert_eq!(c.outputs, ["landmarks", "score"]);
        assert_eq!(c.output_dim, None);
        assert_eq!(c.prop("affect.mesh.landmarks"), Some("468"));
        c.expect_role(Role::FaceMesh).unwrap();
        assert!(c.expect_role(Role::FaceDetector).is_err());

        for key in [
            "affect.mesh.landmarks",
            "affect.input.size",
            "affect.input.std",
        ] {
            let mut p = face_mesh();
            p.remove(key);
            assert_eq!(
                ModelContract::from_props(&p),
                Err(ContractError::MissingKey { key: key.into() }),
                "{key}"
            );
        }
        for value in ["0", "many", "-3"] {
            let mut p = face_mesh();
            p.insert("affect.mesh.landmarks".into(), value.into());
            assert!(
                matches!(ModelContract::from_props(&p), Err(ContractError::BadValue { key, .. }) if key == "affect.mesh.landmarks"),
                "{value}"
            );
        }

        let input = [("input".to_string(), vec![-1, 192, 192, 3])];
        let outs = [
            ("landmarks".to_string(), vec![-1, 1404]),
            ("score".to_string(), vec![-1, 1]),
        ];
        c.check_graph(&input, &outs).unwrap();
        c.check_graph(&[("input".into(), vec![1, 192, 192, 3])], &outs)
            .unwrap();
        let e = c
            .check_graph(&[("input".into(), vec![1, 3, 192, 192])], &outs)
            .unwrap_err();
        assert!(
            matches!(e, ContractError::ShapeMismatch { kind: "input", .. }),
            "{e}"
        );
        let e = c
            .check_graph(
                &input,
                &[
                    ("landmarks".to_string(), vec![1, 1434]),
                    ("score".to_string(), vec![1, 1]),
                ],
            )
            .unwrap_err();
        assert!(e.to_string().contains("3 x affect.mesh.landmarks"), "{e}");
        let e = c.check_graph(&input, &outs[..1]).unwrap_err();
        assert!(e.to_string().contains("score"), "{e}");
    }

    #[test]
    fn bundled_face_mesh_declares_its_contract() {
        let path = crate::weights::weights_dir().join("face-mesh.onnx");
        let c = ModelContract::read_file(&path).unwrap();
        assert_eq!(
            c,
            ModelContract::from_props(&face_mesh_file_props(&path)).unwrap()
        );
        assert_eq!(c.role, Role::FaceMesh);
        assert_eq!(c.prop("affect.license"), Some("Apache-2.0"));
    }

    fn face_mesh_file_props(path: &Path) -> BTreeMap<String, String> {
        let bytes = std::fs::read(path).unwrap();
        crate::onnx::read_metadata(&bytes)
            .unwrap()
            .into_iter()
            .collect()
    }

    #[test]
    fn graph_check_names_missing_tensors_and_shapes() {
        let c = ModelContract::from_props(&detector()).unwrap();
        let outs = [
            ("regressors".to_string(), vec![1, 2304, 16]),
            ("classificators".to_string(), vec![1, 2304, 1]),
        ];
        c.check_graph(&[("input".into(), vec![1, 192, 192, 3])], &outs)
            .unwrap();
        let e = c
            .check_graph(&[("image".into(), vec![1, 192, 192, 3])], &outs)
            .unwrap_err();
        assert_eq!(
            e,
            ContractError::MissingTensor {
                kind: "input",
                name: "input".into(),
                available: "image".into()
            }
        );
        let e = c
            .check_graph(&[("input".into(), vec![1, 3, 192, 192])], &outs)
            .unwrap_err();
        assert!(matches!(e, ContractError::ShapeMismatch { .. }), "{e}");
        let e = c
            .check_graph(&[("input".into(), vec![1, 192, 192, 3])], &outs[..1])
            .unwrap_err();
        assert!(e.to_string().contains("classificators"));
    }
}
