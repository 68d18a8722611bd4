#!/usr/bin/python3
"""An application that runs gst-affect on a media file and reads its results from Python.

Usage: examples/read_results.py [--no-audio] INPUT

Builds decode → facecrop → featextract → avfuse → fakesink (audio: audiodenoise →
featextract → avfuse), reads per buffer, in a pad probe, the GstAffectMeta custom meta
and the face ROI metas' `affect` params, reads the `affect` element messages from the
bus, and prints one line per frame plus a summary, checking that metas and messages
agree (the same output as the Rust app elements/examples/read_results.rs):

  frame 0.067 s: 1 face [track 1 Neutral v=-0.062 a=+0.041 at 201,110 190x190] rois=1 meta=1 message=1
  summary: frames=72 frames-with-faces=72 face-records=72 messages=72 mismatches=0 tracks=[1]

Needs Debian's python3-gi, python3-gst-1.0 and gir1.2-gst-plugins-base-1.0 (run it with
/usr/bin/python3: another python3 on PATH may lack PyGObject) and GST_PLUGIN_PATH
pointing at the folder of libgstaffect.so (target/debug after `make build`).
"""
import sys
import threading

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstVideo", "1.0")
from gi.repository import GLib, Gst, GstVideo  # noqa: E402

def values(v):
    """A GstValueList / GstValueArray as a Python list (gst-python wraps them)."""
    if hasattr(v, "array"):
        return list(v.array)
    return list(v)


def face_from_structure(s):
    """A per-face `affect` structure as a dict (the layout of gstaffect::meta)."""
    return {
        "track_id": s.get_value("track-id"),
        "box": tuple(s.get_value(k) for k in ("x", "y", "width", "height")),
        "valence": s.get_value("valence"),
        "arousal": s.get_value("arousal"),
        "expression": s.get_value("expression"),
        "probabilities": tuple(values(s.get_value("probabilities"))),
    }


def buffer_results(buf):
    """(faces of the GstAffectMeta custom meta, face ROIs as (roi dict, affect or None))."""
    meta_faces = []
    meta = buf.get_custom_meta("GstAffectMeta")
    if meta is not None:
        meta_faces = [face_from_structure(f) for f in values(meta.get_structure().get_value("faces"))]
    rois = []
    roi_id = 0
    while True:
        roi = GstVideo.buffer_get_video_region_of_interest_meta_id(buf, roi_id)
        if roi is None:
            break
        roi_id += 1
        if GLib.quark_to_string(roi.roi_type) != "face":
            continue
        a = roi.get_param("affect")
        rois.append(({"x": roi.x, "y": roi.y, "w": roi.w, "h": roi.h}, face_from_structure(a) if a else None))
    return meta_faces, rois


class Reader:
    def __init__(self):
        self.lock = threading.Lock()
        self.frames = {}  # pts → {"buffer": (meta_faces, rois), "message": faces}
        self.summary = dict(frames=0, with_faces=0, records=0, messages=0, mismatches=0, tracks=set())

    def on_buffer(self, _pad, info):
        buf = info.get_buffer()
        if buf is not None:
            results = buffer_results(buf)
            with self.lock:
                self.frames.setdefault(buf.pts, {})["buffer"] = results
        return Gst.PadProbeReturn.OK

    def on_message(self, s):
        faces = [face_from_structure(f) for f in values(s.get_value("faces"))]
        pts = s.get_value("timestamp") if s.has_field("timestamp") else Gst.CLOCK_TIME_NONE
        self.summary["messages"] += 1
        with self.lock:
            self.frames.setdefault(pts, {})["message"] = faces

    def print_ready(self, everything=False):
        with self.lock:
            ready = sorted(p for p, f in self.frames.items() if everything or len(f) == 2)
            done = [(p, self.frames.pop(p)) for p in ready]
        for pts, frame in done:
            self.print_frame(pts, frame)

    def print_frame(self, pts, frame):
        meta_faces, rois = frame.get("buffer", ([], []))
        message = frame.get("message", [])

        def by_track(faces):
            return sorted(faces, key=lambda f: f["track_id"])

        roi_faces = [a for _, a in rois if a is not None]
        agree = (
            len(frame) == 2
            and by_track(meta_faces) == by_track(message)
            and by_track(roi_faces) == by_track(meta_faces)
        )
        s = self.summary
        s["frames"] += 1
        s["records"] += len(meta_faces)
        s["with_faces"] += 1 if meta_faces else 0
        s["mismatches"] += 0 if agree else 1
        parts = []
        for f in meta_faces:
            s["tracks"].add(f["track_id"])
            x, y, w, h = f["box"]
            parts.append(
                f"[track {f['track_id']} {f['expression']} v={f['valence']:+.3f} a={f['arousal']:+.3f} "
                f"at {x:.0f},{y:.0f} {w:.0f}x{h:.0f}]"
            )
        n = len(meta_faces)
        print(
            f"frame {pts / 1e9:.3f} s: {n} face{'' if n == 1 else 's'}{''.join(' ' + p for p in parts)} "
            f"rois={len(rois)} meta={n} message={len(message)}{'' if agree else ' MISMATCH'}",
            flush=True,
        )


def main():
    args = sys.argv[1:]
    audio = True
    if args and args[0] == "--no-audio":
        audio = False
        args = args[1:]
    if len(args) != 1:
        sys.exit("usage: read_results.py [--no-audio] INPUT")
    Gst.init(None)
    desc = (
        "filesrc name=src ! decodebin name=d "
        "d. ! video/x-raw ! queue ! videoconvert ! facecrop ! featextract ! queue "
        "! avfuse name=f ! fakesink name=out sync=false"
    )
    if audio:
        desc += (
            " d. ! audio/x-raw ! queue ! audioconvert ! audioresample "
            "! audio/x-raw,format=F32LE,rate=48000,channels=1 "
            "! audiodenoise ! featextract ! queue ! f.audio_sink"
        )
    try:
        pipe = Gst.parse_launch(desc)
    except GLib.Error as e:
        sys.exit(f"read_results.py: {e.message} (is GST_PLUGIN_PATH set to the folder of libgstaffect.so?)")
    pipe.get_by_name("src").set_property("location", args[0])
    reader = Reader()
    pipe.get_by_name("out").get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, reader.on_buffer)
    bus = pipe.get_bus()
    pipe.set_state(Gst.State.PLAYING)
    error = None
    idle = 0
    while True:
        msg = bus.timed_pop_filtered(
            100 * Gst.MSECOND, Gst.MessageType.ELEMENT | Gst.MessageType.EOS | Gst.MessageType.ERROR
        )
        idle = idle + 1 if msg is None else 0
        if idle > 600:
            error = "no message for 60 s"
            break
        if msg is None:
            pass
        elif msg.type == Gst.MessageType.EOS:
            break
        elif msg.type == Gst.MessageType.ERROR:
            err, dbg = msg.parse_error()
            error = f"{err.message} ({dbg})"
            break
        elif msg.get_structure() is not None and msg.get_structure().get_name() == "affect":
            reader.on_message(msg.get_structure())
        reader.print_ready()
    pipe.set_state(Gst.State.NULL)
    if error:
        sys.exit(f"read_results.py: {error}")
    reader.print_ready(everything=True)
    s = reader.summary
    print(
        f"summary: frames={s['frames']} frames-with-faces={s['with_faces']} face-records={s['records']} "
        f"messages={s['messages']} mismatches={s['mismatches']} tracks={sorted(s['tracks'])}"
    )
    if s["mismatches"]:
        sys.exit(f"read_results.py: {s['mismatches']} frames where metas and messages disagree")


if __name__ == "__main__":
    main()
