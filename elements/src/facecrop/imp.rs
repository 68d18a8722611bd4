// SPDX-License-Identifier: MPL-2.0
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use affect::face::{
    AlignTemplate, BlazeFaceDecoder, DetectSchedule, Detection, DetectorKind, FaceError, Frame,
    MtcnnConfig, MtcnnDetector, PixelFormat, PostProcess, Preprocessor, Resample, ScheduleConfig,
    TensorSpec, Thumbnail, TrackedFace, Tracker, TrackerConfig, Yuv420, YuvMatrix,
    filter_detections, postprocess, warp_rgb,
};
use affect::face::{FaceMesh, MeshResult, MeshRoi};
use affect::results::FaceCrop as FaceCropData;
use affect::runtime::{InputSpec, Model, Role};
use gst::glib;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::prelude::*;
use gst_video::prelude::*;
use ndarray::{ArrayViewD, IxDyn};

use crate::common::LockExt;
use crate::common::ModelSettings;
use crate::meta::{FaceCropMeta, FaceParams, add_face_roi};

mod props;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "facecrop",
        gst::DebugColorFlags::empty(),
        Some("Face detection, alignment and tracking"),
    )
});

const DEFAULT_MODEL: &str = "blazeface-full";
const DEFAULT_SCORE_THRESHOLD: f32 = 0.65;
const DEFAULT_NMS_THRESHOLD: f32 = 0.3;
const DEFAULT_MAX_FACES: u32 = 0;
const DEFAULT_MIN_FACE_SIZE: u32 = 0;
const DEFAULT_CROP_SIZE: u32 = 112;
const DEFAULT_CROP_MARGIN: f32 = 0.0;
const DEFAULT_DETECT_INTERVAL: u32 = 1;
const DEFAULT_MAX_DETECT_INTERVAL: u32 = 15;
const DEFAULT_MAX_AGE: u32 = 10;
const DEFAULT_POST_MESSAGES: bool = false;
const DEFAULT_MESH: bool = false;
const DEFAULT_MESH_INTERVAL: u32 = 1;
const DEFAULT_MESH_MODEL: &str = "face-mesh";

const FORMATS: [&str; 7] = ["RGB", "RGBx", "BGRx", "RGBA", "BGRA", "I420", "NV12"];

#[derive(Debug, Clone)]
struct Settings {
    model: ModelSettings,
    score_threshold: f32,
    nms_threshold: f32,
    max_faces: u32,
    min_face_size: u32,
    crop_size: u32,
    crop_margin: f32,
    detect_interval: u32,
    max_detect_interval: u32,
    max_age: u32,
    post_messages: bool,
    mesh: bool,
    mesh_interval: u32,
    mesh_model: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            model: ModelSettings::new(DEFAULT_MODEL),
            score_threshold: DEFAULT_SCORE_THRESHOLD,
            nms_threshold: DEFAULT_NMS_THRESHOLD,
            max_faces: DEFAULT_MAX_FACES,
            min_face_size: DEFAULT_MIN_FACE_SIZE,
            crop_size: DEFAULT_CROP_SIZE,
            crop_margin: DEFAULT_CROP_MARGIN,
            detect_interval: DEFAULT_DETECT_INTERVAL,
            max_detect_interval: DEFAULT_MAX_DETECT_INTERVAL,
            max_age: DEFAULT_MAX_AGE,
            post_messages: DEFAULT_POST_MESSAGES,
            mesh: DEFAULT_MESH,
            mesh_interval: DEFAULT_MESH_INTERVAL,
            mesh_model: DEFAULT_MESH_MODEL.to_owned(),
        }
    }
}

/// BlazeFace: one model, letterboxed input, anchor decoding.
struct BlazeFace {
    model: Model,
    input_name: String,
    decoder: BlazeFaceDecoder,
    pre: Preprocessor,
    input: Vec<f32>,
    input_shape: Vec<usize>,
}

enum Detector {
    BlazeFace(Box<BlazeFace>),
    Mtcnn(Box<MtcnnDetector>),
}

/// Detection-time settings, copied from `Settings` per frame.
struct DetectParams {
    score_threshold: f32,
    post: PostProcess,
}

impl Detector {
    fn detect(&mut self, frame: &Frame<'_>, p: &DetectParams) -> Result<Vec<Detection>, String> {
        match self {
            Detector::BlazeFace(b) => {
                let lb = b
                    .pre
                    .prepare(frame, &mut b.input)
                    .map_err(|e| format!("preprocessing failed: {e}"))?;
                let view = ArrayViewD::from_shape(IxDyn(&b.input_shape), &b.input)
                    .map_err(|e| e.to_string())?;
                let decoder = &b.decoder;
                b.model
                    .run_f32_with(&[(b.input_name.as_str(), view)], |out| {
                        decoder.decode_outputs(out, p.score_threshold)
                    })
                    .map_err(|e| e.to_string())?
                    .and_then(|d| postprocess(&d, &lb, &p.post))
                    .map_err(|e| format!("detector output: {e}"))
            }
            Detector::Mtcnn(m) => {
                let dets = m.detect(frame).map_err(|e| format!("MTCNN: {e}"))?;
                let dets = dets
                    .into_iter()
                    .filter(|d| d.score >= p.score_threshold)
                    .collect();
                Ok(filter_detections(
                    dets,
                    p.post.min_face_size,
                    p.post.max_faces,
                ))
            }
        }
    }
}

struct State {
    detector: Detector,
    template: AlignTemplate,
    tracker: Tracker,
    /// `detect-interval=0`: when the detector runs.
    schedule: DetectSchedule,
    /// The boxes reported on the last frame.
    tracked: Vec<affect::face::BBox>,
    detector_runs: u64,
    info: Option<gst_video::VideoInfo>,
    frames: u64,
    rgb: Vec<u8>,
    /// `mesh=true`: the mesh model and each track's last mesh (with the frame it was
    /// computed on and its box centre then).
    mesh: Option<FaceMesh>,
    meshes: HashMap<u64, (u64, [f32; 2], Arc<MeshResult>)>,
}

#[derive(Default)]
pub struct FaceCrop {
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
}

#[glib::object_subclass]
impl ObjectSubclass for FaceCrop {
    const NAME: &'static str = "GstAffectFaceCrop";
    type Type = super::FaceCrop;
    type ParentType = gst_base::BaseTransform;
}

impl GstObjectImpl for FaceCrop {}

impl ElementImpl for FaceCrop {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            crate::common::element_metadata(
                "Face crop",
                "Filter/Analyzer/Video",
                "Detects, aligns, crops and tracks faces, attached as face ROI metas with their crops",
                "gst-launch-1.0 -m videotestsrc num-buffers=30 ! video/x-raw,width=640,height=360 ! facecrop post-messages=true ! fakesink",
            )
        });
        Some(&*META)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let caps = gst_video::VideoCapsBuilder::new()
                .format_list(
                    FORMATS
                        .iter()
                        .filter_map(|f| gst_video::VideoFormat::from_string(f).into()),
                )
                .build();
            crate::common::filter_pad_templates(&caps)
        });
        TEMPLATES.as_ref()
    }
}

fn face_error(e: FaceError) -> gst::ErrorMessage {
    gst::error_msg!(gst::ResourceError::Settings, ("{}", e))
}

impl FaceCrop {
    fn build_state(&self, s: &Settings) -> Result<State, gst::ErrorMessage> {
        // `model=mtcnn` names the three bundled MTCNN stages.
        let mut first = s.model.clone();
        if first.model.trim() == "mtcnn" {
            first.model = "mtcnn-pnet".into();
        }
        let model = first
            .load(Role::FaceDetector)
            .inspect_err(|e| gst::error!(CAT, imp = self, "{}", e))?;
        gst::info!(CAT, imp = self, "model {}", model.summary());
        let kind = DetectorKind::from_contract(model.contract()).map_err(face_error)?;
        let detector = if kind == DetectorKind::Mtcnn {
            Detector::Mtcnn(Box::new(self.load_mtcnn(&first, model, s)?))
        } else {
            let InputSpec::Image(img) = &model.contract().input else {
                return Err(gst::error_msg!(
                    gst::ResourceError::Settings,
                    ("detector contract has no image input")
                ));
            };
            let spec = TensorSpec::from_image_input(img).map_err(face_error)?;
            let input_name = img.name.clone();
            Detector::BlazeFace(Box::new(BlazeFace {
                decoder: BlazeFaceDecoder::new(kind).map_err(face_error)?,
                input_shape: spec.shape().to_vec(),
                input: vec![0.0; spec.len()],
                input_name,
                pre: Preprocessor::new(spec, Resample::Antialiased).map_err(face_error)?,
                model,
            }))
        };
        let template = AlignTemplate::for_detector(kind, s.crop_size as usize, s.crop_margin)
            .map_err(face_error)?;
        let interval = if s.detect_interval == 0 {
            s.max_detect_interval
        } else {
            s.detect_interval
        };
        let tracker = Tracker::new(TrackerConfig {
            max_age: s.max_age.max(2 * interval),
            ..Default::default()
        });
        Ok(State {
            detector,
            template,
            tracker,
            schedule: DetectSchedule::new(ScheduleConfig {
                max_interval: s.max_detect_interval,
                ..Default::default()
            }),
            tracked: Vec::new(),
            detector_runs: 0,
            info: None,
            frames: 0,
            rgb: Vec::new(),
            mesh: if s.mesh {
                Some(self.load_mesh(s)?)
            } else {
                None
            },
            meshes: HashMap::new(),
        })
    }

    /// `mesh=true`: runs the mesh model, in one batch, on every face whose mesh is due (a
    /// new track at once, then every `interval` frames); the others keep their last mesh,
    /// moved with their box. Tracks that ended are forgotten.
    fn update_meshes(
        &self,
        model: &mut FaceMesh,
        meshes: &mut HashMap<u64, (u64, [f32; 2], Arc<MeshResult>)>,
        frame: &Frame<'_>,
        faces: &[TrackedFace],
        frame_no: u64,
        interval: u32,
    ) -> Result<(), gst::FlowError> {
        meshes.retain(|id, _| faces.iter().any(|f| f.track_id == *id));
        let centre = |b: &affect::face::BBox| [(b.x0 + b.x1) / 2.0, (b.y0 + b.y1) / 2.0];
        let mut due = Vec::new();
        let mut rois = Vec::new();
        for f in faces {
            let b = &f.detection.bbox;
            let c = centre(b);
            let small = (b.x1 - b.x0).min(b.y1 - b.y0) < affect::face::mesh::MIN_FACE_PX;
            if small || !(b.x1 - b.x0).is_finite() || !(b.y1 - b.y0).is_finite() {
                // Too small for the mesh: no mesh (and no stale one) for this frame.
                meshes.remove(&f.track_id);
                continue;
            }
            match meshes.get_mut(&f.track_id) {
                Some((at, was, mesh)) if frame_no.saturating_sub(*at) < u64::from(interval) => {
                    let (dx, dy) = (c[0] - was[0], c[1] - was[1]);
                    if dx != 0.0 || dy != 0.0 {
                        let mut moved = (**mesh).clone();
                        moved.points.iter_mut().for_each(|p| {
                            p[0] += dx;
                            p[1] += dy;
                        });
                        *mesh = Arc::new(moved);
                        *was = c;
                    }
                }
                _ => {
                    let k = &f.detection.keypoints;
                    let eyes = (k.len() >= 2).then(|| (k[0], k[1]));
                    if let Some(r) = MeshRoi::from_box(
                        [b.x0, b.y0, b.x1 - b.x0, b.y1 - b.y0],
                        eyes,
                        affect::face::mesh::DEFAULT_ROI_SCALE,
                    ) {
                        due.push((f.track_id, c));
                        rois.push(r);
                    }
                }
            }
        }
        let out = model.run(frame, &rois).map_err(|e| {
            gst::element_imp_error!(self, gst::StreamError::Failed, ("face mesh: {}", e));
            gst::FlowError::Error
        })?;
        for ((id, c), m) in due.into_iter().zip(out) {
            if m.score >= affect::face::mesh::MIN_SCORE {
                meshes.insert(id, (frame_no, c, Arc::new(m)));
            } else {
                // Not a face to the mesh model (a false detection, a profile, a blur):
                // no mesh, tried again next frame.
                meshes.remove(&id);
            }
        }
        Ok(())
    }

    /// The `mesh-model`, with the detector's provider, device, threads and library.
    fn load_mesh(&self, s: &Settings) -> Result<FaceMesh, gst::ErrorMessage> {
        let mut ms = s.model.clone();
        ms.model = s.mesh_model.clone();
        let model = ms
            .load(Role::FaceMesh)
            .inspect_err(|e| gst::error!(CAT, imp = self, "{}", e))?;
        gst::info!(CAT, imp = self, "mesh model {}", model.summary());
        FaceMesh::new(model).map_err(face_error)
    }

    /// Loads the R-Net and O-Net next to a P-Net file (`…pnet…` → `…rnet…`, `…onet…`).
    fn load_mtcnn(
        &self,
        first: &ModelSettings,
        pnet: Model,
        s: &Settings,
    ) -> Result<MtcnnDetector, gst::ErrorMessage> {
        let path = pnet.path().to_path_buf();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !name.contains("pnet") {
            return Err(gst::error_msg!(
                gst::ResourceError::Settings,
                (
                    "MTCNN: give the P-Net file (its name must contain `pnet`; R-Net and O-Net are loaded from the same folder), got {}",
                    path.display()
                )
            ));
        }
        let stage = |which: &str| -> Result<Model, gst::ErrorMessage> {
            let mut m = first.clone();
            m.model = path
                .with_file_name(name.replace("pnet", which))
                .to_string_lossy()
                .into_owned();
            m.load(Role::FaceDetector)
        };
        let config = MtcnnConfig {
            min_face_size: if s.min_face_size > 0 {
                s.min_face_size as f32
            } else {
                MtcnnConfig::default().min_face_size
            },
            ..Default::default()
        };
        MtcnnDetector::new(pnet, stage("rnet")?, stage("onet")?, config).map_err(face_error)
    }

    fn post_faces(&self, buf: &gst::BufferRef, faces: &[TrackedFace], detected: bool) {
        let obj = self.obj();
        let segment = obj.segment();
        let segment = segment.downcast_ref::<gst::ClockTime>();
        let pts = buf.pts();
        let list = gst::List::new(faces.iter().map(|f| {
            let d = &f.detection;
            gst::Structure::builder("face")
                .field("track-id", f.track_id)
                .field("x", d.bbox.x0 as f64)
                .field("y", d.bbox.y0 as f64)
                .field("width", d.bbox.width() as f64)
                .field("height", d.bbox.height() as f64)
                .field("score", d.score as f64)
                .field(
                    "landmarks",
                    gst::Array::new(d.keypoints.iter().flat_map(|p| [p[0] as f64, p[1] as f64])),
                )
                .build()
        }));
        let mut s = gst::Structure::builder("facecrop").field("detected", detected);
        if let Some(pts) = pts {
            s = crate::common::with_segment_times(
                s.field("timestamp", pts.nseconds()),
                segment,
                pts,
            );
        }
        if let Some(d) = buf.duration() {
            s = s.field("duration", d.nseconds());
        }
        crate::common::post_element_message(&*obj, s.field("faces", list).build());
    }
}

/// Borrows a mapped frame as packed RGB-family pixels, converting YUV into `scratch`.
fn as_frame<'a>(
    vframe: &'a gst_video::VideoFrameRef<&gst::BufferRef>,
    scratch: &'a mut Vec<u8>,
) -> Result<Frame<'a>, String> {
    let info = vframe.info();
    let (w, h) = (info.width() as usize, info.height() as usize);
    let plane = |i: u32| vframe.plane_data(i).map_err(|e| e.to_string());
    let stride = |i: usize| info.stride()[i] as usize;
    match info.format() {
        gst_video::VideoFormat::I420 | gst_video::VideoFormat::Nv12 => {
            let nv12 = info.format() == gst_video::VideoFormat::Nv12;
            let colorimetry = info.colorimetry();
            let yuv = Yuv420 {
                width: w,
                height: h,
                y: (plane(0)?, stride(0)),
                u: (plane(1)?, stride(1)),
                v: if nv12 {
                    (plane(1)?, stride(1))
                } else {
                    (plane(2)?, stride(2))
                },
                nv12,
                matrix: if colorimetry.matrix() == gst_video::VideoColorMatrix::Bt709 {
                    YuvMatrix::Bt709
                } else {
                    YuvMatrix::Bt601
                },
                full_range: colorimetry.range() == gst_video::VideoColorRange::Range0_255,
            };
            yuv.to_rgb(scratch).map_err(|e| e.to_string())?;
            Frame::packed(scratch, w, h, PixelFormat::Rgb).map_err(|e| e.to_string())
        }
        f => {
            let format = PixelFormat::from_gst_name(f.to_str())
                .ok_or_else(|| format!("unsupported format {f:?}"))?;
            Frame::new(plane(0)?, w, h, stride(0), format).map_err(|e| e.to_string())
        }
    }
}

impl BaseTransformImpl for FaceCrop {
    const MODE: gst_base::subclass::BaseTransformMode =
        gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    fn query(&self, direction: gst::PadDirection, query: &mut gst::QueryRef) -> bool {
        let latency = matches!(query.view(), gst::QueryView::Latency(_));
        let ok = BaseTransformImplExt::parent_query(self, direction, query);
        if ok && latency && direction == gst::PadDirection::Src {
            // Cross-stream batching may hold each run up to max-batch-latency.
            let extra = self.settings.locked().model.batch_latency();
            crate::common::add_latency(query, extra);
        }
        ok
    }

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = self.settings.locked().clone();
        let state = self.build_state(&settings)?;
        *self.state.locked() = Some(state);
        if let Some(w) = settings.model.threads_warning() {
            gst::element_imp_warning!(self, gst::LibraryError::Settings, ("{}", w));
        }
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        if let Some(s) = self.state.locked().take() {
            gst::debug!(
                CAT,
                imp = self,
                "processed {} frames, detector ran on {}",
                s.frames,
                s.detector_runs
            );
        }
        Ok(())
    }

    fn set_caps(&self, incaps: &gst::Caps, _outcaps: &gst::Caps) -> Result<(), gst::LoggableError> {
        let info = gst_video::VideoInfo::from_caps(incaps)
            .map_err(|_| gst::loggable_error!(CAT, "invalid video caps {}", incaps))?;
        let mut guard = self.state.locked();
        if let Some(state) = guard.as_mut() {
            if state
                .info
                .as_ref()
                .is_some_and(|old| old.width() != info.width() || old.height() != info.height())
            {
                gst::debug!(
                    CAT,
                    imp = self,
                    "frame size changed to {}x{}: tracks restart",
                    info.width(),
                    info.height()
                );
                state.tracker.reset();
                state.schedule.reset();
            }
            state.info = Some(info);
        }
        Ok(())
    }

    fn sink_event(&self, event: gst::Event) -> bool {
        if matches!(
            event.view(),
            gst::EventView::FlushStop(_) | gst::EventView::Segment(_)
        ) && let Some(state) = self.state.locked().as_mut()
        {
            state.tracker.reset();
            state.schedule.reset();
        }
        self.parent_sink_event(event)
    }

    fn transform_ip(&self, buf: &mut gst::BufferRef) -> Result<gst::FlowSuccess, gst::FlowError> {
        let s = self.settings.locked().clone();
        let mut guard = self.state.locked();
        let Some(state) = guard.as_mut() else {
            return Err(gst::FlowError::Flushing);
        };
        let Some(info) = state.info.clone() else {
            gst::element_imp_error!(
                self,
                gst::CoreError::Negotiation,
                ("no caps before the first buffer")
            );
            return Err(gst::FlowError::NotNegotiated);
        };
        let fixed = s.detect_interval > 0;
        let fixed_detect = fixed
            && (state.frames.is_multiple_of(s.detect_interval as u64) || state.tracker.is_empty());
        state.frames += 1;

        let (faces, crops, detected) = {
            let vframe =
                gst_video::VideoFrameRef::from_buffer_ref_readable(&*buf, &info).map_err(|_| {
                    gst::element_imp_error!(
                        self,
                        gst::StreamError::Format,
                        ("cannot map the video frame for reading")
                    );
                    gst::FlowError::Error
                })?;
            let State {
                detector,
                template,
                tracker,
                schedule,
                tracked,
                detector_runs,
                rgb,
                mesh,
                meshes,
                frames,
                ..
            } = state;
            let frame = as_frame(&vframe, rgb).map_err(|e| {
                gst::element_imp_error!(self, gst::StreamError::Format, ("{}", e));
                gst::FlowError::Error
            })?;
            let detect = fixed_detect
                || (!fixed && schedule.decide(Thumbnail::of(&frame), tracked).is_some());
            if detect {
                *detector_runs += 1;
            }
            let faces = if detect {
                let params = DetectParams {
                    score_threshold: s.score_threshold,
                    post: PostProcess {
                        iou_threshold: s.nms_threshold,
                        min_face_size: s.min_face_size as f32,
                        max_faces: s.max_faces as usize,
                        ..Default::default()
                    },
                };
                let dets = detector.detect(&frame, &params).map_err(|e| {
                    gst::element_imp_error!(self, gst::StreamError::Failed, ("{}", e));
                    gst::FlowError::Error
                })?;
                tracker.update(&dets)
            } else {
                tracker.predict()
            };
            *tracked = faces.iter().map(|f| f.detection.bbox).collect();
            let size = template.size();
            let crops: Vec<Option<Vec<u8>>> = faces
                .iter()
                .map(|f| {
                    let sim = template.transform(&f.detection.keypoints).ok()?;
                    warp_rgb(&frame, &sim, size, size).ok()
                })
                .collect();
            if let Some(m) = mesh.as_mut() {
                self.update_meshes(m, meshes, &frame, &faces, *frames, s.mesh_interval)?;
            }
            (faces, crops, detect)
        };
        // Each face's mesh and its age in frames (meshes keep the frame count they were
        // computed at).
        let face_meshes: Vec<Option<(Arc<MeshResult>, u32)>> = faces
            .iter()
            .map(|f| {
                state.meshes.get(&f.track_id).map(|m| {
                    let age = state.frames.saturating_sub(m.0);
                    (m.2.clone(), u32::try_from(age).unwrap_or(u32::MAX))
                })
            })
            .collect();
        let (w, h) = (info.width(), info.height());
        let size = state.template.size() as u32;
        drop(guard);

        for ((f, crop), mesh) in faces.iter().zip(crops).zip(face_meshes) {
            let d = &f.detection;
            add_face_roi(
                buf,
                Some((w, h)),
                f.track_id,
                &d.face_box(),
                &FaceParams {
                    score: Some(d.score),
                    landmarks: &d.keypoints,
                    mesh: mesh.as_ref().map(|m| &*m.0),
                    mesh_age: mesh.as_ref().map_or(0, |m| m.1),
                },
                None,
            );
            match crop {
                Some(rgb) => {
                    FaceCropMeta::add(
                        buf,
                        Arc::new(FaceCropData {
                            track_id: f.track_id,
                            bbox: d.face_box(),
                            score: d.score,
                            landmarks: d.keypoints.clone(),
                            width: size,
                            height: size,
                            rgb,
                            mesh: mesh.map(|m| m.0),
                        }),
                    );
                }
                None => gst::warning!(
                    CAT,
                    imp = self,
                    "track {}: landmarks cannot be aligned, no crop",
                    f.track_id
                ),
            }
        }
        if s.post_messages {
            self.post_faces(buf, &faces, detected);
        }
        Ok(gst::FlowSuccess::Ok)
    }
}
