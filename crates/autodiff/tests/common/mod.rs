//! The gradient-check harness shared by the test files.
//!
//! Method: a graph's outputs `y_k` are projected to a scalar `L = sum_k sum(r_k * y_k)` with
//! fixed random constants `r_k`, so every output element gets a distinct, non-trivial
//! gradient. The analytic gradient is the backward graph from [`sinter_autodiff::grad`],
//! run by the interpreter (in f32). The numerical gradient is the fourth-order central
//! difference `(8 (L(+h) - L(-h)) - (L(+2h) - L(-2h))) / 12h` of the forward graph run by the
//! interpreter (in f32), with the projection summed on the host in f64 so that the only
//! rounding is the op's own f32 rounding. Elements agree when
//! `|analytic - numeric| <= ATOL + RTOL * |numeric|` (constants below). Inputs are drawn away
//! from kinks (|x| >= 0.2, maxima at least 0.05 apart), further than the stencil's reach.

#![allow(dead_code)]

use sinter_autodiff::{grad, params};
use sinter_ir::{Builder, Graph, InputKind, Tensor, TensorType, Value, rng};
use std::collections::HashMap;

/// Finite-difference step.
pub const H: f32 = 5e-3;
/// Absolute tolerance.
pub const ATOL: f64 = 2e-3;
/// Relative tolerance.
pub const RTOL: f64 = 1e-2;

/// A deterministic stream of random numbers for test data.
pub struct Rand {
    key: u64,
    i: u64,
}

impl Rand {
    pub fn new(seed: i64) -> Rand {
        Rand {
            key: rng::key(seed, 12345),
            i: 0,
        }
    }
    /// Uniform in `[0, 1)`.
    pub fn u(&mut self) -> f32 {
        self.i += 1;
        rng::uniform(self.key, self.i)
    }
    /// Uniform in `[lo, hi)`.
    pub fn range(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.u()
    }
    /// An integer in `[lo, hi]`.
    pub fn int(&mut self, lo: usize, hi: usize) -> usize {
        (lo + (self.u() * (hi - lo + 1) as f32) as usize).min(hi)
    }
    /// A value with magnitude in `[0.2, 1)` and a random sign: away from 0, the kink of
    /// relu, abs, leaky_relu and prelu.
    pub fn signed(&mut self) -> f32 {
        let m = self.range(0.2, 1.0);
        if self.u() < 0.5 { -m } else { m }
    }
    /// A tensor of `signed` values.
    pub fn tensor(&mut self, shape: &[usize]) -> Tensor {
        let n = shape.iter().product();
        Tensor::from_f32(shape, (0..n).map(|_| self.signed()).collect())
    }
    /// A tensor uniform in `[lo, hi)`.
    pub fn tensor_in(&mut self, shape: &[usize], lo: f32, hi: f32) -> Tensor {
        let n = shape.iter().product();
        Tensor::from_f32(shape, (0..n).map(|_| self.range(lo, hi)).collect())
    }
    /// Distinct values 0.1 apart in a random order (so maxima are unique and separated).
    pub fn distinct(&mut self, shape: &[usize]) -> Tensor {
        let n: usize = shape.iter().product();
        let mut v: Vec<f32> = (0..n).map(|i| (i as f32 - n as f32 / 2.0) * 0.1).collect();
        for i in (1..n).rev() {
            let j = self.int(0, i);
            v.swap(i, j);
        }
        Tensor::from_f32(shape, v)
    }
    /// A random shape of rank `rank` with extents in `1..=max`.
    pub fn shape(&mut self, rank: usize, max: usize) -> Vec<usize> {
        (0..rank).map(|_| self.int(1, max)).collect()
    }
}

fn run(g: &Graph, feeds: &HashMap<String, Tensor>) -> Vec<(String, Tensor)> {
    sinter_interp::run(g, feeds).unwrap_or_else(|e| panic!("running @{}: {e}\n{g}", g.name()))
}

/// A scalar objective of a graph's outputs, computed on the host.
pub type Objective<'a> = dyn FnMut(&[(String, Tensor)]) -> f64 + 'a;

/// The result of a check: which elements disagreed.
pub struct Report {
    pub checked: usize,
    /// Elements that matched only a one-sided difference (a kink nearby).
    pub one_sided: usize,
    pub failures: Vec<String>,
}

/// Builds a graph with `build` (which declares its inputs: `param`s are differentiated and
/// may be left out of `feeds`, getting `signed` values), projects its returned f32 outputs to
/// a scalar and gradient-checks every parameter. `sample` limits the elements checked per
/// parameter (None: all).
pub fn check(
    seed: i64,
    build: impl FnOnce(&mut Builder, &mut Rand) -> Vec<Value>,
    mut feeds: HashMap<String, Tensor>,
) -> Graph {
    let mut r = Rand::new(seed);
    let mut b = Builder::new("case");
    let outs = build(&mut b, &mut r);
    let mut projections = Vec::new();
    let mut terms = Vec::new();
    for &y in &outs {
        let shape = b.shape(y).to_vec();
        let rt = r.tensor_in(&shape, -1.0, 1.0);
        let rc = b.constant(rt.clone()).unwrap();
        let p = b.mul(y, rc).unwrap();
        terms.push(b.reduce_sum(p, &[], false).unwrap());
        projections.push(rt);
    }
    let mut loss = terms[0];
    for &t in &terms[1..] {
        loss = b.add(loss, t).unwrap();
    }
    let mut all = vec![loss];
    all.extend(outs.iter().copied().filter(|v| *v != loss));
    let fwd = b.finish(&all).unwrap();
    for (v, kind) in fwd.inputs() {
        let name = fwd.value_name(v).to_string();
        if kind == InputKind::Param && !feeds.contains_key(&name) {
            feeds.insert(name, r.tensor(&fwd.ty(v).shape));
        }
    }
    let rep = check_graph(&fwd, loss, &feeds, None, &mut |outs: &[(
        String,
        Tensor,
    )]| {
        let mut l = 0.0f64;
        for (k, p) in projections.iter().enumerate() {
            let y = outs[1 + k].1.as_f32().unwrap();
            for (a, b) in y.iter().zip(p.as_f32().unwrap()) {
                l += *a as f64 * *b as f64;
            }
        }
        l
    });
    assert!(rep.checked > 0, "nothing was checked");
    assert!(
        rep.failures.is_empty(),
        "{} of {} gradient elements disagree:\n{}\n{}",
        rep.failures.len(),
        rep.checked,
        rep.failures.join("\n"),
        fwd
    );
    fwd
}

/// Gradient-checks every parameter of `fwd` against the scalar `objective` of its outputs
/// (computed on the host), at `sample` random elements per parameter (all when `None`).
pub fn check_graph(
    fwd: &Graph,
    loss: Value,
    feeds: &HashMap<String, Tensor>,
    sample: Option<(usize, i64)>,
    objective: &mut Objective<'_>,
) -> Report {
    check_graph_with(fwd, loss, feeds, sample, objective, H, (ATOL, RTOL), false)
}

/// [`check_graph`] with an explicit step and tolerances `(atol, rtol)`; with `kinks`, an
/// element that fails the central difference may match a one-sided one instead (for
/// networks with relu and max pooling, where some perturbation crosses a kink).
#[allow(clippy::too_many_arguments)]
pub fn check_graph_with(
    fwd: &Graph,
    loss: Value,
    feeds: &HashMap<String, Tensor>,
    sample: Option<(usize, i64)>,
    objective: &mut Objective<'_>,
    h: f32,
    (atol, rtol): (f64, f64),
    kinks: bool,
) -> Report {
    let ps = params(fwd);
    let gr = grad(fwd, loss, &ps).unwrap_or_else(|e| panic!("grad: {e}\n{fwd}"));
    gr.graph.verify().unwrap();
    let outs = run(&gr.graph, feeds);
    let by_name: HashMap<String, Tensor> = outs.into_iter().collect();
    let mut failures = Vec::new();
    let mut checked = 0;
    let mut one_sided = 0;
    let mut r = Rand::new(sample.map_or(0, |s| s.1));
    for &p in &ps {
        let name = fwd.value_name(p).to_string();
        let analytic = by_name[&format!("grad.{name}")].as_f32().unwrap().to_vec();
        let base = feeds[&name].clone();
        let n = base.numel();
        let elems: Vec<usize> = match sample {
            Some((k, _)) if k < n => (0..k).map(|_| r.int(0, n - 1)).collect(),
            _ => (0..n).collect(),
        };
        for i in elems {
            let mut at = |delta: f32| {
                let mut v = base.as_f32().unwrap().to_vec();
                v[i] += delta;
                let mut f = feeds.clone();
                f.insert(name.clone(), Tensor::from_f32(base.shape(), v));
                objective(&run(fwd, &f))
            };
            let hd = h as f64;
            let (p1, m1, p2, m2) = (at(h), at(-h), at(2.0 * h), at(-2.0 * h));
            let numeric = (8.0 * (p1 - m1) - (p2 - m2)) / (12.0 * hd);
            let a = analytic[i] as f64;
            let close = |n: f64| (a - n).abs() <= atol + rtol * n.abs();
            checked += 1;
            let mut ok = close(numeric) && a.is_finite();
            if !ok && kinks {
                // A kink within 2h of x spoils the central difference; the one-sided
                // second-order difference on the side without it still holds.
                let f0 = at(0.0);
                let right = (-3.0 * f0 + 4.0 * p1 - p2) / (2.0 * hd);
                let left = (3.0 * f0 - 4.0 * m1 + m2) / (2.0 * hd);
                ok = a.is_finite() && (close(right) || close(left));
                if ok {
                    one_sided += 1;
                }
            }
            if !ok {
                failures.push(format!(
                    "  %{name}[{i}]: analytic {a:.6} numeric {numeric:.6}"
                ));
            }
        }
    }
    Report {
        checked,
        one_sided,
        failures,
    }
}

/// Feeds from `(name, tensor)` pairs.
pub fn feeds(list: Vec<(&str, Tensor)>) -> HashMap<String, Tensor> {
    list.into_iter().map(|(n, t)| (n.to_string(), t)).collect()
}

/// `f32` parameter of a shape.
pub fn param(b: &mut Builder, name: &str, shape: &[usize]) -> Value {
    b.param(name, TensorType::f32(shape)).unwrap()
}
