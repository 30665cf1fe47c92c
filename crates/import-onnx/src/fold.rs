//! Import-time evaluation of ops on known tensors.
//!
//! Exporters compute shapes inside the graph (`Shape`, `Gather`, `Unsqueeze`, `Concat`,
//! arithmetic on `i64`), and Sinter graphs have static shapes and `f32`-only arithmetic, so
//! those chains must be evaluated here rather than emitted. Only the movement and arithmetic
//! ops such chains use are folded; every function is dtype-generic where ONNX allows it and
//! refuses results above [`MAX_FOLD_ELEMENTS`].

use crate::tensor::MAX_FOLD_ELEMENTS;
use sinter_ir::{DType, Tensor, TensorData};

/// Row-major strides.
fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

fn numel(shape: &[usize]) -> Result<usize, String> {
    shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&n| n <= MAX_FOLD_ELEMENTS)
        .ok_or_else(|| format!("a folded tensor of shape {shape:?} would be too large"))
}

/// For every multi-index of `shape` in row-major order, `f` gives a flat source index.
fn source_indices(shape: &[usize], f: impl Fn(&[usize]) -> usize) -> Result<Vec<usize>, String> {
    let n = numel(shape)?;
    let mut idx = vec![0usize; shape.len()];
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(f(&idx));
        for a in (0..shape.len()).rev() {
            idx[a] += 1;
            if idx[a] < shape[a] {
                break;
            }
            idx[a] = 0;
        }
    }
    Ok(out)
}

/// A tensor of `shape` whose elements are `t`'s at the flat indices `src`.
fn pick(t: &Tensor, shape: &[usize], src: &[usize]) -> Result<Tensor, String> {
    let data = match t.data() {
        TensorData::F32(v) => TensorData::F32(src.iter().map(|&i| v[i]).collect()),
        TensorData::I64(v) => TensorData::I64(src.iter().map(|&i| v[i]).collect()),
        TensorData::Bool(v) => TensorData::Bool(src.iter().map(|&i| v[i]).collect()),
    };
    Tensor::new(shape, data).map_err(|e| e.to_string())
}

/// The same elements under a new shape.
pub fn reshape(t: &Tensor, shape: &[usize]) -> Result<Tensor, String> {
    t.reshaped(shape).map_err(|e| e.to_string())
}

/// Permutes axes (`perm[i]` is the input axis of output axis `i`).
pub fn transpose(t: &Tensor, perm: &[usize]) -> Result<Tensor, String> {
    let st = strides(t.shape());
    let shape: Vec<usize> = perm.iter().map(|&p| t.shape()[p]).collect();
    let src = source_indices(&shape, |ix| {
        ix.iter().zip(perm).map(|(&i, &p)| i * st[p]).sum()
    })?;
    pick(t, &shape, &src)
}

/// Joins tensors of one dtype along `axis` (already normalised).
pub fn concat(ts: &[&Tensor], axis: usize) -> Result<Tensor, String> {
    let first = ts.first().ok_or("concat of nothing")?;
    let mut shape = first.shape().to_vec();
    if axis >= shape.len() {
        return Err(format!("axis {axis} is out of range for {}", first.ty()));
    }
    for t in ts {
        let same_elsewhere = t.shape().len() == shape.len()
            && (0..shape.len()).all(|i| i == axis || t.shape()[i] == first.shape()[i]);
        if t.dtype() != first.dtype() || !same_elsewhere {
            return Err(format!("cannot concatenate {} and {}", first.ty(), t.ty()));
        }
    }
    shape[axis] = ts.iter().map(|t| t.shape()[axis]).sum();
    // Concatenate by flattening everything into one tensor of the first's dtype, then pick.
    let mut offsets = Vec::new();
    let mut all: Vec<Tensor> = Vec::new();
    let mut base = 0;
    for t in ts {
        offsets.push(base);
        base += t.numel();
        all.push((*t).clone());
    }
    let flat = match first.dtype() {
        DType::F32 => TensorData::F32(
            all.iter()
                .flat_map(|t| t.as_f32().unwrap_or(&[]).to_vec())
                .collect(),
        ),
        DType::I64 => TensorData::I64(
            all.iter()
                .flat_map(|t| t.as_i64().unwrap_or(&[]).to_vec())
                .collect(),
        ),
        DType::Bool => TensorData::Bool(
            all.iter()
                .flat_map(|t| t.as_bool().unwrap_or(&[]).to_vec())
                .collect(),
        ),
    };
    let flat = Tensor::new(&[base], flat).map_err(|e| e.to_string())?;
    let bounds: Vec<usize> = ts.iter().map(|t| t.shape()[axis]).collect();
    let sts: Vec<Vec<usize>> = ts.iter().map(|t| strides(t.shape())).collect();
    let src = source_indices(&shape, |ix| {
        let mut k = 0;
        let mut i = ix[axis];
        while i >= bounds[k] {
            i -= bounds[k];
            k += 1;
        }
        let mut off = offsets[k];
        for (a, &v) in ix.iter().enumerate() {
            off += if a == axis { i } else { v } * sts[k][a];
        }
        off
    })?;
    pick(&flat, &shape, &src)
}

/// `data` gathered along `axis` at `indices` (negative ones count from the end).
pub fn gather(data: &Tensor, indices: &Tensor, axis: usize) -> Result<Tensor, String> {
    let idx = indices.as_i64().ok_or("gather indices must be integers")?;
    let d = data.shape()[axis] as i64;
    let mut norm = Vec::with_capacity(idx.len());
    for &i in idx {
        let j = if i < 0 { i + d } else { i };
        if !(0..d).contains(&j) {
            return Err(format!("gather index {i} is out of range for extent {d}"));
        }
        norm.push(j as usize);
    }
    let ds = data.shape();
    let mut shape = ds[..axis].to_vec();
    shape.extend_from_slice(indices.shape());
    shape.extend_from_slice(&ds[axis + 1..]);
    let st = strides(ds);
    let ist = strides(indices.shape());
    let r = indices.shape().len();
    let src = source_indices(&shape, |ix| {
        let q: usize = ix[axis..axis + r]
            .iter()
            .zip(&ist)
            .map(|(a, b)| a * b)
            .sum();
        let mut off = norm[q] * st[axis];
        for a in 0..axis {
            off += ix[a] * st[a];
        }
        for a in axis + 1..ds.len() {
            off += ix[a + r - 1] * st[a];
        }
        off
    })?;
    pick(data, &shape, &src)
}

/// Elements `start, start + step, ...` on each axis; `ranges[a] = (start, count, step)` with
/// a possibly negative step, already clamped.
pub fn slice(t: &Tensor, ranges: &[(i64, usize, i64)]) -> Result<Tensor, String> {
    let st = strides(t.shape());
    let shape: Vec<usize> = ranges.iter().map(|r| r.1).collect();
    let src = source_indices(&shape, |ix| {
        ix.iter()
            .zip(ranges)
            .zip(&st)
            .map(|((&i, &(s, _, step)), &stride)| (s + i as i64 * step) as usize * stride)
            .sum()
    })?;
    pick(t, &shape, &src)
}

/// Broadcast shape of two shapes, numpy rules.
pub fn broadcast_shape(a: &[usize], b: &[usize]) -> Result<Vec<usize>, String> {
    let r = a.len().max(b.len());
    let mut out = vec![0; r];
    for i in 0..r {
        let da = if i + a.len() >= r {
            a[i + a.len() - r]
        } else {
            1
        };
        let db = if i + b.len() >= r {
            b[i + b.len() - r]
        } else {
            1
        };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return Err(format!("shapes {a:?} and {b:?} do not broadcast")),
        };
    }
    Ok(out)
}

/// `t` broadcast to `shape` (which `t`'s shape must broadcast to).
pub fn broadcast_to(t: &Tensor, shape: &[usize]) -> Result<Tensor, String> {
    let r = shape.len();
    let ts = t.shape();
    let st = strides(ts);
    let off = r - ts.len();
    let src = source_indices(shape, |ix| {
        (0..ts.len())
            .map(|a| if ts[a] == 1 { 0 } else { ix[a + off] * st[a] })
            .sum()
    })?;
    pick(t, shape, &src)
}

/// Elementwise binary arithmetic with broadcasting, on two `i64` or two `f32` tensors.
pub fn binary(op: &str, a: &Tensor, b: &Tensor) -> Result<Tensor, String> {
    let shape = broadcast_shape(a.shape(), b.shape())?;
    let a = broadcast_to(a, &shape)?;
    let b = broadcast_to(b, &shape)?;
    let data = match (a.data(), b.data()) {
        (TensorData::I64(x), TensorData::I64(y)) => {
            let f = |p: i64, q: i64| -> Result<i64, String> {
                match op {
                    "Add" => Ok(p.wrapping_add(q)),
                    "Sub" => Ok(p.wrapping_sub(q)),
                    "Mul" => Ok(p.wrapping_mul(q)),
                    "Div" if q == 0 => Err("integer division by zero".into()),
                    "Div" => Ok(p.wrapping_div(q)),
                    "Max" => Ok(p.max(q)),
                    "Min" => Ok(p.min(q)),
                    _ => Err(format!("`{op}` on i64 tensors is not supported")),
                }
            };
            TensorData::I64(
                x.iter()
                    .zip(y)
                    .map(|(&p, &q)| f(p, q))
                    .collect::<Result<_, _>>()?,
            )
        }
        (TensorData::F32(x), TensorData::F32(y)) => {
            let f = |p: f32, q: f32| match op {
                "Add" => p + q,
                "Sub" => p - q,
                "Mul" => p * q,
                "Div" => p / q,
                "Pow" => p.powf(q),
                "Max" => {
                    if p.is_nan() || q.is_nan() {
                        f32::NAN
                    } else {
                        p.max(q)
                    }
                }
                _ => {
                    if p.is_nan() || q.is_nan() {
                        f32::NAN
                    } else {
                        p.min(q)
                    }
                }
            };
            TensorData::F32(x.iter().zip(y).map(|(&p, &q)| f(p, q)).collect())
        }
        _ => {
            return Err(format!(
                "`{op}` of {} and {}: dtypes differ or are not numbers",
                a.ty(),
                b.ty()
            ));
        }
    };
    Tensor::new(&shape, data).map_err(|e| e.to_string())
}

/// Converts the element type, as Sinter's `cast` does.
pub fn cast(t: &Tensor, to: DType) -> Tensor {
    let data = match (t.data(), to) {
        (d, to) if d.dtype() == to => d.clone(),
        (TensorData::F32(v), DType::I64) => TensorData::I64(v.iter().map(|&x| x as i64).collect()),
        (TensorData::F32(v), _) => TensorData::Bool(v.iter().map(|&x| x != 0.0).collect()),
        (TensorData::I64(v), DType::F32) => TensorData::F32(v.iter().map(|&x| x as f32).collect()),
        (TensorData::I64(v), _) => TensorData::Bool(v.iter().map(|&x| x != 0).collect()),
        (TensorData::Bool(v), DType::F32) => {
            TensorData::F32(v.iter().map(|&x| f32::from(u8::from(x))).collect())
        }
        (TensorData::Bool(v), _) => TensorData::I64(v.iter().map(|&x| i64::from(x)).collect()),
    };
    Tensor::new(t.shape(), data).expect("same element count")
}
