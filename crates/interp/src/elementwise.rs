//! Elementwise ops: unary math, broadcasting binary ops, comparisons, `select` and `cast`.
//!
//! Every broadcasting op goes through [`zip_broadcast`], which reads each operand at the
//! offsets [`broadcast_offsets`] gives, so numpy broadcasting is implemented exactly once.

use crate::index::{bools, broadcast_offsets, choose, f32s};
use sinter_ir::{DType, Tensor, TensorData, TensorType};

/// `f(x)` for every element of an f32 tensor.
pub(crate) fn unary(x: &Tensor, f: impl Fn(f32) -> f32) -> Result<TensorData, String> {
    Ok(TensorData::F32(f32s(x)?.iter().map(|&v| f(v)).collect()))
}

/// `f(a, b)` over the broadcast shape `out_shape`, in row-major output order.
pub(crate) fn zip_broadcast<A: Copy, B: Copy, O>(
    (a, a_shape): (&[A], &[usize]),
    (b, b_shape): (&[B], &[usize]),
    out_shape: &[usize],
    f: impl Fn(A, B) -> O,
) -> Vec<O> {
    let ia = broadcast_offsets(a_shape, out_shape);
    let ib = broadcast_offsets(b_shape, out_shape);
    ia.iter().zip(&ib).map(|(&i, &j)| f(a[i], b[j])).collect()
}

/// A broadcasting f32 binary op.
pub(crate) fn binary(
    a: &Tensor,
    b: &Tensor,
    out: &TensorType,
    f: impl Fn(f32, f32) -> f32,
) -> Result<TensorData, String> {
    let v = zip_broadcast((f32s(a)?, a.shape()), (f32s(b)?, b.shape()), &out.shape, f);
    Ok(TensorData::F32(v))
}

/// Maximum that is NaN when either operand is NaN (unlike [`f32::max`]).
pub(crate) fn max_nan(a: f32, b: f32) -> f32 {
    if a.is_nan() || b.is_nan() {
        f32::NAN
    } else if a >= b {
        a
    } else {
        b
    }
}

/// Minimum that is NaN when either operand is NaN (unlike [`f32::min`]).
pub(crate) fn min_nan(a: f32, b: f32) -> f32 {
    if a.is_nan() || b.is_nan() {
        f32::NAN
    } else if a <= b {
        a
    } else {
        b
    }
}

/// Which comparison a compare op makes.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Cmp {
    /// `a == b`.
    Eq,
    /// `a < b`.
    Lt,
    /// `a <= b`.
    Le,
    /// `a > b`.
    Gt,
    /// `a >= b`.
    Ge,
}

impl Cmp {
    fn apply<T: PartialOrd>(self, a: T, b: T) -> bool {
        match self {
            Cmp::Eq => a == b,
            Cmp::Lt => a < b,
            Cmp::Le => a <= b,
            Cmp::Gt => a > b,
            Cmp::Ge => a >= b,
        }
    }
}

/// A broadcasting comparison of two f32 or two i64 tensors (IEEE: any comparison with NaN
/// is false).
pub(crate) fn compare(
    a: &Tensor,
    b: &Tensor,
    out: &TensorType,
    cmp: Cmp,
) -> Result<TensorData, String> {
    let v = match (a.data(), b.data()) {
        (TensorData::F32(x), TensorData::F32(y)) => {
            zip_broadcast((x, a.shape()), (y, b.shape()), &out.shape, |p, q| {
                cmp.apply(p, q)
            })
        }
        (TensorData::I64(x), TensorData::I64(y)) => {
            zip_broadcast((x, a.shape()), (y, b.shape()), &out.shape, |p, q| {
                cmp.apply(p, q)
            })
        }
        _ => {
            return Err(format!(
                "compares two f32 or two i64 tensors, got {} and {}",
                a.ty(),
                b.ty()
            ));
        }
    };
    Ok(TensorData::Bool(v))
}

/// `cond ? a : b` with all three broadcast to `out`; any branch dtype.
pub(crate) fn select(
    cond: &Tensor,
    a: &Tensor,
    b: &Tensor,
    out: &TensorType,
) -> Result<TensorData, String> {
    let ic = broadcast_offsets(cond.shape(), &out.shape);
    let ia = broadcast_offsets(a.shape(), &out.shape);
    let ib = broadcast_offsets(b.shape(), &out.shape);
    choose(bools(cond)?, &ic, (a.data(), &ia), (b.data(), &ib))
}

/// Converts the element type. f32 -> i64 truncates toward zero (Rust `as`: saturating at the
/// i64 range, NaN gives 0); bool -> number gives 0 or 1; number -> bool is `x != 0` (so NaN
/// is true).
pub(crate) fn cast(x: &Tensor, to: DType) -> TensorData {
    match (x.data(), to) {
        (TensorData::F32(v), DType::F32) => TensorData::F32(v.clone()),
        (TensorData::F32(v), DType::I64) => TensorData::I64(v.iter().map(|&e| e as i64).collect()),
        (TensorData::F32(v), DType::Bool) => {
            TensorData::Bool(v.iter().map(|&e| e != 0.0).collect())
        }
        (TensorData::I64(v), DType::F32) => TensorData::F32(v.iter().map(|&e| e as f32).collect()),
        (TensorData::I64(v), DType::I64) => TensorData::I64(v.clone()),
        (TensorData::I64(v), DType::Bool) => TensorData::Bool(v.iter().map(|&e| e != 0).collect()),
        (TensorData::Bool(v), DType::F32) => {
            TensorData::F32(v.iter().map(|&e| if e { 1.0 } else { 0.0 }).collect())
        }
        (TensorData::Bool(v), DType::I64) => {
            TensorData::I64(v.iter().map(|&e| i64::from(e)).collect())
        }
        (TensorData::Bool(v), DType::Bool) => TensorData::Bool(v.clone()),
    }
}
