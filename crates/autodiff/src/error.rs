//! Errors of differentiation, training-graph construction and training.
//!
//! Every error says where: the value or node as the text format writes it (`%y = max_pool2d_grad(%x, %g)`)
//! and what is wrong, so a failure in a model several hundred nodes long points at its line.

use sinter_ir::IrError;

/// Why differentiating a graph, building a training graph or running a training step failed.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum AutodiffError {
    /// Emitting a node failed its shape check (a bug in a rule, reported rather than hidden).
    #[error(transparent)]
    Ir(#[from] IrError),
    /// A value named by the caller does not exist.
    #[error("graph @{graph} has no value `%{name}`")]
    UnknownValue {
        /// The graph.
        graph: String,
        /// The name asked for.
        name: String,
    },
    /// The loss is not an `f32[]` scalar.
    #[error("the loss `%{name}` must be an f32 scalar (f32[]), got {ty}")]
    LossNotScalar {
        /// The loss value's name.
        name: String,
        /// Its type.
        ty: String,
    },
    /// A value to differentiate with respect to is not `f32`.
    #[error("cannot differentiate with respect to `%{name}`: it is {ty}, not f32")]
    NotFloat {
        /// The value's name.
        name: String,
        /// Its type.
        ty: String,
    },
    /// The loss depends on a value to differentiate through an op that has no gradient rule
    /// for that path (see `ir-spec/autodiff.md`).
    #[error("{node}: {reason}")]
    NotDifferentiable {
        /// The node as the text format writes it.
        node: String,
        /// Why, and what to do instead.
        reason: String,
    },
    /// A training configuration or a training step is wrong (missing tensor, bad type, ...).
    #[error("{0}")]
    Train(String),
    /// The backend failed to compile or run a graph.
    #[error("backend: {0}")]
    Backend(String),
    /// Reading or writing a parameter file failed.
    #[error("{0}")]
    Io(String),
}
