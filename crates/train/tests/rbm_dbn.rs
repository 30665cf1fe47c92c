//! RBMs and deep belief networks through the compiled path.
//!
//! The CD-k step graph is checked against a plain host implementation of CD-1 that draws the
//! same samples (the `bernoulli` op is `uniform(key(seed, counter), i) < p`), and against the
//! reference interpreter for CD-2 with momentum and weight decay. On the digits, every RBM's
//! per-epoch mean reconstruction error falls monotonically and the fine-tuned DBN classifies
//! at least 90% of the held-out digits.
//!
//! Tolerance for the JIT against the interpreter or the host: `|a - b| <= 1e-4 * max(|b|,
//! 1e-2 * max|b|) + 1e-6`, as in the zoo's tests plus a floor for exact zeros.

mod common;

use sinter_autodiff::train::next_name;
use sinter_data::digits_split;
use sinter_ir::{Tensor, rng};
use sinter_runtime::{CompileOptions, Compiled};
use sinter_train::rbm::{RECON, STEP, VISIBLE};
use sinter_train::util::flat_batch;
use sinter_train::*;
use std::collections::HashMap;

/// Deterministic uniform numbers in `[lo, hi)`.
fn uniform(n: usize, seed: i64, lo: f32, hi: f32) -> Vec<f32> {
    let key = rng::key(seed, 99);
    (0..n as u64)
        .map(|i| lo + (hi - lo) * rng::uniform(key, i))
        .collect()
}

fn close(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}");
    let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        let tol = 1e-4 * b.abs().max(1e-2 * scale) + 1e-6;
        assert!((a - b).abs() <= tol, "{what}[{i}]: got {a}, want {b}");
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// `sigmoid(a @ w + bias)` for `a: [n, k]`, `w: [k, m]` (or `w^T` when `wt`, `w: [m, k]`).
fn layer(a: &[f32], w: &[f32], bias: &[f32], n: usize, k: usize, wt: bool) -> Vec<f32> {
    let m = bias.len();
    let mut out = vec![0.0; n * m];
    for r in 0..n {
        for c in 0..m {
            let mut s = bias[c];
            for j in 0..k {
                let wv = if wt { w[c * k + j] } else { w[j * m + c] };
                s += a[r * k + j] * wv;
            }
            out[r * m + c] = sigmoid(s);
        }
    }
    out
}

/// `a^T @ b` for `a: [n, p]`, `b: [n, q]`.
fn outer(a: &[f32], b: &[f32], n: usize, p: usize, q: usize) -> Vec<f32> {
    let mut out = vec![0.0; p * q];
    for r in 0..n {
        for i in 0..p {
            for j in 0..q {
                out[i * q + j] += a[r * p + i] * b[r * q + j];
            }
        }
    }
    out
}

fn col_mean(a: &[f32], n: usize, p: usize) -> Vec<f32> {
    (0..p)
        .map(|j| (0..n).map(|r| a[r * p + j]).sum::<f32>() / n as f32)
        .collect()
}

struct Case {
    n: usize,
    v: usize,
    h: usize,
    feeds: HashMap<String, Tensor>,
}

/// A random RBM `r` with a batch, its step counter at `step`.
fn case(cfg: &CdConfig, step: i64) -> (Case, sinter_autodiff::TrainingGraph) {
    let (n, v, h) = (5, 7, 4);
    let tg = cd_graph("r", n, v, h, cfg).unwrap();
    let mut feeds = tg.initial_state();
    feeds.insert(
        VISIBLE.into(),
        Tensor::from_f32(&[n, v], uniform(n * v, 1, 0.0, 1.0)),
    );
    feeds.insert(STEP.into(), Tensor::from_i64(&[], vec![step]));
    feeds.insert("lr".into(), Tensor::scalar(0.5));
    feeds.insert(
        "r.w".into(),
        Tensor::from_f32(&[v, h], uniform(v * h, 2, -1.0, 1.0)),
    );
    feeds.insert(
        "r.b".into(),
        Tensor::from_f32(&[h], uniform(h, 3, -0.5, 0.5)),
    );
    feeds.insert(
        "r.b_v".into(),
        Tensor::from_f32(&[v], uniform(v, 4, -0.5, 0.5)),
    );
    // Non-zero momentum buffers, so that the momentum term shows.
    for (name, t) in tg.initial_state() {
        let len = t.numel();
        let vals = uniform(len, 5 + len as i64, -0.1, 0.1);
        feeds.insert(name, Tensor::from_f32(t.shape(), vals));
    }
    (Case { n, v, h, feeds }, tg)
}

fn get<'a>(outs: &'a [(String, Tensor)], name: &str) -> &'a [f32] {
    let t = outs.iter().find(|(n, _)| n == name);
    t.unwrap_or_else(|| panic!("no output {name}"))
        .1
        .as_f32()
        .unwrap()
}

/// CD-1 with momentum and weight decay, compiled, against the same update computed on the
/// host with the same random draws.
#[test]
fn cd1_step_matches_a_host_implementation() {
    let cfg = CdConfig {
        k: 1,
        momentum: 0.5,
        weight_decay: 0.01,
        seed: 3,
        ..CdConfig::default()
    };
    let step = 11;
    let (c, tg) = case(&cfg, step);
    let (n, v, h) = (c.n, c.v, c.h);
    let f = |name: &str| c.feeds[name].as_f32().unwrap().to_vec();
    let (v0, w, b, b_v) = (f(VISIBLE), f("r.w"), f("r.b"), f("r.b_v"));

    let ph0 = layer(&v0, &w, &b, n, v, false);
    // `bernoulli {seed}` with counter `step`: CD-1 samples once, before step 1.
    let key = rng::key(sinter_train::rbm::gibbs_seed(cfg.seed, 0), step);
    let h0: Vec<f32> = (0..ph0.len())
        .map(|i| f32::from(u8::from(rng::uniform(key, i as u64) < ph0[i])))
        .collect();
    let v1 = layer(&h0, &w, &b_v, n, h, true);
    let ph1 = layer(&v1, &w, &b, n, v, false);
    let (pos, neg) = (outer(&v0, &ph0, n, v, h), outer(&v1, &ph1, n, v, h));
    let dw: Vec<f32> = (0..v * h)
        .map(|i| (neg[i] - pos[i]) / n as f32 + cfg.weight_decay * w[i])
        .collect();
    let diff = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x - y).collect::<Vec<_>>();
    let db = col_mean(&diff(&ph1, &ph0), n, h);
    let db_v = col_mean(&diff(&v1, &v0), n, v);
    let recon = diff(&v0, &v1).iter().map(|d| d * d).sum::<f32>() / (n * v) as f32;

    let compiled = Compiled::new(&tg.graph, CompileOptions::checked()).unwrap();
    let outs = compiled.run(&c.feeds).unwrap();
    assert_eq!(outs[0].0, RECON);
    close("recon", get(&outs, RECON), &[recon]);
    // Some hidden units fired and some did not: the sample is not degenerate.
    assert!(h0.contains(&0.0) && h0.contains(&1.0), "{h0:?}");
    for (p, d) in [("r.w", &dw), ("r.b", &db), ("r.b_v", &db_v)] {
        let buf = f(&format!("opt.{p}.buf"));
        let nb: Vec<f32> = buf.iter().zip(d.iter()).map(|(m, g)| 0.5 * m + g).collect();
        let next: Vec<f32> = f(p).iter().zip(&nb).map(|(x, m)| x - 0.5 * m).collect();
        close(
            &format!("opt.{p}.buf.next"),
            get(&outs, &format!("opt.{p}.buf.next")),
            &nb,
        );
        close(&next_name(p), get(&outs, &next_name(p)), &next);
    }
    // A different counter draws different samples.
    let mut other = c.feeds.clone();
    other.insert(STEP.into(), Tensor::from_i64(&[], vec![step + 1]));
    let outs2 = compiled.run(&other).unwrap();
    assert_ne!(get(&outs, "r.w.next"), get(&outs2, "r.w.next"));
}

/// CD-2 (two bernoulli draws in the chain) on the JIT against the reference interpreter.
#[test]
fn cd2_step_matches_the_interpreter() {
    let cfg = CdConfig {
        k: 2,
        momentum: 0.9,
        weight_decay: 1e-3,
        seed: 8,
        ..CdConfig::default()
    };
    let (c, tg) = case(&cfg, 4);
    let want = sinter_interp::run(&tg.graph, &c.feeds).unwrap();
    let got = Compiled::new(&tg.graph, CompileOptions::checked())
        .unwrap()
        .run(&c.feeds)
        .unwrap();
    assert_eq!(got.len(), 1 + 2 * 3);
    for ((n, a), (m, b)) in got.iter().zip(&want) {
        assert_eq!(n, m);
        close(n, a.as_f32().unwrap(), b.as_f32().unwrap());
    }
    let names: Vec<&str> = tg.feedback.iter().map(|(o, _)| o.as_str()).collect();
    assert_eq!(
        names,
        [
            "r.w.next",
            "r.b.next",
            "r.b_v.next",
            "opt.r.w.buf.next",
            "opt.r.b.buf.next",
            "opt.r.b_v.buf.next"
        ]
    );
}

#[test]
fn bad_configs_are_errors() {
    let k0 = CdConfig {
        k: 0,
        ..CdConfig::default()
    };
    assert!(cd_graph("r", 2, 3, 4, &k0).is_err());
    let mu = CdConfig {
        momentum: 1.0,
        ..CdConfig::default()
    };
    assert!(cd_graph("r", 2, 3, 4, &mu).is_err());
    let (train, test) = digits_split().unwrap();
    let big = DbnTrainConfig {
        cd: CdConfig {
            batch: train.len() + 1,
            ..CdConfig::default()
        },
        ..DbnTrainConfig::default()
    };
    let e = train_dbn(&train, &test, &big, &mut |_| {}).unwrap_err();
    assert!(e.to_string().contains("batch size"), "{e}");
}

/// Greedy pretraining then fine-tuning on the digits, with the default configuration.
#[test]
fn dbn_pretrains_monotonically_and_classifies_digits() {
    let (train, test) = digits_split().unwrap();
    let cfg = DbnTrainConfig::default();
    let mut seen = Vec::new();
    let t0 = std::time::Instant::now();
    let report = train_dbn(&train, &test, &cfg, &mut |s| seen.push(s.clone())).unwrap();
    eprintln!("DBN in {:.2} s", t0.elapsed().as_secs_f64());
    common::check_stack_report(
        &report,
        &seen,
        "rbm",
        (cfg.hidden.len(), cfg.cd.epochs, cfg.fine_tune.epochs),
    );
    // The fine-tuned weights moved away from the pretrained ones but kept their names.
    assert!(report.model.contains_key("rbm1.w") && report.model.contains_key("logits.w"));
}

/// Training is a pure function of the configuration: the same seed gives the same weights
/// (the samples are counter-based), another seed other weights.
#[test]
fn rbm_training_is_reproducible() {
    let (train, _) = digits_split().unwrap();
    let cfg = CdConfig {
        epochs: 1,
        k: 2,
        ..CdConfig::default()
    };
    let run = |cfg: &CdConfig| train_rbm("r", &train, 16, cfg, &mut |_| {}).unwrap();
    let (a, sa) = run(&cfg);
    let (b, sb) = run(&cfg);
    assert_eq!(a.params, b.params);
    assert_eq!(sa[0].loss, sb[0].loss);
    let (c, _) = run(&CdConfig { seed: 1, ..cfg });
    assert_ne!(a.params["r.w"], c.params["r.w"]);
}

/// A trained RBM reconstructs held-out digits through the zoo's `rbm` graph (its parameters
/// feed it by name) better than its untrained start, and its hidden probabilities are what
/// the zoo graph computes.
#[test]
fn a_trained_rbm_feeds_the_zoo_graph() {
    let (train, test) = digits_split().unwrap();
    let cfg = CdConfig {
        epochs: 2,
        ..CdConfig::default()
    };
    let untrained = CdConfig {
        epochs: 0,
        ..cfg.clone()
    };
    let g = sinter_models::rbm(&sinter_models::RbmConfig {
        batch: test.len(),
        visible: 64,
        hidden: 24,
    })
    .unwrap();
    let c = Compiled::new(&g, CompileOptions::default()).unwrap();
    let all: Vec<usize> = (0..test.len()).collect();
    let x = flat_batch(&test, &all).0;
    let mut errs = Vec::new();
    for cd in [&untrained, &cfg] {
        let (rbm, stats) = train_rbm("rbm", &train, 24, cd, &mut |_| {}).unwrap();
        assert_eq!(stats.len(), cd.epochs);
        let mut feeds = rbm.params.clone();
        feeds.insert("x".into(), x.clone());
        let outs = c.run(&feeds).unwrap();
        errs.push(get(&outs, "loss")[0]);
        let h = rbm.hidden_probs(&test).unwrap();
        close("hidden", &h.x, get(&outs, "hidden"));
        assert_eq!(h.labels, test.labels);
        // The training set takes three compiled chunks; its last 360 samples, one.
        let whole = rbm.hidden_probs(&train).unwrap();
        let tail: Vec<usize> = (train.len() - 360..train.len()).collect();
        let part = rbm.hidden_probs(&train.subset(&tail)).unwrap();
        assert_eq!(whole.x.len(), train.len() * 24);
        close("chunked", &whole.x[(train.len() - 360) * 24..], &part.x);
    }
    eprintln!("held-out mean-field reconstruction error: untrained, trained {errs:?}");
    assert!(errs[1] < 0.5 * errs[0], "{errs:?}");
}
