//! `sinter opt` and `sinter explain` end to end, on the rewrite seed networks.

use std::path::PathBuf;
use std::process::{Command, Output};

fn sinter(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sinter"))
        .args(args)
        .output()
        .expect("run sinter")
}

fn seed(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/filetests/rewrite")
        .join(name);
    p.to_str().unwrap().to_string()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn opt_folds_batch_norm_and_prints_a_parseable_graph() {
    let out = sinter(&["opt", &seed("resnet_block.sir"), "--report"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(!stdout.contains("batch_norm("), "{stdout}");
    assert!(stdout.contains("# stop: fold: saturated"), "{stdout}");
    assert!(stdout.contains("# cost: "), "{stdout}");
    // The report is made of comment lines, so the whole output is still a graph.
    let g = sinter::ir::parse(&stdout).unwrap_or_else(|e| panic!("{e}\n{stdout}"));
    let orig =
        sinter::ir::parse(&std::fs::read_to_string(seed("resnet_block.sir")).unwrap()).unwrap();
    sinter_rewrite::verify::compare(&orig, &g, 1, 1e-4).unwrap();
}

#[test]
fn opt_limits_are_respected() {
    let out = sinter(&[
        "opt",
        &seed("inception.sir"),
        "--report",
        "--node-limit",
        "40",
        "--time-limit",
        "200",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("node limit (40;"), "{stdout}");
}

#[test]
fn explain_names_rules_and_costs() {
    let out = sinter(&["explain", &seed("mlp_bn.sir")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(s.contains("bn_fold/matmul"), "{s}");
    assert!(
        s.contains("batch_norm removed") || s.contains("batch_norm ->"),
        "{s}"
    );
    assert!(s.contains(" ns -> "), "{s}");
}

#[test]
fn opt_reports_a_missing_file() {
    let out = sinter(&["opt", "/nonexistent/x.sir"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("/nonexistent/x.sir"));
}
