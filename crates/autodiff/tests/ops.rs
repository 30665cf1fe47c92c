//! Gradient checks of every differentiable op against central finite differences, and the
//! coverage test: every op kind is either gradient-checked here or listed as having no
//! gradient (with a test of what it does instead). The method and tolerances are in
//! `common/mod.rs`: 4th-order central differences through the interpreter, with the
//! projection to a scalar summed in f64; `|analytic - numeric| <= 2e-3 + 1e-2 |numeric|`.

mod common;

use common::{Rand, check, feeds, param};
use proptest::prelude::*;
use sinter_autodiff::{AutodiffError, grad, params};
use sinter_ir::{Builder, DType, Float, Op, OpKind, Tensor, TensorType, Value};
use std::collections::HashMap;

fn none() -> HashMap<String, Tensor> {
    HashMap::new()
}

/// Op kinds with a gradient check below, filled in by `cases!`.
macro_rules! cases {
    ($($name:ident : [$($kind:ident),+] => $body:block)*) => {
        $( #[test] fn $name() $body )*
        const CHECKED: &[OpKind] = &[$($(OpKind::$kind),+),*];
    };
}

fn unary(op: Op, seed: i64, positive: bool) {
    for s in 0..3 {
        let mut r = Rand::new(seed * 10 + s);
        let rank = r.int(0, 3);
        let shape = r.shape(rank, 4);
        let f = if positive {
            feeds(vec![("x", r.tensor_in(&shape, 0.5, 2.0))])
        } else {
            none()
        };
        let op = op.clone();
        check(
            seed * 10 + s,
            move |b, _| {
                let x = param(b, "x", &shape);
                vec![b.op(op, &[x]).unwrap()]
            },
            f,
        );
    }
}

/// A random shape and a random shape that broadcasts against it (some axes 1, some leading
/// axes dropped), in random order.
fn broadcast_pair(r: &mut Rand) -> (Vec<usize>, Vec<usize>) {
    let rank = r.int(1, 3);
    let full = r.shape(rank, 3);
    let drop = r.int(0, rank);
    let small: Vec<usize> = full[drop..]
        .iter()
        .map(|&d| if r.u() < 0.5 { 1 } else { d })
        .collect();
    if r.u() < 0.5 {
        (full, small)
    } else {
        (small, full)
    }
}

fn binary(op: Op, seed: i64, a_pos: bool, b_pos: bool) {
    for s in 0..4 {
        let mut r = Rand::new(seed * 10 + s);
        let (sa, sb) = broadcast_pair(&mut r);
        let mut f = none();
        if a_pos {
            f.insert("a".into(), r.tensor_in(&sa, 0.5, 2.0));
        }
        if b_pos {
            f.insert("b".into(), r.tensor_in(&sb, 0.5, 2.0));
        }
        let op = op.clone();
        check(
            seed * 10 + s,
            move |b, _| {
                let x = param(b, "a", &sa);
                let y = param(b, "b", &sb);
                vec![b.op(op, &[x, y]).unwrap()]
            },
            f,
        );
    }
}

fn conv_op(stride: [i64; 2], pad: [i64; 4], dilation: [i64; 2], groups: i64) -> Op {
    Op::Conv2d {
        stride,
        pad,
        dilation,
        groups,
    }
}

cases! {
    neg: [Neg] => { unary(Op::Neg {}, 1, false) }
    exp: [Exp] => { unary(Op::Exp {}, 2, false) }
    log: [Log] => { unary(Op::Log {}, 3, true) }
    sqrt: [Sqrt] => { unary(Op::Sqrt {}, 4, true) }
    rsqrt: [Rsqrt] => { unary(Op::Rsqrt {}, 5, true) }
    abs: [Abs] => { unary(Op::Abs {}, 6, false) }
    relu: [Relu] => { unary(Op::Relu {}, 7, false) }
    sigmoid: [Sigmoid] => { unary(Op::Sigmoid {}, 8, false) }
    tanh: [Tanh] => { unary(Op::Tanh {}, 9, false) }
    leaky_relu: [LeakyRelu] => { unary(Op::LeakyRelu { alpha: Float(0.1) }, 10, false) }

    add: [Add] => { binary(Op::Add {}, 11, false, false) }
    sub: [Sub] => { binary(Op::Sub {}, 12, false, false) }
    mul: [Mul] => { binary(Op::Mul {}, 13, false, false) }
    div: [Div] => { binary(Op::Div {}, 14, false, true) }
    pow: [Pow] => { binary(Op::Pow {}, 15, true, false) }
    max_min: [Max, Min] => {
        for (i, op) in [Op::Max {}, Op::Min {}].into_iter().enumerate() {
            // Same shapes, b = a + offset with |offset| >= 0.1: no ties.
            let mut r = Rand::new(16 + i as i64);
            let a = r.tensor(&[2, 3]);
            let b: Vec<f32> = a.as_f32().unwrap().iter().map(|v| v + r.signed() * 0.5).collect();
            let f = feeds(vec![("a", a), ("b", Tensor::from_f32(&[2, 3], b))]);
            let op2 = op.clone();
            check(16, move |b, _| {
                let x = param(b, "a", &[2, 3]);
                let y = param(b, "b", &[2, 3]);
                vec![b.op(op2, &[x, y]).unwrap()]
            }, f);
            // Broadcast against a scalar 0: the `signed` values stay >= 0.2 away from it.
            check(17, move |b, _| {
                let x = param(b, "a", &[3, 2]);
                let z = b.scalar(0.0).unwrap();
                vec![b.op(op, &[x, z]).unwrap()]
            }, none());
        }
    }
    prelu: [Prelu] => {
        check(18, |b, _| {
            let x = param(b, "x", &[2, 3, 4]);
            let s = param(b, "slope", &[3, 1]);
            vec![b.prelu(x, s).unwrap()]
        }, none());
        check(19, |b, _| {
            let x = param(b, "x", &[5]);
            let s = param(b, "slope", &[]);
            vec![b.prelu(x, s).unwrap()]
        }, none());
    }

    select: [Select] => {
        let cond = Tensor::from_bool(&[2, 3], vec![true, false, false, true, true, false]);
        check(20, |b, _| {
            let c = b.input("c", TensorType::bool(&[2, 3])).unwrap();
            let x = param(b, "a", &[3]);
            let y = param(b, "b", &[2, 1]);
            vec![b.op(Op::Select {}, &[c, x, y]).unwrap()]
        }, feeds(vec![("c", cond)]));
    }
    cast: [Cast] => {
        check(21, |b, _| {
            let x = param(b, "x", &[2, 3]);
            vec![b.op(Op::Cast { to: DType::F32 }, &[x]).unwrap()]
        }, none());
    }

    matmul: [Matmul] => {
        for (s, (sa, sb)) in [
            (vec![3, 4], vec![4, 2]),
            (vec![2, 3, 4], vec![4, 2]),
            (vec![1, 2, 3], vec![3, 3, 2]),
        ].into_iter().enumerate() {
            check(22 + s as i64, move |b, _| {
                let x = param(b, "a", &sa);
                let y = param(b, "b", &sb);
                vec![b.matmul(x, y).unwrap()]
            }, none());
        }
    }
    gemm: [Gemm] => {
        for (s, (ta, tb)) in [(false, false), (true, false), (false, true), (true, true)].into_iter().enumerate() {
            let (m, k, n) = (3, 4, 2);
            let sa = if ta { vec![k, m] } else { vec![m, k] };
            let sb = if tb { vec![n, k] } else { vec![k, n] };
            check(30 + s as i64, move |b, _| {
                let x = param(b, "a", &sa);
                let y = param(b, "b", &sb);
                let c = param(b, "c", &[n]);
                let op = Op::Gemm { trans_a: ta, trans_b: tb, alpha: Float(0.7), beta: Float(1.3) };
                vec![b.op(op.clone(), &[x, y, c]).unwrap(), b.op(op, &[x, y]).unwrap()]
            }, none());
        }
    }

    conv2d: [Conv2d] => {
        check(40, |b, _| {
            let x = param(b, "x", &[2, 4, 5, 6]);
            let w = param(b, "w", &[6, 2, 3, 2]);
            let bias = param(b, "bias", &[6]);
            vec![b.op(conv_op([2, 1], [1, 0, 0, 1], [1, 2], 2), &[x, w, bias]).unwrap()]
        }, none());
        check(41, |b, _| {
            let x = param(b, "x", &[1, 2, 6, 5]);
            let w = param(b, "w", &[3, 2, 3, 3]);
            vec![b.op(conv_op([3, 2], [1, 1, 1, 1], [1, 1], 1), &[x, w]).unwrap()]
        }, none());
    }
    conv_transpose2d: [ConvTranspose2d] => {
        check(42, |b, _| {
            let x = param(b, "x", &[2, 4, 3, 3]);
            let w = param(b, "w", &[4, 3, 3, 2]);
            let bias = param(b, "bias", &[6]);
            let op = Op::ConvTranspose2d { stride: [2, 2], pad: [1, 0, 1, 1], output_pad: [1, 0], dilation: [1, 1], groups: 2 };
            vec![b.op(op, &[x, w, bias]).unwrap()]
        }, none());
        // output_pad >= stride (allowed below the dilation): the crop/zero-extend path.
        check(43, |b, _| {
            let x = param(b, "x", &[1, 2, 3, 4]);
            let w = param(b, "w", &[2, 2, 2, 2]);
            let op = Op::ConvTranspose2d { stride: [1, 1], pad: [0, 0, 0, 0], output_pad: [1, 1], dilation: [2, 2], groups: 1 };
            vec![b.op(op, &[x, w]).unwrap()]
        }, none());
    }
    conv2d_weight_grad: [Conv2dWeightGrad] => {
        check(44, |b, _| {
            let x = param(b, "x", &[2, 2, 5, 4]);
            let dy = param(b, "dy", &[2, 4, 2, 2]);
            let op = Op::Conv2dWeightGrad { kernel: [3, 2], stride: [2, 2], pad: [1, 0, 0, 0], dilation: [1, 1], groups: 2 };
            vec![b.op(op, &[x, dy]).unwrap()]
        }, none());
    }

    max_pool2d: [MaxPool2d] => {
        let mut r = Rand::new(45);
        let x = r.distinct(&[2, 2, 5, 5]);
        check(45, |b, _| {
            let x = param(b, "x", &[2, 2, 5, 5]);
            let op = Op::MaxPool2d { kernel: [3, 3], stride: [2, 2], pad: [1, 1, 1, 0] };
            vec![b.op(op, &[x]).unwrap()]
        }, feeds(vec![("x", x)]));
    }
    // Positive inputs: the draw is a step function of x, constant near the point (ties in
    // the Gumbel scores have probability 0), so the gradient is the drawn element's 1.
    stochastic_pool2d: [StochasticPool2d] => {
        let mut r = Rand::new(66);
        let x = r.tensor_in(&[2, 3, 4, 6], 0.5, 2.0);
        check(66, |b, _| {
            let x = param(b, "x", &[2, 3, 4, 6]);
            let c = b.input("c", TensorType::i64(&[])).unwrap();
            vec![b.op(Op::StochasticPool2d { kernel: 2, seed: 5 }, &[x, c]).unwrap()]
        }, feeds(vec![("x", x), ("c", Tensor::from_i64(&[], vec![3]))]));
    }
    avg_pool2d: [AvgPool2d] => {
        for include in [false, true] {
            check(46, move |b, _| {
                let x = param(b, "x", &[1, 2, 5, 4]);
                let op = Op::AvgPool2d { kernel: [3, 2], stride: [2, 1], pad: [1, 1, 1, 0], count_include_pad: include };
                vec![b.op(op, &[x]).unwrap()]
            }, none());
        }
    }
    global_avg_pool: [GlobalAvgPool] => {
        check(47, |b, _| {
            let x = param(b, "x", &[2, 3, 2, 3]);
            vec![b.global_avg_pool(x).unwrap()]
        }, none());
    }
    avg_pool2d_grad: [AvgPool2dGrad] => {
        let mut r = Rand::new(48);
        let x = r.tensor(&[1, 2, 5, 4]);
        check(48, |b, _| {
            let x = b.input("x", TensorType::f32(&[1, 2, 5, 4])).unwrap();
            let dy = param(b, "dy", &[1, 2, 3, 4]);
            let op = Op::AvgPool2dGrad { kernel: [3, 2], stride: [2, 1], pad: [1, 1, 1, 0], count_include_pad: false };
            vec![b.op(op, &[x, dy]).unwrap()]
        }, feeds(vec![("x", x)]));
    }

    batch_norm: [BatchNorm] => {
        let mut r = Rand::new(49);
        let var = r.tensor_in(&[3], 0.5, 2.0);
        check(49, |b, _| {
            let x = param(b, "x", &[2, 3, 2]);
            let g = param(b, "gamma", &[3]);
            let be = param(b, "beta", &[3]);
            let m = param(b, "mean", &[3]);
            let v = param(b, "var", &[3]);
            vec![b.batch_norm(x, g, be, m, v, 1e-5).unwrap()]
        }, feeds(vec![("var", var)]));
    }
    batch_norm_train: [BatchNormTrain] => {
        check(50, |b, _| {
            let x = param(b, "x", &[4, 3, 2]);
            let g = param(b, "gamma", &[3]);
            let be = param(b, "beta", &[3]);
            b.op_multi(Op::BatchNormTrain { eps: Float(1e-5) }, &[x, g, be]).unwrap().to_vec()
        }, none());
        // Only y used (the mean and variance outputs carry no gradient).
        check(51, |b, _| {
            let x = param(b, "x", &[3, 2, 2, 2]);
            let g = param(b, "gamma", &[2]);
            let be = param(b, "beta", &[2]);
            vec![b.op_multi(Op::BatchNormTrain { eps: Float(1e-3) }, &[x, g, be]).unwrap()[0]]
        }, none());
    }

    softmax: [Softmax] => {
        for axis in [0, -1] {
            check(52, move |b, _| {
                let x = param(b, "x", &[3, 4]);
                vec![b.softmax(x, axis).unwrap()]
            }, none());
        }
    }
    log_softmax: [LogSoftmax] => {
        for axis in [1, -1] {
            check(53, move |b, _| {
                let x = param(b, "x", &[2, 3, 2]);
                vec![b.log_softmax(x, axis).unwrap()]
            }, none());
        }
    }

    dropout: [Dropout] => {
        check(54, |b, _| {
            let x = param(b, "x", &[4, 5]);
            let c = b.input("step", TensorType::i64(&[])).unwrap();
            vec![b.op(Op::Dropout { p: Float(0.3), seed: 7 }, &[x, c]).unwrap()]
        }, feeds(vec![("step", Tensor::from_i64(&[], vec![3]))]));
    }

    reduce_sum_mean: [ReduceSum, ReduceMean] => {
        for (i, keep) in [false, true].into_iter().enumerate() {
            for axes in [vec![1], vec![], vec![0, 2]] {
                let a2 = axes.clone();
                check(55 + i as i64, move |b, _| {
                    let x = param(b, "x", &[2, 3, 2]);
                    vec![b.reduce_sum(x, &axes, keep).unwrap(), b.reduce_mean(x, &a2, keep).unwrap()]
                }, none());
            }
        }
    }
    reduce_max: [ReduceMax] => {
        let mut r = Rand::new(57);
        let x = r.distinct(&[3, 2, 4]);
        for keep in [false, true] {
            check(57, move |b, _| {
                let x = param(b, "x", &[3, 2, 4]);
                let op = Op::ReduceMax { axes: vec![0, 2], keepdims: keep };
                let all = Op::ReduceMax { axes: vec![], keepdims: keep };
                vec![b.op(op, &[x]).unwrap(), b.op(all, &[x]).unwrap()]
            }, feeds(vec![("x", x.clone())]));
        }
    }

    movement: [Reshape, Transpose, Flatten] => {
        check(58, |b, _| {
            let x = param(b, "x", &[2, 3, 4]);
            let r = b.reshape(x, &[4, -1]).unwrap();
            let t = b.transpose(x, &[2, 0, 1]).unwrap();
            let f = b.flatten(x, 2).unwrap();
            vec![r, t, f]
        }, none());
    }
    broadcast: [Broadcast] => {
        check(59, |b, _| {
            let x = param(b, "x", &[3, 1]);
            vec![b.op(Op::Broadcast { shape: vec![2, 3, 4] }, &[x]).unwrap()]
        }, none());
    }
    concat: [Concat] => {
        check(60, |b, _| {
            let x = param(b, "x", &[2, 1, 3]);
            let y = param(b, "y", &[2, 2, 3]);
            let c = b.input("c", TensorType::f32(&[2, 3, 3])).unwrap();
            vec![b.concat(&[x, c, y, x], 1).unwrap()]
        }, feeds(vec![("c", Rand::new(60).tensor(&[2, 3, 3]))]));
    }
    split: [Split] => {
        check(61, |b, _| {
            let x = param(b, "x", &[2, 6]);
            let parts = b.split(x, 1, &[1, 3, 2]).unwrap();
            // The middle piece is unused: its gradient is zeros.
            vec![parts[0], parts[2]]
        }, none());
    }
    slice: [Slice] => {
        check(62, |b, _| {
            let x = param(b, "x", &[4, 5, 3]);
            let s1 = Op::Slice { axes: vec![1], starts: vec![1], ends: vec![-1], steps: vec![1] };
            let s2 = Op::Slice { axes: vec![0, 1, 2], starts: vec![-3, 0, 0], ends: vec![100, 5, 3], steps: vec![2, 2, 1] };
            vec![b.op(s1, &[x]).unwrap(), b.op(s2, &[x]).unwrap()]
        }, none());
    }
    pad: [Pad] => {
        check(63, |b, _| {
            let x = param(b, "x", &[2, 3]);
            vec![b.op(Op::Pad { pads: vec![1, 0, 2, 3], value: Float(0.5) }, &[x]).unwrap()]
        }, none());
    }
    gather: [Gather] => {
        check(64, |b, _| {
            let x = param(b, "x", &[3, 4, 2]);
            let i = b.input("i", TensorType::i64(&[2, 3])).unwrap();
            vec![b.op(Op::Gather { axis: 1 }, &[x, i]).unwrap()]
        }, feeds(vec![("i", Tensor::from_i64(&[2, 3], vec![0, 3, -1, 3, 1, 0]))]));
    }
    scatter_add: [ScatterAdd] => {
        check(65, |b, _| {
            let i = b.input("i", TensorType::i64(&[3])).unwrap();
            let u = param(b, "u", &[2, 3, 2]);
            vec![b.op(Op::ScatterAdd { axis: 1, extent: 4 }, &[i, u]).unwrap()]
        }, feeds(vec![("i", Tensor::from_i64(&[3], vec![2, -1, 2]))]));
    }
}

/// Ops with no gradient rule, and why; each is tested below for what it does instead.
const NO_GRADIENT: &[(OpKind, &str)] = &[
    (OpKind::Equal, "bool result"),
    (OpKind::Less, "bool result"),
    (OpKind::LessEqual, "bool result"),
    (OpKind::Greater, "bool result"),
    (OpKind::GreaterEqual, "bool result"),
    (OpKind::Argmax, "i64 result"),
    (OpKind::OneHot, "i64 operand"),
    (OpKind::RandomUniform, "no f32 operand"),
    (OpKind::RandomNormal, "no f32 operand"),
    (OpKind::Bernoulli, "zero gradient: a step function of p"),
    (
        OpKind::MaxPool2dGrad,
        "error: second order through max pooling",
    ),
    (
        OpKind::WinogradFilter,
        "error: made by the optimiser after differentiation",
    ),
    (
        OpKind::WinogradInput,
        "error: made by the optimiser after differentiation",
    ),
    (
        OpKind::WinogradOutput,
        "error: made by the optimiser after differentiation",
    ),
];

#[test]
fn every_op_kind_is_checked_or_listed() {
    let mut missing = Vec::new();
    for &k in OpKind::ALL {
        let checked = CHECKED.contains(&k);
        let listed = NO_GRADIENT.iter().any(|(n, _)| *n == k);
        assert!(
            !(checked && listed),
            "{} is both checked and listed",
            k.name()
        );
        if !checked && !listed {
            missing.push(k.name());
        }
    }
    assert!(
        missing.is_empty(),
        "ops neither gradient-checked nor listed: {missing:?}"
    );
}

/// The gradient of `loss(p)` built by `f` with respect to `p: f32[2,3]`, evaluated.
fn grad_through(f: impl FnOnce(&mut Builder, Value) -> Value) -> Result<Vec<f32>, AutodiffError> {
    let mut b = Builder::new("g");
    let p = param(&mut b, "p", &[2, 3]);
    let l = f(&mut b, p);
    let g = b.finish(&[l]).unwrap();
    let gr = grad(&g, l, &params(&g))?;
    let outs = sinter_interp::run(
        &gr.graph,
        &common::feeds(vec![("p", Rand::new(1).tensor(&[2, 3]))]),
    )
    .unwrap();
    Ok(outs.last().unwrap().1.as_f32().unwrap().to_vec())
}

fn sum_f32(b: &mut Builder, v: Value) -> Value {
    let v = if b.ty(v).dtype == DType::F32 {
        v
    } else {
        b.op(Op::Cast { to: DType::F32 }, &[v]).unwrap()
    };
    b.reduce_sum(v, &[], false).unwrap()
}

#[test]
fn non_differentiable_ops_give_zero_gradients() {
    let zero = vec![0.0; 6];
    for op in [
        Op::Equal {},
        Op::Less {},
        Op::LessEqual {},
        Op::Greater {},
        Op::GreaterEqual {},
    ] {
        let g = grad_through(|b, p| {
            let z = b.scalar(0.0).unwrap();
            let c = b.op(op, &[p, z]).unwrap();
            sum_f32(b, c)
        });
        assert_eq!(g.unwrap(), zero);
    }
    let g = grad_through(|b, p| {
        let a = b
            .op(
                Op::Argmax {
                    axis: 1,
                    keepdims: false,
                },
                &[p],
            )
            .unwrap();
        sum_f32(b, a)
    });
    assert_eq!(g.unwrap(), zero);
    let g = grad_through(|b, p| {
        let i = b.op(Op::Cast { to: DType::I64 }, &[p]).unwrap();
        let h = b.op(Op::OneHot { depth: 3 }, &[i]).unwrap();
        sum_f32(b, h)
    });
    assert_eq!(g.unwrap(), zero);
    let g = grad_through(|b, p| {
        let s = b.sigmoid(p).unwrap();
        let h = b.op(Op::Bernoulli { seed: 1 }, &[s]).unwrap();
        sum_f32(b, h)
    });
    assert_eq!(g.unwrap(), zero);
    // Random ops have no f32 operand; a product with one is differentiated as a product.
    let g = grad_through(|b, p| {
        let u = b
            .op(
                Op::RandomUniform {
                    shape: vec![2, 3],
                    low: Float(1.0),
                    high: Float(1.0),
                    seed: 0,
                },
                &[],
            )
            .unwrap();
        let n = b
            .op(
                Op::RandomNormal {
                    shape: vec![3],
                    mean: Float(2.0),
                    std: Float(0.0),
                    seed: 0,
                },
                &[],
            )
            .unwrap();
        let m = b.mul(p, u).unwrap();
        let m = b.mul(m, n).unwrap();
        sum_f32(b, m)
    });
    assert_eq!(g.unwrap(), vec![2.0; 6]);
}

#[test]
fn max_pool2d_grad_is_a_clear_error() {
    let mut b = Builder::new("g");
    let x = b.input("x", TensorType::f32(&[1, 1, 4, 4])).unwrap();
    let dy = param(&mut b, "dy", &[1, 1, 2, 2]);
    let op = Op::MaxPool2dGrad {
        kernel: [2, 2],
        stride: [2, 2],
        pad: [0; 4],
    };
    let gx = b.named("gx", op, &[x, dy]).unwrap();
    let l = b.reduce_sum(gx, &[], false).unwrap();
    let g = b.finish(&[l]).unwrap();
    let e = grad(&g, l, &params(&g)).unwrap_err().to_string();
    assert!(
        e.starts_with("%gx = max_pool2d_grad(%x, %dy): max_pool2d_grad has no gradient rule"),
        "{e}"
    );
    // Differentiating with respect to something else is fine.
    let mut b = Builder::new("g");
    let x = b.input("x", TensorType::f32(&[1, 1, 4, 4])).unwrap();
    let dy = b.input("dy", TensorType::f32(&[1, 1, 2, 2])).unwrap();
    let s = param(&mut b, "s", &[]);
    let op = Op::MaxPool2dGrad {
        kernel: [2, 2],
        stride: [2, 2],
        pad: [0; 4],
    };
    let gx = b.op(op, &[x, dy]).unwrap();
    let m = b.mul(gx, s).unwrap();
    let l = b.reduce_sum(m, &[], false).unwrap();
    let g = b.finish(&[l]).unwrap();
    assert!(grad(&g, l, &params(&g)).is_ok());
}

#[test]
fn reduce_max_splits_ties_and_max_sends_ties_left() {
    let mut b = Builder::new("g");
    let p = param(&mut b, "p", &[4]);
    let q = param(&mut b, "q", &[4]);
    let m = b
        .op(
            Op::ReduceMax {
                axes: vec![],
                keepdims: false,
            },
            &[p],
        )
        .unwrap();
    let mx = b.max(p, q).unwrap();
    let s = b.reduce_sum(mx, &[], false).unwrap();
    let l = b.add(m, s).unwrap();
    let g = b.finish(&[l]).unwrap();
    let gr = grad(&g, l, &params(&g)).unwrap();
    let f = common::feeds(vec![
        ("p", Tensor::from_f32(&[4], vec![1.0, 3.0, 3.0, 0.0])),
        ("q", Tensor::from_f32(&[4], vec![1.0, 0.0, 5.0, 0.0])),
    ]);
    let outs: HashMap<String, Tensor> = sinter_interp::run(&gr.graph, &f)
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(outs["grad.p"].as_f32().unwrap(), &[1.0, 1.5, 0.5, 1.0]);
    assert_eq!(outs["grad.q"].as_f32().unwrap(), &[0.0, 0.0, 1.0, 0.0]);
}

#[test]
fn errors_name_the_problem() {
    let mut b = Builder::new("g");
    let p = param(&mut b, "p", &[2]);
    let i = b.input("i", TensorType::i64(&[2])).unwrap();
    let g = b.finish(&[p]).unwrap();
    let e = grad(&g, p, &[p]).unwrap_err().to_string();
    assert_eq!(e, "the loss `%p` must be an f32 scalar (f32[]), got f32[2]");
    let mut b = Builder::new("g");
    let p = param(&mut b, "p", &[2]);
    let i2 = b.input("i", TensorType::i64(&[2])).unwrap();
    let l = b.reduce_sum(p, &[], false).unwrap();
    let g = b.finish(&[l]).unwrap();
    let _ = i;
    let e = grad(&g, l, &[i2]).unwrap_err().to_string();
    assert_eq!(
        e,
        "cannot differentiate with respect to `%i`: it is i64[2], not f32"
    );
}

#[test]
fn unused_and_shared_gradients_get_their_own_outputs() {
    // loss = a + b: both gradients are the seed itself; c does not affect the loss.
    let mut b = Builder::new("g");
    let a = param(&mut b, "a", &[]);
    let bb = param(&mut b, "b", &[]);
    let _c = param(&mut b, "c", &[2]);
    let l = b.add(a, bb).unwrap();
    let g = b.finish(&[l]).unwrap();
    let gr = grad(&g, l, &params(&g)).unwrap();
    gr.graph.verify().unwrap();
    let f = common::feeds(vec![
        ("a", Tensor::scalar(1.0)),
        ("b", Tensor::scalar(2.0)),
        ("c", Tensor::from_f32(&[2], vec![0.0, 0.0])),
    ]);
    let outs: HashMap<String, Tensor> = sinter_interp::run(&gr.graph, &f)
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(outs["grad.a"], Tensor::scalar(1.0));
    assert_eq!(outs["grad.b"], Tensor::scalar(1.0));
    assert_eq!(outs["grad.c"], Tensor::from_f32(&[2], vec![0.0, 0.0]));
}

#[test]
fn the_spec_has_a_rule_for_every_op() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../ir-spec/autodiff.md");
    let text = std::fs::read_to_string(path).unwrap();
    let first_cells: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("| "))
        .filter_map(|l| l.split(" |").next())
        .collect();
    for &k in OpKind::ALL {
        let n = k.name();
        let rows = first_cells
            .iter()
            .filter(|c| c.contains(&format!("`{n}`")) || c.contains(&format!("`{n}(")))
            .count();
        assert_eq!(
            rows, 1,
            "ir-spec/autodiff.md needs exactly one row for `{n}`"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// Broadcasting binary ops on random shape pairs: the un-broadcast gradients.
    #[test]
    fn binary_ops_on_random_broadcast_shapes(seed in 0i64..10_000, which in 0usize..4) {
        let op = [Op::Add {}, Op::Sub {}, Op::Mul {}, Op::Div {}][which].clone();
        let mut r = Rand::new(seed);
        let (sa, sb) = broadcast_pair(&mut r);
        let f = feeds(vec![("b", r.tensor_in(&sb, 0.5, 2.0))]);
        check(seed, move |b, _| {
            let x = param(b, "a", &sa);
            let y = param(b, "b", &sb);
            vec![b.op(op, &[x, y]).unwrap()]
        }, f);
    }
}

#[test]
fn gradients_with_respect_to_data_and_intermediate_values() {
    // loss = sum(relu(x * w)): d/dx = relu'(x w) w, d/d(x w) = relu'(x w).
    let mut b = Builder::new("g");
    let x = b.input("x", TensorType::f32(&[3])).unwrap();
    let w = param(&mut b, "w", &[3]);
    let m = b.named("m", Op::Mul {}, &[x, w]).unwrap();
    let r = b.relu(m).unwrap();
    let l = b.reduce_sum(r, &[], false).unwrap();
    let g = b.finish(&[l]).unwrap();
    let gr = grad(&g, l, &[x, m]).unwrap();
    let f = common::feeds(vec![
        ("x", Tensor::from_f32(&[3], vec![1.0, -2.0, 3.0])),
        ("w", Tensor::from_f32(&[3], vec![2.0, 1.0, -1.0])),
    ]);
    let outs: HashMap<String, Tensor> = sinter_interp::run(&gr.graph, &f)
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(outs["grad.m"].as_f32().unwrap(), &[1.0, 0.0, 0.0]);
    assert_eq!(outs["grad.x"].as_f32().unwrap(), &[2.0, 0.0, 0.0]);
    assert_eq!(gr.grad_of("m"), Some(gr.grads[1]));
}

#[test]
fn builder_losses() {
    let mut r = Rand::new(70);
    let labels = Tensor::from_i64(&[4], vec![2, 0, 1, 2]);
    let targets = r.tensor_in(&[4, 3], 0.0, 1.0);
    check(
        70,
        |b, _| {
            let z = param(b, "z", &[4, 3]);
            let l = b.input("labels", TensorType::i64(&[4])).unwrap();
            let t = b.input("t", TensorType::f32(&[4, 3])).unwrap();
            let ce = b.softmax_cross_entropy(z, l).unwrap();
            let mse = b.mse(z, t).unwrap();
            let bce = b.bce_with_logits(z, t).unwrap();
            vec![ce, mse, bce]
        },
        feeds(vec![("labels", labels), ("t", targets)]),
    );
}

/// A random convolution geometry: `(n, groups, c_in/g, c_out/g, kernel, stride, dilation,
/// pad, output_pad)`, each small.
#[derive(Clone, Debug)]
struct Geometry {
    n: usize,
    groups: usize,
    cin: usize,
    cout: usize,
    k: [usize; 2],
    stride: [i64; 2],
    dilation: [i64; 2],
    pad: [i64; 4],
    output_pad: [i64; 2],
    extent: [usize; 2],
}

fn geometry(r: &mut Rand) -> Geometry {
    let stride = [r.int(1, 3) as i64, r.int(1, 3) as i64];
    let dilation = [r.int(1, 2) as i64, r.int(1, 2) as i64];
    Geometry {
        n: r.int(1, 2),
        groups: r.int(1, 2),
        cin: r.int(1, 2),
        cout: r.int(1, 2),
        k: [r.int(1, 3), r.int(1, 3)],
        stride,
        dilation,
        pad: [0; 4].map(|_| r.int(0, 2) as i64),
        output_pad: [0, 1].map(|i| r.int(0, stride[i].max(dilation[i]) as usize - 1) as i64),
        extent: [r.int(1, 6), r.int(1, 6)],
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// conv2d and conv_transpose2d with random stride, dilation, padding, output padding
    /// and groups (shapes the verifier rejects are skipped).
    #[test]
    fn convolutions_with_random_geometry(seed in 0i64..100_000, transpose in any::<bool>()) {
        let mut r = Rand::new(seed);
        let c = geometry(&mut r);
        let (cx, w) = if transpose {
            (c.groups * c.cin, [c.groups * c.cin, c.cout, c.k[0], c.k[1]])
        } else {
            (c.groups * c.cin, [c.groups * c.cout, c.cin, c.k[0], c.k[1]])
        };
        let xs = [c.n, cx, c.extent[0], c.extent[1]];
        let op = if transpose {
            Op::ConvTranspose2d { stride: c.stride, pad: c.pad, output_pad: c.output_pad, dilation: c.dilation, groups: c.groups as i64 }
        } else {
            Op::Conv2d { stride: c.stride, pad: c.pad, dilation: c.dilation, groups: c.groups as i64 }
        };
        let ok = sinter_ir::infer::infer(&op, &[&TensorType::f32(&xs), &TensorType::f32(&w)]).is_ok();
        prop_assume!(ok);
        check(seed, move |b, _| {
            let x = param(b, "x", &xs);
            let wv = param(b, "w", &w);
            vec![b.op(op, &[x, wv]).unwrap()]
        }, none());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// max_pool2d (on distinct values) and avg_pool2d with random kernels, strides and
    /// padding (shapes the verifier rejects are skipped).
    #[test]
    fn pools_with_random_geometry(seed in 0i64..100_000, max in any::<bool>(), include in any::<bool>()) {
        let mut r = Rand::new(seed);
        let kernel = [r.int(1, 3) as i64, r.int(1, 3) as i64];
        let stride = [r.int(1, 3) as i64, r.int(1, 3) as i64];
        let pad = [0, 1, 0, 1].map(|i| r.int(0, kernel[i] as usize - 1) as i64);
        let xs = [r.int(1, 2), r.int(1, 2), r.int(1, 5), r.int(1, 5)];
        let op = if max {
            Op::MaxPool2d { kernel, stride, pad }
        } else {
            Op::AvgPool2d { kernel, stride, pad, count_include_pad: include }
        };
        prop_assume!(sinter_ir::infer::infer(&op, &[&TensorType::f32(&xs)]).is_ok());
        let f = if max { feeds(vec![("x", r.distinct(&xs))]) } else { none() };
        check(seed, move |b, _| {
            let x = param(b, "x", &xs);
            vec![b.op(op, &[x]).unwrap()]
        }, f);
    }
}

/// The Winograd ops have no gradient: differentiating through one is an error naming the op
/// and what to do instead, not a panic or a silent zero.
#[test]
fn winograd_ops_are_not_differentiable() {
    let g = sinter_ir::parse(
        "graph @w { param %w: f32[2,3,3,3]  input %x: f32[1,3,5,5]
           %u = winograd_filter(%w) {tile=2}
           %v = winograd_input(%x) {tile=2, pad=[1, 1, 1, 1]}
           %m = matmul(%u, %v)
           %y = winograd_output(%m) {tile=2, out=[5, 5]}
           %loss = reduce_sum(%y) {axes=[]}
           output %loss }",
    )
    .unwrap();
    let loss = *g.outputs().first().unwrap();
    let e = grad(&g, loss, &params(&g)).unwrap_err().to_string();
    assert!(e.contains("winograd_"), "{e}");
    assert!(e.contains("differentiate the conv2d"), "{e}");
}
