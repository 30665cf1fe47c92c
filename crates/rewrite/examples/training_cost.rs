//! What the optimiser removes from a training step, by rule group.
//!
//! `cargo run --release -p sinter-rewrite --example training_cost -- FILE.sir [sgd|adam]`
//! builds the training graph of FILE (whose loss is `%loss`; SGD with momentum 0.9 by
//! default) with `sinter_autodiff::training_graph` and optimises it with no rules, without
//! the `backward/*` rules, without fusion, with only `backward/*` and `algebra/*`, and with
//! every rule, printing nodes, operations and the estimated cost before and after.

fn main() {
    let src = std::fs::read_to_string(std::env::args().nth(1).unwrap()).unwrap();
    let g = sinter_ir::parse(&src).unwrap();
    let loss = g.find("loss").unwrap();
    let opt = match std::env::args().nth(2).as_deref() {
        Some("adam") => sinter_autodiff::train::Optimizer::adam(),
        _ => sinter_autodiff::train::Optimizer::sgd(0.9),
    };
    let cfg = sinter_autodiff::train::TrainConfig::new(opt);
    let t = sinter_autodiff::train::training_graph(&g, loss, &cfg).unwrap();
    let all: Vec<String> = sinter_rewrite::rules::all()
        .iter()
        .map(|r| r.name.to_string())
        .collect();
    let ops = |g: &sinter_ir::Graph| {
        g.nodes()
            .iter()
            .filter(|n| matches!(n.kind, sinter_ir::NodeKind::Op(_)))
            .count()
    };
    for (label, rules) in [
        ("no rules", vec![]),
        (
            "without backward/*",
            all.iter()
                .filter(|n| !n.starts_with("backward/"))
                .cloned()
                .collect(),
        ),
        (
            "without fusion",
            all.iter()
                .filter(|n| !n.starts_with("fusion/"))
                .cloned()
                .collect(),
        ),
        (
            "only backward/* + algebra",
            all.iter()
                .filter(|n| n.starts_with("backward/") || n.starts_with("algebra/"))
                .cloned()
                .collect(),
        ),
        ("all", all.clone()),
    ] {
        let o = sinter_rewrite::Options {
            rules: Some(rules),
            ..Default::default()
        };
        let (og, r) = sinter_rewrite::optimize(&t.graph, &o).unwrap();
        println!(
            "{label}: nodes {} -> {}, ops {} -> {}, cost {:.0} -> {:.0} ({:.1}%), {:.1} ms",
            t.graph.nodes().len(),
            og.nodes().len(),
            ops(&t.graph),
            ops(&og),
            r.cost_before,
            r.cost_after,
            100.0 * (r.cost_after - r.cost_before) / r.cost_before,
            r.time.as_secs_f64() * 1e3
        );
    }
}
