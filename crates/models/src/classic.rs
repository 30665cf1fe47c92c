//! Classic networks whose learning is not backpropagation: the perceptron, the Hopfield
//! network, Kohonen's self-organising map and ART-1. What the zoo holds of each is what the
//! learned weights compute (a thresholded unit, one synchronous recall step with its energy,
//! the best-matching unit, the ART-1 category choice); the learning rules themselves are
//! graphs built in `sinter-train` (`perceptron.rs`, `hopfield.rs`, `som.rs`, `art.rs` there),
//! which read these same parameter names.
//!
//! None of these graphs has a `loss` that autodiff could differentiate (a step function, a
//! sign, an `argmax`), which is the point: they are the networks that came before gradient
//! descent, or beside it.
//!
//! ```
//! use sinter_models::{HopfieldConfig, hopfield, param_count};
//! let g = hopfield(&HopfieldConfig::full()).unwrap();
//! assert_eq!(param_count(&g), 100 * 100);
//! assert!(g.find("s.next").is_some() && g.find("energy").is_some());
//! ```

use crate::BuildError;
use sinter_ir::{Builder, DType, Graph, Op, TensorType, Value};

/// A single threshold unit (Rosenblatt's perceptron).
#[derive(Clone, Debug, PartialEq)]
pub struct PerceptronConfig {
    /// Batch size.
    pub batch: usize,
    /// Inputs per sample.
    pub inputs: usize,
}

impl PerceptronConfig {
    /// Two inputs (a Boolean gate), the four rows of a truth table.
    pub fn small() -> PerceptronConfig {
        PerceptronConfig {
            batch: 4,
            inputs: 2,
        }
    }

    /// 64 inputs (an 8x8 digit against the rest), batch 64.
    pub fn full() -> PerceptronConfig {
        PerceptronConfig {
            batch: 64,
            inputs: 64,
        }
    }
}

fn gemm(trans_a: bool, trans_b: bool, alpha: f32) -> Op {
    Op::Gemm {
        trans_a,
        trans_b,
        alpha: alpha.into(),
        beta: 1.0.into(),
    }
}

/// The perceptron `o = step(x @ perceptron.w + perceptron.b)` with `step(z) = 1` where
/// `z > 0`, else 0 (`cast(greater(z, 0))`): inputs `x: f32[B, inputs]`, parameters
/// `perceptron.w: [inputs, 1]`, `perceptron.b: [1]`; outputs `o: f32[B, 1]` and the
/// pre-activation `z`.
pub fn perceptron(cfg: &PerceptronConfig) -> Result<Graph, BuildError> {
    if cfg.inputs == 0 || cfg.batch == 0 {
        return Err(BuildError::Config(
            "a perceptron needs inputs and a batch".into(),
        ));
    }
    let mut b = Builder::new("perceptron");
    let x = b.input("x", TensorType::f32(&[cfg.batch, cfg.inputs]))?;
    let w = b.param("perceptron.w", TensorType::f32(&[cfg.inputs, 1]))?;
    let bias = b.param("perceptron.b", TensorType::f32(&[1]))?;
    let z = b.named("z", gemm(false, false, 1.0), &[x, w, bias])?;
    let zero = b.scalar(0.0)?;
    let fired = b.op(Op::Greater {}, &[z, zero])?;
    let o = b.named("o", Op::Cast { to: DType::F32 }, &[fired])?;
    Ok(b.finish(&[o, z])?)
}

/// A Hopfield network of `units` binary (+1/-1) units.
#[derive(Clone, Debug, PartialEq)]
pub struct HopfieldConfig {
    /// States recalled at once.
    pub batch: usize,
    /// Units (`s: f32[batch, units]`).
    pub units: usize,
}

impl HopfieldConfig {
    /// 64 units (a binarised 8x8 digit), 4 states.
    pub fn small() -> HopfieldConfig {
        HopfieldConfig {
            batch: 4,
            units: 64,
        }
    }

    /// 100 units, the larger of Hopfield's (1982) simulations, 16 states.
    pub fn full() -> HopfieldConfig {
        HopfieldConfig {
            batch: 16,
            units: 100,
        }
    }
}

/// One synchronous recall step of the Hopfield network `cfg`: every unit takes the sign of
/// its field `h = s @ hopfield.w` (keeping its state where `h = 0`), giving `s.next`; the
/// output `energy: f32[B]` is `-1/2 s^T W s` of the state fed. Input `s: f32[B, N]` in
/// +1/-1, parameter `hopfield.w: [N, N]` (symmetric, zero diagonal when built by the Hebb
/// rule).
pub fn hopfield(cfg: &HopfieldConfig) -> Result<Graph, BuildError> {
    if cfg.units == 0 || cfg.batch == 0 {
        return Err(BuildError::Config(
            "a Hopfield network needs units and a batch".into(),
        ));
    }
    let mut b = Builder::new("hopfield");
    let s = b.input("s", TensorType::f32(&[cfg.batch, cfg.units]))?;
    let w = b.param("hopfield.w", TensorType::f32(&[cfg.units, cfg.units]))?;
    let h = b.named("field", Op::Matmul {}, &[s, w])?;
    let next = sign_keeping(&mut b, h, s, "s.next")?;
    let e = energy_of(&mut b, h, s, "energy")?;
    Ok(b.finish(&[next, e])?)
}

/// `sign(h)`, or `s` where `h = 0`, named `name`.
pub fn sign_keeping(b: &mut Builder, h: Value, s: Value, name: &str) -> Result<Value, BuildError> {
    let zero = b.scalar(0.0)?;
    let (one, minus) = (b.scalar(1.0)?, b.scalar(-1.0)?);
    let pos = b.op(Op::Greater {}, &[h, zero])?;
    let neg = b.op(Op::Less {}, &[h, zero])?;
    let low = b.op(Op::Select {}, &[neg, minus, s])?;
    Ok(b.named(name, Op::Select {}, &[pos, one, low])?)
}

/// `-1/2 sum_j h_j s_j` per row, with `h = s W` already computed: the Hopfield energy.
pub fn energy_of(b: &mut Builder, h: Value, s: Value, name: &str) -> Result<Value, BuildError> {
    let hs = b.mul(h, s)?;
    let sum = b.reduce_sum(hs, &[1], false)?;
    let half = b.scalar(-0.5)?;
    Ok(b.named(name, Op::Mul {}, &[sum, half])?)
}

/// A Kohonen self-organising map of `rows x cols` units over `inputs`-dimensional data.
#[derive(Clone, Debug, PartialEq)]
pub struct SomConfig {
    /// Batch size.
    pub batch: usize,
    /// Inputs per sample.
    pub inputs: usize,
    /// Rows of the map.
    pub rows: usize,
    /// Columns of the map.
    pub cols: usize,
}

impl SomConfig {
    /// A 4x4 map of 8x8 digits, batch 8.
    pub fn small() -> SomConfig {
        SomConfig {
            batch: 8,
            inputs: 64,
            rows: 4,
            cols: 4,
        }
    }

    /// A 10x10 map of 28x28 images (MNIST), batch 64.
    pub fn full() -> SomConfig {
        SomConfig {
            batch: 64,
            inputs: 784,
            rows: 10,
            cols: 10,
        }
    }
}

/// Squared distances `d: [B, U]` from every row of `x: [B, D]` to every row of `w: [U, D]`,
/// as `|x|^2 - 2 x w^T + |w|^2` (one `gemm`).
pub fn squared_distances(b: &mut Builder, x: Value, w: Value) -> Result<Value, BuildError> {
    let ww = b.mul(w, w)?;
    let wn = b.reduce_sum(ww, &[1], false)?;
    let xx = b.mul(x, x)?;
    let xn = b.reduce_sum(xx, &[1], true)?;
    let cross = b.op(gemm(false, true, -2.0), &[x, w, wn])?;
    Ok(b.add(cross, xn)?)
}

/// The map `cfg` applied to `x: f32[B, inputs]` with weights `som.w: [rows * cols, inputs]`
/// (unit `r * cols + c` at grid position `(r, c)`): outputs the best-matching unit `bmu:
/// i64[B]` (`argmin` of the Euclidean distances) and the quantisation error `qe: f32[]`,
/// the mean distance from a sample to its best-matching unit.
pub fn som(cfg: &SomConfig) -> Result<Graph, BuildError> {
    let units = cfg.rows * cfg.cols;
    if units == 0 || cfg.inputs == 0 || cfg.batch == 0 {
        return Err(BuildError::Config(
            "a self-organising map needs units, inputs and a batch".into(),
        ));
    }
    let mut b = Builder::new("som");
    let x = b.input("x", TensorType::f32(&[cfg.batch, cfg.inputs]))?;
    let w = b.param("som.w", TensorType::f32(&[units, cfg.inputs]))?;
    let (bmu, qe) = best_match(&mut b, x, w)?;
    Ok(b.finish(&[bmu, qe])?)
}

/// `(bmu, qe)` of [`som`] for `x` against the units `w`.
pub fn best_match(b: &mut Builder, x: Value, w: Value) -> Result<(Value, Value), BuildError> {
    let d = squared_distances(b, x, w)?;
    let nd = b.neg(d)?;
    let am = Op::Argmax {
        axis: 1,
        keepdims: false,
    };
    let bmu = b.named("bmu", am, &[nd])?;
    let best = Op::ReduceMax {
        axes: vec![1],
        keepdims: false,
    };
    let best = b.op(best, &[nd])?;
    let zero = b.scalar(0.0)?;
    let dmin = b.neg(best)?;
    let dmin = b.max(dmin, zero)?;
    let dist = b.sqrt(dmin)?;
    let mean = Op::ReduceMean {
        axes: vec![],
        keepdims: false,
    };
    let qe = b.named("qe", mean, &[dist])?;
    Ok((bmu, qe))
}

/// ART-1 (Carpenter and Grossberg, 1987) over binary inputs, with fast learning.
#[derive(Clone, Debug, PartialEq)]
pub struct Art1Config {
    /// Inputs classified at once (with fixed weights).
    pub batch: usize,
    /// Binary inputs per sample.
    pub inputs: usize,
    /// Category nodes, committed or not.
    pub categories: usize,
    /// The choice parameter `beta > 0` of `T_j = |I ^ w_j| / (beta + |w_j|)`.
    pub beta: f32,
}

impl Art1Config {
    /// 8x8 binary digits, 16 category nodes, batch 4.
    pub fn small() -> Art1Config {
        Art1Config {
            batch: 4,
            inputs: 64,
            categories: 16,
            beta: 0.5,
        }
    }

    /// 28x28 binary images, 256 category nodes, batch 64.
    pub fn full() -> Art1Config {
        Art1Config {
            batch: 64,
            inputs: 784,
            categories: 256,
            beta: 0.5,
        }
    }
}

/// ART-1's search, for inputs `x: f32[B, D]` in {0, 1}, prototypes `art.w: [C, D]` in {0, 1}
/// (an uncommitted node is all ones) and the vigilance `rho: f32[]`: outputs the resonating
/// category `category: i64[B]` and `resonance: f32[B]` (1 where some node passed the
/// vigilance test). See [`art1_choice`].
pub fn art1(cfg: &Art1Config) -> Result<Graph, BuildError> {
    if cfg.inputs == 0 || cfg.categories == 0 || cfg.batch == 0 || cfg.beta <= 0.0 {
        return Err(BuildError::Config(
            "ART-1 needs inputs, categories, a batch and beta > 0".into(),
        ));
    }
    let mut b = Builder::new("art1");
    let x = b.input("x", TensorType::f32(&[cfg.batch, cfg.inputs]))?;
    let w = b.param("art.w", TensorType::f32(&[cfg.categories, cfg.inputs]))?;
    let rho = b.input("rho", TensorType::f32(&[]))?;
    let (cat, res) = art1_choice(&mut b, x, w, rho, cfg.beta)?;
    Ok(b.finish(&[cat, res])?)
}

/// ART-1's category choice, vigilance test and reset, as one computation: the choice
/// function `T_j = |I ^ w_j| / (beta + |w_j|)` (for binary vectors `|I ^ w| = I . w`), the
/// match `|I ^ w_j| / |I|` against `rho`, and the search. The search tries nodes in order of
/// decreasing `T_j` and resets each that fails the vigilance test; since the weights do not
/// change during a search, the node it settles on is the one of largest `T_j` among those
/// that pass, which is what `argmax(select(pass, T, -1))` computes in one step. Returns
/// `(category: i64[B], resonance: f32[B])`.
pub fn art1_choice(
    b: &mut Builder,
    x: Value,
    w: Value,
    rho: Value,
    beta: f32,
) -> Result<(Value, Value), BuildError> {
    let m = b.op(gemm(false, true, 1.0), &[x, w])?;
    let wn = b.reduce_sum(w, &[1], false)?;
    let beta = b.scalar(beta)?;
    let den = b.add(wn, beta)?;
    let choice = b.div(m, den)?;
    let xn = b.reduce_sum(x, &[1], true)?;
    let ratio = b.div(m, xn)?;
    let pass = b.op(Op::GreaterEqual {}, &[ratio, rho])?;
    let minus = b.scalar(-1.0)?;
    let score = b.op(Op::Select {}, &[pass, choice, minus])?;
    let am = Op::Argmax {
        axis: 1,
        keepdims: false,
    };
    let cat = b.named("category", am, &[score])?;
    let best = Op::ReduceMax {
        axes: vec![1],
        keepdims: false,
    };
    let best = b.op(best, &[score])?;
    let zero = b.scalar(0.0)?;
    let ok = b.op(Op::GreaterEqual {}, &[best, zero])?;
    let res = b.named("resonance", Op::Cast { to: DType::F32 }, &[ok])?;
    Ok((cat, res))
}
