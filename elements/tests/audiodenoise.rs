// SPDX-License-Identifier: MPL-2.0
//! `audiodenoise`: sample-exact lengths and timestamps, EOS/FLUSH/DISCONT, silence, NaN,
//! stereo independence, caps and model errors, latency, and quality through the element
//! (SI-SDR, VAD metas, speech-start/end messages on espeak-ng speech in seeded noise).

mod common;

use affect::audio::metrics::{best_lag, binary_scores, energy_labels, roc_auc, si_sdr_db};
use affect::audio::synth::{mix_at_snr, pink_noise, speech_clip, white_noise};
use gst::prelude::*;
use gstaffect::meta::{SpeechMessage, speech_meta};

const RATE: u64 = 48_000;

fn element(props: &[(&str, &str)]) -> gst::Element {
    common::init();
    let el = gst::ElementFactory::make("audiodenoise").build().unwrap();
    for (k, v) in props {
        el.set_property_from_str(k, v);
    }
    el
}

struct Run {
    samples: Vec<f32>,
    buffers: Vec<gst::Buffer>,
    messages: Vec<gst::Message>,
}

/// The texts of the warning (`warnings`) or error messages among `msgs`.
fn texts<'a>(msgs: impl IntoIterator<Item = &'a gst::Message>, warnings: bool) -> Vec<String> {
    msgs.into_iter()
        .filter_map(|m| match m.view() {
            gst::MessageView::Warning(w) if warnings => Some(w.error().to_string()),
            gst::MessageView::Error(e) if !warnings => Some(e.error().to_string()),
            _ => None,
        })
        .collect()
}

/// EOS into `h`, the buffers it still gives, and what reached `bus`.
fn end_run(h: &mut gst_check::Harness, bus: &gst::Bus, mut buffers: Vec<gst::Buffer>) -> Run {
    h.push_event(gst::event::Eos::new());
    while let Some(b) = h.try_pull() {
        buffers.push(b);
    }
    let samples = buffers.iter().flat_map(|b| samples_of(b)).collect();
    let messages = std::iter::from_fn(|| bus.pop()).collect();
    Run {
        samples,
        buffers,
        messages,
    }
}

fn caps(channels: usize) -> String {
    format!("audio/x-raw,format=F32LE,rate=48000,channels={channels},layout=interleaved")
}

fn to_buffer(samples: &[f32], pts_sample: u64, discont: bool) -> gst::Buffer {
    let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    let mut b = gst::Buffer::from_mut_slice(bytes);
    let r = b.get_mut().unwrap();
    r.set_pts(gst::ClockTime::from_nseconds(
        pts_sample * 1_000_000_000 / RATE,
    ));
    if discont {
        r.set_flags(gst::BufferFlags::DISCONT);
    }
    b
}

fn samples_of(b: &gst::BufferRef) -> Vec<f32> {
    let m = b.map_readable().unwrap();
    m.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Pushes `x` (interleaved, `channels`) in buffers of `chunk` samples per channel, then EOS.
fn run(props: &[(&str, &str)], x: &[f32], channels: usize, chunk: usize) -> Run {
    let el = element(props);
    let bus = gst::Bus::new();
    el.set_bus(Some(&bus));
    let mut h = gst_check::Harness::with_element(&el, Some("sink"), Some("src"));
    h.set_src_caps_str(&caps(channels));
    h.play();
    let mut buffers = Vec::new();
    let mut at = 0u64;
    for c in x.chunks(chunk * channels) {
        h.push(to_buffer(c, at, at == 0)).unwrap();
        at += (c.len() / channels) as u64;
        while let Some(b) = h.try_pull() {
            buffers.push(b);
        }
    }
    end_run(&mut h, &bus, buffers)
}

fn check_timeline(buffers: &[gst::Buffer], channels: usize, total: u64) {
    let mut n = 0u64;
    for b in buffers {
        let pts = b.pts().unwrap().nseconds();
        assert_eq!(
            pts,
            n * 1_000_000_000 / RATE,
            "pts of the buffer at sample {n}"
        );
        let len = (b.size() / 4 / channels) as u64;
        n += len;
        assert_eq!(
            pts + b.duration().unwrap().nseconds(),
            n * 1_000_000_000 / RATE,
            "duration"
        );
        let meta = speech_meta(b)
            .expect("speech meta on every buffer")
            .unwrap();
        assert_eq!(meta.probabilities.len() as u64, len.div_ceil(480));
        assert!(meta.probability.is_finite());
    }
    assert_eq!(n, total);
}

#[test]
fn any_buffer_size_same_samples_continuous_timestamps() {
    // 2 s + 123 samples: EOS falls in the middle of a frame.
    let total = 2 * RATE as usize + 123;
    let x: Vec<f32> = white_noise(total, 1).iter().map(|v| v * 0.1).collect();
    let mut reference: Option<Vec<f32>> = None;
    for chunk in [1, 7, 480, 4096, 48_000] {
        let r = run(&[("vad", "rnnoise")], &x, 1, chunk);
        check_timeline(&r.buffers, 1, total as u64);
        assert!(r.samples.iter().all(|v| v.is_finite()));
        match &reference {
            None => reference = Some(r.samples),
            Some(s) => assert_eq!(&r.samples, s, "chunk {chunk} changes the output"),
        }
    }
    // With Silero too (its own queueing), and in bypass the output is the input.
    let r = run(&[("vad", "silero")], &x, 1, 7);
    check_timeline(&r.buffers, 1, total as u64);
    assert_eq!(Some(&r.samples), reference.as_ref());
    let r = run(&[("vad", "silero"), ("enabled", "false")], &x, 1, 4096);
    assert_eq!(r.samples, x);
}

#[test]
fn silence_stays_silent_and_nan_is_replaced() {
    let r = run(&[("vad", "rnnoise")], &vec![0.0; 10_000], 1, 1000);
    assert_eq!(r.samples.len(), 10_000);
    assert!(r.samples.iter().all(|&v| v == 0.0));

    let mut x: Vec<f32> = white_noise(10_000, 2).iter().map(|v| v * 0.1).collect();
    x[5] = f32::NAN;
    x[4000] = f32::INFINITY;
    x[9999] = f32::NEG_INFINITY;
    let r = run(&[("vad", "silero")], &x, 1, 1000);
    assert_eq!(r.samples.len(), 10_000);
    assert!(r.samples.iter().all(|v| v.is_finite()), "NaN in the output");
    let warned = r.messages.iter().any(|m| match m.view() {
        gst::MessageView::Warning(w) => w.error().to_string().contains("NaN/Inf"),
        _ => false,
    });
    assert!(warned, "a warning about NaN/Inf: {:?}", r.messages);
}

#[test]
fn huge_finite_samples_do_not_abort_and_are_clipped_with_one_warning() {
    // RNNoise aborted (debug; undefined behaviour in release) on finite samples ≥ 1e15.
    let mut x: Vec<f32> = white_noise(10_000, 4).iter().map(|v| v * 0.1).collect();
    x[2000..4000].iter_mut().for_each(|v| *v = 1e30);
    x[7000] = -f32::MAX;
    for vad in ["rnnoise", "silero"] {
        let r = run(&[("vad", vad)], &x, 1, 1000);
        assert_eq!(r.samples.len(), 10_000, "{vad}");
        assert!(
            r.samples.iter().all(|v| v.is_finite()),
            "{vad}: non-finite output"
        );
        // RNNoise's overlap-add may overshoot the ±1000 it is given a little, not more.
        let peak = r.samples.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(peak < 2000.0, "{vad}: output peak {peak}");
        let warnings: Vec<String> = texts(&r.messages, true)
            .into_iter()
            .filter(|w| w.contains("clipped"))
            .collect();
        assert_eq!(
            warnings.len(),
            1,
            "{vad}: one warning per stream: {warnings:?}"
        );
        assert!(warnings[0].contains("1000"), "{}", warnings[0]);
    }
}

#[test]
fn stereo_channels_stay_independent() {
    let n = 20_000;
    let noise = white_noise(n, 3);
    let mut x = vec![0.0f32; 2 * n];
    for i in 0..n {
        x[2 * i] = noise[i] * 0.1;
    }
    let r = run(&[("vad", "rnnoise")], &x, 2, 4096);
    check_timeline(&r.buffers, 2, n as u64);
    assert!(r.samples.iter().skip(1).step_by(2).all(|&v| v == 0.0));
    assert!(r.samples.iter().step_by(2).any(|&v| v != 0.0));
    // The left channel alone gives the same left output.
    let mono = run(
        &[("vad", "rnnoise")],
        &x.iter().step_by(2).copied().collect::<Vec<_>>(),
        1,
        4096,
    );
    let left: Vec<f32> = r.samples.iter().step_by(2).copied().collect();
    assert_eq!(left, mono.samples);
}

#[test]
fn latency_is_answered() {
    // Silero: its 32 ms chunks, the decimator's look-ahead and the configurable look-ahead
    // (default 64 ms) on top of RNNoise's two frames.
    for (vad, lookahead, ms) in [
        ("rnnoise", "64", 20),
        ("silero", "64", 120),
        ("silero", "0", 50),
    ] {
        let el = element(&[("vad", vad), ("vad-lookahead-ms", lookahead)]);
        let mut h = gst_check::Harness::with_element(&el, Some("sink"), Some("src"));
        h.set_src_caps_str(&caps(1));
        h.play();
        let lat = h.query_latency().expect("latency answered");
        assert_eq!(
            lat,
            gst::ClockTime::from_mseconds(ms),
            "vad={vad} vad-lookahead-ms={lookahead}"
        );
    }
}

#[test]
fn flush_and_discont_reset_the_timeline() {
    let el = element(&[("vad", "rnnoise")]);
    let mut h = gst_check::Harness::with_element(&el, Some("sink"), Some("src"));
    h.set_src_caps_str(&caps(1));
    h.play();
    let x: Vec<f32> = white_noise(3000, 4).iter().map(|v| v * 0.1).collect();
    h.push(to_buffer(&x, 0, true)).unwrap();
    // DISCONT at sample 96000 (2 s): the first 3000 samples are drained first.
    h.push(to_buffer(&x, 96_000, true)).unwrap();
    let mut bufs = Vec::new();
    while let Some(b) = h.try_pull() {
        bufs.push(b);
    }
    let before: usize = bufs
        .iter()
        .filter(|b| b.pts().unwrap() < gst::ClockTime::from_seconds(2))
        .map(|b| b.size() / 4)
        .sum();
    assert_eq!(before, 3000);
    let after = bufs
        .iter()
        .find(|b| b.pts().unwrap() >= gst::ClockTime::from_seconds(2))
        .expect("output after the discont");
    assert_eq!(after.pts(), Some(gst::ClockTime::from_seconds(2)));
    assert!(after.flags().contains(gst::BufferFlags::DISCONT));
    // FLUSH: pending audio is dropped, the next buffer starts a new timeline.
    h.push_event(gst::event::FlushStart::new());
    h.push_event(gst::event::FlushStop::new(true));
    h.push_event(gst::event::Segment::new(&gst::FormattedSegment::<
        gst::ClockTime,
    >::new()));
    h.push(to_buffer(&x, 48_000 * 5, false)).unwrap();
    h.push_event(gst::event::Eos::new());
    let mut bufs = Vec::new();
    while let Some(b) = h.try_pull() {
        bufs.push(b);
    }
    assert_eq!(
        bufs.first().and_then(|b| b.pts()),
        Some(gst::ClockTime::from_seconds(5))
    );
    assert_eq!(bufs.iter().map(|b| b.size() / 4).sum::<usize>(), 3000);
}

fn error_of(pipeline: &str) -> String {
    common::init();
    let pipe = gst::parse::launch(pipeline).unwrap();
    let bus = pipe.bus().unwrap();
    let _ = pipe.set_state(gst::State::Playing);
    let msg = bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(20),
            &[gst::MessageType::Error, gst::MessageType::Eos],
        )
        .expect("a message");
    pipe.set_state(gst::State::Null).unwrap();
    match msg.view() {
        gst::MessageView::Error(e) => e.error().to_string(),
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn unsupported_caps_are_refused_with_a_clear_message() {
    common::init();
    // gst-launch: the link itself is refused.
    let e = gst::parse::launch(
        "audiotestsrc ! audio/x-raw,format=S16LE,rate=44100 ! audiodenoise vad=rnnoise ! fakesink",
    )
    .expect_err("S16LE 44.1 kHz cannot link");
    assert!(e.to_string().contains("audiodenoise"), "{e}");
    // Caps arriving at run time (decoders, appsrc): an element error that says what to do.
    let pipe = gst::parse::launch(
        "appsrc name=src format=time caps=audio/x-raw,format=S16LE,rate=44100,channels=1,layout=interleaved ! audiodenoise vad=rnnoise ! fakesink",
    )
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let src = pipe.by_name("src").unwrap();
    pipe.set_state(gst::State::Playing).unwrap();
    let _ = src
        .emit_by_name::<gst::FlowReturn>("push-buffer", &[&gst::Buffer::with_size(882).unwrap()]);
    let _ = src.emit_by_name::<gst::FlowReturn>("end-of-stream", &[]);
    let msg = pipe
        .bus()
        .unwrap()
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(20),
            &[gst::MessageType::Error, gst::MessageType::Eos],
        )
        .expect("a message");
    pipe.set_state(gst::State::Null).unwrap();
    let gst::MessageView::Error(e) = msg.view() else {
        panic!("expected an error, got {msg:?}");
    };
    let text = e.error().to_string();
    println!("caps error: {text}");
    assert!(
        text.contains("F32LE, 48000 Hz") && text.contains("audioconvert ! audioresample"),
        "{text}"
    );
}

#[test]
fn missing_silero_model_is_an_error_at_start() {
    let e = error_of(
        "audiotestsrc num-buffers=3 ! audio/x-raw,format=F32LE,rate=48000,channels=1 ! audiodenoise vad=silero model=/nonexistent/vad.onnx ! fakesink",
    );
    assert!(e.contains("/nonexistent/vad.onnx"), "{e}");
    // vad=rnnoise does not load it
    common::init();
    let pipe = gst::parse::launch(
        "audiotestsrc num-buffers=3 ! audio/x-raw,format=F32LE,rate=48000,channels=1 ! audiodenoise vad=rnnoise model=/nonexistent/vad.onnx ! fakesink",
    )
    .unwrap();
    pipe.set_state(gst::State::Playing).unwrap();
    let msg = pipe
        .bus()
        .unwrap()
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(20),
            &[gst::MessageType::Error, gst::MessageType::Eos],
        )
        .unwrap();
    pipe.set_state(gst::State::Null).unwrap();
    assert!(matches!(msg.view(), gst::MessageView::Eos(_)), "{msg:?}");
}

const TEXTS: [&str; 3] = [
    "The quick brown fox jumps over the lazy dog.",
    "She sells sea shells by the sea shore, and then she rests for a while.",
    "How are you feeling today? I hope that everything is going well.",
];

fn clip() -> (Vec<f32>, Vec<(u64, u64)>) {
    speech_clip(
        &TEXTS,
        500,
        700,
        &std::env::temp_dir().join("gst-affect-speech-cache"),
    )
    .unwrap_or_else(|e| panic!("cannot make test speech: {e} (run `make setup`)"))
}

fn speech_messages(r: &Run) -> Vec<SpeechMessage> {
    r.messages
        .iter()
        .filter_map(|m| match m.view() {
            gst::MessageView::Element(e) => {
                e.structure().and_then(|s| SpeechMessage::try_from(s).ok())
            }
            _ => None,
        })
        .collect()
}

/// `vad-lookahead-ms=0` (live, causal pipelines): 70 ms less latency, the same speech
/// segments, boundaries later by at most the look-ahead given up (and one 10 ms frame).
#[test]
fn zero_vad_lookahead_finds_the_same_segments() {
    let (clean, bounds) = clip();
    let ms = |m: &SpeechMessage| m.timestamp.unwrap().mseconds() as i64;
    let default = speech_messages(&run(&[("vad", "silero")], &clean, 1, 4096));
    let causal = speech_messages(&run(
        &[("vad", "silero"), ("vad-lookahead-ms", "0")],
        &clean,
        1,
        4096,
    ));
    println!(
        "boundaries (ms) lookahead 64: {:?}; lookahead 0: {:?}; true {:?}",
        default.iter().map(ms).collect::<Vec<_>>(),
        causal.iter().map(ms).collect::<Vec<_>>(),
        bounds
            .iter()
            .map(|(a, b)| (a / 48, b / 48))
            .collect::<Vec<_>>()
    );
    assert_eq!(causal.len(), 2 * bounds.len());
    for (pair, (s, e)) in causal.chunks(2).zip(&bounds) {
        assert!(pair[0].start && !pair[1].start);
        let (s, e) = ((s / 48) as i64, (e / 48) as i64);
        assert!(
            (ms(&pair[0]) - s).abs() <= 100,
            "start {} vs {s}",
            ms(&pair[0])
        );
        assert!(
            (-100..=170).contains(&(ms(&pair[1]) - e)),
            "end {} vs {e}",
            ms(&pair[1])
        );
    }
    for (c, d) in causal.iter().zip(&default) {
        let late = ms(c) - ms(d);
        assert!((0..=74).contains(&late), "lookahead 0 vs 64: {late} ms");
    }
}

/// `native=false` runs Silero through ONNX Runtime instead of computing it natively
/// (the default on the CPU): the same speech segments, boundaries within one 10 ms
/// frame, confirming probabilities within 1e-4, and the same samples.
#[test]
fn native_and_onnx_runtime_silero_agree_through_the_element() {
    let (clean, bounds) = clip();
    let native = run(&[("vad", "silero")], &clean, 1, 4096);
    let ort = run(&[("vad", "silero"), ("native", "false")], &clean, 1, 4096);
    let (a, b) = (speech_messages(&native), speech_messages(&ort));
    assert_eq!(a.len(), 2 * bounds.len());
    assert_eq!(a.len(), b.len());
    for (m, n) in a.iter().zip(&b) {
        assert_eq!(m.start, n.start);
        let dt = m.timestamp.unwrap().mseconds() as i64 - n.timestamp.unwrap().mseconds() as i64;
        assert!(dt.abs() <= 10, "boundary moved by {dt} ms");
        assert!(
            (m.probability - n.probability).abs() <= 1e-4,
            "{} vs {}",
            m.probability,
            n.probability
        );
    }
    assert_eq!(native.samples, ort.samples);
    let e = element(&[("vad", "silero")]);
    assert!(e.property::<bool>("native"));
}

#[test]
fn quality_through_the_element() {
    let (clean, bounds) = clip();
    let n = clean.len();
    // Denoising: aligned output (delay compensated: lag 0), SI-SDR gain, clean kept.
    let r = run(&[("vad", "rnnoise")], &clean, 1, 4096);
    assert_eq!(best_lag(&clean, &r.samples, 1000), 0);
    let keep = si_sdr_db(&clean, &r.samples);
    let noisy = mix_at_snr(&clean, &white_noise(n, 11), 0.0);
    let r = run(&[("vad", "silero")], &noisy, 1, 4096);
    let gain = si_sdr_db(&clean, &r.samples) - si_sdr_db(&clean, &noisy);
    println!("element: clean SI-SDR {keep:.2} dB, white 0 dB gain {gain:.2} dB");
    assert!(keep >= 17.0 && gain >= 6.0);
    assert_eq!(best_lag(&clean, &r.samples, 1000), 0);

    // VAD metas: per-10 ms probabilities against energy labels.
    let probs: Vec<f32> = r
        .buffers
        .iter()
        .flat_map(|b| speech_meta(b).unwrap().unwrap().probabilities)
        .map(|p| p as f32)
        .collect();
    let labels = energy_labels(&clean, 480, -40.0, 20);
    let auc = roc_auc(&probs, &labels);
    let b = binary_scores(&probs, &labels, 0.5);
    println!(
        "element silero, white 0 dB: accuracy {:.3}, balanced {:.3}, AUC {auc:.3}",
        b.accuracy, b.balanced_accuracy
    );
    assert!(b.accuracy >= 0.92 && auc >= 0.94);

    // Messages: speech-start / speech-end within 100 ms of the true boundaries.
    let noisy = mix_at_snr(&clean, &pink_noise(n, 31), 5.0);
    for x in [&clean, &noisy] {
        let msgs = speech_messages(&run(&[("vad", "silero")], x, 1, 4096));
        let ms = |m: &SpeechMessage| m.timestamp.unwrap().mseconds();
        println!(
            "messages (ms): {:?}; true {:?}",
            msgs.iter().map(|m| (m.start, ms(m))).collect::<Vec<_>>(),
            bounds
                .iter()
                .map(|(a, b)| (a / 48, b / 48))
                .collect::<Vec<_>>()
        );
        assert_eq!(msgs.len(), 2 * bounds.len());
        for (pair, (s, e)) in msgs.chunks(2).zip(&bounds) {
            assert!(pair[0].start && !pair[1].start);
            assert!(pair[0].running_time.is_some() && pair[0].stream_time.is_some());
            // The confirming frame's probability: over the threshold for a start, under
            // it for an end (with 4096-sample buffers the boundary frame is usually in an
            // earlier buffer than the confirmation; it used to read 0 then).
            assert!(
                pair[0].probability >= 0.5 && pair[1].probability < 0.5,
                "start {} end {}",
                pair[0].probability,
                pair[1].probability
            );
            assert!(
                ms(&pair[0]).abs_diff(s / 48) <= 100,
                "start {} vs {}",
                ms(&pair[0]),
                s / 48
            );
            assert!(
                ms(&pair[1]).abs_diff(e / 48) <= 100,
                "end {} vs {}",
                ms(&pair[1]),
                e / 48
            );
        }
    }
}

#[test]
fn gate_silences_non_speech() {
    let (clean, bounds) = clip();
    let r = run(&[("vad", "silero"), ("gate", "silence")], &clean, 1, 4096);
    // The gate closes when the end is confirmed (min-silence-ms = 300 after it): the late
    // part of the 700 ms pause is silent, the middle of speech is not.
    let pause = (bounds[0].1 + 48 * 510) as usize;
    assert!(
        r.samples[pause - 4320..pause + 4320]
            .iter()
            .all(|&v| v == 0.0)
    );
    let mid = ((bounds[1].0 + bounds[1].1) / 2) as usize;
    assert!(r.samples[mid - 2400..mid + 2400].iter().any(|&v| v != 0.0));
    let noisy = mix_at_snr(&clean, &white_noise(clean.len(), 5), 5.0);
    let r = run(
        &[
            ("vad", "silero"),
            ("gate", "attenuate"),
            ("gate-attenuation", "-40"),
            ("enabled", "false"),
        ],
        &noisy,
        1,
        4096,
    );
    let p = &r.samples[pause - 4320..pause + 4320];
    let q = &noisy[pause - 4320..pause + 4320];
    let ratio = affect::audio::metrics::rms(p) / affect::audio::metrics::rms(q);
    assert!((ratio - 0.01).abs() < 1e-3, "attenuation {ratio}");
}

/// ACCEPT_CAPS is a routine negotiation probe (gst-validate asks it with many caps):
/// unsupported caps get `false`, supported ones `true`, and no message reaches the bus.
#[test]
fn accept_caps_answers_without_posting_anything() {
    common::init();
    let pipe = gst::Pipeline::new();
    let e = element(&[("vad", "rnnoise")]);
    pipe.add(&e).unwrap();
    pipe.set_state(gst::State::Paused).unwrap();
    let sink = e.static_pad("sink").unwrap();
    for (caps, want) in [
        (
            "audio/x-raw,format=S16LE,rate=44100,channels=1,layout=interleaved",
            false,
        ),
        (
            "audio/x-raw,format=F32LE,rate=16000,channels=2,layout=interleaved",
            false,
        ),
        ("video/x-raw,format=RGB,width=4,height=4", false),
        (
            "audio/x-raw,format=F32LE,rate=48000,channels=2,layout=interleaved",
            true,
        ),
    ] {
        let caps: gst::Caps = caps.parse().unwrap();
        assert_eq!(sink.query_accept_caps(&caps), want, "{caps}");
    }
    let bus = pipe.bus().unwrap();
    let posted = bus.timed_pop_filtered(
        gst::ClockTime::from_mseconds(200),
        &[gst::MessageType::Error, gst::MessageType::Warning],
    );
    pipe.set_state(gst::State::Null).unwrap();
    assert!(posted.is_none(), "{posted:?}");
}

/// Pushes `x` (interleaved, `channels`) in buffers whose sizes (samples per channel) cycle
/// through `sizes`, in a segment starting at `start` (buffer timestamps from there, or
/// none), then EOS.
fn run_segment(
    x: &[f32],
    channels: usize,
    sizes: &[usize],
    start: gst::ClockTime,
    timestamps: bool,
) -> Run {
    let el = element(&[("vad", "rnnoise")]);
    let bus = gst::Bus::new();
    el.set_bus(Some(&bus));
    let mut h = gst_check::Harness::with_element(&el, Some("sink"), Some("src"));
    h.set_src_caps_str(&caps(channels));
    h.play();
    let mut segment = gst::FormattedSegment::<gst::ClockTime>::new();
    segment.set_start(start);
    segment.set_time(start);
    h.push_event(gst::event::Segment::new(&segment));
    let mut buffers = Vec::new();
    let mut at = 0usize;
    for &size in sizes.iter().cycle() {
        if at * channels >= x.len() {
            break;
        }
        let c = &x[at * channels..((at + size) * channels).min(x.len())];
        let mut b = to_buffer(c, 0, at == 0);
        b.get_mut().unwrap().set_pts(
            timestamps
                .then(|| start + gst::ClockTime::from_nseconds(at as u64 * 1_000_000_000 / RATE)),
        );
        h.push(b).unwrap();
        at += c.len() / channels;
        while let Some(b) = h.try_pull() {
            buffers.push(b);
        }
    }
    end_run(&mut h, &bus, buffers)
}

/// Buffers of sizes that are no multiple of the 10 ms frame, in stereo, in a segment that
/// starts at 10 s: every input sample comes out once, in order, whatever the buffer
/// sizes, and timestamps count samples from the segment start (with or without input
/// timestamps), with offsets counting samples.
#[test]
fn odd_sized_stereo_buffers_in_a_later_segment_come_out_sample_for_sample() {
    let n = 48_000 + 333;
    let left = white_noise(n, 21);
    let right = white_noise(n, 22);
    let x: Vec<f32> = left
        .iter()
        .zip(&right)
        .flat_map(|(l, r)| [l * 0.1, r * 0.05])
        .collect();
    let start = gst::ClockTime::from_seconds(10);
    let whole = run_segment(&x, 2, &[n], start, true);
    assert_eq!(whole.samples.len(), x.len());
    for timestamps in [true, false] {
        let r = run_segment(&x, 2, &[1, 13, 479, 481, 997, 4801], start, timestamps);
        assert_eq!(r.samples, whole.samples, "timestamps {timestamps}");
        let mut at = 0u64;
        for b in &r.buffers {
            let len = (b.size() / 8) as u64;
            let pts = start + gst::ClockTime::from_nseconds(at * 1_000_000_000 / RATE);
            let end = start + gst::ClockTime::from_nseconds((at + len) * 1_000_000_000 / RATE);
            assert_eq!(b.pts(), Some(pts), "pts at sample {at}");
            assert_eq!(b.duration(), Some(end - pts), "duration at sample {at}");
            assert_eq!((b.offset(), b.offset_end()), (at, at + len));
            assert_eq!(b.flags().contains(gst::BufferFlags::DISCONT), at == 0);
            let meta = speech_meta(b).expect("speech meta").unwrap();
            assert_eq!(meta.probabilities.len() as u64, len.div_ceil(480));
            at += len;
        }
        assert_eq!(at, n as u64);
    }
}

/// Input memory that is not aligned for f32 (a buffer that starts one byte into its
/// memory) gives the same output as aligned memory.
#[test]
fn unaligned_input_memory_gives_the_same_output() {
    let x: Vec<f32> = white_noise(10_000, 5).iter().map(|v| v * 0.1).collect();
    let aligned = run(&[("vad", "rnnoise")], &x, 1, 1000);
    let el = element(&[("vad", "rnnoise")]);
    let mut h = gst_check::Harness::with_element(&el, Some("sink"), Some("src"));
    h.set_src_caps_str(&caps(1));
    h.play();
    let mut out = Vec::new();
    for (i, c) in x.chunks(1000).enumerate() {
        let mut bytes = vec![0u8];
        bytes.extend(c.iter().flat_map(|s| s.to_le_bytes()));
        let padded = gst::Buffer::from_mut_slice(bytes);
        let mut b = padded
            .copy_region(gst::BufferCopyFlags::MEMORY, 1..)
            .unwrap();
        {
            let b = b.get_mut().unwrap();
            b.set_pts(gst::ClockTime::from_nseconds(
                i as u64 * 1000 * 1_000_000_000 / RATE,
            ));
            if i == 0 {
                b.set_flags(gst::BufferFlags::DISCONT);
            }
        }
        assert_ne!(
            b.map_readable().unwrap().as_ptr() as usize % std::mem::align_of::<f32>(),
            0
        );
        h.push(b).unwrap();
        while let Some(b) = h.try_pull() {
            out.extend(samples_of(&b));
        }
    }
    h.push_event(gst::event::Eos::new());
    while let Some(b) = h.try_pull() {
        out.extend(samples_of(&b));
    }
    assert_eq!(out, aligned.samples);
}

/// A change of the number of channels drains the engine: the old stream's samples come
/// out complete, before the new caps, and the new stream starts its own timeline.
#[test]
fn channel_change_drains_under_the_old_caps() {
    let el = element(&[("vad", "rnnoise")]);
    let mut h = gst_check::Harness::with_element(&el, Some("sink"), Some("src"));
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let s = seen.clone();
    el.static_pad("src").unwrap().add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
        move |_, info| {
            let mut s = s.lock().unwrap();
            if let Some(b) = info.buffer() {
                s.push(format!("samples {}", b.size() / 4));
            } else if let Some(gst::EventView::Caps(c)) = info.event().map(|e| e.view()) {
                let channels = c.caps().structure(0).unwrap().get::<i32>("channels");
                s.push(format!("channels {}", channels.unwrap()));
            }
            gst::PadProbeReturn::Ok
        },
    );
    h.set_src_caps_str(&caps(1));
    h.play();
    let x: Vec<f32> = white_noise(3000, 6).iter().map(|v| v * 0.1).collect();
    h.push(to_buffer(&x, 0, true)).unwrap();
    h.set_src_caps_str(&caps(2));
    h.push(to_buffer(
        &[x.as_slice(), x.as_slice()].concat(),
        3000,
        false,
    ))
    .unwrap();
    h.push_event(gst::event::Eos::new());
    let mut bufs = Vec::new();
    while let Some(b) = h.try_pull() {
        bufs.push(b);
    }
    let seen = seen.lock().unwrap().clone();
    let change = seen
        .iter()
        .position(|s| s == "channels 2")
        .expect("new caps");
    let mono: usize = seen[..change]
        .iter()
        .filter_map(|s| s.strip_prefix("samples "))
        .map(|n| n.parse::<usize>().unwrap())
        .sum();
    let stereo: usize = seen[change..]
        .iter()
        .filter_map(|s| s.strip_prefix("samples "))
        .map(|n| n.parse::<usize>().unwrap())
        .sum();
    assert_eq!((mono, stereo), (3000, 6000), "{seen:?}");
    let first_stereo = bufs
        .iter()
        .find(|b| b.pts() >= Some(gst::ClockTime::from_nseconds(3000 * 1_000_000_000 / RATE)));
    let first_stereo = first_stereo.expect("stereo output");
    assert!(first_stereo.flags().contains(gst::BufferFlags::DISCONT));
    assert_eq!(first_stereo.offset(), 0);
}

/// A buffer before any caps is an error that says what to put in front.
#[test]
fn buffer_without_caps_is_an_error_naming_the_fix() {
    let el = element(&[("vad", "rnnoise")]);
    let bus = gst::Bus::new();
    el.set_bus(Some(&bus));
    let mut h = gst_check::Harness::with_element(&el, Some("sink"), Some("src"));
    h.play();
    h.push_event(gst::event::StreamStart::new("no-caps"));
    h.push_event(gst::event::Segment::new(&gst::FormattedSegment::<
        gst::ClockTime,
    >::new()));
    assert_eq!(
        h.push(to_buffer(&[0.0; 480], 0, true)),
        Err(gst::FlowError::NotNegotiated)
    );
    let messages: Vec<gst::Message> = std::iter::from_fn(|| bus.pop()).collect();
    let errors = texts(&messages, false);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("audioconvert ! audioresample"),
        "{errors:?}"
    );
}

/// `qos=true` (a base-class property) would let late buffers be dropped and shift every
/// later sample-count timestamp: it is turned off at the first buffer with one warning,
/// and every sample still comes out.
#[test]
fn qos_is_refused_with_a_warning_and_no_sample_is_lost() {
    let x: Vec<f32> = (0..48_000).map(|i| (i as f32 * 0.05).sin() * 0.1).collect();
    let r = run(&[("qos", "true"), ("vad", "rnnoise")], &x, 1, 1000);
    assert_eq!(r.samples.len(), x.len());
    let warnings = texts(&r.messages, true);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("qos=true is not supported"),
        "{warnings:?}"
    );
}
