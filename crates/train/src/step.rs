//! A compiled graph run step after step with its state fed back: the loop of the classic
//! learning rules that are not gradient steps (Hopfield recall, Kohonen maps, ART-1).
//!
//! autodiff's `Trainer` runs a step whose only extra output is a loss. The classic rules
//! need more out of a step (the winning unit, the energy, whether the network resonated) and
//! feed more than a learning rate (a neighbourhood width, a unit index), so [`Stepper`]
//! keeps the same convention, `<input>.next` outputs becoming the next step's `<input>`,
//! and hands every other output back to the caller. The update itself is always the graph:
//! the host only feeds data and reads the outputs.

use crate::util::{Params, TrainError};
use sinter_ir::{Graph, Tensor};
use sinter_runtime::{CompileOptions, Compiled};
use std::collections::HashMap;

/// A graph compiled once whose `<name>.next` outputs replace the state input `<name>` after
/// every step; see the [module docs](self).
pub struct Stepper {
    compiled: Compiled,
    state: Params,
}

impl Stepper {
    /// Compiles `graph` with the initial `state` (inputs by name).
    pub fn new(graph: &Graph, state: Params) -> Result<Stepper, TrainError> {
        let compiled = Compiled::new(graph, CompileOptions::default())?;
        Ok(Stepper { compiled, state })
    }

    /// Runs one step on `feeds` (the non-state inputs), moves every `<state>.next` output into
    /// the state and returns the other outputs by name.
    pub fn step(&mut self, feeds: &Params) -> Result<HashMap<String, Tensor>, TrainError> {
        let mut inputs = std::mem::take(&mut self.state);
        let keys: Vec<String> = feeds.keys().cloned().collect();
        inputs.extend(feeds.iter().map(|(k, t)| (k.clone(), t.clone())));
        let result = self.compiled.run(&inputs);
        for k in &keys {
            inputs.remove(k);
        }
        self.state = inputs;
        let mut rest = HashMap::new();
        for (name, t) in result? {
            match name.strip_suffix(".next") {
                Some(base) if self.state.contains_key(base) => {
                    self.state.insert(base.to_string(), t);
                }
                _ => {
                    rest.insert(name, t);
                }
            }
        }
        Ok(rest)
    }

    /// The current value of a state input.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.state.get(name)
    }

    /// Replaces a state input (a new starting state for the next run).
    pub fn set(&mut self, name: &str, t: Tensor) {
        self.state.insert(name.to_string(), t);
    }

    /// The whole state, consumed.
    pub fn into_state(self) -> Params {
        self.state
    }
}

/// The first element of the f32 output `name` of a step.
pub(crate) fn scalar(outs: &HashMap<String, Tensor>, name: &str) -> Result<f32, TrainError> {
    f32s(outs, name)?
        .first()
        .copied()
        .ok_or_else(|| TrainError::Config(format!("`%{name}` is empty")))
}

/// The f32 output `name` of a step.
pub(crate) fn f32s<'a>(
    outs: &'a HashMap<String, Tensor>,
    name: &str,
) -> Result<&'a [f32], TrainError> {
    outs.get(name)
        .and_then(Tensor::as_f32)
        .ok_or_else(|| TrainError::Config(format!("the step gave no f32 `%{name}`")))
}

/// Runs `graph` once on `feeds`, outputs by name: a compiled evaluation.
pub(crate) fn run_once(
    graph: &Graph,
    feeds: &Params,
) -> Result<HashMap<String, Tensor>, TrainError> {
    let c = Compiled::new(graph, CompileOptions::default())?;
    Ok(c.run(feeds)?.into_iter().collect())
}
