//! Batch-norm folding (inference): a batch norm with constant statistics after a linear op
//! becomes a rescaling of the op's weights and a new bias.
//!
//! With `s = gamma / sqrt(var + eps)` and `t = beta - mean * s` (per output channel),
//! `batch_norm(conv(x, w, b)) = conv(x, w * s, b * s + t)`, and likewise for
//! `conv_transpose2d` (output channels on the weight's axis 1), `gemm` and 2-D `matmul`
//! (output features on the weight's last axis). The new weights and bias are written as
//! `mul`/`add` of the old ones with constants; when the old ones are constants too, the
//! analysis folds them at once (with the interpreter) and `algebra/const-fold` turns them
//! into constants, so the folded network carries precomputed weights. With trainable
//! weights the rescaling stays in the graph as a cheap op on the weights, which is still
//! cheaper than a batch norm over the activations.
//!
//! A batch norm *before* a linear op folds into the op's input side:
//! `conv2d(x * s + t, w, b) = conv2d(x, w * s[input channel], b + sum w * t)`, the sum over
//! each output channel's taps. That is exact only when every tap reads a real input element:
//! with zero padding the padded border of the normalised input is 0, not `t`, so
//! `bn_fold/bn-conv2d` requires `pad = 0` (any stride and dilation; grouped convolutions map
//! output channel `o` of group `o / (C_out/groups)` to its own input channels). For 2-D
//! `gemm` (with `trans_a = false`, `alpha = beta = 1`) and `matmul` the batch norm's channel
//! axis is the feature axis that the product contracts: `(x * s + t) w = x (s w) + t w`, with
//! the weight scaled along its `K` axis and `t w` added to the bias. The shift `sum w * t` is
//! written as `reduce_sum(w * t)`, which constant folding evaluates when `w` is constant.

use super::{Edit, Rng, Rule, add_const, add_op, ops, ty, vec_of};
use crate::analysis::EG;
use crate::lang::Node;
use egg::Id;
use sinter_ir::{Builder, Graph, IrError, Op, Tensor, TensorType};

/// The batch-norm folding rules.
pub static RULES: [Rule; 7] = [
    Rule {
        name: "bn_fold/conv2d",
        doc: "batch_norm(conv2d(x, w, b)) with constant statistics = conv2d(x, w*s, b*s + t)",
        tolerance: 1e-5,
        find: fold_conv,
        sample: sample_conv,
    },
    Rule {
        name: "bn_fold/conv_transpose2d",
        doc: "batch_norm(conv_transpose2d(x, w, b)) (groups=1) = conv_transpose2d(x, w*s[axis 1], b*s + t)",
        tolerance: 1e-5,
        find: fold_conv_transpose,
        sample: sample_conv_transpose,
    },
    Rule {
        name: "bn_fold/gemm",
        doc: "batch_norm(gemm(x, w, b)) (no transposes, alpha=beta=1, b of shape [N]) = gemm(x, w*s, b*s + t)",
        tolerance: 1e-5,
        find: fold_gemm,
        sample: sample_gemm,
    },
    Rule {
        name: "bn_fold/matmul",
        doc: "batch_norm(matmul(x, w)) for 2-D x, w = gemm(x, w*s, t)",
        tolerance: 1e-5,
        find: fold_matmul,
        sample: sample_matmul,
    },
    Rule {
        name: "bn_fold/bn-conv2d",
        doc: "conv2d(batch_norm(x), w, b) with constant statistics and pad=0 = conv2d(x, w*s[in], b + sum(w*t[in]))",
        tolerance: 1e-5,
        find: fold_bn_conv,
        sample: sample_bn_conv,
    },
    Rule {
        name: "bn_fold/bn-gemm",
        doc: "gemm(batch_norm(x), w, b) for 2-D x (trans_a=false, alpha=beta=1) = gemm(x, w*s[K], b + t w)",
        tolerance: 1e-5,
        find: fold_bn_gemm,
        sample: sample_bn_gemm,
    },
    Rule {
        name: "bn_fold/bn-matmul",
        doc: "matmul(batch_norm(x), w) for 2-D x, w = gemm(x, w*s[K], t w)",
        tolerance: 1e-5,
        find: fold_bn_matmul,
        sample: sample_bn_matmul,
    },
];

/// Scale and shift of a batch norm whose four statistics are known constants of shape `[C]`.
fn scale_shift(eg: &EG, ch: &[Id], eps: f32) -> Option<(Vec<f32>, Vec<f32>)> {
    let c = ty(eg, ch[1]).shape.first().copied()?;
    let g = vec_of(eg, ch[1], c)?;
    let beta = vec_of(eg, ch[2], c)?;
    let mean = vec_of(eg, ch[3], c)?;
    let var = vec_of(eg, ch[4], c)?;
    let s: Vec<f32> = (0..c).map(|i| g[i] / (var[i] + eps).sqrt()).collect();
    let t: Vec<f32> = (0..c).map(|i| beta[i] - mean[i] * s[i]).collect();
    Some((s, t))
}

/// The batch norm's operand and its scale/shift, if `node` is a foldable batch norm.
fn bn(eg: &EG, node: &Node) -> Option<(Id, Vec<f32>, Vec<f32>)> {
    let (Op::BatchNorm { eps }, ch) = node.as_op()? else {
        return None;
    };
    let (s, t) = scale_shift(eg, ch, eps.get())?;
    Some((ch[0], s, t))
}

/// `w * s` with `s` shaped to broadcast along the output-channel axis, and `b * s + t`.
fn rescale(
    eg: &mut EG,
    w: Id,
    b: Option<Id>,
    s: &[f32],
    t: &[f32],
    s_shape: &[usize],
) -> Option<(Id, Id)> {
    let c = s.len();
    let sw = add_const(eg, Tensor::from_f32(s_shape, s.to_vec()));
    let w2 = add_op(eg, Op::Mul {}, &[w, sw])?;
    let tc = add_const(eg, Tensor::from_f32(&[c], t.to_vec()));
    let b2 = match b {
        Some(b) => {
            let sc = add_const(eg, Tensor::from_f32(&[c], s.to_vec()));
            let bs = add_op(eg, Op::Mul {}, &[b, sc])?;
            add_op(eg, Op::Add {}, &[bs, tc])?
        }
        None => tc,
    };
    Some((w2, b2))
}

fn fold_conv(eg: &EG, _class: Id, node: &Node) -> Vec<Edit> {
    let Some((y, s, t)) = bn(eg, node) else {
        return vec![];
    };
    let mut out: Vec<Edit> = Vec::new();
    for (op, ch) in ops(eg, y) {
        if !matches!(op, Op::Conv2d { .. }) {
            continue;
        }
        let (op, ch, s, t) = (op.clone(), ch.to_vec(), s.clone(), t.clone());
        out.push(Box::new(move |eg: &mut EG| {
            let (w, b) = rescale(eg, ch[1], ch.get(2).copied(), &s, &t, &[s.len(), 1, 1, 1])?;
            add_op(eg, op, &[ch[0], w, b])
        }));
    }
    out
}

fn fold_conv_transpose(eg: &EG, _class: Id, node: &Node) -> Vec<Edit> {
    let Some((y, s, t)) = bn(eg, node) else {
        return vec![];
    };
    let mut out: Vec<Edit> = Vec::new();
    for (op, ch) in ops(eg, y) {
        if !matches!(op, Op::ConvTranspose2d { groups: 1, .. }) {
            continue;
        }
        let (op, ch, s, t) = (op.clone(), ch.to_vec(), s.clone(), t.clone());
        out.push(Box::new(move |eg: &mut EG| {
            let (w, b) = rescale(eg, ch[1], ch.get(2).copied(), &s, &t, &[1, s.len(), 1, 1])?;
            add_op(eg, op, &[ch[0], w, b])
        }));
    }
    out
}

fn plain_gemm() -> Op {
    Op::Gemm {
        trans_a: false,
        trans_b: false,
        alpha: 1.0.into(),
        beta: 1.0.into(),
    }
}

fn fold_gemm(eg: &EG, _class: Id, node: &Node) -> Vec<Edit> {
    let Some((y, s, t)) = bn(eg, node) else {
        return vec![];
    };
    let mut out: Vec<Edit> = Vec::new();
    for (op, ch) in ops(eg, y) {
        if op != &plain_gemm() {
            continue;
        }
        if ch.len() == 3 && ty(eg, ch[2]).shape.as_slice() != [s.len()] {
            continue;
        }
        let (ch, s, t) = (ch.to_vec(), s.clone(), t.clone());
        out.push(Box::new(move |eg: &mut EG| {
            let (w, b) = rescale(eg, ch[1], ch.get(2).copied(), &s, &t, &[s.len()])?;
            add_op(eg, plain_gemm(), &[ch[0], w, b])
        }));
    }
    out
}

fn fold_matmul(eg: &EG, _class: Id, node: &Node) -> Vec<Edit> {
    let Some((y, s, t)) = bn(eg, node) else {
        return vec![];
    };
    let mut out: Vec<Edit> = Vec::new();
    for (op, ch) in ops(eg, y) {
        if !matches!(op, Op::Matmul {}) || ty(eg, ch[0]).rank() != 2 || ty(eg, ch[1]).rank() != 2 {
            continue;
        }
        let (ch, s, t) = (ch.to_vec(), s.clone(), t.clone());
        out.push(Box::new(move |eg: &mut EG| {
            let (w, b) = rescale(eg, ch[1], None, &s, &t, &[s.len()])?;
            add_op(eg, plain_gemm(), &[ch[0], w, b])
        }));
    }
    out
}

/// The batch norms in class `x` that fold (constant statistics), as (operand, scale, shift).
fn bns_in(eg: &EG, x: Id) -> Vec<(Id, Vec<f32>, Vec<f32>)> {
    eg[x]
        .iter()
        .filter_map(|n| bn(eg, n))
        .filter(|(y, s, _)| ty(eg, *y).shape.get(1) == Some(&s.len()))
        .collect()
}

/// `w * S + (b + reduce_sum(w * T, axes))`: the weight scaled by the constant `S` and the
/// bias plus the weight's response to the constant shift `T` (both shaped to broadcast
/// against `w`), summed over `axes` of `w`.
fn fold_input_side(
    eg: &mut EG,
    w: Id,
    b: Option<Id>,
    (scale, shift): (Tensor, Tensor),
    axes: Vec<i64>,
) -> Option<(Id, Id)> {
    let sc = add_const(eg, scale);
    let w2 = add_op(eg, Op::Mul {}, &[w, sc])?;
    let tc = add_const(eg, shift);
    let wt = add_op(eg, Op::Mul {}, &[w, tc])?;
    let resp = add_op(
        eg,
        Op::ReduceSum {
            axes,
            keepdims: false,
        },
        &[wt],
    )?;
    let b2 = match b {
        Some(b) => add_op(eg, Op::Add {}, &[b, resp])?,
        None => resp,
    };
    Some((w2, b2))
}

fn fold_bn_conv(eg: &EG, _class: Id, node: &Node) -> Vec<Edit> {
    let Some((op @ Op::Conv2d { pad, groups, .. }, ch)) = node.as_op() else {
        return vec![];
    };
    if *pad != [0, 0, 0, 0] || *groups < 1 {
        return vec![];
    }
    let ws = ty(eg, ch[1]).shape.clone();
    let (c_out, cig) = (ws[0], ws[1]);
    let cog = c_out / *groups as usize;
    let mut out: Vec<Edit> = Vec::new();
    for (x, s, t) in bns_in(eg, ch[0]) {
        // Per (output channel, input channel of its group): the input channel's s and t.
        let per = |v: &[f32]| -> Tensor {
            let data = (0..c_out)
                .flat_map(|o| (0..cig).map(move |j| (o, j)))
                .map(|(o, j)| v[(o / cog) * cig + j])
                .collect();
            Tensor::from_f32(&[c_out, cig, 1, 1], data)
        };
        let (st, op, w, b) = ((per(&s), per(&t)), op.clone(), ch[1], ch.get(2).copied());
        out.push(Box::new(move |eg: &mut EG| {
            let (w2, b2) = fold_input_side(eg, w, b, st, vec![1, 2, 3])?;
            add_op(eg, op, &[x, w2, b2])
        }));
    }
    out
}

/// The weight scale/shift shapes and the summed axis for a `[K]` feature vector applied to a
/// 2-D product's weight (`[K, N]`, or `[N, K]` when `trans_b`).
fn feature_side(s: &[f32], t: &[f32], trans_b: bool) -> ((Tensor, Tensor), Vec<i64>) {
    let k = s.len();
    let (shape, axis) = if trans_b { ([1, k], 1) } else { ([k, 1], 0) };
    (
        (
            Tensor::from_f32(&shape, s.to_vec()),
            Tensor::from_f32(&shape, t.to_vec()),
        ),
        vec![axis],
    )
}

fn fold_bn_gemm(eg: &EG, _class: Id, node: &Node) -> Vec<Edit> {
    let Some((
        op @ Op::Gemm {
            trans_a: false,
            trans_b,
            alpha,
            beta,
        },
        ch,
    )) = node.as_op()
    else {
        return vec![];
    };
    if alpha.get() != 1.0 || beta.get() != 1.0 || ty(eg, ch[0]).rank() != 2 {
        return vec![];
    }
    let mut out: Vec<Edit> = Vec::new();
    for (x, s, t) in bns_in(eg, ch[0]) {
        let (st, axes) = feature_side(&s, &t, *trans_b);
        let (op, w, b) = (op.clone(), ch[1], ch.get(2).copied());
        out.push(Box::new(move |eg: &mut EG| {
            let (w2, b2) = fold_input_side(eg, w, b, st, axes)?;
            add_op(eg, op, &[x, w2, b2])
        }));
    }
    out
}

fn fold_bn_matmul(eg: &EG, _class: Id, node: &Node) -> Vec<Edit> {
    let Some((Op::Matmul {}, &[a, w])) = node.as_op() else {
        return vec![];
    };
    if ty(eg, a).rank() != 2 || ty(eg, w).rank() != 2 {
        return vec![];
    }
    let mut out: Vec<Edit> = Vec::new();
    for (x, s, t) in bns_in(eg, a) {
        let (st, axes) = feature_side(&s, &t, false);
        out.push(Box::new(move |eg: &mut EG| {
            let (w2, b2) = fold_input_side(eg, w, None, st, axes)?;
            add_op(eg, plain_gemm(), &[x, w2, b2])
        }));
    }
    out
}

// ---------------------------------------------------------------------------------------
// Random instances.

/// Adds batch-norm statistics as constants (variance positive) and the batch norm.
fn add_bn(
    b: &mut Builder,
    r: &mut Rng,
    x: sinter_ir::Value,
    c: usize,
) -> Result<sinter_ir::Value, IrError> {
    let g = b.constant(r.tensor(&[c], 0.5, 1.5))?;
    let beta = b.constant(r.tensor(&[c], -0.5, 0.5))?;
    let mean = b.constant(r.tensor(&[c], -0.5, 0.5))?;
    let var = b.constant(r.tensor(&[c], 0.5, 2.0))?;
    b.batch_norm(x, g, beta, mean, var, 1e-5)
}

fn sample_conv(r: &mut Rng) -> Result<Graph, IrError> {
    let mut b = Builder::new("conv_bn");
    let (n, c, k) = (r.int(1, 2), r.int(1, 3), r.int(1, 4));
    let x = b.input("x", TensorType::f32(&[n, c, 6, 6]))?;
    // Constant weights and bias on even seeds, trainable ones on odd.
    let (w, bias) = if r.int(0, 1) == 0 {
        (
            b.constant(r.tensor(&[k, c, 3, 3], -1.0, 1.0))?,
            b.constant(r.tensor(&[k], -1.0, 1.0))?,
        )
    } else {
        (
            b.param("w", TensorType::f32(&[k, c, 3, 3]))?,
            b.param("b", TensorType::f32(&[k]))?,
        )
    };
    let stride = r.int(1, 2) as i64;
    let y = b.conv2d(x, w, Some(bias), stride, 1)?;
    let z = add_bn(&mut b, r, y, k)?;
    b.finish(&[z])
}

fn sample_conv_transpose(r: &mut Rng) -> Result<Graph, IrError> {
    let mut b = Builder::new("convt_bn");
    let (c, k) = (r.int(1, 3), r.int(1, 3));
    let x = b.input("x", TensorType::f32(&[1, c, 4, 4]))?;
    let w = b.constant(r.tensor(&[c, k, 3, 3], -1.0, 1.0))?;
    let op = Op::ConvTranspose2d {
        stride: [2, 2],
        pad: [1, 1, 1, 1],
        output_pad: [1, 1],
        dilation: [1, 1],
        groups: 1,
    };
    let y = b.op(op, &[x, w])?;
    let z = add_bn(&mut b, r, y, k)?;
    b.finish(&[z])
}

fn sample_gemm(r: &mut Rng) -> Result<Graph, IrError> {
    let mut b = Builder::new("gemm_bn");
    let (m, k, n) = (r.int(1, 4), r.int(1, 5), r.int(1, 5));
    let x = b.input("x", TensorType::f32(&[m, k]))?;
    let w = b.constant(r.tensor(&[k, n], -1.0, 1.0))?;
    let bias = b.param("b", TensorType::f32(&[n]))?;
    let y = b.linear(x, w, Some(bias))?;
    let z = add_bn(&mut b, r, y, n)?;
    b.finish(&[z])
}

fn sample_matmul(r: &mut Rng) -> Result<Graph, IrError> {
    let mut b = Builder::new("matmul_bn");
    let (m, k, n) = (r.int(1, 4), r.int(1, 5), r.int(1, 5));
    let x = b.input("x", TensorType::f32(&[m, k]))?;
    let w = b.param("w", TensorType::f32(&[k, n]))?;
    let y = b.matmul(x, w)?;
    let z = add_bn(&mut b, r, y, n)?;
    b.finish(&[z])
}

fn sample_bn_conv(r: &mut Rng) -> Result<Graph, IrError> {
    let mut b = Builder::new("bn_conv");
    let groups = r.int(1, 2);
    let (n, c, k) = (r.int(1, 2), groups * r.int(1, 2), groups * r.int(1, 2));
    let kernel = [1, 3][r.int(0, 1)];
    let x = b.input("x", TensorType::f32(&[n, c, 6, 6]))?;
    let xn = add_bn(&mut b, r, x, c)?;
    let wt = TensorType::f32(&[k, c / groups, kernel, kernel]);
    // Constant weights on some instances, trainable ones on others; a bias on some.
    let w = if r.int(0, 1) == 0 {
        b.constant(r.tensor(&wt.shape, -1.0, 1.0))?
    } else {
        b.param("w", wt)?
    };
    let op = Op::Conv2d {
        stride: [r.int(1, 2) as i64; 2],
        pad: [0; 4],
        dilation: [r.int(1, 2) as i64; 2],
        groups: groups as i64,
    };
    let y = if r.int(0, 1) == 0 {
        let bias = b.constant(r.tensor(&[k], -1.0, 1.0))?;
        b.op(op, &[xn, w, bias])?
    } else {
        b.op(op, &[xn, w])?
    };
    // A padded convolution of the same normalised input must stay unfolded.
    let wp = b.constant(r.tensor(&[1, c / groups * groups, 3, 3], -1.0, 1.0))?;
    let padded = b.conv2d(xn, wp, None, 1, 1)?;
    b.finish(&[y, padded])
}

fn sample_bn_gemm(r: &mut Rng) -> Result<Graph, IrError> {
    let mut b = Builder::new("bn_gemm");
    let (m, k, n) = (r.int(1, 4), r.int(1, 5), r.int(1, 5));
    let trans_b = r.int(0, 1) == 1;
    let x = b.input("x", TensorType::f32(&[m, k]))?;
    let xn = add_bn(&mut b, r, x, k)?;
    let ws = if trans_b { [n, k] } else { [k, n] };
    let w = b.constant(r.tensor(&ws, -1.0, 1.0))?;
    let bias = b.param("b", TensorType::f32(&[n]))?;
    let op = Op::Gemm {
        trans_a: false,
        trans_b,
        alpha: 1.0.into(),
        beta: 1.0.into(),
    };
    let y = b.op(op, &[xn, w, bias])?;
    b.finish(&[y])
}

fn sample_bn_matmul(r: &mut Rng) -> Result<Graph, IrError> {
    let mut b = Builder::new("bn_matmul");
    let (m, k, n) = (r.int(1, 4), r.int(1, 5), r.int(1, 5));
    let x = b.input("x", TensorType::f32(&[m, k]))?;
    let xn = add_bn(&mut b, r, x, k)?;
    let w = b.param("w", TensorType::f32(&[k, n]))?;
    let y = b.matmul(xn, w)?;
    b.finish(&[y])
}
