//! Import errors: every one says where (the file, the node by name and op type) and what.
//!
//! A model comes from outside, so nothing in it may make the importer panic: each problem
//! becomes one of these variants, with the shapes involved in node errors.

use std::fmt;

/// An ONNX node as errors name it: its name and op type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeRef {
    /// The node's `name` (ONNX allows an empty one; then its first output is shown).
    pub name: String,
    /// The node's `op_type`, with its domain when that is not the default one.
    pub op_type: String,
}

impl fmt::Display for NodeRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "node `{}` ({})", self.name, self.op_type)
    }
}

/// Why an ONNX model could not be imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The bytes are not an ONNX protobuf (truncated, corrupted, not a model).
    #[error("not a valid ONNX model: {0}")]
    Decode(String),
    /// The model is well-formed protobuf but not a model this importer can take, or breaks an
    /// ONNX rule (unknown opset, a name used before any definition, a cycle, ...).
    #[error("{0}")]
    Model(String),
    /// Ops with no Sinter lowering: all of them, not only the first.
    #[error("{} unsupported op{} in the model: {}", .0.len(), if .0.len() == 1 { "" } else { "s" }, list(.0))]
    Unsupported(Vec<NodeRef>),
    /// A node that could not be lowered: its attributes, inputs or shapes are wrong.
    #[error("{node}: {message}")]
    Node {
        /// The node.
        node: NodeRef,
        /// What is wrong, with the shapes involved.
        message: String,
    },
}

fn list(nodes: &[NodeRef]) -> String {
    nodes
        .iter()
        .map(|n| format!("`{}` ({})", n.name, n.op_type))
        .collect::<Vec<_>>()
        .join(", ")
}
