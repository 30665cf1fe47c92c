//! The end-to-end demo run by the README's first command.
//!
//! Today it parses the LeNet example (`ir-spec/examples/lenet.sir`, embedded), verifies it,
//! initialises its parameters (He-normal, seeded), and runs one batch of the embedded digits
//! through the reference interpreter, reporting the loss and predictions. The weights are
//! untrained, so accuracy is at chance: training arrives with the autodiff and model-zoo work,
//! and the demo will grow with it.

use crate::digits;
use sinter_ir::{Graph, InputKind, Tensor, rng};
use std::collections::HashMap;
use std::fmt::Write;
use std::time::Instant;

/// The example graph's text.
pub const LENET_SIR: &str = include_str!("../../../ir-spec/examples/lenet.sir");

/// What the demo computed.
#[derive(Debug)]
pub struct DemoReport {
    /// Nodes in the graph.
    pub nodes: usize,
    /// Trainable parameter elements.
    pub param_elements: usize,
    /// The mean cross-entropy of the batch.
    pub loss: f32,
    /// `(label, predicted, probability of the prediction)` per image.
    pub predictions: Vec<(u8, usize, f32)>,
    /// Milliseconds the interpreter took.
    pub millis: f64,
}

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

/// Runs the demo on the first batch of the embedded digits.
pub fn run(seed: i64) -> Result<DemoReport, String> {
    let g = sinter_ir::parse(LENET_SIR).map_err(|e| format!("lenet.sir:{e}"))?;
    let batch = g.ty(g.find("x").ok_or("lenet.sir has no %x")?).shape[0];
    let data = digits::load()?;
    let (x, labels) = digits::batch(&data[..batch]);
    let mut inputs = init_params(&g, seed);
    let param_elements = inputs.values().map(Tensor::numel).sum();
    inputs.insert("x".into(), x);
    inputs.insert("labels".into(), labels);
    let start = Instant::now();
    let outs = sinter_interp::run(&g, &inputs).map_err(|e| e.to_string())?;
    let millis = start.elapsed().as_secs_f64() * 1e3;
    let get = |name: &str| {
        outs.iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t)
            .ok_or(format!("no output {name}"))
    };
    let probs = get("probs")?.as_f32().ok_or("probs is not f32")?;
    let loss = get("loss")?.as_f32().ok_or("loss is not f32")?[0];
    let predictions = data[..batch]
        .iter()
        .zip(probs.chunks(10))
        .map(|(d, p)| {
            let (arg, best) = p
                .iter()
                .enumerate()
                .fold((0, f32::MIN), |a, (i, &v)| if v > a.1 { (i, v) } else { a });
            (d.label, arg, best)
        })
        .collect();
    Ok(DemoReport {
        nodes: g.nodes().len(),
        param_elements,
        loss,
        predictions,
        millis,
    })
}

impl DemoReport {
    /// A human-readable summary.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "LeNet (ir-spec/examples/lenet.sir): {} nodes, {} parameters, verified",
            self.nodes, self.param_elements
        );
        let _ = writeln!(
            s,
            "reference interpreter, one batch of {} digits: {:.2} ms",
            self.predictions.len(),
            self.millis
        );
        let _ = writeln!(
            s,
            "cross-entropy loss {:.4} (untrained: ln 10 = 2.3026 is chance)",
            self.loss
        );
        let correct = self
            .predictions
            .iter()
            .filter(|(l, p, _)| *l as usize == *p)
            .count();
        let _ = writeln!(s, "label  predicted  p");
        for (l, p, q) in &self.predictions {
            let _ = writeln!(s, "{l:>5}  {p:>9}  {q:.3}");
        }
        let _ = writeln!(
            s,
            "{correct}/{} correct with untrained weights; training comes with autodiff (issue 5) and the model zoo (issue 7).",
            self.predictions.len()
        );
        s
    }
}
