//! The `.sir` text format: printer and parser. See `ir-spec/grammar.md`.
//!
//! ```text
//! graph @tiny {
//!   input %x: f32[2,3]
//!   const %two: f32[] = 2.0
//!   %y: f32[2,3] = mul(%x, %two)
//!   %s: f32[2] = reduce_sum(%y) {axes=[1], keepdims=false}
//!   output %s
//! }
//! ```
//!
//! [`print`] writes the canonical form and [`parse`] reads it back to an equal graph, so
//! `print(&parse(&print(&g))?) == print(&g)`. The parser builds the graph through
//! [`Graph::add_op`](crate::Graph::add_op), so shape errors are found line by line, and every
//! error carries the line and column of the token at fault.

mod lexer;
mod parser;
mod printer;

#[cfg(test)]
mod tests;

use crate::graph::{Graph, check_type};
use crate::tensor::Tensor;
use crate::types::TensorType;

/// A syntax or verification error at a line and column (1-based).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{col}: {message}")]
pub struct ParseError {
    /// Line, from 1.
    pub line: usize,
    /// Column (in characters), from 1.
    pub col: usize,
    /// What is wrong.
    pub message: String,
}

/// Prints a graph in canonical form (two-space indent, one node per line, every type and
/// attribute written out, a final newline).
pub fn print(g: &Graph) -> String {
    printer::graph(g)
}

/// Parses and verifies one graph.
pub fn parse(src: &str) -> Result<Graph, ParseError> {
    parser::Parser::new(src).graph()
}

/// Parses a tensor literal of type `ty` as a `const` line writes it: one value that every
/// element takes (`0.5`), or the flat row-major list of all elements (`[1, 2, 3]`).
/// Comments and whitespace around it are allowed. The error reads `line:col: message`.
pub fn parse_tensor_literal(ty: &TensorType, src: &str) -> Result<Tensor, String> {
    check_type(ty)?;
    let mut p = parser::Parser::new(src);
    let t = p.literal(ty).map_err(|e| e.to_string())?;
    p.expect_eof("the literal").map_err(|e| e.to_string())?;
    Ok(t)
}

/// Prints a tensor's elements as a literal that [`parse_tensor_literal`] reads back
/// bit-exactly (except NaN payloads): the single value when every element is bitwise equal
/// and there is at least one, else the flat row-major list (`[]` when empty).
pub fn print_tensor_literal(t: &Tensor) -> String {
    printer::tensor_literal(t)
}
