//! The `sinter` command end to end: exit codes, output and error messages.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tempfile::TempDir;

fn sinter(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sinter"))
        .args(args)
        .output()
        .expect("run sinter")
}

/// Writes `contents` to `name` in `dir` and returns the path.
fn tmp(dir: &TempDir, name: &str, contents: &str) -> PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, contents).unwrap();
    p
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The percentage in "... test accuracy 96.1% (346/360 held out)" of a training summary.
fn test_accuracy(s: &str) -> f32 {
    s.split("test accuracy ")
        .nth(1)
        .and_then(|r| r.split('%').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no accuracy in {s}"))
}

const MLP: &str = "graph @m {\n  input %x: f32[2,2]\n  param %w: f32[2,2]\n  %y = matmul(%x, %w)\n  %r = relu(%y)\n  output %r\n}\n";

#[test]
fn check_accepts_and_rejects() {
    let dir = tempfile::tempdir().unwrap();
    let good = tmp(&dir, "good.sir", MLP);
    let out = sinter(&["check", good.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());

    let bad = tmp(
        &dir,
        "bad.sir",
        &MLP.replace("param %w: f32[2,2]", "param %w: f32[3,2]"),
    );
    let out = sinter(&["check", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("bad.sir:4:"), "{err}");
    assert!(
        err.contains("%y = matmul(%x, %w): inner dimensions differ"),
        "{err}"
    );

    let unknown = tmp(&dir, "unknown.sir", &MLP.replace("relu", "relux"));
    let err = text(&sinter(&["check", unknown.to_str().unwrap()]).stderr);
    assert!(err.contains("unknown op `relux`"), "{err}");

    let garbage = tmp(&dir, "garbage.sir", "graph @m { input %x: f32[2 }");
    let out = sinter(&["check", garbage.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("garbage.sir:1:"),
        "{}",
        text(&out.stderr)
    );

    let out = sinter(&["check", "/nonexistent/file.sir"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("/nonexistent/file.sir"));
}

#[test]
fn print_is_canonical() {
    let dir = tempfile::tempdir().unwrap();
    let p = tmp(&dir, "print.sir", MLP);
    let out = sinter(&["print", p.to_str().unwrap()]);
    assert!(out.status.success());
    let printed = text(&out.stdout);
    assert!(
        printed.contains("%y: f32[2,2] = matmul(%x, %w)"),
        "{printed}"
    );
    let again = tmp(&dir, "print2.sir", &printed);
    assert_eq!(
        text(&sinter(&["print", again.to_str().unwrap()]).stdout),
        printed
    );
}

fn write_inputs(path: &Path, arrays: &[(&str, &[usize], Vec<f32>)]) {
    let tensors: Vec<(String, sinter::ir::Tensor)> = arrays
        .iter()
        .map(|(n, s, v)| (n.to_string(), sinter::ir::Tensor::from_f32(s, v.clone())))
        .collect();
    sinter::npz::write_npz(path, tensors.iter().map(|(n, t)| (n.as_str(), t))).unwrap();
}

#[test]
fn run_reads_and_writes_npz() {
    let dir = tempfile::tempdir().unwrap();
    let g = tmp(&dir, "run.sir", MLP);
    let inputs = dir.path().join("in.npz");
    write_inputs(
        &inputs,
        &[
            ("x", &[2, 2], vec![1.0, 0.0, 0.0, -1.0]),
            ("w", &[2, 2], vec![1.0, 2.0, 3.0, 4.0]),
        ],
    );
    let out_path = dir.path().join("out.npz");
    let out = sinter(&[
        "run",
        g.to_str().unwrap(),
        "--inputs",
        inputs.to_str().unwrap(),
        "--out",
        out_path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let outs = sinter::npz::read_npz(&out_path).unwrap();
    // [[1, 0], [0, -1]] @ [[1, 2], [3, 4]] = [[1, 2], [-3, -4]]; relu -> [[1, 2], [0, 0]].
    assert_eq!(outs["r"].as_f32().unwrap(), &[1.0, 2.0, 0.0, 0.0]);
    assert_eq!(outs["r"].shape(), &[2, 2]);
}

#[test]
fn run_reports_missing_and_misshapen_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let g = tmp(&dir, "run2.sir", MLP);
    let missing = dir.path().join("missing.npz");
    write_inputs(&missing, &[("x", &[2, 2], vec![0.0; 4])]);
    let out = sinter(&[
        "run",
        g.to_str().unwrap(),
        "--inputs",
        missing.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("missing input `%w`"), "{err}");

    let wrong = dir.path().join("wrong.npz");
    write_inputs(
        &wrong,
        &[("x", &[2, 3], vec![0.0; 6]), ("w", &[2, 2], vec![0.0; 4])],
    );
    let err = text(
        &sinter(&[
            "run",
            g.to_str().unwrap(),
            "--inputs",
            wrong.to_str().unwrap(),
        ])
        .stderr,
    );
    assert!(
        err.contains("input `%x` expects f32[2,2], got f32[2,3]"),
        "{err}"
    );

    let out = sinter(&["run", g.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("missing input `%x`"));
}

#[test]
fn demo_trains_the_example() {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("loss.png");
    let out = sinter(&["demo", "--epochs", "2", "--plot", png.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(
        text(&out.stderr).contains("LeNet-5 (sinter zoo lenet5): "),
        "{}",
        text(&out.stderr)
    );
    assert!(s.contains("optimiser on the training step"), "{s}");
    assert!(s.contains("epoch 2: mean training loss"), "{s}");
    assert!(
        s.contains(&format!("loss curve written to {}", png.display())),
        "{s}"
    );
    assert!(std::fs::metadata(&png).unwrap().len() > 1000);
    // "... test accuracy 96.1% (346/360 held out)": two epochs, well above chance (10%).
    let acc = test_accuracy(&s);
    assert!(acc >= 90.0, "{s}");
}

#[test]
fn train_reports_unsuitable_graphs() {
    let dir = tempfile::tempdir().unwrap();
    let p = tmp(&dir, "train_bad.sir", MLP);
    let out = sinter(&["train", p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("the graph needs a data input `%labels` (i64[B])"),
        "{err}"
    );
    let with_labels = tmp(
        &dir,
        "train_bad2.sir",
        &MLP.replace("  param %w", "  input %labels: i64[2]\n  param %w"),
    );
    let err = text(&sinter(&["train", with_labels.to_str().unwrap()]).stderr);
    assert!(
        err.contains("the graph needs a scalar output `%loss`"),
        "{err}"
    );
}

/// `sinter train MODEL` builds a zoo model sized for the data (here the MLP takes the digits'
/// 64 pixels and a batch of 32), trains it with a progress bar per epoch and reports the
/// held-out accuracy; an unknown model or a missing data file is a clear error.
#[test]
fn train_builds_zoo_models_for_the_data() {
    let out = sinter(&["train", "mlp", "--small", "--batch", "32", "--epochs", "2"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(
        text(&out.stderr)
            .contains("training mlp on embedded UCI digits (1437 samples of [1, 8, 8]"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        s.contains("2 training steps of 32") || s.contains("88 training steps of 32"),
        "{s}"
    );
    let acc = test_accuracy(&s);
    assert!(acc >= 80.0, "{s}");
    let err = text(&sinter(&["train", "lenet6"]).stderr);
    assert!(err.contains("no model `lenet6` in the zoo"), "{err}");
    let err = text(&sinter(&["train", "mlp", "--data", "/nonexistent/mnist.npz"]).stderr);
    assert!(err.contains("/nonexistent/mnist.npz"), "{err}");
}

#[test]
fn zoo_lists_models_and_prints_one() {
    let out = sinter(&["zoo", "--full"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let list = text(&out.stdout);
    // Published parameter counts (torchvision's layouts).
    for (name, params) in [
        ("lenet5", "61706"),
        ("resnet18", "11689512"),
        ("vgg16", "138357544"),
    ] {
        let line = list
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no {name} in\n{list}"));
        assert!(line.contains(params), "{line}");
    }
    // One column per field, however long the names (`lenet5-stochastic`).
    let col = list.lines().next().unwrap().find("description").unwrap();
    for l in list.lines().skip(1) {
        let b = l.as_bytes();
        assert!(
            b[col - 2] == b' ' && b[col - 1] == b' ' && b[col] != b' ',
            "{list}"
        );
    }
    let out = sinter(&["zoo", "mlp"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let g = sinter::ir::parse(&text(&out.stdout)).unwrap();
    assert!(g.find("loss").is_some() && g.find("labels").is_some());
    let out = sinter(&["zoo", "nope"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("nope"), "{}", text(&out.stderr));
}

/// The procedures beyond backprop from the command line: a DBN (CD-1 pretraining, then
/// fine-tuning) clears 90% on the held-out digits; a DCGAN trains and writes its samples.
#[test]
fn train_runs_the_pretraining_and_adversarial_procedures() {
    let out = sinter(&["train", "dbn", "--epochs", "2"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(s.contains("rbm1: reconstruction error"), "{s}");
    assert!(s.contains("rbm2: reconstruction error"), "{s}");
    let acc = test_accuracy(&s);
    assert!(acc >= 90.0, "{s}");
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("dcgan.png");
    let out = sinter(&[
        "train",
        "dcgan",
        "--epochs",
        "1",
        "--png",
        png.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(s.contains("dcgan: 44 alternating steps"), "{s}");
    assert!(std::fs::metadata(&png).unwrap().len() > 100, "{s}");
    let err = text(&sinter(&["train", "sae", "--batch", "4"]).stderr);
    assert!(err.contains("--batch"), "{err}");
}

/// `sinter train MODEL --data FILE.npz`: the user's data (here 600 of the digits, flattened, as
/// `x`/`y` with a `x_test`/`y_test` part) sizes the zoo model and is held out as the file says.
#[test]
fn train_reads_user_data_from_npz() {
    let d = sinter::data::digits().unwrap();
    let flat = |r: std::ops::Range<usize>| {
        let idx: Vec<usize> = r.collect();
        let (x, y) = d.batch(&idx);
        (x.reshaped(&[idx.len(), 64]).unwrap(), y)
    };
    let (x, y) = flat(0..600);
    let (xt, yt) = flat(600..800);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("digits.npz");
    sinter::npz::write_npz(&p, [("x", &x), ("y", &y), ("x_test", &xt), ("y_test", &yt)]).unwrap();
    let out = sinter(&[
        "train",
        "mlp",
        "--data",
        p.to_str().unwrap(),
        "--batch",
        "20",
        "--epochs",
        "3",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("600 samples of [64], 10 classes, 200 held out"),
        "{err}"
    );
    let s = text(&out.stdout);
    assert!(s.contains("90 training steps of 20"), "{s}");
    assert!(s.contains("/200 held out)"), "{s}");
    let acc = test_accuracy(&s);
    assert!(acc >= 80.0, "{s}");
}

/// The classic learning rules from the command line: the perceptron learns AND but not XOR
/// (which a two-layer network then solves), Hopfield recall is exact from 10% noise, ART-1's
/// categories grow with vigilance, and the initialisation study prints its table.
#[test]
fn train_runs_the_classic_learning_rules() {
    let run = |args: &[&str]| {
        let out = sinter(args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    };
    let s = run(&["train", "perceptron"]);
    assert!(
        s.contains("perceptron AND: mistakes per epoch") && s.contains("learned exactly"),
        "{s}"
    );
    assert!(
        s.contains("XOR") && s.contains("not linearly separable"),
        "{s}"
    );
    assert!(s.contains("on XOR: 4/4 rows right"), "{s}");
    let s = run(&["train", "hopfield"]);
    assert!(s.contains("overlaps [1.00, 1.00, 1.00]"), "{s}");
    let s = run(&["train", "art1", "--epochs", "1"]);
    let counts: Vec<usize> = s
        .lines()
        .filter_map(|l| l.split(": ").nth(1)?.split(' ').next()?.parse().ok())
        .collect();
    assert_eq!(counts.len(), 4, "{s}");
    assert!(counts.windows(2).all(|w| w[0] < w[1]), "{s}");
    let s = run(&["train", "init-study"]);
    assert!(
        s.contains("relu   He") && s.contains("tanh   Xavier"),
        "{s}"
    );
}
