//! The JIT side of the `sinter` command: `run` (JIT by default, `--interp` for the oracle),
//! `compile --emit loops|clif --timings` and `bench [--threads N] [--json]`.

use std::path::PathBuf;
use std::process::{Command, Output};

fn sinter(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sinter"))
        .args(args)
        .output()
        .expect("run sinter")
}

fn tmp(name: &str, contents: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sinter-cli-jit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, contents).unwrap();
    p
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const G: &str = "graph @g {\n  %u = random_uniform() {shape=[3,5], low=-1, high=1, seed=4}\n  %s = softmax(%u)\n  %r = relu(%u)\n  output %s, %r\n}\n";

#[test]
fn run_uses_the_jit_and_agrees_with_the_interpreter() {
    let f = tmp("g.sir", G);
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
    let f = tmp("bad.sir", src);
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
    let f = tmp("c.sir", G);
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
}

#[test]
fn bench_prints_text_and_json() {
    let f = tmp("b.sir", G);
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
