//! Reductions over axes (`reduce_sum`, `reduce_mean`, `reduce_max`) and `argmax`.
//!
//! A reduction walks the input in row-major order and folds each element into the output
//! element it belongs to, so every output accumulates its inputs in increasing index order.

use crate::elementwise::max_nan;
use crate::index::{f32s, numel, split_at_axis, strided_offsets};
use sinter_ir::types::strides;
use sinter_ir::{Tensor, TensorData};

/// Which reduction.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Reduce {
    /// Sum.
    Sum,
    /// Sum divided by the number of reduced elements.
    Mean,
    /// Maximum (NaN if any element is NaN).
    Max,
}

/// Reduces `x` over the (normalised, distinct) `axes`; empty `axes` means every axis. The
/// output layout is the same with or without `keepdims`.
pub(crate) fn reduce(x: &Tensor, axes: &[usize], how: Reduce) -> Result<Vec<f32>, String> {
    let xv = f32s(x)?;
    let shape = x.shape();
    let reduced = |k: usize| axes.is_empty() || axes.contains(&k);
    // The output as the input's shape with reduced axes collapsed to 1; its strides, with 0
    // on reduced axes, map each input element to its output element.
    let kept: Vec<usize> = (0..shape.len())
        .map(|k| if reduced(k) { 1 } else { shape[k] })
        .collect();
    let mut st = strides(&kept);
    for (k, s) in st.iter_mut().enumerate() {
        if reduced(k) {
            *s = 0;
        }
    }
    let init = match how {
        Reduce::Sum | Reduce::Mean => 0.0,
        Reduce::Max => f32::NEG_INFINITY,
    };
    let mut y = vec![init; numel(&kept)];
    for (&v, o) in xv.iter().zip(strided_offsets(shape, &st, 0)) {
        y[o] = match how {
            Reduce::Sum | Reduce::Mean => y[o] + v,
            Reduce::Max => max_nan(y[o], v),
        };
    }
    if let Reduce::Mean = how {
        let count: usize = (0..shape.len())
            .filter(|&k| reduced(k))
            .map(|k| shape[k])
            .product();
        for v in &mut y {
            *v /= count as f32;
        }
    }
    Ok(y)
}

/// Index of the first maximum along `axis` (normalised). For f32 a NaN counts as larger than
/// every number, so the first NaN wins (as in NumPy).
pub(crate) fn argmax(x: &Tensor, axis: usize) -> Result<Vec<i64>, String> {
    fn first_max<T: Copy>(
        v: &[T],
        shape: &[usize],
        axis: usize,
        beats: impl Fn(T, T) -> bool,
    ) -> Vec<i64> {
        let (outer, d, inner) = split_at_axis(shape, axis);
        let mut y = Vec::with_capacity(outer * inner);
        for o in 0..outer {
            for i in 0..inner {
                let at = |j: usize| v[(o * d + j) * inner + i];
                let mut best = 0;
                for j in 1..d {
                    if beats(at(j), at(best)) {
                        best = j;
                    }
                }
                y.push(best as i64);
            }
        }
        y
    }
    match x.data() {
        TensorData::F32(v) => Ok(first_max(v, x.shape(), axis, |a: f32, b: f32| {
            !b.is_nan() && (a.is_nan() || a > b)
        })),
        TensorData::I64(v) => Ok(first_max(v, x.shape(), axis, |a: i64, b: i64| a > b)),
        TensorData::Bool(_) => Err(format!("argmax needs f32 or i64, got {}", x.ty())),
    }
}
