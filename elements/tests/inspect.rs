// SPDX-License-Identifier: MPL-2.0
//! `gst-inspect-1.0 affect` lists the plugin without warnings, and every element's
//! documentation carries an example pipeline that parses (and, where it needs only files
//! the test can make, runs): in its description, or for elements documented the
//! gst-plugins-rs way (a one-line description), in the `SECTION:element-<name>` block of
//! its module.

mod common;

use std::path::Path;
use std::process::Command;

use gst::prelude::*;

fn inspect(args: &[&str]) -> (String, String) {
    let dir = common::scratch("inspect");
    let out = Command::new("gst-inspect-1.0")
        .args(args)
        .env("GST_PLUGIN_PATH", common::plugin_dir())
        .env("GST_REGISTRY", dir.join("registry.bin"))
        .output()
        .expect("gst-inspect-1.0 runs (apt package gstreamer1.0-tools)");
    assert!(
        out.status.success(),
        "gst-inspect-1.0 {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The first example pipeline (after `gst-launch-1.0 `) of `element`: from its
/// gst-inspect-1.0 output `doc`, else from the `SECTION:element-<name>` doc block of
/// `src/<element>/mod.rs` (lines ending in `\` continue on the next one).
fn example(element: &str, doc: &str) -> Option<String> {
    let launch = |l: &str| l.split_once("gst-launch-1.0 ").map(|(_, p)| p.to_owned());
    doc.lines().find_map(launch).or_else(|| {
        let module = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src")
            .join(element)
            .join("mod.rs");
        let src = std::fs::read_to_string(module).ok()?;
        let (_, section) = src.split_once(&format!("SECTION:element-{element}\n"))?;
        let (section, _) = section.split_once("*/")?;
        let mut lines = section
            .lines()
            .map(|l| l.trim_start().trim_start_matches('*').trim());
        let mut line = lines.find_map(launch)?;
        while let Some(head) = line.strip_suffix('\\') {
            line = format!("{head}{}", lines.next()?);
        }
        Some(line)
    })
}

#[test]
fn plugin_registers_without_warnings_and_documents_examples() {
    let (out, err) = inspect(&["affect"]);
    assert!(
        err.trim().is_empty(),
        "warnings from gst-inspect-1.0 affect:\n{err}"
    );
    assert!(out.contains("Name                     affect"), "{out}");
    let elements: Vec<String> = out
        .lines()
        .filter_map(|l| {
            l.strip_prefix("  ")
                .and_then(|l| l.split_once(": "))
                .map(|(n, _)| n.trim().to_owned())
        })
        .filter(|n| !n.contains(' ') && !n.is_empty() && n.chars().all(|c| c.is_ascii_lowercase()))
        .collect();
    assert!(elements.contains(&"affectreplay".to_string()), "{out}");

    common::init();
    let dir = common::scratch("inspect-examples");
    let ndjson = dir.join("affect.ndjson");
    std::fs::write(&ndjson, "").unwrap();
    for e in &elements {
        let (doc, err) = inspect(&[e]);
        assert!(err.trim().is_empty(), "{e}: {err}");
        let line = example(e, &doc)
            .unwrap_or_else(|| panic!("{e}: no example pipeline in its documentation"));
        // Drop gst-launch options (`-m`, `-e`, …) in front of the pipeline.
        let line = line
            .split_whitespace()
            .skip_while(|t| t.starts_with('-'))
            .collect::<Vec<_>>()
            .join(" ");
        let pipeline = line.replace("affect.ndjson", ndjson.to_str().unwrap());
        let pipe = gst::parse::launch(&pipeline)
            .unwrap_or_else(|err| panic!("{e}: example `{pipeline}` does not parse: {err}"));
        let pipe = pipe.downcast::<gst::Pipeline>().unwrap();
        pipe.set_state(gst::State::Playing).unwrap();
        let msg = pipe
            .bus()
            .unwrap()
            .timed_pop_filtered(
                gst::ClockTime::from_seconds(30),
                &[gst::MessageType::Eos, gst::MessageType::Error],
            )
            .expect("example ends within 30 s");
        pipe.set_state(gst::State::Null).unwrap();
        assert!(
            matches!(msg.view(), gst::MessageView::Eos(_)),
            "{e}: example `{pipeline}` failed: {msg:?}"
        );
    }
}
