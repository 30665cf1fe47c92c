//! Reverse-mode differentiation of a graph into a graph: [`grad`].
//!
//! The backward pass is not a run-time tape. It is more nodes appended to the forward graph,
//! so that the optimiser rewrites forward and backward together and the JIT compiles them as
//! one program (keeping exactly the activations the backward pass reads).
//!
//! The transformation walks the nodes in reverse definition order (the SSA order is a
//! topological order, so every consumer of a value is visited before its producer). Each
//! value collects the gradient contributions of its consumers; when its producer is reached
//! they are summed with `add` (fan-out) and handed to the producer's local rule in
//! `crate::rules`, which emits the gradients of the producer's inputs, un-broadcast to their
//! shapes. Only values that depend on a value being differentiated get gradients, so data
//! inputs and label paths produce no backward code.
//!
//! The result is a new graph: the forward nodes unchanged (same [`Value`]s), the backward
//! nodes named `d.<n>`, and one output `grad.<name>` per differentiated value after the
//! original outputs (and the loss, if it was not an output).

use crate::emit::Emitter;
use crate::error::AutodiffError;
use crate::rules::{self, RuleError};
use sinter_ir::{DType, Graph, InputKind, NodeKind, Tensor, TensorType, Value};
use std::collections::HashMap;

/// A graph with its gradients: what [`grad`] returns.
#[derive(Clone, Debug)]
pub struct Gradients {
    /// The forward graph plus the backward nodes. Its outputs are the original outputs, the
    /// loss (if it was not one of them) and then one gradient per value in `wrt`.
    pub graph: Graph,
    /// The loss (the same [`Value`] as in the input graph).
    pub loss: Value,
    /// The values differentiated with respect to (the same [`Value`]s as in the input graph).
    pub wrt: Vec<Value>,
    /// `grads[i]` is the gradient of the loss with respect to `wrt[i]`, named
    /// `grad.<name of wrt[i]>`, with `wrt[i]`'s type.
    pub grads: Vec<Value>,
}

impl Gradients {
    /// The gradient with respect to the value called `name`, if it was differentiated.
    pub fn grad_of(&self, name: &str) -> Option<Value> {
        let v = self.graph.find(name)?;
        let i = self.wrt.iter().position(|&w| w == v)?;
        Some(self.grads[i])
    }
}

/// The name of the gradient output of the value called `name`: `grad.<name>`.
pub fn grad_name(name: &str) -> String {
    format!("grad.{name}")
}

/// Every trainable parameter of `graph` (inputs of kind [`InputKind::Param`]), in order.
pub fn params(graph: &Graph) -> Vec<Value> {
    graph
        .inputs()
        .filter(|(_, k)| *k == InputKind::Param)
        .map(|(v, _)| v)
        .collect()
}

/// Looks up a value by name, or says which graph lacks it.
pub fn value(graph: &Graph, name: &str) -> Result<Value, AutodiffError> {
    graph.find(name).ok_or_else(|| AutodiffError::UnknownValue {
        graph: graph.name().to_string(),
        name: name.to_string(),
    })
}

/// Differentiates the scalar `loss` with respect to every parameter of `graph`.
pub fn grad_params(graph: &Graph, loss: Value) -> Result<Gradients, AutodiffError> {
    grad(graph, loss, &params(graph))
}

/// Appends the backward graph of the `f32[]` value `loss` with respect to the `f32` values
/// `wrt` (parameters, data inputs or intermediate values) and returns the new graph with
/// the gradients as outputs. A value the loss does not depend on gets a zero gradient.
///
/// Fails when the loss is not an `f32` scalar, a `wrt` value is not `f32`, or the loss
/// depends on a `wrt` value through an op without a gradient for that path
/// ([`AutodiffError::NotDifferentiable`], naming the node).
pub fn grad(graph: &Graph, loss: Value, wrt: &[Value]) -> Result<Gradients, AutodiffError> {
    let lt = graph.ty(loss);
    if *lt != TensorType::f32(&[]) {
        return Err(AutodiffError::LossNotScalar {
            name: graph.value_name(loss).to_string(),
            ty: lt.to_string(),
        });
    }
    for &w in wrt {
        if graph.ty(w).dtype != DType::F32 {
            return Err(AutodiffError::NotFloat {
                name: graph.value_name(w).to_string(),
                ty: graph.ty(w).to_string(),
            });
        }
    }
    let active = active_values(graph, wrt);
    let forward_len = graph.nodes().len();
    let mut g = graph.clone();
    let mut total: HashMap<Value, Value> = HashMap::new();
    {
        let mut e = Emitter::new(&mut g, "d");
        let mut contrib: HashMap<Value, Vec<Value>> = HashMap::new();
        let seed = e.constant(Tensor::scalar(1.0))?;
        contrib.insert(loss, vec![seed]);
        for i in (0..=loss.node.index()).rev() {
            let node = graph.nodes()[i].clone();
            let outs: Vec<Value> = (0..node.outputs.len() as u32)
                .map(|output| Value {
                    node: sinter_ir::NodeId(i as u32),
                    output,
                })
                .collect();
            let mut dy = Vec::with_capacity(outs.len());
            for v in &outs {
                let d = match contrib.remove(v) {
                    Some(cs) => e.sum(&cs)?,
                    None => None,
                };
                if let Some(d) = d {
                    total.insert(*v, d);
                }
                dy.push(d);
            }
            let NodeKind::Op(op) = &node.kind else {
                continue;
            };
            if dy.iter().all(Option::is_none) {
                continue;
            }
            let need: Vec<bool> = node
                .inputs
                .iter()
                .map(|v| active[v.node.index()][v.output as usize])
                .collect();
            if !need.contains(&true) {
                continue;
            }
            let dx =
                rules::backward(&mut e, op, &node.inputs, &outs, &dy, &need).map_err(|err| {
                    match err {
                        RuleError::Ir(e) => AutodiffError::Ir(e),
                        RuleError::NotDifferentiable(reason) => {
                            let names: Vec<&str> =
                                node.outputs.iter().map(|o| o.name.as_str()).collect();
                            AutodiffError::NotDifferentiable {
                                node: graph.describe(&names, op, &node.inputs),
                                reason,
                            }
                        }
                    }
                })?;
            for (x, d) in node.inputs.iter().zip(dx) {
                if let Some(d) = d
                    && need_of(&active, *x)
                {
                    contrib.entry(*x).or_default().push(d);
                }
            }
        }
    }
    finish(graph, g, forward_len, loss, wrt, &total)
}

fn need_of(active: &[Vec<bool>], v: Value) -> bool {
    active[v.node.index()][v.output as usize]
}

/// For every value: whether it is `f32` and depends on (or is) one of `wrt`.
fn active_values(graph: &Graph, wrt: &[Value]) -> Vec<Vec<bool>> {
    let mut active: Vec<Vec<bool>> = graph
        .nodes()
        .iter()
        .map(|n| vec![false; n.outputs.len()])
        .collect();
    for (i, node) in graph.nodes().iter().enumerate() {
        let from_inputs = node.inputs.iter().any(|v| need_of(&active, *v));
        for (k, o) in node.outputs.iter().enumerate() {
            let v = Value {
                node: sinter_ir::NodeId(i as u32),
                output: k as u32,
            };
            active[i][k] = o.ty.dtype == DType::F32 && (from_inputs || wrt.contains(&v));
        }
    }
    active
}

/// Names the gradients `grad.<name>` and sets the outputs. A gradient that is a fresh
/// backward value is renamed in place; one that is shared with another gradient, is a
/// forward value or is missing (the loss does not depend on it) gets a node of its own.
fn finish(
    forward: &Graph,
    mut g: Graph,
    forward_len: usize,
    loss: Value,
    wrt: &[Value],
    total: &HashMap<Value, Value>,
) -> Result<Gradients, AutodiffError> {
    let mut rename: HashMap<Value, String> = HashMap::new();
    let mut grads = Vec::with_capacity(wrt.len());
    for &w in wrt {
        let name = grad_name(forward.value_name(w));
        let ty = forward.ty(w).clone();
        let d = match total.get(&w) {
            Some(&d) if d.node.index() >= forward_len && !rename.contains_key(&d) => {
                rename.insert(d, name);
                d
            }
            Some(&d) => {
                let shape: Vec<i64> = ty.shape.iter().map(|&s| s as i64).collect();
                g.add_op(&[&name], sinter_ir::Op::Reshape { shape }, &[d])?[0]
            }
            None => g.add_const(&name, Tensor::zeros(&ty))?,
        };
        grads.push(d);
    }
    let mut outputs: Vec<Value> = forward.outputs().to_vec();
    if !outputs.contains(&loss) {
        outputs.push(loss);
    }
    outputs.extend(&grads);
    let mut g = if rename.is_empty() {
        g
    } else {
        rebuild(&g, &rename)?
    };
    g.set_outputs(&outputs)?;
    Ok(Gradients {
        graph: g,
        loss,
        wrt: wrt.to_vec(),
        grads,
    })
}

/// A copy of `g` with some values renamed. Nodes are re-added in order, so every [`Value`]
/// stays the same.
pub(crate) fn rebuild(g: &Graph, rename: &HashMap<Value, String>) -> Result<Graph, AutodiffError> {
    let mut out = Graph::new(g.name());
    for (i, node) in g.nodes().iter().enumerate() {
        let names: Vec<String> = node
            .outputs
            .iter()
            .enumerate()
            .map(|(k, o)| {
                let v = Value {
                    node: sinter_ir::NodeId(i as u32),
                    output: k as u32,
                };
                rename.get(&v).cloned().unwrap_or_else(|| o.name.clone())
            })
            .collect();
        match &node.kind {
            NodeKind::Input(kind) => {
                out.add_input(&names[0], node.outputs[0].ty.clone(), *kind)?;
            }
            NodeKind::Const(t) => {
                out.add_const(&names[0], t.clone())?;
            }
            NodeKind::Op(op) => {
                let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                out.add_op(&refs, op.clone(), &node.inputs)?;
            }
        }
    }
    if !g.outputs().is_empty() {
        out.set_outputs(g.outputs())?;
    }
    Ok(out)
}
