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
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("out.npz");
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
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("truncated.onnx");
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

/// `net_mlp` with its batch axis made dynamic (`dim_param: "batch"`), written to a temp file.
fn dynamic_mlp(dir: &Path) -> PathBuf {
    use prost::Message;
    use sinter_import_onnx::proto::{ModelProto, tensor_shape_proto::dimension, type_proto};
    let bytes = std::fs::read(fixture("net_mlp.onnx")).unwrap();
    let mut m = ModelProto::decode(bytes.as_slice()).unwrap();
    let input = &mut m.graph.as_mut().unwrap().input[0];
    let Some(type_proto::Value::TensorType(t)) = input.r#type.as_mut().unwrap().value.as_mut()
    else {
        panic!("net_mlp's input is a tensor")
    };
    t.shape.as_mut().unwrap().dim[0].value = Some(dimension::Value::DimParam("batch".into()));
    let path = dir.join("dynamic_mlp.onnx");
    std::fs::write(&path, m.encode_to_vec()).unwrap();
    path
}

#[test]
fn shape_option_fixes_a_dynamic_batch() {
    let dir = tempfile::tempdir().unwrap();
    let model = dynamic_mlp(dir.path());
    let model = model.to_str().unwrap();

    let out = sinter(&["check", model]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("dynamic dimension `batch` on axis 0") && err.contains("--shape x="),
        "{err}"
    );

    // Fixed to the fixture's batch, the model runs and matches onnxruntime.
    let out_path = dir.path().join("out.npz");
    let inputs = fixture("net_mlp.inputs.npz");
    let out = sinter(&[
        "run",
        model,
        "--shape",
        "x=4x16",
        "--inputs",
        inputs.to_str().unwrap(),
        "--out",
        out_path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let got = sinter::npz::read_npz(&out_path).unwrap();
    let want = sinter::npz::read_npz(&fixture("net_mlp.outputs.npz")).unwrap();
    let (g, w) = (got["y"].as_f32().unwrap(), want["y"].as_f32().unwrap());
    assert_eq!(g.len(), w.len());
    for (a, b) in g.iter().zip(w) {
        assert!((a - b).abs() <= 1e-5 + 1e-4 * b.abs(), "{a} vs {b}");
    }

    // Another batch size is another static graph; the option goes before or after the command.
    let out = sinter(&["--shape", "x=7x16", "print", model]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("input %x: f32[7,16]"));

    // Disagreeing with a static extent, naming no input, or malformed: clear errors.
    for (arg, want) in [
        ("x=4x17", "axis 1 is 16 in the model, the option gives 17"),
        ("nope=1", "`nope`, which is not a graph input"),
        ("x=4xb", "extents must be non-negative integers"),
    ] {
        let out = sinter(&["check", model, "--shape", arg]);
        assert!(!out.status.success(), "{arg} was accepted");
        let err = text(&out.stderr);
        assert!(err.contains(want), "{arg}: {err}");
    }
}

#[test]
fn trainable_option_makes_initializers_params() {
    let model = fixture("net_mlp.onnx");
    let out = sinter(&["print", model.to_str().unwrap(), "--trainable"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    let params = printed
        .lines()
        .filter(|l| l.trim_start().starts_with("param "))
        .count();
    assert_eq!(params, 6, "{printed}");
    let out = sinter(&["print", model.to_str().unwrap()]);
    let printed = text(&out.stdout);
    assert_eq!(
        printed
            .lines()
            .filter(|l| l.trim_start().starts_with("param "))
            .count(),
        0
    );

    // The options are for ONNX: a .sir file states its own types.
    let sir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ir-spec/examples/lenet.sir");
    let out = sinter(&["check", sir.to_str().unwrap(), "--trainable"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("apply to .onnx models only"),
        "{}",
        text(&out.stderr)
    );
}
