//! 1x1 bottlenecks and sibling merging (TASO-style): fewer, wider kernels.
//!
//! - `merge-convs`: convolutions that read the same input with the same attributes and kernel
//!   size (Inception's parallel 1x1 "reduce" convolutions) become one convolution with the
//!   weights (and biases) concatenated along the output channels, followed by a `split`; each
//!   original class is unioned with its piece. The whole group of siblings merges at once, and
//!   each (input, attributes, kernel) group merges only once, so the e-graph does not fill up
//!   with every subset.
//! - `merge-matmuls`: the same for matrix products sharing their left operand (LSTM gates,
//!   attention projections): `matmul(x, w_i)` (or bias-carrying `gemm`s) become one product
//!   with the weights concatenated along the last axis, and a `split`.
//! - `compose-1x1`: two consecutive 1x1 stride-1 convolutions with constant weights and
//!   nothing between them are one 1x1 convolution (`W = W2 W1`, `b = W2 b1 + b2`).
//! - `enlarge-1x1`: a 1x1 convolution equals a 3x3 one with the kernel zero-padded and padding
//!   1 (for any stride); added only where a 3x3 sibling with padding 1 exists, so that
//!   `merge-convs` can then merge them. It costs 9x the FLOPs, so the extractor keeps it only
//!   when the saved launch and input read pay for that (TASO's enlarge + merge).
//!
//! Whether any of this pays is the cost model's call: a `split` along channels is a free view
//! at batch 1 and a copy otherwise, so merges win on small batches and lose on large ones.
//!
//! There is no rule turning a 1x1 stride-1 convolution into a `matmul`: the JIT already
//! lowers such a convolution as one GEMM per image on the NCHW input (no im2col, bias in the
//! same kernel), so the `matmul` form (reshapes, a batched product, a separate bias `add`)
//! would be the same GEMM plus an elementwise kernel. The cost model prices the convolution
//! as a matrix product instead (see [`crate::cost`]).

use super::{Edit, Rng, Rule, add_const, add_get, add_op, ty, value};
use crate::analysis::EG;
use crate::lang::Node;
use egg::Id;
use sinter_ir::{Builder, Graph, IrError, Op, Tensor, TensorType};

/// The bottleneck rules.
pub static RULES: [Rule; 4] = [
    Rule {
        name: "bottleneck/merge-convs",
        doc: "sibling conv2d on one input (same attributes and kernel) = one conv2d with concatenated weights + split",
        tolerance: 1e-6,
        find: merge_convs,
        sample: sample_merge_convs,
    },
    Rule {
        name: "bottleneck/merge-matmuls",
        doc: "sibling matmul/gemm sharing the left operand = one product with concatenated weights + split",
        tolerance: 1e-6,
        find: merge_matmuls,
        sample: sample_merge_matmuls,
    },
    Rule {
        name: "bottleneck/compose-1x1",
        doc: "conv1x1(conv1x1(x, w1, b1), w2, b2) with constant weights = conv1x1(x, w2 w1, w2 b1 + b2)",
        tolerance: 1e-5,
        find: compose_1x1,
        sample: sample_compose_1x1,
    },
    Rule {
        name: "bottleneck/enlarge-1x1",
        doc: "a 1x1 conv2d = a 3x3 conv2d with zero-padded kernel and padding 1, where a 3x3 sibling exists",
        tolerance: 1e-6,
        find: enlarge_1x1,
        sample: sample_enlarge_1x1,
    },
];

fn is_1x1(eg: &EG, op: &Op, w: Id) -> bool {
    let s = &ty(eg, w).shape;
    s.len() == 4
        && s[2] == 1
        && s[3] == 1
        && matches!(
            op,
            Op::Conv2d {
                pad: [0, 0, 0, 0],
                dilation: [1, 1],
                groups: 1,
                ..
            }
        )
}

/// Canonical op parents of class `x`: (parent class, op, canonical children).
fn parents(eg: &EG, x: Id) -> Vec<(Id, Op, Vec<Id>)> {
    let mut out: Vec<(Id, Op, Vec<Id>)> = Vec::new();
    for p in eg[x].parents() {
        if let Node::Op(op, ch) = eg.id_to_node(p) {
            let ch: Vec<Id> = ch.iter().map(|&c| eg.find(c)).collect();
            let class = eg.find(p);
            if !out
                .iter()
                .any(|(c, o, k)| *c == class && o == op && *k == ch)
            {
                out.push((class, op.clone(), ch));
            }
        }
    }
    out.sort_by_key(|(c, _, _)| *c);
    out
}

/// True when every use of class `c` is a batch norm that has been folded (whose class also
/// holds a convolution or product): the unfolded op is dead weight, not a sibling to merge.
fn only_feeds_folded_bn(eg: &EG, c: Id) -> bool {
    let mut any = false;
    for p in eg[c].parents() {
        let folded = matches!(eg.id_to_node(p), Node::Op(Op::BatchNorm { .. }, _))
            && eg[eg.find(p)].iter().any(|n| {
                matches!(
                    n,
                    Node::Op(
                        Op::Conv2d { .. } | Op::Gemm { .. } | Op::ConvTranspose2d { .. },
                        _
                    )
                )
            });
        if !folded {
            return false;
        }
        any = true;
    }
    any
}

/// One member per class of the group that `accept` admits, in class order.
fn group(eg: &EG, x: Id, accept: impl Fn(&Op, &[Id]) -> bool) -> Vec<(Id, Op, Vec<Id>)> {
    let mut members: Vec<(Id, Op, Vec<Id>)> = Vec::new();
    for (class, op, ch) in parents(eg, x) {
        if ch[0] == x
            && accept(&op, &ch)
            && !members.iter().any(|(c, _, _)| *c == class)
            && !only_feeds_folded_bn(eg, class)
        {
            members.push((class, op, ch));
        }
    }
    members
}

/// Emits the merge of a sibling group: concatenated weights (and biases, zeros where one is
/// missing) along `w_axis`, the merged op, a split along `out_axis`, and the unions.
fn merge_group(
    key: (Id, String),
    members: Vec<(Id, Op, Vec<Id>)>,
    w_axis: i64,
    out_axis: i64,
    op_with_bias: Option<Op>,
) -> Vec<Edit> {
    vec![Box::new(move |eg: &mut EG| {
        eg.analysis.merged.insert(key);
        let x = members[0].2[0];
        let ws: Vec<Id> = members.iter().map(|m| m.2[1]).collect();
        let w = add_op(eg, Op::Concat { axis: w_axis }, &ws)?;
        let any_bias = members.iter().any(|m| m.2.len() == 3);
        let mut inputs = vec![x, w];
        let mut op = members[0].1.clone();
        if any_bias {
            let mut bs = Vec::new();
            for m in &members {
                let b = match m.2.get(2) {
                    Some(&b) => b,
                    None => {
                        let t = ty(eg, m.0);
                        let ax = sinter_ir::infer::norm_axis(out_axis, t.rank()).ok()?;
                        let n = t.shape[ax];
                        add_const(eg, Tensor::full(&[n], 0.0))
                    }
                };
                bs.push(b);
            }
            inputs.push(add_op(eg, Op::Concat { axis: 0 }, &bs)?);
            if let Some(o) = &op_with_bias {
                op = o.clone();
            }
        }
        let merged = add_op(eg, op, &inputs)?;
        let rank = ty(eg, merged).rank();
        let ax = sinter_ir::infer::norm_axis(out_axis, rank).ok()?;
        let sizes: Vec<i64> = members
            .iter()
            .map(|m| ty(eg, m.0).shape[ax] as i64)
            .collect();
        let split = add_op(
            eg,
            Op::Split {
                axis: out_axis,
                sizes,
            },
            &[merged],
        )?;
        let mut first = None;
        for (i, m) in members.iter().enumerate() {
            let piece = add_get(eg, i, split);
            if i == 0 {
                first = Some(piece);
            } else {
                eg.union(m.0, piece);
            }
        }
        first
    })]
}

fn merge_convs(eg: &EG, class: Id, node: &Node) -> Vec<Edit> {
    let Some((op @ Op::Conv2d { groups: 1, .. }, ch)) = node.as_op() else {
        return vec![];
    };
    let (x, w) = (eg.find(ch[0]), ch[1]);
    let kshape = ty(eg, w).shape[1..].to_vec();
    let key = (x, format!("{op:?}{kshape:?}"));
    if eg.analysis.merged.contains(&key) {
        return vec![];
    }
    let members = group(eg, x, |o, c| {
        o == op && ty(eg, c[1]).shape[1..] == kshape[..]
    });
    if members.len() < 2 || members[0].0 != eg.find(class) {
        return vec![];
    }
    merge_group(key, members, 0, 1, None)
}

fn merge_matmuls(eg: &EG, class: Id, node: &Node) -> Vec<Edit> {
    let Some((op, ch)) = node.as_op() else {
        return vec![];
    };
    let plain = Op::Gemm {
        trans_a: false,
        trans_b: false,
        alpha: 1.0.into(),
        beta: 1.0.into(),
    };
    let ok = |o: &Op, c: &[Id]| {
        let w2d = c.len() >= 2 && ty(eg, c[1]).rank() == 2;
        match o {
            Op::Matmul {} => w2d && ty(eg, c[0]).rank() >= 2,
            Op::Gemm { .. } => {
                w2d && *o == plain
                    && (c.len() == 2 || ty(eg, c[2]).shape.as_slice() == [ty(eg, c[1]).shape[1]])
            }
            _ => false,
        }
    };
    if !ok(op, ch) {
        return vec![];
    }
    let x = eg.find(ch[0]);
    let k = ty(eg, ch[1]).shape[0];
    let key = (x, format!("{:?}{k}", op.kind()));
    if eg.analysis.merged.contains(&key) {
        return vec![];
    }
    let members = group(eg, x, |o, c| {
        o.kind() == op.kind() && ok(o, c) && ty(eg, c[1]).shape[0] == k
    });
    if members.len() < 2 || members[0].0 != eg.find(class) {
        return vec![];
    }
    merge_group(key, members, 1, -1, Some(plain))
}

fn compose_1x1(eg: &EG, _class: Id, node: &Node) -> Vec<Edit> {
    let Some((op2, ch2)) = node.as_op() else {
        return vec![];
    };
    if !matches!(op2, Op::Conv2d { stride: [1, 1], .. })
        || !is_1x1(eg, op2, ch2[1])
        || value(eg, ch2[1]).is_none()
    {
        return vec![];
    }
    let mut out: Vec<Edit> = Vec::new();
    for n in eg[ch2[0]].iter() {
        let Some((op1, ch1)) = n.as_op() else {
            continue;
        };
        if op1 != op2 || !is_1x1(eg, op1, ch1[1]) || value(eg, ch1[1]).is_none() {
            continue;
        }
        let (op, ch1, ch2) = (op1.clone(), ch1.to_vec(), ch2.to_vec());
        out.push(Box::new(move |eg: &mut EG| {
            let (k2, k1) = (ty(eg, ch2[1]).shape[0], ty(eg, ch2[1]).shape[1]);
            let c = ty(eg, ch1[1]).shape[1];
            let r = |eg: &mut EG, id, s: &[usize]| {
                let shape = s.iter().map(|&d| d as i64).collect();
                add_op(eg, Op::Reshape { shape }, &[id])
            };
            let w2 = r(eg, ch2[1], &[k2, k1])?;
            let w1 = r(eg, ch1[1], &[k1, c])?;
            let w = add_op(eg, Op::Matmul {}, &[w2, w1])?;
            let w = r(eg, w, &[k2, c, 1, 1])?;
            let b = match (ch1.get(2), ch2.get(2)) {
                (None, None) => None,
                (b1, b2) => {
                    let b1 = match b1 {
                        Some(&b1) => {
                            let b1 = r(eg, b1, &[k1, 1])?;
                            let p = add_op(eg, Op::Matmul {}, &[w2, b1])?;
                            Some(r(eg, p, &[k2])?)
                        }
                        None => None,
                    };
                    match (b1, b2) {
                        (Some(a), Some(&b)) => add_op(eg, Op::Add {}, &[a, b]),
                        (Some(a), None) => Some(a),
                        (None, Some(&b)) => Some(b),
                        (None, None) => None,
                    }
                }
            };
            let mut inputs = vec![ch1[0], w];
            inputs.extend(b);
            add_op(eg, op, &inputs)
        }));
    }
    out
}

fn enlarge_1x1(eg: &EG, _class: Id, node: &Node) -> Vec<Edit> {
    let Some((op @ Op::Conv2d { stride, .. }, ch)) = node.as_op() else {
        return vec![];
    };
    if !is_1x1(eg, op, ch[1]) || value(eg, ch[1]).is_none() {
        return vec![];
    }
    let x = eg.find(ch[0]);
    let c = ty(eg, ch[1]).shape[1];
    let target = Op::Conv2d {
        stride: *stride,
        pad: [1, 1, 1, 1],
        dilation: [1, 1],
        groups: 1,
    };
    let has_3x3 = !group(eg, x, |o, k| {
        *o == target && ty(eg, k[1]).shape[1..] == [c, 3, 3]
    })
    .is_empty();
    if !has_3x3 {
        return vec![];
    }
    let ch = ch.to_vec();
    vec![Box::new(move |eg: &mut EG| {
        let pads = vec![0, 0, 1, 1, 0, 0, 1, 1];
        let w = add_op(
            eg,
            Op::Pad {
                pads,
                value: 0.0.into(),
            },
            &[ch[1]],
        )?;
        let mut inputs = ch.clone();
        inputs[1] = w;
        add_op(eg, target, &inputs)
    })]
}

// ---------------------------------------------------------------------------------------
// Random instances.

fn conv_op(stride: i64, pad: i64) -> Op {
    Op::Conv2d {
        stride: [stride; 2],
        pad: [pad; 4],
        dilation: [1, 1],
        groups: 1,
    }
}

fn sample_merge_convs(r: &mut Rng) -> Result<Graph, IrError> {
    let mut b = Builder::new("merge_convs");
    let (n, c) = (r.int(1, 2), r.int(1, 3));
    let x = b.input("x", TensorType::f32(&[n, c, 5, 5]))?;
    let mut outs = Vec::new();
    for i in 0..3 {
        let k = r.int(1, 3);
        let w = b.constant(r.tensor(&[k, c, 1, 1], -1.0, 1.0))?;
        let y = if i == 1 {
            b.op(conv_op(1, 0), &[x, w])?
        } else {
            let bias = b.constant(r.tensor(&[k], -1.0, 1.0))?;
            b.op(conv_op(1, 0), &[x, w, bias])?
        };
        outs.push(b.relu(y)?);
    }
    b.finish(&outs)
}

fn sample_merge_matmuls(r: &mut Rng) -> Result<Graph, IrError> {
    let mut b = Builder::new("merge_matmuls");
    let (m, k) = (r.int(1, 3), r.int(1, 4));
    let x = b.input("x", TensorType::f32(&[m, k]))?;
    let mut outs = Vec::new();
    for i in 0..3 {
        let n = r.int(1, 3);
        let w = b.param(&format!("w{i}"), TensorType::f32(&[k, n]))?;
        outs.push(b.matmul(x, w)?);
    }
    for i in 0..2 {
        let n = r.int(1, 3);
        let w = b.param(&format!("v{i}"), TensorType::f32(&[k, n]))?;
        let bias = b.param(&format!("b{i}"), TensorType::f32(&[n]))?;
        outs.push(b.linear(x, w, Some(bias))?);
    }
    b.finish(&outs)
}

fn sample_compose_1x1(r: &mut Rng) -> Result<Graph, IrError> {
    let mut b = Builder::new("compose_1x1");
    let (c, k1, k2) = (r.int(1, 4), r.int(1, 4), r.int(1, 4));
    let x = b.input("x", TensorType::f32(&[1, c, 3, 3]))?;
    let w1 = b.constant(r.tensor(&[k1, c, 1, 1], -1.0, 1.0))?;
    let b1 = b.constant(r.tensor(&[k1], -1.0, 1.0))?;
    let w2 = b.constant(r.tensor(&[k2, k1, 1, 1], -1.0, 1.0))?;
    let y = b.op(conv_op(1, 0), &[x, w1, b1])?;
    let z = b.op(conv_op(1, 0), &[y, w2])?;
    b.finish(&[z])
}

fn sample_enlarge_1x1(r: &mut Rng) -> Result<Graph, IrError> {
    let mut b = Builder::new("enlarge_1x1");
    let (c, k1, k2) = (r.int(1, 3), r.int(1, 3), r.int(1, 3));
    let stride = r.int(1, 2) as i64;
    let x = b.input("x", TensorType::f32(&[1, c, 5, 5]))?;
    let w1 = b.constant(r.tensor(&[k1, c, 1, 1], -1.0, 1.0))?;
    let w3 = b.constant(r.tensor(&[k2, c, 3, 3], -1.0, 1.0))?;
    let a = b.op(conv_op(stride, 0), &[x, w1])?;
    let d = b.op(conv_op(stride, 1), &[x, w3])?;
    b.finish(&[a, d])
}
