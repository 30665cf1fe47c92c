//! The step graphs of the classic learning rules (perceptron, Hebb storage, asynchronous
//! Hopfield recall, the Kohonen step, ART-1, the up-down step, the initialisation study's
//! deep forward graph), compiled by the JIT, against the reference interpreter on random
//! inputs.
//!
//! Tolerance, as in `rbm_dbn.rs`: `|a - b| <= 1e-4 * max(|b|, 1e-2 * max|b|) + 1e-6` for f32
//! tensors; integer outputs (winning units, categories) must be equal.

use sinter_ir::{DType, Graph, Tensor, TensorData, rng};
use sinter_runtime::{CompileOptions, Compiled};
use sinter_train::init_study::{Activation, deep_forward_graph};
use sinter_train::{art, hopfield, perceptron, som, wake_sleep};
use std::collections::HashMap;

/// Random feeds for every input of `g`: f32 uniform in `[lo, hi)` unless `special` gives a
/// value; i64 scalars and vectors 1 (a unit index, a step counter).
fn feeds(
    g: &Graph,
    seed: i64,
    special: &dyn Fn(&str, &[usize]) -> Option<Tensor>,
) -> HashMap<String, Tensor> {
    let key = rng::key(seed, 5);
    let mut out = HashMap::new();
    let mut k = 0u64;
    for (v, _) in g.inputs() {
        let name = g.value_name(v).to_string();
        let ty = g.ty(v);
        let t = if let Some(t) = special(&name, &ty.shape) {
            t
        } else if ty.dtype == DType::I64 {
            Tensor::from_i64(&ty.shape, vec![1; ty.numel()])
        } else {
            let vals = (0..ty.numel())
                .map(|_| {
                    k += 1;
                    rng::uniform(key, k) * 2.0 - 1.0
                })
                .collect();
            Tensor::from_f32(&ty.shape, vals)
        };
        out.insert(name, t);
    }
    out
}

fn bits(shape: &[usize], seed: i64, p: f32) -> Tensor {
    let key = rng::key(seed, 9);
    let n = shape.iter().product::<usize>() as u64;
    let v = (0..n)
        .map(|i| f32::from(u8::from(rng::uniform(key, i) < p)))
        .collect();
    Tensor::from_f32(shape, v)
}

fn agree(g: &Graph, inputs: &HashMap<String, Tensor>) {
    let want = sinter_interp::run(g, inputs).unwrap();
    let got = Compiled::new(g, CompileOptions::default())
        .unwrap()
        .run(inputs)
        .unwrap();
    assert_eq!(got.len(), want.len());
    for ((n, a), (m, b)) in got.iter().zip(&want) {
        assert_eq!(n, m);
        let what = format!("@{} %{n}", g.name());
        match (a.data(), b.data()) {
            (TensorData::F32(x), TensorData::F32(y)) => {
                let scale = y.iter().fold(0.0f32, |s, v| s.max(v.abs()));
                for (i, (p, q)) in x.iter().zip(y).enumerate() {
                    let tol = 1e-4 * q.abs().max(1e-2 * scale) + 1e-6;
                    assert!(
                        (p - q).abs() <= tol,
                        "{what}[{i}]: JIT {p}, interpreter {q}"
                    );
                }
            }
            _ => assert_eq!(a, b, "{what}"),
        }
    }
}

#[test]
fn perceptron_and_hopfield_steps() {
    let g = perceptron::perceptron_graph(3).unwrap().graph;
    for t in [0.0, 1.0] {
        let f = feeds(&g, 1, &|n, s| (n == "t").then(|| Tensor::full(s, t)));
        agree(&g, &f);
    }
    let g = hopfield::hebb_graph(3, 10).unwrap();
    agree(
        &g,
        &feeds(&g, 2, &|_, s| {
            Some(Tensor::from_f32(s, hopfield::random_patterns(3, 10, 4)))
        }),
    );
    let g = hopfield::async_step_graph(4, 16).unwrap();
    let w = {
        let pats = hopfield::random_patterns(3, 16, 5);
        hopfield::store(&pats, 16).unwrap().w
    };
    let f = feeds(&g, 3, &|n, s| match n {
        "s" => Some(Tensor::from_f32(s, hopfield::random_patterns(4, 16, 6))),
        "hopfield.w" => Some(w.clone()),
        "unit" => Some(Tensor::from_i64(s, vec![5])),
        _ => None,
    });
    agree(&g, &f);
}

#[test]
fn som_art_and_deep_forward_steps() {
    let g = som::som_step_graph(4, 8, 3, 3).unwrap();
    let f = feeds(&g, 4, &|n, _| match n {
        "lr" => Some(Tensor::scalar(0.3)),
        "sigma" => Some(Tensor::scalar(1.5)),
        _ => None,
    });
    agree(&g, &f);
    let g = art::art_step_graph(12, 6, 0.5).unwrap();
    for rho in [0.2, 0.6, 0.95] {
        let f = feeds(&g, 5, &|n, s| match n {
            "x" => Some(bits(s, 1, 0.5)),
            "art.w" => Some(bits(s, 2, 0.6)),
            "art.committed" => Some(Tensor::from_f32(s, vec![1.0, 1.0, 1.0, 0.0, 0.0, 0.0])),
            "rho" => Some(Tensor::scalar(rho)),
            "lr" => Some(Tensor::scalar(1.0)),
            _ => None,
        });
        agree(&g, &f);
    }
    let g = deep_forward_graph(4, 8, 6, 3, Activation::Relu).unwrap();
    agree(&g, &feeds(&g, 6, &|_, _| None));
}

#[test]
fn the_up_down_step() {
    let cfg = wake_sleep::WakeSleepConfig::default();
    let g = wake_sleep::wake_sleep_graph(5, &[8, 6, 4], &cfg)
        .unwrap()
        .graph;
    let f = feeds(&g, 7, &|n, s| match n {
        "v" => Some(bits(s, 3, 0.4)),
        "lr" => Some(Tensor::scalar(0.1)),
        "ws.step" => Some(Tensor::from_i64(s, vec![3])),
        _ => None,
    });
    agree(&g, &f);
}
