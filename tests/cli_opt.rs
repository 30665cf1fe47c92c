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

/// `--measure` times the optimised graph: one row per compiled kernel with the cost model's
/// estimate and the measured median (both positive), and a total.
#[test]
fn explain_measure_prints_estimates_and_times() {
    let out = sinter(&[
        "explain",
        &seed("resnet_block.sir"),
        "--measure",
        "--runs",
        "3",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    let table = s
        .split("measured: the optimised graph JIT-compiled")
        .nth(1)
        .unwrap_or_else(|| panic!("no measurement table:\n{s}"));
    let rows: Vec<Vec<&str>> = table
        .lines()
        .skip(2)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(rows.len() >= 2, "{s}");
    let total = rows.last().unwrap();
    assert_eq!(total.last(), Some(&"total"), "{s}");
    for r in &rows {
        // estimate us measured us ratio kernel
        assert_eq!(r.len(), 6, "{r:?}\n{s}");
        let (e, m): (f64, f64) = (r[0].parse().unwrap(), r[2].parse().unwrap());
        assert!(e >= 0.0 && m > 0.0, "{r:?}");
    }
    assert!(total[0].parse::<f64>().unwrap() > 0.0, "{s}");
}

#[test]
fn opt_reports_a_missing_file() {
    let out = sinter(&["opt", "/nonexistent/x.sir"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("/nonexistent/x.sir"));
}

/// Which algorithm the optimiser picks for every convolution of ResNet-50 (batch 1, 224x224,
/// inference form, weights and batch-norm statistics frozen as constants): direct `conv2d`
/// or Winograd with tile 2 or 4, per layer, with the shapes. A snapshot of the cost model's
/// decisions (issue 10), not of measured speed: `BENCHMARKS.md` has those.
#[test]
fn resnet50_convolution_algorithms() {
    use sinter::ir::{InputKind, NodeKind, Op, Tensor};
    use sinter::models::{Mode, ResNetConfig, resnet, running_stats};
    let cfg = ResNetConfig {
        batch: 1,
        mode: Mode::Inference,
        ..ResNetConfig::full(50).unwrap()
    };
    let g = resnet(&cfg).unwrap();
    let mut opts = sinter_rewrite::Options {
        freeze: running_stats(&g),
        // Generous limits, so the snapshot does not depend on the machine's speed.
        time_limit: std::time::Duration::from_secs(60),
        ..Default::default()
    };
    for (v, kind) in g.inputs() {
        if kind == InputKind::Param {
            // The values do not matter to the decisions, only that they are constants.
            let ty = g.ty(v);
            opts.freeze
                .insert(g.value_name(v).to_string(), Tensor::full(&ty.shape, 0.01));
        }
    }
    let (opt, _) = sinter_rewrite::optimize(&g, &opts).unwrap();
    let mut rows = Vec::new();
    for n in opt.nodes() {
        let NodeKind::Op(op) = &n.kind else { continue };
        let out = &n.outputs[0].ty;
        let row = match op {
            Op::Conv2d { stride, .. } => {
                let w = opt.ty(n.inputs[1]);
                format!(
                    "direct {}x{} stride {} -> {}",
                    w.shape[2], w.shape[3], stride[0], out
                )
            }
            Op::WinogradOutput { tile, .. } => {
                let m = opt.ty(n.inputs[0]);
                format!("winograd F({tile}x{tile},3x3) {} -> {}", m, out)
            }
            _ => continue,
        };
        rows.push(row);
    }
    insta::assert_snapshot!(rows.join("\n"));
}
