//! Rosenblatt's perceptron learning rule, the update one compiled graph; and the XOR problem
//! that it cannot learn, solved by a two-layer network trained by backpropagation.
//!
//! A perceptron computes `o = step(x . w + b)` with `step(z) = 1` for `z > 0`, else 0 (in the
//! graph, `cast(greater(z, 0))`). The learning rule presents one pattern at a time and moves
//! the weights by `w += eta (t - o) x`, `b += eta (t - o)`: nothing when the unit is right,
//! towards the pattern when it should have fired and did not, away when it fired wrongly. The
//! step function has no useful derivative, so this is not gradient descent on any loss
//! autodiff could state; [`perceptron_graph`] writes the rule out (a `gemm` for the
//! pre-activation, the comparison, a rank-1 `gemm` for `x^T (t - o)`), and autodiff's
//! [`Trainer`] runs it on the JIT, `eta` being the learning-rate input `lr`, like any
//! training step.
//!
//! The perceptron convergence theorem (Rosenblatt 1962; Novikoff 1962) says that if some
//! `(w*, b*)` separates the two classes with a margin, the rule makes at most `(R / margin)^2`
//! mistakes, `R` bounding `|x|`, and then stops changing. AND, OR and NOT are linearly
//! separable, so the rule learns them exactly in a few epochs. XOR is not: the four
//! inequalities `b <= 0`, `w1 + b > 0`, `w2 + b > 0`, `w1 + w2 + b <= 0` add up (the middle two
//! against the outer two) to `0 < 0`. No weights are right on all four rows, so the rule never
//! finishes an epoch without a mistake and its weights cycle for ever (Minsky and Papert
//! 1969). One hidden layer is enough: [`train_xor_mlp`] trains a `2-H-1` tanh network by
//! backpropagation (autodiff's training graph, Adam, on the JIT) and gets all four rows right.

use crate::util::{Params, TrainError, gemm};
use sinter_autodiff::train::{LR, next_name};
use sinter_autodiff::{
    Init, Optimizer, Schedule, TrainConfig, Trainer, TrainingGraph, init_params, training_graph,
};
use sinter_ir::{Builder, DType, Op, Tensor, TensorType};
use sinter_models::{PerceptronConfig, perceptron};
use sinter_runtime::Jit;
use std::collections::HashMap;

/// The data input of the learning step: one pattern `f32[1, inputs]`.
pub const INPUT: &str = "x";
/// The target input of the learning step: `f32[1, 1]` in {0, 1}.
pub const TARGET: &str = "t";
/// The first output of the learning step: `(t - o)^2`, 1 for a mistake, else 0.
pub const ERRORS: &str = "errors";

/// A Boolean function as a truth table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gate {
    /// `a AND b`.
    And,
    /// `a OR b`.
    Or,
    /// `NOT a` (one input).
    Not,
    /// `a XOR b`: not linearly separable.
    Xor,
}

impl Gate {
    /// `(inputs per row, rows flattened, targets)`, rows in binary counting order.
    pub fn table(self) -> (usize, Vec<f32>, Vec<f32>) {
        if self == Gate::Not {
            return (1, vec![0.0, 1.0], vec![1.0, 0.0]);
        }
        let x = vec![0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0];
        let t = match self {
            Gate::And => vec![0.0, 0.0, 0.0, 1.0],
            Gate::Or => vec![0.0, 1.0, 1.0, 1.0],
            _ => vec![0.0, 1.0, 1.0, 0.0],
        };
        (2, x, t)
    }
}

/// How the perceptron rule is run.
#[derive(Clone, Debug, PartialEq)]
pub struct PerceptronTrainConfig {
    /// The learning rate `eta`.
    pub eta: f32,
    /// The most epochs (passes over the patterns, in order); training stops after the first
    /// epoch without a mistake.
    pub epochs: usize,
}

impl Default for PerceptronTrainConfig {
    /// `eta = 1` (with zero initial weights the rule is then scale-free) and 50 epochs.
    fn default() -> PerceptronTrainConfig {
        PerceptronTrainConfig {
            eta: 1.0,
            epochs: 50,
        }
    }
}

/// A trained perceptron and its history.
#[derive(Clone, Debug)]
pub struct Perceptron {
    /// `perceptron.w: [inputs, 1]` and `perceptron.b: [1]`.
    pub params: Params,
    /// Mistakes made in each epoch.
    pub errors: Vec<usize>,
    /// Whether the last epoch made no mistake (the rule has converged).
    pub converged: bool,
}

/// The perceptron learning rule for one pattern as a training graph: inputs [`INPUT`],
/// [`TARGET`], `lr` (`eta`) and the parameters `perceptron.w: [inputs, 1]`,
/// `perceptron.b: [1]`; outputs [`ERRORS`], then `perceptron.w.next`, `perceptron.b.next`.
/// See the [module docs](self).
pub fn perceptron_graph(inputs: usize) -> Result<TrainingGraph, TrainError> {
    let mut g = Builder::new("perceptron.rule");
    let x = g.input(INPUT, TensorType::f32(&[1, inputs]))?;
    let t = g.input(TARGET, TensorType::f32(&[1, 1]))?;
    let lr = g.input(LR, TensorType::f32(&[]))?;
    let names = ["perceptron.w".to_string(), "perceptron.b".to_string()];
    let w = g.param(&names[0], TensorType::f32(&[inputs, 1]))?;
    let b = g.param(&names[1], TensorType::f32(&[1]))?;
    let z = g.op(gemm(false, false), &[x, w, b])?;
    let zero = g.scalar(0.0)?;
    let fired = g.op(Op::Greater {}, &[z, zero])?;
    let o = g.op(Op::Cast { to: DType::F32 }, &[fired])?;
    let d = g.sub(t, o)?;
    let sq = g.mul(d, d)?;
    let all = Op::ReduceSum {
        axes: vec![],
        keepdims: false,
    };
    let errors = g.named(ERRORS, all, &[sq])?;
    // `x^T (t - o)`: the rank-1 update of the weights.
    let dw = g.op(gemm(true, false), &[x, d])?;
    let dw = g.mul(dw, lr)?;
    let db = g.reshape(d, &[1])?;
    let db = g.mul(db, lr)?;
    let w_next = g.named(&next_name(&names[0]), Op::Add {}, &[w, dw])?;
    let b_next = g.named(&next_name(&names[1]), Op::Add {}, &[b, db])?;
    let graph = g.finish(&[errors, w_next, b_next])?;
    Ok(TrainingGraph {
        graph,
        loss: ERRORS.to_string(),
        lr: LR.to_string(),
        params: names.to_vec(),
        state: Vec::new(),
        feedback: names.iter().map(|n| (next_name(n), n.clone())).collect(),
        batch_norm: Vec::new(),
        data: vec![INPUT.to_string(), TARGET.to_string()],
    })
}

/// Runs the perceptron rule on the rows `x` (`inputs` values each) with targets `t` in
/// {0, 1}, from zero weights, presenting the rows in order, until an epoch makes no mistake
/// or `cfg.epochs` have passed. `progress` gets each epoch's mistakes.
pub fn train_perceptron(
    inputs: usize,
    x: &[f32],
    t: &[f32],
    cfg: &PerceptronTrainConfig,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Perceptron, TrainError> {
    if inputs == 0 || x.len() != t.len() * inputs || t.is_empty() {
        return Err(TrainError::Config(format!(
            "{} values are not {} rows of {inputs} inputs",
            x.len(),
            t.len()
        )));
    }
    let tg = perceptron_graph(inputs)?;
    let params = HashMap::from([
        (
            "perceptron.w".to_string(),
            Tensor::zeros(&TensorType::f32(&[inputs, 1])),
        ),
        (
            "perceptron.b".to_string(),
            Tensor::zeros(&TensorType::f32(&[1])),
        ),
    ]);
    let mut tr = Trainer::new(Jit::default(), tg, params, Schedule::Constant(cfg.eta))?;
    let mut errors = Vec::new();
    let mut converged = false;
    for epoch in 0..cfg.epochs {
        let mut mistakes = 0;
        for (row, &target) in x.chunks_exact(inputs).zip(t) {
            let feeds = HashMap::from([
                (
                    INPUT.to_string(),
                    Tensor::from_f32(&[1, inputs], row.to_vec()),
                ),
                (TARGET.to_string(), Tensor::from_f32(&[1, 1], vec![target])),
            ]);
            mistakes += (tr.step(&feeds)? > 0.5) as usize;
        }
        progress(epoch, mistakes);
        errors.push(mistakes);
        if mistakes == 0 {
            converged = true;
            break;
        }
    }
    Ok(Perceptron {
        params: tr.model().into_iter().collect(),
        errors,
        converged,
    })
}

impl Perceptron {
    /// The unit's outputs (0 or 1) on the rows `x`, computed by the compiled zoo graph
    /// `sinter_models::perceptron`.
    pub fn predict(&self, x: &[f32]) -> Result<Vec<f32>, TrainError> {
        let inputs = self.params["perceptron.w"].shape()[0];
        let batch = x.len() / inputs;
        let g = perceptron(&PerceptronConfig { batch, inputs })?;
        let mut feeds = self.params.clone();
        feeds.insert("x".into(), Tensor::from_f32(&[batch, inputs], x.to_vec()));
        let outs = crate::step::run_once(&g, &feeds)?;
        Ok(crate::step::f32s(&outs, "o")?.to_vec())
    }
}

/// How the two-layer network learns XOR.
#[derive(Clone, Debug, PartialEq)]
pub struct XorConfig {
    /// Hidden tanh units.
    pub hidden: usize,
    /// Full-batch Adam steps.
    pub steps: usize,
    /// Adam's learning rate.
    pub lr: f32,
    /// Seed of the (Xavier-uniform) initial weights.
    pub seed: i64,
}

impl Default for XorConfig {
    /// 4 hidden units, 500 steps of Adam at 0.05.
    fn default() -> XorConfig {
        XorConfig {
            hidden: 4,
            steps: 500,
            lr: 0.05,
            seed: 0,
        }
    }
}

/// What [`train_xor_mlp`] measured.
#[derive(Clone, Debug)]
pub struct XorReport {
    /// The loss (binary cross-entropy) after every step.
    pub losses: Vec<f32>,
    /// The trained network's outputs on the four rows, thresholded at 0.5 (0 or 1).
    pub predictions: Vec<f32>,
    /// The targets.
    pub targets: Vec<f32>,
}

/// Trains `x -> tanh(x W1 + b1) W2 + b2` (a logit) on the XOR table by backpropagation:
/// autodiff's training graph of the binary cross-entropy, full batch, Adam, on the JIT. The
/// predictions come from the same forward graph with a `greater(logit, 0)` added, compiled.
pub fn train_xor_mlp(cfg: &XorConfig) -> Result<XorReport, TrainError> {
    let (n, xs, ts) = Gate::Xor.table();
    let mut g = Builder::new("xor_mlp");
    let x = g.input("x", TensorType::f32(&[4, n]))?;
    let y = g.input("target", TensorType::f32(&[4, 1]))?;
    let w1 = g.param("hidden.w", TensorType::f32(&[n, cfg.hidden]))?;
    let b1 = g.param("hidden.b", TensorType::f32(&[cfg.hidden]))?;
    let w2 = g.param("out.w", TensorType::f32(&[cfg.hidden, 1]))?;
    let b2 = g.param("out.b", TensorType::f32(&[1]))?;
    let z1 = g.op(gemm(false, false), &[x, w1, b1])?;
    let h = g.tanh(z1)?;
    let logit = g.op(gemm(false, false), &[h, w2, b2])?;
    let loss = g.bce_with_logits(logit, y)?;
    let zero = g.scalar(0.0)?;
    let fired = g.op(Op::Greater {}, &[logit, zero])?;
    let pred = g.named("pred", Op::Cast { to: DType::F32 }, &[fired])?;
    let forward = g.finish(&[loss, pred])?;
    let tg = training_graph(&forward, loss, &TrainConfig::new(Optimizer::adam()))?;
    let params = init_params(&forward, Init::XavierUniform, cfg.seed);
    let mut tr = Trainer::new(Jit::default(), tg, params, Schedule::Constant(cfg.lr))?;
    let feeds = HashMap::from([
        ("x".to_string(), Tensor::from_f32(&[4, n], xs)),
        ("target".to_string(), Tensor::from_f32(&[4, 1], ts.clone())),
    ]);
    let mut losses = Vec::with_capacity(cfg.steps);
    for _ in 0..cfg.steps {
        losses.push(tr.step(&feeds)?);
    }
    let mut inputs: Params = tr.model().into_iter().collect();
    inputs.extend(feeds);
    let outs = crate::step::run_once(&forward, &inputs)?;
    Ok(XorReport {
        losses,
        predictions: crate::step::f32s(&outs, "pred")?.to_vec(),
        targets: ts,
    })
}
