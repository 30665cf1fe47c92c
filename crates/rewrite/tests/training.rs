//! Training graphs through the optimiser: the LeNet example (SGD with momentum) and a small
//! matmul MLP (Adam), built by `sinter_autodiff::training_graph`. Each snapshot holds the
//! training graph before and after optimisation (long constants abbreviated) and the report;
//! the optimised step must give the same losses, parameters and optimiser state as the
//! original, step after step, through the interpreter (1e-4 relative). The LSTM cell (plain
//! SGD) is checked the same way, without a snapshot.

use sinter_autodiff::{
    Backend, Init, Interpret, Schedule, Trainer, TrainingGraph, init_params,
    train::{Optimizer, TrainConfig, training_graph},
};
use sinter_ir::{Graph, NodeKind, Tensor, parse, print};
use sinter_rewrite::rules::Rng;
use sinter_rewrite::verify::close;
use sinter_rewrite::{Options, Report, optimize};
use std::collections::HashMap;

mod common;
use common::abbreviate;

/// A small MLP written with `matmul` and `add`, so its gradients carry transposes.
const MLP: &str = "
graph @mlp_train {
  input %x: f32[8,6]
  input %labels: i64[8]
  param %w1: f32[6,5]
  param %b1: f32[5]
  param %w2: f32[5,3]
  param %b2: f32[3]
  %h = matmul(%x, %w1)
  %hb = add(%h, %b1)
  %a = relu(%hb)
  %z = matmul(%a, %w2)
  %logits = add(%z, %b2)
  %logp = log_softmax(%logits) {axis=-1}
  %onehot = one_hot(%labels) {depth=3}
  %picked = mul(%onehot, %logp)
  %per_row = reduce_sum(%picked) {axes=[1], keepdims=false}
  %mean = reduce_mean(%per_row) {axes=[], keepdims=false}
  %loss = neg(%mean)
  output %loss
}
";

fn lenet() -> Graph {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../ir-spec/examples/lenet.sir"
    );
    parse(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn train(forward: &Graph, optimizer: Optimizer) -> TrainingGraph {
    let loss = forward.find("loss").unwrap();
    training_graph(forward, loss, &TrainConfig::new(optimizer)).unwrap()
}

/// Operations (not inputs or constants) that the outputs need.
fn ops(g: &Graph) -> usize {
    g.nodes()
        .iter()
        .filter(|n| matches!(n.kind, NodeKind::Op(_)))
        .count()
}

/// A backend that optimises the step once, at compile time, then interprets it.
struct Optimised;

impl Backend for Optimised {
    type Program = Graph;

    fn compile(&mut self, graph: &Graph) -> Result<Graph, String> {
        optimize(graph, &Options::default())
            .map(|(g, _)| g)
            .map_err(|e| e.to_string())
    }

    fn run(
        &mut self,
        program: &Graph,
        inputs: &HashMap<String, Tensor>,
    ) -> Result<Vec<(String, Tensor)>, String> {
        sinter_interp::run(program, inputs).map_err(|e| e.to_string())
    }
}

/// A random batch for the forward graph's data inputs (labels in `0..classes`).
fn batch(forward: &Graph, rng: &mut Rng, classes: usize) -> HashMap<String, Tensor> {
    forward
        .inputs()
        .filter(|(_, k)| *k == sinter_ir::InputKind::Data)
        .map(|(v, _)| {
            let ty = forward.ty(v);
            let t = match ty.dtype {
                sinter_ir::DType::I64 => Tensor::from_i64(
                    &ty.shape,
                    (0..ty.numel())
                        .map(|_| rng.int(0, classes - 1) as i64)
                        .collect(),
                ),
                _ => rng.tensor(&ty.shape, -1.0, 1.0),
            };
            (forward.value_name(v).to_string(), t)
        })
        .collect()
}

/// Runs `steps` steps of the original and the optimised step side by side and compares the
/// loss and every parameter and state tensor after each.
fn same_steps(forward: &Graph, tg: &TrainingGraph, classes: usize, steps: usize) {
    let params = init_params(forward, Init::HeUniform, 3);
    let lr = Schedule::Constant(0.05);
    let mut a = Trainer::new(
        Interpret(sinter_interp::run),
        tg.clone(),
        params.clone(),
        lr.clone(),
    )
    .unwrap();
    let mut b = Trainer::new(Optimised, tg.clone(), params, lr).unwrap();
    let mut rng = Rng(17);
    for step in 0..steps {
        let feed = batch(forward, &mut rng, classes);
        let (la, lb) = (a.step(&feed).unwrap(), b.step(&feed).unwrap());
        close(&Tensor::scalar(lb), &Tensor::scalar(la), 1e-4)
            .unwrap_or_else(|e| panic!("step {step}: loss: {e}"));
        let (sa, sb) = (a.state(), b.state());
        assert_eq!(sa.keys().collect::<Vec<_>>(), sb.keys().collect::<Vec<_>>());
        for (name, t) in &sa {
            close(&sb[name], t, 1e-4).unwrap_or_else(|e| panic!("step {step}: %{name}: {e}"));
        }
    }
}

fn snapshot(tg: &TrainingGraph, opt: &Graph, report: &Report) -> String {
    format!(
        "{}\n\n{}\n{}",
        abbreviate(&print(&tg.graph)),
        abbreviate(&print(opt)),
        report.render(false)
    )
}

/// The LSTM cell of the rewrite filetests with a squared-output loss: eight matmuls with
/// trainable weights, so merging, transposed gradients and fusion meet in one step.
fn lstm() -> Graph {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/filetests/rewrite/lstm_cell.sir"
    );
    let src = std::fs::read_to_string(path).unwrap();
    let src = src.replace(
        "  output %h2, %c2\n",
        "  %sq = mul(%h2, %h2)\n  %s = reduce_sum(%sq) {axes=[], keepdims=false}\n  \
         %cs = reduce_sum(%c2) {axes=[], keepdims=false}\n  %loss = add(%s, %cs)\n  \
         output %loss, %h2\n",
    );
    parse(&src).unwrap()
}

#[test]
fn lstm_training_step() {
    let forward = lstm();
    assert!(forward.find("loss").is_some());
    let tg = train(&forward, Optimizer::sgd(0.0));
    let (opt, report) = optimize(&tg.graph, &Options::default()).unwrap();
    opt.verify().unwrap();
    println!(
        "lstm cell training step: {} -> {} ops, cost {:.0} -> {:.0} ns; {}",
        ops(&tg.graph),
        ops(&opt),
        report.cost_before,
        report.cost_after,
        report.render(false)
    );
    assert!(report.cost_after <= report.cost_before);
    same_steps(&forward, &tg, 1, 4);
}

#[test]
fn lenet_training_step() {
    let forward = lenet();
    let tg = train(&forward, Optimizer::sgd(0.9));
    let (opt, report) = optimize(&tg.graph, &Options::default()).unwrap();
    opt.verify().unwrap();
    println!(
        "lenet training step: {} -> {} nodes, {} -> {} ops, cost {:.0} -> {:.0} ns",
        tg.graph.nodes().len(),
        opt.nodes().len(),
        ops(&tg.graph),
        ops(&opt),
        report.cost_before,
        report.cost_after
    );
    assert!(report.cost_after < report.cost_before);
    for rule in [
        "backward/relu-mask-pool",
        "backward/exp-log-softmax",
        "algebra/mul-one",
    ] {
        assert!(report.changed.contains_key(rule), "{rule} did not fire");
    }
    insta::assert_snapshot!("lenet_train", snapshot(&tg, &opt, &report));
    same_steps(&forward, &tg, 10, 4);
}

#[test]
fn mlp_training_step() {
    let forward = parse(MLP).unwrap();
    let tg = train(&forward, Optimizer::adam());
    let (opt, report) = optimize(&tg.graph, &Options::default()).unwrap();
    opt.verify().unwrap();
    println!(
        "matmul MLP training step: {} -> {} nodes, {} -> {} ops, cost {:.0} -> {:.0} ns",
        tg.graph.nodes().len(),
        opt.nodes().len(),
        ops(&tg.graph),
        ops(&opt),
        report.cost_before,
        report.cost_after
    );
    assert!(report.cost_after < report.cost_before);
    assert!(
        report.changed.contains_key("backward/matmul-transpose"),
        "{}",
        report.render(false)
    );
    insta::assert_snapshot!("mlp_train", snapshot(&tg, &opt, &report));
    same_steps(&forward, &tg, 3, 6);
}
