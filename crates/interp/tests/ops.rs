//! Per-op tests of the reference interpreter against hand-computed values.
//!
//! Every op kind must appear in [`TESTED`], and every kind listed there has at least one test
//! below; `every_op_kind_is_tested` fails when an op is added to the table without a test.

mod common;

use common::*;
use sinter_ir::{DType, Float, Op, OpKind, Tensor, rng};

/// The op kinds the tests in this file cover.
const TESTED: &[OpKind] = &[
    OpKind::Neg,
    OpKind::Exp,
    OpKind::Log,
    OpKind::Sqrt,
    OpKind::Rsqrt,
    OpKind::Abs,
    OpKind::Relu,
    OpKind::Sigmoid,
    OpKind::Tanh,
    OpKind::LeakyRelu,
    OpKind::Add,
    OpKind::Sub,
    OpKind::Mul,
    OpKind::Div,
    OpKind::Max,
    OpKind::Min,
    OpKind::Pow,
    OpKind::Prelu,
    OpKind::Equal,
    OpKind::Less,
    OpKind::LessEqual,
    OpKind::Greater,
    OpKind::GreaterEqual,
    OpKind::Select,
    OpKind::Cast,
    OpKind::Matmul,
    OpKind::Gemm,
    OpKind::Conv2d,
    OpKind::ConvTranspose2d,
    OpKind::MaxPool2d,
    OpKind::AvgPool2d,
    OpKind::GlobalAvgPool,
    OpKind::MaxPool2dGrad,
    OpKind::AvgPool2dGrad,
    OpKind::Conv2dWeightGrad,
    OpKind::WinogradFilter,
    OpKind::WinogradInput,
    OpKind::WinogradOutput,
    OpKind::ScatterAdd,
    OpKind::BatchNorm,
    OpKind::BatchNormTrain,
    OpKind::Softmax,
    OpKind::LogSoftmax,
    OpKind::Dropout,
    OpKind::RandomUniform,
    OpKind::RandomNormal,
    OpKind::Bernoulli,
    OpKind::StochasticPool2d,
    OpKind::ReduceSum,
    OpKind::ReduceMean,
    OpKind::ReduceMax,
    OpKind::Argmax,
    OpKind::Reshape,
    OpKind::Transpose,
    OpKind::Broadcast,
    OpKind::Concat,
    OpKind::Split,
    OpKind::Slice,
    OpKind::Pad,
    OpKind::Flatten,
    OpKind::Gather,
    OpKind::OneHot,
];

#[test]
fn every_op_kind_is_tested() {
    let missing: Vec<&str> = OpKind::ALL
        .iter()
        .filter(|k| !TESTED.contains(k))
        .map(|k| k.name())
        .collect();
    assert!(
        missing.is_empty(),
        "op kinds without an interpreter test: {missing:?}"
    );
}

// ---------------------------------------------------------------- unary

#[test]
fn unary_math() {
    let e = std::f32::consts::E;
    assert_f32(
        &eval1(Op::Neg {}, &[&f(&[3], &[-2.0, 0.5, 0.0])]),
        &[3],
        &[2.0, -0.5, 0.0],
    );
    assert_f32(
        &eval1(Op::Exp {}, &[&f(&[4], &[0.0, 1.0, -1.0, 2.0])]),
        &[4],
        &[1.0, e, 1.0 / e, e * e],
    );
    assert_f32(
        &eval1(Op::Log {}, &[&f(&[4], &[1.0, e, 0.0, -1.0])]),
        &[4],
        &[0.0, 1.0, f32::NEG_INFINITY, f32::NAN],
    );
    assert_f32(
        &eval1(Op::Sqrt {}, &[&f(&[4], &[4.0, 0.0, 2.25, -1.0])]),
        &[4],
        &[2.0, 0.0, 1.5, f32::NAN],
    );
    assert_f32(
        &eval1(Op::Rsqrt {}, &[&f(&[3], &[4.0, 0.25, 0.0])]),
        &[3],
        &[0.5, 2.0, f32::INFINITY],
    );
    assert_f32(
        &eval1(Op::Abs {}, &[&f(&[3], &[-3.0, 0.0, 2.5])]),
        &[3],
        &[3.0, 0.0, 2.5],
    );
    assert_f32(
        &eval1(Op::Relu {}, &[&f(&[2, 2], &[-1.0, 0.0, 2.0, -0.5])]),
        &[2, 2],
        &[0.0, 0.0, 2.0, 0.0],
    );
    // sigmoid(ln 3) = 1 / (1 + 1/3) = 0.75; saturates without NaN at +-100.
    assert_f32(
        &eval1(
            Op::Sigmoid {},
            &[&f(&[4], &[0.0, 3f32.ln(), 100.0, -100.0])],
        ),
        &[4],
        &[0.5, 0.75, 1.0, 0.0],
    );
    // tanh(ln 2) = (2 - 1/2) / (2 + 1/2) = 0.6.
    assert_f32(
        &eval1(Op::Tanh {}, &[&f(&[3], &[0.0, 2f32.ln(), -20.0])]),
        &[3],
        &[0.0, 0.6, -1.0],
    );
    assert_f32(
        &eval1(
            Op::LeakyRelu { alpha: Float(0.1) },
            &[&f(&[3], &[-2.0, 0.0, 3.0])],
        ),
        &[3],
        &[-0.2, 0.0, 3.0],
    );
    // NaN propagates through relu.
    assert!(
        eval1(Op::Relu {}, &[&f(&[1], &[f32::NAN])])
            .as_f32()
            .unwrap()[0]
            .is_nan()
    );
}

// ---------------------------------------------------------------- binary

#[test]
fn binary_broadcasting() {
    let a = f(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let row = f(&[3], &[10.0, 20.0, 30.0]);
    let col = f(&[2, 1], &[1.0, 2.0]);
    assert_f32(
        &eval1(Op::Add {}, &[&a, &row]),
        &[2, 3],
        &[11.0, 22.0, 33.0, 14.0, 25.0, 36.0],
    );
    assert_f32(
        &eval1(Op::Sub {}, &[&a, &col]),
        &[2, 3],
        &[0.0, 1.0, 2.0, 2.0, 3.0, 4.0],
    );
    // Broadcast on the left operand too, and to a shape neither input has.
    assert_f32(
        &eval1(Op::Sub {}, &[&col, &row]),
        &[2, 3],
        &[-9.0, -19.0, -29.0, -8.0, -18.0, -28.0],
    );
    let c = f(&[3, 1], &[1.0, 2.0, 3.0]);
    let r = f(&[1, 2], &[10.0, 100.0]);
    assert_f32(
        &eval1(Op::Mul {}, &[&c, &r]),
        &[3, 2],
        &[10.0, 100.0, 20.0, 200.0, 30.0, 300.0],
    );
    assert_f32(
        &eval1(Op::Mul {}, &[&a, &Tensor::scalar(2.0)]),
        &[2, 3],
        &[2.0, 4.0, 6.0, 8.0, 10.0, 12.0],
    );
    assert_f32(
        &eval1(
            Op::Div {},
            &[
                &f(&[4], &[1.0, -1.0, 0.0, 6.0]),
                &f(&[4], &[0.0, 0.0, 0.0, 4.0]),
            ],
        ),
        &[4],
        &[f32::INFINITY, f32::NEG_INFINITY, f32::NAN, 1.5],
    );
    let p = f(&[3], &[1.0, f32::NAN, 3.0]);
    let q = f(&[3], &[2.0, 2.0, f32::NAN]);
    assert_f32(
        &eval1(Op::Max {}, &[&p, &q]),
        &[3],
        &[2.0, f32::NAN, f32::NAN],
    );
    assert_f32(
        &eval1(Op::Min {}, &[&p, &q]),
        &[3],
        &[1.0, f32::NAN, f32::NAN],
    );
    assert_f32(
        &eval1(Op::Max {}, &[&a, &f(&[], &[3.5])]),
        &[2, 3],
        &[3.5, 3.5, 3.5, 4.0, 5.0, 6.0],
    );
    assert_f32(
        &eval1(Op::Min {}, &[&a, &f(&[], &[3.5])]),
        &[2, 3],
        &[1.0, 2.0, 3.0, 3.5, 3.5, 3.5],
    );
    assert_f32(
        &eval1(
            Op::Pow {},
            &[&f(&[3], &[2.0, 9.0, 4.0]), &f(&[3], &[3.0, 0.5, -1.0])],
        ),
        &[3],
        &[8.0, 3.0, 0.25],
    );
}

#[test]
fn prelu_per_channel() {
    // NCHW with a [C,1,1] slope: channel 0 holds -1, 2 and channel 1 holds -3, 4.
    let x = f(&[1, 2, 1, 2], &[-1.0, 2.0, -3.0, 4.0]);
    let slope = f(&[2, 1, 1], &[0.1, 0.5]);
    assert_f32(
        &eval1(Op::Prelu {}, &[&x, &slope]),
        &[1, 2, 1, 2],
        &[-0.1, 2.0, -1.5, 4.0],
    );
    // A scalar slope is leaky_relu.
    let y = eval1(Op::Prelu {}, &[&x, &Tensor::scalar(0.5)]);
    assert_f32(&y, &[1, 2, 1, 2], &[-0.5, 2.0, -1.5, 4.0]);
}

// ---------------------------------------------------------------- compare, select, cast

fn bools_of(t: &Tensor) -> Vec<bool> {
    t.as_bool()
        .unwrap_or_else(|| panic!("expected bool, got {}", t.ty()))
        .to_vec()
}

#[test]
fn compares_f32_and_i64() {
    let (a, s) = (f(&[3], &[1.0, 2.0, 3.0]), Tensor::scalar(2.0));
    let (t, ff) = (true, false);
    assert_eq!(bools_of(&eval1(Op::Equal {}, &[&a, &s])), [ff, t, ff]);
    assert_eq!(bools_of(&eval1(Op::Less {}, &[&a, &s])), [t, ff, ff]);
    assert_eq!(bools_of(&eval1(Op::LessEqual {}, &[&a, &s])), [t, t, ff]);
    assert_eq!(bools_of(&eval1(Op::Greater {}, &[&a, &s])), [ff, ff, t]);
    assert_eq!(bools_of(&eval1(Op::GreaterEqual {}, &[&a, &s])), [ff, t, t]);
    // i64 with broadcasting [2,1] vs [3].
    let (x, y) = (i(&[2, 1], &[1, 2]), i(&[3], &[0, 1, 2]));
    let lt = eval1(Op::Less {}, &[&x, &y]);
    assert_eq!(lt.shape(), &[2, 3]);
    assert_eq!(bools_of(&lt), [ff, ff, t, ff, ff, ff]);
    assert_eq!(
        bools_of(&eval1(Op::Equal {}, &[&x, &y])),
        [ff, t, ff, ff, ff, t]
    );
    // NaN compares false.
    let nan = f(&[1], &[f32::NAN]);
    assert_eq!(bools_of(&eval1(Op::Equal {}, &[&nan, &nan])), [ff]);
    assert_eq!(bools_of(&eval1(Op::GreaterEqual {}, &[&nan, &nan])), [ff]);
}

#[test]
fn select_broadcasts_three_ways_for_every_dtype() {
    let cond = b(&[2, 1], &[true, false]);
    let out = eval1(
        Op::Select {},
        &[&cond, &f(&[3], &[1.0, 2.0, 3.0]), &Tensor::scalar(0.0)],
    );
    assert_f32(&out, &[2, 3], &[1.0, 2.0, 3.0, 0.0, 0.0, 0.0]);
    let out = eval1(Op::Select {}, &[&cond, &i(&[], &[7]), &i(&[1, 2], &[1, 2])]);
    assert_eq!(out.shape(), &[2, 2]);
    assert_eq!(out.as_i64().unwrap(), &[7, 7, 1, 2]);
    let out = eval1(
        Op::Select {},
        &[
            &b(&[2], &[false, true]),
            &b(&[2], &[true, true]),
            &b(&[2], &[false, false]),
        ],
    );
    assert_eq!(bools_of(&out), [false, true]);
}

#[test]
fn cast_between_all_dtypes() {
    let x = f(&[5], &[-1.7, -0.2, 0.0, 2.9, f32::NAN]);
    assert_eq!(
        eval1(Op::Cast { to: DType::I64 }, &[&x]).as_i64().unwrap(),
        &[-1, 0, 0, 2, 0]
    );
    assert_eq!(
        bools_of(&eval1(Op::Cast { to: DType::Bool }, &[&x])),
        [true, true, false, true, true]
    );
    assert_f32(
        &eval1(Op::Cast { to: DType::F32 }, &[&x]),
        &[5],
        &[-1.7, -0.2, 0.0, 2.9, f32::NAN],
    );
    let flags = b(&[2], &[true, false]);
    assert_f32(
        &eval1(Op::Cast { to: DType::F32 }, &[&flags]),
        &[2],
        &[1.0, 0.0],
    );
    assert_eq!(
        eval1(Op::Cast { to: DType::I64 }, &[&flags])
            .as_i64()
            .unwrap(),
        &[1, 0]
    );
    let n = i(&[3], &[0, -3, 5]);
    assert_eq!(
        bools_of(&eval1(Op::Cast { to: DType::Bool }, &[&n])),
        [false, true, true]
    );
    assert_f32(
        &eval1(Op::Cast { to: DType::F32 }, &[&n]),
        &[3],
        &[0.0, -3.0, 5.0],
    );
}

// ---------------------------------------------------------------- linear

#[test]
fn matmul_plain_and_batch_broadcast() {
    let a = f(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let b2 = f(&[3, 2], &[7.0, 8.0, 9.0, 10.0, 11.0, 12.0]);
    assert_f32(
        &eval1(Op::Matmul {}, &[&a, &b2]),
        &[2, 2],
        &[58.0, 64.0, 139.0, 154.0],
    );

    // [2,1,2,2] x [3,2,2] -> [2,3,2,2]: every a_i times every b_j.
    let a = f(&[2, 1, 2, 2], &[1.0, 2.0, 3.0, 4.0, 1.0, 0.0, 0.0, 1.0]);
    let b = f(
        &[3, 2, 2],
        &[1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 2.0, 0.0, 0.0, 2.0],
    );
    #[rustfmt::skip]
    let want = [
        1.0, 2.0, 3.0, 4.0,   2.0, 1.0, 4.0, 3.0,   2.0, 4.0, 6.0, 8.0,
        1.0, 0.0, 0.0, 1.0,   0.0, 1.0, 1.0, 0.0,   2.0, 0.0, 0.0, 2.0,
    ];
    assert_f32(&eval1(Op::Matmul {}, &[&a, &b]), &[2, 3, 2, 2], &want);

    // A rank-2 right side broadcasts over the left's batch.
    let a = f(&[2, 1, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    assert_f32(
        &eval1(Op::Matmul {}, &[&a, &b2]),
        &[2, 1, 2],
        &[58.0, 64.0, 139.0, 154.0],
    );
}

#[test]
fn gemm_transposes_alpha_beta_and_c() {
    let a = f(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let b = f(&[3, 2], &[7.0, 8.0, 9.0, 10.0, 11.0, 12.0]);
    let at = f(&[3, 2], &[1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    let bt = f(&[2, 3], &[7.0, 9.0, 11.0, 8.0, 10.0, 12.0]);
    let plain = Op::Gemm {
        trans_a: false,
        trans_b: false,
        alpha: Float(1.0),
        beta: Float(1.0),
    };
    let product = [58.0, 64.0, 139.0, 154.0];
    assert_f32(&eval1(plain.clone(), &[&a, &b]), &[2, 2], &product);
    let tt = Op::Gemm {
        trans_a: true,
        trans_b: true,
        alpha: Float(1.0),
        beta: Float(1.0),
    };
    assert_f32(&eval1(tt, &[&at, &bt]), &[2, 2], &product);
    let scaled = Op::Gemm {
        trans_a: false,
        trans_b: true,
        alpha: Float(2.0),
        beta: Float(3.0),
    };
    let c = f(&[2], &[1.0, -1.0]);
    assert_f32(
        &eval1(scaled, &[&a, &bt, &c]),
        &[2, 2],
        &[119.0, 125.0, 281.0, 305.0],
    );
    let col = f(&[2, 1], &[10.0, 20.0]);
    assert_f32(
        &eval1(plain, &[&a, &b, &col]),
        &[2, 2],
        &[68.0, 74.0, 159.0, 174.0],
    );
}

// ---------------------------------------------------------------- convolution

#[rustfmt::skip]
const IMAGE: [f32; 25] = [
    1.0, 1.0, 1.0, 0.0, 0.0,
    0.0, 1.0, 1.0, 1.0, 0.0,
    0.0, 0.0, 1.0, 1.0, 1.0,
    0.0, 0.0, 1.0, 1.0, 0.0,
    0.0, 1.0, 1.0, 0.0, 0.0,
];
const X_KERNEL: [f32; 9] = [1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0];

fn conv(stride: [i64; 2], pad: [i64; 4], dilation: [i64; 2], groups: i64) -> Op {
    Op::Conv2d {
        stride,
        pad,
        dilation,
        groups,
    }
}

#[test]
fn conv2d_textbook_example() {
    let x = f(&[1, 1, 5, 5], &IMAGE);
    let w = f(&[1, 1, 3, 3], &X_KERNEL);
    let y = eval1(conv([1, 1], [0; 4], [1, 1], 1), &[&x, &w]);
    assert_f32(
        &y,
        &[1, 1, 3, 3],
        &[4.0, 3.0, 4.0, 2.0, 4.0, 3.0, 2.0, 3.0, 4.0],
    );
}

#[test]
fn conv2d_stride_padding_and_bias() {
    let x = f(&[1, 1, 5, 5], &IMAGE);
    let w = f(&[1, 1, 3, 3], &X_KERNEL);
    let bias = f(&[1], &[0.5]);
    let y = eval1(conv([2, 2], [1, 1, 1, 1], [1, 1], 1), &[&x, &w, &bias]);
    assert_f32(
        &y,
        &[1, 1, 3, 3],
        &[2.5, 3.5, 1.5, 1.5, 4.5, 3.5, 0.5, 2.5, 1.5],
    );
    // Asymmetric padding: only the bottom and right; stride 1 on width only.
    let y = eval1(conv([2, 1], [0, 0, 1, 1], [1, 1], 1), &[&x, &w]);
    assert_eq!(y.shape(), &[1, 1, 2, 4]);
    // Row 0 is the unpadded textbook row plus the window at column 3, which sees
    // x[0][3] + x[1][4] + x[2][3] = 0 + 0 + 1.
    assert_f32(&y, &[1, 1, 2, 4], &[4.0, 3.0, 4.0, 1.0, 2.0, 3.0, 4.0, 1.0]);
}

#[test]
fn conv2d_grouped_and_multichannel() {
    // Four input channels in two groups, 1x1 kernels: out0 = 1*x0 + 10*x1, out1 = 100*x2 + 1000*x3.
    let x = f(&[1, 4, 1, 1], &[1.0, 2.0, 3.0, 4.0]);
    let w = f(&[2, 2, 1, 1], &[1.0, 10.0, 100.0, 1000.0]);
    assert_f32(
        &eval1(conv([1, 1], [0; 4], [1, 1], 2), &[&x, &w]),
        &[1, 2, 1, 1],
        &[21.0, 4300.0],
    );
    // The same weights ungrouped would need 4 input channels per filter: groups=1 over two
    // channels mixes both.
    let x2 = f(&[2, 2, 1, 1], &[1.0, 2.0, 3.0, 4.0]);
    assert_f32(
        &eval1(conv([1, 1], [0; 4], [1, 1], 1), &[&x2, &w]),
        &[2, 2, 1, 1],
        &[21.0, 2100.0, 43.0, 4300.0],
    );
    // Depthwise: each channel scaled by its own weight.
    let x = f(&[1, 2, 2, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
    let w = f(&[2, 1, 1, 1], &[2.0, 3.0]);
    assert_f32(
        &eval1(conv([1, 1], [0; 4], [1, 1], 2), &[&x, &w]),
        &[1, 2, 2, 2],
        &[2.0, 4.0, 6.0, 8.0, 15.0, 18.0, 21.0, 24.0],
    );
}

#[test]
fn conv2d_dilated() {
    // 2x2 kernel [[1,2],[3,4]] with dilation 2: y[r][c] = x[r][c] + 2x[r][c+2] + 3x[r+2][c] + 4x[r+2][c+2].
    let x = f(&[1, 1, 5, 5], &IMAGE);
    let w = f(&[1, 1, 2, 2], &[1.0, 2.0, 3.0, 4.0]);
    let y = eval1(conv([1, 1], [0; 4], [2, 2], 1), &[&x, &w]);
    assert_f32(
        &y,
        &[1, 1, 3, 3],
        &[7.0, 5.0, 8.0, 6.0, 7.0, 4.0, 6.0, 5.0, 6.0],
    );
}

fn conv_t(
    stride: [i64; 2],
    pad: [i64; 4],
    output_pad: [i64; 2],
    dilation: [i64; 2],
    groups: i64,
) -> Op {
    Op::ConvTranspose2d {
        stride,
        pad,
        output_pad,
        dilation,
        groups,
    }
}

#[test]
fn conv_transpose2d_by_hand() {
    // Stride 2, 2x2 kernel: each input pixel paints v * w into its own 2x2 block.
    let x = f(&[1, 1, 2, 2], &[1.0, 2.0, 3.0, 4.0]);
    let w = f(&[1, 1, 2, 2], &[1.0, 2.0, 3.0, 4.0]);
    #[rustfmt::skip]
    let painted = [
        1.0, 2.0, 2.0, 4.0,
        3.0, 4.0, 6.0, 8.0,
        3.0, 6.0, 4.0, 8.0,
        9.0, 12.0, 12.0, 16.0,
    ];
    assert_f32(
        &eval1(conv_t([2, 2], [0; 4], [0, 0], [1, 1], 1), &[&x, &w]),
        &[1, 1, 4, 4],
        &painted,
    );
    // Padding crops the border; output_pad adds a row/column that only the bias reaches.
    assert_f32(
        &eval1(conv_t([2, 2], [1, 1, 1, 1], [0, 0], [1, 1], 1), &[&x, &w]),
        &[1, 1, 2, 2],
        &[4.0, 6.0, 6.0, 4.0],
    );
    let bias = f(&[1], &[1.0]);
    let y = eval1(conv_t([2, 2], [0; 4], [1, 1], [1, 1], 1), &[&x, &w, &bias]);
    assert_eq!(y.shape(), &[1, 1, 5, 5]);
    let v = y.as_f32().unwrap();
    assert_eq!(&v[..4], &[2.0, 3.0, 3.0, 5.0]);
    assert!(v[20..].iter().all(|&e| e == 1.0) && (0..5).all(|r| v[r * 5 + 4] == 1.0));
    // Stride 1: overlapping windows add up.
    let ones = f(&[1, 1, 2, 2], &[1.0; 4]);
    assert_f32(
        &eval1(conv_t([1, 1], [0; 4], [0, 0], [1, 1], 1), &[&x, &ones]),
        &[1, 1, 3, 3],
        &[1.0, 3.0, 2.0, 4.0, 10.0, 6.0, 3.0, 7.0, 4.0],
    );
    // Groups: two input channels, each with its own single output channel.
    let x = f(&[1, 2, 1, 1], &[2.0, 3.0]);
    let w = f(&[2, 1, 1, 2], &[1.0, 10.0, 100.0, 1000.0]);
    assert_f32(
        &eval1(conv_t([1, 1], [0; 4], [0, 0], [1, 1], 2), &[&x, &w]),
        &[1, 2, 1, 2],
        &[2.0, 20.0, 300.0, 3000.0],
    );
}

fn dot(a: &Tensor, b: &Tensor) -> f64 {
    let (a, b) = (a.as_f32().unwrap(), b.as_f32().unwrap());
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum()
}

#[test]
fn conv_transpose2d_is_the_adjoint_of_conv2d() {
    // (x shape [N, C_in, H, W], w shape [C_out, C_in/groups, kH, kW], stride, pad, dilation, groups)
    type Case = ([usize; 4], [usize; 4], [i64; 2], [i64; 4], [i64; 2], i64);
    let cases: [Case; 5] = [
        ([1, 1, 5, 5], [1, 1, 3, 3], [1, 1], [0; 4], [1, 1], 1),
        ([2, 3, 7, 6], [4, 3, 3, 2], [2, 1], [1, 0, 2, 1], [1, 2], 1),
        ([2, 4, 7, 6], [6, 2, 3, 2], [2, 3], [1, 2, 0, 1], [2, 1], 2),
        ([1, 6, 9, 8], [3, 2, 2, 3], [3, 2], [2, 1, 1, 2], [2, 2], 3),
        ([1, 4, 6, 6], [4, 1, 3, 3], [2, 2], [1, 1, 1, 1], [1, 1], 4),
    ];
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    for (xs, ws, stride, pad, dilation, groups) in cases {
        let x = rng.tensor(&xs);
        let w = rng.tensor(&ws);
        let y = eval1(conv(stride, pad, dilation, groups), &[&x, &w]);
        let dy = rng.tensor(y.shape());
        // output_pad recovers the input extent that the conv's floor division dropped.
        let mut output_pad = [0i64; 2];
        for a in 0..2 {
            let span = dilation[a] * (ws[2 + a] as i64 - 1) + 1;
            output_pad[a] = (xs[2 + a] as i64 + pad[a] + pad[a + 2] - span) % stride[a];
        }
        let dx = eval1(
            conv_t(stride, pad, output_pad, dilation, groups),
            &[&dy, &w],
        );
        assert_eq!(dx.shape(), x.shape(), "case {xs:?} {ws:?}");
        let (lhs, rhs) = (dot(&dx, &x), dot(&dy, &y));
        assert!(
            (lhs - rhs).abs() <= 1e-4 * (1.0 + rhs.abs()),
            "case {xs:?} {ws:?}: {lhs} vs {rhs}"
        );
    }
}

// ---------------------------------------------------------------- pooling

#[test]
fn max_pool_padding_never_wins() {
    let x = f(
        &[1, 1, 3, 3],
        &[-1.0, -2.0, -3.0, -4.0, -5.0, -6.0, -7.0, -8.0, -9.0],
    );
    let op = Op::MaxPool2d {
        kernel: [2, 2],
        stride: [2, 2],
        pad: [1, 1, 1, 1],
    };
    assert_f32(&eval1(op, &[&x]), &[1, 1, 2, 2], &[-1.0, -2.0, -4.0, -5.0]);
    let x = f(&[1, 1, 2, 2], &[1.0, 2.0, 3.0, 4.0]);
    let op = Op::MaxPool2d {
        kernel: [2, 2],
        stride: [1, 1],
        pad: [0, 0, 1, 1],
    };
    assert_f32(&eval1(op, &[&x]), &[1, 1, 2, 2], &[4.0, 4.0, 4.0, 4.0]);
    // Two channels, no padding, stride 2.
    let x = arange(&[1, 2, 2, 4]);
    let op = Op::MaxPool2d {
        kernel: [2, 2],
        stride: [2, 2],
        pad: [0; 4],
    };
    assert_f32(&eval1(op, &[&x]), &[1, 2, 1, 2], &[5.0, 7.0, 13.0, 15.0]);
}

#[test]
fn avg_pool_count_include_pad() {
    let x = f(
        &[1, 1, 3, 3],
        &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0],
    );
    let op = |count_include_pad| Op::AvgPool2d {
        kernel: [2, 2],
        stride: [2, 2],
        pad: [1, 1, 1, 1],
        count_include_pad,
    };
    assert_f32(
        &eval1(op(false), &[&x]),
        &[1, 1, 2, 2],
        &[1.0, 2.5, 5.5, 7.0],
    );
    assert_f32(
        &eval1(op(true), &[&x]),
        &[1, 1, 2, 2],
        &[0.25, 1.25, 2.75, 7.0],
    );
    let x = f(&[1, 1, 2, 2], &[1.0, 2.0, 3.0, 4.0]);
    let op = |count_include_pad| Op::AvgPool2d {
        kernel: [2, 2],
        stride: [1, 1],
        pad: [0, 0, 1, 1],
        count_include_pad,
    };
    assert_f32(
        &eval1(op(false), &[&x]),
        &[1, 1, 2, 2],
        &[2.5, 3.0, 3.5, 4.0],
    );
    assert_f32(
        &eval1(op(true), &[&x]),
        &[1, 1, 2, 2],
        &[2.5, 1.5, 1.75, 1.0],
    );
}

#[test]
fn global_avg_pool_per_channel() {
    let x = f(&[1, 2, 2, 2], &[1.0, 2.0, 3.0, 4.0, 10.0, 20.0, 30.0, 40.0]);
    assert_f32(
        &eval1(Op::GlobalAvgPool {}, &[&x]),
        &[1, 2, 1, 1],
        &[2.5, 25.0],
    );
}

// ---------------------------------------------------------------- normalisation, softmax

#[test]
fn batch_norm_inference() {
    let x = f(&[2, 2], &[1.0, 2.0, 3.0, 4.0]);
    let (gamma, beta) = (f(&[2], &[2.0, 1.0]), f(&[2], &[0.0, 1.0]));
    let (mean, var) = (f(&[2], &[1.0, 2.0]), f(&[2], &[4.0, 1.0]));
    let y = eval1(
        Op::BatchNorm { eps: Float(0.0) },
        &[&x, &gamma, &beta, &mean, &var],
    );
    assert_f32(&y, &[2, 2], &[0.0, 1.0, 2.0, 3.0]);
    // eps is added to the variance.
    let y = eval1(
        Op::BatchNorm { eps: Float(3.0) },
        &[&x, &gamma, &beta, &mean, &var],
    );
    assert_f32(&y, &[2, 2], &[0.0, 1.0, 4.0 / 7f32.sqrt(), 2.0]);
}

#[test]
fn batch_norm_train_statistics() {
    // Channel 0 holds 1, 3, 5, 7 (mean 4, biased var 5); channel 1 holds 10, 10, 20, 20
    // (mean 15, var 25).
    let x = f(&[2, 2, 1, 2], &[1.0, 3.0, 10.0, 10.0, 5.0, 7.0, 20.0, 20.0]);
    let (gamma, beta) = (f(&[2], &[1.0, 2.0]), f(&[2], &[0.0, 1.0]));
    let outs = eval(Op::BatchNormTrain { eps: Float(0.0) }, &[&x, &gamma, &beta]);
    assert_eq!(outs.len(), 3);
    let s = 5f32.sqrt();
    assert_f32(
        &outs[0],
        &[2, 2, 1, 2],
        &[-3.0 / s, -1.0 / s, -1.0, -1.0, 1.0 / s, 3.0 / s, 3.0, 3.0],
    );
    assert_f32(&outs[1], &[2], &[4.0, 15.0]);
    assert_f32(&outs[2], &[2], &[5.0, 25.0]);
}

#[test]
fn softmax_rows_sum_to_one() {
    let x = f(&[2, 3], &[1.0, 2.0, 3.0, 1000.0, 1000.0, 1000.0]);
    let y = eval1(Op::Softmax { axis: -1 }, &[&x]);
    let z = (-2f32).exp() + (-1f32).exp() + 1.0;
    let third = 1.0 / 3.0;
    assert_f32(
        &y,
        &[2, 3],
        &[
            (-2f32).exp() / z,
            (-1f32).exp() / z,
            1.0 / z,
            third,
            third,
            third,
        ],
    );
    for row in y.as_f32().unwrap().chunks(3) {
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
    }
    // Along axis 0.
    let y = eval1(
        Op::Softmax { axis: 0 },
        &[&f(&[2, 2], &[0.0, 5.0, 0.0, 5.0])],
    );
    assert_f32(&y, &[2, 2], &[0.5, 0.5, 0.5, 0.5]);
}

#[test]
fn log_softmax_is_stable() {
    let x = f(&[3, 2], &[1000.0, 0.0, -1000.0, -1000.0, 0.0, 3f32.ln()]);
    let y = eval1(Op::LogSoftmax { axis: 1 }, &[&x]);
    let half = 0.5f32.ln();
    assert_f32(
        &y,
        &[3, 2],
        &[0.0, -1000.0, half, half, 0.25f32.ln(), 0.75f32.ln()],
    );
    assert!(y.as_f32().unwrap().iter().all(|v| v.is_finite()));
    let y = eval1(Op::LogSoftmax { axis: 0 }, &[&f(&[2, 1], &[2.0, 2.0])]);
    assert_f32(&y, &[2, 1], &[half, half]);
}

// ---------------------------------------------------------------- random

fn counter(c: i64) -> Tensor {
    i(&[], &[c])
}

#[test]
fn dropout_mask_rate_and_reproducibility() {
    let n = 20_000;
    let x = Tensor::full(&[n], 2.0);
    let op = Op::Dropout {
        p: Float(0.3),
        seed: 7,
    };
    let y = eval1(op.clone(), &[&x, &counter(5)]);
    let v = y.as_f32().unwrap();
    let key = rng::key(7, 5);
    for (k, &e) in v.iter().enumerate() {
        let keep = rng::uniform(key, k as u64) >= 0.3;
        assert_eq!(e, if keep { 2.0 * (1.0 / 0.7) } else { 0.0 }, "element {k}");
    }
    let kept = v.iter().filter(|&&e| e != 0.0).count() as f32 / n as f32;
    assert!((kept - 0.7).abs() < 0.015, "kept fraction {kept}");
    // Same (seed, counter): same mask; another counter: another mask.
    assert_eq!(eval1(op.clone(), &[&x, &counter(5)]), y);
    let other = eval1(op.clone(), &[&x, &counter(6)]);
    assert_ne!(other, y);
    // No counter input means counter 0.
    assert_eq!(eval1(op.clone(), &[&x]), eval1(op, &[&x, &counter(0)]));
    // p = 0 keeps everything unchanged.
    assert_eq!(
        eval1(
            Op::Dropout {
                p: Float(0.0),
                seed: 1
            },
            &[&x]
        ),
        x
    );
}

#[test]
fn random_uniform_range_and_bits() {
    let op = Op::RandomUniform {
        shape: vec![10, 100],
        low: Float(-2.0),
        high: Float(3.0),
        seed: 1,
    };
    let y = eval1(op.clone(), &[]);
    assert_eq!(y.shape(), &[10, 100]);
    let v = y.as_f32().unwrap();
    let key = rng::key(1, 0);
    for (k, &e) in v.iter().enumerate() {
        assert_eq!(e, -2.0 + 5.0 * rng::uniform(key, k as u64));
        assert!((-2.0..3.0).contains(&e));
    }
    let mean = v.iter().sum::<f32>() / v.len() as f32;
    assert!((mean - 0.5).abs() < 0.15, "mean {mean}");
    assert_eq!(eval1(op.clone(), &[&counter(0)]), y);
    assert_ne!(eval1(op, &[&counter(1)]), y);
}

#[test]
fn random_normal_moments_and_bits() {
    let op = Op::RandomNormal {
        shape: vec![20_000],
        mean: Float(1.0),
        std: Float(2.0),
        seed: 3,
    };
    let y = eval1(op.clone(), &[&counter(4)]);
    let v = y.as_f32().unwrap();
    let key = rng::key(3, 4);
    for (k, &e) in v.iter().enumerate().take(100) {
        assert_eq!(e, 1.0 + 2.0 * rng::normal(key, k as u64));
    }
    let n = v.len() as f32;
    let mean = v.iter().sum::<f32>() / n;
    let var = v.iter().map(|e| (e - mean) * (e - mean)).sum::<f32>() / n;
    assert!((mean - 1.0).abs() < 0.05, "mean {mean}");
    assert!((var.sqrt() - 2.0).abs() < 0.05, "std {}", var.sqrt());
    assert_ne!(eval1(op, &[&counter(5)]), y);
}

#[test]
fn bernoulli_frequencies() {
    let n = 10_000;
    let probs = [0.0f32, 0.25, 0.75, 1.0];
    let p: Vec<f32> = probs
        .iter()
        .flat_map(|&q| std::iter::repeat_n(q, n))
        .collect();
    let p = f(&[4, n], &p);
    let y = eval1(Op::Bernoulli { seed: 11 }, &[&p, &counter(2)]);
    let v = y.as_f32().unwrap();
    let key = rng::key(11, 2);
    for (k, &e) in v.iter().enumerate() {
        assert_eq!(
            e,
            if rng::uniform(key, k as u64) < p.as_f32().unwrap()[k] {
                1.0
            } else {
                0.0
            }
        );
    }
    for (row, &q) in v.chunks(n).zip(&probs) {
        let freq = row.iter().sum::<f32>() / n as f32;
        assert!((freq - q).abs() < 0.02, "p={q}: frequency {freq}");
    }
    assert_eq!(
        eval1(Op::Bernoulli { seed: 11 }, &[&p]),
        eval1(Op::Bernoulli { seed: 11 }, &[&p, &counter(0)])
    );
}

/// The interpreter evaluates `stochastic_pool2d` directly; every other stage runs its
/// expansion (`sinter_ir::expand_composites`). The two agree bit for bit, on windows of 1, 4
/// and 9 elements, with and without a counter, with all-zero windows and ties.
#[test]
fn stochastic_pool_is_its_expansion() {
    use sinter_ir::{Builder, TensorType, expand_composites};
    for (shape, k) in [([2, 3, 6, 4], 2), ([1, 2, 9, 6], 3), ([1, 1, 3, 5], 1)] {
        for counter_in in [None, Some(4i64)] {
            let mut b = Builder::new("g");
            let x = b.input("x", TensorType::f32(&shape)).unwrap();
            let c = b.input("c", TensorType::i64(&[])).unwrap();
            let y = b
                .stochastic_pool2d(x, k, Some((9, counter_in.map(|_| c))))
                .unwrap();
            let g = b.finish(&[y]).unwrap();
            let n: usize = shape.iter().product();
            // Values 0..3 in steps of 0.5, with zeros (whole zero windows at k=1) and ties.
            let xs: Vec<f32> = (0..n).map(|i| ((i * 5) % 7) as f32 * 0.5).collect();
            let mut feeds = std::collections::HashMap::from([
                ("x".to_string(), Tensor::from_f32(&shape, xs)),
                ("c".to_string(), counter(counter_in.unwrap_or(0))),
            ]);
            let direct = sinter_interp::run(&g, &feeds).unwrap();
            let expanded = expand_composites(&g).unwrap();
            assert!(expanded.nodes().len() > g.nodes().len());
            let via = sinter_interp::run(&expanded, &feeds).unwrap();
            assert_eq!(direct[0].0, via[0].0);
            let (a, e) = (direct[0].1.as_f32().unwrap(), via[0].1.as_f32().unwrap());
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(a), bits(e), "{shape:?} k={k} counter {counter_in:?}");
            // Another counter draws differently (windows of one element cannot).
            if k > 1 {
                feeds.insert("c".to_string(), counter(counter_in.unwrap_or(0) + 1));
                let other = sinter_interp::run(&g, &feeds).unwrap();
                if counter_in.is_some() {
                    assert_ne!(other[0].1, direct[0].1);
                }
            }
        }
    }
}

// ---------------------------------------------------------------- reductions

#[test]
fn reduce_sum_axes_and_keepdims() {
    let x = f(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let sum = |axes: Vec<i64>, keepdims| Op::ReduceSum { axes, keepdims };
    assert_f32(&eval1(sum(vec![1], false), &[&x]), &[2], &[6.0, 15.0]);
    assert_f32(&eval1(sum(vec![0], true), &[&x]), &[1, 3], &[5.0, 7.0, 9.0]);
    assert_f32(&eval1(sum(vec![], false), &[&x]), &[], &[21.0]);
    assert_f32(&eval1(sum(vec![], true), &[&x]), &[1, 1], &[21.0]);
    assert_f32(&eval1(sum(vec![-1], true), &[&x]), &[2, 1], &[6.0, 15.0]);
    let x3 = arange(&[2, 2, 2]);
    assert_f32(&eval1(sum(vec![0, 2], false), &[&x3]), &[2], &[10.0, 18.0]);
    assert_f32(
        &eval1(sum(vec![2, 0], true), &[&x3]),
        &[1, 2, 1],
        &[10.0, 18.0],
    );
}

#[test]
fn reduce_mean_and_max() {
    let x = f(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    assert_f32(
        &eval1(
            Op::ReduceMean {
                axes: vec![0],
                keepdims: false,
            },
            &[&x],
        ),
        &[3],
        &[2.5, 3.5, 4.5],
    );
    assert_f32(
        &eval1(
            Op::ReduceMean {
                axes: vec![],
                keepdims: false,
            },
            &[&x],
        ),
        &[],
        &[3.5],
    );
    assert_f32(
        &eval1(
            Op::ReduceMax {
                axes: vec![1],
                keepdims: false,
            },
            &[&x],
        ),
        &[2],
        &[3.0, 6.0],
    );
    assert_f32(
        &eval1(
            Op::ReduceMax {
                axes: vec![0],
                keepdims: true,
            },
            &[&x],
        ),
        &[1, 3],
        &[4.0, 5.0, 6.0],
    );
    let neg = f(&[3], &[-5.0, -2.0, -7.0]);
    assert_f32(
        &eval1(
            Op::ReduceMax {
                axes: vec![],
                keepdims: false,
            },
            &[&neg],
        ),
        &[],
        &[-2.0],
    );
    let nan = f(&[2, 2], &[1.0, f32::NAN, 3.0, 4.0]);
    assert_f32(
        &eval1(
            Op::ReduceMax {
                axes: vec![1],
                keepdims: false,
            },
            &[&nan],
        ),
        &[2],
        &[f32::NAN, 4.0],
    );
}

#[test]
fn argmax_first_maximum() {
    let x = f(&[2, 3], &[1.0, 3.0, 3.0, 5.0, 2.0, 5.0]);
    let am = |axis, keepdims| Op::Argmax { axis, keepdims };
    let y = eval1(am(1, false), &[&x]);
    assert_eq!(
        (y.shape(), y.as_i64().unwrap()),
        (&[2usize][..], &[1i64, 0][..])
    );
    let y = eval1(am(0, true), &[&x]);
    assert_eq!(
        (y.shape(), y.as_i64().unwrap()),
        (&[1usize, 3][..], &[1i64, 0, 1][..])
    );
    let y = eval1(am(-1, true), &[&i(&[2, 2], &[-4, -9, 7, 7])]);
    assert_eq!(
        (y.shape(), y.as_i64().unwrap()),
        (&[2usize, 1][..], &[0i64, 0][..])
    );
    // NaN counts as the maximum, first one wins.
    let y = eval1(am(0, false), &[&f(&[4], &[1.0, f32::NAN, 5.0, f32::NAN])]);
    assert_eq!(y.as_i64().unwrap(), &[1]);
}

// ---------------------------------------------------------------- movement

#[test]
fn reshape_and_flatten_keep_order_for_all_dtypes() {
    let x = i(&[2, 3], &[1, 2, 3, 4, 5, 6]);
    let y = eval1(Op::Reshape { shape: vec![3, -1] }, &[&x]);
    assert_eq!(y, i(&[3, 2], &[1, 2, 3, 4, 5, 6]));
    let y = eval1(Op::Reshape { shape: vec![6] }, &[&arange(&[2, 3])]);
    assert_f32(&y, &[6], &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
    let flags = b(
        &[2, 2, 2],
        &[true, false, false, true, true, true, false, false],
    );
    let y = eval1(Op::Flatten { axis: 1 }, &[&flags]);
    assert_eq!(
        y,
        b(
            &[2, 4],
            &[true, false, false, true, true, true, false, false]
        )
    );
    let y = eval1(Op::Flatten { axis: 0 }, &[&arange(&[2, 2])]);
    assert_f32(&y, &[1, 4], &[0.0, 1.0, 2.0, 3.0]);
}

#[test]
fn transpose_permutes_axes() {
    let y = eval1(
        Op::Transpose { perm: vec![1, 0] },
        &[&f(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])],
    );
    assert_f32(&y, &[3, 2], &[1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    // out[i][j][k] = x[j][k][i] for x = arange([2,3,4]): x[j][k][i] = 12j + 4k + i.
    let y = eval1(
        Op::Transpose {
            perm: vec![2, 0, 1],
        },
        &[&arange(&[2, 3, 4])],
    );
    let mut want = Vec::new();
    for ii in 0..4 {
        for j in 0..2 {
            for k in 0..3 {
                want.push((12 * j + 4 * k + ii) as f32);
            }
        }
    }
    assert_f32(&y, &[4, 2, 3], &want);
    let y = eval1(
        Op::Transpose { perm: vec![-1, 0] },
        &[&i(&[2, 2], &[1, 2, 3, 4])],
    );
    assert_eq!(y, i(&[2, 2], &[1, 3, 2, 4]));
    let y = eval1(
        Op::Transpose { perm: vec![1, 0] },
        &[&b(&[1, 2], &[true, false])],
    );
    assert_eq!(y, b(&[2, 1], &[true, false]));
}

#[test]
fn broadcast_to_shape() {
    let y = eval1(
        Op::Broadcast {
            shape: vec![2, 3, 2],
        },
        &[&i(&[3, 1], &[1, 2, 3])],
    );
    assert_eq!(y, i(&[2, 3, 2], &[1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3]));
    let y = eval1(Op::Broadcast { shape: vec![2, 2] }, &[&Tensor::scalar(4.0)]);
    assert_f32(&y, &[2, 2], &[4.0; 4]);
    let y = eval1(
        Op::Broadcast { shape: vec![2, 2] },
        &[&b(&[2], &[true, false])],
    );
    assert_eq!(y, b(&[2, 2], &[true, false, true, false]));
}

#[test]
fn concat_along_axes() {
    let a = f(&[2, 1], &[1.0, 2.0]);
    let c = f(&[2, 2], &[3.0, 4.0, 5.0, 6.0]);
    assert_f32(
        &eval1(Op::Concat { axis: 1 }, &[&a, &c]),
        &[2, 3],
        &[1.0, 3.0, 4.0, 2.0, 5.0, 6.0],
    );
    assert_f32(
        &eval1(Op::Concat { axis: -1 }, &[&c, &a, &a]),
        &[2, 4],
        &[3.0, 4.0, 1.0, 1.0, 5.0, 6.0, 2.0, 2.0],
    );
    let y = eval1(
        Op::Concat { axis: 0 },
        &[&i(&[1, 2], &[1, 2]), &i(&[2, 2], &[3, 4, 5, 6])],
    );
    assert_eq!(y, i(&[3, 2], &[1, 2, 3, 4, 5, 6]));
    let y = eval1(
        Op::Concat { axis: 0 },
        &[&b(&[1], &[true]), &b(&[2], &[false, true])],
    );
    assert_eq!(y, b(&[3], &[true, false, true]));
}

#[test]
fn split_into_pieces() {
    let outs = eval(
        Op::Split {
            axis: 0,
            sizes: vec![2, 3],
        },
        &[&i(&[5], &[1, 2, 3, 4, 5])],
    );
    assert_eq!(outs, vec![i(&[2], &[1, 2]), i(&[3], &[3, 4, 5])]);
    let outs = eval(
        Op::Split {
            axis: -1,
            sizes: vec![1, 3, 0],
        },
        &[&arange(&[2, 4])],
    );
    assert_eq!(outs.len(), 3);
    assert_f32(&outs[0], &[2, 1], &[0.0, 4.0]);
    assert_f32(&outs[1], &[2, 3], &[1.0, 2.0, 3.0, 5.0, 6.0, 7.0]);
    assert_f32(&outs[2], &[2, 0], &[]);
    let outs = eval(
        Op::Split {
            axis: 0,
            sizes: vec![1, 1],
        },
        &[&b(&[2, 1], &[false, true])],
    );
    assert_eq!(outs, vec![b(&[1, 1], &[false]), b(&[1, 1], &[true])]);
}

#[test]
fn slice_numpy_semantics() {
    let x = arange(&[3, 4]);
    let sl = |axes: Vec<i64>, starts: Vec<i64>, ends: Vec<i64>, steps: Vec<i64>| Op::Slice {
        axes,
        starts,
        ends,
        steps,
    };
    // Rows 1.., columns -3..4 step 2 = columns 1 and 3.
    let y = eval1(sl(vec![0, 1], vec![1, -3], vec![100, 4], vec![1, 2]), &[&x]);
    assert_f32(&y, &[2, 2], &[5.0, 7.0, 9.0, 11.0]);
    // A start before the beginning clamps to 0; an end before the start gives nothing.
    let y = eval1(sl(vec![0], vec![-100], vec![2], vec![1]), &[&x]);
    assert_f32(&y, &[2, 4], &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]);
    let y = eval1(sl(vec![0], vec![3], vec![1], vec![1]), &[&x]);
    assert_f32(&y, &[0, 4], &[]);
    let y = eval1(sl(vec![-1], vec![0], vec![-1], vec![3]), &[&x]);
    assert_f32(&y, &[3, 1], &[0.0, 4.0, 8.0]);
    let y = eval1(
        sl(vec![0], vec![1], vec![3], vec![1]),
        &[&b(&[3], &[true, false, true])],
    );
    assert_eq!(y, b(&[2], &[false, true]));
    let y = eval1(
        sl(vec![0], vec![-2], vec![10], vec![1]),
        &[&i(&[3], &[7, 8, 9])],
    );
    assert_eq!(y, i(&[2], &[8, 9]));
}

#[test]
fn pad_constant() {
    let x = f(&[2, 2], &[1.0, 2.0, 3.0, 4.0]);
    let y = eval1(
        Op::Pad {
            pads: vec![1, 0, 0, 2],
            value: Float(9.0),
        },
        &[&x],
    );
    assert_f32(
        &y,
        &[3, 4],
        &[9.0, 9.0, 9.0, 9.0, 1.0, 2.0, 9.0, 9.0, 3.0, 4.0, 9.0, 9.0],
    );
    let y = eval1(
        Op::Pad {
            pads: vec![1, 1],
            value: Float(0.0),
        },
        &[&f(&[1], &[5.0])],
    );
    assert_f32(&y, &[3], &[0.0, 5.0, 0.0]);
}

// ---------------------------------------------------------------- indexing

#[test]
fn gather_negative_indices_and_dtypes() {
    let data = f(&[3, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let y = eval1(Op::Gather { axis: 0 }, &[&data, &i(&[2], &[2, -3])]);
    assert_f32(&y, &[2, 2], &[5.0, 6.0, 1.0, 2.0]);
    let y = eval1(
        Op::Gather { axis: 1 },
        &[&data, &i(&[2, 2], &[1, 0, -1, 1])],
    );
    assert_f32(
        &y,
        &[3, 2, 2],
        &[2.0, 1.0, 2.0, 2.0, 4.0, 3.0, 4.0, 4.0, 6.0, 5.0, 6.0, 6.0],
    );
    // Scalar index removes the axis.
    let y = eval1(
        Op::Gather { axis: 0 },
        &[&i(&[3], &[7, 8, 9]), &i(&[], &[-1])],
    );
    assert_eq!(y, i(&[], &[9]));
    let y = eval1(
        Op::Gather { axis: -1 },
        &[&b(&[1, 3], &[true, false, false]), &i(&[2], &[0, 0])],
    );
    assert_eq!(y, b(&[1, 2], &[true, true]));
}

#[test]
fn gather_out_of_range_is_an_error() {
    let data = f(&[3, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let e = try_eval(&Op::Gather { axis: 0 }, &[&data, &i(&[2], &[0, 3])]).unwrap_err();
    assert_eq!(
        e,
        "gather index 3 (element 1 of the indices) is out of range for axis 0 of extent 3"
    );
    let e = try_eval(&Op::Gather { axis: 1 }, &[&data, &i(&[1], &[-3])]).unwrap_err();
    assert!(e.contains("index -3") && e.contains("extent 2"), "{e}");
}

#[test]
fn one_hot_rows() {
    let y = eval1(Op::OneHot { depth: 3 }, &[&i(&[4], &[0, 2, 5, -1])]);
    assert_f32(
        &y,
        &[4, 3],
        &[1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    );
    let y = eval1(Op::OneHot { depth: 2 }, &[&i(&[2, 1], &[1, 0])]);
    assert_f32(&y, &[2, 1, 2], &[0.0, 1.0, 1.0, 0.0]);
}

// ---------------------------------------------------------------- eval_op contract

#[test]
fn eval_op_rejects_inconsistent_calls() {
    let x = f(&[2], &[1.0, 2.0]);
    let e = sinter_interp::eval_op(&Op::Relu {}, &[&x], &[sinter_ir::TensorType::f32(&[3])])
        .unwrap_err();
    assert!(e.contains("f32[2]") && e.contains("f32[3]"), "{e}");
    let e = sinter_interp::eval_op(&Op::Add {}, &[&x], &[sinter_ir::TensorType::f32(&[2])])
        .unwrap_err();
    assert!(e.contains("takes 2 inputs"), "{e}");
    let e = sinter_interp::eval_op(
        &Op::Exp {},
        &[&i(&[1], &[1])],
        &[sinter_ir::TensorType::i64(&[1])],
    )
    .unwrap_err();
    assert!(e.contains("must be f32"), "{e}");
}

// ---------------------------------------------------------------- gradient ops

#[test]
fn max_pool2d_grad_routes_to_the_first_max() {
    // 1x1x3x3 input, 2x2 windows, stride 1: windows overlap. x has a tie in the first window
    // (5 at (0,1) and (1,0)): the first in row-major order wins.
    let x = f(&[1, 1, 3, 3], &[1., 5., 2., 5., 0., 3., 4., 6., 1.]);
    let dy = f(&[1, 1, 2, 2], &[1., 10., 100., 1000.]);
    let op = Op::MaxPool2dGrad {
        kernel: [2, 2],
        stride: [1, 1],
        pad: [0; 4],
    };
    // Window (0,0) = {1,5,5,0} -> (0,1); window (0,1) = {5,2,0,3} -> (0,1);
    // window (1,0) = {5,0,4,6} -> (2,1); window (1,1) = {0,3,6,1} -> (2,1).
    assert_f32(
        &eval1(op, &[&x, &dy]),
        &[1, 1, 3, 3],
        &[0., 11., 0., 0., 0., 0., 0., 1100., 0.],
    );
}

#[test]
fn avg_pool2d_grad_is_the_adjoint_of_avg_pool2d() {
    let mut r = XorShift(0x5eed_0001);
    for (pad, include) in [([0; 4], false), ([1, 1, 0, 1], false), ([1, 0, 1, 1], true)] {
        let x = r.tensor(&[2, 3, 5, 4]);
        let fwd = Op::AvgPool2d {
            kernel: [2, 3],
            stride: [2, 1],
            pad,
            count_include_pad: include,
        };
        let y = eval1(fwd, &[&x]);
        let dy = r.tensor(y.shape());
        let bwd = Op::AvgPool2dGrad {
            kernel: [2, 3],
            stride: [2, 1],
            pad,
            count_include_pad: include,
        };
        let dx = eval1(bwd, &[&x, &dy]);
        // avg_pool is linear: <pool(x), dy> == <x, pool_grad(dy)>.
        let (l, rr) = (dot(&y, &dy), dot(&x, &dx));
        assert!(
            (l - rr).abs() <= 1e-4 * (1.0 + l.abs()),
            "{l} vs {rr} (pad {pad:?})"
        );
    }
    // By hand: 1x1x2x2 input, one 2x2 window: the gradient 4 spreads as 1 per element.
    let op = Op::AvgPool2dGrad {
        kernel: [2, 2],
        stride: [2, 2],
        pad: [0; 4],
        count_include_pad: false,
    };
    assert_f32(
        &eval1(op, &[&f(&[1, 1, 2, 2], &[0.; 4]), &f(&[1, 1, 1, 1], &[4.])]),
        &[1, 1, 2, 2],
        &[1.; 4],
    );
}

#[test]
fn conv2d_weight_grad_is_the_adjoint_in_the_weight() {
    let mut r = XorShift(0x5eed_0002);
    // (stride, pad, dilation, groups, x shape, w shape)
    type Case = ([i64; 2], [i64; 4], [i64; 2], i64, [usize; 4], [usize; 4]);
    let cases: [Case; 4] = [
        ([1, 1], [0; 4], [1, 1], 1, [2, 3, 5, 5], [4, 3, 3, 3]),
        ([2, 2], [1, 1, 1, 1], [1, 1], 1, [1, 2, 7, 6], [3, 2, 3, 2]),
        ([1, 2], [0, 2, 1, 0], [2, 1], 2, [2, 4, 6, 7], [6, 2, 2, 3]),
        ([3, 1], [1, 0, 0, 1], [1, 2], 4, [1, 4, 8, 8], [8, 1, 3, 3]),
    ];
    for (stride, pad, dilation, groups, xs, ws) in cases {
        let x = r.tensor(&xs);
        let w = r.tensor(&ws);
        let y = eval1(
            Op::Conv2d {
                stride,
                pad,
                dilation,
                groups,
            },
            &[&x, &w],
        );
        let dy = r.tensor(y.shape());
        let kernel = [ws[2] as i64, ws[3] as i64];
        let dw = eval1(
            Op::Conv2dWeightGrad {
                kernel,
                stride,
                pad,
                dilation,
                groups,
            },
            &[&x, &dy],
        );
        assert_eq!(dw.shape(), w.shape());
        // conv2d is linear in w: <conv(x, w), dy> == <w, dw>.
        let (l, rr) = (dot(&y, &dy), dot(&w, &dw));
        assert!((l - rr).abs() <= 1e-4 * (1.0 + l.abs()), "{l} vs {rr}");
    }
    // By hand: the textbook image again, with dy = all ones over the 3x3 output: each weight
    // tap's gradient is the sum of the 3x3 input patch it sees.
    let x = f(
        &[1, 1, 5, 5],
        &[
            1., 1., 1., 0., 0., 0., 1., 1., 1., 0., 0., 0., 1., 1., 1., 0., 0., 1., 1., 0., 0., 1.,
            1., 0., 0.,
        ],
    );
    let dy = f(&[1, 1, 3, 3], &[1.; 9]);
    let op = Op::Conv2dWeightGrad {
        kernel: [3, 3],
        stride: [1, 1],
        pad: [0; 4],
        dilation: [1, 1],
        groups: 1,
    };
    assert_f32(
        &eval1(op, &[&x, &dy]),
        &[1, 1, 3, 3],
        &[6., 7., 6., 4., 7., 7., 4., 6., 6.],
    );
}

/// `max |got - want| / max |want|`.
fn scaled_error(got: &Tensor, want: &Tensor) -> f32 {
    let (a, b) = (got.as_f32().unwrap(), want.as_f32().unwrap());
    let scale = b.iter().fold(1e-6f32, |s, v| s.max(v.abs()));
    a.iter()
        .zip(b)
        .map(|(p, q)| (p - q).abs())
        .fold(0.0, f32::max)
        / scale
}

/// The Winograd chain `winograd_output(matmul(winograd_filter(w), winograd_input(x)), b)`
/// equals `conv2d(x, w, b)` (3x3, stride 1) for both tile sizes, any padding up to 2 and
/// ragged tiles; `transposed` filters reproduce the stride-1 `conv_transpose2d`. The error is
/// relative to the largest output magnitude, with inputs uniform in [-1, 1): measured at most
/// 4.7e-7 (F(2,3)) and 3.0e-6 (F(4,3)) over these shapes.
#[test]
fn winograd_chain_is_conv2d() {
    let mut r = XorShift(0x5eed_0077);
    let mut worst = [0.0f32; 2];
    for case in 0..40 {
        let (n, c, co) = (1 + case % 2, 1 + (case * 7) % 9, 1 + (case * 5) % 8);
        let (h, w) = (1 + (case * 3) % 11, 1 + (case * 11) % 13);
        let pad = [case % 3, (case / 3) % 3, (case / 2) % 3, (case / 5) % 3].map(|p| p as i64);
        if h as i64 + pad[0] + pad[2] < 3 || w as i64 + pad[1] + pad[3] < 3 {
            continue;
        }
        let x = r.tensor(&[n, c, h, w]);
        let wt = r.tensor(&[co, c, 3, 3]);
        let bias = r.tensor(&[co]);
        let conv = Op::Conv2d {
            stride: [1, 1],
            pad,
            dilation: [1, 1],
            groups: 1,
        };
        let want = eval1(conv, &[&x, &wt, &bias]);
        let out = [want.shape()[2] as i64, want.shape()[3] as i64];
        for (slot, tile) in [2i64, 4].into_iter().enumerate() {
            let u = eval1(
                Op::WinogradFilter {
                    tile,
                    transposed: false,
                },
                &[&wt],
            );
            let v = eval1(Op::WinogradInput { tile, pad }, &[&x]);
            let m = eval1(Op::Matmul {}, &[&u, &v]);
            let y = eval1(Op::WinogradOutput { tile, out }, &[&m, &bias]);
            assert_eq!(y.shape(), want.shape(), "case {case} tile {tile}");
            let err = scaled_error(&y, &want);
            worst[slot] = worst[slot].max(err);
            assert!(
                err <= [2e-6, 1e-5][slot],
                "case {case} tile {tile}: error {err}"
            );
        }
        // The transposed filter: conv_transpose2d(x, w^T) with stride 1 and padding q is the
        // Winograd conv2d of the flipped, transposed weight with padding 2 - q.
        let wt_t = r.tensor(&[c, co, 3, 3]);
        let q = pad.map(|p| 2 - p);
        let ct = Op::ConvTranspose2d {
            stride: [1, 1],
            pad: q,
            output_pad: [0, 0],
            dilation: [1, 1],
            groups: 1,
        };
        let want = eval1(ct, &[&x, &wt_t]);
        let out = [want.shape()[2] as i64, want.shape()[3] as i64];
        let u = eval1(
            Op::WinogradFilter {
                tile: 2,
                transposed: true,
            },
            &[&wt_t],
        );
        let v = eval1(Op::WinogradInput { tile: 2, pad }, &[&x]);
        let m = eval1(Op::Matmul {}, &[&u, &v]);
        let y = eval1(Op::WinogradOutput { tile: 2, out }, &[&m]);
        let err = scaled_error(&y, &want);
        assert!(err <= 2e-6, "case {case} transposed: error {err}");
    }
    eprintln!(
        "winograd max relative error: F(2,3) {:e}, F(4,3) {:e}",
        worst[0], worst[1]
    );
    // Bad tile sizes and shapes are errors naming what is wrong.
    let x = r.tensor(&[1, 1, 4, 4]);
    let e = try_eval(
        &Op::WinogradInput {
            tile: 3,
            pad: [0; 4],
        },
        &[&x],
    )
    .unwrap_err();
    assert!(e.contains("tile=3"), "{e}");
    let e = try_eval(
        &Op::WinogradFilter {
            tile: 2,
            transposed: false,
        },
        &[&x],
    )
    .unwrap_err();
    assert!(e.contains("3x3 kernel"), "{e}");
    let m = r.tensor(&[16, 2, 3]);
    let e = try_eval(
        &Op::WinogradOutput {
            tile: 2,
            out: [4, 4],
        },
        &[&m],
    )
    .unwrap_err();
    assert!(e.contains("[16, C, N*4]"), "{e}");
}

#[test]
fn scatter_add_is_the_adjoint_of_gather() {
    // By hand: rows [1, 0, 1, -1] of a 3-row result; row 1 receives two updates.
    let idx = i(&[4], &[1, 0, 1, -1]);
    let upd = f(&[4, 2], &[1., 2., 3., 4., 5., 6., 7., 8.]);
    let y = eval1(Op::ScatterAdd { axis: 0, extent: 3 }, &[&idx, &upd]);
    assert_f32(&y, &[3, 2], &[3., 4., 6., 8., 7., 8.]);
    // Adjoint on a middle axis with 2-D indices: <gather(d, i), u> == <d, scatter_add(i, u)>.
    let mut r = XorShift(0x5eed_0003);
    let d = r.tensor(&[2, 5, 3]);
    let ix = i(&[2, 3], &[4, 0, -1, 2, 2, 1]);
    let g = eval1(Op::Gather { axis: 1 }, &[&d, &ix]);
    let u = r.tensor(g.shape());
    let s = eval1(Op::ScatterAdd { axis: 1, extent: 5 }, &[&ix, &u]);
    assert_eq!(s.shape(), d.shape());
    let (l, rr) = (dot(&g, &u), dot(&d, &s));
    assert!((l - rr).abs() <= 1e-5 * (1.0 + l.abs()), "{l} vs {rr}");
    // Out of range is an error, not a panic.
    let e = try_eval(
        &Op::ScatterAdd { axis: 0, extent: 3 },
        &[&i(&[1], &[3]), &f(&[1, 2], &[0., 0.])],
    )
    .unwrap_err();
    assert!(
        e.contains(
            "scatter_add index 3 (element 0 of the indices) is out of range for axis 0 of extent 3"
        ),
        "{e}"
    );
}
