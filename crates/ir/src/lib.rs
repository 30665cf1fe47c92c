//! Sinter's typed dataflow IR.
//!
//! This crate is the first stage every other stage depends on: it defines what a graph *is*.
//!
//! - [`ops`]: the op table, one entry per op (name, arity, typed attributes, doc); every other
//!   stage matches exhaustively on [`Op`].
//! - [`types`] and [`tensor`]: dtypes, static shapes, dense host tensors.
//! - [`infer`]: the shape rules, which double as the verifier's per-node check.
//! - [`graph`]: the SSA graph, construction with checking, and [`Graph::verify`].
//! - [`text`]: the `.sir` text format (printer and parser that round-trip exactly).
//! - [`builder`]: the Rust API for writing graphs by hand, with the losses as compositions.
//! - [`winograd`]: the transform matrices that define the `winograd_*` ops.
//! - [`rng`]: the counter-based random numbers that random ops are defined by, so that the
//!   interpreter and generated kernels draw bit-identical values.
//!
//! The normative description is `ir-spec/` at the repository root.

pub mod attr;
pub mod builder;
pub mod composite;
pub mod error;
pub mod graph;
pub mod infer;
pub mod ops;
pub mod rng;
pub mod tensor;
pub mod text;
pub mod types;
pub mod winograd;

pub use attr::{AttrValue, Float};
pub use builder::Builder;
pub use composite::expand_composites;
pub use error::IrError;
pub use graph::{Graph, InputKind, Node, NodeId, NodeKind, Output, Value};
pub use ops::{Category, Op, OpInfo, OpKind};
pub use tensor::{Tensor, TensorData};
pub use text::{ParseError, parse, print};
pub use types::{DType, Shape, TensorType};
