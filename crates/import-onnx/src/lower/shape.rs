//! Movement ops and the ops that compute shapes.
//!
//! With static shapes, `Shape`, `ConstantOfShape` and `Constant` are always known at import
//! time, and so is every movement op whose inputs are known: those fold (see
//! [`crate::fold`]) and never reach the graph. The rest map onto Sinter's movement ops with
//! every extent computed here, so the graph states its shapes explicitly: `Reshape`,
//! `Flatten`, `Squeeze` and `Unsqueeze` all become a `reshape` (or `flatten`) with the final
//! shape. A `Slice` with negative steps becomes a `slice` for the positive ones and a
//! `gather` with constant indices per reversed axis; a `Pad` with negative pads becomes a
//! `pad` followed by a `slice` that crops.

use super::{Node, Out, Outs, R, axis, known, known_ints, one, opt_known_ints};
use crate::convert::Ctx;
use crate::fold;
use crate::tensor::{MAX_AMPLIFYING_FOLD, MAX_FOLD_ELEMENTS, dims_to_shape};
use sinter_ir::{Float, Op, Tensor, TensorData};

fn shape_of(cx: &Ctx, n: &Node, i: usize) -> R<Vec<usize>> {
    Ok(cx.type_of(n.req(i)?)?.shape.to_vec())
}

/// Checked product of extents (a shape with a zero extent may have huge others).
fn prod(s: &[usize]) -> R<usize> {
    s.iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| format!("the product of the extents {s:?} overflows"))
}

fn to_i64(s: &[usize]) -> Vec<i64> {
    s.iter().map(|&d| d as i64).collect()
}

/// `Concat` along `axis`.
pub fn concat(cx: &mut Ctx, n: &Node) -> R<Outs> {
    let names: Vec<&str> = (0..n.n_inputs()).filter_map(|i| n.input(i)).collect();
    let first = names.first().ok_or("needs at least one input")?;
    let rank = cx.type_of(first)?.rank();
    let a = axis(
        n.int("axis", i64::MIN).and_then(|a| {
            if a == i64::MIN {
                Err("attribute `axis` is required".to_string())
            } else {
                Ok(a)
            }
        })?,
        rank,
    )?;
    if let Some(ts) = names
        .iter()
        .map(|m| cx.foldable(m))
        .collect::<Option<Vec<_>>>()
    {
        return known(fold::concat(&ts, a)?);
    }
    let vs = names.iter().map(|m| cx.value(m)).collect::<R<Vec<_>>>()?;
    one(cx.op(Op::Concat { axis: a as i64 }, &vs)?)
}

/// `Split` by sizes (an input from opset 13), `num_outputs` (opset 18) or into equal parts.
pub fn split(cx: &mut Ctx, n: &Node) -> R<Outs> {
    let shape = shape_of(cx, n, 0)?;
    let a = axis(n.int("axis", 0)?, shape.len())?;
    let d = shape[a] as i64;
    let parts = n.n_outputs() as i64;
    let sizes = match opt_known_ints(cx, n, 1, "split sizes")? {
        Some(s) => s,
        None => {
            let k = if n.has("num_outputs") {
                n.int("num_outputs", parts)?
            } else {
                parts
            };
            if k < 1 {
                return Err(format!("cannot split into {k} parts"));
            }
            if !n.has("num_outputs") && d % k != 0 {
                return Err(format!(
                    "axis {a} of extent {d} does not split into {k} equal parts"
                ));
            }
            let chunk = (d + k - 1) / k;
            (0..k).map(|i| (d - i * chunk).clamp(0, chunk)).collect()
        }
    };
    if sizes.len() as i64 != parts {
        return Err(format!(
            "{} split sizes {sizes:?} for {parts} outputs",
            sizes.len()
        ));
    }
    let x = cx.value(n.req(0)?)?;
    let vs = cx.op_multi(
        Op::Split {
            axis: a as i64,
            sizes,
        },
        &[x],
        parts as usize,
    )?;
    Ok(vs.into_iter().map(|v| Some(Out::Value(v))).collect())
}

/// ONNX's clamping of one slice axis: `(start, count, step)`.
fn slice_range(start: i64, end: i64, step: i64, d: i64) -> (i64, usize, i64) {
    let norm = |v: i64| if v < 0 { v.saturating_add(d) } else { v };
    if step > 0 {
        let s = norm(start).clamp(0, d);
        let e = norm(end).clamp(0, d);
        let count = if e > s {
            (e - s).saturating_add(step - 1) / step
        } else {
            0
        };
        (s, count as usize, step)
    } else {
        let s = norm(start).clamp(0, d - 1);
        let e = norm(end).clamp(-1, d - 1);
        let neg = step.saturating_neg();
        let count = if s > e {
            (s - e).saturating_add(neg - 1) / neg
        } else {
            0
        };
        (s, count as usize, step)
    }
}

/// `Slice` with known starts, ends, axes and steps.
pub fn slice(cx: &mut Ctx, n: &Node) -> R<Outs> {
    let shape = shape_of(cx, n, 0)?;
    let starts = known_ints(cx, n, 1, "starts")?;
    let ends = known_ints(cx, n, 2, "ends")?;
    let axes =
        opt_known_ints(cx, n, 3, "axes")?.unwrap_or_else(|| (0..starts.len() as i64).collect());
    let steps = opt_known_ints(cx, n, 4, "steps")?.unwrap_or_else(|| vec![1; starts.len()]);
    if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
        return Err(format!(
            "starts {starts:?}, ends {ends:?}, axes {axes:?} and steps {steps:?} need equal lengths"
        ));
    }
    let mut ranges: Vec<(i64, usize, i64)> = shape.iter().map(|&d| (0, d, 1)).collect();
    let mut seen = vec![false; shape.len()];
    for i in 0..starts.len() {
        let a = axis(axes[i], shape.len())?;
        if std::mem::replace(&mut seen[a], true) {
            return Err(format!("axis {} is listed twice in {axes:?}", axes[i]));
        }
        if steps[i] == 0 {
            return Err(format!("slice step 0 on axis {a}"));
        }
        ranges[a] = slice_range(starts[i], ends[i], steps[i], shape[a] as i64);
    }
    let name = n.req(0)?;
    if let Some(t) = cx.foldable(name) {
        return known(fold::slice(t, &ranges)?);
    }
    let mut y = cx.value(name)?;
    let pos: Vec<usize> = (0..shape.len())
        .filter(|&a| ranges[a].2 > 0 && (ranges[a].0, ranges[a].1, ranges[a].2) != (0, shape[a], 1))
        .collect();
    if !pos.is_empty() {
        let op = Op::Slice {
            axes: pos.iter().map(|&a| a as i64).collect(),
            starts: pos.iter().map(|&a| ranges[a].0).collect(),
            ends: pos
                .iter()
                .map(|&a| {
                    ranges[a]
                        .0
                        .saturating_add((ranges[a].1 as i64).saturating_mul(ranges[a].2))
                })
                .collect(),
            steps: pos.iter().map(|&a| ranges[a].2).collect(),
        };
        y = cx.op(op, &[y])?;
    }
    for (a, &(s, count, step)) in ranges.iter().enumerate() {
        if step < 0 {
            if count > MAX_FOLD_ELEMENTS {
                return Err(format!("a reversed slice of {count} elements is too large"));
            }
            let idx: Vec<i64> = (0..count as i64).map(|i| s + i * step).collect();
            let c = cx.constant(Tensor::from_i64(&[count], idx))?;
            y = cx.op(Op::Gather { axis: a as i64 }, &[y, c])?;
        }
    }
    one(y)
}

/// `Pad` in `constant` mode, with pads (and, from opset 18, axes) as known inputs.
pub fn pad(cx: &mut Ctx, n: &Node) -> R<Outs> {
    let mode = n.string("mode", "constant")?;
    if mode != "constant" {
        return Err(format!("mode `{mode}` is not supported (only `constant`)"));
    }
    let shape = shape_of(cx, n, 0)?;
    let r = shape.len();
    let pads_in = known_ints(cx, n, 1, "pads")?;
    let value = match n.input(2) {
        None => 0.0,
        Some(name) => {
            let t = cx
                .known(name)
                .ok_or("the constant_value input must be known at import time")?;
            match t.data() {
                TensorData::F32(v) if v.len() == 1 => v[0],
                TensorData::I64(v) if v.len() == 1 => v[0] as f32,
                _ => return Err(format!("constant_value {} must hold one number", t.ty())),
            }
        }
    };
    let axes = match opt_known_ints(cx, n, 3, "axes")? {
        Some(a) => a.iter().map(|&x| axis(x, r)).collect::<R<Vec<_>>>()?,
        None => (0..r).collect(),
    };
    if pads_in.len() != 2 * axes.len() {
        return Err(format!(
            "pads {pads_in:?} need {} entries for {} axes",
            2 * axes.len(),
            axes.len()
        ));
    }
    let mut pads = vec![0i64; 2 * r];
    for (i, &a) in axes.iter().enumerate() {
        pads[a] = pads_in[i];
        pads[a + r] = pads_in[i + axes.len()];
    }
    let mut y = super::f32_input(cx, n, 0)?;
    let grow: Vec<i64> = pads.iter().map(|&p| p.max(0)).collect();
    if grow.iter().any(|&p| p > 0) {
        y = cx.op(
            Op::Pad {
                pads: grow,
                value: Float(value),
            },
            &[y],
        )?;
    }
    if pads.iter().any(|&p| p < 0) {
        let cur = cx.shape(y);
        let axes: Vec<usize> = (0..r).filter(|&a| pads[a] < 0 || pads[a + r] < 0).collect();
        let op = Op::Slice {
            axes: axes.iter().map(|&a| a as i64).collect(),
            starts: axes
                .iter()
                .map(|&a| pads[a].saturating_neg().max(0))
                .collect(),
            ends: axes
                .iter()
                .map(|&a| (cur[a] as i64).saturating_add(pads[a + r].min(0)))
                .collect(),
            steps: vec![1; axes.len()],
        };
        y = cx.op(op, &[y])?;
    }
    one(y)
}

/// The target shape of `Reshape`, `Flatten`, `Squeeze` or `Unsqueeze`.
fn target_shape(cx: &Ctx, n: &Node, input: &[usize]) -> R<Vec<usize>> {
    let numel = prod(input)?;
    match n.op_type() {
        "Reshape" => {
            let spec = known_ints(cx, n, 1, "shape")?;
            let allowzero = n.int("allowzero", 0)? != 0;
            let mut out = Vec::with_capacity(spec.len());
            let mut infer = None;
            for (i, &d) in spec.iter().enumerate() {
                match d {
                    -1 if infer.is_none() => {
                        infer = Some(i);
                        out.push(1);
                    }
                    -1 => return Err(format!("shape {spec:?} has more than one -1")),
                    0 if !allowzero => out.push(*input.get(i).ok_or_else(|| {
                        format!(
                            "shape {spec:?}: 0 at axis {i} copies an axis the input {input:?} lacks"
                        )
                    })?),
                    d if d >= 0 => out.push(d as usize),
                    _ => return Err(format!("shape {spec:?} has a negative extent")),
                }
            }
            if let Some(i) = infer {
                let rest = prod(&out)?;
                if rest == 0 || !numel.is_multiple_of(rest) {
                    return Err(format!(
                        "cannot reshape {input:?} ({numel} elements) to {spec:?}"
                    ));
                }
                out[i] = numel / rest;
            }
            if out.iter().try_fold(1usize, |a, &d| a.checked_mul(d)) != Some(numel) {
                return Err(format!(
                    "cannot reshape {input:?} ({numel} elements) to {spec:?}"
                ));
            }
            Ok(out)
        }
        "Flatten" => {
            let r = input.len() as i64;
            let a = n.int("axis", 1)?;
            if a < -r || a > r {
                return Err(format!("flatten axis {a} is out of range for rank {r}"));
            }
            let a = if a < 0 { a + r } else { a } as usize;
            Ok(vec![prod(&input[..a])?, prod(&input[a..])?])
        }
        "Squeeze" => {
            let axes = opt_known_ints(cx, n, 1, "axes")?;
            let axes = match axes {
                Some(a) => a
                    .iter()
                    .map(|&x| axis(x, input.len()))
                    .collect::<R<Vec<_>>>()?,
                None => (0..input.len()).filter(|&a| input[a] == 1).collect(),
            };
            for &a in &axes {
                if input[a] != 1 {
                    return Err(format!(
                        "cannot squeeze axis {a} of {input:?}: its extent is not 1"
                    ));
                }
            }
            Ok((0..input.len())
                .filter(|a| !axes.contains(a))
                .map(|a| input[a])
                .collect())
        }
        _ => {
            let axes = known_ints(cx, n, 1, "axes")?;
            let r = input.len() + axes.len();
            let mut ones = vec![false; r];
            for &x in &axes {
                let a = axis(x, r)?;
                if std::mem::replace(&mut ones[a], true) {
                    return Err(format!("axis {x} is listed twice in {axes:?}"));
                }
            }
            let mut it = input.iter();
            Ok(ones
                .iter()
                .map(|&one| if one { 1 } else { *it.next().unwrap_or(&1) })
                .collect())
        }
    }
}

/// `Reshape`, `Flatten`, `Squeeze`, `Unsqueeze`: one `reshape` (`flatten` for `Flatten`).
pub fn reshape(cx: &mut Ctx, n: &Node) -> R<Outs> {
    let name = n.req(0)?;
    let input = shape_of(cx, n, 0)?;
    let shape = target_shape(cx, n, &input)?;
    if let Some(t) = cx.foldable(name) {
        return known(fold::reshape(t, &shape)?);
    }
    let x = cx.value(name)?;
    let op = if n.op_type() == "Flatten" && shape.len() == 2 && !input.is_empty() {
        let r = input.len() as i64;
        let a = n.int("axis", 1)?;
        Op::Flatten {
            axis: if a < 0 { a + r } else { a },
        }
    } else {
        Op::Reshape {
            shape: to_i64(&shape),
        }
    };
    one(cx.op(op, &[x])?)
}

/// `Transpose` (default: reverse the axes).
pub fn transpose(cx: &mut Ctx, n: &Node) -> R<Outs> {
    let name = n.req(0)?;
    let r = cx.type_of(name)?.rank();
    let perm = n
        .ints("perm")?
        .unwrap_or_else(|| (0..r as i64).rev().collect());
    let mut seen = vec![false; r];
    let mut p = Vec::with_capacity(r);
    for &x in &perm {
        let a = axis(x, r)?;
        if std::mem::replace(&mut seen[a], true) || perm.len() != r {
            return Err(format!("perm {perm:?} is not a permutation of {r} axes"));
        }
        p.push(a);
    }
    if p.len() != r {
        return Err(format!("perm {perm:?} is not a permutation of {r} axes"));
    }
    if let Some(t) = cx.foldable(name) {
        return known(fold::transpose(t, &p)?);
    }
    let x = cx.value(name)?;
    one(cx.op(Op::Transpose { perm: to_i64(&p) }, &[x])?)
}

/// `Gather` along `axis`.
pub fn gather(cx: &mut Ctx, n: &Node) -> R<Outs> {
    let (dname, iname) = (n.req(0)?, n.req(1)?);
    let rank = cx.type_of(dname)?.rank();
    let a = axis(n.int("axis", 0)?, rank)?;
    if let (Some(d), Some(i)) = (cx.foldable(dname), cx.foldable(iname)) {
        return known(fold::gather(d, i, a)?);
    }
    let d = cx.value(dname)?;
    let i = cx.value(iname)?;
    one(cx.op(Op::Gather { axis: a as i64 }, &[d, i])?)
}

/// `Expand`: numpy broadcast of the input against a known shape.
pub fn expand(cx: &mut Ctx, n: &Node) -> R<Outs> {
    let name = n.req(0)?;
    let input = shape_of(cx, n, 0)?;
    let spec = known_ints(cx, n, 1, "shape")?;
    let spec = dims_to_shape(&spec)?;
    let shape = fold::broadcast_shape(&input, &spec)?;
    if let Some(t) = cx.foldable(name)
        && (shape == input || shape.iter().product::<usize>() <= MAX_AMPLIFYING_FOLD)
    {
        return known(fold::broadcast_to(t, &shape)?);
    }
    let x = cx.value(name)?;
    if shape == input {
        return Ok(vec![Some(Out::Value(x))]);
    }
    one(cx.op(
        Op::Broadcast {
            shape: to_i64(&shape),
        },
        &[x],
    )?)
}

/// `Shape` (with `start` and `end` from opset 15): always known.
pub fn shape(cx: &mut Ctx, n: &Node) -> R<Outs> {
    let s = shape_of(cx, n, 0)?;
    let r = s.len() as i64;
    let clamp = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
    let start = clamp(n.int("start", 0)?);
    let end = clamp(n.int("end", r)?);
    let v: Vec<i64> = if end > start {
        to_i64(&s[start..end])
    } else {
        Vec::new()
    };
    known(Tensor::from_i64(&[v.len()], v))
}

/// `ConstantOfShape`: a known tensor filled with `value` (default `0.0`).
pub fn constant_of_shape(cx: &mut Ctx, n: &Node) -> R<Outs> {
    let dims = known_ints(cx, n, 0, "shape")?;
    let shape = dims_to_shape(&dims)?;
    let fill = n
        .tensor("value")?
        .unwrap_or_else(|| Tensor::from_f32(&[1], vec![0.0]));
    if fill.numel() != 1 {
        return Err(format!(
            "attribute `value` {} must hold one element",
            fill.ty()
        ));
    }
    let one_elem = fill.reshaped(&[]).map_err(|e| e.to_string())?;
    if shape.iter().product::<usize>() <= MAX_AMPLIFYING_FOLD {
        return known(fold::broadcast_to(&one_elem, &shape)?);
    }
    let c = cx.constant(one_elem)?;
    one(cx.op(
        Op::Broadcast {
            shape: to_i64(&shape),
        },
        &[c],
    )?)
}

/// `Constant`: a known tensor from one of its value attributes.
pub fn constant(_cx: &mut Ctx, n: &Node) -> R<Outs> {
    if let Some(t) = n.tensor("value")? {
        return known(t);
    }
    if n.has("value_float") {
        return known(Tensor::scalar(n.float("value_float", 0.0)?));
    }
    if let Some(v) = n.floats("value_floats")? {
        return known(Tensor::from_f32(&[v.len()], v));
    }
    if n.has("value_int") {
        return known(Tensor::from_i64(&[], vec![n.int("value_int", 0)?]));
    }
    if let Some(v) = n.ints("value_ints")? {
        return known(Tensor::from_i64(&[v.len()], v));
    }
    Err("no supported value attribute (value, value_float(s), value_int(s))".into())
}

/// `Identity` and inference-mode `Dropout`: the input itself (the mask output is refused).
pub fn identity(cx: &mut Ctx, n: &Node) -> R<Outs> {
    if n.op_type() == "Dropout"
        && let Some(name) = n.input(2)
        && cx
            .known(name)
            .and_then(|t| t.as_bool())
            .is_none_or(|b| b.iter().any(|&x| x))
    {
        return Err("training_mode must be a known `false` (import is for inference)".into());
    }
    let name = n.req(0)?;
    if let Some(t) = cx.foldable(name) {
        return known(t.clone());
    }
    Ok(vec![Some(Out::Value(cx.value(name)?))])
}
