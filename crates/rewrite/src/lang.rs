//! The e-graph language: one e-node kind per IR op, plus leaves, projections and fused kernels.
//!
//! The IR's [`Op`] (with its typed attributes) *is* the operator of an [`Node::Op`] e-node, so
//! the e-graph needs no second op table: adding an op to `sinter_ir::ops` makes it an e-node
//! kind at once, printed under its text name. Beside ops the language has
//!
//! - [`Node::Input`]: a graph input or trainable parameter, by name (its type lives in the
//!   analysis);
//! - [`Node::Const`]: a constant, by index into the analysis's constant table (graph constants
//!   and values folded at compile time);
//! - [`Node::Get`]: output `i` of a multi-output op such as `split` (`(get.1 (split x))`): the
//!   op's own e-class stands for the tuple of its outputs;
//! - [`Node::Fused`]: a linear op with its activation epilogue, one kernel for the JIT. The IR
//!   has no fused op yet (the op table is owned elsewhere), so this kind is local to the
//!   rewrite crate: it is costed as one kernel and expanded back to its primitives when a graph
//!   is extracted, while the [`crate::Report`] lists each fused group.
//!
//! Attributes take part in equality and hashing, so `(relu ?x)`-style [`egg::Pattern`]s work for
//! attribute-free ops; rules that inspect attributes or shapes are Rust functions (see
//! [`crate::rules`]).

use egg::{Id, Language};
use sinter_ir::{Float, Op, OpKind};
use smallvec::SmallVec;
use std::fmt;

/// The activation of a fused epilogue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Act {
    /// `relu`.
    Relu,
    /// `sigmoid`.
    Sigmoid,
    /// `tanh`.
    Tanh,
    /// `leaky_relu` with its slope.
    LeakyRelu(Float),
    /// `prelu`; the slope is the fused node's last child.
    Prelu,
    /// The relu backward `select(greater(m, 0), y, 0)` applied to the linear op's result `y`
    /// (a gradient); the mask source `m` is the fused node's last child.
    ReluMask,
}

impl Act {
    /// The IR op that applies this activation (for `ReluMask`, the final `select`; its
    /// condition is `greater(m, 0)`).
    pub fn op(self) -> Op {
        match self {
            Act::Relu => Op::Relu {},
            Act::Sigmoid => Op::Sigmoid {},
            Act::Tanh => Op::Tanh {},
            Act::LeakyRelu(alpha) => Op::LeakyRelu { alpha },
            Act::Prelu => Op::Prelu {},
            Act::ReluMask => Op::Select {},
        }
    }

    /// The name in fused e-node names (`fused_gemm_relu`).
    pub fn name(self) -> &'static str {
        match self {
            Act::ReluMask => "relu_mask",
            other => other.op().name(),
        }
    }

    /// Operands the activation adds after the linear op's (the `prelu` slope, the mask
    /// source).
    pub fn extra(self) -> usize {
        usize::from(matches!(self, Act::Prelu | Act::ReluMask))
    }

    /// The activation an op applies, if it is one that can be fused.
    pub fn of(op: &Op) -> Option<Act> {
        match op {
            Op::Relu {} => Some(Act::Relu),
            Op::Sigmoid {} => Some(Act::Sigmoid),
            Op::Tanh {} => Some(Act::Tanh),
            Op::LeakyRelu { alpha } => Some(Act::LeakyRelu(*alpha)),
            Op::Prelu {} => Some(Act::Prelu),
            _ => None,
        }
    }
}

/// A linear op (`conv2d`, `conv_transpose2d`, `gemm`, `matmul`) with a fused activation.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fused {
    /// The linear op, with its attributes (its bias, if any, is among its inputs).
    pub base: Op,
    /// The activation applied to its result.
    pub act: Act,
}

/// An e-node. See the [module docs](self).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Node {
    /// An IR op applied to e-classes.
    Op(Op, SmallVec<[Id; 3]>),
    /// A fused linear op + activation: the base op's inputs, then the slope for `prelu`.
    Fused(Box<Fused>, SmallVec<[Id; 3]>),
    /// A graph input or parameter, by name.
    Input(egg::Symbol),
    /// A constant: index into [`crate::analysis::Analysis::consts`].
    Const(u32),
    /// Output `.0` of the multi-output op in e-class `.1`.
    Get(u32, [Id; 1]),
}

impl Node {
    /// An op e-node.
    pub fn op(op: Op, children: &[Id]) -> Node {
        Node::Op(op, children.into())
    }

    /// The op, for op e-nodes.
    pub fn as_op(&self) -> Option<(&Op, &[Id])> {
        match self {
            Node::Op(op, ch) => Some((op, ch)),
            _ => None,
        }
    }

    /// True for an op e-node of kind `kind`.
    pub fn is(&self, kind: OpKind) -> bool {
        matches!(self, Node::Op(op, _) if op.kind() == kind)
    }
}

impl Language for Node {
    type Discriminant = std::mem::Discriminant<Node>;

    fn discriminant(&self) -> Self::Discriminant {
        std::mem::discriminant(self)
    }

    fn matches(&self, other: &Self) -> bool {
        match (self, other) {
            (Node::Op(a, ca), Node::Op(b, cb)) => a == b && ca.len() == cb.len(),
            (Node::Fused(a, ca), Node::Fused(b, cb)) => a == b && ca.len() == cb.len(),
            (Node::Input(a), Node::Input(b)) => a == b,
            (Node::Const(a), Node::Const(b)) => a == b,
            (Node::Get(a, _), Node::Get(b, _)) => a == b,
            _ => false,
        }
    }

    fn children(&self) -> &[Id] {
        match self {
            Node::Op(_, ch) | Node::Fused(_, ch) => ch,
            Node::Get(_, ch) => ch,
            Node::Input(_) | Node::Const(_) => &[],
        }
    }

    fn children_mut(&mut self) -> &mut [Id] {
        match self {
            Node::Op(_, ch) | Node::Fused(_, ch) => ch,
            Node::Get(_, ch) => ch,
            Node::Input(_) | Node::Const(_) => &mut [],
        }
    }
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Node::Op(op, _) => f.write_str(op.name()),
            Node::Fused(fu, _) => write!(f, "fused_{}_{}", fu.base.name(), fu.act.name()),
            Node::Input(name) => write!(f, "{name}"),
            Node::Const(i) => write!(f, "const.{i}"),
            Node::Get(i, _) => write!(f, "get.{i}"),
        }
    }
}

/// Why [`egg::FromOp`] rejected an s-expression operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown e-node `{0}`")]
pub struct UnknownNode(pub String);

impl egg::FromOp for Node {
    type Error = UnknownNode;

    /// Reads the names [`Display`](fmt::Display) writes; ops get default attributes.
    fn from_op(op: &str, children: Vec<Id>) -> Result<Self, Self::Error> {
        let bad = || UnknownNode(op.to_string());
        if let Some(i) = op.strip_prefix("const.") {
            let i = i.parse().map_err(|_| bad())?;
            return if children.is_empty() {
                Ok(Node::Const(i))
            } else {
                Err(bad())
            };
        }
        if let Some(i) = op.strip_prefix("get.") {
            let i = i.parse().map_err(|_| bad())?;
            return match children.as_slice() {
                [c] => Ok(Node::Get(i, [*c])),
                _ => Err(bad()),
            };
        }
        let Some(kind) = OpKind::from_name(op) else {
            // Any other name without operands is a graph input.
            return if children.is_empty() {
                Ok(Node::Input(op.into()))
            } else {
                Err(bad())
            };
        };
        let info = kind.info();
        if children.len() < info.min_inputs || children.len() > info.max_inputs {
            return Err(bad());
        }
        let op = kind.default_op().map_err(|_| bad())?;
        Ok(Node::Op(op, children.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use egg::RecExpr;

    #[test]
    fn s_expressions_use_the_ir_names() {
        let e: RecExpr<Node> = "(relu (get.1 (conv2d (add x const.0) w)))".parse().unwrap();
        assert_eq!(e.to_string(), "(relu (get.1 (conv2d (add x const.0) w)))");
        assert!("(relu x y)".parse::<RecExpr<Node>>().is_err());
        assert!("(frobnicate x)".parse::<RecExpr<Node>>().is_err());
    }
}
