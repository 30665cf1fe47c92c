//! The end-to-end demo run by the README's first command.
//!
//! It parses the LeNet example (`ir-spec/examples/lenet.sir`, embedded), verifies it, turns it
//! into a training graph with autodiff (forward, loss, backward and the Adam update as one
//! graph), trains it on the embedded digits (JIT-compiled unless the options say otherwise)
//! and reports the accuracy on held-out digits.

use crate::train::{TrainOptions, train_digits};
use sinter_ir::{Graph, InputKind, Tensor, rng};
use std::collections::HashMap;

/// The example graph's text.
pub const LENET_SIR: &str = include_str!("../../../ir-spec/examples/lenet.sir");

/// He-normal initial values for every parameter of `g` (biases, rank 1, start at zero).
pub fn init_params(g: &Graph, seed: i64) -> HashMap<String, Tensor> {
    let mut out = HashMap::new();
    for (i, (v, kind)) in g.inputs().enumerate() {
        if kind != InputKind::Param {
            continue;
        }
        let ty = g.ty(v);
        let t = if ty.rank() <= 1 {
            Tensor::full(&ty.shape, 0.0)
        } else {
            // Fan-in: every axis but the output one (conv: C_in*kH*kW; a [K, M] matrix: K).
            let fan_in = if ty.rank() == 2 {
                ty.shape[0]
            } else {
                ty.numel() / ty.shape[0]
            };
            let std = (2.0 / fan_in.max(1) as f32).sqrt();
            let key = rng::key(seed, i as i64);
            Tensor::from_f32(
                &ty.shape,
                (0..ty.numel() as u64)
                    .map(|j| std * rng::normal(key, j))
                    .collect(),
            )
        };
        out.insert(g.value_name(v).to_string(), t);
    }
    out
}

/// Trains the LeNet example on the embedded digits and reports the held-out accuracy.
pub fn run(opts: &TrainOptions) -> Result<String, String> {
    let g = sinter_ir::parse(LENET_SIR).map_err(|e| format!("lenet.sir:{e}"))?;
    let params: usize = g
        .inputs()
        .filter(|(_, k)| *k == InputKind::Param)
        .map(|(v, _)| g.ty(v).numel())
        .sum();
    let mut s = format!(
        "LeNet (ir-spec/examples/lenet.sir): {} nodes, {params} parameters, verified\n\
         training on the embedded UCI digits (1,437 train / 360 held out) with {}, {} epochs, \
         {}\n",
        g.nodes().len(),
        opts.optimizer,
        opts.epochs,
        opts.engine
    );
    let report = train_digits(&g, opts)?;
    s += &report.render();
    Ok(s)
}
