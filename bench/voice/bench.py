"""Audio branch benchmark, Python side: the voice-prosody features of every 1 s window
(80 ms hop) computed with librosa + numpy the way a user would (log-mel, RMS loudness,
YIN F0, spectral centroid, zero-crossing rate, their functionals), and the side-by-side
table with the element runs measured by run.sh (wall seconds per 60 s clip, one core)."""
import sys
import time

import librosa
import numpy as np
import onnxruntime as ort

clip, weights = sys.argv[1], sys.argv[2]
base, vp, oww, vp_only, den = (float(v) for v in sys.argv[3:8])

y, sr = librosa.load(clip, sr=16000)
duration = len(y) / sr
W, H = 16000, 1280


def functionals(v):
    return [v.mean(), v.std(), *np.percentile(v, [20, 50, 80])]


def librosa_window(x):
    mel = librosa.power_to_db(
        librosa.feature.melspectrogram(y=x, sr=sr, n_fft=400, hop_length=160, n_mels=64,
                                       center=False, fmax=8000), amin=1e-10)
    rms = librosa.feature.rms(y=x, frame_length=400, hop_length=160, center=False)[0]
    loud = 20 * np.log10(np.maximum(rms, 1e-5))
    f0 = librosa.yin(x, fmin=60, fmax=500, sr=sr, frame_length=827, win_length=560,
                     hop_length=160, center=False)
    cent = librosa.feature.spectral_centroid(y=x, sr=sr, n_fft=400, hop_length=160, center=False)[0]
    zcr = librosa.feature.zero_crossing_rate(x, frame_length=400, hop_length=160, center=False)[0]
    out = []
    for v in (loud, f0, cent, zcr):
        out += functionals(v)
    return np.concatenate([out, mel.mean(1), mel.std(1)])


# The librosa loop on the first 20 s (it is the slow side), scaled to real time.
n_win = (int(20 * sr) - W) // H + 1
librosa_window(y[:W])  # warm-up (numba compilation)
t = time.perf_counter()
for k in range(n_win):
    librosa_window(y[k * H:k * H + W])
lib_s = time.perf_counter() - t
lib_rtf = 20.0 / lib_s

# The model alone from Python (session.run per window, one thread), for reference.
o = ort.SessionOptions()
o.intra_op_num_threads = 1
o.inter_op_num_threads = 1
s = ort.InferenceSession(f"{weights}/voice-prosody.onnx", o, providers=["CPUExecutionProvider"])
s.run(None, {"audio": y[None, :W]})
t = time.perf_counter()
for k in range(n_win):
    s.run(None, {"audio": y[None, k * H:k * H + W]})
ort_rtf = 20.0 / (time.perf_counter() - t)


def rtf(wall):
    """Real-time factor of an element run, process start-up (the identity run) removed."""
    return duration / max(wall - base, 1e-6)


print(f"60 s of espeak-ng speech, one core; element runs by gst-launch-1.0 (start-up {base:.2f} s "
      f"measured with identity and subtracted)")
rows = [
    ("audiodenoise vad=silero -> featextract voice-prosody", rtf(vp)),
    ("audiodenoise vad=silero -> featextract oww-speech-embedding", rtf(oww)),
    ("featextract voice-prosody alone", rtf(vp_only)),
    ("audiodenoise vad=silero alone", rtf(den)),
    ("python: voice-prosody.onnx session.run per window", ort_rtf),
    ("python: librosa loop, same features per window", lib_rtf),
]
for name, r in rows:
    print(f"  {name:62} {r:8.1f}x real time")
print(f"audio branch (voice-prosody) vs the librosa loop: {rtf(vp) / lib_rtf:.2f}x (target >= 5x)")
print(f"audio branch voice-prosody vs oww-speech-embedding: {rtf(vp) / rtf(oww):.2f}x")
print(f"target: audio branch >= 300x real time: {'met' if rtf(vp) >= 300 else 'NOT met'}")
