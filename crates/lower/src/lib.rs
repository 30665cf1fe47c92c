//! Lowering of IR graphs to the loop-nest IR: fusion, scheduling, layouts.
//!
//! [`lower_graph`] turns every live op node of a [`Graph`] into a [`Kernel`] (see [`loops`])
//! whose buffers are bound to graph values, in definition order: a [`Program`]. The runtime
//! plans memory over those bindings and the JIT compiles each kernel. Keeping lowering
//! separate from code generation lets the loop IR be snapshot-tested (filetests kind `lower`)
//! and lets the runtime fall back to nothing: every op has a lowering ([`ops::lower_op`] is an
//! exhaustive match).

mod fuse;
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
    /// The value each buffer holds, for every buffer but scratch ones, in buffer order.
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

/// Lowers every op node that a graph output depends on. Chains of elementwise ops (unary,
/// binary, compare, `select`, `cast`) whose intermediate values have one reader of the same
/// shape are fused into one kernel: one loop, each intermediate a scalar variable, so the chain
/// reads its inputs and writes its result once instead of once per op.
pub fn lower_graph(graph: &Graph, opt: LowerOptions) -> Result<Program, LowerError> {
    let live = graph.live_nodes();
    let nodes = graph.nodes();
    let fused = fusable(graph, &live, opt);
    let mut steps = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        let NodeKind::Op(op) = &node.kind else {
            continue;
        };
        if !live[i] || fused[i] {
            continue;
        }
        let has_fused_producer = node.inputs.iter().any(|v| fused[v.node.index()]);
        if has_fused_producer {
            steps.push(fuse::fused_kernel(graph, i, &fused, opt));
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

/// Whether node `i` is an elementwise op.
fn is_elementwise(graph: &Graph, i: usize, opt: LowerOptions) -> bool {
    let node = &graph.nodes()[i];
    let dtypes: Vec<_> = node.inputs.iter().map(|&v| graph.ty(v).dtype).collect();
    node.op()
        .is_some_and(|op| ops::elementwise(op, &dtypes, Vec::new(), opt).is_some())
}

/// `fused[i]`: node `i` is computed inside its only reader's kernel.
fn fusable(graph: &Graph, live: &[bool], opt: LowerOptions) -> Vec<bool> {
    let nodes = graph.nodes();
    let mut uses = vec![0usize; nodes.len()];
    let mut reader = vec![usize::MAX; nodes.len()];
    for (i, n) in nodes.iter().enumerate().filter(|(i, _)| live[*i]) {
        for v in &n.inputs {
            uses[v.node.index()] += 1;
            reader[v.node.index()] = i;
        }
    }
    for v in graph.outputs() {
        uses[v.node.index()] += 2;
    }
    (0..nodes.len())
        .map(|i| {
            live[i]
                && uses[i] == 1
                && nodes[i].outputs.len() == 1
                && is_elementwise(graph, i, opt)
                && is_elementwise(graph, reader[i], opt)
                && nodes[i].outputs[0].ty.shape == nodes[reader[i]].outputs[0].ty.shape
        })
        .collect()
}
