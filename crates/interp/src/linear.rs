//! Matrix products: `matmul` (batched, broadcasting batch axes) and `gemm`.
//!
//! Plain triple loops with an f32 accumulator summed in increasing `k`, the order a tiled
//! kernel's results are compared against.

use crate::index::{broadcast_offsets, f32s};
use sinter_ir::{Tensor, TensorType};

/// `[.., M, K] x [.., K, N] -> [.., M, N]`; the batch axes broadcast to `out`'s.
pub(crate) fn matmul(a: &Tensor, b: &Tensor, out: &TensorType) -> Result<Vec<f32>, String> {
    let (av, bv) = (f32s(a)?, f32s(b)?);
    let (ar, br, or) = (a.shape().len(), b.shape().len(), out.shape.len());
    let (m, k) = (a.shape()[ar - 2], a.shape()[ar - 1]);
    let n = b.shape()[br - 1];
    let batch = &out.shape[..or - 2];
    // Which matrix of `a` and of `b` each output matrix reads.
    let a_mats = broadcast_offsets(&a.shape()[..ar - 2], batch);
    let b_mats = broadcast_offsets(&b.shape()[..br - 2], batch);
    let mut y = Vec::with_capacity(out.numel());
    for (&pa, &pb) in a_mats.iter().zip(&b_mats) {
        let a_mat = &av[pa * m * k..(pa + 1) * m * k];
        let b_mat = &bv[pb * k * n..(pb + 1) * k * n];
        for i in 0..m {
            for j in 0..n {
                let mut acc = 0.0f32;
                for kk in 0..k {
                    acc += a_mat[i * k + kk] * b_mat[kk * n + j];
                }
                y.push(acc);
            }
        }
    }
    Ok(y)
}

/// `alpha * op(A) op(B) + beta * C`, `op` transposing when asked; `C` broadcasts to `[M, N]`.
pub(crate) fn gemm(
    a: &Tensor,
    b: &Tensor,
    c: Option<&Tensor>,
    out: &TensorType,
    (trans_a, trans_b): (bool, bool),
    (alpha, beta): (f32, f32),
) -> Result<Vec<f32>, String> {
    let (av, bv) = (f32s(a)?, f32s(b)?);
    let (m, n) = (out.shape[0], out.shape[1]);
    let k = if trans_a { a.shape()[0] } else { a.shape()[1] };
    // Element (i, kk) of op(A) and (kk, j) of op(B).
    let op_a = |i: usize, kk: usize| {
        if trans_a {
            av[kk * m + i]
        } else {
            av[i * k + kk]
        }
    };
    let op_b = |kk: usize, j: usize| {
        if trans_b {
            bv[j * k + kk]
        } else {
            bv[kk * n + j]
        }
    };
    let c = match c {
        Some(c) => Some((f32s(c)?, broadcast_offsets(c.shape(), &out.shape))),
        None => None,
    };
    let mut y = Vec::with_capacity(m * n);
    for i in 0..m {
        for j in 0..n {
            let mut acc = 0.0f32;
            for kk in 0..k {
                acc += op_a(i, kk) * op_b(kk, j);
            }
            let v = match &c {
                Some((cv, offsets)) => alpha * acc + beta * cv[offsets[i * n + j]],
                None => alpha * acc,
            };
            y.push(v);
        }
    }
    Ok(y)
}
