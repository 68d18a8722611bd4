"""Audio branch benchmark, Python side: the voice-prosody features of every 1 s window
(80 ms hop) computed with librosa + numpy the way a user would (log-mel, RMS loudness,
YIN F0, spectral centroid, zero-crossing rate, their functionals), the bundled graph run
per window from Python, and the side-by-side table with the element runs measured by
run.sh (CPU seconds on one core for the 60 s clip and for the same clip five times).

Element columns: "60 s clip" = 60 s / CPU seconds of the 60 s run less those of the same
run with `identity` (process start-up, model loading included); "steady" = 240 s / the
extra CPU seconds of the 300 s run over the 60 s run (model loading excluded); "start-up"
= what the 60 s run costs beyond 60 s at the steady rate (ONNX Runtime, sessions).
Python rows: CPU seconds of the loop itself (models loaded beforehand)."""
import sys
import time

import librosa
import numpy as np
import onnxruntime as ort

clip, weights, results = sys.argv[1], sys.argv[2], sys.argv[3]

rows = []
for line in open(results):
    name, cpu = line.rstrip("\n").split("|")
    c60, c300 = (float(v) for v in cpu.split())
    rows.append((name, c60, c300))
base60, base300 = rows[0][1], rows[0][2]

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
    f0 = librosa.yin(x, fmin=60, fmax=500, sr=sr, frame_length=827, hop_length=160,
                     center=False)
    cent = librosa.feature.spectral_centroid(y=x, sr=sr, n_fft=400, hop_length=160, center=False)[0]
    zcr = librosa.feature.zero_crossing_rate(x, frame_length=400, hop_length=160, center=False)[0]
    out = []
    for v in (loud, f0, cent, zcr):
        out += functionals(v)
    return np.concatenate([out, mel.mean(1), mel.std(1)])


# The librosa loop on the first 20 s (it is the slow side), scaled to real time.
n_win = (int(20 * sr) - W) // H + 1
librosa_window(y[:W])  # warm-up (numba compilation)
t = time.process_time()
for k in range(n_win):
    librosa_window(y[k * H:k * H + W])
lib_rtf = 20.0 / (time.process_time() - t)

# The bundled graph from Python (session.run per window, one thread), for reference.
o = ort.SessionOptions()
o.intra_op_num_threads = 1
o.inter_op_num_threads = 1
s = ort.InferenceSession(f"{weights}/voice-prosody.onnx", o, providers=["CPUExecutionProvider"])
s.run(None, {"audio": y[None, :W]})
t = time.process_time()
for k in range(n_win):
    s.run(None, {"audio": y[None, k * H:k * H + W]})
ort_rtf = 20.0 / (time.process_time() - t)

long_extra = 4 * duration  # the 300 s run has 240 s more than the 60 s run


def rates(c60, c300):
    """(60 s clip incl. start-up, steady state, start-up seconds) of an element run."""
    own60 = max(c60 - base60, 1e-6)
    steady = long_extra / max((c300 - base300) - own60, 1e-6)
    return duration / own60, steady, own60 - duration / steady


print(f"{duration:.0f} s of espeak-ng speech (and the same five times), one core (taskset -c 0); "
      f"CPU seconds per gst-launch-1.0 run, less an identity run ({base60:.2f} s / {base300:.2f} s)")
print(f"  {'':62} {'60 s clip':>10} {'steady':>9} {'start-up':>9}")
table = {}
for name, c60, c300 in rows[1:]:
    if np.isnan(c60) or np.isnan(c300):
        table[name] = (np.nan, np.nan)
        print(f"  {name:62} {'(this build cannot run it)':>30}")
        continue
    r60, steady, start = rates(c60, c300)
    table[name] = (r60, steady)
    print(f"  {name:62} {r60:9.1f}x {steady:8.1f}x {start:8.2f} s")
print(f"  {'python: voice-prosody.onnx session.run per window':62} {ort_rtf:9.1f}x")
print(f"  {'python: librosa loop, same features per window':62} {lib_rtf:9.1f}x")
vp60, vp = table["audiodenoise vad=silero -> featextract voice-prosody"]
rn60, rn = table["audiodenoise vad=rnnoise -> featextract voice-prosody"]
oww60, oww = table["audiodenoise vad=silero -> featextract oww-speech-embedding"]
fe60, fe = table["featextract voice-prosody alone"]
print(f"audio branch (vad=silero) vs the librosa loop: {vp / lib_rtf:.1f}x steady, {vp60 / lib_rtf:.1f}x "
      f"on the 60 s clip (target >= 5x)")
print(f"featextract voice-prosody vs the librosa loop: {fe / lib_rtf:.1f}x steady, {fe60 / lib_rtf:.1f}x "
      f"on the 60 s clip")
print(f"audio branch voice-prosody vs oww-speech-embedding: {vp / oww:.2f}x steady")
sn60, sn = table.get("audiodenoise vad=silero alone", (np.nan, np.nan))
so60, so = table.get("audiodenoise vad=silero native=false alone (ONNX Runtime)", (np.nan, np.nan))
print(f"audiodenoise vad=silero, Silero native vs through ONNX Runtime: {sn / so:.2f}x steady")
vo60, vo = table.get("audiodenoise vad=silero enabled=false -> featextract (VAD only)", (np.nan, np.nan))
for label, r in [("vad=silero", vp), ("vad=rnnoise", rn), ("vad=silero enabled=false, not denoised", vo)]:
    print(f"target: audio branch ({label}) >= 300x real time: "
          f"{'met' if r >= 300 else 'NOT met'} ({r:.0f}x steady)")
