//! Rewrite filetests: each `tests/filetests/rewrite/*.sir` is optimised with the default
//! options; the snapshot holds the optimised graph's canonical text (long constant literals
//! abbreviated) and the runner report without timings. Every optimised graph is also run
//! against the original on random inputs through the interpreter (1e-4 relative), and every
//! file round-trips unchanged when no rule is enabled.

use sinter_ir::{NodeKind, parse, print};
use sinter_rewrite::verify::compare;
use sinter_rewrite::{Options, optimize};
use std::path::PathBuf;

mod common;
use common::abbreviate;

fn files() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/filetests/rewrite");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sir"))
        .collect();
    v.sort();
    assert!(v.len() >= 4, "seed networks missing in {}", dir.display());
    v
}

fn load(p: &PathBuf) -> sinter_ir::Graph {
    let src = std::fs::read_to_string(p).unwrap();
    parse(&src).unwrap_or_else(|e| panic!("{}:{e}", p.display()))
}

#[test]
fn optimised_seed_networks() {
    for path in files() {
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        let g = load(&path);
        let (opt, report) =
            optimize(&g, &Options::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
        opt.verify().unwrap();
        for seed in 0..3 {
            compare(&g, &opt, seed, 1e-4).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        assert!(
            report.time.as_secs_f64() < 1.0,
            "{name}: took {:?}",
            report.time
        );
        let has = |kind: &str| {
            opt.nodes()
                .iter()
                .any(|n| matches!(&n.kind, NodeKind::Op(op) if op.name() == kind))
        };
        if name == "resnet_block" || name == "mlp_bn" {
            assert!(!has("batch_norm"), "{name}: a batch_norm remains");
        }
        let snap = format!("{}\n{}", abbreviate(&print(&opt)), report.render(false));
        insta::assert_snapshot!(name, snap);
    }
}

#[test]
fn graphs_round_trip_when_no_rule_applies() {
    let opts = Options {
        rules: Some(vec![]),
        ..Options::default()
    };
    for path in files() {
        let g = load(&path);
        let (back, report) = optimize(&g, &opts).unwrap();
        assert_eq!(print(&back), print(&g), "{}", path.display());
        assert!(report.changed.is_empty());
    }
}
