#!/usr/bin/env python3
# Parity of weights/voice-prosody.onnx with reference implementations (run by
# tests/voice_prosody.rs in the venv of tests/python/prosody-venv.sh):
#   log-mel   vs librosa.feature.melspectrogram (same parameters) + power_to_db:
#             relative error of the mel energies <= 1e-3 on bins within 80 dB of the clip's peak
#   F0        vs librosa.pyin (fmin 60, fmax 500, frame 800, hop 160, center=False: the same frames)
#             on espeak-ng speech at pitch 30 / 50 / 75: median relative error <= 3 % on frames
#             both call voiced, voicing agreement >= 90 % on frames with sound (RMS > -60 dBFS)
#   loudness  vs numpy frame RMS in dBFS: max |diff| <= 0.1 dB
#   functionals: loudness / F0 mean, std, percentiles vs numpy on the model's own contours
# Prints the figures; exits 1 when one is out of bounds.
# Usage: python check_voice_prosody.py MODEL WORKDIR
import subprocess
import sys
import wave
from pathlib import Path

import librosa
import numpy as np
import onnx
import onnxruntime as ort

SR, WINDOW, STEP, YIN_FRAMES, YIN_WIN = 16000, 16000, 160, 95, 560
TEXT = ("The quick brown fox jumps over the lazy dog. She sells sea shells by the sea shore, "
        "and then she rests for a while. How are you feeling today?")
CONTOURS = ["logmel_frames", "loudness_frames", "f0_frames", "voiced_frames"]


def speech(pitch, work):
    raw, out = work / f"espeak-p{pitch}.raw.wav", work / f"espeak-p{pitch}.wav"
    subprocess.run(["espeak-ng", "-p", str(pitch), "-w", str(raw), TEXT], check=True)
    subprocess.run(["sox", "-D", str(raw), "-r", str(SR), "-c", "1", "-b", "16", str(out)], check=True)
    with wave.open(str(out)) as w:
        assert w.getframerate() == SR and w.getnchannels() == 1 and w.getsampwidth() == 2
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768


def session(model_path):
    """The model with its per-frame contours added as graph outputs."""
    m = onnx.load(model_path)
    for name in CONTOURS:
        m.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    return ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])


def run_tiled(sess, y):
    """Windows every 95 F0 frames (15200 samples): the F0 frames of consecutive windows tile the
    clip (global frame t = 95 j + k). Returns the F0 / voicing of all those frames, the windows'
    log-mel and loudness frames and the window starts."""
    starts = list(range(0, len(y) - WINDOW + 1, YIN_FRAMES * STEP))
    x = np.stack([y[s:s + WINDOW] for s in starts])
    out = dict(zip(["features"] + CONTOURS, sess.run(["features"] + CONTOURS, {"audio": x})))
    return out, starts


def main():
    model, work = sys.argv[1], Path(sys.argv[2])
    work.mkdir(parents=True, exist_ok=True)
    sess = session(model)
    names = {p.key: p.value for p in onnx.load(model).metadata_props}
    fnames = names["affect.output.feature-names"].split(",")
    failures = []

    def check(label, value, bound, fmt, ok):
        print(f"{label}: {fmt.format(value)} (bound {bound})")
        if not ok:
            failures.append(label)

    mel_rel, loud_err, f0_err, agree, func_err = [], [], [], [], []
    for pitch in (30, 50, 75):
        y = speech(pitch, work)
        out, starts = run_tiled(sess, y)
        # log-mel and loudness, per window
        for j, s in enumerate(starts):
            seg = y[s:s + WINDOW].astype(np.float64)
            ref = librosa.feature.melspectrogram(
                y=seg, sr=SR, n_fft=400, hop_length=STEP, win_length=400, window="hann",
                center=False, power=2.0, n_mels=64, fmin=0.0, fmax=8000.0, htk=False, norm="slaney").T
            got = 10.0 ** (out["logmel_frames"][j].astype(np.float64) / 10)
            live = ref > ref.max() * 1e-8 if ref.max() > 0 else np.zeros_like(ref, bool)
            if live.any():
                mel_rel.append(np.max(np.abs(got[live] - ref[live]) / ref[live]))
            fr = librosa.util.frame(seg, frame_length=400, hop_length=STEP, axis=0)
            loud_ref = 10 * np.log10(np.mean(fr ** 2, axis=1) + 1e-10)
            loud_err.append(np.max(np.abs(out["loudness_frames"][j] - loud_ref)))
            # functionals against numpy on the model's own contours
            f = dict(zip(fnames, out["features"][j]))
            lc = out["loudness_frames"][j].astype(np.float64)
            ref_fun = {"loudness_mean_db": lc.mean(), "loudness_std_db": lc.std(),
                       **{f"loudness_p{p}_db": np.percentile(lc, p) for p in (20, 50, 80)}}
            v = out["voiced_frames"][j] > 0.5
            if v.any():
                fc = out["f0_frames"][j][v].astype(np.float64)
                ref_fun.update({"f0_mean_hz": fc.mean(), "f0_std_hz": fc.std(),
                                **{f"f0_p{p}_hz": np.percentile(fc, p) for p in (20, 50, 80)}})
            ref_fun["voiced_fraction"] = v.mean()
            func_err.append(max(abs(f[k] - r) / max(1.0, abs(r)) for k, r in ref_fun.items()))
        # F0 against pyin on the same frames
        f0_ref, vref, _ = librosa.pyin(y.astype(np.float64), fmin=60, fmax=500, sr=SR,
                                       frame_length=800, hop_length=STEP, center=False)
        f0 = out["f0_frames"].reshape(-1)
        vo = out["voiced_frames"].reshape(-1) > 0.5
        n = len(f0)
        f0_ref, vref = f0_ref[:n], vref[:n]
        both = vo & vref
        rel = np.abs(f0[both] - f0_ref[both]) / f0_ref[both]
        fr_all = librosa.util.frame(y.astype(np.float64)[: (n - 1) * STEP + YIN_WIN], frame_length=YIN_WIN,
                                    hop_length=STEP, axis=0)
        sound = 10 * np.log10(np.mean(fr_all ** 2, axis=1) + 1e-10) > -60
        ag = np.mean(vo[sound] == vref[sound])
        f0_err.append(np.median(rel))
        agree.append(ag)
        print(f"espeak-ng -p {pitch}: {len(starts)} windows, {n} F0 frames, {sound.sum()} with sound, "
              f"voiced model {vo[sound].mean():.3f} / pyin {vref[sound].mean():.3f}, both {both.sum()}; "
              f"F0 median model {np.median(f0[both]):.1f} Hz / pyin {np.median(f0_ref[both]):.1f} Hz; "
              f"median rel err {np.median(rel) * 100:.2f} %, 90th pct {np.percentile(rel, 90) * 100:.2f} %, "
              f"voicing agreement {ag * 100:.1f} % (all frames {np.mean(vo == vref) * 100:.1f} %)")

    check("log-mel max relative error (bins within 80 dB of peak)", max(mel_rel), "1e-3", "{:.2e}",
          max(mel_rel) <= 1e-3)
    check("loudness max |diff| to numpy RMS", max(loud_err), "0.1 dB", "{:.2e} dB", max(loud_err) <= 0.1)
    check("F0 median relative error vs pyin (worst pitch)", max(f0_err) * 100, "3 %", "{:.2f} %",
          max(f0_err) <= 0.03)
    check("voicing agreement with pyin (worst pitch)", min(agree) * 100, ">= 90 %", "{:.1f} %",
          min(agree) >= 0.90)
    check("functionals vs numpy on the model's contours, max rel error", max(func_err), "1e-4", "{:.2e}",
          max(func_err) <= 1e-4)
    if failures:
        print("FAILED: " + "; ".join(failures))
        sys.exit(1)
    print("voice-prosody parity OK")


if __name__ == "__main__":
    main()
