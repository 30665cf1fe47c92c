//! Errors of graph construction and verification.

/// A graph that is not well-formed. The message always says where: the node (as
/// `%y = conv2d(%x, %w)`) or the graph, then what is wrong, with the shapes involved.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {message}")]
pub struct IrError {
    /// The node (`%y = conv2d(%x, %w)`) or `graph @name`.
    pub location: String,
    /// What is wrong.
    pub message: String,
}

impl IrError {
    /// An error at a node, described as the text format writes it.
    pub fn node(location: impl Into<String>, message: impl Into<String>) -> IrError {
        IrError {
            location: location.into(),
            message: message.into(),
        }
    }

    /// An error about the graph as a whole.
    pub fn graph(name: &str, message: impl Into<String>) -> IrError {
        IrError {
            location: format!("graph @{name}"),
            message: message.into(),
        }
    }
}
