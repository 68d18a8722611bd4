#!/usr/bin/python3
"""Reads gst-affect results from buffers in Python (PyGObject), as an app would.

Usage: read_affect_meta.py AFFECT.ndjson
Runs videotestsrc ! affectreplay ! appsink and prints, per frame, what the
GstAffectMeta custom meta and the face ROI `affect` params hold, as JSON lines.
Needs Debian's python3-gi, python3-gst-1.0 and GST_PLUGIN_PATH pointing at libgstaffect.so.
"""
import json
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstVideo", "1.0")
from gi.repository import GLib, Gst, GstVideo  # noqa: E402


def structure_to_dict(s):
    out = {}
    for i in range(s.n_fields()):
        name = s.nth_field_name(i)
        value = s.get_value(name)
        if isinstance(value, Gst.Structure):
            value = structure_to_dict(value)
        elif hasattr(value, "array"):  # Gst.ValueArray / Gst.ValueList from gst-python
            value = [structure_to_dict(v) if isinstance(v, Gst.Structure) else v for v in value.array]
        elif isinstance(value, (list, tuple)):
            value = [structure_to_dict(v) if isinstance(v, Gst.Structure) else v for v in value]
        out[name] = value
    return out


def main():
    Gst.init(None)
    pipe = Gst.parse_launch(
        "videotestsrc num-buffers=3 ! video/x-raw,width=64,height=48,framerate=25/1 "
        f"! affectreplay location={sys.argv[1]} ! appsink name=out sync=false"
    )
    sink = pipe.get_by_name("out")
    pipe.set_state(Gst.State.PLAYING)
    while True:
        sample = sink.emit("pull-sample")
        if sample is None:
            break
        buf = sample.get_buffer()
        frame = {"pts": buf.pts, "meta": None, "rois": []}
        meta = buf.get_custom_meta("GstAffectMeta")
        if meta is not None:
            frame["meta"] = structure_to_dict(meta.get_structure())
        roi_id = 0
        while True:
            roi = GstVideo.buffer_get_video_region_of_interest_meta_id(buf, roi_id)
            if roi is None:
                break
            entry = {"type": GLib.quark_to_string(roi.roi_type), "x": roi.x, "y": roi.y, "w": roi.w, "h": roi.h}
            for param in ("face", "affect"):
                s = roi.get_param(param)
                entry[param] = structure_to_dict(s) if s is not None else None
            frame["rois"].append(entry)
            roi_id += 1
        print(json.dumps(frame), flush=True)
    pipe.set_state(Gst.State.NULL)


if __name__ == "__main__":
    main()
