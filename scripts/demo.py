#!/usr/bin/python3
"""`make demo`: the full audio-visual pipeline on a bundled sample clip.

video: decode → facecrop → featextract → avfuse → affectoverlay → H.264 → out/annotated.mp4
audio: decode → audiodenoise → featextract ─┘
Writes out/annotated.mp4, out/affect.ndjson (one line per frame per face),
out/affect_track<N>.va.csv / .expr.csv (Aff-Wild2 layout) and out/speech.ndjson, and
prints a summary. The default fusion model is a documented baseline (expression
probabilities on the valence/arousal circumplex), not a learned model.
Needs Debian's python3-gi and GST_PLUGIN_PATH pointing at libgstaffect.so.
"""
import json
import os
import sys
import time

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstPbutils", "1.0")
from gi.repository import Gst  # noqa: E402


def clip_has_audio(clip):
    """Whether the clip has an audio stream (GstPbutils.Discoverer, in-process)."""
    from gi.repository import GstPbutils

    info = GstPbutils.Discoverer.new(30 * Gst.SECOND).discover_uri(Gst.filename_to_uri(os.path.abspath(clip)))
    if not info.get_video_streams():
        sys.exit(f"demo: {clip} has no video stream")
    return bool(info.get_audio_streams())


def main():
    clip = sys.argv[1] if len(sys.argv) > 1 else ".cache/media/sample.mp4"
    out_dir = sys.argv[2] if len(sys.argv) > 2 else "out"
    os.makedirs(out_dir, exist_ok=True)
    Gst.init(None)
    ndjson = os.path.join(out_dir, "affect.ndjson")
    for stale in os.listdir(out_dir):
        if stale.startswith("affect") or stale == "annotated.mp4":
            os.remove(os.path.join(out_dir, stale))
    # Only the branches the clip has: an audio branch that decodebin never links would
    # hold the video until avfuse's audio-timeout.
    has_audio = clip_has_audio(clip)
    audio = (
        "d. ! queue ! audioconvert ! audioresample ! audio/x-raw,format=F32LE,rate=48000,channels=1 "
        "! audiodenoise post-messages=true ! featextract ! queue ! f.audio_sink"
        if has_audio
        else ""
    )
    pipe = Gst.parse_launch(
        f'filesrc location="{clip}" ! decodebin name=d '
        "d. ! queue ! videoconvert ! facecrop mesh=true ! queue ! featextract ! queue "
        f'! avfuse name=f location="{ndjson}" csv-location="{os.path.join(out_dir, "affect")}" '
        "! affectoverlay ! videoconvert ! openh264enc bitrate=4000000 ! h264parse ! mp4mux "
        f'! filesink location="{os.path.join(out_dir, "annotated.mp4")}" ' + audio
    )
    bus = pipe.get_bus()
    frames = 0
    speech = []
    start = time.monotonic()
    pipe.set_state(Gst.State.PLAYING)
    with open(os.path.join(out_dir, "speech.ndjson"), "w") as so:
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
            if name == "affect":
                frames += 1
            elif name in ("speech-start", "speech-end"):
                ev = {"event": name, "timestamp": s.get_value("timestamp")}
                speech.append(ev)
                so.write(json.dumps(ev) + "\n")
            elif name == "speaker-change":
                ev = {"event": name, "timestamp": s.get_value("timestamp")}
                if s.has_field("track-id"):
                    ev["track_id"] = s.get_value("track-id")
                speech.append(ev)
                so.write(json.dumps(ev) + "\n")
    elapsed = time.monotonic() - start
    pipe.set_state(Gst.State.NULL)

    records = [json.loads(line) for line in open(ndjson)]
    tracks = sorted({r["track_id"] for r in records})
    hist = {}
    for r in records:
        hist[r["expression"]] = hist.get(r["expression"], 0) + 1
    duration = (max(r["pts"] for r in records) / 1e9) if records else 0.0
    print(f"clip: {clip}" + ("" if has_audio else " (no audio stream: audio masked)"))
    print(f"frames: {frames}, face records: {len(records)}, tracks: {tracks}")
    if records:
        mv = sum(r["valence"] for r in records) / len(records)
        ma = sum(r["arousal"] for r in records) / len(records)
        print(f"mean valence {mv:+.3f}, mean arousal {ma:+.3f}")
        print("expressions: " + ", ".join(f"{k} {v}" for k, v in sorted(hist.items(), key=lambda kv: -kv[1])))
        speaking = sum(1 for r in records if r.get("speaker"))
        print(f"voice given to a face on {speaking} of {len(records)} face records (audio-attribution=speaker: "
              "only while its mouth moves with the voice; the sample's speech is dubbed onto the clip)")
    for ev in speech:
        who = f" (track {ev['track_id']})" if "track_id" in ev else ""
        print(f"  {ev['event']:<14} at {ev['timestamp'] / 1e9:6.2f} s{who}")
    rtf = f"{duration / elapsed:.2f}x real time" if elapsed > 0 and duration > 0 else "n/a"
    print(f"wall time {elapsed:.2f} s ({rtf}, debug build)")
    print(f"outputs: {out_dir}/annotated.mp4, {ndjson}, {out_dir}/affect_track*.csv, {out_dir}/speech.ndjson (va-timeline.png follows)")
    print("note: the default fusion model is a baseline (circumplex mapping), not a learned model.")


if __name__ == "__main__":
    main()
