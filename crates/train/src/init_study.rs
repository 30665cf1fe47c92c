//! How the initial weights of a deep network decide whether a signal survives the forward
//! pass: a 20-layer ReLU (and tanh) network, He vs Xavier vs small uniform weights, the
//! standard deviation of every layer's activations measured on a batch of digits.
//!
//! For a layer `z = a W` with `n` inputs and weights of variance `v`, independent of the
//! activations, `Var(z) = n v E[a^2]`. With ReLU, `a = max(z, 0)` of a symmetric `z` keeps
//! half the second moment, `E[a^2] = Var(z) / 2`, so the second moment is multiplied by
//! `n v / 2` per layer. He et al. (2015) choose `v = 2 / n` to make that factor 1: the
//! activations keep their scale through any depth. Glorot and Bengio's (2010) Xavier
//! `v = 2 / (n_in + n_out)` (`1 / n` for square layers) makes it 1/2, which is right for tanh
//! (near 0 it is linear and keeps the whole second moment) but halves the ReLU signal's
//! variance at every layer. Small uniform weights `U(-a, a)` (`v = a^2 / 3`) with `a = 0.01`
//! give a factor of `n a^2 / 6`, tiny for any reasonable width: the signal, and with it
//! every gradient, vanishes geometrically with depth.
//!
//! The whole network is one compiled graph whose outputs are every layer's activations and
//! their standard deviations (`std: f32[depth]`, reduced in the graph); the weights are data
//! inputs drawn on the host by `sinter_autodiff::init_tensor`, biases zero.

use crate::util::{Params, TrainError, flat_batch, gemm};
use sinter_autodiff::{Init, init_tensor};
use sinter_data::Dataset;
use sinter_ir::{Builder, Graph, Op, TensorType};
use std::fmt::Write;

/// The nonlinearity of every hidden layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// `max(z, 0)`.
    Relu,
    /// `tanh(z)`.
    Tanh,
}

/// How the weights are drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum WeightInit {
    /// He (Kaiming) normal: `N(0, 2 / fan_in)`.
    He,
    /// Xavier (Glorot) normal: `N(0, 2 / (fan_in + fan_out))`.
    Xavier,
    /// Uniform in `[-a, a)`.
    SmallUniform(f32),
}

impl WeightInit {
    fn init(self) -> Init {
        match self {
            WeightInit::He => Init::HeNormal,
            WeightInit::Xavier => Init::XavierNormal,
            WeightInit::SmallUniform(a) => Init::Uniform { low: -a, high: a },
        }
    }

    fn label(self) -> String {
        match self {
            WeightInit::He => "He".into(),
            WeightInit::Xavier => "Xavier".into(),
            WeightInit::SmallUniform(a) => format!("U(+-{a})"),
        }
    }
}

/// The network and the measurement.
#[derive(Clone, Debug, PartialEq)]
pub struct InitStudyConfig {
    /// Hidden layers.
    pub depth: usize,
    /// Units per hidden layer.
    pub width: usize,
    /// Samples the statistics are taken over (the first `batch` of the data).
    pub batch: usize,
    /// The bound `a` of the small uniform initialisation.
    pub small: f32,
    /// Seed of the weights.
    pub seed: i64,
}

impl Default for InitStudyConfig {
    /// 20 layers of 256 units over 256 digits; small uniform `a = 0.01`.
    fn default() -> InitStudyConfig {
        InitStudyConfig {
            depth: 20,
            width: 256,
            batch: 256,
            small: 0.01,
            seed: 0,
        }
    }
}

/// One network's measurement.
#[derive(Clone, Debug, PartialEq)]
pub struct InitRow {
    /// The nonlinearity.
    pub activation: Activation,
    /// The initialisation.
    pub init: WeightInit,
    /// Standard deviation of each layer's activations over the batch and the units, first
    /// layer first.
    pub std: Vec<f32>,
}

impl InitRow {
    /// `max / min` of the activation variance over the layers.
    pub fn variance_spread(&self) -> f32 {
        let v = self.std.iter().map(|s| s * s);
        let (lo, hi) = v.fold((f32::INFINITY, 0.0f32), |(l, h), x| (l.min(x), h.max(x)));
        hi / lo
    }

    /// The last layer's activation variance over the first layer's.
    pub fn variance_ratio(&self) -> f32 {
        let (first, last) = (self.std[0], self.std[self.std.len() - 1]);
        (last * last) / (first * first)
    }
}

/// The study's table: one row per (activation, initialisation).
#[derive(Clone, Debug, PartialEq)]
pub struct InitStudy {
    /// The rows, ReLU first.
    pub rows: Vec<InitRow>,
}

impl InitStudy {
    /// The table as text: the activations' standard deviation at a few layers and the
    /// variance ratio of the last layer to the first.
    pub fn render(&self) -> String {
        let depth = self.rows.first().map_or(0, |r| r.std.len());
        let mut cols: Vec<usize> = [1, 2, 5, 10, 15, 20]
            .into_iter()
            .filter(|&l| l < depth)
            .collect();
        cols.push(depth);
        let mut s = format!("{:<6} {:<10}", "act", "init");
        for l in &cols {
            let _ = write!(s, " {:>10}", format!("std@{l}"));
        }
        let _ = writeln!(s, " {:>12}", "var last/1st");
        for r in &self.rows {
            let act = match r.activation {
                Activation::Relu => "relu",
                Activation::Tanh => "tanh",
            };
            let _ = write!(s, "{act:<6} {:<10}", r.init.label());
            for &l in &cols {
                let _ = write!(s, " {:>10.3e}", r.std[l - 1]);
            }
            let _ = writeln!(s, " {:>12.3e}", r.variance_ratio());
        }
        s
    }
}

/// The deep network as one forward graph: input `x: f32[batch, inputs]`, weights and biases
/// `l<i>.w`, `l<i>.b` (data inputs), layer `i`'s activations as the output `a<i>` (from 1),
/// and `std: f32[depth]`, every layer's standard deviation over the batch and its units.
pub fn deep_forward_graph(
    batch: usize,
    inputs: usize,
    width: usize,
    depth: usize,
    act: Activation,
) -> Result<Graph, TrainError> {
    if depth == 0 || width == 0 {
        return Err(TrainError::Config(
            "the network needs layers and units".into(),
        ));
    }
    let mut g = Builder::new("deep");
    let mut a = g.input("x", TensorType::f32(&[batch, inputs]))?;
    let mut acts = Vec::new();
    let mut stds = Vec::new();
    let all_mean = Op::ReduceMean {
        axes: vec![],
        keepdims: false,
    };
    for i in 1..=depth {
        let fan_in = g.shape(a)[1];
        let w = g.input(&format!("l{i}.w"), TensorType::f32(&[fan_in, width]))?;
        let b = g.input(&format!("l{i}.b"), TensorType::f32(&[width]))?;
        let z = g.op(gemm(false, false), &[a, w, b])?;
        let op = match act {
            Activation::Relu => Op::Relu {},
            Activation::Tanh => Op::Tanh {},
        };
        a = g.named(&format!("a{i}"), op, &[z])?;
        let mean = g.op(all_mean.clone(), &[a])?;
        let c = g.sub(a, mean)?;
        let c2 = g.mul(c, c)?;
        let var = g.op(all_mean.clone(), &[c2])?;
        let sd = g.sqrt(var)?;
        stds.push(g.reshape(sd, &[1])?);
        acts.push(a);
    }
    let std = g.named("std", Op::Concat { axis: 0 }, &stds)?;
    acts.push(std);
    Ok(g.finish(&acts)?)
}

/// The per-layer activation standard deviations of the network `cfg` with `act` and `init`
/// on the first `cfg.batch` samples of `data` (flattened), computed by the compiled
/// [`deep_forward_graph`].
pub fn activation_stds(
    data: &Dataset,
    act: Activation,
    init: WeightInit,
    cfg: &InitStudyConfig,
) -> Result<Vec<f32>, TrainError> {
    crate::util::check_batch(data, cfg.batch, "the initialisation study")?;
    let inputs = data.sample_len();
    let g = deep_forward_graph(cfg.batch, inputs, cfg.width, cfg.depth, act)?;
    let idx: Vec<usize> = (0..cfg.batch).collect();
    let mut feeds = Params::new();
    feeds.insert("x".into(), flat_batch(data, &idx).0);
    for i in 1..=cfg.depth {
        let fan_in = if i == 1 { inputs } else { cfg.width };
        let ty = TensorType::f32(&[fan_in, cfg.width]);
        let w = init_tensor(&ty, init.init(), cfg.seed, i as i64);
        feeds.insert(format!("l{i}.w"), w);
        let bt = TensorType::f32(&[cfg.width]);
        feeds.insert(format!("l{i}.b"), init_tensor(&bt, Init::Zeros, 0, 0));
    }
    let outs = crate::step::run_once(&g, &feeds)?;
    Ok(crate::step::f32s(&outs, "std")?.to_vec())
}

/// The study: ReLU with He, Xavier and small uniform weights, tanh with Xavier, He and small
/// uniform, each measured by [`activation_stds`].
pub fn init_study(data: &Dataset, cfg: &InitStudyConfig) -> Result<InitStudy, TrainError> {
    let small = WeightInit::SmallUniform(cfg.small);
    let cases = [
        (Activation::Relu, WeightInit::He),
        (Activation::Relu, WeightInit::Xavier),
        (Activation::Relu, small),
        (Activation::Tanh, WeightInit::Xavier),
        (Activation::Tanh, WeightInit::He),
        (Activation::Tanh, small),
    ];
    let mut rows = Vec::new();
    for (activation, init) in cases {
        let std = activation_stds(data, activation, init, cfg)?;
        rows.push(InitRow {
            activation,
            init,
            std,
        });
    }
    Ok(InitStudy { rows })
}
