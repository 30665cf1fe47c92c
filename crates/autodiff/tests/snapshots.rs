//! Snapshots of small backward and training graphs in the `.sir` text format: the backward
//! pass is a readable, reviewed claim about what the transformation emits. Re-bless with
//! `INSTA_UPDATE=always` (or `cargo insta review`) and read every change.

use sinter_autodiff::{Optimizer, TrainConfig, grad_params, training_graph};
use sinter_ir::{Builder, Op, TensorType, print};

/// `x @ w1 + b1 -> relu -> @ w2 + b2 -> softmax cross-entropy`.
fn mlp() -> (sinter_ir::Graph, sinter_ir::Value) {
    let mut b = Builder::new("mlp");
    let x = b.input("x", TensorType::f32(&[4, 3])).unwrap();
    let labels = b.input("labels", TensorType::i64(&[4])).unwrap();
    let w1 = b.param("w1", TensorType::f32(&[3, 5])).unwrap();
    let b1 = b.param("b1", TensorType::f32(&[5])).unwrap();
    let w2 = b.param("w2", TensorType::f32(&[5, 2])).unwrap();
    let b2 = b.param("b2", TensorType::f32(&[2])).unwrap();
    let h = b.named("h", Op::Matmul {}, &[x, w1]).unwrap();
    let hb = b.named("hb", Op::Add {}, &[h, b1]).unwrap();
    let a = b.named("a", Op::Relu {}, &[hb]).unwrap();
    let z = b.named("z", Op::Matmul {}, &[a, w2]).unwrap();
    let logits = b.named("logits", Op::Add {}, &[z, b2]).unwrap();
    let loss = b.softmax_cross_entropy(logits, labels).unwrap();
    (b.finish(&[loss]).unwrap(), loss)
}

#[test]
fn mlp_backward() {
    let (g, loss) = mlp();
    let gr = grad_params(&g, loss).unwrap();
    insta::assert_snapshot!("mlp_backward", print(&gr.graph));
}

#[test]
fn conv_pool_backward() {
    let mut b = Builder::new("conv_pool");
    let x = b.input("x", TensorType::f32(&[2, 1, 6, 6])).unwrap();
    let w = b.param("w", TensorType::f32(&[2, 1, 3, 3])).unwrap();
    let bias = b.param("bias", TensorType::f32(&[2])).unwrap();
    let c = b.conv2d(x, w, Some(bias), 2, 1).unwrap();
    let r = b.relu(c).unwrap();
    let p = b.max_pool2d(r, 2, 1).unwrap();
    let loss = b.reduce_mean(p, &[], false).unwrap();
    let g = b.finish(&[loss]).unwrap();
    let gr = grad_params(&g, loss).unwrap();
    insta::assert_snapshot!("conv_pool_backward", print(&gr.graph));
}

#[test]
fn sgd_momentum_training_step() {
    let mut b = Builder::new("linear");
    let x = b.input("x", TensorType::f32(&[8, 2])).unwrap();
    let t = b.input("t", TensorType::f32(&[8, 1])).unwrap();
    let w = b.param("w", TensorType::f32(&[2, 1])).unwrap();
    let y = b.matmul(x, w).unwrap();
    let loss = b.mse(y, t).unwrap();
    let g = b.finish(&[loss]).unwrap();
    let tg = training_graph(&g, loss, &TrainConfig::new(Optimizer::sgd(0.9))).unwrap();
    insta::assert_snapshot!("sgd_momentum_training_step", print(&tg.graph));
}
