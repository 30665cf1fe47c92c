//! Training graphs: one step of every optimiser against the same step computed on the host
//! from the interpreter's gradients, batch-norm running statistics and the inference graph,
//! the `Trainer` with parameters saved to and loaded from safetensors.

mod common;

use common::{Rand, param};
use sinter_autodiff::train::{STEP, next_name};
use sinter_autodiff::{
    Clip, Init, Interpret, Optimizer, Schedule, TrainConfig, Trainer, grad_params, inference_graph,
    init_params, training_graph,
};
use sinter_ir::{Builder, Graph, Op, Tensor, TensorType, Value};
use std::collections::HashMap;

type Map = HashMap<String, Tensor>;

fn run(g: &Graph, feeds: &Map) -> Map {
    sinter_interp::run(g, feeds).unwrap().into_iter().collect()
}

fn vals(t: &Tensor) -> Vec<f32> {
    t.as_f32().unwrap().to_vec()
}

/// A small regression model: `mse(tanh(x w1 + b1) w2, target)`.
fn model() -> (Graph, Value) {
    let mut b = Builder::new("reg");
    let x = b.input("x", TensorType::f32(&[4, 3])).unwrap();
    let t = b.input("target", TensorType::f32(&[4, 2])).unwrap();
    let w1 = param(&mut b, "w1", &[3, 5]);
    let b1 = param(&mut b, "b1", &[5]);
    let w2 = param(&mut b, "w2", &[5, 2]);
    let h = b.linear(x, w1, Some(b1)).unwrap();
    let a = b.tanh(h).unwrap();
    let y = b.matmul(a, w2).unwrap();
    let loss = b.mse(y, t).unwrap();
    (b.finish(&[loss]).unwrap(), loss)
}

fn close(a: &[f32], b: &[f32], what: &str) {
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= 1e-5 + 1e-4 * y.abs(),
            "{what}[{i}]: {x} vs {y}"
        );
    }
}

/// Runs `steps` steps of the training graph for `cfg` and, alongside, the same update on the
/// host from the gradients of the plain backward graph; compares parameters after each step.
fn compare_with_host(cfg: TrainConfig, steps: usize) {
    let (g, loss) = model();
    let mut r = Rand::new(9);
    let data: Map = common::feeds(vec![
        ("x", r.tensor(&[4, 3])),
        ("target", r.tensor(&[4, 2])),
    ]);
    let mut params = init_params(&g, Init::XavierNormal, 3);
    params.insert("b1".into(), r.tensor(&[5]));
    let tg = training_graph(&g, loss, &cfg).unwrap();
    tg.graph.verify().unwrap();
    let gr = grad_params(&g, loss).unwrap();
    let mut state = tg.initial_state();
    let mut host = params.clone();
    let mut host_state: HashMap<String, Vec<f32>> = HashMap::new();
    let lr = 0.05f32;
    for step in 1..=steps {
        // The training graph.
        let mut feeds = data.clone();
        feeds.extend(params.clone());
        feeds.extend(state.clone());
        feeds.insert("lr".into(), Tensor::scalar(lr));
        let outs = run(&tg.graph, &feeds);
        for (o, i) in &tg.feedback {
            if params.contains_key(i) {
                params.insert(i.clone(), outs[o].clone());
            } else {
                state.insert(i.clone(), outs[o].clone());
            }
        }
        // The host.
        let mut feeds = data.clone();
        feeds.extend(host.clone());
        let outs = run(&gr.graph, &feeds);
        let names = ["w1", "b1", "w2"];
        let mut grads: Vec<Vec<f32>> = names
            .iter()
            .map(|n| vals(&outs[&format!("grad.{n}")]))
            .collect();
        match cfg.clip {
            Some(Clip::Value(c)) => grads.iter_mut().flatten().for_each(|v| *v = v.clamp(-c, c)),
            Some(Clip::GlobalNorm(c)) => {
                let norm = grads.iter().flatten().map(|v| v * v).sum::<f32>().sqrt();
                let s = c / norm.max(c);
                grads.iter_mut().flatten().for_each(|v| *v *= s);
            }
            None => {}
        }
        for (k, n) in names.iter().enumerate() {
            let p = vals(&host[*n]);
            let mut d = grads[k].clone();
            for (di, pi) in d.iter_mut().zip(&p) {
                *di += cfg.weight_decay * pi;
            }
            let shape = host[*n].shape().to_vec();
            let zeros = vec![0.0; p.len()];
            let slot = |s: &str, st: &HashMap<String, Vec<f32>>| {
                st.get(&format!("{n}.{s}"))
                    .cloned()
                    .unwrap_or_else(|| zeros.clone())
            };
            let new: Vec<f32> = match cfg.optimizer {
                Optimizer::Sgd { momentum, nesterov } => {
                    let buf: Vec<f32> = slot("buf", &host_state)
                        .iter()
                        .zip(&d)
                        .map(|(b, g)| momentum * b + g)
                        .collect();
                    let upd: Vec<f32> = if nesterov {
                        d.iter().zip(&buf).map(|(g, b)| g + momentum * b).collect()
                    } else {
                        buf.clone()
                    };
                    host_state.insert(format!("{n}.buf"), buf);
                    p.iter().zip(&upd).map(|(p, u)| p - lr * u).collect()
                }
                Optimizer::Adam { beta1, beta2, eps }
                | Optimizer::AdamW {
                    beta1, beta2, eps, ..
                } => {
                    let wd = match cfg.optimizer {
                        Optimizer::AdamW { weight_decay, .. } => weight_decay,
                        _ => 0.0,
                    };
                    let m: Vec<f32> = slot("m", &host_state)
                        .iter()
                        .zip(&d)
                        .map(|(m, g)| beta1 * m + (1.0 - beta1) * g)
                        .collect();
                    let v: Vec<f32> = slot("v", &host_state)
                        .iter()
                        .zip(&d)
                        .map(|(v, g)| beta2 * v + (1.0 - beta2) * g * g)
                        .collect();
                    let (c1, c2) = (1.0 - beta1.powi(step as i32), 1.0 - beta2.powi(step as i32));
                    let new = p
                        .iter()
                        .zip(m.iter().zip(&v))
                        .map(|(p, (m, v))| {
                            p - lr * wd * p - lr * (m / c1) / ((v / c2).sqrt() + eps)
                        })
                        .collect();
                    host_state.insert(format!("{n}.m"), m);
                    host_state.insert(format!("{n}.v"), v);
                    new
                }
            };
            host.insert(n.to_string(), Tensor::from_f32(&shape, new));
        }
        for n in names {
            close(
                &vals(&params[n]),
                &vals(&host[n]),
                &format!("step {step} {n}"),
            );
        }
    }
}

#[test]
fn sgd_momentum_and_nesterov_match_the_host() {
    compare_with_host(TrainConfig::new(Optimizer::sgd(0.0)), 2);
    compare_with_host(TrainConfig::new(Optimizer::sgd(0.9)), 3);
    let mut c = TrainConfig::new(Optimizer::Sgd {
        momentum: 0.8,
        nesterov: true,
    });
    c.weight_decay = 0.01;
    compare_with_host(c, 3);
}

#[test]
fn adam_and_adamw_match_the_host() {
    compare_with_host(TrainConfig::new(Optimizer::adam()), 3);
    let c = TrainConfig::new(Optimizer::AdamW {
        beta1: 0.8,
        beta2: 0.99,
        eps: 1e-6,
        weight_decay: 0.1,
    });
    compare_with_host(c, 3);
}

#[test]
fn clipping_matches_the_host() {
    let mut c = TrainConfig::new(Optimizer::sgd(0.0));
    c.clip = Some(Clip::GlobalNorm(0.05));
    compare_with_host(c, 2);
    let mut c = TrainConfig::new(Optimizer::adam());
    c.clip = Some(Clip::Value(0.01));
    c.weight_decay = 0.001;
    compare_with_host(c, 2);
}

#[test]
fn state_names_and_feedback() {
    let (g, loss) = model();
    let tg = training_graph(&g, loss, &TrainConfig::new(Optimizer::adam())).unwrap();
    let state: Vec<&str> = tg.state.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        state,
        [
            STEP, "opt.w1.m", "opt.w1.v", "opt.b1.m", "opt.b1.v", "opt.w2.m", "opt.w2.v"
        ]
    );
    assert!(tg.feedback.contains(&(next_name("w1"), "w1".into())));
    assert!(tg.feedback.contains(&(next_name(STEP), STEP.into())));
    assert_eq!(tg.graph.value_name(tg.graph.outputs()[0]), tg.loss);
    assert_eq!(tg.data, ["x", "target"]);
}

/// conv -> batch_norm_train -> relu -> global pool -> linear, with an MSE loss.
fn bn_model() -> (Graph, Value) {
    let mut b = Builder::new("bn");
    let x = b.input("x", TensorType::f32(&[4, 2, 3, 3])).unwrap();
    let t = b.input("target", TensorType::f32(&[4, 1])).unwrap();
    let w = param(&mut b, "w", &[3, 2, 3, 3]);
    let gamma = param(&mut b, "gamma", &[3]);
    let beta = param(&mut b, "beta", &[3]);
    let wf = param(&mut b, "wf", &[3, 1]);
    let c = b.conv2d(x, w, None, 1, 1).unwrap();
    let y = b
        .op_multi(Op::BatchNormTrain { eps: 1e-5.into() }, &[c, gamma, beta])
        .unwrap()[0];
    let r = b.relu(y).unwrap();
    let p = b.global_avg_pool(r).unwrap();
    let f = b.flatten(p, 1).unwrap();
    let z = b.matmul(f, wf).unwrap();
    let loss = b.mse(z, t).unwrap();
    (b.finish(&[loss, z]).unwrap(), loss)
}

#[test]
fn batch_norm_running_statistics_and_inference_graph() {
    let (g, loss) = bn_model();
    let tg = training_graph(&g, loss, &TrainConfig::new(Optimizer::sgd(0.0))).unwrap();
    assert_eq!(tg.batch_norm.len(), 1);
    let bn = tg.batch_norm[0].clone();
    let mut r = Rand::new(5);
    let x = r.tensor(&[4, 2, 3, 3]);
    let batch = common::feeds(vec![("x", x.clone()), ("target", r.tensor(&[4, 1]))]);
    let params = init_params(&g, Init::HeNormal, 1);
    let mut tr = Trainer::new(
        Interpret(sinter_interp::run),
        tg,
        params.clone(),
        Schedule::Constant(0.0),
    )
    .unwrap();
    tr.step(&batch).unwrap();
    // With lr = 0 the parameters stay; the running statistics move 10% towards the batch's.
    assert_eq!(tr.get("w"), params.get("w"));
    let mut probe = Builder::new("probe");
    let xi = probe.input("x", TensorType::f32(&[4, 2, 3, 3])).unwrap();
    let w = probe.input("w", TensorType::f32(&[3, 2, 3, 3])).unwrap();
    let c = probe.conv2d(xi, w, None, 1, 1).unwrap();
    let m = probe.reduce_mean(c, &[0, 2, 3], false).unwrap();
    let d = probe
        .op(
            Op::ReduceMean {
                axes: vec![0, 2, 3],
                keepdims: true,
            },
            &[c],
        )
        .unwrap();
    let dc = probe.sub(c, d).unwrap();
    let sq = probe.mul(dc, dc).unwrap();
    let ss = probe.reduce_sum(sq, &[0, 2, 3], false).unwrap();
    let pg = probe.finish(&[m, ss]).unwrap();
    let o = run(
        &pg,
        &common::feeds(vec![("x", x), ("w", params["w"].clone())]),
    );
    let mean = vals(&o[&pg.value_name(pg.outputs()[0]).to_string()]);
    let ss = vals(&o[&pg.value_name(pg.outputs()[1]).to_string()]);
    let want_m: Vec<f32> = mean.iter().map(|m| 0.1 * m).collect();
    let want_v: Vec<f32> = ss.iter().map(|s| 0.9 + 0.1 * s / 35.0).collect();
    close(&vals(tr.get(&bn.mean).unwrap()), &want_m, "running mean");
    close(
        &vals(tr.get(&bn.var).unwrap()),
        &want_v,
        "running var (unbiased)",
    );
    // The inference graph reads them through batch_norm.
    let inf = inference_graph(&g).unwrap();
    assert!(
        inf.nodes()
            .iter()
            .any(|n| matches!(n.op(), Some(Op::BatchNorm { .. })))
    );
    assert!(
        !inf.nodes()
            .iter()
            .any(|n| matches!(n.op(), Some(Op::BatchNormTrain { .. })))
    );
    let mut feeds = batch.clone();
    feeds.extend(tr.model());
    let out = run(&inf, &feeds);
    assert!(
        out.values()
            .all(|t| t.as_f32().unwrap().iter().all(|v| v.is_finite()))
    );
}

#[test]
fn trainer_saves_and_loads_safetensors() {
    let (g, loss) = model();
    let tg = training_graph(&g, loss, &TrainConfig::new(Optimizer::adam())).unwrap();
    let mut r = Rand::new(6);
    let batch = common::feeds(vec![
        ("x", r.tensor(&[4, 3])),
        ("target", r.tensor(&[4, 2])),
    ]);
    let params = init_params(&g, Init::XavierUniform, 2);
    let sched = Schedule::Warmup {
        steps: 2,
        then: Box::new(Schedule::Constant(0.05)),
    };
    let mut tr = Trainer::new(
        Interpret(sinter_interp::run),
        tg.clone(),
        params.clone(),
        sched.clone(),
    )
    .unwrap();
    let first = tr.step(&batch).unwrap();
    let mut last = first;
    for _ in 0..20 {
        last = tr.step(&batch).unwrap();
    }
    assert!(last < first, "loss {first} -> {last}");
    assert_eq!(tr.steps(), 21);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("params.safetensors");
    tr.save(&path).unwrap();
    let mut fresh = Trainer::new(Interpret(sinter_interp::run), tg, params, sched).unwrap();
    assert_ne!(fresh.get("w1"), tr.get("w1"));
    fresh.load(&path).unwrap();
    for n in ["w1", "b1", "w2"] {
        assert_eq!(fresh.get(n), tr.get(n), "{n}");
    }
    // Wrong types and unknown names are errors that say so.
    let e = fresh
        .set("w1", Tensor::from_f32(&[2], vec![0.0, 0.0]))
        .unwrap_err()
        .to_string();
    assert_eq!(e, "`%w1` is f32[3,5], got f32[2]");
    let e = fresh
        .set("nope", Tensor::scalar(0.0))
        .unwrap_err()
        .to_string();
    assert!(e.contains("`%nope` is not a parameter"), "{e}");
}

#[test]
fn a_failed_step_changes_nothing() {
    let (g, loss) = model();
    let tg = training_graph(&g, loss, &TrainConfig::new(Optimizer::sgd(0.5))).unwrap();
    let params = init_params(&g, Init::XavierUniform, 4);
    let mut tr = Trainer::new(
        Interpret(sinter_interp::run),
        tg,
        params,
        Schedule::Constant(0.1),
    )
    .unwrap();
    let mut r = Rand::new(8);
    let bad = common::feeds(vec![
        ("x", r.tensor(&[4, 2])),
        ("target", r.tensor(&[4, 2])),
    ]);
    let e = tr.step(&bad).unwrap_err().to_string();
    assert!(
        e.contains("input `%x` expects f32[4,3], got f32[4,2]"),
        "{e}"
    );
    let owned = common::feeds(vec![("w1", r.tensor(&[3, 5]))]);
    let e = tr.step(&owned).unwrap_err().to_string();
    assert_eq!(e, "the batch feeds `%w1`, which the trainer owns");
    assert_eq!(tr.steps(), 0);
    assert!(tr.get("w1").is_some() && tr.get("opt.w1.buf").is_some());
    let good = common::feeds(vec![
        ("x", r.tensor(&[4, 3])),
        ("target", r.tensor(&[4, 2])),
    ]);
    tr.step(&good).unwrap();
    assert_eq!(tr.steps(), 1);
}

#[test]
fn inference_graph_drops_dropout_and_its_counter() {
    let mut b = Builder::new("drop");
    let x = b.input("x", TensorType::f32(&[2, 3])).unwrap();
    let step = b.input("step", TensorType::i64(&[])).unwrap();
    let w = param(&mut b, "w", &[3, 3]);
    let h = b.matmul(x, w).unwrap();
    let d = b
        .op(
            Op::Dropout {
                p: 0.5.into(),
                seed: 1,
            },
            &[h, step],
        )
        .unwrap();
    let g = b.finish(&[d]).unwrap();
    let inf = inference_graph(&g).unwrap();
    assert_eq!(
        sinter_ir::print(&inf),
        "graph @drop {\n  input %x: f32[2,3]\n  param %w: f32[3,3]\n  %0: f32[2,3] = matmul(%x, %w)\n  output %0\n}\n"
    );
}

/// The template of the JIT check: two trainers over two backends (here the interpreter, once
/// directly and once through a closure) take the same steps and must carry the same state
/// within 1e-4 relative.
#[test]
fn two_backends_agree_step_by_step() {
    let (g, loss) = bn_model();
    let tg = training_graph(&g, loss, &TrainConfig::new(Optimizer::adam())).unwrap();
    let params = init_params(&g, Init::HeUniform, 5);
    let sched = Schedule::Constant(0.01);
    let mut a = Trainer::new(
        Interpret(sinter_interp::run),
        tg.clone(),
        params.clone(),
        sched.clone(),
    )
    .unwrap();
    let via = |g: &Graph, f: &Map| sinter_interp::run(g, f);
    let mut b = Trainer::new(Interpret(via), tg, params, sched).unwrap();
    let mut r = Rand::new(12);
    for _ in 0..3 {
        let batch = common::feeds(vec![
            ("x", r.tensor(&[4, 2, 3, 3])),
            ("target", r.tensor(&[4, 1])),
        ]);
        assert_eq!(a.step(&batch).unwrap(), b.step(&batch).unwrap());
        let (sa, sb) = (a.state(), b.state());
        assert_eq!(sa.keys().collect::<Vec<_>>(), sb.keys().collect::<Vec<_>>());
        for (k, t) in &sa {
            if let (Some(x), Some(y)) = (t.as_f32(), sb[k].as_f32()) {
                close(x, y, k);
            }
        }
    }
}
