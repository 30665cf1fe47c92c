//! Epilogue fusion: a linear op (with its bias) followed by an activation is one kernel.
//!
//! `act(conv2d(x, w, b))`, and the same over `conv_transpose2d`, `gemm`, `matmul` and
//! `winograd_output` (the activation then runs in the output transform), for
//! `act` in relu, sigmoid, tanh, leaky_relu and prelu, gains a [`Node::Fused`] e-node. The
//! IR's op table has no fused op (it is owned elsewhere; the request is in the crate docs), so
//! the fused node lives only in the e-graph: the cost model prices it as one kernel without
//! the activation's launch and memory traffic, and extraction writes it back as the two
//! primitives, reporting the pair as a fusion group for the JIT. A bias given as a separate
//! `add` is first moved into the op by `algebra/conv-bias` and `algebra/matmul-bias`.
//!
//! `fusion/linear-relu-mask` does the same for the relu backward of training steps,
//! `select(greater(m, 0), y, 0)` with `y` the result of a linear op (the input gradient of a
//! convolution is a `conv_transpose2d`, that of a dense layer a `gemm` with `trans_b`) and `m`
//! the relu's output, of `y`'s type: the fused kernel masks each element as it writes it.

use super::{Edit, Rng, Rule, is_zero, ops, ty};
use crate::analysis::EG;
use crate::lang::{Act, Fused, Node};
use egg::Id;
use sinter_ir::{Builder, Graph, IrError, Op, TensorType};

/// The fusion rules.
pub static RULES: [Rule; 2] = [
    Rule {
        name: "fusion/linear-act",
        doc: "act(conv2d | conv_transpose2d | gemm | matmul) = one fused kernel",
        tolerance: 0.0,
        find: fuse,
        sample: sample_fuse,
    },
    Rule {
        name: "fusion/linear-relu-mask",
        doc: "select(greater(m, 0), linear(..), 0) (a relu backward after a linear gradient) = one fused kernel",
        tolerance: 0.0,
        find: fuse_mask,
        sample: sample_fuse_mask,
    },
];

fn fusable(op: &Op) -> bool {
    matches!(
        op,
        Op::Conv2d { .. }
            | Op::ConvTranspose2d { .. }
            | Op::Gemm { .. }
            | Op::Matmul {}
            | Op::WinogradOutput { .. }
    )
}

fn fuse(eg: &EG, _class: Id, node: &Node) -> Vec<Edit> {
    let Some((op, ch)) = node.as_op() else {
        return vec![];
    };
    let Some(act) = Act::of(op) else {
        return vec![];
    };
    let y = ch[0];
    let slope = ch.get(1).copied();
    let mut out: Vec<Edit> = Vec::new();
    for (base, bch) in ops(eg, y) {
        if !fusable(base) {
            continue;
        }
        let mut children: smallvec::SmallVec<[Id; 3]> = bch.into();
        children.extend(slope);
        let fused = Node::Fused(
            Box::new(Fused {
                base: base.clone(),
                act,
            }),
            children,
        );
        out.push(Box::new(move |eg: &mut EG| Some(eg.add(fused))));
    }
    out
}

fn fuse_mask(eg: &EG, class: Id, node: &Node) -> Vec<Edit> {
    let Some((Op::Select {}, &[cond, y, z])) = node.as_op() else {
        return vec![];
    };
    if !is_zero(eg, z) || ty(eg, y) != ty(eg, class) {
        return vec![];
    }
    // The mask source must have the result's type: one element per output element.
    let sources: Vec<Id> = ops(eg, cond)
        .filter_map(|(op, ch)| match (op, ch) {
            (Op::Greater {}, &[m, z2]) if is_zero(eg, z2) && ty(eg, m) == ty(eg, class) => Some(m),
            _ => None,
        })
        .collect();
    let mut out: Vec<Edit> = Vec::new();
    for m in sources {
        for (base, bch) in ops(eg, y) {
            if !fusable(base) {
                continue;
            }
            let mut children: smallvec::SmallVec<[Id; 3]> = bch.into();
            children.push(m);
            let fused = Node::Fused(
                Box::new(Fused {
                    base: base.clone(),
                    act: Act::ReluMask,
                }),
                children,
            );
            out.push(Box::new(move |eg: &mut EG| Some(eg.add(fused))));
        }
    }
    out
}

fn sample_fuse(r: &mut Rng) -> Result<Graph, IrError> {
    let mut b = Builder::new("fuse");
    let (c, k) = (r.int(1, 3), r.int(1, 3));
    let x = b.input("x", TensorType::f32(&[1, c, 4, 4]))?;
    let w = b.param("w", TensorType::f32(&[k, c, 3, 3]))?;
    let bias = b.param("b", TensorType::f32(&[k]))?;
    let y = b.conv2d(x, w, Some(bias), 1, 1)?;
    let a = match r.int(0, 3) {
        0 => b.relu(y)?,
        1 => b.sigmoid(y)?,
        2 => b.leaky_relu(y, 0.1)?,
        _ => {
            let slope = b.param("slope", TensorType::f32(&[k, 1, 1]))?;
            b.prelu(y, slope)?
        }
    };
    let m = b.input("m", TensorType::f32(&[2, 3]))?;
    let v = b.param("v", TensorType::f32(&[3, 4]))?;
    let p = b.matmul(m, v)?;
    let t = b.tanh(p)?;
    b.finish(&[a, t])
}

/// The relu backward after the gradient of a linear op: `conv_transpose2d` (a convolution's
/// input gradient) or a `gemm` with `trans_b` (a dense layer's), masked by a relu output.
fn sample_fuse_mask(r: &mut Rng) -> Result<Graph, IrError> {
    let mut b = Builder::new("fuse_mask");
    let (c, k) = (r.int(1, 3), r.int(1, 3));
    let dy = b.input("dy", TensorType::f32(&[1, k, 4, 4]))?;
    let w = b.param("w", TensorType::f32(&[k, c, 3, 3]))?;
    let op = Op::ConvTranspose2d {
        stride: [1, 1],
        pad: [1; 4],
        output_pad: [0, 0],
        dilation: [1, 1],
        groups: 1,
    };
    let dx = b.op(op, &[dy, w])?;
    let x = b.input("x", TensorType::f32(&[1, c, 4, 4]))?;
    let rx = b.relu(x)?;
    let zero = b.scalar(0.0)?;
    let m = b.op(Op::Greater {}, &[rx, zero])?;
    let g1 = b.op(Op::Select {}, &[m, dx, zero])?;
    let (n, h, o) = (r.int(1, 4), r.int(1, 4), r.int(1, 4));
    let g = b.input("g", TensorType::f32(&[n, o]))?;
    let w2 = b.param("w2", TensorType::f32(&[h, o]))?;
    let gemm = Op::Gemm {
        trans_a: false,
        trans_b: true,
        alpha: 1.0.into(),
        beta: 1.0.into(),
    };
    let dh = b.op(gemm, &[g, w2])?;
    let a = b.input("a", TensorType::f32(&[n, h]))?;
    let m2 = b.op(Op::Greater {}, &[a, zero])?;
    let g2 = b.op(Op::Select {}, &[m2, dh, zero])?;
    b.finish(&[g1, g2])
}
