//! Sinter: a compiled graph IR and kernel generator for neural networks.
//!
//! This facade re-exports the pipeline's stages under one name and holds what the `sinter`
//! command needs beside them (npz I/O, the embedded digits, the demo). The stages live in
//! their own crates, in pipeline order: [`ir`] (graph, text format, verifier) and [`interp`]
//! (the reference interpreter). See ARCHITECTURE.md.

pub mod demo;
pub mod digits;
pub mod npz;
pub mod train;

pub use sinter_autodiff as autodiff;
pub use sinter_interp as interp;
pub use sinter_ir as ir;
