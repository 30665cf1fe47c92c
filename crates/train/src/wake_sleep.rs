//! Fine-tuning a deep belief net as a generative model by the up-down (wake-sleep)
//! algorithm, each step one compiled graph.
//!
//! A DBN pretrained greedily ([`crate::dbn::pretrain_dbn`]) is a generative model: the top
//! RBM is an associative memory over the last hidden layer, and below it each layer
//! generates the one underneath through the RBM's weights, *directed* downwards. Greedy
//! training ties each layer's recognition weights (up, `sigmoid(x W + b)`) to its generative
//! weights (down, `sigmoid(h W^T + b_v)`); that is only right for the layer below an RBM
//! that has not been changed since. Hinton, Osindero and Teh (2006) fine-tune by untying
//! them below the top RBM (`rec<l>.w`, `rec<l>.b` up; `gen<l>.w`, `gen<l>.b` down, both
//! starting from RBM `l`) and running the up-down algorithm, a contrastive form of
//! wake-sleep (Hinton, Dayan, Frey and Neal, 1995):
//! - **Wake (up) phase:** the data go up through the recognition weights, sampling binary
//!   states `s_1 .. s_{L-1}`. Each generative layer learns to produce the states below from
//!   those above, a delta rule `gen_l.w += lr (s_{l-1} - p_{l-1})^T s_l`, with
//!   `p_{l-1} = sigmoid(s_l gen_l.w^T + gen_l.b)`.
//! - **Top RBM:** contrastive divergence (CD-k) started from `s_{L-1}`, as in pretraining.
//! - **Sleep (down) phase:** from the negative (dreamed) state of the top RBM's chain the
//!   generative weights produce a fantasy `d_{L-2} .. d_0` downwards; each recognition layer
//!   learns to recover the states above from those below,
//!   `rec_l.w += lr d_{l-1}^T (d_l - q_l)`, with `q_l = sigmoid(d_{l-1} rec_l.w + rec_l.b)`.
//!
//! Wake learning fits the generative model to what recognition makes of the data; sleep
//! learning fits recognition to what the generative model dreams. Neither is a gradient of
//! one loss, so [`wake_sleep_graph`] writes both phases and the top CD step as one graph
//! (`bernoulli` for every sampled state, with the step as its counter, as in
//! [`crate::rbm::cd_graph`]) that autodiff's `Trainer` runs on the JIT. Its first output is
//! the wake phase's reconstruction error of the batch through the untied layers.
//!
//! Samples ([`UpDown::sample`]) are drawn the way the model generates: a long Gibbs chain in
//! the top RBM (one compiled step, fed back), then one deterministic down-pass through the
//! generative weights to visible probabilities.

use crate::rbm::Rbm;
use crate::step::{Stepper, scalar};
use crate::util::{Params, TrainError, check_batch, epoch_batches, flat_batch, gemm};
use sinter_autodiff::train::{LR, next_name};
use sinter_autodiff::{Schedule, Trainer, TrainingGraph};
use sinter_data::Dataset;
use sinter_ir::{Builder, Op, Tensor, TensorType, Value, rng};
use sinter_runtime::Jit;
use std::collections::HashMap;
use std::time::Instant;

/// The data input: visible probabilities `f32[B, V]`.
pub const VISIBLE: &str = "v";
/// The `i64[]` counter of every `bernoulli` of the step.
pub const STEP: &str = "ws.step";
/// The first output: the wake reconstruction error of the batch.
pub const RECON: &str = "recon_error";

/// How the up-down algorithm runs.
#[derive(Clone, Debug, PartialEq)]
pub struct WakeSleepConfig {
    /// Learning rate of every update.
    pub lr: f32,
    /// Passes over the data.
    pub epochs: usize,
    /// Batch size.
    pub batch: usize,
    /// Gibbs steps of the top RBM's CD per update.
    pub cd_k: usize,
    /// Seed of the samples and the batch order.
    pub seed: i64,
}

impl Default for WakeSleepConfig {
    /// Rate 0.01, 10 epochs of batches of 10, CD-3 at the top (the paper's DBN used more
    /// Gibbs steps at the top as fine-tuning went on).
    fn default() -> WakeSleepConfig {
        WakeSleepConfig {
            lr: 0.01,
            epochs: 10,
            batch: 10,
            cd_k: 3,
            seed: 0,
        }
    }
}

/// One epoch of wake-sleep.
#[derive(Clone, Debug, PartialEq)]
pub struct WakeSleepEpoch {
    /// The epoch, from 0.
    pub epoch: usize,
    /// Mean of the steps' wake reconstruction errors.
    pub step_recon: f32,
    /// The reconstruction error over the whole data set after the epoch
    /// ([`UpDown::recon_error`]).
    pub recon: f32,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// A DBN with untied recognition and generative weights below its top RBM.
#[derive(Clone, Debug)]
pub struct UpDown {
    /// Layer widths, visible first (`V, H_1, .., H_L`); the top RBM joins the last two.
    pub sizes: Vec<usize>,
    /// `rec<l>.w: [H_{l-1}, H_l]`, `rec<l>.b`, `gen<l>.w: [H_{l-1}, H_l]` (used transposed),
    /// `gen<l>.b: [H_{l-1}]` for `l` in `1..L`, and `top.w`, `top.b`, `top.b_v`.
    pub params: Params,
}

impl UpDown {
    /// Unties a pretrained stack (at least two RBMs): each RBM below the top gives both its
    /// recognition and its generative weights; the top RBM is kept whole.
    pub fn untie(layers: &[Rbm]) -> Result<UpDown, TrainError> {
        if layers.len() < 2 {
            return Err(TrainError::Config(
                "wake-sleep needs at least two RBMs (one untied layer under the top)".into(),
            ));
        }
        let get = |r: &Rbm, p: &str| -> Result<Tensor, TrainError> {
            let n = format!("{}.{p}", r.name);
            r.params
                .get(&n)
                .cloned()
                .ok_or_else(|| TrainError::Config(format!("no parameter `{n}`")))
        };
        let mut params = Params::new();
        let mut sizes = Vec::new();
        let last = layers.len() - 1;
        for (i, r) in layers.iter().enumerate() {
            let w = get(r, "w")?;
            if i == 0 {
                sizes.push(w.shape()[0]);
            }
            sizes.push(w.shape()[1]);
            if i == last {
                params.insert("top.w".into(), w);
                params.insert("top.b".into(), get(r, "b")?);
                params.insert("top.b_v".into(), get(r, "b_v")?);
            } else {
                let l = i + 1;
                params.insert(format!("gen{l}.w"), w.clone());
                params.insert(format!("rec{l}.w"), w);
                params.insert(format!("rec{l}.b"), get(r, "b")?);
                params.insert(format!("gen{l}.b"), get(r, "b_v")?);
            }
        }
        Ok(UpDown { sizes, params })
    }

    /// The mean squared error of `data` against its reconstruction up through the
    /// recognition layers and down through the generative ones (probabilities, no
    /// sampling), computed by one compiled graph over the whole set.
    pub fn recon_error(&self, data: &Dataset) -> Result<f32, TrainError> {
        let n = data.len();
        let mut g = Builder::new("updown.recon");
        let v = g.input(VISIBLE, TensorType::f32(&[n, self.sizes[0]]))?;
        let p = declare(&mut g, &self.sizes, false)?;
        let mut a = v;
        for l in 1..self.sizes.len() - 1 {
            a = layer_up(&mut g, a, p.rec[l - 1])?;
        }
        for l in (1..self.sizes.len() - 1).rev() {
            a = layer_down(&mut g, a, p.gen_[l - 1])?;
        }
        let err = g.sub(v, a)?;
        let sq = g.mul(err, err)?;
        let e = g.named(RECON, mean_all(), &[sq])?;
        let graph = g.finish(&[e])?;
        let idx: Vec<usize> = (0..n).collect();
        let mut feeds = self.params.clone();
        feeds.insert(VISIBLE.into(), flat_batch(data, &idx).0);
        let outs = crate::step::run_once(&graph, &feeds)?;
        scalar(&outs, RECON)
    }

    /// `count` samples of the model: a Gibbs chain of `steps` alternations in the top RBM
    /// from random visible states (one compiled step fed back), then the generative
    /// down-pass to visible probabilities. Returns `[count, V]` flattened.
    pub fn sample(&self, count: usize, steps: usize, seed: i64) -> Result<Vec<f32>, TrainError> {
        let depth = self.sizes.len() - 1;
        let (hv, hh) = (self.sizes[depth - 1], self.sizes[depth]);
        let mut g = Builder::new("updown.gibbs");
        let s = g.input("s", TensorType::f32(&[count, hv]))?;
        let step = g.input(STEP, TensorType::i64(&[]))?;
        let w = g.input("top.w", TensorType::f32(&[hv, hh]))?;
        let b = g.input("top.b", TensorType::f32(&[hh]))?;
        let bv = g.input("top.b_v", TensorType::f32(&[hv]))?;
        let ph = g.op(gemm(false, false), &[s, w, b])?;
        let ph = g.sigmoid(ph)?;
        let h = g.op(Op::Bernoulli { seed }, &[ph, step])?;
        let pv = g.op(gemm(false, true), &[h, w, bv])?;
        let pv = g.sigmoid(pv)?;
        let next = g.named("s.next", Op::Bernoulli { seed: seed + 1 }, &[pv, step])?;
        let graph = g.finish(&[next])?;
        let key = rng::key(seed, 3);
        let s0 = (0..(count * hv) as u64)
            .map(|i| f32::from(u8::from(rng::uniform(key, i) < 0.5)))
            .collect();
        let mut state = Params::from([("s".to_string(), Tensor::from_f32(&[count, hv], s0))]);
        for n in ["top.w", "top.b", "top.b_v"] {
            state.insert(n.into(), self.params[n].clone());
        }
        let mut st = Stepper::new(&graph, state)?;
        for t in 0..steps {
            let feeds = Params::from([(STEP.to_string(), Tensor::from_i64(&[], vec![t as i64]))]);
            st.step(&feeds)?;
        }
        let top = st.get("s").cloned().expect("the chain's state");
        let mut g = Builder::new("updown.down");
        let mut a = g.input("s", TensorType::f32(&[count, hv]))?;
        let p = declare(&mut g, &self.sizes, false)?;
        for l in (2..depth).rev() {
            a = layer_down(&mut g, a, p.gen_[l - 1])?;
        }
        let (w, b) = p.gen_[0];
        let z = g.op(gemm(false, true), &[a, w, b])?;
        let out = g.named("visible", Op::Sigmoid {}, &[z])?;
        let graph = g.finish(&[out])?;
        let mut feeds = self.params.clone();
        feeds.insert("s".into(), top);
        let outs = crate::step::run_once(&graph, &feeds)?;
        Ok(crate::step::f32s(&outs, "visible")?.to_vec())
    }
}

fn mean_all() -> Op {
    Op::ReduceMean {
        axes: vec![],
        keepdims: false,
    }
}

/// A layer's `(w, b)`.
type Layer = (Value, Value);

/// The parameters of an up-down network declared in `g` (as `param`s or data inputs).
struct Declared {
    rec: Vec<Layer>,
    gen_: Vec<Layer>,
    top: (Value, Value, Value),
    all: Vec<(String, Value)>,
}

fn declare(g: &mut Builder, sizes: &[usize], as_params: bool) -> Result<Declared, TrainError> {
    let mut all = Vec::new();
    let mut add = |g: &mut Builder, n: String, s: &[usize]| -> Result<Value, TrainError> {
        let ty = TensorType::f32(s);
        let v = if as_params {
            g.param(&n, ty)?
        } else {
            g.input(&n, ty)?
        };
        all.push((n, v));
        Ok(v)
    };
    let depth = sizes.len() - 1;
    let (mut rec, mut gen_) = (Vec::new(), Vec::new());
    for l in 1..depth {
        let (lo, hi) = (sizes[l - 1], sizes[l]);
        let rw = add(g, format!("rec{l}.w"), &[lo, hi])?;
        let rb = add(g, format!("rec{l}.b"), &[hi])?;
        let gw = add(g, format!("gen{l}.w"), &[lo, hi])?;
        let gb = add(g, format!("gen{l}.b"), &[lo])?;
        rec.push((rw, rb));
        gen_.push((gw, gb));
    }
    let (hv, hh) = (sizes[depth - 1], sizes[depth]);
    let tw = add(g, "top.w".into(), &[hv, hh])?;
    let tb = add(g, "top.b".into(), &[hh])?;
    let tbv = add(g, "top.b_v".into(), &[hv])?;
    Ok(Declared {
        rec,
        gen_,
        top: (tw, tb, tbv),
        all,
    })
}

fn layer_up(g: &mut Builder, x: Value, (w, b): Layer) -> Result<Value, TrainError> {
    let z = g.op(gemm(false, false), &[x, w, b])?;
    Ok(g.sigmoid(z)?)
}

fn layer_down(g: &mut Builder, h: Value, (w, b): Layer) -> Result<Value, TrainError> {
    let z = g.op(gemm(false, true), &[h, w, b])?;
    Ok(g.sigmoid(z)?)
}

/// The up-down step over `batch` samples of the network with layer widths `sizes` (visible
/// first); see the [module docs](self). Inputs [`VISIBLE`], [`STEP`], `lr` and the
/// parameters of [`UpDown::params`]; outputs [`RECON`], then every `<param>.next`.
pub fn wake_sleep_graph(
    batch: usize,
    sizes: &[usize],
    cfg: &WakeSleepConfig,
) -> Result<TrainingGraph, TrainError> {
    if sizes.len() < 3 || cfg.cd_k == 0 {
        return Err(TrainError::Config(
            "wake-sleep needs two RBMs or more and CD-k with k >= 1".into(),
        ));
    }
    let depth = sizes.len() - 1;
    let mut g = Builder::new("updown.step");
    let v = g.input(VISIBLE, TensorType::f32(&[batch, sizes[0]]))?;
    let step = g.input(STEP, TensorType::i64(&[]))?;
    let lr = g.input(LR, TensorType::f32(&[]))?;
    let p = declare(&mut g, sizes, true)?;
    let mut seed = cfg.seed;
    let mut sample = |g: &mut Builder, pr: Value| -> Result<Value, TrainError> {
        seed = seed.wrapping_add(1);
        Ok(g.op(Op::Bernoulli { seed }, &[pr, step])?)
    };
    let inv_b = g.scalar(1.0 / batch as f32)?;
    // `a^T b / B` and the column means of `c`: the statistics of a delta rule.
    let stats = |g: &mut Builder, a: Value, b: Value| -> Result<(Value, Value), TrainError> {
        let outer = g.op(gemm(true, false), &[a, b])?;
        let outer = g.mul(outer, inv_b)?;
        let mean = g.reduce_mean(b, &[0], false)?;
        Ok((outer, mean))
    };
    // Updates as `(param, ascent direction)`.
    let mut ups: HashMap<String, Value> = HashMap::new();

    // Wake: sampled states up through recognition; the deterministic reconstruction error.
    let mut s = vec![v];
    for l in 1..depth {
        let pr = layer_up(&mut g, s[l - 1], p.rec[l - 1])?;
        s.push(sample(&mut g, pr)?);
    }
    let mut recon = v;
    for l in 1..depth {
        recon = layer_up(&mut g, recon, p.rec[l - 1])?;
    }
    for l in (1..depth).rev() {
        recon = layer_down(&mut g, recon, p.gen_[l - 1])?;
    }
    let err = g.sub(v, recon)?;
    let sq = g.mul(err, err)?;
    let recon_err = g.named(RECON, mean_all(), &[sq])?;
    for l in 1..depth {
        let pred = layer_down(&mut g, s[l], p.gen_[l - 1])?;
        let diff = g.sub(s[l - 1], pred)?;
        // (s_{l-1} - p)^T s_l: [H_{l-1}, H_l], the layout of `gen<l>.w`.
        let (dw, _) = stats(&mut g, diff, s[l])?;
        let db = g.reduce_mean(diff, &[0], false)?;
        ups.insert(format!("gen{l}.w"), dw);
        ups.insert(format!("gen{l}.b"), db);
    }

    // The top RBM: CD-k from the wake state.
    let (tw, tb, tbv) = p.top;
    let top_v = s[depth - 1];
    let ph0 = layer_up(&mut g, top_v, (tw, tb))?;
    let mut h = sample(&mut g, ph0)?;
    let (mut vk, mut phk) = (top_v, ph0);
    for _ in 0..cfg.cd_k {
        let pv = layer_down(&mut g, h, (tw, tbv))?;
        vk = sample(&mut g, pv)?;
        phk = layer_up(&mut g, vk, (tw, tb))?;
        h = sample(&mut g, phk)?;
    }
    let (pos, pos_h) = stats(&mut g, top_v, ph0)?;
    let (neg, neg_h) = stats(&mut g, vk, phk)?;
    ups.insert("top.w".into(), g.sub(pos, neg)?);
    ups.insert("top.b".into(), g.sub(pos_h, neg_h)?);
    let mv0 = g.reduce_mean(top_v, &[0], false)?;
    let mvk = g.reduce_mean(vk, &[0], false)?;
    ups.insert("top.b_v".into(), g.sub(mv0, mvk)?);

    // Sleep: a fantasy down from the chain's visible state through the generative weights
    // (sampled states, visible probabilities at the bottom); recognition learns to invert it.
    let mut d = vec![vk; depth];
    for l in (1..depth).rev() {
        let pd = layer_down(&mut g, d[l], p.gen_[l - 1])?;
        d[l - 1] = if l == 1 { pd } else { sample(&mut g, pd)? };
    }
    for l in 1..depth {
        let q = layer_up(&mut g, d[l - 1], p.rec[l - 1])?;
        let diff = g.sub(d[l], q)?;
        let outer = g.op(gemm(true, false), &[d[l - 1], diff])?;
        let dw = g.mul(outer, inv_b)?;
        let db = g.reduce_mean(diff, &[0], false)?;
        ups.insert(format!("rec{l}.w"), dw);
        ups.insert(format!("rec{l}.b"), db);
    }

    let mut outputs = vec![recon_err];
    let mut feedback = Vec::new();
    for (name, param) in &p.all {
        let (dir, param) = (ups[name], *param);
        let stepped = g.mul(dir, lr)?;
        outputs.push(g.named(&next_name(name), Op::Add {}, &[param, stepped])?);
        feedback.push((next_name(name), name.clone()));
    }
    let graph = g.finish(&outputs)?;
    Ok(TrainingGraph {
        graph,
        loss: RECON.to_string(),
        lr: LR.to_string(),
        params: p.all.iter().map(|(n, _)| n.clone()).collect(),
        state: Vec::new(),
        feedback,
        batch_norm: Vec::new(),
        data: vec![VISIBLE.to_string(), STEP.to_string()],
    })
}

/// Fine-tunes the pretrained stack `layers` on `data` by the up-down algorithm; see the
/// [module docs](self). Returns the untied network, its reconstruction error before
/// fine-tuning, and every epoch (also given to `progress`).
pub fn train_wake_sleep(
    data: &Dataset,
    layers: &[Rbm],
    cfg: &WakeSleepConfig,
    progress: &mut dyn FnMut(&WakeSleepEpoch),
) -> Result<(UpDown, f32, Vec<WakeSleepEpoch>), TrainError> {
    check_batch(data, cfg.batch, "wake-sleep")?;
    let net = UpDown::untie(layers)?;
    if net.sizes[0] != data.sample_len() {
        return Err(TrainError::Config(format!(
            "the DBN has {} visible units, the data {} values per sample",
            net.sizes[0],
            data.sample_len()
        )));
    }
    let initial = net.recon_error(data)?;
    let tg = wake_sleep_graph(cfg.batch, &net.sizes, cfg)?;
    let params: HashMap<String, Tensor> = net.params.clone();
    let mut tr = Trainer::new(Jit::default(), tg, params, Schedule::Constant(cfg.lr))?;
    let mut stats = Vec::new();
    for epoch in 0..cfg.epochs {
        let t0 = Instant::now();
        let batches = epoch_batches(data.len(), cfg.batch, cfg.seed, epoch);
        let mut sum = 0.0;
        for idx in &batches {
            let feeds = HashMap::from([
                (VISIBLE.to_string(), flat_batch(data, idx).0),
                (
                    STEP.to_string(),
                    Tensor::from_i64(&[], vec![tr.steps() as i64]),
                ),
            ]);
            sum += tr.step(&feeds)?;
        }
        let now = UpDown {
            sizes: net.sizes.clone(),
            params: tr.model().into_iter().collect(),
        };
        let s = WakeSleepEpoch {
            epoch,
            step_recon: sum / batches.len() as f32,
            recon: now.recon_error(data)?,
            seconds: t0.elapsed().as_secs_f64(),
        };
        progress(&s);
        stats.push(s);
    }
    let net = UpDown {
        sizes: net.sizes,
        params: tr.model().into_iter().collect(),
    };
    Ok((net, initial, stats))
}
