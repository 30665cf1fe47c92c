//! ART-1: adaptive resonance theory for binary inputs (Carpenter and Grossberg, 1987), with
//! the search and the fast-learning update as one compiled graph.
//!
//! ART-1 sorts binary inputs `I` into categories, each with a binary prototype `w_j`, and
//! creates a new category when no existing one is close enough: it learns online without
//! erasing what it knows (the stability-plasticity dilemma). For an input:
//! - **Choice:** every node gets `T_j = |I ^ w_j| / (beta + |w_j|)` (`^` is AND, `|.|` counts
//!   ones); the node of largest `T_j` is tried first. The `beta + |w_j|` prefers, among
//!   prototypes that contain the input equally, the most specific.
//! - **Vigilance test:** the tried node resonates if `|I ^ w_j| / |I| >= rho`: its prototype
//!   keeps at least the fraction `rho` of the input's ones. Otherwise it is **reset**
//!   (excluded) and the next best node is tried.
//! - **Resonance:** the resonating node learns `w_J <- I ^ w_J` (fast learning; with a rate
//!   `lr < 1`, `w_J <- w_J - lr (w_J - I ^ w_J)`). An uncommitted node has `w = 1` (all ones),
//!   so it always passes the test and, once chosen, becomes a copy of the input.
//!
//! The weights do not change during a search, so the node the search settles on is simply
//! the one of largest `T_j` among those that pass the vigilance test: choice, test and reset
//! are `argmax(select(pass, T, -1))` ([`sinter_models::art1_choice`], also the zoo graph
//! `art1`). [`art_step_graph`] adds the update through a `one_hot` of the winner, and keeps
//! the set of committed nodes as state. Prototypes only lose ones, so with fast learning
//! the coding stabilises after a few passes.
//!
//! The vigilance sets the granularity: a higher `rho` demands closer matches, so fewer inputs
//! share a category and more categories are made.

use crate::step::{Stepper, scalar};
use crate::util::{Params, TrainError};
use sinter_data::Dataset;
use sinter_ir::{Builder, Graph, Op, Tensor, TensorType};
use sinter_models::art1_choice;

/// The prototypes' name, as in the zoo graph.
pub const WEIGHTS: &str = "art.w";
/// The state marking committed nodes, `f32[C]` in {0, 1}.
pub const COMMITTED: &str = "art.committed";

/// How ART-1 is run.
#[derive(Clone, Debug, PartialEq)]
pub struct ArtConfig {
    /// The vigilance `rho` in `(0, 1]`.
    pub vigilance: f32,
    /// The choice parameter `beta > 0`.
    pub beta: f32,
    /// The learning rate (1: fast learning).
    pub lr: f32,
    /// Category nodes available.
    pub categories: usize,
    /// The most passes over the inputs; training stops after a pass that changes nothing.
    pub epochs: usize,
}

impl Default for ArtConfig {
    /// `rho = 0.5`, `beta = 0.5`, fast learning, 512 nodes, at most 10 passes.
    fn default() -> ArtConfig {
        ArtConfig {
            vigilance: 0.5,
            beta: 0.5,
            lr: 1.0,
            categories: 512,
            epochs: 10,
        }
    }
}

/// One pass of ART-1 over the inputs.
#[derive(Clone, Debug, PartialEq)]
pub struct ArtEpoch {
    /// The pass, from 0.
    pub epoch: usize,
    /// Committed categories after the pass.
    pub categories: usize,
    /// Inputs whose category differed from the previous pass (all of them in pass 0).
    pub changed: usize,
}

/// A trained ART-1 network.
#[derive(Clone, Debug)]
pub struct Art1 {
    /// `art.w: [C, D]`, the prototypes (uncommitted nodes all ones).
    pub w: Tensor,
    /// Committed categories.
    pub categories: usize,
    /// Each input's category in the last pass.
    pub assignment: Vec<i64>,
}

/// One presentation as a graph: inputs `x: f32[1, D]` in {0, 1}, `rho`, `lr` (`f32[]`) and
/// the state `art.w: [C, D]`, `art.committed: [C]`; outputs `category: i64[1]`,
/// `resonance: f32[1]` (0 when every node was reset: no node left), `categories: f32[]`
/// (committed nodes after the step), `art.w.next` and `art.committed.next`.
pub fn art_step_graph(inputs: usize, categories: usize, beta: f32) -> Result<Graph, TrainError> {
    let mut g = Builder::new("art1.step");
    let x = g.input("x", TensorType::f32(&[1, inputs]))?;
    let rho = g.input("rho", TensorType::f32(&[]))?;
    let lr = g.input("lr", TensorType::f32(&[]))?;
    let w = g.input(WEIGHTS, TensorType::f32(&[categories, inputs]))?;
    let committed = g.input(COMMITTED, TensorType::f32(&[categories]))?;
    let (cat, res) = art1_choice(&mut g, x, w, rho, beta)?;
    let hot = g.op(
        Op::OneHot {
            depth: categories as i64,
        },
        &[cat],
    )?;
    // Nothing learns without resonance.
    let hot = g.mul(hot, res)?;
    let hot_col = g.reshape(hot, &[categories as i64, 1])?;
    let wx = g.mul(w, x)?;
    let loss = g.sub(w, wx)?;
    let step = g.mul(hot_col, lr)?;
    let delta = g.mul(step, loss)?;
    let w_next = g.named(&format!("{WEIGHTS}.next"), Op::Sub {}, &[w, delta])?;
    let hot_row = g.reshape(hot, &[categories as i64])?;
    let c_next = g.named(
        &format!("{COMMITTED}.next"),
        Op::Max {},
        &[committed, hot_row],
    )?;
    let all = Op::ReduceSum {
        axes: vec![],
        keepdims: false,
    };
    let count = g.named("categories", all, &[c_next])?;
    Ok(g.finish(&[cat, res, count, w_next, c_next])?)
}

/// Every sample of `data` as 0/1 bits: 1 where the value exceeds `threshold`.
pub fn binary_inputs(data: &Dataset, threshold: f32) -> Vec<f32> {
    data.x
        .iter()
        .map(|&v| f32::from(u8::from(v > threshold)))
        .collect()
}

/// Runs ART-1 over `inputs` (`[n, D]` flattened, 0/1), presented in order, pass after pass
/// until a pass changes no input's category or `cfg.epochs` have run; see the
/// [module docs](self). `progress` gets every pass. An input with no ones, or running out
/// of category nodes, is an error.
pub fn train_art1(
    inputs: &[f32],
    dim: usize,
    cfg: &ArtConfig,
    progress: &mut dyn FnMut(&ArtEpoch),
) -> Result<(Art1, Vec<ArtEpoch>), TrainError> {
    if dim == 0 || inputs.is_empty() || !inputs.len().is_multiple_of(dim) {
        return Err(TrainError::Config(format!(
            "{} values are not inputs of {dim} bits",
            inputs.len()
        )));
    }
    if !(cfg.vigilance > 0.0 && cfg.vigilance <= 1.0) || cfg.beta <= 0.0 {
        return Err(TrainError::Config(format!(
            "ART-1 needs 0 < rho <= 1 and beta > 0, got rho {} and beta {}",
            cfg.vigilance, cfg.beta
        )));
    }
    if let Some(i) = inputs
        .chunks_exact(dim)
        .position(|r| r.iter().all(|&v| v == 0.0))
    {
        return Err(TrainError::Config(format!("input {i} has no ones")));
    }
    let c = cfg.categories;
    let g = art_step_graph(dim, c, cfg.beta)?;
    let state = Params::from([
        (WEIGHTS.to_string(), Tensor::full(&[c, dim], 1.0)),
        (COMMITTED.to_string(), Tensor::full(&[c], 0.0)),
    ]);
    let mut st = Stepper::new(&g, state)?;
    let n = inputs.len() / dim;
    let mut assignment = vec![-1i64; n];
    let mut stats = Vec::new();
    let mut categories = 0;
    for epoch in 0..cfg.epochs {
        let mut changed = 0;
        for (i, row) in inputs.chunks_exact(dim).enumerate() {
            let feeds = Params::from([
                ("x".to_string(), Tensor::from_f32(&[1, dim], row.to_vec())),
                ("rho".to_string(), Tensor::scalar(cfg.vigilance)),
                ("lr".to_string(), Tensor::scalar(cfg.lr)),
            ]);
            let outs = st.step(&feeds)?;
            if scalar(&outs, "resonance")? < 0.5 {
                return Err(TrainError::Config(format!(
                    "ART-1 ran out of its {c} category nodes at input {i}"
                )));
            }
            let cat = outs
                .get("category")
                .and_then(Tensor::as_i64)
                .and_then(|v| v.first().copied())
                .ok_or_else(|| TrainError::Config("the step gave no category".into()))?;
            changed += usize::from(assignment[i] != cat);
            assignment[i] = cat;
            categories = scalar(&outs, "categories")? as usize;
        }
        let s = ArtEpoch {
            epoch,
            categories,
            changed,
        };
        progress(&s);
        stats.push(s);
        if changed == 0 {
            break;
        }
    }
    let w = st.into_state().remove(WEIGHTS).expect("the prototypes");
    Ok((
        Art1 {
            w,
            categories,
            assignment,
        },
        stats,
    ))
}
