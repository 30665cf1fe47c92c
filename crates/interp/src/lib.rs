//! Sinter's reference interpreter: the oracle every compiled kernel is tested against.
//!
//! It evaluates a [`Graph`] node by node on host [`Tensor`]s with naive, readable f32 loops:
//! no blocking, no vectorisation, no `unsafe`, and f32 accumulators summed in the natural loop
//! order (not f64), so generated kernels can be compared with it under ordinary f32
//! tolerances. Random ops draw from [`sinter_ir::rng`] exactly as the op table defines them,
//! so kernels must match those bit for bit.
//!
//! - [`run`] evaluates a whole graph, feeding its inputs by name.
//! - [`eval_op`] evaluates one op; it is one exhaustive `match` over [`sinter_ir::Op`], so a
//!   new op fails to compile until it is implemented here.
//!
//! Neither panics on a verified graph: malformed calls and runtime data errors (such as a
//! `gather` index out of range) are errors.

mod conv;
mod elementwise;
mod eval;
mod index;
mod linear;
mod movement;
mod norm;
mod pool;
mod random;
mod reduce;
mod winograd;

pub use eval::eval_op;

use sinter_ir::{Graph, NodeKind, Tensor, Value};
use std::borrow::Cow;
use std::collections::HashMap;

/// Why [`run`] failed. Value names are stored without the `%` sigil.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InterpError {
    /// A graph input was not fed.
    #[error("missing input `%{name}` ({expected}); {}", given(available))]
    MissingInput {
        /// The input's name.
        name: String,
        /// Its type, e.g. `f32[1,3,8,8]`.
        expected: String,
        /// The names that were fed, sorted.
        available: Vec<String>,
    },
    /// A tensor was fed under a name that is not an input of the graph.
    #[error("unexpected input `%{name}`: the graph's inputs are {}", names(known))]
    UnexpectedInput {
        /// The name fed.
        name: String,
        /// The graph's inputs, in definition order.
        known: Vec<String>,
    },
    /// A fed tensor does not have the input's type.
    #[error("input `%{name}` expects {expected}, got {got}")]
    WrongInput {
        /// The input's name.
        name: String,
        /// The input's type.
        expected: String,
        /// The fed tensor's type.
        got: String,
    },
    /// A node failed to evaluate.
    #[error("{location}: {message}")]
    Node {
        /// The node as the text format writes it, e.g. `%y = gather(%d, %i)`.
        location: String,
        /// What went wrong.
        message: String,
    },
}

/// `` `%a`, `%b` `` or `none`.
fn names(list: &[String]) -> String {
    if list.is_empty() {
        return "none".to_string();
    }
    let quoted: Vec<String> = list.iter().map(|n| format!("`%{n}`")).collect();
    quoted.join(", ")
}

fn given(list: &[String]) -> String {
    if list.is_empty() {
        "no inputs were given".to_string()
    } else {
        format!("given: {}", names(list))
    }
}

/// Largest output (bytes) one node may produce: a bigger one is an error before anything is
/// allocated, instead of an out-of-memory abort (the verifier allows tensors of up to 2^32
/// elements, 16 GiB of `f32`).
pub const MEMORY_BUDGET: usize = 8 << 30;

/// Evaluates `graph`, feeding each input and parameter node the tensor of the same name
/// (without `%`) from `inputs`. Every input must be fed, with exactly its type, and nothing
/// else may be. Returns the graph outputs in order, each with its value name.
///
/// Only nodes the outputs depend on are evaluated, and each intermediate value is dropped
/// as soon as its last user has run, so large graphs do not hold every activation.
pub fn run(
    graph: &Graph,
    inputs: &HashMap<String, Tensor>,
) -> Result<Vec<(String, Tensor)>, InterpError> {
    let nodes = graph.nodes();
    let input_names: Vec<String> = graph
        .inputs()
        .map(|(v, _)| graph.value_name(v).to_string())
        .collect();
    let mut fed: Vec<String> = inputs.keys().cloned().collect();
    fed.sort();
    if let Some(name) = fed.iter().find(|n| !input_names.contains(n)) {
        return Err(InterpError::UnexpectedInput {
            name: name.clone(),
            known: input_names,
        });
    }

    // Liveness: a node is live if a graph output or a live later node reads it. Operands
    // always come from earlier nodes, so one backward sweep suffices.
    let defined = |v: &Value, before: usize| {
        v.node.index() < before && (v.output as usize) < nodes[v.node.index()].outputs.len()
    };
    let mut live = vec![false; nodes.len()];
    for v in graph.outputs() {
        if let Some(l) = live.get_mut(v.node.index()) {
            *l = true;
        }
    }
    for i in (0..nodes.len()).rev() {
        if live[i] {
            for v in nodes[i].inputs.iter().filter(|v| defined(v, i)) {
                live[v.node.index()] = true;
            }
        }
    }

    // Remaining reads of each value by live nodes, plus one for each graph output.
    let mut uses: Vec<Vec<usize>> = nodes.iter().map(|n| vec![0; n.outputs.len()]).collect();
    for (i, node) in nodes.iter().enumerate().filter(|(i, _)| live[*i]) {
        for v in node.inputs.iter().filter(|v| defined(v, i)) {
            uses[v.node.index()][v.output as usize] += 1;
        }
    }
    for v in graph.outputs().iter().filter(|v| defined(v, nodes.len())) {
        uses[v.node.index()][v.output as usize] += 1;
    }

    let mut values: Vec<Vec<Option<Cow<'_, Tensor>>>> =
        nodes.iter().map(|n| vec![None; n.outputs.len()]).collect();
    for (i, node) in nodes.iter().enumerate() {
        let names: Vec<&str> = node.outputs.iter().map(|o| o.name.as_str()).collect();
        match &node.kind {
            NodeKind::Input(_) => {
                let out = node.outputs.first().ok_or_else(|| InterpError::Node {
                    location: format!("node {i}"),
                    message: "an input node has no output".to_string(),
                })?;
                let Some(t) = inputs.get(&out.name) else {
                    return Err(InterpError::MissingInput {
                        name: out.name.clone(),
                        expected: out.ty.to_string(),
                        available: fed,
                    });
                };
                if t.ty() != out.ty {
                    return Err(InterpError::WrongInput {
                        name: out.name.clone(),
                        expected: out.ty.to_string(),
                        got: t.ty().to_string(),
                    });
                }
                if live[i] {
                    values[i][0] = Some(Cow::Borrowed(t));
                }
            }
            NodeKind::Const(t) => {
                if live[i] && !values[i].is_empty() {
                    values[i][0] = Some(Cow::Borrowed(t));
                }
            }
            NodeKind::Op(op) if live[i] => {
                let locate = || {
                    if node.inputs.iter().all(|v| defined(v, i)) {
                        graph.describe(&names, op, &node.inputs)
                    } else {
                        format!("%{} = {}(..)", names.join(", %"), op.name())
                    }
                };
                let mut args: Vec<&Tensor> = Vec::with_capacity(node.inputs.len());
                for v in &node.inputs {
                    let arg = values
                        .get(v.node.index())
                        .filter(|_| v.node.index() < i)
                        .and_then(|outs| outs.get(v.output as usize))
                        .and_then(|t| t.as_deref());
                    let Some(arg) = arg else {
                        return Err(InterpError::Node {
                            location: locate(),
                            message: format!("operand {v:?} is not defined before its use"),
                        });
                    };
                    args.push(arg);
                }
                let out_types: Vec<_> = node.outputs.iter().map(|o| o.ty.clone()).collect();
                let out_bytes = out_types
                    .iter()
                    .map(|t| t.numel().saturating_mul(t.dtype.size_bytes()))
                    .fold(0usize, usize::saturating_add);
                if out_bytes > MEMORY_BUDGET {
                    return Err(InterpError::Node {
                        location: locate(),
                        message: format!(
                            "its outputs need {out_bytes} bytes, over the interpreter's memory \
                             budget of {MEMORY_BUDGET} bytes"
                        ),
                    });
                }
                let results =
                    eval_op(op, &args, &out_types).map_err(|message| InterpError::Node {
                        location: locate(),
                        message,
                    })?;
                for (k, t) in results.into_iter().enumerate() {
                    if uses[i][k] > 0 {
                        values[i][k] = Some(Cow::Owned(t));
                    }
                }
                // Free operands whose last reader this was.
                for v in &node.inputs {
                    let u = &mut uses[v.node.index()][v.output as usize];
                    *u -= 1;
                    if *u == 0 {
                        values[v.node.index()][v.output as usize] = None;
                    }
                }
            }
            NodeKind::Op(_) => {}
        }
    }

    let mut results = Vec::with_capacity(graph.outputs().len());
    for v in graph.outputs() {
        let t = values
            .get_mut(v.node.index())
            .and_then(|outs| outs.get_mut(v.output as usize))
            .and_then(Option::take);
        let Some(t) = t else {
            return Err(InterpError::Node {
                location: format!("graph @{}", graph.name()),
                message: format!("output {v:?} is not defined"),
            });
        };
        results.push((graph.value_name(*v).to_string(), t.into_owned()));
    }
    Ok(results)
}
