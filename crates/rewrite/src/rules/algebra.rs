//! Algebra and layout: constant folding, identities, cancelling pairs, bias absorption.
//!
//! These rules only ever remove work or replace a sequence by a cheaper single op, so the
//! extractor takes them whenever they match: `relu(relu x) = relu x`, `x * 1 = x`, `x + 0 =
//! x`, transposes and reshapes that compose or cancel, a `concat` of a `split`'s pieces (or
//! pieces of a `split` of a `concat`), `log(softmax x) = log_softmax x` (also more stable),
//! and a bias `add` after a convolution or matrix product moved into the op's bias input
//! (which is what lets the epilogue fusion see `conv + bias + activation` as one op).
//! Constant folding is a rule too: any class whose value the analysis computed gets a
//! constant e-node.

use super::{Edit, Rng, Rule, add_const, add_op, all_equal, ops, single, ty, value};
use crate::analysis::EG;
use crate::lang::Node;
use egg::Id;
use sinter_ir::{Builder, Graph, IrError, Op, TensorType};

/// The algebra and layout rules.
pub static RULES: [Rule; 13] = [
    Rule {
        name: "algebra/const-fold",
        doc: "a class whose value is known (all operands constant, small enough) becomes a constant",
        tolerance: 0.0,
        find: const_fold,
        sample: sample_const_fold,
    },
    Rule {
        name: "algebra/relu-relu",
        doc: "relu(relu x) = relu x",
        tolerance: 0.0,
        find: relu_relu,
        sample: sample_relu_relu,
    },
    Rule {
        name: "algebra/mul-one",
        doc: "x * 1 = x (either side) when the constant does not change the shape",
        tolerance: 0.0,
        find: mul_one,
        sample: sample_mul_one,
    },
    Rule {
        name: "algebra/add-zero",
        doc: "x + 0 = x and x - 0 = x when the constant does not change the shape",
        tolerance: 0.0,
        find: add_zero,
        sample: sample_add_zero,
    },
    Rule {
        name: "algebra/transpose-transpose",
        doc: "two transposes compose into one; the identity permutation disappears",
        tolerance: 0.0,
        find: transpose_transpose,
        sample: sample_transpose,
    },
    Rule {
        name: "algebra/reshape-reshape",
        doc: "reshape/flatten of a reshape/flatten is one reshape; a reshape to the same shape is the identity",
        tolerance: 0.0,
        find: reshape_reshape,
        sample: sample_reshape,
    },
    Rule {
        name: "algebra/concat-split",
        doc: "concat of all of a split's pieces, in order and on the same axis, is the split's input",
        tolerance: 0.0,
        find: concat_split,
        sample: sample_concat_split,
    },
    Rule {
        name: "algebra/split-concat",
        doc: "piece i of a split of a concat whose sizes match the concatenated parts is part i",
        tolerance: 0.0,
        find: split_concat,
        sample: sample_split_concat,
    },
    Rule {
        name: "algebra/log-softmax",
        doc: "log(softmax x) = log_softmax x (one op, and stable)",
        tolerance: 1e-5,
        find: log_softmax,
        sample: sample_log_softmax,
    },
    Rule {
        name: "algebra/conv-bias",
        doc: "conv2d(x, w) + b with b of shape [C,1,1] or [1,C,1,1] = conv2d(x, w, b)",
        tolerance: 1e-6,
        find: conv_bias,
        sample: sample_conv_bias,
    },
    Rule {
        name: "algebra/matmul-bias",
        doc: "matmul(x, w) + b for 2-D x, w and b of shape [N] = gemm(x, w, b)",
        tolerance: 1e-6,
        find: matmul_bias,
        sample: sample_matmul_bias,
    },
    Rule {
        name: "algebra/elementwise-concat",
        doc: "unary(concat(a, b)) = concat(unary a, unary b): lets a concat feed a fused epilogue",
        tolerance: 0.0,
        find: unary_concat,
        sample: sample_unary_concat,
    },
    Rule {
        name: "algebra/elementwise-split",
        doc: "unary(piece i of split y) = piece i of split(unary y): a merged op's pieces share one epilogue",
        tolerance: 0.0,
        find: unary_split,
        sample: sample_unary_split,
    },
];

fn edit(f: impl FnOnce(&mut EG) -> Option<Id> + Send + 'static) -> Vec<Edit> {
    vec![Box::new(f)]
}

fn const_fold(eg: &EG, class: Id, node: &Node) -> Vec<Edit> {
    // Fire once per class, from its first e-node, and only when no constant is there yet.
    if !std::ptr::eq(node, &eg[class].nodes[0])
        || eg[class].iter().any(|n| matches!(n, Node::Const(_)))
    {
        return vec![];
    }
    match value(eg, class) {
        Some(t) => {
            let t = t.clone();
            edit(move |eg| Some(add_const(eg, t)))
        }
        None => vec![],
    }
}

fn relu_relu(eg: &EG, _class: Id, node: &Node) -> Vec<Edit> {
    let Some((Op::Relu {}, &[x])) = node.as_op() else {
        return vec![];
    };
    if ops(eg, x).any(|(op, _)| matches!(op, Op::Relu {})) {
        return edit(move |_| Some(x));
    }
    vec![]
}

/// The operand that survives `op(a, b)` when the other one is a constant all equal to `v`
/// and does not broadcast the result beyond the survivor's shape.
fn identity_operand(eg: &EG, class: Id, a: Id, b: Id, v: f32) -> Option<Id> {
    let out = ty(eg, class);
    let is_id = |c: Id| value(eg, c).is_some_and(|t| all_equal(t, v));
    if is_id(b) && ty(eg, a) == out {
        Some(a)
    } else {
        None
    }
}

fn mul_one(eg: &EG, class: Id, node: &Node) -> Vec<Edit> {
    let Some((Op::Mul {}, &[a, b])) = node.as_op() else {
        return vec![];
    };
    match identity_operand(eg, class, a, b, 1.0).or_else(|| identity_operand(eg, class, b, a, 1.0))
    {
        Some(x) => edit(move |_| Some(x)),
        None => vec![],
    }
}

fn add_zero(eg: &EG, class: Id, node: &Node) -> Vec<Edit> {
    let x = match node.as_op() {
        Some((Op::Add {}, &[a, b])) => identity_operand(eg, class, a, b, 0.0)
            .or_else(|| identity_operand(eg, class, b, a, 0.0)),
        Some((Op::Sub {}, &[a, b])) => identity_operand(eg, class, a, b, 0.0),
        _ => None,
    };
    match x {
        Some(x) => edit(move |_| Some(x)),
        None => vec![],
    }
}

fn transpose_transpose(eg: &EG, _class: Id, node: &Node) -> Vec<Edit> {
    let Some((Op::Transpose { perm: outer }, &[t])) = node.as_op() else {
        return vec![];
    };
    let mut out = Vec::new();
    for (op, ch) in ops(eg, t) {
        let Op::Transpose { perm: inner } = op else {
            continue;
        };
        let x = ch[0];
        let rank = ty(eg, x).rank();
        let (Ok(o), Ok(i)) = (
            sinter_ir::infer::norm_axes(outer, rank),
            sinter_ir::infer::norm_axes(inner, rank),
        ) else {
            continue;
        };
        // out axis k = t axis o[k] = x axis i[o[k]].
        let composed: Vec<i64> = o.iter().map(|&k| i[k] as i64).collect();
        let identity = composed.iter().enumerate().all(|(k, &p)| p == k as i64);
        out.extend(edit(move |eg| {
            if identity {
                Some(x)
            } else {
                add_op(eg, Op::Transpose { perm: composed }, &[x])
            }
        }));
    }
    out
}

fn is_reshape(op: &Op) -> bool {
    matches!(op, Op::Reshape { .. } | Op::Flatten { .. })
}

fn shape_i64(t: &TensorType) -> Vec<i64> {
    t.shape.iter().map(|&d| d as i64).collect()
}

fn reshape_reshape(eg: &EG, class: Id, node: &Node) -> Vec<Edit> {
    let Some((op, &[t])) = node.as_op() else {
        return vec![];
    };
    if !is_reshape(op) {
        return vec![];
    }
    let target = shape_i64(ty(eg, class));
    if ty(eg, t) == ty(eg, class) {
        return edit(move |_| Some(t));
    }
    let mut out = Vec::new();
    for (inner, ch) in ops(eg, t) {
        if is_reshape(inner) {
            let x = ch[0];
            let target = target.clone();
            out.extend(edit(move |eg| {
                add_op(eg, Op::Reshape { shape: target }, &[x])
            }));
        }
    }
    out
}

fn concat_split(eg: &EG, _class: Id, node: &Node) -> Vec<Edit> {
    let Some((Op::Concat { axis }, parts)) = node.as_op() else {
        return vec![];
    };
    // Every part must be `get i` of one and the same split, i = 0, 1, ... in order.
    let mut tuple = None;
    for (i, &p) in parts.iter().enumerate() {
        let found = eg[p].iter().find_map(|n| match n {
            Node::Get(k, [t]) if *k as usize == i => Some(*t),
            _ => None,
        });
        match (found, tuple) {
            (Some(t), None) if i == 0 => tuple = Some(t),
            (Some(t), Some(u)) if eg.find(t) == eg.find(u) => {}
            _ => return vec![],
        }
    }
    let Some(t) = tuple else { return vec![] };
    for (op, ch) in ops(eg, t) {
        if let Op::Split { axis: a, sizes } = op {
            let rank = ty(eg, ch[0]).rank();
            let same_axis = sinter_ir::infer::norm_axis(*a, rank).ok()
                == sinter_ir::infer::norm_axis(*axis, rank).ok();
            if same_axis && sizes.len() == parts.len() {
                let x = ch[0];
                return edit(move |_| Some(x));
            }
        }
    }
    vec![]
}

fn split_concat(eg: &EG, _class: Id, node: &Node) -> Vec<Edit> {
    let Node::Get(i, [t]) = node else {
        return vec![];
    };
    let i = *i as usize;
    for (op, ch) in ops(eg, *t) {
        let Op::Split { axis, sizes } = op else {
            continue;
        };
        let rank = ty(eg, ch[0]).rank();
        let Ok(ax) = sinter_ir::infer::norm_axis(*axis, rank) else {
            continue;
        };
        for (cop, parts) in ops(eg, ch[0]) {
            let Op::Concat { axis: ca } = cop else {
                continue;
            };
            if sinter_ir::infer::norm_axis(*ca, rank).ok() != Some(ax) || parts.len() != sizes.len()
            {
                continue;
            }
            let fits = parts
                .iter()
                .zip(sizes)
                .all(|(p, &s)| ty(eg, *p).shape[ax] as i64 == s);
            if fits {
                let p = parts[i];
                return edit(move |_| Some(p));
            }
        }
    }
    vec![]
}

fn log_softmax(eg: &EG, _class: Id, node: &Node) -> Vec<Edit> {
    let Some((Op::Log {}, &[s])) = node.as_op() else {
        return vec![];
    };
    for (op, ch) in ops(eg, s) {
        if let Op::Softmax { axis } = op {
            let (axis, x) = (*axis, ch[0]);
            return edit(move |eg| add_op(eg, Op::LogSoftmax { axis }, &[x]));
        }
    }
    vec![]
}

fn conv_bias(eg: &EG, class: Id, node: &Node) -> Vec<Edit> {
    let Some((Op::Add {}, &[a, b])) = node.as_op() else {
        return vec![];
    };
    let mut out = Vec::new();
    for (conv, bias) in [(a, b), (b, a)] {
        if ty(eg, conv) != ty(eg, class) || !single(eg, bias) {
            continue;
        }
        let c = ty(eg, conv).shape.get(1).copied().unwrap_or(0);
        let bs = &ty(eg, bias).shape;
        if !(bs.as_slice() == [c, 1, 1] || bs.as_slice() == [1, c, 1, 1]) {
            continue;
        }
        for (op, ch) in ops(eg, conv) {
            if let (Op::Conv2d { .. }, &[x, w]) = (op, ch) {
                let op = op.clone();
                out.extend(edit(move |eg| {
                    let flat = add_op(
                        eg,
                        Op::Reshape {
                            shape: vec![c as i64],
                        },
                        &[bias],
                    )?;
                    add_op(eg, op, &[x, w, flat])
                }));
            }
        }
    }
    out
}

fn matmul_bias(eg: &EG, class: Id, node: &Node) -> Vec<Edit> {
    let Some((Op::Add {}, &[a, b])) = node.as_op() else {
        return vec![];
    };
    let mut out = Vec::new();
    for (mm, bias) in [(a, b), (b, a)] {
        if ty(eg, mm) != ty(eg, class) || ty(eg, mm).rank() != 2 || !single(eg, bias) {
            continue;
        }
        let n = ty(eg, mm).shape[1];
        if ty(eg, bias).shape.as_slice() != [n] {
            continue;
        }
        for (op, ch) in ops(eg, mm) {
            if let (Op::Matmul {}, &[x, w]) = (op, ch) {
                out.extend(edit(move |eg| {
                    let gemm = Op::Gemm {
                        trans_a: false,
                        trans_b: false,
                        alpha: 1.0.into(),
                        beta: 1.0.into(),
                    };
                    add_op(eg, gemm, &[x, w, bias])
                }));
            }
        }
    }
    out
}

fn unary_concat(eg: &EG, _class: Id, node: &Node) -> Vec<Edit> {
    let Some((op, &[c])) = node.as_op() else {
        return vec![];
    };
    if !matches!(
        op,
        Op::Relu {} | Op::Sigmoid {} | Op::Tanh {} | Op::LeakyRelu { .. }
    ) {
        return vec![];
    }
    let mut out = Vec::new();
    for (cop, parts) in ops(eg, c) {
        if let Op::Concat { .. } = cop {
            let (op, cop, parts) = (op.clone(), cop.clone(), parts.to_vec());
            out.extend(edit(move |eg| {
                let mapped: Option<Vec<Id>> = parts
                    .iter()
                    .map(|&p| add_op(eg, op.clone(), &[p]))
                    .collect();
                add_op(eg, cop, &mapped?)
            }));
        }
    }
    out
}

fn unary_split(eg: &EG, _class: Id, node: &Node) -> Vec<Edit> {
    let Some((op, &[p])) = node.as_op() else {
        return vec![];
    };
    if !matches!(
        op,
        Op::Relu {} | Op::Sigmoid {} | Op::Tanh {} | Op::LeakyRelu { .. }
    ) {
        return vec![];
    }
    let mut out = Vec::new();
    for n in eg[p].iter() {
        let Node::Get(i, [t]) = n else { continue };
        for (sop, ch) in ops(eg, *t) {
            if let Op::Split { .. } = sop {
                let (op, sop, z, i) = (op.clone(), sop.clone(), ch[0], *i as usize);
                out.extend(edit(move |eg| {
                    let a = add_op(eg, op, &[z])?;
                    let s = add_op(eg, sop, &[a])?;
                    Some(super::add_get(eg, i, s))
                }));
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Random instances.

fn dims(r: &mut Rng, rank: usize) -> Vec<usize> {
    (0..rank).map(|_| r.int(1, 4)).collect()
}

fn sample_const_fold(r: &mut Rng) -> Result<Graph, IrError> {
    let mut b = Builder::new("const_fold");
    let s = dims(r, 2);
    let x = b.input("x", TensorType::f32(&s))?;
    let c1 = b.constant(r.tensor(&s, -1.0, 1.0))?;
    let c2 = b.constant(r.tensor(&s, 0.5, 1.5))?;
    let e = b.exp(c1)?;
    let k = b.mul(e, c2)?;
    let y = b.add(x, k)?;
    b.finish(&[y])
}

fn sample_relu_relu(r: &mut Rng) -> Result<Graph, IrError> {
    let mut b = Builder::new("relu_relu");
    let x = b.input("x", TensorType::f32(&dims(r, 3)))?;
    let y = b.relu(x)?;
    let z = b.relu(y)?;
    b.finish(&[z])
}

fn sample_mul_one(r: &mut Rng) -> Result<Graph, IrError> {
    let mut b = Builder::new("mul_one");
    let s = dims(r, 3);
    let x = b.input("x", TensorType::f32(&s))?;
    let one = b.constant(sinter_ir::Tensor::full(&s[2..], 1.0))?;
    let y = b.mul(one, x)?;
    b.finish(&[y])
}

fn sample_add_zero(r: &mut Rng) -> Result<Graph, IrError> {
    let mut b = Builder::new("add_zero");
    let s = dims(r, 2);
    let x = b.input("x", TensorType::f32(&s))?;
    let zero = b.scalar(0.0)?;
    let y = b.add(x, zero)?;
    let z = b.sub(y, zero)?;
    b.finish(&[z])
}

fn sample_transpose(r: &mut Rng) -> Result<Graph, IrError> {
    let mut b = Builder::new("transpose");
    let x = b.input("x", TensorType::f32(&dims(r, 3)))?;
    let p1 = [[1, 2, 0], [2, 0, 1], [0, 2, 1]][r.int(0, 2)];
    let p2 = [[2, 0, 1], [1, 0, 2], [1, 2, 0]][r.int(0, 2)];
    let y = b.transpose(x, &p1)?;
    let z = b.transpose(y, &p2)?;
    let mut inverse = [0i64; 3];
    for (k, &p) in p1.iter().enumerate() {
        inverse[p as usize] = k as i64;
    }
    let back = b.transpose(y, &inverse)?;
    b.finish(&[z, back])
}

fn sample_reshape(r: &mut Rng) -> Result<Graph, IrError> {
    let mut b = Builder::new("reshape");
    let s = dims(r, 4);
    let x = b.input("x", TensorType::f32(&s))?;
    let f = b.flatten(x, 2)?;
    let y = b.reshape(f, &[-1])?;
    let same = b.reshape(x, &s.iter().map(|&d| d as i64).collect::<Vec<_>>())?;
    let z = b.relu(same)?;
    b.finish(&[y, z])
}

fn sample_concat_split(r: &mut Rng) -> Result<Graph, IrError> {
    let mut b = Builder::new("concat_split");
    let (n, c1, c2) = (r.int(1, 3), r.int(1, 3), r.int(1, 3));
    let x = b.input("x", TensorType::f32(&[n, c1 + c2, 2]))?;
    let parts = b.split(x, 1, &[c1 as i64, c2 as i64])?;
    let y = b.concat(&parts, -2)?;
    let z = b.relu(y)?;
    b.finish(&[z])
}

fn sample_split_concat(r: &mut Rng) -> Result<Graph, IrError> {
    let mut b = Builder::new("split_concat");
    let (c1, c2) = (r.int(1, 3), r.int(1, 3));
    let x = b.input("x", TensorType::f32(&[2, c1]))?;
    let y = b.input("y", TensorType::f32(&[2, c2]))?;
    let c = b.concat(&[x, y], 1)?;
    let parts = b.split(c, 1, &[c1 as i64, c2 as i64])?;
    let a = b.tanh(parts[0])?;
    let d = b.sigmoid(parts[1])?;
    b.finish(&[a, d])
}

fn sample_log_softmax(r: &mut Rng) -> Result<Graph, IrError> {
    let mut b = Builder::new("log_softmax");
    let x = b.input("x", TensorType::f32(&dims(r, 2)))?;
    let s = b.softmax(x, -1)?;
    let y = b.log(s)?;
    b.finish(&[y])
}

fn sample_conv_bias(r: &mut Rng) -> Result<Graph, IrError> {
    let mut b = Builder::new("conv_bias");
    let (n, c, k) = (r.int(1, 2), r.int(1, 3), r.int(1, 4));
    let x = b.input("x", TensorType::f32(&[n, c, 5, 5]))?;
    let w = b.param("w", TensorType::f32(&[k, c, 3, 3]))?;
    let bias = b.param("b", TensorType::f32(&[k, 1, 1]))?;
    let y = b.conv2d(x, w, None, 1, 1)?;
    let z = b.add(y, bias)?;
    b.finish(&[z])
}

fn sample_matmul_bias(r: &mut Rng) -> Result<Graph, IrError> {
    let mut b = Builder::new("matmul_bias");
    let (m, k, n) = (r.int(1, 4), r.int(1, 4), r.int(1, 4));
    let x = b.input("x", TensorType::f32(&[m, k]))?;
    let w = b.param("w", TensorType::f32(&[k, n]))?;
    let bias = b.param("b", TensorType::f32(&[n]))?;
    let y = b.matmul(x, w)?;
    let z = b.add(bias, y)?;
    b.finish(&[z])
}

fn sample_unary_concat(r: &mut Rng) -> Result<Graph, IrError> {
    let mut b = Builder::new("unary_concat");
    let x = b.input("x", TensorType::f32(&[2, r.int(1, 3)]))?;
    let y = b.input("y", TensorType::f32(&[2, r.int(1, 3)]))?;
    let c = b.concat(&[x, y], 1)?;
    let z = b.relu(c)?;
    b.finish(&[z])
}

fn sample_unary_split(r: &mut Rng) -> Result<Graph, IrError> {
    let mut b = Builder::new("unary_split");
    let (c1, c2) = (r.int(1, 3), r.int(1, 3));
    let x = b.input("x", TensorType::f32(&[2, c1 + c2]))?;
    let parts = b.split(x, 1, &[c1 as i64, c2 as i64])?;
    let a = b.relu(parts[0])?;
    let d = b.tanh(parts[1])?;
    b.finish(&[a, d])
}
