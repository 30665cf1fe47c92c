//! Reverse-mode autodiff as a graph-to-graph transformation, and compiled training graphs.
//!
//! Sinter differentiates graphs, not executions: [`grad`] appends the backward pass to the
//! forward graph as ordinary IR nodes, so forward and backward are verified, optimised and
//! compiled together. On top of that, [`train`] builds one graph for a whole training step
//! (forward, loss, backward, gradient clipping and the optimiser update), whose parameters and
//! optimiser state are inputs and whose updated copies are outputs; a [`Trainer`] runs it step
//! after step on a [`Backend`] (the reference interpreter today, the JIT later).
//!
//! - [`grad`]: the transformation; [`rules`](mod@rules) (private) holds the one gradient table.
//! - [`train`]: training graphs, optimisers, clipping, batch-norm running statistics and the
//!   inference graph.
//! - [`init`]: seeded He / Xavier parameter initialisation.
//! - [`schedule`]: host-side learning-rate schedules (the rate is a graph input).
//! - [`trainer`]: the training loop state, parameters in and out, safetensors files.
//!
//! `ir-spec/autodiff.md` states every op's gradient rule.

mod emit;
pub mod error;
pub mod grad;
pub mod init;
mod rules;
pub mod schedule;
pub mod train;
pub mod trainer;

pub use error::AutodiffError;
pub use grad::{Gradients, grad, grad_name, grad_params, params};
pub use init::{Init, init_params, init_tensor};
pub use schedule::Schedule;
pub use train::{
    BatchNormStats, Clip, Optimizer, TrainConfig, TrainingGraph, inference_graph, training_graph,
};
pub use trainer::{Backend, Interpret, Trainer};
