//! Every committed fixture imports, verifies, runs on the reference interpreter and matches
//! onnxruntime's outputs within `ATOL + RTOL * |expected|` (1e-5 + 1e-4 relative).
//!
//! The fixtures are made by `tests/onnx/make_fixtures.py`; this test needs no Python.

mod common;

use common::{compare, fixture_names, fixtures, import_options, read_npz};
use sinter_import_onnx::{import_file, ir_name};

/// Imports and runs one fixture; `Err` says what differs.
fn check(name: &str) -> Result<usize, String> {
    let dir = fixtures();
    let g = import_file(&dir.join(format!("{name}.onnx")), &import_options(name))
        .map_err(|e| format!("import: {e}"))?;
    g.verify().map_err(|e| format!("verify: {e}"))?;
    let inputs = read_npz(&dir.join(format!("{name}.inputs.npz")))
        .into_iter()
        .map(|(k, v)| (ir_name(&k), v))
        .collect();
    let want = read_npz(&dir.join(format!("{name}.outputs.npz")));
    let got = sinter_interp::run(&g, &inputs).map_err(|e| format!("run: {e}"))?;
    if got.len() != want.len() {
        return Err(format!("{} outputs, want {}", got.len(), want.len()));
    }
    for (out_name, t) in &got {
        let w = want
            .iter()
            .find(|(k, _)| ir_name(k) == *out_name)
            .ok_or_else(|| format!("output `{out_name}` is not in the reference"))?
            .1;
        compare(t, w).map_err(|e| format!("output `{out_name}`: {e}"))?;
    }
    Ok(g.nodes().len())
}

#[test]
fn every_fixture_matches_onnxruntime() {
    let names = fixture_names();
    assert!(names.len() >= 40, "only {} fixtures found", names.len());
    let mut failures = Vec::new();
    for name in &names {
        match check(name) {
            Ok(nodes) => eprintln!("ok   {name} ({nodes} nodes)"),
            Err(e) => {
                eprintln!("FAIL {name}: {e}");
                failures.push(format!("{name}: {e}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} fixtures failed:\n{}",
        failures.len(),
        names.len(),
        failures.join("\n")
    );
}

#[test]
fn the_mission_networks_are_all_there() {
    let names = fixture_names();
    for net in [
        "net_mlp",
        "net_lenet5",
        "net_mini_vgg",
        "net_resnet_basic",
        "net_resnet_bottleneck",
        "net_inception",
        "net_rnn",
        "net_lstm",
        "net_autoencoder",
        "net_dcgan_generator",
        "net_dcgan_discriminator",
    ] {
        assert!(names.iter().any(|n| n == net), "fixture {net} is missing");
    }
}

#[test]
fn the_comparison_rejects_a_wrong_answer() {
    let want = sinter_ir::Tensor::from_f32(&[3], vec![1.0, -2.0, 1000.0]);
    assert!(compare(&want, &want).is_ok());
    let close = sinter_ir::Tensor::from_f32(&[3], vec![1.000_001, -2.0, 1000.05]);
    assert!(compare(&close, &want).is_ok());
    let off = sinter_ir::Tensor::from_f32(&[3], vec![1.0, -2.001, 1000.0]);
    let e = compare(&off, &want).unwrap_err();
    assert!(e.contains("element 1"), "{e}");
    let reshaped = want.reshaped(&[3, 1]).unwrap();
    assert!(compare(&reshaped, &want).is_err());
}
