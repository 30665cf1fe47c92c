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
/// reads its inputs and writes its result once instead of once per op. A relu that is the only
/// reader of a conv2d, gemm or matmul runs in that op's GEMM epilogue (with its bias), tile by
/// tile while the tile is in L1.
pub fn lower_graph(graph: &Graph, opt: LowerOptions) -> Result<Program, LowerError> {
    let live = graph.live_nodes();
    let nodes = graph.nodes();
    let (uses, reader) = uses(graph, &live);
    let relu_of = epilogue_relus(graph, &live, &uses, opt);
    let mut fused = fusable(graph, &live, &uses, &reader, opt);
    for &r in relu_of.iter().flatten() {
        // Written by its producer's kernel, so it must be stored, not fused into its reader.
        fused[r] = false;
    }
    let absorbed: Vec<bool> = {
        let mut a = vec![false; nodes.len()];
        for &r in relu_of.iter().flatten() {
            a[r] = true;
        }
        a
    };
    let mut steps = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        let NodeKind::Op(op) = &node.kind else {
            continue;
        };
        if !live[i] || fused[i] || absorbed[i] {
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
        if let Some(r) = relu_of[i] {
            // The kernel writes the relu's value; its own is never stored.
            names[node.inputs.len()] = nodes[r].outputs[0].name.clone();
        }
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
        if let Some(r) = relu_of[i] {
            set_epilogue_relu(&mut kernel.body);
            kernel.name = format!("{}_relu_{}", op.name(), nodes[r].outputs[0].name);
            args[node.inputs.len()] = Value {
                node: sinter_ir::NodeId(r as u32),
                output: 0,
            };
        }
        steps.push(Step { kernel, args });
    }
    Ok(Program { steps })
}

/// Per node: how many times live nodes read its outputs (a graph output counts 2, so it is
/// never "read once"), and the last live reader.
fn uses(graph: &Graph, live: &[bool]) -> (Vec<usize>, Vec<usize>) {
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
    (uses, reader)
}

/// `relu_of[p] = Some(r)`: node `r` is a relu whose input is the only use of the output of
/// node `p`, a conv2d, gemm or matmul lowered to GEMM calls; the relu then runs in the GEMM
/// driver's epilogue ([`loops::GemmEpilogue`]) and `p`'s own output is never stored.
fn epilogue_relus(
    graph: &Graph,
    live: &[bool],
    uses: &[usize],
    opt: LowerOptions,
) -> Vec<Option<usize>> {
    let nodes = graph.nodes();
    let mut relu_of = vec![None; nodes.len()];
    if !opt.microkernels {
        return relu_of;
    }
    for (r, n) in nodes.iter().enumerate() {
        if !live[r] || !matches!(n.op(), Some(sinter_ir::Op::Relu {})) {
            continue;
        }
        let p = n.inputs[0].node.index();
        let producer = &nodes[p];
        let gemm_op = matches!(
            producer.op(),
            Some(
                sinter_ir::Op::Conv2d { .. }
                    | sinter_ir::Op::Gemm { .. }
                    | sinter_ir::Op::Matmul {}
            )
        );
        if gemm_op
            && uses[p] == 1
            && producer.outputs.len() == 1
            && producer.outputs[0].ty == n.outputs[0].ty
        {
            relu_of[p] = Some(r);
        }
    }
    relu_of
}

/// Turns on the relu of every GEMM call in `body`.
fn set_epilogue_relu(body: &mut [loops::Stmt]) {
    for s in body {
        match s {
            loops::Stmt::Gemm(g) => g.epilogue.relu = true,
            loops::Stmt::For { body, .. } => set_epilogue_relu(body),
            loops::Stmt::If(_, a, b) => {
                set_epilogue_relu(a);
                set_epilogue_relu(b);
            }
            loops::Stmt::Set(..) | loops::Stmt::Store(..) | loops::Stmt::Check(..) => {}
        }
    }
}

/// Whether node `i` is an elementwise op.
fn is_elementwise(graph: &Graph, i: usize, opt: LowerOptions) -> bool {
    let node = &graph.nodes()[i];
    let dtypes: Vec<_> = node.inputs.iter().map(|&v| graph.ty(v).dtype).collect();
    node.op()
        .is_some_and(|op| ops::elementwise(op, &dtypes, Vec::new(), opt).is_some())
}

/// `fused[i]`: node `i` is computed inside its only reader's kernel.
fn fusable(
    graph: &Graph,
    live: &[bool],
    uses: &[usize],
    reader: &[usize],
    opt: LowerOptions,
) -> Vec<bool> {
    let nodes = graph.nodes();
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
