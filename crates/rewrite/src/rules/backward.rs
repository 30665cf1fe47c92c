//! Rules for training graphs: the shapes that `sinter-autodiff`'s gradient table emits.
//!
//! A training step (`sinter_autodiff::training_graph`) is forward, loss, backward and update
//! in one graph, so the forward values the backward pass reads are shared, and several
//! gradient rules leave patterns that a local rule can make cheaper:
//!
//! - `relu-mask-pool`: the relu backward `select(greater(r, 0), g, 0)` after a max-pool
//!   backward `g = max_pool2d_grad(r, d)` moves to the pooled side,
//!   `max_pool2d_grad(r, select(greater(max_pool2d(r), 0), d, 0))`. `max_pool2d_grad` routes
//!   each window's `d` to the window's (first) maximal element `p`, and the mask keeps it iff
//!   `r[p] > 0`; since `r[p]` *is* the window's maximum, that is `max_pool2d(r) > 0` for the
//!   window. So the rule is exact for any sign of `r`, any overlap of windows (each routed
//!   contribution is masked by its own window's maximum) and any padding (padded positions
//!   never win). The mask then runs on the pooled tensor (a quarter of the elements for 2x2
//!   pools), and `max_pool2d(r)` is the forward pass's own value, shared in the e-graph.
//! - `exp-log-softmax`: the softmax cross-entropy backward computes `exp(log_softmax x)`;
//!   that is `softmax x`, which the forward graph often computes already (the class
//!   probabilities), so the extractor pays for it once.
//! - `matmul-transpose`: `matmul`'s gradient multiplies by `transpose(w)` and `transpose(x)`;
//!   for 2-D operands a transposed operand of `matmul`/`gemm` becomes the `trans_a`/`trans_b`
//!   flag of a `gemm`, and the transpose (a copy) goes away.
//! - `implicit-broadcast`: the loss seed and `reduce_*` gradients are `broadcast` explicitly;
//!   an elementwise binary op broadcasts by itself, so `op(broadcast x, y)` is `op(x, y)` when
//!   the result's type does not change (one copy kernel less).
//! - `uniform-const`: a constant operand whose elements are all equal (a folded broadcast of
//!   the loss seed, such as `-1/batch` everywhere) becomes an `f32[]` scalar when the result's
//!   type does not change: the op reads one value instead of a tensor.
//!
//! The relu backward after a linear op's gradient (`conv_transpose2d`, `gemm` with `trans_b`)
//! is fused into that op's epilogue by `fusion/linear-relu-mask` (see [`super::fusion`]).
//!
//! The other simplifications training graphs need are general algebra and fire on them too:
//! `algebra/mul-one` removes the `g * 1` of a gemm bias gradient with `beta = 1`;
//! `algebra/const-fold` folds the loss seed's chain (`neg`, `reshape`, `broadcast`, the
//! `1/batch` of a mean), which is where the gradients of `reduce_sum`/`reduce_mean` put their
//! `broadcast`s in the graphs we looked at, so no separate sum-over-broadcast rule is needed;
//! `algebra/add-zero` removes the accumulator update of a parameter without a gradient path
//! (autodiff gives it a zeros gradient). Autodiff sums a value's gradient contributions
//! without a zero start and emits no double transposes (`gemm` gradients use its flags), so
//! `algebra/transpose-transpose` has nothing to do there.

use super::{Edit, Rng, Rule, add_const, add_op, all_equal, is_zero, ops, ty, value};
use crate::analysis::EG;
use crate::lang::Node;
use egg::Id;
use sinter_ir::infer::{infer, norm_axes};
use sinter_ir::{Builder, Graph, IrError, Op, Tensor, TensorType};

/// The rules for backward graphs.
pub static RULES: [Rule; 5] = [
    Rule {
        name: "backward/relu-mask-pool",
        doc: "select(greater(r, 0), max_pool2d_grad(r, d), 0) = max_pool2d_grad(r, select(greater(max_pool2d(r), 0), d, 0))",
        tolerance: 0.0,
        find: relu_mask_pool,
        sample: sample_relu_mask_pool,
    },
    Rule {
        name: "backward/exp-log-softmax",
        doc: "exp(log_softmax x) = softmax x (shared with the forward probabilities)",
        tolerance: 1e-6,
        find: exp_log_softmax,
        sample: sample_exp_log_softmax,
    },
    Rule {
        name: "backward/matmul-transpose",
        doc: "matmul/gemm of 2-D operands with transpose([1, 0]) operands = gemm with trans_a/trans_b",
        tolerance: 1e-6,
        find: matmul_transpose,
        sample: sample_matmul_transpose,
    },
    Rule {
        name: "backward/implicit-broadcast",
        doc: "binary(broadcast x, y) = binary(x, y) when the result type is the same",
        tolerance: 0.0,
        find: implicit_broadcast,
        sample: sample_implicit_broadcast,
    },
    Rule {
        name: "backward/uniform-const",
        doc: "binary(c, y) with a constant c whose elements all equal v = binary(v, y) with v an f32[] scalar, when the result type is the same",
        tolerance: 0.0,
        find: uniform_const,
        sample: sample_uniform_const,
    },
];

fn relu_mask_pool(eg: &EG, class: Id, node: &Node) -> Vec<Edit> {
    let Some((Op::Select {}, &[cond, g, z])) = node.as_op() else {
        return vec![];
    };
    if !is_zero(eg, z) || ty(eg, g) != ty(eg, class) {
        return vec![];
    }
    let mut out: Vec<Edit> = Vec::new();
    for (cop, cch) in ops(eg, cond) {
        let (Op::Greater {}, &[r, z2]) = (cop, cch) else {
            continue;
        };
        if !is_zero(eg, z2) || ty(eg, r) != ty(eg, class) {
            continue;
        }
        for (gop, gch) in ops(eg, g) {
            let (
                Op::MaxPool2dGrad {
                    kernel,
                    stride,
                    pad,
                },
                &[r2, d],
            ) = (gop, gch)
            else {
                continue;
            };
            if eg.find(r2) != eg.find(r) {
                continue;
            }
            let (kernel, stride, pad) = (*kernel, *stride, *pad);
            out.push(Box::new(move |eg: &mut EG| {
                let p = add_op(
                    eg,
                    Op::MaxPool2d {
                        kernel,
                        stride,
                        pad,
                    },
                    &[r],
                )?;
                let zero = add_const(eg, Tensor::scalar(0.0));
                let m = add_op(eg, Op::Greater {}, &[p, zero])?;
                let kept = add_op(eg, Op::Select {}, &[m, d, zero])?;
                add_op(
                    eg,
                    Op::MaxPool2dGrad {
                        kernel,
                        stride,
                        pad,
                    },
                    &[r, kept],
                )
            }));
        }
    }
    out
}

fn exp_log_softmax(eg: &EG, _class: Id, node: &Node) -> Vec<Edit> {
    let Some((Op::Exp {}, &[l])) = node.as_op() else {
        return vec![];
    };
    let mut out: Vec<Edit> = Vec::new();
    for (op, ch) in ops(eg, l) {
        if let Op::LogSoftmax { axis } = op {
            let (axis, x) = (*axis, ch[0]);
            out.push(Box::new(move |eg: &mut EG| {
                add_op(eg, Op::Softmax { axis }, &[x])
            }));
        }
    }
    out
}

/// The operands `y` of 2-D transposes `transpose(y, [1, 0])` in class `c`.
fn transposed(eg: &EG, c: Id) -> Vec<Id> {
    if ty(eg, c).rank() != 2 {
        return vec![];
    }
    ops(eg, c)
        .filter_map(|(op, ch)| match op {
            Op::Transpose { perm } if norm_axes(perm, 2).ok().as_deref() == Some(&[1, 0][..]) => {
                Some(ch[0])
            }
            _ => None,
        })
        .collect()
}

fn matmul_transpose(eg: &EG, _class: Id, node: &Node) -> Vec<Edit> {
    let Some((op, ch)) = node.as_op() else {
        return vec![];
    };
    let (ta, tb, alpha, beta) = match op {
        Op::Matmul {} => (false, false, 1.0.into(), 1.0.into()),
        Op::Gemm {
            trans_a,
            trans_b,
            alpha,
            beta,
        } => (*trans_a, *trans_b, *alpha, *beta),
        _ => return vec![],
    };
    if ty(eg, ch[0]).rank() != 2 || ty(eg, ch[1]).rank() != 2 {
        return vec![];
    }
    // Each operand as it is, or as the operand of a transpose in its class (flag flipped).
    let side = |c: Id| -> Vec<(Id, bool)> {
        let mut v = vec![(c, false)];
        v.extend(transposed(eg, c).into_iter().map(|y| (y, true)));
        v
    };
    let mut out: Vec<Edit> = Vec::new();
    for &(a, fa) in &side(ch[0]) {
        for &(b, fb) in &side(ch[1]) {
            if !fa && !fb {
                continue;
            }
            let gemm = Op::Gemm {
                trans_a: ta ^ fa,
                trans_b: tb ^ fb,
                alpha,
                beta,
            };
            let mut kids = vec![a, b];
            kids.extend(ch.get(2).copied());
            out.push(Box::new(move |eg: &mut EG| add_op(eg, gemm, &kids)));
        }
    }
    out
}

/// Elementwise binary ops that broadcast their operands.
fn broadcasting_binary(op: &Op) -> bool {
    matches!(
        op,
        Op::Add {}
            | Op::Sub {}
            | Op::Mul {}
            | Op::Div {}
            | Op::Max {}
            | Op::Min {}
            | Op::Pow {}
            | Op::Equal {}
            | Op::Less {}
            | Op::LessEqual {}
            | Op::Greater {}
            | Op::GreaterEqual {}
    )
}

/// True when `op` applied to `kids` has exactly the type of `class`.
fn same_type(eg: &EG, class: Id, op: &Op, kids: &[Id]) -> bool {
    let tys: Vec<&TensorType> = kids.iter().map(|&k| ty(eg, k)).collect();
    infer(op, &tys).is_ok_and(|t| t.len() == 1 && t[0] == *ty(eg, class))
}

fn implicit_broadcast(eg: &EG, class: Id, node: &Node) -> Vec<Edit> {
    let Some((op, &[a, b])) = node.as_op() else {
        return vec![];
    };
    if !broadcasting_binary(op) {
        return vec![];
    }
    let mut out: Vec<Edit> = Vec::new();
    for i in 0..2 {
        for (bop, bch) in ops(eg, [a, b][i]) {
            if !matches!(bop, Op::Broadcast { .. }) {
                continue;
            }
            let mut kids = [a, b];
            kids[i] = bch[0];
            if same_type(eg, class, op, &kids) {
                let op = op.clone();
                out.push(Box::new(move |eg: &mut EG| add_op(eg, op, &kids)));
            }
        }
    }
    out
}

fn uniform_const(eg: &EG, class: Id, node: &Node) -> Vec<Edit> {
    let Some((op, &[a, b])) = node.as_op() else {
        return vec![];
    };
    if !broadcasting_binary(op) {
        return vec![];
    }
    let mut out: Vec<Edit> = Vec::new();
    for i in 0..2 {
        let Some(t) = value(eg, [a, b][i]) else {
            continue;
        };
        let Some(&v) = t.as_f32().and_then(|x| x.first()) else {
            continue;
        };
        if t.shape().is_empty() || !all_equal(t, v) {
            continue;
        }
        // Identities are `algebra/mul-one` and `algebra/add-zero`'s, which remove the op.
        let identity = match op {
            Op::Mul {} | Op::Div {} => v == 1.0,
            Op::Add {} | Op::Sub {} => v == 0.0,
            _ => false,
        };
        if identity {
            continue;
        }
        // The other operand alone must give the result's type.
        let other = [a, b][1 - i];
        if ty(eg, other) != ty(eg, class) {
            continue;
        }
        let op = op.clone();
        out.push(Box::new(move |eg: &mut EG| {
            let s = add_const(eg, Tensor::scalar(v));
            let mut kids = [a, b];
            kids[i] = s;
            add_op(eg, op, &kids)
        }));
    }
    out
}

// ---------------------------------------------------------------------------------------
// Random instances.

fn sample_relu_mask_pool(r: &mut Rng) -> Result<Graph, IrError> {
    let mut b = Builder::new("relu_mask_pool");
    let (n, c) = (r.int(1, 2), r.int(1, 3));
    let x = b.input("x", TensorType::f32(&[n, c, 6, 6]))?;
    // Non-overlapping, overlapping and padded windows; r a relu output or any values.
    let (kernel, stride, pad) = [
        ([2, 2], [2, 2], [0; 4]),
        ([3, 3], [2, 2], [1; 4]),
        ([2, 2], [1, 1], [0, 1, 0, 1]),
    ][r.int(0, 2)];
    let rr = if r.int(0, 2) > 0 { b.relu(x)? } else { x };
    let p = b.op(
        Op::MaxPool2d {
            kernel,
            stride,
            pad,
        },
        &[rr],
    )?;
    let d = b.input("d", b.ty(p).clone())?;
    let g = b.op(
        Op::MaxPool2dGrad {
            kernel,
            stride,
            pad,
        },
        &[rr, d],
    )?;
    let zero = b.scalar(0.0)?;
    let m = b.op(Op::Greater {}, &[rr, zero])?;
    let y = b.op(Op::Select {}, &[m, g, zero])?;
    b.finish(&[p, y])
}

fn sample_exp_log_softmax(r: &mut Rng) -> Result<Graph, IrError> {
    let mut b = Builder::new("exp_log_softmax");
    let x = b.input("x", TensorType::f32(&[r.int(1, 4), r.int(1, 5)]))?;
    let axis = [0, 1, -1][r.int(0, 2)];
    let l = b.op(Op::LogSoftmax { axis }, &[x])?;
    let y = b.exp(l)?;
    b.finish(&[y])
}

fn sample_matmul_transpose(r: &mut Rng) -> Result<Graph, IrError> {
    let mut b = Builder::new("matmul_transpose");
    let (m, k, n) = (r.int(1, 4), r.int(1, 4), r.int(1, 4));
    let at = b.input("at", TensorType::f32(&[k, m]))?;
    let w = b.input("w", TensorType::f32(&[n, k]))?;
    let x = b.input("x", TensorType::f32(&[m, k]))?;
    let a = b.transpose(at, &[1, 0])?;
    let wt = b.transpose(w, &[-1, -2])?;
    let y1 = b.matmul(a, wt)?;
    let y2 = b.matmul(x, wt)?;
    let bias = b.input("b", TensorType::f32(&[n]))?;
    let trans_a = r.int(0, 1) == 1;
    let gemm = Op::Gemm {
        trans_a,
        trans_b: false,
        alpha: r.float(0.5, 2.0).into(),
        beta: r.float(0.5, 2.0).into(),
    };
    // With trans_a the gemm reads a [k, m] operand: the transpose of x.
    let lhs = if trans_a { b.transpose(x, &[1, 0])? } else { a };
    let y3 = b.op(gemm, &[lhs, wt, bias])?;
    b.finish(&[y1, y2, y3])
}

fn sample_implicit_broadcast(r: &mut Rng) -> Result<Graph, IrError> {
    let mut b = Builder::new("implicit_broadcast");
    let (n, m) = (r.int(1, 4), r.int(2, 4));
    let x = b.input("x", TensorType::f32(&[n, 1]))?;
    let y = b.input("y", TensorType::f32(&[n, m]))?;
    let bx = b.op(
        Op::Broadcast {
            shape: vec![n as i64, m as i64],
        },
        &[x],
    )?;
    let p = b.mul(bx, y)?;
    let q = b.sub(y, bx)?;
    let s = b.scalar(0.5)?;
    // Here the broadcast sets the result's shape and must stay.
    let keep = b.mul(bx, s)?;
    b.finish(&[p, q, keep])
}

fn sample_uniform_const(r: &mut Rng) -> Result<Graph, IrError> {
    let mut b = Builder::new("uniform_const");
    let (n, m) = (r.int(1, 4), r.int(1, 4));
    let y = b.input("y", TensorType::f32(&[n, m]))?;
    let v = r.float(-1.0, 1.0);
    let c = b.constant(Tensor::full(&[n, m], v))?;
    let row = b.constant(Tensor::full(&[m], v))?;
    let p = b.mul(c, y)?;
    let q = b.div(y, row)?;
    // A non-uniform constant stays a tensor.
    let mixed = b.constant(r.tensor(&[n, m], -1.0, 1.0))?;
    let s = b.add(y, mixed)?;
    b.finish(&[p, q, s])
}
