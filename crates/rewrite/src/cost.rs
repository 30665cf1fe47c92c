//! The cost model: estimated time of one e-node from FLOPs and bytes moved, per op class.
//!
//! Every op belongs to a [`Class`]; [`RATES`] gives each class a launch overhead, a compute
//! throughput and a memory bandwidth, and a node's time is
//! `launch + max(flops / flops_per_ns, bytes / bytes_per_ns)` (a roofline). The numbers are
//! rough single-core CPU figures, kept in one table so that the kernel benchmarks can
//! calibrate them later without touching the rules or the extractor.
//!
//! Choices that matter for the rules:
//! - constants, inputs and projections cost nothing (weights are paid for by the bytes of the
//!   ops that read them, and a folded constant is computed at compile time);
//! - `reshape`/`flatten` are views, and so are `split`/`slice` along an axis whose leading
//!   extents are all 1 (a contiguous block), which makes merging sibling convolutions pay off
//!   at batch 1 (one launch and one read of the input saved, no copy);
//! - a fused epilogue costs its activation's FLOPs but no launch and no extra memory traffic;
//! - a 1x1 stride-1 unpadded `conv2d` is in the `Linear` class: the JIT lowers it as one GEMM
//!   per image straight on the NCHW input (no im2col), which is what a matrix product costs.
//!   That is also why no rule rewrites such a convolution into `matmul`: the JIT already runs
//!   it as one, and the rewritten form (reshapes, a batched `matmul`, a separate bias `add`)
//!   would be the same GEMM plus an extra elementwise kernel.
//!
//! - a matrix product with few columns (`n < 64`: a convolution on a small image, the
//!   per-point products of a Winograd convolution, one column per tile) runs at
//!   `sqrt(n / 64)` of its class's rate (measured; see [`op_cost`]);
//! - the Winograd transforms are their own class; the filter transform of constant weights is
//!   free (the runtime computes it once; `crate::extract::enode_cost`). The choice between
//!   direct, F(2x2,3x3) and F(4x4,3x3) is held by a unit test to a table of measured times
//!   ([`CONV3X3_CALIBRATION`]).
//!
//! [`op_cost`] is an exhaustive `match` over [`Op`]: a new op fails to compile here until it
//! is given a class and a FLOP count.

use crate::lang::{Act, Node};
use sinter_ir::{Op, TensorType};

/// Op classes with their own throughput figures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Class {
    /// Elementwise arithmetic, activations, comparisons, casts, random numbers.
    Elementwise,
    /// Matrix products.
    Linear,
    /// Convolutions.
    Conv,
    /// Pooling windows.
    Pool,
    /// Batch norm, softmax and reductions.
    Reduce,
    /// Data movement that copies (transpose, concat, pad, gather, non-contiguous split).
    Copy,
    /// Data movement that is a view (reshape, flatten, contiguous split): free.
    View,
    /// Winograd transforms (vectorised short sums, streaming their input and output).
    Transform,
}

/// Throughput figures of one [`Class`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    /// Fixed cost of one kernel, ns.
    pub launch_ns: f64,
    /// Arithmetic throughput, FLOP/ns.
    pub flops_per_ns: f64,
    /// Memory throughput, bytes/ns.
    pub bytes_per_ns: f64,
}

/// The calibration table: one row per class.
pub const RATES: [(Class, Rate); 8] = [
    (Class::Elementwise, rate(200.0, 8.0, 10.0)),
    (Class::Linear, rate(400.0, 40.0, 10.0)),
    (Class::Conv, rate(400.0, 30.0, 10.0)),
    (Class::Pool, rate(200.0, 8.0, 10.0)),
    (Class::Reduce, rate(300.0, 4.0, 10.0)),
    (Class::Copy, rate(200.0, 1.0, 8.0)),
    (Class::View, rate(0.0, 1.0, 1.0)),
    (Class::Transform, rate(200.0, 16.0, 10.0)),
];

const fn rate(launch_ns: f64, flops_per_ns: f64, bytes_per_ns: f64) -> Rate {
    Rate {
        launch_ns,
        flops_per_ns,
        bytes_per_ns,
    }
}

/// The table row of a class.
pub fn rate_of(class: Class) -> Rate {
    RATES
        .iter()
        .find(|(c, _)| *c == class)
        .map(|(_, r)| *r)
        .unwrap_or(rate(0.0, 1.0, 1.0))
}

/// Class and FLOPs of an op applied to inputs of types `ins` giving `outs`.
pub fn op_work(op: &Op, ins: &[&TensorType], outs: &[TensorType]) -> (Class, f64) {
    let out = outs.iter().map(|t| t.numel() as f64).sum::<f64>();
    let inp = ins.first().map_or(0.0, |t| t.numel() as f64);
    let contiguous = |axis: i64| {
        let shape = &ins[0].shape;
        let a = sinter_ir::infer::norm_axis(axis, shape.len()).unwrap_or(0);
        shape[..a].iter().all(|&d| d == 1)
    };
    match op {
        Op::Neg {} | Op::Abs {} | Op::Relu {} | Op::LeakyRelu { .. } => (Class::Elementwise, out),
        Op::Exp {} | Op::Log {} | Op::Sqrt {} | Op::Rsqrt {} | Op::Sigmoid {} | Op::Tanh {} => {
            (Class::Elementwise, 4.0 * out)
        }
        Op::Add {}
        | Op::Sub {}
        | Op::Mul {}
        | Op::Div {}
        | Op::Max {}
        | Op::Min {}
        | Op::Prelu {}
        | Op::Equal {}
        | Op::Less {}
        | Op::LessEqual {}
        | Op::Greater {}
        | Op::GreaterEqual {}
        | Op::Select {}
        | Op::Cast { .. } => (Class::Elementwise, out),
        Op::Pow {} => (Class::Elementwise, 8.0 * out),
        Op::Matmul {} | Op::Gemm { .. } => {
            // [.., M, K] x [K, N]: K is the last axis of the first input.
            let k = ins[0].shape.last().copied().unwrap_or(1) as f64;
            let k = match op {
                Op::Gemm { trans_a: true, .. } => ins[0].shape[0] as f64,
                _ => k,
            };
            (Class::Linear, 2.0 * out * k)
        }
        Op::Conv2d {
            stride,
            pad,
            groups,
            ..
        } => {
            let w = &ins[1].shape;
            let per_out = (w[1] * w[2] * w[3]) as f64;
            // A 1x1 stride-1 unpadded convolution is lowered as a GEMM on the input itself
            // (no im2col; `sinter-lower`'s `gemm_conv2d`): price it as a matrix product.
            let direct = w[2] == 1 && w[3] == 1 && *stride == [1, 1] && *pad == [0; 4];
            let _ = groups;
            let class = if direct { Class::Linear } else { Class::Conv };
            (class, 2.0 * out * per_out)
        }
        Op::ConvTranspose2d { .. } => {
            let w = &ins[1].shape;
            (Class::Conv, 2.0 * inp * (w[1] * w[2] * w[3]) as f64)
        }
        Op::Conv2dWeightGrad { .. } => {
            let per_dy = (outs[0].numel() / outs[0].shape[0].max(1)) as f64;
            (Class::Conv, 2.0 * ins[1].numel() as f64 * per_dy)
        }
        // The transforms: per transform point, about 2(m + 2) additions or multiplications
        // (one pass along rows, one along columns) for the input and output; the filter's are
        // folded away for constant weights.
        Op::WinogradFilter { tile, .. } | Op::WinogradInput { tile, .. } => {
            (Class::Transform, 2.0 * (*tile as f64 + 2.0) * out)
        }
        Op::WinogradOutput { tile, .. } => (Class::Transform, 2.0 * (*tile as f64 + 2.0) * inp),
        Op::MaxPool2dGrad { kernel, .. } | Op::AvgPool2dGrad { kernel, .. } => (
            Class::Pool,
            ins[1].numel() as f64 * (kernel[0] * kernel[1]) as f64,
        ),
        Op::MaxPool2d { kernel, .. } | Op::AvgPool2d { kernel, .. } => {
            (Class::Pool, out * (kernel[0] * kernel[1]) as f64)
        }
        Op::GlobalAvgPool {} => (Class::Pool, inp),
        Op::BatchNorm { .. } => (Class::Elementwise, 2.0 * out),
        Op::BatchNormTrain { .. } => (Class::Reduce, 6.0 * inp),
        Op::Softmax { .. } | Op::LogSoftmax { .. } => (Class::Reduce, 6.0 * out),
        Op::Dropout { .. }
        | Op::RandomUniform { .. }
        | Op::RandomNormal { .. }
        | Op::Bernoulli { .. } => (Class::Elementwise, 10.0 * out),
        // Its expansion: about 20 operations per window element (a draw, three logs, ...).
        Op::StochasticPool2d { .. } => (Class::Pool, 20.0 * inp),
        Op::ReduceSum { .. } | Op::ReduceMean { .. } | Op::ReduceMax { .. } | Op::Argmax { .. } => {
            (Class::Reduce, inp)
        }
        Op::Reshape { .. } | Op::Flatten { .. } => (Class::View, 0.0),
        Op::Split { axis, .. } if contiguous(*axis) => (Class::View, 0.0),
        Op::Slice { axes, .. } if axes.len() == 1 && contiguous(axes[0]) => (Class::View, 0.0),
        Op::Transpose { .. }
        | Op::Broadcast { .. }
        | Op::Concat { .. }
        | Op::Split { .. }
        | Op::Slice { .. }
        | Op::Pad { .. }
        | Op::Gather { .. }
        | Op::OneHot { .. }
        | Op::ScatterAdd { .. } => (Class::Copy, 0.0),
    }
}

fn bytes(tys: &[&TensorType]) -> f64 {
    tys.iter()
        .map(|t| (t.numel() * t.dtype.size_bytes()) as f64)
        .sum()
}

/// Columns of the matrix products a linear op or convolution runs (per GEMM call), where
/// few columns make the GEMM driver slower than its rate: a matmul's or gemm's output
/// columns, a conv2d's output pixels per image. `None` for the others.
fn gemm_columns(op: &Op, outs: &[TensorType]) -> Option<usize> {
    let s = &outs.first()?.shape;
    match op {
        Op::Matmul {} | Op::Gemm { .. } => s.last().copied(),
        Op::Conv2d { .. } if s.len() == 4 => Some(s[2] * s[3]),
        _ => None,
    }
}

/// Columns at and beyond which the GEMM driver runs at its class's full rate.
pub const FULL_RATE_COLUMNS: f64 = 64.0;

/// Estimated time (ns) of an op reading `ins` and writing `outs`.
///
/// A matrix product with `n < FULL_RATE_COLUMNS` columns runs at `sqrt(n / 64)` of its class's
/// arithmetic rate: each packed weight is used for only `2n` FLOPs, so packing and streaming
/// the weights dominate. Measured on the project VM (one thread, `sinter bench` on `matmul`s
/// of 36 `[512 x 512] x [512 x n]` products): 12 GFLOP/s at n = 4, 22 at n = 16, and a
/// 512-channel 3x3 conv2d on a 7x7 image (n = 49) 33 GFLOP/s, against ~60 for large n; the
/// square root fits those within ~20%. This is what keeps Winograd convolutions (whose
/// products have one column per tile) off small images.
pub fn op_cost(op: &Op, ins: &[&TensorType], outs: &[TensorType]) -> f64 {
    let (class, flops) = op_work(op, ins, outs);
    if class == Class::View {
        return 0.0;
    }
    let r = rate_of(class);
    let eff = gemm_columns(op, outs).map_or(1.0, |n| {
        (n as f64 / FULL_RATE_COLUMNS).clamp(1e-3, 1.0).sqrt()
    });
    let out_refs: Vec<&TensorType> = outs.iter().collect();
    let moved = bytes(ins) + bytes(&out_refs);
    r.launch_ns + (flops / (r.flops_per_ns * eff)).max(moved / r.bytes_per_ns)
}

/// Estimated time of a fused linear op + activation: the linear op's time plus the
/// activation's arithmetic, with no launch and no memory traffic of its own, except that the
/// relu-backward mask reads its mask source.
pub fn fused_cost(base: &Op, act: Act, ins: &[&TensorType], outs: &[TensorType]) -> f64 {
    let n = ins.len() - act.extra();
    let base_cost = op_cost(base, &ins[..n], outs);
    let (class, flops) = op_work(&act.op(), &[&outs[0]], outs);
    let r = rate_of(class);
    match act {
        // greater + select, and the mask source read.
        Act::ReluMask => {
            base_cost + 2.0 * flops / r.flops_per_ns + bytes(&ins[n..]) / r.bytes_per_ns
        }
        _ => base_cost + flops / r.flops_per_ns,
    }
}

/// Estimated time of one e-node given the types of its children and its own.
pub fn node_cost(node: &Node, ins: &[&TensorType], outs: &[TensorType]) -> f64 {
    match node {
        Node::Op(op, _) => op_cost(op, ins, outs),
        Node::Fused(f, _) => fused_cost(&f.base, f.act, ins, outs),
        Node::Input(_) | Node::Const(_) | Node::Get(..) => 0.0,
    }
}

/// A 3x3 stride-1 convolution algorithm the optimiser can pick.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvAlgo {
    /// `conv2d` (GEMM with im2col).
    Direct,
    /// Winograd F(2x2, 3x3).
    F2,
    /// Winograd F(4x4, 3x3).
    F4,
}

/// Measured times (ms) of one 3x3 stride-1 padding-1 convolution, `C -> C` channels on a
/// batch-1 `H x H` image, by each algorithm (Winograd: input transform + products + output
/// transform; the filter transform of constant weights is done at compile time), measured in
/// one process per shape (`sinter bench` per-kernel medians, 1 thread, release, 2026-11-25
/// 13:20 UTC, median of three runs; `BENCHMARKS.md`, "Winograd convolution"). The cost model
/// is checked against it: for each shape it must pick the measured fastest algorithm, or one
/// within [`CALIBRATION_TIE`] of it.
pub const CONV3X3_CALIBRATION: [(usize, usize, [f64; 3]); 8] = [
    // (C, H, [direct, F(2,3), F(4,3)])
    (64, 112, [16.81, 16.07, 10.79]),
    (64, 56, [4.21, 3.45, 1.83]),
    (128, 56, [20.09, 12.23, 8.42]),
    (128, 28, [4.83, 3.40, 2.47]),
    (256, 28, [12.88, 8.21, 6.34]),
    (256, 14, [3.92, 2.39, 3.15]),
    (512, 14, [19.59, 13.94, 16.77]),
    (512, 7, [7.87, 7.70, 9.05]),
];

/// Relative difference under which two measured times count as a tie.
pub const CALIBRATION_TIE: f64 = 0.10;

/// The cost model's estimate (ns) of a `C -> C` 3x3 stride-1 padding-1 convolution of a
/// batch-1 `H x H` image by `algo`, constant weights.
pub fn conv3x3_cost(c: usize, h: usize, algo: ConvAlgo) -> f64 {
    let x = TensorType::f32(&[1, c, h, h]);
    let w = TensorType::f32(&[c, c, 3, 3]);
    let pad = [1; 4];
    let tile = match algo {
        ConvAlgo::Direct => {
            let conv = Op::Conv2d {
                stride: [1, 1],
                pad,
                dilation: [1, 1],
                groups: 1,
            };
            return op_cost(&conv, &[&x, &w], std::slice::from_ref(&x));
        }
        ConvAlgo::F2 => 2,
        ConvAlgo::F4 => 4,
    };
    let t = ((tile + 2) * (tile + 2)) as usize;
    let p = h.div_ceil(tile as usize).pow(2);
    let u = TensorType::f32(&[t, c, c]);
    let v = TensorType::f32(&[t, c, p]);
    let input = op_cost(
        &Op::WinogradInput { tile, pad },
        &[&x],
        std::slice::from_ref(&v),
    );
    let products = op_cost(&Op::Matmul {}, &[&u, &v], std::slice::from_ref(&v));
    let out = Op::WinogradOutput {
        tile,
        out: [h as i64, h as i64],
    };
    input + products + op_cost(&out, &[&v], std::slice::from_ref(&x))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_class_has_a_row() {
        for c in [
            Class::Elementwise,
            Class::Linear,
            Class::Conv,
            Class::Pool,
            Class::Reduce,
            Class::Copy,
            Class::View,
            Class::Transform,
        ] {
            assert!(RATES.iter().any(|(k, _)| *k == c), "{c:?}");
        }
    }

    /// The model picks what was measured fastest (or a measured tie) on every calibrated
    /// ResNet/VGG layer shape.
    #[test]
    fn conv3x3_choices_match_the_measurements() {
        let algos = [ConvAlgo::Direct, ConvAlgo::F2, ConvAlgo::F4];
        for (c, h, measured) in CONV3X3_CALIBRATION {
            let model: Vec<f64> = algos.iter().map(|&a| conv3x3_cost(c, h, a)).collect();
            let pick = (0..3)
                .min_by(|&i, &j| model[i].total_cmp(&model[j]))
                .unwrap();
            let best = measured.iter().copied().fold(f64::INFINITY, f64::min);
            assert!(
                measured[pick] <= best * (1.0 + CALIBRATION_TIE),
                "{c} channels, {h}x{h}: the model picks {:?} (estimates {model:?} ns), measured {measured:?} ms",
                algos[pick]
            );
        }
    }

    #[test]
    fn fused_is_cheaper_than_separate() {
        let x = TensorType::f32(&[1, 8, 16, 16]);
        let w = TensorType::f32(&[8, 8, 3, 3]);
        let conv = Op::Conv2d {
            stride: [1, 1],
            pad: [1; 4],
            dilation: [1, 1],
            groups: 1,
        };
        let outs = vec![x.clone()];
        let sep = op_cost(&conv, &[&x, &w], &outs) + op_cost(&Op::Relu {}, &[&x], &outs);
        let fused = fused_cost(&conv, Act::Relu, &[&x, &w], &outs);
        assert!(fused < sep);
    }
}
