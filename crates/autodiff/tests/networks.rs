//! Whole-network gradient checks: an MLP, the LeNet of `ir-spec/examples/lenet.sir`, a
//! ResNet basic block with `batch_norm_train`, and an LSTM cell. Same method as the op checks
//! (`common/mod.rs`), with the network's own f32 loss as the objective, so the tolerance is
//! looser: `|analytic - numeric| <= 2e-3 + 3e-2 |numeric|`, with `h = 5e-3` (LeNet and the
//! ResNet block: `1e-3`, because a conv bias or weight there shifts hundreds of relu and
//! max-pool inputs, so a wider stencil crosses kinks; even so a LeNet conv bias crosses one for
//! some seeds: the seeds here are fixed and the data deterministic). Large parameters are
//! sampled (a fixed number of random elements each) to keep the suite fast. Where a
//! perturbation crosses a kink, an element may match a one-sided second-order difference
//! instead of the central one (at most a fifth of them may).

mod common;

use common::{Rand, check_graph_with, param};
use sinter_autodiff::{Init, init_params};
use sinter_ir::{Builder, Graph, Op, Tensor, TensorType, Value};
use std::collections::HashMap;

const TOL: (f64, f64) = (2e-3, 3e-2);

fn check_net(
    g: &Graph,
    loss: Value,
    mut feeds: HashMap<String, Tensor>,
    sample: Option<usize>,
    seed: i64,
    h: f32,
) {
    for (k, v) in init_params(g, Init::XavierUniform, seed) {
        feeds.entry(k).or_insert(v);
    }
    // Non-zero biases and shifts, so every path is exercised (in name order: deterministic).
    let mut r = Rand::new(seed);
    let mut names: Vec<String> = feeds.keys().cloned().collect();
    names.sort();
    for k in names {
        let v = feeds.get_mut(&k).unwrap();
        let vector = g.find(&k).is_some_and(|x| g.ty(x).rank() == 1);
        let trivial = v
            .as_f32()
            .is_some_and(|d| d.iter().all(|&e| e == 0.0 || e == 1.0));
        if vector && trivial {
            let d: Vec<f32> = v
                .as_f32()
                .unwrap()
                .iter()
                .map(|e| e + 0.3 * r.signed())
                .collect();
            *v = Tensor::from_f32(v.shape(), d);
        }
    }
    let li = g.outputs().iter().position(|&o| o == loss).unwrap();
    let rep = check_graph_with(
        g,
        loss,
        &feeds,
        sample.map(|s| (s, seed)),
        &mut |outs: &[(String, Tensor)]| outs[li].1.as_f32().unwrap()[0] as f64,
        h,
        TOL,
        true,
    );
    // Kinks are the exception: most elements must pass the central difference.
    assert!(
        rep.one_sided * 5 <= rep.checked,
        "{} of {} only one-sided",
        rep.one_sided,
        rep.checked
    );
    assert!(rep.checked > 0);
    assert!(
        rep.failures.is_empty(),
        "{} of {} disagree:\n{}",
        rep.failures.len(),
        rep.checked,
        rep.failures.join("\n")
    );
}

#[test]
fn mlp() {
    let mut b = Builder::new("mlp");
    let x = b.input("x", TensorType::f32(&[4, 5])).unwrap();
    let labels = b.input("labels", TensorType::i64(&[4])).unwrap();
    let w1 = param(&mut b, "w1", &[5, 6]);
    let b1 = param(&mut b, "b1", &[6]);
    let w2 = param(&mut b, "w2", &[6, 3]);
    let b2 = param(&mut b, "b2", &[3]);
    let h = b.linear(x, w1, Some(b1)).unwrap();
    let a = b.tanh(h).unwrap();
    let z = b.matmul(a, w2).unwrap();
    let z = b.add(z, b2).unwrap();
    let loss = b.softmax_cross_entropy(z, labels).unwrap();
    let g = b.finish(&[loss]).unwrap();
    let mut r = Rand::new(1);
    let feeds = common::feeds(vec![
        ("x", r.tensor(&[4, 5])),
        ("labels", Tensor::from_i64(&[4], vec![0, 2, 1, 2])),
    ]);
    check_net(&g, loss, feeds, None, 1, common::H);
}

#[test]
fn lenet() {
    let src = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../ir-spec/examples/lenet.sir"
    ))
    .unwrap();
    let g = sinter_ir::parse(&src).unwrap();
    let loss = g.find("loss").unwrap();
    let mut r = Rand::new(2);
    let labels: Vec<i64> = (0..16).map(|i| (i * 7 % 10) as i64).collect();
    let feeds = common::feeds(vec![
        ("x", r.tensor_in(&[16, 1, 8, 8], 0.0, 1.0)),
        ("labels", Tensor::from_i64(&[16], labels)),
    ]);
    check_net(&g, loss, feeds, Some(6), 2, 1e-3);
}

#[test]
fn resnet_basic_block_with_batch_norm_train() {
    let mut b = Builder::new("block");
    let x = b.input("x", TensorType::f32(&[2, 3, 4, 4])).unwrap();
    let t = b.input("target", TensorType::f32(&[2, 2])).unwrap();
    let w1 = param(&mut b, "w1", &[3, 3, 3, 3]);
    let g1 = param(&mut b, "g1", &[3]);
    let be1 = param(&mut b, "be1", &[3]);
    let w2 = param(&mut b, "w2", &[3, 3, 3, 3]);
    let g2 = param(&mut b, "g2", &[3]);
    let be2 = param(&mut b, "be2", &[3]);
    let wf = param(&mut b, "wf", &[3, 2]);
    let bf = param(&mut b, "bf", &[2]);
    let bn = Op::BatchNormTrain { eps: 1e-5.into() };
    let c1 = b.conv2d(x, w1, None, 1, 1).unwrap();
    let n1 = b.op_multi(bn.clone(), &[c1, g1, be1]).unwrap()[0];
    let r1 = b.relu(n1).unwrap();
    let c2 = b.conv2d(r1, w2, None, 1, 1).unwrap();
    let n2 = b.op_multi(bn, &[c2, g2, be2]).unwrap()[0];
    let s = b.add(n2, x).unwrap();
    let r2 = b.relu(s).unwrap();
    let p = b.global_avg_pool(r2).unwrap();
    let f = b.flatten(p, 1).unwrap();
    let y = b.linear(f, wf, Some(bf)).unwrap();
    let loss = b.mse(y, t).unwrap();
    let g = b.finish(&[loss]).unwrap();
    let mut r = Rand::new(3);
    let feeds = common::feeds(vec![
        ("x", r.tensor(&[2, 3, 4, 4])),
        ("target", r.tensor(&[2, 2])),
    ]);
    check_net(&g, loss, feeds, Some(12), 3, 1e-3);
}

#[test]
fn lstm_cell() {
    let (bs, i, h) = (2, 3, 4);
    let mut b = Builder::new("lstm");
    let x = b.input("x", TensorType::f32(&[bs, i])).unwrap();
    let h0 = b.input("h", TensorType::f32(&[bs, h])).unwrap();
    let c0 = param(&mut b, "c", &[bs, h]);
    let w = param(&mut b, "w", &[i + h, 4 * h]);
    let bias = param(&mut b, "b", &[4 * h]);
    let target = b.input("target", TensorType::f32(&[bs, h])).unwrap();
    let xh = b.concat(&[x, h0], 1).unwrap();
    let z = b.linear(xh, w, Some(bias)).unwrap();
    let gates = b.split(z, 1, &[h as i64; 4]).unwrap();
    let ig = b.sigmoid(gates[0]).unwrap();
    let fg = b.sigmoid(gates[1]).unwrap();
    let gg = b.tanh(gates[2]).unwrap();
    let og = b.sigmoid(gates[3]).unwrap();
    let fc = b.mul(fg, c0).unwrap();
    let igg = b.mul(ig, gg).unwrap();
    let c1 = b.add(fc, igg).unwrap();
    let tc = b.tanh(c1).unwrap();
    let h1 = b.mul(og, tc).unwrap();
    let l1 = b.mse(h1, target).unwrap();
    let l2 = b.reduce_mean(c1, &[], false).unwrap();
    let loss = b.add(l1, l2).unwrap();
    let g = b.finish(&[loss, h1, c1]).unwrap();
    let mut r = Rand::new(4);
    let feeds = common::feeds(vec![
        ("x", r.tensor(&[bs, i])),
        ("h", r.tensor(&[bs, h])),
        ("c", r.tensor(&[bs, h])),
        ("target", r.tensor(&[bs, h])),
    ]);
    check_net(&g, loss, feeds, None, 4, common::H);
}
