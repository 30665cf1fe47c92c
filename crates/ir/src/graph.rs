//! The dataflow graph: SSA values produced by nodes, stored in definition order.
//!
//! A [`Graph`] is a list of [`Node`]s in which every input refers to an output of an *earlier*
//! node. That order is the SSA property and makes cycles unrepresentable: passes can walk
//! `nodes()` front to back as a topological order. Each node has one or more named, typed
//! outputs (names are unique in the graph and are the `%names` of the text format). Graph
//! inputs are nodes of kind [`NodeKind::Input`] (data, fed per run) or [`NodeKind::Param`]
//! (trainable weights); constants hold their tensor.
//!
//! Nodes are only added through [`Graph::add_input`], [`Graph::add_const`] and
//! [`Graph::add_op`], which run shape inference, so a graph built through this API is always
//! well-typed. [`Graph::verify`] re-checks everything for graphs edited by passes.

use crate::error::IrError;
use crate::infer::infer;
use crate::ops::Op;
use crate::tensor::Tensor;
use crate::types::{TensorType, checked_numel};
use smallvec::SmallVec;
use std::collections::{HashMap, HashSet};
use std::fmt;

/// Index of a node in its graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub u32);

impl NodeId {
    /// As a `usize` index into [`Graph::nodes`].
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// An SSA value: output `output` of node `node`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Value {
    /// Producing node.
    pub node: NodeId,
    /// Which of its outputs.
    pub output: u32,
}

/// How a graph input is fed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InputKind {
    /// Data fed on each run (images, labels).
    Data,
    /// A trainable parameter (weights). Fed like data, but autodiff differentiates
    /// with respect to it and an optimiser updates it.
    Param,
}

/// What a node is.
#[derive(Clone, Debug, PartialEq)]
pub enum NodeKind {
    /// A graph input.
    Input(InputKind),
    /// A constant tensor.
    Const(Tensor),
    /// An operation applied to the node's inputs.
    Op(Op),
}

/// One named, typed output of a node.
#[derive(Clone, Debug, PartialEq)]
pub struct Output {
    /// The value's name, without the `%`.
    pub name: String,
    /// The value's type.
    pub ty: TensorType,
}

/// A node: kind, inputs and outputs.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// What it is.
    pub kind: NodeKind,
    /// Operands (empty for inputs and constants).
    pub inputs: SmallVec<[Value; 4]>,
    /// Results (one for all but multi-output ops such as `split`).
    pub outputs: SmallVec<[Output; 1]>,
}

impl Node {
    /// The op, if this is an op node.
    pub fn op(&self) -> Option<&Op> {
        match &self.kind {
            NodeKind::Op(op) => Some(op),
            _ => None,
        }
    }
}

/// Largest number of elements the verifier accepts in one tensor (2^32): bigger shapes are
/// almost certainly mistakes, and refusing them early avoids absurd allocations.
pub const MAX_ELEMENTS: usize = 1 << 32;

/// Largest extent of one axis (2^32), also for tensors with no elements: it keeps every
/// shape computation far from `usize` overflow.
pub const MAX_EXTENT: usize = 1 << 32;

/// A typed dataflow graph in SSA form.
#[derive(Clone, Debug, PartialEq)]
pub struct Graph {
    name: String,
    nodes: Vec<Node>,
    outputs: Vec<Value>,
    /// Value names to values: kept in step with `nodes` by `push`.
    names: HashMap<String, Value>,
}

/// Characters allowed in value and graph names (after `%` / `@`).
pub fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.'
}

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || !name.chars().all(is_name_char) {
        return Err(format!(
            "invalid name `{name}`: names are non-empty and use only letters, digits, `_` and `.`"
        ));
    }
    Ok(())
}

impl Graph {
    /// An empty graph.
    pub fn new(name: &str) -> Graph {
        Graph {
            name: name.to_string(),
            nodes: Vec::new(),
            outputs: Vec::new(),
            names: HashMap::new(),
        }
    }

    /// The graph's name (without `@`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Nodes in definition (topological) order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// One node.
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.index()]
    }

    /// The graph outputs, in order.
    pub fn outputs(&self) -> &[Value] {
        &self.outputs
    }

    /// The type of a value.
    pub fn ty(&self, v: Value) -> &TensorType {
        &self.nodes[v.node.index()].outputs[v.output as usize].ty
    }

    /// The name of a value (without `%`).
    pub fn value_name(&self, v: Value) -> &str {
        &self.nodes[v.node.index()].outputs[v.output as usize].name
    }

    /// Finds a value by name.
    pub fn find(&self, name: &str) -> Option<Value> {
        self.names.get(name).copied()
    }

    /// Graph inputs (data and parameters) in definition order, with their kind.
    pub fn inputs(&self) -> impl Iterator<Item = (Value, InputKind)> + '_ {
        self.nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| match n.kind {
                NodeKind::Input(k) => Some((
                    Value {
                        node: NodeId(i as u32),
                        output: 0,
                    },
                    k,
                )),
                _ => None,
            })
    }

    fn push(&mut self, node: Node) -> NodeId {
        let id = NodeId(self.nodes.len() as u32);
        for (i, o) in node.outputs.iter().enumerate() {
            self.names.insert(
                o.name.clone(),
                Value {
                    node: id,
                    output: i as u32,
                },
            );
        }
        self.nodes.push(node);
        id
    }

    fn check_new_names<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> Result<(), IrError> {
        let mut fresh = HashSet::new();
        for name in names {
            check_name(name).map_err(|m| IrError::graph(&self.name, m))?;
            if self.find(name).is_some() || !fresh.insert(name) {
                return Err(IrError::graph(
                    &self.name,
                    format!("value `%{name}` is defined twice"),
                ));
            }
        }
        Ok(())
    }

    /// Adds a graph input (data or parameter).
    pub fn add_input(
        &mut self,
        name: &str,
        ty: TensorType,
        kind: InputKind,
    ) -> Result<Value, IrError> {
        self.check_new_names([name])?;
        check_type(&ty).map_err(|m| IrError::node(format!("%{name}"), m))?;
        let id = self.push(Node {
            kind: NodeKind::Input(kind),
            inputs: SmallVec::new(),
            outputs: smallvec::smallvec![Output {
                name: name.to_string(),
                ty
            }],
        });
        Ok(Value {
            node: id,
            output: 0,
        })
    }

    /// Adds a constant.
    pub fn add_const(&mut self, name: &str, tensor: Tensor) -> Result<Value, IrError> {
        self.check_new_names([name])?;
        let ty = tensor.ty();
        check_type(&ty).map_err(|m| IrError::node(format!("%{name}"), m))?;
        let id = self.push(Node {
            kind: NodeKind::Const(tensor),
            inputs: SmallVec::new(),
            outputs: smallvec::smallvec![Output {
                name: name.to_string(),
                ty
            }],
        });
        Ok(Value {
            node: id,
            output: 0,
        })
    }

    /// Adds an op node whose outputs get `names` (one per output), after checking arity and
    /// inferring output types. The error names the node, the op and the shapes.
    pub fn add_op(
        &mut self,
        names: &[&str],
        op: Op,
        inputs: &[Value],
    ) -> Result<SmallVec<[Value; 1]>, IrError> {
        for v in inputs {
            if v.node.index() >= self.nodes.len()
                || v.output as usize >= self.nodes[v.node.index()].outputs.len()
            {
                return Err(IrError::graph(
                    &self.name,
                    format!("operand {v:?} of `{}` is not defined", op.name()),
                ));
            }
        }
        let types = self.infer_node(names, &op, inputs)?;
        if types.len() != names.len() {
            return Err(IrError::node(
                self.describe(names, &op, inputs),
                format!(
                    "`{}` has {} outputs but {} names were given",
                    op.name(),
                    types.len(),
                    names.len()
                ),
            ));
        }
        self.check_new_names(names.iter().copied())?;
        let outputs = names
            .iter()
            .zip(types)
            .map(|(n, ty)| Output {
                name: n.to_string(),
                ty,
            })
            .collect();
        let id = self.push(Node {
            kind: NodeKind::Op(op),
            inputs: inputs.into(),
            outputs,
        });
        Ok((0..names.len() as u32)
            .map(|output| Value { node: id, output })
            .collect())
    }

    /// Infers output types for `op` applied to `inputs`, with errors located at the node.
    fn infer_node(
        &self,
        names: &[&str],
        op: &Op,
        inputs: &[Value],
    ) -> Result<Vec<TensorType>, IrError> {
        let tys: Vec<&TensorType> = inputs.iter().map(|v| self.ty(*v)).collect();
        let out =
            infer(op, &tys).map_err(|m| IrError::node(self.describe(names, op, inputs), m))?;
        for t in &out {
            check_type(t).map_err(|m| IrError::node(self.describe(names, op, inputs), m))?;
        }
        Ok(out)
    }

    /// `%y = conv2d(%x, %w)`: how errors name a node.
    pub fn describe(&self, names: &[&str], op: &Op, inputs: &[Value]) -> String {
        let lhs: Vec<String> = names.iter().map(|n| format!("%{n}")).collect();
        let args: Vec<String> = inputs
            .iter()
            .map(|v| format!("%{}", self.value_name(*v)))
            .collect();
        let lhs = if lhs.is_empty() {
            "_".to_string()
        } else {
            lhs.join(", ")
        };
        format!("{lhs} = {}({})", op.name(), args.join(", "))
    }

    /// Sets the graph outputs. Each must be a defined value; a value may not be listed twice.
    pub fn set_outputs(&mut self, outputs: &[Value]) -> Result<(), IrError> {
        for (i, v) in outputs.iter().enumerate() {
            if v.node.index() >= self.nodes.len()
                || v.output as usize >= self.nodes[v.node.index()].outputs.len()
            {
                return Err(IrError::graph(
                    &self.name,
                    format!("output {v:?} is not defined"),
                ));
            }
            if outputs[..i].contains(v) {
                return Err(IrError::graph(
                    &self.name,
                    format!("output `%{}` is listed twice", self.value_name(*v)),
                ));
            }
        }
        self.outputs = outputs.to_vec();
        Ok(())
    }

    /// Re-checks every invariant: names valid and unique, operands defined earlier, types
    /// equal to what inference gives, tensor sizes within [`MAX_ELEMENTS`], and at least one
    /// output. Passes call this after editing a graph.
    pub fn verify(&self) -> Result<(), IrError> {
        check_name(&self.name).map_err(|m| IrError::graph(&self.name, format!("graph {m}")))?;
        let mut seen = HashSet::new();
        for (i, node) in self.nodes.iter().enumerate() {
            for o in &node.outputs {
                check_name(&o.name).map_err(|m| IrError::graph(&self.name, m))?;
                if !seen.insert(o.name.as_str()) {
                    return Err(IrError::graph(
                        &self.name,
                        format!("value `%{}` is defined twice", o.name),
                    ));
                }
            }
            let names: Vec<&str> = node.outputs.iter().map(|o| o.name.as_str()).collect();
            for v in &node.inputs {
                if v.node.index() >= i
                    || v.output as usize >= self.nodes[v.node.index()].outputs.len()
                {
                    return Err(IrError::node(
                        format!("%{}", names.join(", %")),
                        format!("operand {v:?} is not defined before its use"),
                    ));
                }
            }
            match &node.kind {
                NodeKind::Input(_) | NodeKind::Const(_) => {
                    if !node.inputs.is_empty() || node.outputs.len() != 1 {
                        return Err(IrError::graph(
                            &self.name,
                            format!(
                                "node {i}: inputs and constants have no operands and one output"
                            ),
                        ));
                    }
                    let loc = format!("%{}", node.outputs[0].name);
                    check_type(&node.outputs[0].ty).map_err(|m| IrError::node(loc.clone(), m))?;
                    if let NodeKind::Const(t) = &node.kind
                        && t.ty() != node.outputs[0].ty
                    {
                        return Err(IrError::node(
                            loc,
                            format!(
                                "constant holds {} but is typed {}",
                                t.ty(),
                                node.outputs[0].ty
                            ),
                        ));
                    }
                }
                NodeKind::Op(op) => {
                    let inferred = self.infer_node(&names, op, &node.inputs)?;
                    let declared: Vec<&TensorType> = node.outputs.iter().map(|o| &o.ty).collect();
                    if inferred.iter().collect::<Vec<_>>() != declared {
                        let fmt = |ts: &[&TensorType]| {
                            ts.iter()
                                .map(|t| t.to_string())
                                .collect::<Vec<_>>()
                                .join(", ")
                        };
                        return Err(IrError::node(
                            self.describe(&names, op, &node.inputs),
                            format!(
                                "declared type {} but the op gives {}",
                                fmt(&declared),
                                fmt(&inferred.iter().collect::<Vec<_>>())
                            ),
                        ));
                    }
                }
            }
        }
        if self.outputs.is_empty() {
            return Err(IrError::graph(&self.name, "graph has no outputs"));
        }
        for v in &self.outputs {
            if v.node.index() >= self.nodes.len()
                || v.output as usize >= self.nodes[v.node.index()].outputs.len()
            {
                return Err(IrError::graph(
                    &self.name,
                    format!("output {v:?} is not defined"),
                ));
            }
        }
        Ok(())
    }

    /// The node dependency graph as a `petgraph` digraph (edge: producer -> consumer), for
    /// analyses such as liveness and reachability. Node weights are the [`NodeId`]s.
    pub fn dependency_graph(&self) -> petgraph::graph::DiGraph<NodeId, u32> {
        let mut g = petgraph::graph::DiGraph::with_capacity(self.nodes.len(), self.nodes.len());
        let idx: Vec<_> = (0..self.nodes.len())
            .map(|i| g.add_node(NodeId(i as u32)))
            .collect();
        for (i, n) in self.nodes.iter().enumerate() {
            for v in &n.inputs {
                g.add_edge(idx[v.node.index()], idx[i], v.output);
            }
        }
        g
    }

    /// Nodes the outputs depend on (inputs and parameters always count as live).
    pub fn live_nodes(&self) -> Vec<bool> {
        let dg = self.dependency_graph();
        let rev = petgraph::visit::Reversed(&dg);
        let mut live = vec![false; self.nodes.len()];
        for v in &self.outputs {
            let mut dfs =
                petgraph::visit::Dfs::new(rev, petgraph::graph::NodeIndex::new(v.node.index()));
            while let Some(n) = dfs.next(rev) {
                live[n.index()] = true;
            }
        }
        for (i, n) in self.nodes.iter().enumerate() {
            if matches!(n.kind, NodeKind::Input(_)) {
                live[i] = true;
            }
        }
        live
    }
}

/// Rejects shapes whose element count overflows or exceeds [`MAX_ELEMENTS`].
pub fn check_type(ty: &TensorType) -> Result<(), String> {
    if let Some(i) = ty.shape.iter().position(|&d| d > MAX_EXTENT) {
        return Err(format!("type {ty} has an extent above 2^32 on axis {i}"));
    }
    match checked_numel(&ty.shape) {
        Some(n) if n <= MAX_ELEMENTS => Ok(()),
        _ => Err(format!("type {ty} has more than 2^32 elements")),
    }
}

impl fmt::Display for Graph {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::text::print(self))
    }
}
