//! Shape and data-movement ops (`transpose`, `broadcast`, `concat`, `split`, `slice`, `pad`)
//! and the indexing ops (`gather`, `one_hot`).
//!
//! Each movement op computes, for every output element, which input element it copies, and
//! hands that list to the dtype-generic helpers of [`crate::index`]; so every op works for
//! f32, i64 and bool alike. (`reshape` and `flatten` keep the row-major data as it is.)

use crate::index::{Segment, f32s, i64s, join, numel, split_at_axis, strided_offsets, take};
use sinter_ir::infer::slice_bounds;
use sinter_ir::types::strides;
use sinter_ir::{Tensor, TensorData, TensorType};

/// Output axis `i` is input axis `perm[i]` (normalised).
pub(crate) fn transpose(x: &Tensor, perm: &[usize]) -> TensorData {
    let in_strides = strides(x.shape());
    let out_shape: Vec<usize> = perm.iter().map(|&a| x.shape()[a]).collect();
    let st: Vec<usize> = perm.iter().map(|&a| in_strides[a]).collect();
    take(x.data(), &strided_offsets(&out_shape, &st, 0))
}

/// Numpy-broadcasts `x` to `out`'s shape.
pub(crate) fn broadcast(x: &Tensor, out: &TensorType) -> TensorData {
    take(
        x.data(),
        &crate::index::broadcast_offsets(x.shape(), &out.shape),
    )
}

/// Joins `parts` along `axis` (normalised): for each outer index, each part's block in turn.
pub(crate) fn concat(parts: &[&Tensor], axis: usize) -> Result<TensorData, String> {
    let (outer, _, inner) = split_at_axis(parts[0].shape(), axis);
    let mut segments: Vec<Segment> = Vec::new();
    for o in 0..outer {
        for (p, t) in parts.iter().enumerate() {
            let len = t.shape()[axis] * inner;
            segments.push((p, o * len, len));
        }
    }
    let datas: Vec<&TensorData> = parts.iter().map(|t| t.data()).collect();
    join(parts[0].dtype(), &datas, &segments)
}

/// Cuts `x` along `axis` (normalised) into consecutive pieces of the extents in `outs`.
pub(crate) fn split(x: &Tensor, axis: usize, outs: &[TensorType]) -> Vec<TensorData> {
    let st = strides(x.shape());
    let mut start = 0;
    let mut pieces = Vec::with_capacity(outs.len());
    for out in outs {
        pieces.push(take(
            x.data(),
            &strided_offsets(&out.shape, &st, start * st[axis]),
        ));
        start += out.shape[axis];
    }
    pieces
}

/// Numpy strided slice of `x` on the normalised `axes`, giving `out`'s shape.
pub(crate) fn slice(
    x: &Tensor,
    axes: &[usize],
    starts: &[i64],
    steps: &[i64],
    out: &TensorType,
) -> TensorData {
    let in_strides = strides(x.shape());
    let mut st: Vec<usize> = in_strides.to_vec();
    let mut offset = 0;
    for (i, &a) in axes.iter().enumerate() {
        // The end bound only sets the output extent, which `out` already has.
        let (start, _) = slice_bounds(starts[i], 0, x.shape()[a]);
        offset += start * in_strides[a];
        st[a] = in_strides[a] * steps[i] as usize;
    }
    take(x.data(), &strided_offsets(&out.shape, &st, offset))
}

/// Constant padding: `pads` holds every axis's before-pad, then every axis's after-pad.
pub(crate) fn pad(
    x: &Tensor,
    pads: &[i64],
    value: f32,
    out: &TensorType,
) -> Result<Vec<f32>, String> {
    let xv = f32s(x)?;
    let out_strides = strides(&out.shape);
    let offset: usize = (0..x.shape().len())
        .map(|k| pads[k] as usize * out_strides[k])
        .sum();
    let mut y = vec![value; out.numel()];
    for (&v, o) in xv
        .iter()
        .zip(strided_offsets(x.shape(), &out_strides, offset))
    {
        y[o] = v;
    }
    Ok(y)
}

/// Slices of `data` along `axis` (normalised) at `indices`; negative indices count from the
/// end, and an index outside the axis is an error naming it and the extent.
pub(crate) fn gather(data: &Tensor, indices: &Tensor, axis: usize) -> Result<TensorData, String> {
    let (outer, extent, inner) = split_at_axis(data.shape(), axis);
    let mut rows = Vec::with_capacity(indices.numel());
    for (pos, &i) in i64s(indices)?.iter().enumerate() {
        let row = if i < 0 { i + extent as i64 } else { i };
        if row < 0 || row >= extent as i64 {
            return Err(format!(
                "gather index {i} (element {pos} of the indices) is out of range for axis {axis} of extent {extent}"
            ));
        }
        rows.push(row as usize);
    }
    let mut src = Vec::with_capacity(outer * rows.len() * inner);
    for o in 0..outer {
        for &row in &rows {
            for i in 0..inner {
                src.push((o * extent + row) * inner + i);
            }
        }
    }
    Ok(take(data.data(), &src))
}

/// The adjoint of [`gather`]: zeros of `out`'s shape, then each slice of `updates` added at
/// its index along `axis` (negative indices count from the end; repeats accumulate).
pub(crate) fn scatter_add(
    indices: &Tensor,
    updates: &Tensor,
    axis: usize,
    out: &TensorType,
) -> Result<Vec<f32>, String> {
    let (outer, extent, inner) = split_at_axis(&out.shape, axis);
    let uv = f32s(updates)?;
    let iv = i64s(indices)?;
    let mut y = vec![0.0f32; out.numel()];
    for (pos, &i) in iv.iter().enumerate() {
        let row = if i < 0 { i + extent as i64 } else { i };
        if row < 0 || row >= extent as i64 {
            return Err(format!(
                "scatter_add index {i} (element {pos} of the indices) is out of range for axis {axis} of extent {extent}"
            ));
        }
        for o in 0..outer {
            for k in 0..inner {
                y[(o * extent + row as usize) * inner + k] += uv[(o * iv.len() + pos) * inner + k];
            }
        }
    }
    Ok(y)
}

/// f32 one-hot rows of length `depth`; an index outside `0..depth` gives an all-zero row.
pub(crate) fn one_hot(indices: &Tensor, depth: usize) -> Result<Vec<f32>, String> {
    let iv = i64s(indices)?;
    let mut y = vec![0.0f32; numel(indices.shape()) * depth];
    for (r, &i) in iv.iter().enumerate() {
        if (0..depth as i64).contains(&i) {
            y[r * depth + i as usize] = 1.0;
        }
    }
    Ok(y)
}
