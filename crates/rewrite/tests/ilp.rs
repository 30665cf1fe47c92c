//! Exact (ILP) extraction against the greedy extractor (feature `ilp`): on every rewrite
//! filetest and on the LeNet training step, the exact extraction costs no more than the
//! greedy one, is acyclic (the writer checks), and computes the same outputs.

#![cfg(feature = "ilp")]

use sinter_ir::{Graph, parse};
use sinter_rewrite::verify::compare;
use sinter_rewrite::{Options, RewriteError, optimize};
use std::path::PathBuf;
use std::time::Duration;

fn graphs() -> Vec<(String, Graph)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/filetests/rewrite");
    let mut v: Vec<(String, Graph)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sir"))
        .map(|p| {
            let g = parse(&std::fs::read_to_string(&p).unwrap()).unwrap();
            (p.file_stem().unwrap().to_string_lossy().to_string(), g)
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    let lenet = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../ir-spec/examples/lenet.sir"
    );
    let forward = parse(&std::fs::read_to_string(lenet).unwrap()).unwrap();
    let loss = forward.find("loss").unwrap();
    let cfg = sinter_autodiff::TrainConfig::new(sinter_autodiff::Optimizer::sgd(0.9));
    let tg = sinter_autodiff::training_graph(&forward, loss, &cfg).unwrap();
    v.push(("lenet training step".to_string(), tg.graph));
    v
}

#[test]
fn exact_is_never_worse_than_greedy() -> Result<(), RewriteError> {
    let exact = Options {
        exact: Some(Duration::from_secs(20)),
        ..Options::default()
    };
    for (name, g) in graphs() {
        let (greedy_g, greedy) = optimize(&g, &Options::default())?;
        let (exact_g, ilp) = optimize(&g, &exact)?;
        println!(
            "{name}: greedy {:.0} ns, exact {:.0} ns ({}), {:.0} ms",
            greedy.cost_after,
            ilp.cost_after,
            if ilp.exact == Some(true) {
                "optimal"
            } else {
                "time limit"
            },
            ilp.time.as_secs_f64() * 1e3
        );
        assert!(
            ilp.cost_after <= greedy.cost_after * (1.0 + 1e-9) + 1e-6,
            "{name}: exact {} > greedy {}",
            ilp.cost_after,
            greedy.cost_after
        );
        exact_g.verify().unwrap();
        for seed in 0..2 {
            compare(&g, &exact_g, seed, 1e-4).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        // Same estimated cost means the same choice up to ties; the greedy graph still runs.
        compare(&g, &greedy_g, 0, 1e-4).unwrap();
    }
    Ok(())
}
