//! Index arithmetic and dtype-generic element movement shared by the op implementations.
//!
//! Most data-movement ops (transpose, broadcast, slice, split, gather) are "output element `j`
//! is input element `src[j]`" for some list of source offsets; so are the operand reads of
//! broadcasting elementwise ops. This module computes those offset lists once, in one obvious
//! way ([`strided_offsets`]), and moves elements of any dtype along them ([`take`], [`join`],
//! [`choose`]), so each op is written once instead of once per element type.

use sinter_ir::types::strides;
use sinter_ir::{DType, Tensor, TensorData};

/// Product of extents (1 for a scalar).
pub(crate) fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// For each position of `shape` in row-major order, `offset + sum(index[k] * strides[k])`.
///
/// With the row-major strides of the same shape this is `0, 1, 2, ...`; with other strides it
/// walks a permuted, strided or broadcast (stride 0) view of some buffer.
pub(crate) fn strided_offsets(shape: &[usize], strides: &[usize], offset: usize) -> Vec<usize> {
    let n = numel(shape);
    let mut out = Vec::with_capacity(n);
    let mut index = vec![0usize; shape.len()];
    let mut pos = offset;
    for _ in 0..n {
        out.push(pos);
        // Odometer increment of `index`, keeping `pos` in step.
        for k in (0..shape.len()).rev() {
            index[k] += 1;
            pos += strides[k];
            if index[k] < shape[k] {
                break;
            }
            pos -= strides[k] * shape[k];
            index[k] = 0;
        }
    }
    out
}

/// For each element of `out_shape` (row-major), the offset of the element of a tensor of
/// shape `in_shape` that numpy broadcasting reads there. `in_shape` must broadcast to
/// `out_shape` (axes aligned at the right; extent-1 axes repeat).
pub(crate) fn broadcast_offsets(in_shape: &[usize], out_shape: &[usize]) -> Vec<usize> {
    let in_strides = strides(in_shape);
    let lead = out_shape.len() - in_shape.len();
    let mut st = vec![0usize; out_shape.len()];
    for (k, &d) in in_shape.iter().enumerate() {
        st[lead + k] = if d == 1 { 0 } else { in_strides[k] };
    }
    strided_offsets(out_shape, &st, 0)
}

/// Splits `shape` around `axis` into `(outer, extent, inner)`: the products of the extents
/// before the axis, the axis's own extent, and the extents after it.
pub(crate) fn split_at_axis(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    (
        numel(&shape[..axis]),
        shape[axis],
        numel(&shape[axis + 1..]),
    )
}

/// The four extents of a rank-4 (NCHW or weight) shape.
pub(crate) fn dims4(shape: &[usize]) -> Result<[usize; 4], String> {
    match shape {
        &[a, b, c, d] => Ok([a, b, c, d]),
        _ => Err(format!(
            "expected a rank-4 shape, got {}",
            sinter_ir::types::ShapeDisplay(shape)
        )),
    }
}

/// Row-major offset of `[a, b, c, d]` in a rank-4 tensor of extents `dims`.
pub(crate) fn at4(dims: [usize; 4], [a, b, c, d]: [usize; 4]) -> usize {
    ((a * dims[1] + b) * dims[2] + c) * dims[3] + d
}

/// The `f32` elements of `t`, or an error naming its type.
pub(crate) fn f32s(t: &Tensor) -> Result<&[f32], String> {
    t.as_f32()
        .ok_or_else(|| format!("expected an f32 tensor, got {}", t.ty()))
}

/// The `i64` elements of `t`, or an error naming its type.
pub(crate) fn i64s(t: &Tensor) -> Result<&[i64], String> {
    t.as_i64()
        .ok_or_else(|| format!("expected an i64 tensor, got {}", t.ty()))
}

/// The `bool` elements of `t`, or an error naming its type.
pub(crate) fn bools(t: &Tensor) -> Result<&[bool], String> {
    t.as_bool()
        .ok_or_else(|| format!("expected a bool tensor, got {}", t.ty()))
}

/// An element type of [`TensorData`], so movement code can be generic over the dtype.
pub(crate) trait Elem: Copy {
    /// The elements, if `data` holds this type.
    fn slice(data: &TensorData) -> Option<&[Self]>;
    /// Wraps elements of this type as storage.
    fn wrap(v: Vec<Self>) -> TensorData;
}

impl Elem for f32 {
    fn slice(data: &TensorData) -> Option<&[f32]> {
        match data {
            TensorData::F32(v) => Some(v),
            _ => None,
        }
    }
    fn wrap(v: Vec<f32>) -> TensorData {
        TensorData::F32(v)
    }
}

impl Elem for i64 {
    fn slice(data: &TensorData) -> Option<&[i64]> {
        match data {
            TensorData::I64(v) => Some(v),
            _ => None,
        }
    }
    fn wrap(v: Vec<i64>) -> TensorData {
        TensorData::I64(v)
    }
}

impl Elem for bool {
    fn slice(data: &TensorData) -> Option<&[bool]> {
        match data {
            TensorData::Bool(v) => Some(v),
            _ => None,
        }
    }
    fn wrap(v: Vec<bool>) -> TensorData {
        TensorData::Bool(v)
    }
}

/// Output element `j` is `data[src[j]]`, for any dtype.
pub(crate) fn take(data: &TensorData, src: &[usize]) -> TensorData {
    fn pick<T: Elem>(v: &[T], src: &[usize]) -> TensorData {
        T::wrap(src.iter().map(|&i| v[i]).collect())
    }
    match data {
        TensorData::F32(v) => pick(v, src),
        TensorData::I64(v) => pick(v, src),
        TensorData::Bool(v) => pick(v, src),
    }
}

/// A run of elements to copy: `(part, start, len)` copies `parts[part][start..start + len]`.
pub(crate) type Segment = (usize, usize, usize);

/// Concatenates runs of several same-dtype buffers, in the order of `segments`.
pub(crate) fn join(
    dtype: DType,
    parts: &[&TensorData],
    segments: &[Segment],
) -> Result<TensorData, String> {
    fn join_as<T: Elem>(parts: &[&TensorData], segments: &[Segment]) -> Result<TensorData, String> {
        let mut out = Vec::new();
        for &(part, start, len) in segments {
            let v =
                T::slice(parts[part]).ok_or_else(|| format!("input {part} has another dtype"))?;
            out.extend_from_slice(&v[start..start + len]);
        }
        Ok(T::wrap(out))
    }
    match dtype {
        DType::F32 => join_as::<f32>(parts, segments),
        DType::I64 => join_as::<i64>(parts, segments),
        DType::Bool => join_as::<bool>(parts, segments),
    }
}

/// Output element `j` is `a[a_src[j]]` where `cond[cond_src[j]]`, else `b[b_src[j]]`; `a` and
/// `b` have the same (any) dtype.
pub(crate) fn choose(
    cond: &[bool],
    cond_src: &[usize],
    (a, a_src): (&TensorData, &[usize]),
    (b, b_src): (&TensorData, &[usize]),
) -> Result<TensorData, String> {
    fn choose_as<T: Elem>(
        cond: &[bool],
        cond_src: &[usize],
        (a, a_src): (&[T], &[usize]),
        (b, b_src): (&[T], &[usize]),
    ) -> TensorData {
        let out = (0..cond_src.len())
            .map(|j| {
                if cond[cond_src[j]] {
                    a[a_src[j]]
                } else {
                    b[b_src[j]]
                }
            })
            .collect();
        T::wrap(out)
    }
    match (a, b) {
        (TensorData::F32(a), TensorData::F32(b)) => {
            Ok(choose_as(cond, cond_src, (a, a_src), (b, b_src)))
        }
        (TensorData::I64(a), TensorData::I64(b)) => {
            Ok(choose_as(cond, cond_src, (a, a_src), (b, b_src)))
        }
        (TensorData::Bool(a), TensorData::Bool(b)) => {
            Ok(choose_as(cond, cond_src, (a, a_src), (b, b_src)))
        }
        _ => Err(format!(
            "select branches have different dtypes: {} and {}",
            a.dtype(),
            b.dtype()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets() {
        assert_eq!(strided_offsets(&[2, 3], &[3, 1], 0), vec![0, 1, 2, 3, 4, 5]);
        // Transposed view of a [3, 2] buffer.
        assert_eq!(strided_offsets(&[2, 3], &[1, 2], 0), vec![0, 2, 4, 1, 3, 5]);
        assert_eq!(strided_offsets(&[], &[], 7), vec![7]);
        assert!(strided_offsets(&[2, 0, 3], &[0, 3, 1], 0).is_empty());
        assert_eq!(
            broadcast_offsets(&[3, 1], &[2, 3, 2]),
            vec![0, 0, 1, 1, 2, 2, 0, 0, 1, 1, 2, 2]
        );
        assert_eq!(broadcast_offsets(&[], &[2]), vec![0, 0]);
        assert_eq!(split_at_axis(&[2, 3, 4], 1), (2, 3, 4));
    }
}
