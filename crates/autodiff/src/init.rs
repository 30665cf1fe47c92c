//! Seeded parameter initialisation: He (Kaiming) and Xavier (Glorot), uniform and normal.
//!
//! Values are drawn from [`sinter_ir::rng`], the same counter-based generator the random ops
//! use, keyed by `(seed, counter)`: the same seed gives the same parameters on every machine,
//! and [`init_params`] gives each parameter its own counter (its position among the
//! parameters), so parameters never share a stream.
//!
//! Fans follow Sinter's layouts: a rank-2 weight is `[in, out]` (the `x @ w` of `matmul`
//! and `gemm`), a rank-4 convolution weight `[C_out, C_in/groups, kH, kW]` with
//! `fan_in = C_in/groups * kH * kW` and `fan_out = C_out * kH * kW`. (A `gemm {trans_b=true}`
//! weight stored `[out, in]` swaps the two; initialise it with [`init_tensor`] and the fans
//! you mean.)

use sinter_ir::{Graph, InputKind, NodeKind, Op, Tensor, TensorType, rng};
use std::collections::HashMap;

/// How to fill a parameter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// All zeros (biases, batch-norm `beta`).
    Zeros,
    /// All ones (batch-norm `gamma`).
    Ones,
    /// Uniform in `[low, high)`.
    Uniform {
        /// Lower bound.
        low: f32,
        /// Upper bound.
        high: f32,
    },
    /// Normal with the given mean and standard deviation.
    Normal {
        /// Mean.
        mean: f32,
        /// Standard deviation.
        std: f32,
    },
    /// He uniform: `U(-b, b)` with `b = sqrt(6 / fan_in)` (for ReLU networks).
    HeUniform,
    /// He normal: `N(0, 2 / fan_in)`.
    HeNormal,
    /// Xavier uniform: `U(-b, b)` with `b = sqrt(6 / (fan_in + fan_out))`.
    XavierUniform,
    /// Xavier normal: `N(0, 2 / (fan_in + fan_out))`.
    XavierNormal,
}

/// `(fan_in, fan_out)` of a weight of this shape (see the [module docs](self)); a vector or
/// scalar counts its elements for both.
pub fn fans(shape: &[usize]) -> (usize, usize) {
    match shape {
        [] => (1, 1),
        [n] => (*n, *n),
        [i, o] => (*i, *o),
        [o, i, rest @ ..] => {
            let k: usize = rest.iter().product();
            (i * k, o * k)
        }
    }
}

/// A tensor of type `ty` filled by `init` from the stream `(seed, counter)`.
pub fn init_tensor(ty: &TensorType, init: Init, seed: i64, counter: i64) -> Tensor {
    let n = ty.numel();
    let key = rng::key(seed, counter);
    let (fan_in, fan_out) = fans(&ty.shape);
    let uniform = |b: f32| -> Vec<f32> {
        (0..n as u64)
            .map(|i| -b + 2.0 * b * rng::uniform(key, i))
            .collect()
    };
    let normal = |mean: f32, std: f32| -> Vec<f32> {
        (0..n as u64)
            .map(|i| mean + std * rng::normal(key, i))
            .collect()
    };
    let data = match init {
        Init::Zeros => vec![0.0; n],
        Init::Ones => vec![1.0; n],
        Init::Uniform { low, high } => (0..n as u64)
            .map(|i| low + (high - low) * rng::uniform(key, i))
            .collect(),
        Init::Normal { mean, std } => normal(mean, std),
        Init::HeUniform => uniform((6.0 / fan_in.max(1) as f32).sqrt()),
        Init::HeNormal => normal(0.0, (2.0 / fan_in.max(1) as f32).sqrt()),
        Init::XavierUniform => uniform((6.0 / (fan_in + fan_out).max(1) as f32).sqrt()),
        Init::XavierNormal => normal(0.0, (2.0 / (fan_in + fan_out).max(1) as f32).sqrt()),
    };
    Tensor::from_f32(&ty.shape, data)
}

/// Initial values for every parameter of `graph`: weights (rank >= 2) by `weights`, the
/// `gamma` operands of batch norms ones, every other rank-0/1 parameter (biases, `beta`,
/// slopes) zeros. Parameter `i` (in graph order) draws from the stream `(seed, i)`.
pub fn init_params(graph: &Graph, weights: Init, seed: i64) -> HashMap<String, Tensor> {
    let mut gammas = Vec::new();
    for node in graph.nodes() {
        if let NodeKind::Op(Op::BatchNorm { .. } | Op::BatchNormTrain { .. }) = node.kind {
            gammas.push(node.inputs[1]);
        }
    }
    graph
        .inputs()
        .filter(|(_, k)| *k == InputKind::Param)
        .enumerate()
        .map(|(i, (v, _))| {
            let ty = graph.ty(v);
            let init = if gammas.contains(&v) {
                Init::Ones
            } else if ty.rank() >= 2 {
                weights
            } else {
                Init::Zeros
            };
            let name = graph.value_name(v).to_string();
            (name, init_tensor(ty, init, seed, i as i64))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn he_uniform_bounds_and_determinism() {
        let ty = TensorType::f32(&[64, 32]);
        let a = init_tensor(&ty, Init::HeUniform, 7, 0);
        let b = init_tensor(&ty, Init::HeUniform, 7, 0);
        assert_eq!(a, b);
        let bound = (6.0f32 / 64.0).sqrt();
        let v = a.as_f32().unwrap();
        assert!(v.iter().all(|x| x.abs() <= bound));
        let var = v.iter().map(|x| x * x).sum::<f32>() / v.len() as f32;
        // U(-b, b) has variance b^2 / 3 = 2 / fan_in.
        assert!((var - 2.0 / 64.0).abs() < 0.004, "{var}");
        assert_ne!(a, init_tensor(&ty, Init::HeUniform, 7, 1));
    }

    #[test]
    fn xavier_normal_variance_and_conv_fans() {
        assert_eq!(fans(&[16, 6, 3, 3]), (54, 144));
        let ty = TensorType::f32(&[100, 60]);
        let t = init_tensor(&ty, Init::XavierNormal, 1, 0);
        let v = t.as_f32().unwrap();
        let var = v.iter().map(|x| x * x).sum::<f32>() / v.len() as f32;
        assert!((var - 2.0 / 160.0).abs() < 0.001, "{var}");
    }
}
