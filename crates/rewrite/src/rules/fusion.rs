//! Epilogue fusion: a linear op (with its bias) followed by an activation is one kernel.
//!
//! `act(conv2d(x, w, b))`, and the same over `conv_transpose2d`, `gemm` and `matmul`, for
//! `act` in relu, sigmoid, tanh, leaky_relu and prelu, gains a [`Node::Fused`] e-node. The
//! IR's op table has no fused op (it is owned elsewhere; the request is in the crate docs), so
//! the fused node lives only in the e-graph: the cost model prices it as one kernel without
//! the activation's launch and memory traffic, and extraction writes it back as the two
//! primitives, reporting the pair as a fusion group for the JIT. A bias given as a separate
//! `add` is first moved into the op by `algebra/conv-bias` and `algebra/matmul-bias`.

use super::{Edit, Rng, Rule, ops};
use crate::analysis::EG;
use crate::lang::{Act, Fused, Node};
use egg::Id;
use sinter_ir::{Builder, Graph, IrError, Op, TensorType};

/// The fusion rules.
pub static RULES: [Rule; 1] = [Rule {
    name: "fusion/linear-act",
    doc: "act(conv2d | conv_transpose2d | gemm | matmul) = one fused kernel",
    tolerance: 0.0,
    find: fuse,
    sample: sample_fuse,
}];

fn fusable(op: &Op) -> bool {
    matches!(
        op,
        Op::Conv2d { .. } | Op::ConvTranspose2d { .. } | Op::Gemm { .. } | Op::Matmul {}
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
