//! Compiled training: the JIT backend ([`sinter_runtime::Jit`]) against the reference
//! interpreter on four whole networks (an MLP with dropout and input noise, the LeNet of
//! `ir-spec/examples/lenet.sir`, a ResNet basic block with `batch_norm_train` and an average
//! pool, an LSTM cell fed by an embedding `gather`), so that the backward ops
//! (`conv2d_weight_grad`, `conv_transpose2d`, `max_pool2d_grad`, `avg_pool2d_grad`,
//! `scatter_add`, ...), the random ops, the batch-norm statistics and the optimiser updates
//! all run as generated code.
//!
//! Tolerance: an f32 tensor computed by the JIT (`a`) agrees with the interpreter's (`b`) when
//! every element satisfies `|a_i - b_i| <= 1e-4 * max(|b_i|, 1e-2 * max_j |b_j|)`: relative
//! to the element, except that elements more than a hundred times smaller than the tensor's
//! largest are held to an absolute `1e-6 * max_j |b_j|` (sums that cancel to nearly zero lose
//! their relative accuracy to any change of summation order, and the JIT's GEMM sums in
//! blocks with FMA while the interpreter sums in natural order). Integer and boolean tensors
//! must be equal.

use sinter_autodiff::{
    Clip, Init, Interpret, Optimizer, Schedule, TrainConfig, Trainer, grad_params, init_params,
    training_graph,
};
use sinter_ir::{Builder, Graph, Op, Tensor, TensorData, TensorType, Value, rng};
use sinter_runtime::{CompileOptions, Compiled, Jit};
use std::collections::{BTreeMap, HashMap};

type Map = HashMap<String, Tensor>;

/// A network with its loss and one batch of data.
struct Net {
    g: Graph,
    loss: Value,
    batch: Map,
}

/// Deterministic test data.
struct Rand {
    key: u64,
    i: u64,
}

impl Rand {
    fn new(seed: i64) -> Rand {
        Rand {
            key: rng::key(seed, 777),
            i: 0,
        }
    }
    fn u(&mut self) -> f32 {
        self.i += 1;
        rng::uniform(self.key, self.i)
    }
    /// Uniform in `[lo, hi)`.
    fn tensor(&mut self, shape: &[usize], lo: f32, hi: f32) -> Tensor {
        let n = shape.iter().product();
        Tensor::from_f32(shape, (0..n).map(|_| lo + (hi - lo) * self.u()).collect())
    }
    fn labels(&mut self, n: usize, classes: usize) -> Tensor {
        Tensor::from_i64(
            &[n],
            (0..n)
                .map(|_| ((self.u() * classes as f32) as i64).min(classes as i64 - 1))
                .collect(),
        )
    }
}

fn param(b: &mut Builder, name: &str, shape: &[usize]) -> Value {
    b.param(name, TensorType::f32(shape)).unwrap()
}

/// linear -> relu -> dropout -> linear -> softmax cross-entropy, on inputs with added
/// `random_normal` noise; the dropout mask follows the `step` counter.
fn mlp() -> Net {
    let mut b = Builder::new("mlp");
    let x = b.input("x", TensorType::f32(&[8, 12])).unwrap();
    let labels = b.input("labels", TensorType::i64(&[8])).unwrap();
    let step = b.input("step", TensorType::i64(&[])).unwrap();
    let w1 = param(&mut b, "w1", &[12, 16]);
    let b1 = param(&mut b, "b1", &[16]);
    let w2 = param(&mut b, "w2", &[16, 5]);
    let b2 = param(&mut b, "b2", &[5]);
    let noise = b
        .op(
            Op::RandomNormal {
                shape: vec![8, 12],
                mean: 0.0.into(),
                std: 0.1.into(),
                seed: 3,
            },
            &[step],
        )
        .unwrap();
    let xn = b.add(x, noise).unwrap();
    let h = b.linear(xn, w1, Some(b1)).unwrap();
    let a = b.relu(h).unwrap();
    let d = b
        .op(
            Op::Dropout {
                p: 0.25.into(),
                seed: 5,
            },
            &[a, step],
        )
        .unwrap();
    let z = b.linear(d, w2, Some(b2)).unwrap();
    let loss = b.softmax_cross_entropy(z, labels).unwrap();
    let g = b.finish(&[loss, z]).unwrap();
    let mut r = Rand::new(1);
    let batch = Map::from([
        ("x".into(), r.tensor(&[8, 12], -1.0, 1.0)),
        ("labels".into(), r.labels(8, 5)),
        ("step".into(), Tensor::from_i64(&[], vec![7])),
    ]);
    Net { g, loss, batch }
}

fn lenet() -> Net {
    let src = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../ir-spec/examples/lenet.sir"
    ))
    .unwrap();
    let g = sinter_ir::parse(&src).unwrap();
    let loss = g.find("loss").unwrap();
    let mut r = Rand::new(2);
    let batch = Map::from([
        ("x".into(), r.tensor(&[16, 1, 8, 8], 0.0, 1.0)),
        ("labels".into(), r.labels(16, 10)),
    ]);
    Net { g, loss, batch }
}

/// conv -> bn -> relu -> conv -> bn -> + x -> relu -> avg_pool 2x2 -> linear -> MSE.
fn resnet_block() -> Net {
    let mut b = Builder::new("block");
    let x = b.input("x", TensorType::f32(&[2, 3, 4, 4])).unwrap();
    let t = b.input("target", TensorType::f32(&[2, 2])).unwrap();
    let w1 = param(&mut b, "w1", &[3, 3, 3, 3]);
    let g1 = param(&mut b, "g1", &[3]);
    let be1 = param(&mut b, "be1", &[3]);
    let w2 = param(&mut b, "w2", &[3, 3, 3, 3]);
    let g2 = param(&mut b, "g2", &[3]);
    let be2 = param(&mut b, "be2", &[3]);
    let wf = param(&mut b, "wf", &[12, 2]);
    let bf = param(&mut b, "bf", &[2]);
    let bn = Op::BatchNormTrain { eps: 1e-5.into() };
    let c1 = b.conv2d(x, w1, None, 1, 1).unwrap();
    let n1 = b.op_multi(bn.clone(), &[c1, g1, be1]).unwrap()[0];
    let r1 = b.relu(n1).unwrap();
    let c2 = b.conv2d(r1, w2, None, 1, 1).unwrap();
    let n2 = b.op_multi(bn, &[c2, g2, be2]).unwrap()[0];
    let s = b.add(n2, x).unwrap();
    let r2 = b.relu(s).unwrap();
    let p = b.avg_pool2d(r2, 2, 2).unwrap();
    let f = b.flatten(p, 1).unwrap();
    let y = b.linear(f, wf, Some(bf)).unwrap();
    let loss = b.mse(y, t).unwrap();
    let g = b.finish(&[loss]).unwrap();
    let mut r = Rand::new(3);
    let batch = Map::from([
        ("x".into(), r.tensor(&[2, 3, 4, 4], -1.0, 1.0)),
        ("target".into(), r.tensor(&[2, 2], -1.0, 1.0)),
    ]);
    Net { g, loss, batch }
}

/// One LSTM step on embedded tokens (`gather`, whose gradient is `scatter_add`).
fn lstm_cell() -> Net {
    let (bs, vocab, i, h) = (3, 6, 3, 4);
    let mut b = Builder::new("lstm");
    let tokens = b.input("tokens", TensorType::i64(&[bs])).unwrap();
    let h0 = b.input("h", TensorType::f32(&[bs, h])).unwrap();
    let c0 = b.input("c", TensorType::f32(&[bs, h])).unwrap();
    let target = b.input("target", TensorType::f32(&[bs, h])).unwrap();
    let emb = param(&mut b, "emb", &[vocab, i]);
    let w = param(&mut b, "w", &[i + h, 4 * h]);
    let bias = param(&mut b, "b", &[4 * h]);
    let x = b.op(Op::Gather { axis: 0 }, &[emb, tokens]).unwrap();
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
    let batch = Map::from([
        // Token 2 twice: scatter_add accumulates.
        ("tokens".into(), Tensor::from_i64(&[bs], vec![2, 5, 2])),
        ("h".into(), r.tensor(&[bs, h], -1.0, 1.0)),
        ("c".into(), r.tensor(&[bs, h], -1.0, 1.0)),
        ("target".into(), r.tensor(&[bs, h], -1.0, 1.0)),
    ]);
    Net { g, loss, batch }
}

/// Xavier-uniform weights; every vector parameter (biases, batch-norm scales and shifts)
/// gets random values around its initial one, so no path is trivially zero or one.
fn params(g: &Graph, seed: i64) -> Map {
    let mut ps = init_params(g, Init::XavierUniform, seed);
    let mut r = Rand::new(seed + 100);
    let mut names: Vec<String> = ps.keys().cloned().collect();
    names.sort();
    for n in names {
        let t = &ps[&n];
        if t.shape().len() == 1 {
            let d = r.tensor(t.shape(), -0.3, 0.3);
            let v: Vec<f32> = t
                .as_f32()
                .unwrap()
                .iter()
                .zip(d.as_f32().unwrap())
                .map(|(a, b)| a + b)
                .collect();
            ps.insert(n, Tensor::from_f32(t.shape(), v));
        }
    }
    ps
}

/// Asserts the JIT's tensor `a` matches the interpreter's `b` (see the module docs).
fn assert_close(what: &str, a: &Tensor, b: &Tensor) {
    assert_eq!(a.ty(), b.ty(), "{what}: types differ");
    let (TensorData::F32(x), TensorData::F32(y)) = (a.data(), b.data()) else {
        assert_eq!(a.data(), b.data(), "{what}");
        return;
    };
    let scale = y.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    for (i, (p, q)) in x.iter().zip(y).enumerate() {
        let tol = 1e-4 * q.abs().max(1e-2 * scale);
        assert!(
            (p - q).abs() <= tol,
            "{what}[{i}]: JIT {p}, interpreter {q} (|diff| {} > {tol}; tensor max |b| {scale})",
            (p - q).abs()
        );
    }
}

fn assert_states(what: &str, jit: &BTreeMap<String, Tensor>, interp: &BTreeMap<String, Tensor>) {
    assert_eq!(
        jit.keys().collect::<Vec<_>>(),
        interp.keys().collect::<Vec<_>>(),
        "{what}: state names"
    );
    for (k, b) in interp {
        assert_close(&format!("{what}: {k}"), &jit[k], b);
    }
}

/// Two training steps with `cfg` on the interpreter and on the JIT (in the normal and the
/// bounds-checked mode). Each step starts every trainer from the same state (the
/// interpreter's), so each compares exactly one step; the second has non-zero optimiser state
/// (momentum buffers, Adam moments at t = 2).
fn step_agrees(net: &Net, cfg: TrainConfig, seed: i64) {
    let tg = training_graph(&net.g, net.loss, &cfg).unwrap();
    let ps = params(&net.g, seed);
    let sched = Schedule::Constant(0.05);
    let mut interp = Trainer::new(
        Interpret(sinter_interp::run),
        tg.clone(),
        ps.clone(),
        sched.clone(),
    )
    .unwrap();
    let mut jits: Vec<Trainer<Jit>> = [CompileOptions::default(), CompileOptions::checked()]
        .into_iter()
        .map(|o| Trainer::new(Jit::new(o), tg.clone(), ps.clone(), sched.clone()).unwrap())
        .collect();
    for step in 1..=2 {
        let what = format!("@{} {:?} step {step}", net.g.name(), cfg.optimizer);
        let want = interp.step(&net.batch).unwrap();
        for jit in &mut jits {
            let got = jit.step(&net.batch).unwrap();
            assert_close(
                &format!("{what}: loss"),
                &Tensor::scalar(got),
                &Tensor::scalar(want),
            );
            assert_states(&what, &jit.state(), &interp.state());
            for (k, t) in interp.state() {
                jit.set(&k, t).unwrap();
            }
        }
    }
}

fn sgd() -> TrainConfig {
    TrainConfig::new(Optimizer::sgd(0.9))
}

fn adam() -> TrainConfig {
    TrainConfig::new(Optimizer::adam())
}

#[test]
fn mlp_step_matches_the_interpreter() {
    let net = mlp();
    step_agrees(&net, sgd(), 1);
    step_agrees(&net, adam(), 1);
    // Nesterov, L2 decay and global-norm clipping; AdamW with value clipping.
    let mut c = TrainConfig::new(Optimizer::Sgd {
        momentum: 0.8,
        nesterov: true,
    });
    c.weight_decay = 0.01;
    c.clip = Some(Clip::GlobalNorm(0.5));
    step_agrees(&net, c, 1);
    let mut c = TrainConfig::new(Optimizer::AdamW {
        beta1: 0.8,
        beta2: 0.99,
        eps: 1e-6,
        weight_decay: 0.1,
    });
    c.clip = Some(Clip::Value(0.05));
    step_agrees(&net, c, 1);
}

#[test]
fn lenet_step_matches_the_interpreter() {
    let net = lenet();
    step_agrees(&net, sgd(), 2);
    step_agrees(&net, adam(), 2);
}

#[test]
fn resnet_block_step_matches_the_interpreter() {
    let net = resnet_block();
    step_agrees(&net, sgd(), 3);
    step_agrees(&net, adam(), 3);
}

#[test]
fn lstm_cell_step_matches_the_interpreter() {
    let net = lstm_cell();
    step_agrees(&net, sgd(), 4);
    step_agrees(&net, adam(), 4);
}

/// The backward graph of each network (every parameter's gradient, plus the forward
/// outputs) through the JIT against the interpreter.
#[test]
fn whole_network_gradients_match_the_interpreter() {
    for (net, seed) in [
        (mlp(), 1),
        (lenet(), 2),
        (resnet_block(), 3),
        (lstm_cell(), 4),
    ] {
        let gr = grad_params(&net.g, net.loss).unwrap();
        let mut feeds = net.batch.clone();
        feeds.extend(params(&net.g, seed));
        let want = sinter_interp::run(&gr.graph, &feeds).unwrap();
        for opts in [CompileOptions::default(), CompileOptions::checked()] {
            let c = Compiled::new(&gr.graph, opts).unwrap();
            let got = c.run(&feeds).unwrap();
            assert_eq!(got.len(), want.len());
            for ((n, a), (m, b)) in got.iter().zip(&want) {
                assert_eq!(n, m);
                assert_close(&format!("@{} {n}", net.g.name()), a, b);
            }
        }
        assert_eq!(gr.grads.len(), gr.wrt.len());
    }
}

/// A step that fails (a token out of range for the embedding `gather`) comes back as an error
/// naming the node, and the trainer's state does not advance.
#[test]
fn a_failing_step_is_an_error_and_keeps_the_state() {
    let net = lstm_cell();
    let tg = training_graph(&net.g, net.loss, &adam()).unwrap();
    let mut jit = Trainer::new(
        Jit::default(),
        tg,
        params(&net.g, 4),
        Schedule::Constant(0.1),
    )
    .unwrap();
    let before = jit.state();
    let mut bad = net.batch.clone();
    bad.insert("tokens".into(), Tensor::from_i64(&[3], vec![0, 6, 1]));
    let err = jit.step(&bad).unwrap_err().to_string();
    assert!(
        err.contains("gather") && err.contains("out of range"),
        "{err}"
    );
    assert_eq!(jit.steps(), 0);
    assert_eq!(jit.state(), before);
    jit.step(&net.batch).unwrap();
    assert_eq!(jit.steps(), 1);
}

/// The four training graphs between them use every backward op the JIT must compile, the
/// random ops and batch norm in training mode (so the tests above run all of them).
#[test]
fn the_training_graphs_cover_the_backward_ops() {
    use sinter_ir::OpKind;
    let mut seen = std::collections::BTreeSet::new();
    for net in [mlp(), lenet(), resnet_block(), lstm_cell()] {
        let tg = training_graph(&net.g, net.loss, &adam()).unwrap();
        seen.extend(tg.graph.nodes().iter().filter_map(|n| n.op()).map(Op::kind));
    }
    for k in [
        OpKind::Conv2dWeightGrad,
        OpKind::ConvTranspose2d,
        OpKind::MaxPool2dGrad,
        OpKind::AvgPool2dGrad,
        OpKind::ScatterAdd,
        OpKind::BatchNormTrain,
        OpKind::Dropout,
        OpKind::RandomNormal,
        OpKind::Gather,
        OpKind::Split,
        OpKind::Concat,
    ] {
        assert!(seen.contains(&k), "no {} in the training graphs", k.name());
    }
}
