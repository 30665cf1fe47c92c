//! Shared helpers of the differential tests: deterministic inputs and the JIT-vs-interpreter
//! comparison.

#![allow(dead_code)]

use sinter_ir::{DType, Graph, Tensor, TensorData, TensorType};
use sinter_runtime::{CompileOptions, Compiled};
use std::collections::HashMap;

/// A small deterministic generator (SplitMix64), so failures reproduce.
pub struct Gen(pub u64);

impl Gen {
    /// Next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        sinter_ir::rng::mix64(self.0)
    }
    /// Uniform in `[lo, hi)`.
    pub fn f32(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * ((self.next() >> 40) as f32 / 16_777_216.0)
    }
    /// A tensor of `ty`: f32 in [-2, 2), i64 in [-3, 3), bools.
    pub fn tensor(&mut self, ty: &TensorType) -> Tensor {
        let n = ty.numel();
        let data = match ty.dtype {
            DType::F32 => TensorData::F32((0..n).map(|_| self.f32(-2.0, 2.0)).collect()),
            DType::I64 => TensorData::I64((0..n).map(|_| (self.next() % 6) as i64 - 3).collect()),
            DType::Bool => TensorData::Bool((0..n).map(|_| self.next() & 1 == 1).collect()),
        };
        Tensor::new(&ty.shape, data).unwrap()
    }
}

/// Random inputs for every graph input.
pub fn inputs_for(g: &Graph, seed: u64) -> HashMap<String, Tensor> {
    let mut rng = Gen(seed);
    g.inputs()
        .map(|(v, _)| (g.value_name(v).to_string(), rng.tensor(g.ty(v))))
        .collect()
}

fn close(a: f32, b: f32, tol: f32) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= tol * (1.0 + a.abs().max(b.abs()))
}

/// How close two f32 tensors must be.
#[derive(Clone, Copy, Debug)]
pub enum Tol {
    /// Each element within this much of itself: `|a - b| <= tol * (1 + max(|a|, |b|))`.
    Elem(f32),
    /// Each element within this much of the tensor's magnitude:
    /// `|a - b| <= tol * max(1, max |want|)`. For algorithms whose rounding error scales
    /// with the whole output rather than each element (Winograd convolution).
    Scaled(f32),
}

impl From<f32> for Tol {
    fn from(t: f32) -> Tol {
        Tol::Elem(t)
    }
}

/// Compares two tensors; `tol` is relative for f32 (see [`Tol`]).
pub fn assert_same(what: &str, want: &Tensor, got: &Tensor, tol: impl Into<Tol>) {
    assert_eq!(want.ty(), got.ty(), "{what}: types differ");
    let tol = tol.into();
    match (want.data(), got.data()) {
        (TensorData::F32(a), TensorData::F32(b)) => {
            let scale = a.iter().fold(1.0f32, |m, v| m.max(v.abs()));
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                let ok = match tol {
                    Tol::Elem(t) => close(*x, *y, t),
                    Tol::Scaled(t) => (x.is_nan() && y.is_nan()) || (x - y).abs() <= t * scale,
                };
                assert!(ok, "{what}: element {i}: interpreter {x}, JIT {y}");
            }
        }
        (a, b) => assert_eq!(a, b, "{what}"),
    }
}

/// Runs `g` on the interpreter and through the JIT with `opts` and compares every output.
pub fn check(
    g: &Graph,
    inputs: &HashMap<String, Tensor>,
    opts: CompileOptions,
    tol: impl Into<Tol>,
) {
    let tol = tol.into();
    let want = sinter_interp::run(g, inputs);
    let compiled = Compiled::new(g, opts).unwrap_or_else(|e| panic!("{}: compile: {e}", g.name()));
    let got = compiled.run(inputs);
    match (want, got) {
        (Ok(want), Ok(got)) => {
            assert_eq!(want.len(), got.len());
            for ((n, w), (m, r)) in want.iter().zip(&got) {
                assert_eq!(n, m);
                assert_same(&format!("@{} %{n}", g.name()), w, r, tol);
            }
        }
        (w, r) => panic!("@{}: interpreter {w:?}, JIT {r:?}", g.name()),
    }
}
