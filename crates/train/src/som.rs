//! Kohonen's self-organising map: competitive learning with a shrinking neighbourhood, the
//! whole update one compiled graph.
//!
//! A map is a grid of units, each with a weight vector in the data space. For every sample
//! `x` the best-matching unit `c = argmin_u |x - w_u|` wins, and every unit moves towards the
//! sample in proportion to how near it lies to the winner *on the grid*:
//! `w_u += lr h(u, c) (x - w_u)` with the Gaussian neighbourhood
//! `h(u, c) = exp(-|r_u - r_c|^2 / (2 sigma^2))`, `r_u` being the unit's grid position. Because
//! neighbours on the grid are pulled towards the same samples, they end up with similar
//! weights: the map becomes a topology-preserving, two-dimensional picture of the data. A
//! wide neighbourhood and a large rate at first order the map globally; shrinking both
//! (here exponentially, from `sigma0` to `sigma1` and `lr0` to `lr1` over the run) then lets
//! units specialise, a form of vector quantisation (Kohonen 1982, 2001).
//!
//! [`som_step_graph`] writes one step over a batch of `B` samples (the `B` updates averaged;
//! `B = 1` is Kohonen's online rule): the distances as one `gemm`, the winner by `argmax` of
//! their negation (the zoo graph `sinter_models::som`'s `best_match`), the winner's grid
//! position by `gather`, the neighbourhood by `exp`, and the update as another `gemm`
//! (`h^T x`) minus `sum_b h` times the weights. The rate and the width are `f32[]` inputs, so
//! the schedule stays on the host. The quantisation error, the mean distance from a sample
//! to its winner, measures progress; [`train_som`] scores the whole training set with the
//! compiled zoo graph after every epoch.

use crate::grid::{GridError, GridLayout, write_grid};
use crate::step::{Stepper, scalar};
use crate::util::{Params, TrainError, check_batch, epoch_batches, flat_batch, gemm};
use sinter_data::Dataset;
use sinter_ir::{Builder, Graph, Op, Tensor, TensorType, rng};
use sinter_models::{SomConfig, best_match, som};
use std::path::Path;
use std::time::Instant;

/// The weights' name, as in the zoo graph.
pub const WEIGHTS: &str = "som.w";

/// How a map is trained.
#[derive(Clone, Debug, PartialEq)]
pub struct SomTrainConfig {
    /// Rows of the map.
    pub rows: usize,
    /// Columns of the map.
    pub cols: usize,
    /// Passes over the data.
    pub epochs: usize,
    /// Samples per step (their updates averaged).
    pub batch: usize,
    /// Learning rate at the start and at the end.
    pub lr: (f32, f32),
    /// Neighbourhood width (in grid units) at the start and at the end.
    pub sigma: (f32, f32),
    /// Seed of the initial weights (random samples) and the sample order.
    pub seed: i64,
}

impl Default for SomTrainConfig {
    /// A 10x10 map, 10 epochs of batches of 4, rate 0.5 -> 0.02, width 4 -> 0.5.
    fn default() -> SomTrainConfig {
        SomTrainConfig {
            rows: 10,
            cols: 10,
            epochs: 10,
            batch: 4,
            lr: (0.5, 0.02),
            sigma: (4.0, 0.5),
            seed: 0,
        }
    }
}

/// One epoch of a map's training.
#[derive(Clone, Debug, PartialEq)]
pub struct SomEpoch {
    /// The epoch, from 0.
    pub epoch: usize,
    /// The quantisation error over the whole training set after the epoch.
    pub qe: f32,
    /// The learning rate at the epoch's end.
    pub lr: f32,
    /// The neighbourhood width at the epoch's end.
    pub sigma: f32,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// A trained map.
#[derive(Clone, Debug)]
pub struct Som {
    /// Rows of the map.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// `som.w: [rows * cols, inputs]`, unit `r * cols + c` at `(r, c)`.
    pub w: Tensor,
}

/// One step of the map over `batch` samples of `inputs` values; see the [module docs](self).
/// Inputs `x: f32[batch, inputs]`, `lr`, `sigma` (both `f32[]`), `som.w`; outputs
/// `som.w.next`, `qe` (of the batch, before the update) and `bmu`.
pub fn som_step_graph(
    batch: usize,
    inputs: usize,
    rows: usize,
    cols: usize,
) -> Result<Graph, TrainError> {
    let units = rows * cols;
    let mut g = Builder::new("som.step");
    let x = g.input("x", TensorType::f32(&[batch, inputs]))?;
    let lr = g.input("lr", TensorType::f32(&[]))?;
    let sigma = g.input("sigma", TensorType::f32(&[]))?;
    let w = g.input(WEIGHTS, TensorType::f32(&[units, inputs]))?;
    let pos: Vec<f32> = (0..units)
        .flat_map(|u| [(u / cols) as f32, (u % cols) as f32])
        .collect();
    let coords = g.constant(Tensor::from_f32(&[units, 2], pos))?;
    let (bmu, qe) = best_match(&mut g, x, w)?;
    let win = g.op(Op::Gather { axis: 0 }, &[coords, bmu])?;
    let win = g.reshape(win, &[batch as i64, 1, 2])?;
    let all = g.reshape(coords, &[1, units as i64, 2])?;
    let diff = g.sub(win, all)?;
    let d2 = g.mul(diff, diff)?;
    let d2 = g.reduce_sum(d2, &[2], false)?;
    let s2 = g.mul(sigma, sigma)?;
    let minus_half = g.scalar(-0.5)?;
    let s2 = g.div(minus_half, s2)?;
    let arg = g.mul(d2, s2)?;
    let h = g.exp(arg)?;
    let hx = g.op(gemm(true, false), &[h, x])?;
    let hs = g.reduce_sum(h, &[0], false)?;
    let hs = g.reshape(hs, &[units as i64, 1])?;
    let hw = g.mul(hs, w)?;
    let delta = g.sub(hx, hw)?;
    let rate = g.scalar(1.0 / batch as f32)?;
    let rate = g.mul(lr, rate)?;
    let delta = g.mul(delta, rate)?;
    let next = g.named(&format!("{WEIGHTS}.next"), Op::Add {}, &[w, delta])?;
    Ok(g.finish(&[next, qe, bmu])?)
}

/// `a (b / a)^t` for `t` in `[0, 1]`: the exponential schedule from `a` to `b`.
fn decay((a, b): (f32, f32), t: f32) -> f32 {
    a * (b / a).powf(t)
}

/// Trains a map on `data` (samples flattened); see the [module docs](self). The weights start
/// as random training samples. `progress` gets every epoch.
pub fn train_som(
    data: &Dataset,
    cfg: &SomTrainConfig,
    progress: &mut dyn FnMut(&SomEpoch),
) -> Result<(Som, Vec<SomEpoch>), TrainError> {
    check_batch(data, cfg.batch, "the self-organising map")?;
    let (units, inputs) = (cfg.rows * cfg.cols, data.sample_len());
    if units == 0 || cfg.lr.0 <= 0.0 || cfg.lr.1 <= 0.0 || cfg.sigma.0 <= 0.0 || cfg.sigma.1 <= 0.0
    {
        return Err(TrainError::Config(
            "a map needs units and positive rates and widths".into(),
        ));
    }
    let key = rng::key(cfg.seed, 0);
    let picks: Vec<usize> = (0..units as u64)
        .map(|u| ((rng::uniform(key, u) * data.len() as f32) as usize).min(data.len() - 1))
        .collect();
    let w0 = flat_batch(data, &picks).0;
    let g = som_step_graph(cfg.batch, inputs, cfg.rows, cfg.cols)?;
    let mut st = Stepper::new(&g, Params::from([(WEIGHTS.to_string(), w0)]))?;
    let eval = som(&SomConfig {
        batch: data.len(),
        inputs,
        rows: cfg.rows,
        cols: cfg.cols,
    })?;
    let eval = sinter_runtime::Compiled::new(&eval, Default::default())?;
    let all: Vec<usize> = (0..data.len()).collect();
    let all = flat_batch(data, &all).0;
    let per_epoch = data.len() / cfg.batch;
    let total = (cfg.epochs * per_epoch).max(1) as f32;
    let mut stats = Vec::new();
    let mut step = 0;
    let (mut lr, mut sigma) = (cfg.lr.0, cfg.sigma.0);
    for epoch in 0..cfg.epochs {
        let t0 = Instant::now();
        for idx in epoch_batches(data.len(), cfg.batch, cfg.seed, epoch) {
            let t = step as f32 / total;
            (lr, sigma) = (decay(cfg.lr, t), decay(cfg.sigma, t));
            let feeds = Params::from([
                ("x".to_string(), flat_batch(data, &idx).0),
                ("lr".to_string(), Tensor::scalar(lr)),
                ("sigma".to_string(), Tensor::scalar(sigma)),
            ]);
            st.step(&feeds)?;
            step += 1;
        }
        let w = st.get(WEIGHTS).cloned().expect("the map's weights");
        let feeds = Params::from([("x".to_string(), all.clone()), (WEIGHTS.to_string(), w)]);
        let outs = eval.run(&feeds)?.into_iter().collect();
        let s = SomEpoch {
            epoch,
            qe: scalar(&outs, "qe")?,
            lr,
            sigma,
            seconds: t0.elapsed().as_secs_f64(),
        };
        progress(&s);
        stats.push(s);
    }
    let w = st.into_state().remove(WEIGHTS).expect("the map's weights");
    Ok((
        Som {
            rows: cfg.rows,
            cols: cfg.cols,
            w,
        },
        stats,
    ))
}

impl Som {
    /// Writes the map as a PNG grid: each unit's weights as a `height x width` image, in the
    /// map's layout, each pixel `scale x scale`.
    pub fn write_png(
        &self,
        path: &Path,
        height: usize,
        width: usize,
        scale: usize,
    ) -> Result<(), GridError> {
        let layout = GridLayout {
            scale,
            ..GridLayout::new(height, width, self.cols)
        };
        write_grid(path, self.w.as_f32().unwrap_or(&[]), &layout)
    }
}
