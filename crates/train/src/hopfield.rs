//! Hopfield networks: Hebbian storage, synchronous and asynchronous recall, the energy
//! that asynchronous recall never raises, and the capacity of about `0.14 N` patterns.
//!
//! **Storage.** `N` binary units `s_i = +-1` store patterns `xi^1 .. xi^P` by the Hebb rule
//! `W = (1/N) sum_mu xi^mu (xi^mu)^T` with the diagonal set to zero: one graph
//! ([`hebb_graph`]), a `gemm` of the patterns with themselves times a constant mask.
//!
//! **Recall.** A unit's field is `h_i = sum_j W_ij s_j`; recall sets `s_i = sign(h_i)` (keeping
//! `s_i` where `h_i = 0`). *Synchronous* recall updates every unit at once (the zoo graph
//! `sinter_models::hopfield`, run until nothing changes); it can end in a two-cycle.
//! *Asynchronous* recall updates one unit per step ([`async_step_graph`]: the unit index is an
//! input, its column of `W` a `gather`, the new state written back through a `one_hot`), in a
//! random order each sweep.
//!
//! **Energy.** `E = -1/2 s^T W s`. If unit `i` flips from `s_i` to `s_i' = sign(h_i)`, then,
//! because `W` is symmetric with a zero diagonal, `E' - E = -(s_i' - s_i) h_i`, and `s_i' - s_i`
//! has the sign of `h_i` (or is 0): the energy never increases. It is bounded below, so
//! asynchronous recall always stops at a fixed point, a local minimum of `E`. The step graph
//! outputs the energy of its new state, and the tests assert that it never rises. (The
//! argument fails for synchronous updates, which is why they can oscillate.)
//!
//! **Capacity.** With `P` random patterns, the field at a stored pattern is the pattern's own
//! `xi_i` plus crosstalk from the other `P - 1`, roughly normal with variance `P / N`. While
//! `alpha = P / N` is small, the crosstalk rarely flips a unit and the patterns are (near)
//! fixed points; Amit, Gutfreund and Sompolinsky (1985) showed that the retrieval states
//! vanish abruptly at `alpha_c ~ 0.138`: above it, recall starting even from a stored pattern
//! drifts to spurious states far from it. [`capacity`] measures the final overlap
//! `m = (1/N) sum_i s_i xi_i` against the load.

use crate::step::{Stepper, f32s, run_once};
use crate::util::{Params, TrainError};
use sinter_data::Dataset;
use sinter_ir::{Builder, Graph, Op, Tensor, TensorType, rng};
use sinter_models::{HopfieldConfig, energy_of, hopfield, sign_keeping};

/// The weight matrix's name, as in the zoo graph.
pub const WEIGHTS: &str = "hopfield.w";

/// The Hebb rule as a graph: input `patterns: f32[P, N]` in +-1, output
/// `hopfield.w = (patterns^T patterns) / N` with a zero diagonal.
pub fn hebb_graph(patterns: usize, units: usize) -> Result<Graph, TrainError> {
    let mut g = Builder::new("hopfield.hebb");
    let x = g.input("patterns", TensorType::f32(&[patterns, units]))?;
    let mut mask = vec![1.0 / units as f32; units * units];
    for i in 0..units {
        mask[i * units + i] = 0.0;
    }
    let mask = g.constant(Tensor::from_f32(&[units, units], mask))?;
    let outer = g.op(crate::util::gemm(true, false), &[x, x])?;
    let w = g.named(WEIGHTS, Op::Mul {}, &[outer, mask])?;
    Ok(g.finish(&[w])?)
}

/// One asynchronous update as a graph: inputs `s: f32[B, N]`, `unit: i64[1]` and
/// `hopfield.w`; outputs `s.next` (unit `unit` set to the sign of its field, every other
/// unit kept) and `energy: f32[B]` of `s.next`.
pub fn async_step_graph(batch: usize, units: usize) -> Result<Graph, TrainError> {
    let mut g = Builder::new("hopfield.async");
    let s = g.input("s", TensorType::f32(&[batch, units]))?;
    let unit = g.input("unit", TensorType::i64(&[1]))?;
    let w = g.input(WEIGHTS, TensorType::f32(&[units, units]))?;
    let col = g.op(Op::Gather { axis: 1 }, &[w, unit])?;
    let h = g.matmul(s, col)?;
    let si = g.op(Op::Gather { axis: 1 }, &[s, unit])?;
    let new = sign_keeping(&mut g, h, si, "s.unit")?;
    let delta = g.sub(new, si)?;
    let hot = g.op(
        Op::OneHot {
            depth: units as i64,
        },
        &[unit],
    )?;
    let change = g.mul(delta, hot)?;
    let next = g.named("s.next", Op::Add {}, &[s, change])?;
    let hn = g.matmul(next, w)?;
    let e = energy_of(&mut g, hn, next, "energy")?;
    Ok(g.finish(&[next, e])?)
}

/// A Hopfield network with stored weights.
#[derive(Clone, Debug)]
pub struct Hopfield {
    /// Units.
    pub units: usize,
    /// `hopfield.w: [N, N]`.
    pub w: Tensor,
}

/// The end of a recall.
#[derive(Clone, Debug)]
pub struct Recall {
    /// The final states, `[B, N]` flattened.
    pub states: Vec<f32>,
    /// The energy of every state after every step (per step, one value per sample).
    pub energies: Vec<Vec<f32>>,
    /// Whether the last sweep (or synchronous step) changed nothing.
    pub converged: bool,
}

/// Stores the patterns (`[P, N]` flattened, +-1) by the Hebb rule, computed by the
/// compiled [`hebb_graph`].
pub fn store(patterns: &[f32], units: usize) -> Result<Hopfield, TrainError> {
    if units == 0 || patterns.is_empty() || !patterns.len().is_multiple_of(units) {
        return Err(TrainError::Config(format!(
            "{} values are not patterns of {units} units",
            patterns.len()
        )));
    }
    let p = patterns.len() / units;
    let g = hebb_graph(p, units)?;
    let feeds = Params::from([(
        "patterns".to_string(),
        Tensor::from_f32(&[p, units], patterns.to_vec()),
    )]);
    let outs = run_once(&g, &feeds)?;
    let w = Tensor::from_f32(&[units, units], f32s(&outs, WEIGHTS)?.to_vec());
    Ok(Hopfield { units, w })
}

impl Hopfield {
    fn batch_of(&self, states: &[f32]) -> Result<usize, TrainError> {
        if states.is_empty() || !states.len().is_multiple_of(self.units) {
            return Err(TrainError::Config(format!(
                "{} values are not states of {} units",
                states.len(),
                self.units
            )));
        }
        Ok(states.len() / self.units)
    }

    /// Synchronous recall from `states` (`[B, N]` flattened): the zoo's
    /// `sinter_models::hopfield` step, compiled, run until no unit changes or `max_steps`.
    /// The energies recorded are those of the state fed to each step.
    pub fn recall_sync(&self, states: &[f32], max_steps: usize) -> Result<Recall, TrainError> {
        let batch = self.batch_of(states)?;
        let g = hopfield(&HopfieldConfig {
            batch,
            units: self.units,
        })?;
        let s0 = Tensor::from_f32(&[batch, self.units], states.to_vec());
        let state = Params::from([("s".to_string(), s0), (WEIGHTS.to_string(), self.w.clone())]);
        let mut st = Stepper::new(&g, state)?;
        let mut energies = Vec::new();
        let mut converged = false;
        for _ in 0..max_steps {
            let before = st.get("s").and_then(Tensor::as_f32).map(<[f32]>::to_vec);
            let outs = st.step(&Params::new())?;
            energies.push(f32s(&outs, "energy")?.to_vec());
            if before.as_deref() == st.get("s").and_then(Tensor::as_f32) {
                converged = true;
                break;
            }
        }
        let states = st.get("s").and_then(Tensor::as_f32).unwrap_or(&[]).to_vec();
        Ok(Recall {
            states,
            energies,
            converged,
        })
    }

    /// Asynchronous recall from `states`: sweeps of `N` single-unit steps
    /// ([`async_step_graph`], compiled once), each sweep visiting the units in a random order
    /// drawn from `(seed, sweep)`, until a sweep changes nothing or `max_sweeps` have run.
    /// Records the energy after every step.
    pub fn recall_async(
        &self,
        states: &[f32],
        max_sweeps: usize,
        seed: i64,
    ) -> Result<Recall, TrainError> {
        let batch = self.batch_of(states)?;
        let g = async_step_graph(batch, self.units)?;
        let s0 = Tensor::from_f32(&[batch, self.units], states.to_vec());
        let state = Params::from([("s".to_string(), s0), (WEIGHTS.to_string(), self.w.clone())]);
        let mut st = Stepper::new(&g, state)?;
        let mut energies = Vec::new();
        let mut converged = false;
        for sweep in 0..max_sweeps {
            let before = st.get("s").and_then(Tensor::as_f32).map(<[f32]>::to_vec);
            for unit in permutation(self.units, seed, sweep) {
                let feeds = Params::from([(
                    "unit".to_string(),
                    Tensor::from_i64(&[1], vec![unit as i64]),
                )]);
                let outs = st.step(&feeds)?;
                energies.push(f32s(&outs, "energy")?.to_vec());
            }
            if before.as_deref() == st.get("s").and_then(Tensor::as_f32) {
                converged = true;
                break;
            }
        }
        let states = st.get("s").and_then(Tensor::as_f32).unwrap_or(&[]).to_vec();
        Ok(Recall {
            states,
            energies,
            converged,
        })
    }
}

/// A random order of `0..n`, a pure function of `(seed, round)`.
fn permutation(n: usize, seed: i64, round: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let key = rng::key(seed, round as i64);
    for i in (1..n).rev() {
        let j = ((rng::uniform(key, i as u64) * (i + 1) as f32) as usize).min(i);
        order.swap(i, j);
    }
    order
}

/// `(1/N) sum_i a_i b_i` for two +-1 vectors: 1 when equal, -1 when opposite.
pub fn overlap(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>() / a.len().max(1) as f32
}

/// Every sample of `data` as +-1: `+1` where the pixel exceeds `threshold`.
pub fn binarise(data: &Dataset, threshold: f32) -> Vec<f32> {
    data.x
        .iter()
        .map(|&v| if v > threshold { 1.0 } else { -1.0 })
        .collect()
}

/// `patterns` (`[P, N]`, +-1) with `flips` units of each, chosen by `(seed, pattern)`, negated.
pub fn corrupt(patterns: &[f32], units: usize, flips: usize, seed: i64) -> Vec<f32> {
    let mut out = patterns.to_vec();
    for (p, row) in out.chunks_exact_mut(units).enumerate() {
        for &i in permutation(units, seed, p).iter().take(flips) {
            row[i] = -row[i];
        }
    }
    out
}

/// `count` random +-1 patterns of `units`, drawn from `seed`.
pub fn random_patterns(count: usize, units: usize, seed: i64) -> Vec<f32> {
    let key = rng::key(seed, 7);
    (0..(count * units) as u64)
        .map(|i| {
            if rng::uniform(key, i) < 0.5 {
                -1.0
            } else {
                1.0
            }
        })
        .collect()
}

/// One load of the capacity experiment.
#[derive(Clone, Debug, PartialEq)]
pub struct CapacityPoint {
    /// Patterns stored.
    pub patterns: usize,
    /// `patterns / units`.
    pub load: f32,
    /// Mean overlap of the recalled state with its pattern.
    pub overlap: f32,
    /// Fraction of patterns recalled with overlap at least 0.95.
    pub recalled: f32,
}

/// The capacity experiment: for each count in `loads`, store that many random patterns of
/// `units` (seeded by `seed` and the count), start asynchronous recall from each pattern with
/// `flips` units flipped, and measure how close recall ends to it.
pub fn capacity(
    units: usize,
    loads: &[usize],
    flips: usize,
    seed: i64,
) -> Result<Vec<CapacityPoint>, TrainError> {
    let mut out = Vec::new();
    for &p in loads {
        let pats = random_patterns(p, units, seed.wrapping_add(p as i64));
        let net = store(&pats, units)?;
        let start = corrupt(&pats, units, flips, seed);
        let r = net.recall_async(&start, 20, seed)?;
        let overlaps: Vec<f32> = r
            .states
            .chunks_exact(units)
            .zip(pats.chunks_exact(units))
            .map(|(a, b)| overlap(a, b))
            .collect();
        out.push(CapacityPoint {
            patterns: p,
            load: p as f32 / units as f32,
            overlap: overlaps.iter().sum::<f32>() / p as f32,
            recalled: overlaps.iter().filter(|&&m| m >= 0.95).count() as f32 / p as f32,
        });
    }
    Ok(out)
}
