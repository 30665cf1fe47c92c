//! Sinter: a compiled graph IR and kernel generator for neural networks.
//!
//! This facade re-exports the pipeline's stages under one name and holds what the `sinter`
//! command needs beside them (npz I/O, the training loop, the demo). The stages live in their
//! own crates: [`ir`] (graph, text format, verifier), [`interp`] (the reference interpreter),
//! [`autodiff`], [`data`] (data sets and the prefetching pipeline), [`models`] (the zoo) and
//! [`procedures`] (contrastive divergence, layer-wise pretraining, adversarial training). See
//! ARCHITECTURE.md.

pub mod demo;
pub mod npz;
pub mod plot;
pub mod recipes;
pub mod train;

pub use sinter_autodiff as autodiff;
pub use sinter_data as data;
pub use sinter_interp as interp;
pub use sinter_ir as ir;
pub use sinter_models as models;
pub use sinter_train as procedures;
