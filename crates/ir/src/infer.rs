//! Shape and type rules: one exhaustive `match` over [`Op`].
//!
//! [`infer`] maps an op and its input types to its output types, or to a message saying what
//! is wrong with the shapes involved. The message does not name the node; the caller
//! ([`Graph::add_op`](crate::Graph::add_op)) prefixes it with `%y = op(%a, %b)`. These rules
//! are the normative shape rules of `ir-spec/ops.md`.

use crate::graph::MAX_EXTENT;
use crate::ops::{Op, VARIADIC};
use crate::types::{DType, Shape, TensorType, checked_numel};
use smallvec::smallvec;

type R<T> = Result<T, String>;

/// Output types of `op` applied to inputs of types `ins`. Results are also checked against
/// the size limits ([`check_type`](crate::graph::check_type)).
pub fn infer(op: &Op, ins: &[&TensorType]) -> R<Vec<TensorType>> {
    let out = rules(op, ins)?;
    for t in &out {
        crate::graph::check_type(t)?;
    }
    Ok(out)
}

fn rules(op: &Op, ins: &[&TensorType]) -> R<Vec<TensorType>> {
    let info = op.info();
    let n = ins.len();
    if n < info.min_inputs || n > info.max_inputs {
        let want = if info.max_inputs == VARIADIC {
            format!("at least {}", info.min_inputs)
        } else if info.min_inputs == info.max_inputs {
            format!("{}", info.min_inputs)
        } else {
            format!("{} to {}", info.min_inputs, info.max_inputs)
        };
        let plural = if want == "1" { "input" } else { "inputs" };
        return Err(format!("`{}` takes {want} {plural}, got {n}", info.name));
    }
    let one = |t: TensorType| Ok(vec![t]);
    match op {
        Op::Neg {}
        | Op::Exp {}
        | Op::Log {}
        | Op::Sqrt {}
        | Op::Rsqrt {}
        | Op::Abs {}
        | Op::Relu {}
        | Op::Sigmoid {}
        | Op::Tanh {}
        | Op::LeakyRelu { .. } => {
            want_f32("input", ins[0])?;
            one(ins[0].clone())
        }
        Op::Add {}
        | Op::Sub {}
        | Op::Mul {}
        | Op::Div {}
        | Op::Max {}
        | Op::Min {}
        | Op::Pow {} => {
            want_f32("left input", ins[0])?;
            want_f32("right input", ins[1])?;
            one(TensorType {
                dtype: DType::F32,
                shape: broadcast_shapes(&ins[0].shape, &ins[1].shape)?,
            })
        }
        Op::Prelu {} => {
            want_f32("input", ins[0])?;
            want_f32("slope", ins[1])?;
            let s = broadcast_shapes(&ins[0].shape, &ins[1].shape)?;
            if s != ins[0].shape {
                return Err(format!(
                    "slope {} does not broadcast to input {}",
                    ins[1], ins[0]
                ));
            }
            one(ins[0].clone())
        }
        Op::Equal {} | Op::Less {} | Op::LessEqual {} | Op::Greater {} | Op::GreaterEqual {} => {
            if ins[0].dtype != ins[1].dtype || ins[0].dtype == DType::Bool {
                return Err(format!(
                    "compares two f32 or two i64 tensors, got {} and {}",
                    ins[0], ins[1]
                ));
            }
            one(TensorType {
                dtype: DType::Bool,
                shape: broadcast_shapes(&ins[0].shape, &ins[1].shape)?,
            })
        }
        Op::Select {} => {
            if ins[0].dtype != DType::Bool {
                return Err(format!("condition must be bool, got {}", ins[0]));
            }
            if ins[1].dtype != ins[2].dtype {
                return Err(format!(
                    "branches have different dtypes: {} and {}",
                    ins[1], ins[2]
                ));
            }
            let s = broadcast_shapes(&ins[0].shape, &ins[1].shape)?;
            one(TensorType {
                dtype: ins[1].dtype,
                shape: broadcast_shapes(&s, &ins[2].shape)?,
            })
        }
        Op::Cast { to } => one(TensorType {
            dtype: *to,
            shape: ins[0].shape.clone(),
        }),
        Op::Matmul {} => matmul(ins[0], ins[1]),
        Op::Gemm {
            trans_a, trans_b, ..
        } => gemm(ins, *trans_a, *trans_b),
        Op::Conv2d {
            stride,
            pad,
            dilation,
            groups,
        } => conv2d(ins, *stride, *pad, *dilation, *groups),
        Op::MaxPool2dGrad {
            kernel,
            stride,
            pad,
        }
        | Op::AvgPool2dGrad {
            kernel,
            stride,
            pad,
            ..
        } => {
            let y = pool2d(ins[0], *kernel, *stride, *pad)?;
            want_same("output gradient", ins[1], &y[0])?;
            one(ins[0].clone())
        }
        Op::Conv2dWeightGrad {
            kernel,
            stride,
            pad,
            dilation,
            groups,
        } => {
            let (x, dy) = (ins[0], ins[1]);
            want_rank("input", x, 4)?;
            want_rank("output gradient", dy, 4)?;
            let k = positive2("kernel", *kernel)?;
            if *groups < 1 || *groups as u64 > MAX_EXTENT as u64 {
                return Err(format!("groups={groups} must be in 1..=2^32"));
            }
            let g = *groups as usize;
            if x.shape[1] % g != 0 {
                return Err(format!(
                    "groups={g} must divide input channels {}",
                    x.shape[1]
                ));
            }
            let w = TensorType::f32(&[dy.shape[1], x.shape[1] / g, k[0], k[1]]);
            let y = conv2d(&[x, &w], *stride, *pad, *dilation, *groups)?;
            want_same("output gradient", dy, &y[0])?;
            one(w)
        }
        Op::WinogradFilter { tile, transposed } => {
            let f = winograd_tile(*tile)?;
            let w = ins[0];
            want_f32("weight", w)?;
            want_rank("weight", w, 4)?;
            if w.shape[2..] != [3, 3] {
                return Err(format!("weight {w} must have a 3x3 kernel"));
            }
            let (co, ci) = if *transposed {
                (w.shape[1], w.shape[0])
            } else {
                (w.shape[0], w.shape[1])
            };
            one(TensorType::f32(&[f.points(), co, ci]))
        }
        Op::WinogradInput { tile, pad } => {
            let f = winograd_tile(*tile)?;
            let x = ins[0];
            want_f32("input", x)?;
            want_rank("input", x, 4)?;
            let p = pads4(*pad)?;
            let oh = window_out("height", x.shape[2], p[0] + p[2], 3, 1, 1)?;
            let ow = window_out("width", x.shape[3], p[1] + p[3], 3, 1, 1)?;
            let tiles = x.shape[0]
                .checked_mul(crate::winograd::tiles(oh, f.m) * crate::winograd::tiles(ow, f.m))
                .filter(|&t| t <= MAX_EXTENT)
                .ok_or_else(|| format!("input {x}: too many tiles"))?;
            one(TensorType::f32(&[f.points(), x.shape[1], tiles]))
        }
        Op::WinogradOutput { tile, out } => {
            let f = winograd_tile(*tile)?;
            let mm = ins[0];
            want_f32("products", mm)?;
            want_rank("products", mm, 3)?;
            let [oh, ow] = positive2("out", *out)?;
            let per_image = crate::winograd::tiles(oh, f.m) * crate::winograd::tiles(ow, f.m);
            if mm.shape[0] != f.points() || !mm.shape[2].is_multiple_of(per_image) {
                return Err(format!(
                    "products {mm} must be [{}, C, N*{per_image}] for {}x{} tiles of a {oh}x{ow} output",
                    f.points(),
                    f.m,
                    f.m
                ));
            }
            let c = mm.shape[1];
            if let Some(b) = ins.get(1)
                && (b.dtype != DType::F32 || b.shape.as_slice() != [c])
            {
                return Err(format!("bias {b} must be f32[{c}]"));
            }
            one(TensorType::f32(&[mm.shape[2] / per_image, c, oh, ow]))
        }
        Op::ScatterAdd { axis, extent } => {
            let (idx, upd) = (ins[0], ins[1]);
            if idx.dtype != DType::I64 {
                return Err(format!("indices must be i64, got {idx}"));
            }
            want_f32("updates", upd)?;
            if *extent < 0 || *extent as u64 > MAX_EXTENT as u64 {
                return Err(format!("extent={extent} must be in 0..=2^32"));
            }
            let slots = (upd.rank() + 1).saturating_sub(idx.rank());
            let a = norm_axis(*axis, slots).map_err(|_| {
                format!("axis {axis} does not fit indices {idx} into updates {upd}")
            })?;
            if upd.shape.get(a..a + idx.rank()) != Some(&idx.shape[..]) {
                return Err(format!(
                    "updates {upd} must have the indices' shape {} at axis {a}",
                    crate::types::ShapeDisplay(&idx.shape)
                ));
            }
            let mut shape: Shape = upd.shape[..a].into();
            shape.push(*extent as usize);
            shape.extend_from_slice(&upd.shape[a + idx.rank()..]);
            one(TensorType {
                dtype: DType::F32,
                shape,
            })
        }
        Op::ConvTranspose2d {
            stride,
            pad,
            output_pad,
            dilation,
            groups,
        } => conv_transpose2d(ins, *stride, *pad, *output_pad, *dilation, *groups),
        Op::MaxPool2d {
            kernel,
            stride,
            pad,
        }
        | Op::AvgPool2d {
            kernel,
            stride,
            pad,
            ..
        } => pool2d(ins[0], *kernel, *stride, *pad),
        Op::GlobalAvgPool {} => {
            want_f32("input", ins[0])?;
            want_rank("input", ins[0], 4)?;
            let s = &ins[0].shape;
            if s[2] == 0 || s[3] == 0 {
                return Err(format!(
                    "input {} has an empty spatial axis: the mean is undefined",
                    ins[0]
                ));
            }
            one(TensorType::f32(&[s[0], s[1], 1, 1]))
        }
        Op::BatchNorm { eps } => {
            batch_norm_params(ins, &["gamma", "beta", "mean", "var"])?;
            want_nonneg("eps", eps.get())?;
            one(ins[0].clone())
        }
        Op::BatchNormTrain { eps } => {
            let c = batch_norm_params(ins, &["gamma", "beta"])?;
            want_nonneg("eps", eps.get())?;
            Ok(vec![
                ins[0].clone(),
                TensorType::f32(&[c]),
                TensorType::f32(&[c]),
            ])
        }
        Op::Softmax { axis } | Op::LogSoftmax { axis } => {
            want_f32("input", ins[0])?;
            norm_axis(*axis, ins[0].rank())?;
            one(ins[0].clone())
        }
        Op::StochasticPool2d { kernel, .. } => {
            want_f32("input", ins[0])?;
            want_rank("input", ins[0], 4)?;
            want_counter(ins.get(1))?;
            let s = &ins[0].shape;
            let k = usize::try_from(*kernel).unwrap_or(0);
            if k == 0 || !s[2].is_multiple_of(k) || !s[3].is_multiple_of(k) {
                return Err(format!(
                    "kernel {kernel} must be positive and divide the height {} and width {} of \
                     input {}",
                    s[2], s[3], ins[0]
                ));
            }
            one(TensorType::f32(&[s[0], s[1], s[2] / k, s[3] / k]))
        }
        Op::Dropout { p, .. } => {
            want_f32("input", ins[0])?;
            if !(0.0..1.0).contains(&p.get()) {
                return Err(format!(
                    "dropout probability p={} is outside [0, 1)",
                    p.get()
                ));
            }
            want_counter(ins.get(1))?;
            one(ins[0].clone())
        }
        Op::RandomUniform {
            shape, low, high, ..
        } => {
            want_counter(ins.first())?;
            if !low.get().is_finite() || !high.get().is_finite() || low.get() > high.get() {
                return Err(format!(
                    "low={} and high={} must be finite with low <= high",
                    low.get(),
                    high.get()
                ));
            }
            one(TensorType {
                dtype: DType::F32,
                shape: dims("shape", shape)?,
            })
        }
        Op::RandomNormal {
            shape, mean, std, ..
        } => {
            want_counter(ins.first())?;
            want_nonneg("std", std.get())?;
            if !mean.get().is_finite() || !std.get().is_finite() {
                return Err(format!(
                    "mean={} and std={} must be finite",
                    mean.get(),
                    std.get()
                ));
            }
            one(TensorType {
                dtype: DType::F32,
                shape: dims("shape", shape)?,
            })
        }
        Op::Bernoulli { .. } => {
            want_f32("probabilities", ins[0])?;
            want_counter(ins.get(1))?;
            one(ins[0].clone())
        }
        Op::ReduceSum { axes, keepdims }
        | Op::ReduceMean { axes, keepdims }
        | Op::ReduceMax { axes, keepdims } => {
            want_f32("input", ins[0])?;
            let axes = norm_axes(axes, ins[0].rank())?;
            let all = axes.is_empty();
            if !matches!(op, Op::ReduceSum { .. }) {
                for (i, &d) in ins[0].shape.iter().enumerate() {
                    if d == 0 && (all || axes.contains(&i)) {
                        return Err(format!(
                            "`{}` over the empty axis {i} of {}",
                            op.name(),
                            ins[0]
                        ));
                    }
                }
            }
            let mut shape = Shape::new();
            for (i, &d) in ins[0].shape.iter().enumerate() {
                if all || axes.contains(&i) {
                    if *keepdims {
                        shape.push(1);
                    }
                } else {
                    shape.push(d);
                }
            }
            one(TensorType {
                dtype: DType::F32,
                shape,
            })
        }
        Op::Argmax { axis, keepdims } => {
            if ins[0].dtype == DType::Bool {
                return Err(format!("argmax needs f32 or i64, got {}", ins[0]));
            }
            let a = norm_axis(*axis, ins[0].rank())?;
            if ins[0].shape[a] == 0 {
                return Err(format!("argmax over empty axis {a} of {}", ins[0]));
            }
            let mut shape = ins[0].shape.clone();
            if *keepdims {
                shape[a] = 1;
            } else {
                shape.remove(a);
            }
            one(TensorType {
                dtype: DType::I64,
                shape,
            })
        }
        Op::Reshape { shape } => reshape(ins[0], shape),
        Op::Transpose { perm } => {
            let r = ins[0].rank();
            let p = norm_axes(perm, r)?;
            if p.len() != r {
                return Err(format!(
                    "perm {perm:?} is not a permutation of the {r} axes of {}",
                    ins[0]
                ));
            }
            one(TensorType {
                dtype: ins[0].dtype,
                shape: p.iter().map(|&a| ins[0].shape[a]).collect(),
            })
        }
        Op::Broadcast { shape } => {
            let target = dims("shape", shape)?;
            let b = broadcast_shapes(&ins[0].shape, &target)?;
            if b != target {
                return Err(format!("{} does not broadcast to {:?}", ins[0], shape));
            }
            one(TensorType {
                dtype: ins[0].dtype,
                shape: target,
            })
        }
        Op::Concat { axis } => {
            let a = norm_axis(*axis, ins[0].rank())?;
            let mut shape = ins[0].shape.clone();
            for (i, t) in ins.iter().enumerate().skip(1) {
                let same_rest = t.rank() == ins[0].rank()
                    && t.shape
                        .iter()
                        .zip(&ins[0].shape)
                        .enumerate()
                        .all(|(j, (x, y))| j == a || x == y);
                if t.dtype != ins[0].dtype || !same_rest {
                    return Err(format!(
                        "input {i} is {t} but input 0 is {}: dtypes and all extents but axis {a} must match",
                        ins[0]
                    ));
                }
                shape[a] = shape[a]
                    .checked_add(t.shape[a])
                    .ok_or("concatenated extent overflows")?;
            }
            one(TensorType {
                dtype: ins[0].dtype,
                shape,
            })
        }
        Op::Split { axis, sizes } => {
            let a = norm_axis(*axis, ins[0].rank())?;
            let sizes = dims("sizes", sizes)?;
            let total = sizes.iter().try_fold(0usize, |acc, &s| acc.checked_add(s));
            if sizes.is_empty() || total != Some(ins[0].shape[a]) {
                return Err(format!(
                    "sizes {:?} do not sum to the extent {} of axis {a} of {}",
                    sizes.as_slice(),
                    ins[0].shape[a],
                    ins[0]
                ));
            }
            Ok(sizes
                .iter()
                .map(|&s| {
                    let mut shape = ins[0].shape.clone();
                    shape[a] = s;
                    TensorType {
                        dtype: ins[0].dtype,
                        shape,
                    }
                })
                .collect())
        }
        Op::Slice {
            axes,
            starts,
            ends,
            steps,
        } => {
            let t = ins[0];
            if starts.len() != axes.len() || ends.len() != axes.len() || steps.len() != axes.len() {
                return Err(format!(
                    "axes, starts, ends and steps need equal lengths, got {}, {}, {}, {}",
                    axes.len(),
                    starts.len(),
                    ends.len(),
                    steps.len()
                ));
            }
            let ax = norm_axes(axes, t.rank())?;
            let mut shape = t.shape.clone();
            for (i, &a) in ax.iter().enumerate() {
                if steps[i] < 1 {
                    return Err(format!("slice step {} on axis {a} must be >= 1", steps[i]));
                }
                let (s, e) = slice_bounds(starts[i], ends[i], t.shape[a]);
                shape[a] = if e > s {
                    (e - s).div_ceil(steps[i] as usize)
                } else {
                    0
                };
            }
            one(TensorType {
                dtype: t.dtype,
                shape,
            })
        }
        Op::Pad { pads, .. } => {
            let t = ins[0];
            want_f32("input", t)?;
            if pads.len() != 2 * t.rank() {
                return Err(format!(
                    "pads {pads:?} need {} entries (before and after per axis) for {t}",
                    2 * t.rank()
                ));
            }
            let p = dims("pads", pads)?;
            let shape = (0..t.rank())
                .map(|i| t.shape[i] + p[i] + p[i + t.rank()])
                .collect();
            one(TensorType {
                dtype: t.dtype,
                shape,
            })
        }
        Op::Flatten { axis } => {
            let t = ins[0];
            let r = t.rank() as i64;
            let a = if *axis < 0 { axis + r } else { *axis };
            if !(0..=r).contains(&a) {
                return Err(format!("flatten axis {axis} is out of range for {t}"));
            }
            let a = a as usize;
            let outer = checked_numel(&t.shape[..a]).ok_or("shape overflows")?;
            let inner = checked_numel(&t.shape[a..]).ok_or("shape overflows")?;
            one(TensorType {
                dtype: t.dtype,
                shape: smallvec![outer, inner],
            })
        }
        Op::Gather { axis } => {
            let (d, idx) = (ins[0], ins[1]);
            if idx.dtype != DType::I64 {
                return Err(format!("indices must be i64, got {idx}"));
            }
            let a = norm_axis(*axis, d.rank())?;
            let mut shape: Shape = d.shape[..a].into();
            shape.extend_from_slice(&idx.shape);
            shape.extend_from_slice(&d.shape[a + 1..]);
            one(TensorType {
                dtype: d.dtype,
                shape,
            })
        }
        Op::OneHot { depth } => {
            if ins[0].dtype != DType::I64 {
                return Err(format!("indices must be i64, got {}", ins[0]));
            }
            if *depth < 1 {
                return Err(format!("depth {depth} must be >= 1"));
            }
            let mut shape = ins[0].shape.clone();
            shape.push(*depth as usize);
            one(TensorType {
                dtype: DType::F32,
                shape,
            })
        }
    }
}

fn want_f32(what: &str, t: &TensorType) -> R<()> {
    if t.dtype != DType::F32 {
        return Err(format!("{what} must be f32, got {t}"));
    }
    Ok(())
}

fn want_same(what: &str, got: &TensorType, want: &TensorType) -> R<()> {
    if got != want {
        return Err(format!("{what} is {got}, but the forward op gives {want}"));
    }
    Ok(())
}

fn want_rank(what: &str, t: &TensorType, r: usize) -> R<()> {
    if t.rank() != r {
        return Err(format!("{what} must have rank {r}, got {t}"));
    }
    Ok(())
}

fn want_nonneg(what: &str, v: f32) -> R<()> {
    if v.is_nan() || v < 0.0 {
        return Err(format!("{what}={v} must be >= 0"));
    }
    Ok(())
}

fn want_counter(t: Option<&&TensorType>) -> R<()> {
    match t {
        Some(t) if t.dtype != DType::I64 || t.rank() != 0 => Err(format!(
            "the counter input must be an i64 scalar (i64[]), got {t}"
        )),
        _ => Ok(()),
    }
}

/// Non-negative extents from an attribute list.
fn dims(what: &str, v: &[i64]) -> R<Shape> {
    let mut s = Shape::new();
    for &d in v {
        if d < 0 {
            return Err(format!("{what} {v:?} has a negative entry"));
        }
        if d as u64 > MAX_EXTENT as u64 {
            return Err(format!("{what} {v:?} has an entry above 2^32"));
        }
        s.push(d as usize);
    }
    Ok(s)
}

/// Normalises a possibly negative axis against `rank`.
pub fn norm_axis(axis: i64, rank: usize) -> R<usize> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if a < 0 || a >= r {
        return Err(format!("axis {axis} is out of range for rank {rank}"));
    }
    Ok(a as usize)
}

/// Normalises a list of distinct axes.
pub fn norm_axes(axes: &[i64], rank: usize) -> R<Vec<usize>> {
    let mut out = Vec::with_capacity(axes.len());
    for &a in axes {
        let n = norm_axis(a, rank)?;
        if out.contains(&n) {
            return Err(format!("axis {a} is listed twice in {axes:?}"));
        }
        out.push(n);
    }
    Ok(out)
}

/// Numpy slice bounds: negative values count from the end, then both clamp to `0..=dim`.
pub fn slice_bounds(start: i64, end: i64, dim: usize) -> (usize, usize) {
    let d = dim as i64;
    let fix = |v: i64| (if v < 0 { v + d } else { v }).clamp(0, d) as usize;
    (fix(start), fix(end))
}

/// Numpy broadcasting of two shapes.
pub fn broadcast_shapes(a: &[usize], b: &[usize]) -> R<Shape> {
    let r = a.len().max(b.len());
    let mut out: Shape = smallvec![0; r];
    for i in 0..r {
        let x = if i + a.len() >= r {
            a[i + a.len() - r]
        } else {
            1
        };
        let y = if i + b.len() >= r {
            b[i + b.len() - r]
        } else {
            1
        };
        out[i] = match (x, y) {
            _ if x == y => x,
            (1, _) => y,
            (_, 1) => x,
            _ => {
                return Err(format!(
                    "shapes {} and {} do not broadcast (axis {i}: {x} vs {y})",
                    crate::types::ShapeDisplay(a),
                    crate::types::ShapeDisplay(b)
                ));
            }
        };
    }
    Ok(out)
}

fn matmul(a: &TensorType, b: &TensorType) -> R<Vec<TensorType>> {
    want_f32("left input", a)?;
    want_f32("right input", b)?;
    if a.rank() < 2 || b.rank() < 2 {
        return Err(format!(
            "matmul needs rank >= 2 on both sides, got {a} and {b}"
        ));
    }
    let (m, k) = (a.shape[a.rank() - 2], a.shape[a.rank() - 1]);
    let (k2, n) = (b.shape[b.rank() - 2], b.shape[b.rank() - 1]);
    if k != k2 {
        return Err(format!("inner dimensions differ: {a} x {b} ({k} vs {k2})"));
    }
    let mut shape = broadcast_shapes(&a.shape[..a.rank() - 2], &b.shape[..b.rank() - 2])
        .map_err(|e| format!("batch axes of {a} and {b}: {e}"))?;
    shape.push(m);
    shape.push(n);
    Ok(vec![TensorType {
        dtype: DType::F32,
        shape,
    }])
}

fn gemm(ins: &[&TensorType], ta: bool, tb: bool) -> R<Vec<TensorType>> {
    let (a, b) = (ins[0], ins[1]);
    want_f32("A", a)?;
    want_f32("B", b)?;
    want_rank("A", a, 2)?;
    want_rank("B", b, 2)?;
    let (m, k) = if ta {
        (a.shape[1], a.shape[0])
    } else {
        (a.shape[0], a.shape[1])
    };
    let (k2, n) = if tb {
        (b.shape[1], b.shape[0])
    } else {
        (b.shape[0], b.shape[1])
    };
    if k != k2 {
        return Err(format!(
            "inner dimensions differ: A {a}{} x B {b}{} ({k} vs {k2})",
            if ta { "^T" } else { "" },
            if tb { "^T" } else { "" }
        ));
    }
    if let Some(c) = ins.get(2) {
        want_f32("C", c)?;
        if broadcast_shapes(&c.shape, &[m, n]).ok().as_deref() != Some(&[m, n][..]) {
            return Err(format!("C {c} does not broadcast to [{m},{n}]"));
        }
    }
    Ok(vec![TensorType::f32(&[m, n])])
}

fn positive2(what: &str, v: [i64; 2]) -> R<[usize; 2]> {
    if v.iter().any(|&x| x < 1) {
        return Err(format!("{what} {v:?} must be >= 1"));
    }
    if v.iter().any(|&x| x as u64 > MAX_EXTENT as u64) {
        return Err(format!("{what} {v:?} has an entry above 2^32"));
    }
    Ok([v[0] as usize, v[1] as usize])
}

fn winograd_tile(tile: i64) -> R<crate::winograd::Matrices> {
    crate::winograd::matrices(tile).ok_or_else(|| {
        format!(
            "tile={tile}: Winograd output tiles are {:?}",
            crate::winograd::TILES
        )
    })
}

fn pads4(v: [i64; 4]) -> R<[usize; 4]> {
    if v.iter().any(|&x| x < 0) {
        return Err(format!("pad {v:?} must be >= 0"));
    }
    if v.iter().any(|&x| x as u64 > MAX_EXTENT as u64) {
        return Err(format!("pad {v:?} has an entry above 2^32"));
    }
    Ok(v.map(|x| x as usize))
}

/// `(in + pads - dilation*(k-1) - 1) / stride + 1`, or an error when the window does not fit.
fn window_out(
    axis: &str,
    input: usize,
    pads: usize,
    k: usize,
    stride: usize,
    dil: usize,
) -> R<usize> {
    let Some(span) = dil
        .checked_mul(k - 1)
        .map(|v| v + 1)
        .filter(|&v| v <= MAX_EXTENT)
    else {
        return Err(format!(
            "{axis}: kernel {k} with dilation {dil} spans more than 2^32"
        ));
    };
    let padded = input + pads;
    if span > padded {
        return Err(format!(
            "{axis}: window of {span} (kernel {k}, dilation {dil}) is larger than the padded input {padded}"
        ));
    }
    Ok((padded - span) / stride + 1)
}

fn conv2d(
    ins: &[&TensorType],
    stride: [i64; 2],
    pad: [i64; 4],
    dilation: [i64; 2],
    groups: i64,
) -> R<Vec<TensorType>> {
    let (x, w) = (ins[0], ins[1]);
    want_f32("input", x)?;
    want_f32("weight", w)?;
    want_rank("input", x, 4)?;
    want_rank("weight", w, 4)?;
    let s = positive2("stride", stride)?;
    let d = positive2("dilation", dilation)?;
    let p = pads4(pad)?;
    if groups < 1 || groups as u64 > MAX_EXTENT as u64 {
        return Err(format!("groups={groups} must be in 1..=2^32"));
    }
    let g = groups as usize;
    let (cin, cout) = (x.shape[1], w.shape[0]);
    if cin % g != 0 || cout % g != 0 {
        return Err(format!(
            "groups={g} must divide input channels {cin} and output channels {cout}"
        ));
    }
    if w.shape[1].checked_mul(g) != Some(cin) {
        return Err(format!(
            "input {x} has {cin} channels, weight {w} expects {}",
            w.shape[1] * g
        ));
    }
    if w.shape[2] == 0 || w.shape[3] == 0 {
        return Err(format!("weight {w} has an empty kernel"));
    }
    if let Some(b) = ins.get(2)
        && (b.dtype != DType::F32 || b.shape.as_slice() != [cout])
    {
        return Err(format!("bias {b} must be f32[{cout}]"));
    }
    let oh = window_out("height", x.shape[2], p[0] + p[2], w.shape[2], s[0], d[0])?;
    let ow = window_out("width", x.shape[3], p[1] + p[3], w.shape[3], s[1], d[1])?;
    Ok(vec![TensorType::f32(&[x.shape[0], cout, oh, ow])])
}

fn conv_transpose2d(
    ins: &[&TensorType],
    stride: [i64; 2],
    pad: [i64; 4],
    output_pad: [i64; 2],
    dilation: [i64; 2],
    groups: i64,
) -> R<Vec<TensorType>> {
    let (x, w) = (ins[0], ins[1]);
    want_f32("input", x)?;
    want_f32("weight", w)?;
    want_rank("input", x, 4)?;
    want_rank("weight", w, 4)?;
    let s = positive2("stride", stride)?;
    let d = positive2("dilation", dilation)?;
    let p = pads4(pad)?;
    if groups < 1 || groups as u64 > MAX_EXTENT as u64 {
        return Err(format!("groups={groups} must be in 1..=2^32"));
    }
    let g = groups as usize;
    let cin = x.shape[1];
    if w.shape[0] != cin {
        return Err(format!(
            "input {x} has {cin} channels, weight {w} expects {}",
            w.shape[0]
        ));
    }
    if cin % g != 0 {
        return Err(format!("groups={g} must divide input channels {cin}"));
    }
    let cout = w.shape[1]
        .checked_mul(g)
        .ok_or_else(|| format!("output channels of weight {w} with groups={g} overflow"))?;
    if let Some(b) = ins.get(2)
        && (b.dtype != DType::F32 || b.shape.as_slice() != [cout])
    {
        return Err(format!("bias {b} must be f32[{cout}]"));
    }
    let mut out = [0usize; 2];
    for i in 0..2 {
        let op = output_pad[i];
        if op < 0 || (op as usize >= s[i] && op as usize >= d[i]) {
            return Err(format!(
                "output_pad {output_pad:?} must be >= 0 and smaller than the stride or the dilation"
            ));
        }
        let k = w.shape[2 + i];
        if k == 0 {
            return Err(format!("weight {w} has an empty kernel"));
        }
        let axis = ["height", "width"][i];
        if x.shape[2 + i] == 0 {
            return Err(format!("input {x} is empty along the {axis}"));
        }
        let full = (x.shape[2 + i] - 1)
            .checked_mul(s[i])
            .and_then(|a| a.checked_add(d[i].checked_mul(k - 1)?))
            .and_then(|a| a.checked_add(op as usize + 1))
            .filter(|&f| f <= MAX_EXTENT)
            .ok_or_else(|| format!("{axis}: the output extent exceeds 2^32"))?;
        let cut = p[i] + p[i + 2];
        if cut >= full {
            return Err(format!(
                "{}: padding {cut} removes the whole output of {full}",
                axis
            ));
        }
        out[i] = full - cut;
    }
    Ok(vec![TensorType::f32(&[x.shape[0], cout, out[0], out[1]])])
}

fn pool2d(x: &TensorType, kernel: [i64; 2], stride: [i64; 2], pad: [i64; 4]) -> R<Vec<TensorType>> {
    want_f32("input", x)?;
    want_rank("input", x, 4)?;
    let k = positive2("kernel", kernel)?;
    let s = positive2("stride", stride)?;
    let p = pads4(pad)?;
    if x.shape[2] == 0 || x.shape[3] == 0 {
        return Err(format!(
            "input {x} has an empty spatial axis: every window would be padding"
        ));
    }
    if p[0] >= k[0] || p[2] >= k[0] || p[1] >= k[1] || p[3] >= k[1] {
        return Err(format!(
            "pad {pad:?} must be smaller than the kernel {kernel:?}"
        ));
    }
    let oh = window_out("height", x.shape[2], p[0] + p[2], k[0], s[0], 1)?;
    let ow = window_out("width", x.shape[3], p[1] + p[3], k[1], s[1], 1)?;
    Ok(vec![TensorType::f32(&[x.shape[0], x.shape[1], oh, ow])])
}

/// Checks batch-norm inputs (x, then `[C]` parameters) and returns C.
fn batch_norm_params(ins: &[&TensorType], names: &[&str]) -> R<usize> {
    let x = ins[0];
    want_f32("input", x)?;
    if x.rank() < 2 {
        return Err(format!("input {x} needs rank >= 2 (channels on axis 1)"));
    }
    let c = x.shape[1];
    for (t, name) in ins[1..].iter().zip(names) {
        if t.dtype != DType::F32 || t.shape.as_slice() != [c] {
            return Err(format!("{name} {t} must be f32[{c}] for input {x}"));
        }
    }
    Ok(c)
}

fn reshape(t: &TensorType, shape: &[i64]) -> R<Vec<TensorType>> {
    let mut infer_at = None;
    let mut out = Shape::new();
    for (i, &d) in shape.iter().enumerate() {
        match d {
            -1 if infer_at.is_none() => {
                infer_at = Some(i);
                out.push(1);
            }
            -1 => return Err(format!("shape {shape:?} has more than one -1")),
            d if d < 0 => return Err(format!("shape {shape:?} has a negative extent")),
            d => out.push(usize::try_from(d).map_err(|_| format!("shape {shape:?} is too large"))?),
        }
    }
    let known = checked_numel(&out).ok_or_else(|| format!("shape {shape:?} overflows"))?;
    let total = t.numel();
    if let Some(i) = infer_at {
        if known == 0 || !total.is_multiple_of(known) {
            return Err(format!(
                "cannot reshape {t} ({total} elements) to {shape:?}"
            ));
        }
        out[i] = total / known;
    } else if known != total {
        return Err(format!(
            "cannot reshape {t} ({total} elements) to {shape:?} ({known} elements)"
        ));
    }
    Ok(vec![TensorType {
        dtype: t.dtype,
        shape: out,
    }])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attr::Float;

    fn f(s: &[usize]) -> TensorType {
        TensorType::f32(s)
    }

    #[test]
    fn conv_channels_error_names_shapes() {
        let op = Op::Conv2d {
            stride: [1, 1],
            pad: [0; 4],
            dilation: [1, 1],
            groups: 1,
        };
        let e = infer(&op, &[&f(&[1, 3, 8, 8]), &f(&[4, 1, 3, 3])]).unwrap_err();
        assert_eq!(
            e,
            "input f32[1,3,8,8] has 3 channels, weight f32[4,1,3,3] expects 1"
        );
        let out = infer(&op, &[&f(&[1, 3, 8, 8]), &f(&[4, 3, 3, 3])]).unwrap();
        assert_eq!(out[0], f(&[1, 4, 6, 6]));
    }

    #[test]
    fn broadcast_rules() {
        assert_eq!(
            broadcast_shapes(&[2, 1, 4], &[3, 1]).unwrap().as_slice(),
            &[2, 3, 4]
        );
        assert!(
            broadcast_shapes(&[2, 3], &[4])
                .unwrap_err()
                .contains("do not broadcast")
        );
        let e = infer(
            &Op::Dropout {
                p: Float(1.0),
                seed: 0,
            },
            &[&f(&[2])],
        )
        .unwrap_err();
        assert!(e.contains("outside [0, 1)"), "{e}");
    }
}
