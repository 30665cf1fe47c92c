//! Reverse-mode autodiff as a graph-to-graph transformation, and compiled training graphs.
//!
//! Sinter differentiates graphs, not executions: [`grad()`] appends the backward pass to the
//! forward graph as ordinary IR nodes, so forward and backward are verified, optimised and
//! compiled together. On top of that, [`train`] builds one graph for a whole training step
//! (forward, loss, backward, gradient clipping and the optimiser update), whose parameters and
//! optimiser state are inputs and whose updated copies are outputs; a [`Trainer`] runs it step
//! after step on a [`Backend`] (the reference interpreter through [`Interpret`], or compiled
//! code through `sinter_runtime::Jit`).
//!
//! - [`mod@grad`]: the transformation; the private module `rules` holds the one gradient
//!   table (an exhaustive `match` over [`sinter_ir::Op`]).
//! - [`train`]: training graphs, optimisers, clipping, batch-norm running statistics and the
//!   inference graph.
//! - [`init`]: seeded He / Xavier parameter initialisation.
//! - [`schedule`]: host-side learning-rate schedules (the rate is a graph input).
//! - [`trainer`]: the training loop state, parameters in and out, safetensors files.
//!
//! `ir-spec/autodiff.md` states every op's gradient rule.
//!
//! ```
//! use sinter_autodiff::grad_params;
//! use sinter_ir::{Builder, TensorType};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut b = Builder::new("linear");
//! let x = b.input("x", TensorType::f32(&[4, 3]))?;
//! let t = b.input("t", TensorType::f32(&[4, 1]))?;
//! let w = b.param("w", TensorType::f32(&[3, 1]))?;
//! let y = b.matmul(x, w)?;
//! let loss = b.mse(y, t)?;
//! let g = b.finish(&[loss])?;
//! let gr = grad_params(&g, loss)?;
//! // The forward graph plus the backward pass; the gradient is the output `%grad.w`.
//! assert_eq!(gr.graph.value_name(gr.grads[0]), "grad.w");
//! assert_eq!(gr.graph.ty(gr.grads[0]), g.ty(w));
//! # Ok(())
//! # }
//! ```

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
    BatchNormStats, Clip, Optimizer, RNG_STEP, TrainConfig, TrainingGraph, inference_graph,
    training_graph,
};
pub use trainer::{Backend, Interpret, Trainer, load_tensors, save_tensors};
