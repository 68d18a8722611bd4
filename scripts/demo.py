#!/usr/bin/python3
"""`make demo`: runs gst-affect's face and voice branches on a bundled sample clip.

Writes out/faces.ndjson (one line per frame per face: pts, track id, box, score,
landmarks) and out/speech.ndjson (speech-start / speech-end events), and prints a
summary. Fusion into valence/arousal (avfuse) is not in this build yet.
Needs Debian's python3-gi and GST_PLUGIN_PATH pointing at libgstaffect.so.
"""
import json
import os
import sys
import time

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402


def main():
    clip = sys.argv[1] if len(sys.argv) > 1 else ".cache/media/face_noface.mov"
    out_dir = sys.argv[2] if len(sys.argv) > 2 else "out"
    os.makedirs(out_dir, exist_ok=True)
    Gst.init(None)
    pipe = Gst.parse_launch(
        f'filesrc location="{clip}" ! decodebin name=d '
        "d. ! queue ! videoconvert ! facecrop post-messages=true ! fakesink sync=false "
        "d. ! queue ! audioconvert ! audioresample ! audio/x-raw,format=F32LE,rate=48000,channels=1 "
        "! audiodenoise post-messages=true ! fakesink sync=false"
    )
    bus = pipe.get_bus()
    frames = faces = 0
    tracks = set()
    speech = []
    start = time.monotonic()
    pipe.set_state(Gst.State.PLAYING)
    with open(os.path.join(out_dir, "faces.ndjson"), "w") as fo, open(
        os.path.join(out_dir, "speech.ndjson"), "w"
    ) as so:
        while True:
            msg = bus.timed_pop_filtered(
                60 * Gst.SECOND, Gst.MessageType.ELEMENT | Gst.MessageType.EOS | Gst.MessageType.ERROR
            )
            if msg is None:
                sys.exit("demo: no message for 60 s")
            if msg.type == Gst.MessageType.ERROR:
                err, dbg = msg.parse_error()
                sys.exit(f"demo: {err.message} ({dbg})")
            if msg.type == Gst.MessageType.EOS:
                break
            s = msg.get_structure()
            name = s.get_name()
            if name == "facecrop":
                frames += 1
                pts = s.get_value("timestamp")
                for f in s.get_value("faces") or []:
                    faces += 1
                    tracks.add(f.get_value("track-id"))
                    fo.write(json.dumps({
                        "pts": pts,
                        "track_id": f.get_value("track-id"),
                        "box": [round(f.get_value(k), 1) for k in ("x", "y", "width", "height")],
                        "score": round(f.get_value("score"), 4),
                        "landmarks": [round(v, 1) for v in f.get_value("landmarks")],
                    }) + "\n")
            elif name in ("speech-start", "speech-end"):
                ev = {"event": name, "timestamp": s.get_value("timestamp")}
                speech.append(ev)
                so.write(json.dumps(ev) + "\n")
    elapsed = time.monotonic() - start
    pipe.set_state(Gst.State.NULL)
    print(f"clip: {clip}")
    print(f"video frames: {frames}, face detections: {faces}, tracks: {sorted(tracks)}")
    for ev in speech:
        print(f"  {ev['event']:<12} at {ev['timestamp'] / 1e9:6.2f} s")
    print(f"wall time {elapsed:.2f} s; results in {out_dir}/faces.ndjson and {out_dir}/speech.ndjson")
    print("valence/arousal fusion (avfuse), the overlay and the VA timeline arrive in a later build.")


if __name__ == "__main__":
    main()
