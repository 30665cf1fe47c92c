//! Random ops, drawn from [`sinter_ir::rng`] exactly as the op table defines them.
//!
//! Element `i` (the flat row-major index) of every random op uses the stream
//! `rng::key(seed, counter)`, where `counter` is the op's optional i64 scalar input (0 when
//! absent). Compiled kernels must reproduce these bits exactly.

use crate::index::{f32s, i64s};
use sinter_ir::Tensor;
use sinter_ir::rng;

/// The stream key of an op with attribute `seed` and optional counter input.
pub(crate) fn stream(seed: i64, counter: Option<&Tensor>) -> Result<u64, String> {
    let counter = match counter {
        Some(t) => *i64s(t)?.first().ok_or("the counter input is empty")?,
        None => 0,
    };
    Ok(rng::key(seed, counter))
}

/// Inverted dropout: keeps element `i` iff `uniform(key, i) >= p`, scaling it by `1 / (1 - p)`.
pub(crate) fn dropout(x: &Tensor, p: f32, key: u64) -> Result<Vec<f32>, String> {
    let scale = 1.0 / (1.0 - p);
    let y = f32s(x)?
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            if rng::uniform(key, i as u64) >= p {
                v * scale
            } else {
                0.0
            }
        })
        .collect();
    Ok(y)
}

/// `n` elements `low + (high - low) * uniform(key, i)`.
pub(crate) fn random_uniform(n: usize, low: f32, high: f32, key: u64) -> Vec<f32> {
    (0..n)
        .map(|i| low + (high - low) * rng::uniform(key, i as u64))
        .collect()
}

/// `n` elements `mean + std * normal(key, i)`.
pub(crate) fn random_normal(n: usize, mean: f32, std: f32, key: u64) -> Vec<f32> {
    (0..n)
        .map(|i| mean + std * rng::normal(key, i as u64))
        .collect()
}

/// 1.0 where `uniform(key, i) < p[i]`, else 0.0.
pub(crate) fn bernoulli(p: &Tensor, key: u64) -> Result<Vec<f32>, String> {
    let y = f32s(p)?
        .iter()
        .enumerate()
        .map(|(i, &pi)| {
            if rng::uniform(key, i as u64) < pi {
                1.0
            } else {
                0.0
            }
        })
        .collect();
    Ok(y)
}
