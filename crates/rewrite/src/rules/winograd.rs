//! Winograd convolution: fewer multiplications for 3x3 stride-1 convolutions.
//!
//! `conv2d(x, w, b)` with a 3x3 kernel, stride 1, dilation 1 and one group equals
//! `winograd_output(matmul(winograd_filter(w), winograd_input(x)), b)` (see
//! `sinter_ir::winograd`): the batched `matmul` does `(m + 2)^2 / (9 m^2)` of the direct
//! convolution's multiply-adds, 0.44 for F(2x2, 3x3) and 0.25 for F(4x4, 3x3), as matrix
//! products the GEMM microkernels run at full speed; the transforms are cheap streaming
//! passes, and for constant weights the filter transform is folded at compile time. Both tile
//! sizes are added and the cost model picks per layer (small images waste work in ragged
//! tiles; few channels leave the transforms dominant).
//!
//! The input gradient of such a convolution in a training step is a stride-1
//! `conv_transpose2d` of the output gradient, which is the conv2d of the rotated, transposed
//! weights with padding `2 - pad`: the `-transposed` rules rewrite it the same way, with
//! `winograd_filter { transposed }` doing the rotation inside the transform. (The weight
//! gradient stays a direct `conv2d_weight_grad`.)
//!
//! The rules are not exact: F(4x4, 3x3)'s matrices hold entries from 1/24 to 8, so its results
//! differ from the direct sum by a few units in the sixth decimal of the output's magnitude
//! (measured in the interpreter's tests); the tolerances below are that, not looser.

use super::{Edit, Rng, Rule, add_op, ty};
use crate::analysis::EG;
use crate::lang::Node;
use egg::Id;
use sinter_ir::{Builder, Graph, IrError, Op, TensorType};

/// The Winograd rules.
pub static RULES: [Rule; 4] = [
    Rule {
        name: "winograd/conv2d-f2",
        doc: "3x3 stride-1 conv2d = winograd_output(matmul(winograd_filter(w), winograd_input(x)), b), F(2x2, 3x3)",
        tolerance: 2e-6,
        find: |eg, c, n| conv2d(eg, c, n, 2),
        sample: sample_conv2d,
    },
    Rule {
        name: "winograd/conv2d-f4",
        doc: "3x3 stride-1 conv2d = the same with F(4x4, 3x3)",
        tolerance: 1e-5,
        find: |eg, c, n| conv2d(eg, c, n, 4),
        sample: sample_conv2d,
    },
    Rule {
        name: "winograd/conv-transpose-f2",
        doc: "3x3 stride-1 conv_transpose2d (a conv's input gradient) = Winograd conv2d of the rotated weights, F(2x2, 3x3)",
        tolerance: 2e-6,
        find: |eg, c, n| conv_transpose(eg, c, n, 2),
        sample: sample_conv_transpose,
    },
    Rule {
        name: "winograd/conv-transpose-f4",
        doc: "3x3 stride-1 conv_transpose2d = the same with F(4x4, 3x3)",
        tolerance: 1e-5,
        find: |eg, c, n| conv_transpose(eg, c, n, 4),
        sample: sample_conv_transpose,
    },
];

/// The Winograd form of a 3x3 stride-1 conv2d of `x` padded by `pad`, with the filter
/// transform of `w` (`transposed`: a conv_transpose2d weight) and the optional bias.
fn winograd(
    x: Id,
    w: Id,
    bias: Option<Id>,
    pad: [i64; 4],
    transposed: bool,
    out: [i64; 2],
    tile: i64,
) -> Edit {
    Box::new(move |eg: &mut EG| {
        let u = add_op(eg, Op::WinogradFilter { tile, transposed }, &[w])?;
        let v = add_op(eg, Op::WinogradInput { tile, pad }, &[x])?;
        let m = add_op(eg, Op::Matmul {}, &[u, v])?;
        let mut ins = vec![m];
        ins.extend(bias);
        add_op(eg, Op::WinogradOutput { tile, out }, &ins)
    })
}

/// `[oh, ow]` of a single-output class of rank 4.
fn out_hw(eg: &EG, class: Id) -> Option<[i64; 2]> {
    let s = &ty(eg, class).shape;
    (s.len() == 4).then(|| [s[2] as i64, s[3] as i64])
}

fn conv2d(eg: &EG, class: Id, node: &Node, tile: i64) -> Vec<Edit> {
    let Some((
        Op::Conv2d {
            stride: [1, 1],
            pad,
            dilation: [1, 1],
            groups: 1,
        },
        ch,
    )) = node.as_op()
    else {
        return vec![];
    };
    if ty(eg, ch[1]).shape[2..] != [3, 3] {
        return vec![];
    }
    let Some(out) = out_hw(eg, class) else {
        return vec![];
    };
    vec![winograd(
        ch[0],
        ch[1],
        ch.get(2).copied(),
        *pad,
        false,
        out,
        tile,
    )]
}

fn conv_transpose(eg: &EG, class: Id, node: &Node, tile: i64) -> Vec<Edit> {
    let Some((
        Op::ConvTranspose2d {
            stride: [1, 1],
            pad,
            output_pad: [0, 0],
            dilation: [1, 1],
            groups: 1,
        },
        ch,
    )) = node.as_op()
    else {
        return vec![];
    };
    if ty(eg, ch[1]).shape[2..] != [3, 3] || pad.iter().any(|&p| p > 2) {
        return vec![];
    }
    let Some(out) = out_hw(eg, class) else {
        return vec![];
    };
    let pad = pad.map(|p| 2 - p);
    vec![winograd(
        ch[0],
        ch[1],
        ch.get(2).copied(),
        pad,
        true,
        out,
        tile,
    )]
}

// ---------------------------------------------------------------------------------------
// Random instances: odd extents (ragged tiles), padding 0..=2 per side, bias or not,
// constant weights (folded filter transform) or weights as inputs.

fn pads(r: &mut Rng) -> [i64; 4] {
    [0; 4].map(|_| r.int(0, 2) as i64)
}

fn sample_conv2d(r: &mut Rng) -> Result<Graph, IrError> {
    let mut b = Builder::new("winograd_conv2d");
    let (n, c, k) = (r.int(1, 2), r.int(1, 6), r.int(1, 6));
    let (h, w) = (r.int(3, 11), r.int(3, 11));
    let x = b.input("x", TensorType::f32(&[n, c, h, w]))?;
    let wt = if r.int(0, 1) == 0 {
        b.constant(r.tensor(&[k, c, 3, 3], -1.0, 1.0))?
    } else {
        b.input("w", TensorType::f32(&[k, c, 3, 3]))?
    };
    let mut ins = vec![x, wt];
    if r.int(0, 1) == 0 {
        ins.push(b.constant(r.tensor(&[k], -1.0, 1.0))?);
    }
    let op = Op::Conv2d {
        stride: [1, 1],
        pad: pads(r),
        dilation: [1, 1],
        groups: 1,
    };
    let y = b.op(op, &ins)?;
    b.finish(&[y])
}

fn sample_conv_transpose(r: &mut Rng) -> Result<Graph, IrError> {
    let mut b = Builder::new("winograd_conv_transpose");
    let (n, c, k) = (r.int(1, 2), r.int(1, 6), r.int(1, 6));
    let (h, w) = (r.int(3, 11), r.int(3, 11));
    let dy = b.input("dy", TensorType::f32(&[n, c, h, w]))?;
    let wt = b.input("w", TensorType::f32(&[c, k, 3, 3]))?;
    let op = Op::ConvTranspose2d {
        stride: [1, 1],
        pad: pads(r),
        output_pad: [0, 0],
        dilation: [1, 1],
        groups: 1,
    };
    let y = b.op(op, &[dy, wt])?;
    b.finish(&[y])
}
