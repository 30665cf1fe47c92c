//! Helpers shared by the interpreter's integration tests: running one op with inferred output
//! types, tolerant comparisons, and a tiny deterministic random source for test data.

#![allow(dead_code)]

use sinter_ir::infer::infer;
use sinter_ir::{Op, Tensor, TensorType};

/// Runs `op` on `inputs`, with output types from shape inference.
pub fn try_eval(op: &Op, inputs: &[&Tensor]) -> Result<Vec<Tensor>, String> {
    let tys: Vec<TensorType> = inputs.iter().map(|t| t.ty()).collect();
    let refs: Vec<&TensorType> = tys.iter().collect();
    let outs = infer(op, &refs)?;
    sinter_interp::eval_op(op, inputs, &outs)
}

/// Runs `op` and returns all outputs; panics with the message on error.
pub fn eval(op: Op, inputs: &[&Tensor]) -> Vec<Tensor> {
    try_eval(&op, inputs).unwrap_or_else(|e| panic!("{op:?}: {e}"))
}

/// Runs a single-output `op`.
pub fn eval1(op: Op, inputs: &[&Tensor]) -> Tensor {
    let mut outs = eval(op, inputs);
    assert_eq!(outs.len(), 1);
    outs.remove(0)
}

/// An f32 tensor.
pub fn f(shape: &[usize], data: &[f32]) -> Tensor {
    Tensor::from_f32(shape, data.to_vec())
}

/// An i64 tensor.
pub fn i(shape: &[usize], data: &[i64]) -> Tensor {
    Tensor::from_i64(shape, data.to_vec())
}

/// A bool tensor.
pub fn b(shape: &[usize], data: &[bool]) -> Tensor {
    Tensor::from_bool(shape, data.to_vec())
}

/// `0, 1, 2, ...` as f32 in `shape`.
pub fn arange(shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    Tensor::from_f32(shape, (0..n).map(|v| v as f32).collect())
}

/// Equal, both NaN, or within `tol` relative to `1 + |want|`.
pub fn close(got: f32, want: f32, tol: f32) -> bool {
    (got.is_nan() && want.is_nan()) || got == want || (got - want).abs() <= tol * (1.0 + want.abs())
}

/// Asserts `got` is an f32 tensor of `shape` whose elements are close to `want`.
#[track_caller]
pub fn assert_f32(got: &Tensor, shape: &[usize], want: &[f32]) {
    assert_eq!(got.shape(), shape, "shape");
    let v = got
        .as_f32()
        .unwrap_or_else(|| panic!("expected f32, got {}", got.ty()));
    assert_eq!(v.len(), want.len());
    for (k, (&g, &w)) in v.iter().zip(want).enumerate() {
        assert!(
            close(g, w, 1e-5),
            "element {k}: got {g}, want {w}\n got: {v:?}\nwant: {want:?}"
        );
    }
}

/// A tiny xorshift64* generator for reproducible test data.
pub struct XorShift(pub u64);

impl XorShift {
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `[-1, 1)`.
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    /// An f32 tensor of `shape` with elements in `[-1, 1)`.
    pub fn tensor(&mut self, shape: &[usize]) -> Tensor {
        let n: usize = shape.iter().product();
        Tensor::from_f32(shape, (0..n).map(|_| self.unit()).collect())
    }
}
