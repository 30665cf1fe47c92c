//! Normalisations: inference and training batch norm over axis 1, and softmax / log-softmax
//! along an axis.
//!
//! Batch statistics are the plain two-pass mean and biased variance, summed in f32 in
//! row-major order; softmax subtracts the maximum first so that it cannot overflow.

use crate::index::{f32s, split_at_axis};
use sinter_ir::Tensor;

/// `(batch, channels, inner)` of a tensor with channels on axis 1 (rank >= 2).
fn nc_inner(x: &Tensor) -> (usize, usize, usize) {
    split_at_axis(x.shape(), 1)
}

/// Inference batch norm: `(x - mean) / sqrt(var + eps) * gamma + beta` per channel.
pub(crate) fn batch_norm(ins: &[&Tensor], eps: f32) -> Result<Vec<f32>, String> {
    let xv = f32s(ins[0])?;
    let (gamma, beta, mean, var) = (f32s(ins[1])?, f32s(ins[2])?, f32s(ins[3])?, f32s(ins[4])?);
    Ok(normalize(ins[0], xv, (mean, var), (gamma, beta), eps))
}

/// `y` of batch norm given per-channel statistics and affine parameters.
fn normalize(
    x: &Tensor,
    xv: &[f32],
    (mean, var): (&[f32], &[f32]),
    (gamma, beta): (&[f32], &[f32]),
    eps: f32,
) -> Vec<f32> {
    let (n, c, inner) = nc_inner(x);
    let mut y = Vec::with_capacity(xv.len());
    for b in 0..n {
        for ch in 0..c {
            for i in 0..inner {
                let v = xv[(b * c + ch) * inner + i];
                y.push((v - mean[ch]) / (var[ch] + eps).sqrt() * gamma[ch] + beta[ch]);
            }
        }
    }
    y
}

/// Training batch norm: normalises with the batch mean and biased variance over every axis
/// but 1, and returns `[y, mean, var]`.
pub(crate) fn batch_norm_train(ins: &[&Tensor], eps: f32) -> Result<[Vec<f32>; 3], String> {
    let x = ins[0];
    let xv = f32s(x)?;
    let (gamma, beta) = (f32s(ins[1])?, f32s(ins[2])?);
    let (n, c, inner) = nc_inner(x);
    let count = (n * inner) as f32;
    let mut mean = Vec::with_capacity(c);
    let mut var = Vec::with_capacity(c);
    for ch in 0..c {
        let mut sum = 0.0f32;
        for b in 0..n {
            for i in 0..inner {
                sum += xv[(b * c + ch) * inner + i];
            }
        }
        let m = sum / count;
        let mut sq = 0.0f32;
        for b in 0..n {
            for i in 0..inner {
                let d = xv[(b * c + ch) * inner + i] - m;
                sq += d * d;
            }
        }
        mean.push(m);
        var.push(sq / count);
    }
    let y = normalize(x, xv, (&mean, &var), (gamma, beta), eps);
    Ok([y, mean, var])
}

/// Softmax (or log-softmax when `log`) of `x` along `axis` (already normalised).
pub(crate) fn softmax(x: &Tensor, axis: usize, log: bool) -> Result<Vec<f32>, String> {
    let xv = f32s(x)?;
    let (outer, d, inner) = split_at_axis(x.shape(), axis);
    let mut y = vec![0.0f32; xv.len()];
    for o in 0..outer {
        for i in 0..inner {
            let at = |j: usize| (o * d + j) * inner + i;
            let mut max = f32::NEG_INFINITY;
            for j in 0..d {
                if xv[at(j)] > max {
                    max = xv[at(j)];
                }
            }
            let mut sum = 0.0f32;
            for j in 0..d {
                sum += (xv[at(j)] - max).exp();
            }
            for j in 0..d {
                y[at(j)] = if log {
                    xv[at(j)] - max - sum.ln()
                } else {
                    (xv[at(j)] - max).exp() / sum
                };
            }
        }
    }
    Ok(y)
}
