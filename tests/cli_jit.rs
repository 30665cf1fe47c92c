//! The JIT side of the `sinter` command: `run` (JIT by default, `--interp` for the oracle),
//! `compile --emit loops|clif|asm --timings` and `bench [--threads N] [--json]`.

use std::path::PathBuf;
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

const G: &str = "graph @g {\n  %u = random_uniform() {shape=[3,5], low=-1, high=1, seed=4}\n  %s = softmax(%u)\n  %r = relu(%u)\n  output %s, %r\n}\n";

#[test]
fn run_uses_the_jit_and_agrees_with_the_interpreter() {
    let dir = tempfile::tempdir().unwrap();
    let f = tmp(&dir, "g.sir", G);
    let jit = sinter(&["run", f.to_str().unwrap()]);
    assert!(jit.status.success(), "{}", text(&jit.stderr));
    let interp = sinter(&["run", "--interp", f.to_str().unwrap()]);
    assert!(interp.status.success(), "{}", text(&interp.stderr));
    assert_eq!(text(&jit.stdout), text(&interp.stdout));
    assert!(text(&jit.stdout).contains("%s: f32[3,5]"));
}

#[test]
fn run_reports_data_errors() {
    let src = "graph @g {\n  %d = random_uniform() {shape=[3]}\n  const %idx: i64[2] = [0, 5]\n  %g = gather(%d, %idx)\n  output %g\n}\n";
    let dir = tempfile::tempdir().unwrap();
    let f = tmp(&dir, "bad.sir", src);
    // Index 5 is out of range for extent 3: both backends refuse, naming the gather.
    for args in [vec!["run"], vec!["run", "--interp"]] {
        let mut a = args.clone();
        a.push(f.to_str().unwrap());
        let out = sinter(&a);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = text(&out.stderr);
        assert!(
            err.contains("gather") && err.contains("out of range"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn compile_emits_loops_clif_and_timings() {
    let dir = tempfile::tempdir().unwrap();
    let f = tmp(&dir, "c.sir", G);
    let out = sinter(&[
        "compile",
        f.to_str().unwrap(),
        "--emit",
        "loops",
        "--timings",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(s.contains("kernel softmax_s("), "{s}");
    assert!(s.contains("# compile:"), "{s}");
    assert!(s.contains("# memory: peak"), "{s}");
    let out = sinter(&["compile", f.to_str().unwrap(), "--emit", "clif"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("function"),
        "{}",
        text(&out.stdout)
    );
    // Machine code: one listing per kernel, ending in a return.
    let out = sinter(&["compile", f.to_str().unwrap(), "--emit", "asm"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let asm = text(&out.stdout);
    assert!(asm.contains("; kernel softmax_s"), "{asm}");
    assert!(asm.contains("ret"), "{asm}");
    assert!(
        !asm.contains("function"),
        "CLIF instead of machine code: {asm}"
    );
}

#[test]
fn bench_prints_text_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let f = tmp(&dir, "b.sir", G);
    let out = sinter(&["bench", f.to_str().unwrap(), "--runs", "3"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("@g: median"),
        "{}",
        text(&out.stdout)
    );
    let out = sinter(&[
        "bench",
        f.to_str().unwrap(),
        "--runs",
        "3",
        "--threads",
        "2",
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(s.starts_with("{\"graph\":\"g\",\"threads\":2"), "{s}");
    assert!(s.contains("\"kernels\":[{\"name\":"), "{s}");
}

/// A small classifier with a scalar `loss` (64 -> 16 -> 10, batch 8).
const CLASSIFIER: &str = "graph @clf {
  input %x: f32[8,64]
  input %labels: i64[8]
  param %w1: f32[64,16]
  param %b1: f32[16]
  param %w2: f32[16,10]
  param %b2: f32[10]
  %h = gemm(%x, %w1, %b1)
  %a = relu(%h)
  %logits = gemm(%a, %w2, %b2)
  %logp = log_softmax(%logits) {axis=-1}
  %onehot = one_hot(%labels) {depth=10}
  %picked = mul(%onehot, %logp)
  %per_row = reduce_sum(%picked) {axes=[1]}
  %mean = reduce_mean(%per_row) {axes=[]}
  %loss = neg(%mean)
  output %logits, %loss
}
";

#[test]
fn bench_times_a_training_step() {
    let dir = tempfile::tempdir().unwrap();
    let f = tmp(&dir, "clf.sir", CLASSIFIER);
    let out = sinter(&["bench", f.to_str().unwrap(), "--train", "--runs", "3"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(
        s.contains("@clf: median") && s.contains("per training step"),
        "{s}"
    );
    // The backward and update kernels are among those timed.
    assert!(s.contains("w1.next"), "{s}");
    assert!(s.contains("opt.w1.m.next"), "{s}");
    let out = sinter(&[
        "bench",
        f.to_str().unwrap(),
        "--train",
        "--optimizer",
        "sgd",
        "--runs",
        "2",
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(s.contains("\"mode\":\"train-sgd\""), "{s}");
    assert!(s.contains("opt.w2.buf.next"), "{s}");
    assert!(!s.contains("opt.w2.m"), "{s}");
}

#[test]
fn bench_train_reports_unsuitable_graphs_and_options() {
    let dir = tempfile::tempdir().unwrap();
    let f = tmp(&dir, "noloss.sir", G);
    let out = sinter(&["bench", f.to_str().unwrap(), "--train"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("--train needs a scalar f32 output `%loss`"),
        "{err}"
    );
    let f = tmp(&dir, "clf2.sir", CLASSIFIER);
    let out = sinter(&[
        "bench",
        f.to_str().unwrap(),
        "--train",
        "--optimizer",
        "lbfgs",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("unknown optimizer `lbfgs`"),
        "{}",
        text(&out.stderr)
    );
    // --optimizer means nothing without --train.
    let out = sinter(&["bench", f.to_str().unwrap(), "--optimizer", "sgd"]);
    assert_eq!(out.status.code(), Some(2));
}

/// `sinter train` runs on the JIT by default and on the interpreter with `--backend interp`.
/// The two run the same 179 steps and differ only by rounding, so the printed mean loss
/// agrees to one unit in its last (4th) decimal and the held-out predictions to one digit (a
/// near-tie of the top two scores may flip).
#[test]
fn train_backends_agree() {
    let dir = tempfile::tempdir().unwrap();
    let f = tmp(&dir, "clf3.sir", CLASSIFIER);
    let run = |args: &[&str]| {
        let mut a = vec!["train", f.to_str().unwrap(), "--epochs", "1"];
        a.extend_from_slice(args);
        let out = sinter(&a);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    };
    let jit = run(&[]);
    let interp = run(&["--backend", "interp"]);
    assert!(jit.contains(" samples/s, JIT, compiled in"), "{jit}");
    assert!(
        interp.contains(" samples/s, reference interpreter)"),
        "{interp}"
    );
    let field = |s: &str, key: &str, end: char| -> f32 {
        s.split(key)
            .nth(1)
            .and_then(|r| r.split(end).next())
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no `{key}` in {s}"))
    };
    let loss = |s: &str| field(s, "mean training loss", ',');
    assert!(
        (loss(&jit) - loss(&interp)).abs() <= 1.01e-4,
        "{jit}\n{interp}"
    );
    let correct = |s: &str| field(s, "% (", '/');
    assert!(correct(&jit) >= 300.0, "{jit}");
    assert!(
        (correct(&jit) - correct(&interp)).abs() <= 1.0,
        "{jit}\n{interp}"
    );
}
