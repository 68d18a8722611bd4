#!/usr/bin/env python3
# Writes weights/voice-prosody.onnx: a hand-written (not learned) prosody / voice-quality
# feature extractor for 1 s of 16 kHz mono audio, as ONE ONNX graph. Our own work, MPL-2.0.
#
# Fresh venv (Python 3.11), exact packages used when the committed file was made:
#   pip install numpy==2.4.6 onnx==1.23.2 onnxruntime==1.31.1
#   (onnxruntime only for the self-checks and --bench; the graph is written with the onnx
#    helper API and numpy constants only)
# The parity check against librosa is tests/python/check_voice_prosody.py (`make test`).
#
# Graph (opset 17, IR 8): input `audio` float32 [B, 16000]; output `features` float32 [B, D].
#   clean:   NaN/inf samples -> 0, clip to [-1, 1]
#   frames:  400 samples (25 ms) every 160 (10 ms), no padding: 98 frames
#            log-mel: periodic Hann, |DFT|^2 (n_fft 400, MatMul with cos/sin constants),
#                     64 Slaney mel bands 0..8000 Hz (Slaney norm), 10 log10(max(., 1e-10))
#                     = librosa.power_to_db(librosa.feature.melspectrogram(center=False), amin 1e-10)
#            loudness: 10 log10(mean(x^2) + 1e-10) dBFS (floor -100; full-scale square = 0)
#            spectral centroid (Hz, on |DFT|), flux (mean positive log-mel rise, dB, 97 values),
#            slope (least-squares dB per kHz over the 64 mel bands), zero-crossing rate
#   F0:      YIN (de Cheveigne & Kawahara 2002): 827-sample frames every 160 (95 frames),
#            difference function over a 560-sample (35 ms) window for lags 0..267 via
#            autocorrelation (DFT as MatMul), cumulative mean normalised difference (CMND),
#            lag = first trough below 0.15 in lags 32..267 (500..60 Hz), else the global
#            minimum, parabolic interpolation; voiced iff CMND at that lag < 0.5 and the
#            window's mean square > 1e-7 (-70 dBFS), then a 5-frame majority
#   output:  functionals over the window (names in FEATURE_NAMES, table in weights/CONTRACT.md)
#
# Metadata `affect.native = voice-prosody/1` declares that the output is exactly this
# computation, so a runtime may compute it natively instead of running the graph: the
# featextract element does (src/features/prosody.rs, each 10 ms frame once instead of once
# per window that holds it; tests/voice_prosody_native.rs checks it against this graph).
# The graph stays the reference and what any other ONNX Runtime user runs.
#
# Deterministic: the same bytes on every run (checked by running twice and comparing sha256).
# Usage: python voice_prosody.py [--out PATH] [--bench]
import argparse
import hashlib
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SR = 16000
WINDOW = 16000          # 1.0 s per run
HOP = 1280              # 80 ms between runs (affect.input.hop)
FRAME = 400             # 25 ms
STEP = 160              # 10 ms
N_FRAMES = (WINDOW - FRAME) // STEP + 1          # 98
N_BINS = FRAME // 2 + 1                          # 201
N_MELS = 64
FMIN, FMAX = 0.0, 8000.0
YIN_WIN = 560                                    # difference-function window (35 ms)
YIN_TAU_MIN = SR // 500                          # 32  -> 500 Hz
YIN_TAU_MAX = int(np.ceil(SR / 60))              # 267 -> 60 Hz
YIN_FRAME = YIN_WIN + YIN_TAU_MAX                # 827 samples
YIN_FRAMES = (WINDOW - YIN_FRAME) // STEP + 1    # 95
YIN_BINS = YIN_FRAME // 2 + 1                    # 414 (odd length: no Nyquist bin)
YIN_THRESHOLD = 0.15                             # trough selection (else the global minimum)
VOICED_MAX_CMND = 0.5                            # voicing: aperiodicity at the chosen lag
VOICED_MEDIAN = 5                                # voicing: majority over 5 frames (50 ms)
VOICED_MIN_POWER = 1e-7                          # window mean square, -70 dBFS
POWER_FLOOR = 1e-10                              # -100 dB
PEAK_SMOOTH = 9                                  # Hann smoothing of loudness for syllables (frames)
PEAK_REL_DB = 20.0                               # peaks within 20 dB of the window's loudest frame
PEAK_PROM_DB = 3.0                               # ... that rise 3 dB above the lower of the minima
PEAK_SIDE = 10                                   # ... within 100 ms on each side
BIG = 1.0e9
PERCENTILES = (20, 50, 80)

CONTOURS = [  # (name prefix, unit) of the per-frame contours with 5 functionals
    ("loudness", "db"), ("f0", "hz"), ("centroid", "hz"),
    ("flux", "db"), ("slope", "db_per_khz"), ("zcr", "ratio")]


def feature_names():
    names = []
    for c, u in CONTOURS:
        names += [f"{c}_mean_{u}", f"{c}_std_{u}"] + [f"{c}_p{p}_{u}" for p in PERCENTILES]
    names += ["loudness_rise_db_per_s", "loudness_fall_db_per_s",
              "f0_rise_hz_per_s", "f0_fall_hz_per_s",
              "voiced_fraction", "syllable_rate_per_s"]
    names += [f"logmel_mean_{b:02d}_db" for b in range(N_MELS)]
    names += [f"logmel_std_{b:02d}_db" for b in range(N_MELS)]
    return names


FEATURE_NAMES = feature_names()


# ---- constants (numpy, float64 then float32) ----

def hz_to_mel(f):
    # Slaney's Auditory Toolbox scale, as librosa (htk=False)
    f = np.asarray(f, dtype=np.float64)
    f_sp = 200.0 / 3
    mel = f / f_sp
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, mel)


def mel_to_hz(m):
    m = np.asarray(m, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def mel_filterbank():
    """[N_MELS, N_BINS] like librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax, norm='slaney')."""
    fft_freqs = np.arange(N_BINS, dtype=np.float64) * SR / FRAME
    mel_f = mel_to_hz(np.linspace(hz_to_mel(FMIN), hz_to_mel(FMAX), N_MELS + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    w = np.zeros((N_MELS, N_BINS))
    for i in range(N_MELS):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        w[i] = np.maximum(0, np.minimum(lower, upper))
    w *= (2.0 / (mel_f[2:N_MELS + 2] - mel_f[:N_MELS]))[:, None]
    return w, mel_f[1:-1]


def dft_matrix(n):
    """[n, 2*(n//2+1)]: x @ M = [Re X_k | Im X_k] of the n-point DFT."""
    k = np.arange(n // 2 + 1)
    t = np.arange(n)
    ang = 2 * np.pi * ((t[:, None] * k[None, :]) % n) / n    # exact integer phase
    return np.concatenate([np.cos(ang), -np.sin(ang)], axis=1)


def idft_real_matrix(n, lags):
    """[2*(n//2+1), lags]: [Re Y | Im Y] @ M = irfft(Y, n)[:lags] (n odd: no Nyquist bin)."""
    assert n % 2 == 1
    k = np.arange(n // 2 + 1)
    c = np.where(k == 0, 1.0, 2.0) / n
    t = np.arange(lags)
    ang = 2 * np.pi * ((k[:, None] * t[None, :]) % n) / n
    return np.concatenate([c[:, None] * np.cos(ang), -c[:, None] * np.sin(ang)], axis=0)


# ---- graph builder ----

class G:
    def __init__(self):
        self.nodes, self.inits, self.n = [], [], 0

    def name(self, hint):
        self.n += 1
        return f"{hint}_{self.n}"

    def const(self, value, hint="c", dtype=np.float32):
        nm = self.name(hint)
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), nm))
        return nm

    def i64(self, value, hint="i"):
        return self.const(value, hint, np.int64)

    def op(self, op_type, inputs, hint=None, n_out=1, **attrs):
        outs = [self.name(hint or op_type.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=outs[0], **attrs))
        return outs[0] if n_out == 1 else outs

    # helpers
    def f(self, v):
        return self.const(v)

    def add(self, a, b): return self.op("Add", [a, b])
    def sub(self, a, b): return self.op("Sub", [a, b])
    def mul(self, a, b): return self.op("Mul", [a, b])
    def div(self, a, b): return self.op("Div", [a, b])

    def slice(self, x, start, end, axis):
        return self.op("Slice", [x, self.i64([start]), self.i64([end]), self.i64([axis])], "slice")

    def rsum(self, x, axis, keep=1):
        return self.op("ReduceSum", [x, self.i64([axis])], "rsum", keepdims=keep)

    def rmean(self, x, axis, keep=1):
        return self.op("ReduceMean", [x], "rmean", axes=[axis], keepdims=keep)

    def rmax(self, x, axis, keep=1):
        return self.op("ReduceMax", [x], "rmax", axes=[axis], keepdims=keep)

    def where(self, c, a, b): return self.op("Where", [c, a, b])

    def db(self, power):
        """10 log10(power + 1e-10) (power >= 0): floor -100 dB."""
        return self.mul(self.op("Log", [self.add(power, self.f(POWER_FLOOR))]), self.f(10 / np.log(10)))

    def named(self, x, name):
        """An Identity with a fixed output name: the per-frame contours the parity check reads."""
        self.nodes.append(helper.make_node("Identity", [x], [name], name=name))
        return name

    def to_float(self, b): return self.op("Cast", [b], "cast", to=TensorProto.FLOAT)

    def frames(self, x, length, count):
        """[B, N] -> [B, count, length], frame i = x[STEP*i : STEP*i + length]."""
        # indices built in the graph (Range + Add) so the file holds no index table
        t = self.op("Range", [self.i64(0), self.i64(length), self.i64(1)], "t")
        s = self.op("Range", [self.i64(0), self.i64(count * STEP), self.i64(STEP)], "s")
        ind = self.add(self.op("Unsqueeze", [s, self.i64([1])]), t)
        return self.op("Gather", [x, ind], "frames", axis=1)

    # functionals over axis 1 of [B, F] with a 0/1 mask [B, F]
    def masked_stats(self, v, m):
        n = self.rsum(m, 1)
        n1 = self.op("Max", [n, self.f(1.0)])
        vm = self.where(self.op("Greater", [m, self.f(0.5)]), v, self.f(0.0))
        mean = self.div(self.rsum(vm, 1), n1)
        dev = self.mul(self.sub(vm, mean), m)
        std = self.op("Sqrt", [self.div(self.rsum(self.mul(dev, dev), 1), n1)])
        return n, mean, std

    def masked_percentiles(self, v, m, n, count):
        """numpy 'linear' percentiles of the masked values (TopK ascending); 0 when none."""
        vb = self.where(self.op("Greater", [m, self.f(0.5)]), v, self.f(BIG))
        srt, _ = self.op("TopK", [vb, self.i64([count])], "sorted", n_out=2, largest=0, sorted=1)
        nm1 = self.op("Max", [self.sub(n, self.f(1.0)), self.f(0.0)])
        has = self.op("Greater", [n, self.f(0.5)])
        outs = []
        for p in PERCENTILES:
            pos = self.mul(nm1, self.f(p / 100))
            lo = self.op("Floor", [pos])
            hi = self.op("Min", [self.add(lo, self.f(1.0)), nm1])
            frac = self.sub(pos, lo)
            glo = self.op("GatherElements", [srt, self.op("Cast", [lo], to=TensorProto.INT64)], axis=1)
            ghi = self.op("GatherElements", [srt, self.op("Cast", [hi], to=TensorProto.INT64)], axis=1)
            val = self.add(glo, self.mul(frac, self.sub(ghi, glo)))
            outs.append(self.where(has, val, self.f(0.0)))
        return outs

    def functionals(self, v, m, count):
        n, mean, std = self.masked_stats(v, m)
        return [mean, std] + self.masked_percentiles(v, m, n, count)

    def rise_fall(self, v, m, count, per_s):
        """mean positive / mean |negative| frame-to-frame change (both frames in the mask), per second."""
        d = self.sub(self.slice(v, 1, count, 1), self.slice(v, 0, count - 1, 1))
        pair = self.mul(self.slice(m, 1, count, 1), self.slice(m, 0, count - 1, 1))
        d = self.mul(self.where(self.op("Greater", [pair, self.f(0.5)]), d, self.f(0.0)), self.f(per_s))
        pos = self.mul(pair, self.to_float(self.op("Greater", [d, self.f(0.0)])))
        neg = self.mul(pair, self.to_float(self.op("Less", [d, self.f(0.0)])))
        rise = self.div(self.rsum(self.mul(d, pos), 1), self.op("Max", [self.rsum(pos, 1), self.f(1.0)]))
        fall = self.div(self.rsum(self.mul(self.op("Neg", [d]), neg), 1),
                        self.op("Max", [self.rsum(neg, 1), self.f(1.0)]))
        return rise, fall


def build():
    g = G()
    melw, mel_centres = mel_filterbank()
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(FRAME) / FRAME)     # periodic (fftbins=True)

    # clean: NaN/inf -> 0, clip to full scale
    bad = g.op("Or", [g.op("IsNaN", ["audio"]), g.op("IsInf", ["audio"])])
    x = g.where(bad, g.f(0.0), "audio")
    x = g.op("Clip", [x, g.f(-1.0), g.f(1.0)], "clean")

    # ---- 25 ms frames ----
    fr = g.frames(x, FRAME, N_FRAMES)                                   # [B,98,400]
    loud = g.db(g.rmean(g.mul(fr, fr), 2, keep=0))                      # [B,98] dBFS
    spec = g.op("MatMul", [g.mul(fr, g.f(hann)), g.f(dft_matrix(FRAME))], "spec")   # [B,98,402]
    re, im = g.slice(spec, 0, N_BINS, 2), g.slice(spec, N_BINS, 2 * N_BINS, 2)
    power = g.add(g.mul(re, re), g.mul(im, im))                        # [B,98,201]
    mel = g.op("MatMul", [power, g.f(melw.T)], "mel")                    # [B,98,64]
    logmel = g.mul(g.op("Log", [g.op("Max", [mel, g.f(POWER_FLOOR)])]), g.f(10 / np.log(10)))
    logmel = g.named(logmel, "logmel_frames")
    mag = g.op("Sqrt", [power])
    freqs = np.arange(N_BINS) * SR / FRAME
    centroid = g.div(g.op("MatMul", [mag, g.f(freqs[:, None])]),
                     g.add(g.rsum(mag, 2), g.f(POWER_FLOOR)))
    centroid = g.op("Squeeze", [centroid, g.i64([2])], "centroid")      # [B,98] Hz
    dl = g.sub(g.slice(logmel, 1, N_FRAMES, 1), g.slice(logmel, 0, N_FRAMES - 1, 1))
    flux = g.rmean(g.op("Relu", [dl]), 2, keep=0)                       # [B,97] dB
    fc = mel_centres / 1000.0
    w = (fc - fc.mean()) / np.sum((fc - fc.mean()) ** 2)
    slope = g.op("Squeeze", [g.op("MatMul", [logmel, g.f(w[:, None])]), g.i64([2])], "slope")  # dB/kHz
    sc = g.mul(g.slice(fr, 1, FRAME, 2), g.slice(fr, 0, FRAME - 1, 2))
    zcr = g.rmean(g.to_float(g.op("Less", [sc, g.f(0.0)])), 2, keep=0)  # [B,98]
    loud = g.named(loud, "loudness_frames")

    # ---- YIN F0 ----
    yf = g.frames(x, YIN_FRAME, YIN_FRAMES)                             # [B,96,667]
    yin_dft = g.f(dft_matrix(YIN_FRAME))
    a = g.op("MatMul", [yf, yin_dft], "yin_a")                          # [B,96,668]
    # the window's DFT uses the first 400 rows of the same matrix (folded when the session starts)
    b = g.op("MatMul", [g.slice(yf, 0, YIN_WIN, 2), g.slice(yin_dft, 0, YIN_WIN, 0)], "yin_b")
    ar, ai = g.slice(a, 0, YIN_BINS, 2), g.slice(a, YIN_BINS, 2 * YIN_BINS, 2)
    br, bi = g.slice(b, 0, YIN_BINS, 2), g.slice(b, YIN_BINS, 2 * YIN_BINS, 2)
    # conj(B) * A: r(tau) = sum_j x_j x_{j+tau}
    pr = g.add(g.mul(br, ar), g.mul(bi, ai))
    pi = g.sub(g.mul(br, ai), g.mul(bi, ar))
    cross = g.op("Concat", [pr, pi], axis=2)
    acf = g.op("MatMul", [cross, g.f(idft_real_matrix(YIN_FRAME, YIN_TAU_MAX + 1))], "acf")  # [B,96,268]
    sq = g.mul(yf, yf)
    cs = g.op("CumSum", [sq, g.i64(2)])
    cs = g.op("Pad", [cs, g.i64([0, 0, 1, 0, 0, 0])], "cspad")          # leading 0: [B,96,668]
    e_tau = g.sub(g.slice(cs, YIN_WIN, YIN_WIN + YIN_TAU_MAX + 1, 2), g.slice(cs, 0, YIN_TAU_MAX + 1, 2))
    e0 = g.slice(e_tau, 0, 1, 2)
    d = g.op("Relu", [g.sub(g.add(e0, e_tau), g.mul(acf, g.f(2.0)))])   # difference function
    d1 = g.slice(d, 1, YIN_TAU_MAX + 1, 2)                              # tau 1..267
    cmean = g.div(g.op("CumSum", [d1, g.i64(2)]), g.f(np.arange(1, YIN_TAU_MAX + 1)))
    cmnd = g.div(g.slice(d1, YIN_TAU_MIN - 1, YIN_TAU_MAX, 2),
                 g.add(g.slice(cmean, YIN_TAU_MIN - 1, YIN_TAU_MAX, 2), g.f(1e-12)))   # tau 32..267
    n_tau = YIN_TAU_MAX - YIN_TAU_MIN + 1
    left = g.op("Pad", [cmnd, g.i64([0, 0, 1, 0, 0, -1]), g.f(BIG)], "left")       # cmnd[i-1]
    right = g.op("Pad", [cmnd, g.i64([0, 0, -1, 0, 0, 1]), g.f(-BIG)], "right")    # cmnd[i+1]
    trough = g.op("And", [g.op("Less", [cmnd, left]), g.op("LessOrEqual", [cmnd, right])])
    cand = g.to_float(g.op("And", [trough, g.op("Less", [cmnd, g.f(YIN_THRESHOLD)])]))
    first = g.op("ArgMax", [cand], "tau_first", axis=2, keepdims=1)    # first candidate trough
    gmin = g.op("ArgMin", [cmnd], "tau_gmin", axis=2, keepdims=1)      # else the global minimum
    idx = g.where(g.op("Greater", [g.rmax(cand, 2), g.f(0.5)]), first, gmin)
    # parabolic interpolation around the chosen lag (edge values repeated at the ends)
    le = g.op("Concat", [g.slice(cmnd, 0, 1, 2), g.slice(cmnd, 0, n_tau - 1, 2)], axis=2)
    ri = g.op("Concat", [g.slice(cmnd, 1, n_tau, 2), g.slice(cmnd, n_tau - 1, n_tau, 2)], axis=2)
    pa = g.op("GatherElements", [le, idx], axis=2)
    pb = g.op("GatherElements", [cmnd, idx], axis=2)
    pc = g.op("GatherElements", [ri, idx], axis=2)
    den = g.add(g.sub(pa, g.mul(pb, g.f(2.0))), pc)
    ok = g.op("Greater", [g.op("Abs", [den]), g.f(1e-12)])
    shift = g.where(ok, g.div(g.mul(g.sub(pa, pc), g.f(0.5)), g.where(ok, den, g.f(1.0))), g.f(0.0))
    shift = g.op("Clip", [shift, g.f(-1.0), g.f(1.0)])
    period = g.add(g.add(g.op("Cast", [idx], to=TensorProto.FLOAT), g.f(float(YIN_TAU_MIN))), shift)
    f0 = g.op("Squeeze", [g.div(g.f(float(SR)), period), g.i64([2])])   # [B,95] Hz
    loud_enough = g.op("Greater", [g.op("Squeeze", [e0, g.i64([2])]), g.f(VOICED_MIN_POWER * YIN_WIN)])
    periodic = g.op("Less", [g.op("Squeeze", [pb, g.i64([2])]), g.f(VOICED_MAX_CMND)])
    raw = g.op("Unsqueeze", [g.to_float(g.op("And", [periodic, loud_enough])), g.i64([1])])
    maj = g.op("AveragePool", [raw], "voiced_majority", kernel_shape=[VOICED_MEDIAN],
               pads=[VOICED_MEDIAN // 2] * 2, count_include_pad=0)
    voiced = g.to_float(g.op("Greater", [g.op("Squeeze", [maj, g.i64([1])]), g.f(0.5)]))  # [B,95] 0/1
    voiced = g.named(voiced, "voiced_frames")
    f0 = g.named(g.mul(f0, voiced), "f0_frames")             # 0 where unvoiced

    # ---- syllable rate: peaks of the smoothed loudness contour ----
    k = np.hanning(PEAK_SMOOTH + 2)[1:-1]
    k = k / k.sum()
    half = PEAK_SMOOTH // 2
    l3 = g.op("Unsqueeze", [loud, g.i64([1])])                          # [B,1,98]
    l3 = g.op("Pad", [l3, g.i64([0, 0, half, 0, 0, half])], "edge", mode="edge")
    sm = g.op("Conv", [l3, g.f(k[None, None, :])], "smooth")            # [B,1,98]
    lpad = g.op("Pad", [sm, g.i64([0, 0, 1, 0, 0, 1]), g.f(BIG)], "pk")
    prev, nxt = g.slice(lpad, 0, N_FRAMES, 2), g.slice(lpad, 2, N_FRAMES + 2, 2)
    is_max = g.op("And", [g.op("Greater", [sm, prev]), g.op("GreaterOrEqual", [sm, nxt])])
    top = g.rmax(sm, 2)
    high = g.op("Greater", [sm, g.sub(top, g.f(PEAK_REL_DB))])
    neg = g.op("Neg", [sm])
    negp = g.op("Pad", [neg, g.i64([0, 0, PEAK_SIDE, 0, 0, PEAK_SIDE]), g.f(-BIG)], "negpad")
    lmin = g.op("Neg", [g.op("MaxPool", [g.slice(negp, 0, N_FRAMES + PEAK_SIDE, 2)], "lmin",
                              kernel_shape=[PEAK_SIDE + 1])])
    rmin = g.op("Neg", [g.op("MaxPool", [g.slice(negp, PEAK_SIDE, N_FRAMES + 2 * PEAK_SIDE, 2)], "rmin",
                              kernel_shape=[PEAK_SIDE + 1])])
    prom = g.sub(sm, g.op("Max", [lmin, rmin]))
    peak = g.op("And", [g.op("And", [is_max, high]), g.op("GreaterOrEqual", [prom, g.f(PEAK_PROM_DB)])])
    syll = g.div(g.rsum(g.to_float(peak), 2, keep=0), g.f(WINDOW / SR))   # [B,1] per second

    # ---- functionals ----
    ones = lambda v: g.op("Expand", [g.f(1.0), g.op("Shape", [v])])      # noqa: E731
    feats = []
    for name, v, m, count in [("loudness", loud, None, N_FRAMES), ("f0", f0, voiced, YIN_FRAMES),
                              ("centroid", centroid, None, N_FRAMES), ("flux", flux, None, N_FRAMES - 1),
                              ("slope", slope, None, N_FRAMES), ("zcr", zcr, None, N_FRAMES)]:
        feats += g.functionals(v, ones(v) if m is None else m, count)
    feats += list(g.rise_fall(loud, ones(loud), N_FRAMES, SR / STEP))
    feats += list(g.rise_fall(f0, voiced, YIN_FRAMES, SR / STEP))
    feats.append(g.rmean(voiced, 1))
    feats.append(syll)
    lm_mean = g.rmean(logmel, 1, keep=0)                                # [B,64]
    dev = g.sub(logmel, g.rmean(logmel, 1))
    lm_std = g.op("Sqrt", [g.rmean(g.mul(dev, dev), 1, keep=0)])
    out = g.op("Concat", feats + [lm_mean, lm_std], axis=1)
    # belt and braces: nothing above makes a NaN from finite samples, but never emit one
    out = g.where(g.op("IsNaN", [out]), g.f(0.0), out)
    g.nodes.append(helper.make_node("Identity", [out], ["features"], name="features"))

    dim = len(FEATURE_NAMES)
    graph = helper.make_graph(
        g.nodes, "voice_prosody",
        [helper.make_tensor_value_info("audio", TensorProto.FLOAT, ["B", WINDOW])],
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["B", dim])],
        g.inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                          producer_name="gst-affect weights/convert/voice_prosody.py")
    m.ir_version = 8
    m.doc_string = ("voice-prosody: hand-written prosody/voice-quality functionals of 1 s of 16 kHz "
                    "mono audio (log-mel, loudness, YIN F0, spectral shape); names in "
                    "affect.output.feature-names")
    helper.set_model_props(m, {
        "affect.contract": "1",
        "affect.role": "audio-feature",
        "affect.name": "voice-prosody",
        "affect.input.name": "audio",
        "affect.input.sample-rate": str(SR),
        "affect.input.window": str(WINDOW),
        "affect.input.hop": str(HOP),
        "affect.output.names": "features",
        "affect.output.dim": str(dim),
        "affect.output.feature-names": ",".join(FEATURE_NAMES),
        "affect.native": "voice-prosody/1",
        "affect.source": "gst-affect weights/convert/voice_prosody.py",
        "affect.license": "MPL-2.0",
    })
    onnx.checker.check_model(m, full_check=True)
    return m


def self_check(path):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    t = np.arange(WINDOW) / SR
    cases = {
        "silence": np.zeros(WINDOW),
        "sine 200 Hz -20 dBFS": 0.1 * np.sqrt(2) * np.sin(2 * np.pi * 200 * t),
        "noise": rng.uniform(-0.5, 0.5, WINDOW),
        "clipped": np.sign(np.sin(2 * np.pi * 150 * t)),
        "nan/inf": np.where(np.arange(WINDOW) % 97 == 0, np.nan,
                            np.where(np.arange(WINDOW) % 89 == 0, np.inf, 0.3 * np.sin(2 * np.pi * 120 * t))),
    }
    x = np.stack(list(cases.values())).astype(np.float32)
    y = s.run(None, {"audio": x})[0]
    ok = True
    for i, n in enumerate(cases):
        f = dict(zip(FEATURE_NAMES, y[i]))
        print(f"  {n:22s} finite={np.isfinite(y[i]).all()} loudness_mean={f['loudness_mean_db']:.2f} dB "
              f"f0_p50={f['f0_p50_hz']:.1f} Hz voiced={f['voiced_fraction']:.2f}")
        ok &= bool(np.isfinite(y[i]).all())
    one = np.stack([s.run(None, {"audio": x[i:i + 1]})[0][0] for i in range(len(x))])
    print(f"  batch vs single max |diff| {np.abs(one - y).max():.2e}")
    f = dict(zip(FEATURE_NAMES, y[1]))
    ok &= abs(f["loudness_mean_db"] + 20.0) < 0.05 and abs(f["f0_p50_hz"] - 200) < 2
    return ok


def bench(path, seconds=3.0):
    import time
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(1)
    for b in (1, 16):
        x = rng.uniform(-0.3, 0.3, (b, WINDOW)).astype(np.float32)
        s.run(None, {"audio": x})
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            s.run(None, {"audio": x})
            n += b
        wps = n / (time.perf_counter() - t0)
        print(f"  batch {b:2d}: {wps:7.1f} windows/s, real-time factor {wps * HOP / SR:6.1f}")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(here, "..", "voice-prosody.onnx"))
    ap.add_argument("--bench", action="store_true", help="windows/s on one thread, batch 1 and 16")
    args = ap.parse_args()
    m = build()
    onnx.save(m, args.out)
    data = open(args.out, "rb").read()
    print(f"wrote {args.out}: {len(data)} bytes, D = {len(FEATURE_NAMES)}, "
          f"sha256 {hashlib.sha256(data).hexdigest()}")
    if hashlib.sha256(build().SerializeToString()).digest() != hashlib.sha256(data).digest():
        sys.exit("not deterministic: a second build differs")
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        print("onnxruntime not installed: self-checks skipped")
        return
    if not self_check(args.out):
        sys.exit("self-check failed")
    if args.bench:
        bench(args.out)


if __name__ == "__main__":
    main()
