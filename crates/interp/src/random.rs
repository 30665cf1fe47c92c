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

/// `stochastic_pool2d {kernel=k}` of NCHW `x` with stream `key`, evaluated directly (not
/// through its expansion, so that the expansion the other stages run is checked against an
/// independent implementation). Window `(n, c, i, j)` lists its elements row by row, element
/// `e` at flat draw index `w * k*k + e` where `w` is the window's row-major index; each step
/// is the expansion's `f32` operation in the expansion's order, so the results agree bit for
/// bit: `p = x / s` (`s` the window sum, or 1 where it is not positive), score
/// `ln p - ln(-ln u)` with `u = MIN_POSITIVE + (1 - MIN_POSITIVE) * uniform`, the first
/// maximum (NaN beats everything, as in `argmax`), then `sum_e onehot_e * x_e`.
pub(crate) fn stochastic_pool(x: &Tensor, k: usize, key: u64) -> Result<Vec<f32>, String> {
    let xv = f32s(x)?;
    let &[n, c, h, w] = x.shape() else {
        return Err(format!("input {} is not NCHW", x.ty()));
    };
    if k == 0 || h % k != 0 || w % k != 0 {
        return Err(format!("kernel {k} does not divide {h}x{w}"));
    }
    let (oh, ow, kk) = (h / k, w / k, k * k);
    let low = f32::MIN_POSITIVE;
    let mut y = Vec::with_capacity(n * c * oh * ow);
    let mut win = vec![0f32; kk];
    for plane in 0..n * c {
        for i in 0..oh {
            for j in 0..ow {
                for (e, slot) in win.iter_mut().enumerate() {
                    let (r, s) = (i * k + e / k, j * k + e % k);
                    *slot = xv[(plane * h + r) * w + s];
                }
                let sum = win.iter().fold(0.0f32, |a, &v| a + v);
                let safe = if sum > 0.0 { sum } else { 1.0 };
                let base = ((plane * oh + i) * ow + j) * kk;
                let mut best = 0;
                let mut best_score = f32::NAN;
                for (e, &v) in win.iter().enumerate() {
                    let u = low + (1.0 - low) * rng::uniform(key, (base + e) as u64);
                    let score = (v / safe).ln() - (-(u.ln())).ln();
                    if e == 0 || (!best_score.is_nan() && (score.is_nan() || score > best_score)) {
                        best = e;
                        best_score = score;
                    }
                }
                let out = win.iter().enumerate().fold(0.0f32, |a, (e, &v)| {
                    a + if e == best { 1.0 } else { 0.0 } * v
                });
                y.push(out);
            }
        }
    }
    Ok(y)
}
