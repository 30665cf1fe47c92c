//! Restricted Boltzmann machines trained by contrastive divergence, the update one graph.
//!
//! A Bernoulli RBM with weights `W: [V, H]`, hidden biases `b: [H]` and visible biases
//! `b_v: [V]` has `p(h = 1 | v) = sigmoid(v W + b)` and `p(v = 1 | h) = sigmoid(h W^T + b_v)`.
//! The log-likelihood gradient is `<v h^T>_data - <v h^T>_model`; CD-k (Hinton, 2002)
//! estimates the model term by starting a Gibbs chain at the data and running it `k` steps.
//! That estimate is not the gradient of any loss a graph could state, so autodiff cannot
//! build the step. But the procedure is itself a dataflow graph of ops the IR has (a `gemm`
//! and a `sigmoid` per half-step of the chain, `bernoulli` to sample, two more `gemm`s and
//! `reduce_mean` for the statistics), so [`cd_graph`] writes the
//! whole update out, and the JIT compiles it once like any training step: one kernel
//! sequence per batch, with no numeric loop on the host.
//!
//! The graph follows autodiff's conventions (`sinter_autodiff::train`) so that the same
//! [`Trainer`] runs it: the parameters are `param` inputs whose new values are the outputs
//! `<param>.next`; momentum buffers are the state inputs `opt.<param>.buf` (updated
//! `buf = momentum buf + g`, then `p -= lr buf`, as autodiff's SGD does, `g` being the negated
//! CD estimate plus the weight decay); the learning rate is the `f32[]` input `lr`, so
//! schedules stay on the host; and the first output, the "loss", is the reconstruction error.
//! The one extra input is the `i64[]` counter [`STEP`] of the `bernoulli` ops: random ops
//! are pure functions of `(seed, counter, index)`, so feeding the step number draws fresh
//! samples every batch while a run stays reproducible.
//!
//! Where the chain samples and where it uses probabilities follows Hinton's practical guide
//! to training RBMs (UTML TR 2010-003):
//! - The hidden states that *drive* a reconstruction are sampled (`bernoulli`): a binary
//!   hidden state is an information bottleneck; feeding probabilities down would let the
//!   hidden units carry real values and the chain would barely move from the data.
//! - The visible reconstructions are probabilities, not samples: sampling them adds noise
//!   and no information the next up-pass uses, and slows learning.
//! - The statistics use hidden *probabilities* at both ends (`v0^T p(h|v0)` and
//!   `v_k^T p(h|v_k)`), and the last hidden layer is never sampled: the expectation has the
//!   same mean as the sample with less variance.
//! - The reported figure is the reconstruction error `mean((v0 - v_k)^2)` over the batch:
//!   cheap, since `v_k` is computed anyway, though only a rough measure of progress (the
//!   guide warns it is not what CD optimises).
//!
//! Once trained, a layer moves data up a stack by its hidden probabilities
//! ([`Rbm::hidden_probs`], a compiled `sigmoid(x W + b)` run over the set in chunks): the deep
//! belief net's next RBM learns from those, the deterministic up-pass the fine-tuned network
//! will compute. The hidden biases are called `<name>.b` so that the up-pass is exactly the
//! linear layer `<name>` of `sinter_models::dbn`.

use crate::util::{
    Params, Progress, Purpose, StageEpoch, TrainError, check_batch, derive_seed, epoch_batches,
    flat_batch, gemm, up_pass,
};
use sinter_autodiff::train::{LR, next_name};
use sinter_autodiff::{Init, Schedule, Trainer, TrainingGraph, init_tensor};
use sinter_data::Dataset;
use sinter_ir::{Builder, Op, Tensor, TensorType, Value};
use sinter_runtime::Jit;
use std::collections::HashMap;
use std::time::Instant;

/// The `i64[]` input counting steps, the counter of every `bernoulli` of the step.
pub const STEP: &str = "cd.step";
/// The data input: a batch of visible vectors `f32[B, V]` in `[0, 1]`.
pub const VISIBLE: &str = "v0";
/// The first output: the batch's reconstruction error `mean((v0 - v_k)^2)`.
pub const RECON: &str = "recon_error";

/// How contrastive divergence trains one RBM.
#[derive(Clone, Debug, PartialEq)]
pub struct CdConfig {
    /// Gibbs steps per update (`k` of CD-k), at least 1.
    pub k: usize,
    /// Learning rate (constant).
    pub lr: f32,
    /// Momentum of the update, in `[0, 1)`; 0 keeps no buffers.
    pub momentum: f32,
    /// L2 weight decay on the weights (not the biases).
    pub weight_decay: f32,
    /// Passes over the data.
    pub epochs: usize,
    /// Batch size.
    pub batch: usize,
    /// Standard deviation of the initial weights (normal, mean 0); biases start at 0.
    pub init_std: f32,
    /// Seed of the weights, the batch order and the samples.
    pub seed: i64,
}

impl Default for CdConfig {
    /// CD-1 for the 8x8 digits, after Hinton's guide: weights from `N(0, 0.01^2)`, batch 10,
    /// learning rate 0.1, momentum 0.5, weight decay 2e-4, 5 epochs.
    fn default() -> CdConfig {
        CdConfig {
            k: 1,
            lr: 0.1,
            momentum: 0.5,
            weight_decay: 2e-4,
            epochs: 5,
            batch: 10,
            init_std: 0.01,
            seed: 0,
        }
    }
}

/// The CD-k update of the RBM `name` with `visible` and `hidden` units on batches of `batch`,
/// as a training graph; see the [module docs](self). Inputs: [`VISIBLE`], [`STEP`], `lr`, the
/// parameters `<name>.w: [V, H]`, `<name>.b: [H]`, `<name>.b_v: [V]` and (with momentum)
/// their buffers `opt.<param>.buf`. Outputs: [`RECON`], then every `*.next`.
pub fn cd_graph(
    name: &str,
    batch: usize,
    visible: usize,
    hidden: usize,
    cfg: &CdConfig,
) -> Result<TrainingGraph, TrainError> {
    if cfg.k == 0 {
        return Err(TrainError::Config("CD-k needs k >= 1".into()));
    }
    if !(0.0..1.0).contains(&cfg.momentum) {
        return Err(TrainError::Config(format!(
            "momentum {} is not in [0, 1)",
            cfg.momentum
        )));
    }
    let mut g = Builder::new(&format!("{name}.cd{}", cfg.k));
    let v0 = g.input(VISIBLE, TensorType::f32(&[batch, visible]))?;
    let step = g.input(STEP, TensorType::i64(&[]))?;
    let lr = g.input(LR, TensorType::f32(&[]))?;
    let names = [
        format!("{name}.w"),
        format!("{name}.b"),
        format!("{name}.b_v"),
    ];
    let shapes = [vec![visible, hidden], vec![hidden], vec![visible]];
    let mut ps = Vec::new();
    for (n, s) in names.iter().zip(&shapes) {
        ps.push(g.param(n, TensorType::f32(s))?);
    }
    let (w, b, b_v) = (ps[0], ps[1], ps[2]);
    let mut state = Vec::new();
    let mut bufs = Vec::new();
    if cfg.momentum != 0.0 {
        for (n, s) in names.iter().zip(&shapes) {
            let buf = format!("opt.{n}.buf");
            bufs.push(g.input(&buf, TensorType::f32(s))?);
            state.push((buf, Tensor::zeros(&TensorType::f32(s))));
        }
    }

    let up = |g: &mut Builder, v: Value| -> Result<Value, TrainError> {
        let z = g.op(gemm(false, false), &[v, w, b])?;
        Ok(g.sigmoid(z)?)
    };
    let down = |g: &mut Builder, h: Value| -> Result<Value, TrainError> {
        let z = g.op(gemm(false, true), &[h, w, b_v])?;
        Ok(g.sigmoid(z)?)
    };
    // Each `bernoulli` of the chain gets its own seed; the counter changes per step.
    let sample = |g: &mut Builder, p: Value, t: usize| -> Result<Value, TrainError> {
        let seed = gibbs_seed(cfg.seed, t);
        Ok(g.op(Op::Bernoulli { seed }, &[p, step])?)
    };
    let ph0 = up(&mut g, v0)?;
    let mut h = sample(&mut g, ph0, 0)?;
    let (mut vk, mut phk) = (v0, ph0);
    for t in 1..=cfg.k {
        vk = down(&mut g, h)?;
        phk = up(&mut g, vk)?;
        if t < cfg.k {
            h = sample(&mut g, phk, t)?;
        }
    }

    // The descent directions: the negated CD estimates, averaged over the batch.
    let pos = g.op(gemm(true, false), &[v0, ph0])?;
    let neg = g.op(gemm(true, false), &[vk, phk])?;
    let dw = g.sub(neg, pos)?;
    let inv_b = g.scalar(1.0 / batch as f32)?;
    let mut dw = g.mul(dw, inv_b)?;
    if cfg.weight_decay != 0.0 {
        let wd = g.scalar(cfg.weight_decay)?;
        let decay = g.mul(w, wd)?;
        dw = g.add(dw, decay)?;
    }
    let dh = g.sub(phk, ph0)?;
    let db = g.reduce_mean(dh, &[0], false)?;
    let dv = g.sub(vk, v0)?;
    let db_v = g.reduce_mean(dv, &[0], false)?;

    let err = g.sub(v0, vk)?;
    let sq = g.mul(err, err)?;
    let mean_all = Op::ReduceMean {
        axes: vec![],
        keepdims: false,
    };
    let mut outputs = vec![g.named(RECON, mean_all, &[sq])?];
    let mut feedback = Vec::new();
    let mut buf_next = Vec::new();
    for (i, (&p, d)) in ps.iter().zip([dw, db, db_v]).enumerate() {
        let d = match bufs.get(i) {
            Some(&buf) => {
                let mu = g.scalar(cfg.momentum)?;
                let kept = g.mul(buf, mu)?;
                let input = &state[i].0;
                let nb = g.named(&next_name(input), Op::Add {}, &[kept, d])?;
                buf_next.push((nb, input.clone()));
                nb
            }
            None => d,
        };
        let stepped = g.mul(d, lr)?;
        outputs.push(g.named(&next_name(&names[i]), Op::Sub {}, &[p, stepped])?);
        feedback.push((next_name(&names[i]), names[i].clone()));
    }
    for (v, input) in buf_next {
        outputs.push(v);
        feedback.push((next_name(&input), input));
    }
    let graph = g.finish(&outputs)?;
    Ok(TrainingGraph {
        graph,
        loss: RECON.to_string(),
        lr: LR.to_string(),
        params: names.to_vec(),
        state,
        feedback,
        batch_norm: Vec::new(),
        data: vec![VISIBLE.to_string(), STEP.to_string()],
    })
}

/// The `seed` attribute of the `bernoulli` that samples the hidden units driving Gibbs step
/// `t + 1` (from 0) of [`cd_graph`] under `CdConfig::seed` `seed`.
pub fn gibbs_seed(seed: i64, t: usize) -> i64 {
    derive_seed(seed, Purpose::Gibbs).wrapping_add(t as i64)
}

/// A trained RBM layer.
#[derive(Clone, Debug)]
pub struct Rbm {
    /// The layer's name, the prefix of its parameters.
    pub name: String,
    /// `<name>.w: [V, H]`, `<name>.b: [H]` (hidden), `<name>.b_v: [V]` (visible).
    pub params: Params,
}

impl Rbm {
    /// `data` as the hidden probabilities `sigmoid(x W + b)`, labels kept: what the next layer
    /// of a deep belief net trains on, computed by the compiled layer in chunks of
    /// [`crate::util::CHUNK`] samples.
    pub fn hidden_probs(&self, data: &Dataset) -> Result<Dataset, TrainError> {
        up_pass(data, &self.name, &self.params)
    }
}

/// Trains the RBM `name` with `hidden` units on `data` (each sample flattened to the visible
/// units) by CD-k ([`cd_graph`] compiled once by the JIT, run per batch). Calls `progress`
/// after each epoch with the epoch's mean reconstruction error; returns the layer and every
/// epoch's statistics.
pub fn train_rbm(
    name: &str,
    data: &Dataset,
    hidden: usize,
    cfg: &CdConfig,
    progress: Progress<'_>,
) -> Result<(Rbm, Vec<StageEpoch>), TrainError> {
    check_batch(data, cfg.batch, name)?;
    let visible = data.sample_len();
    let tg = cd_graph(name, cfg.batch, visible, hidden, cfg)?;
    let mut params = HashMap::new();
    for (i, p) in tg.params.iter().enumerate() {
        let ty = tg.graph.ty(tg.graph.find(p).expect("a parameter input"));
        let init = if ty.rank() == 2 {
            Init::Normal {
                mean: 0.0,
                std: cfg.init_std,
            }
        } else {
            Init::Zeros
        };
        params.insert(p.clone(), init_tensor(ty, init, cfg.seed, i as i64));
    }
    let mut tr = Trainer::new(Jit::default(), tg, params, Schedule::Constant(cfg.lr))?;
    let mut stats = Vec::new();
    for epoch in 0..cfg.epochs {
        let t0 = Instant::now();
        let batches = epoch_batches(data.len(), cfg.batch, cfg.seed, epoch);
        let mut sum = 0.0;
        for idx in &batches {
            let step = Tensor::from_i64(&[], vec![tr.steps() as i64]);
            let feeds = HashMap::from([
                (VISIBLE.to_string(), flat_batch(data, idx).0),
                (STEP.to_string(), step),
            ]);
            sum += tr.step(&feeds)?;
        }
        let s = StageEpoch {
            stage: name.to_string(),
            epoch,
            loss: sum / batches.len() as f32,
            seconds: t0.elapsed().as_secs_f64(),
        };
        progress(&s);
        stats.push(s);
    }
    let params = tr.model().into_iter().collect();
    let rbm = Rbm {
        name: name.to_string(),
        params,
    };
    Ok((rbm, stats))
}
