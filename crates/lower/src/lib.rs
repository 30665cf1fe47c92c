//! Lowering of IR graphs to the loop-nest IR: fusion, scheduling, layouts.
//!
//! [`lower_graph`] turns every live op node of a [`Graph`] into a [`Kernel`] (see [`loops`])
//! whose buffers are bound to graph values, in definition order: a [`Program`]. The runtime
//! plans memory over those bindings and the JIT compiles each kernel. Keeping lowering
//! separate from code generation lets the loop IR be snapshot-tested (filetests kind `lower`)
//! and lets the runtime fall back to nothing: every op has a lowering ([`ops::lower_op`] is an
//! exhaustive match).

pub mod loops;
pub mod ops;

pub use loops::{Buf, BufDecl, Expr, Kernel, Stmt, Ty};
pub use ops::{LowerOptions, lower_op};

use sinter_ir::{Graph, NodeKind, TensorType, Value};
use std::fmt;

/// Why lowering failed (a graph the verifier accepts always lowers; this guards the rest).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {message}")]
pub struct LowerError {
    /// The node as the text format writes it.
    pub location: String,
    /// What went wrong.
    pub message: String,
}

/// One kernel and the graph values bound to its buffers (same order as [`Kernel::bufs`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// The loop nest.
    pub kernel: Kernel,
    /// The value each buffer holds.
    pub args: Vec<Value>,
}

/// A lowered graph: kernels in an order that respects dependencies.
#[derive(Clone, Debug, PartialEq)]
pub struct Program {
    /// Kernels to run in order.
    pub steps: Vec<Step>,
}

impl fmt::Display for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.steps.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}", s.kernel)?;
        }
        Ok(())
    }
}

/// Lowers every op node that a graph output depends on.
pub fn lower_graph(graph: &Graph, opt: LowerOptions) -> Result<Program, LowerError> {
    let live = graph.live_nodes();
    let mut steps = Vec::new();
    for (i, node) in graph.nodes().iter().enumerate() {
        let NodeKind::Op(op) = &node.kind else {
            continue;
        };
        if !live[i] {
            continue;
        }
        let in_tys: Vec<&TensorType> = node.inputs.iter().map(|&v| graph.ty(v)).collect();
        let out_tys: Vec<TensorType> = node.outputs.iter().map(|o| o.ty.clone()).collect();
        let mut names: Vec<String> = node
            .inputs
            .iter()
            .map(|&v| graph.value_name(v).to_string())
            .collect();
        names.extend(node.outputs.iter().map(|o| o.name.clone()));
        // A value read twice (`add(%x, %x)`) still gets one buffer per operand slot.
        let mut kernel =
            lower_op(op, &in_tys, &out_tys, &names, opt).map_err(|message| LowerError {
                location: graph.describe(
                    &node
                        .outputs
                        .iter()
                        .map(|o| o.name.as_str())
                        .collect::<Vec<_>>(),
                    op,
                    &node.inputs,
                ),
                message,
            })?;
        kernel.name = format!("{}_{}", op.name(), node.outputs[0].name);
        let mut args: Vec<Value> = node.inputs.to_vec();
        args.extend((0..node.outputs.len()).map(|k| Value {
            node: sinter_ir::NodeId(i as u32),
            output: k as u32,
        }));
        steps.push(Step { kernel, args });
    }
    Ok(Program { steps })
}
