//! `sinter check`, `print` and `run` on `.onnx` files: the importer behind the CLI, chosen by
//! the file extension.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn sinter(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sinter"))
        .args(args)
        .output()
        .expect("run sinter")
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/onnx/fixtures")
        .join(name)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn check_and_print_an_onnx_model() {
    let model = fixture("net_lenet5.onnx");
    let out = sinter(&["check", model.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());

    let out = sinter(&["print", model.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    assert!(printed.contains("input %x: f32[2,1,28,28]"), "{printed}");
    assert!(printed.contains("conv2d("), "{printed}");
    assert!(printed.contains("output %y"), "{printed}");
    // The printed form is valid Sinter text.
    sinter::ir::parse(&printed).unwrap();
}

#[test]
fn run_an_onnx_model_matches_onnxruntime() {
    let dir = std::env::temp_dir().join(format!("sinter-cli-onnx-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out_path = dir.join("out.npz");
    let out = sinter(&[
        "run",
        fixture("net_resnet_basic.onnx").to_str().unwrap(),
        "--inputs",
        fixture("net_resnet_basic.inputs.npz").to_str().unwrap(),
        "--out",
        out_path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let got = sinter::npz::read_npz(&out_path).unwrap();
    let want = sinter::npz::read_npz(&fixture("net_resnet_basic.outputs.npz")).unwrap();
    let (g, w) = (got["y"].as_f32().unwrap(), want["y"].as_f32().unwrap());
    assert_eq!(g.len(), w.len());
    for (a, b) in g.iter().zip(w) {
        assert!((a - b).abs() <= 1e-5 + 1e-4 * b.abs(), "{a} vs {b}");
    }
}

#[test]
fn onnx_errors_name_the_file() {
    let dir = std::env::temp_dir().join(format!("sinter-cli-onnx-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("truncated.onnx");
    let bytes = std::fs::read(fixture("net_mlp.onnx")).unwrap();
    std::fs::write(&bad, &bytes[..bytes.len() / 2]).unwrap();
    let out = sinter(&["check", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("truncated.onnx: not a valid ONNX model"),
        "{err}"
    );
}
