//! The conversion walk: ONNX nodes in topological order become Sinter values.
//!
//! Each ONNX name is bound to a [`Slot`]: a tensor known at import time, a graph value, or
//! both. Keeping the two apart is what lets static-shape models import cleanly: exporters
//! compute shapes in the graph (`Shape -> Gather -> Concat -> Reshape`), and with every shape
//! static those chains fold to constants here, while real data flows through Sinter ops.
//! A known tensor becomes a graph constant only when an op needs it as an operand
//! ([`Ctx::value`]), once per name.
//!
//! Value names: graph inputs, outputs and initializer constants keep their ONNX names (made
//! valid by [`crate::ir_name`]); values made while lowering a node are named after the node's
//! first output with a numeric suffix. A graph output that ends up with another name (an
//! `Identity` of an input, a folded constant) gets a same-shape `reshape` named after it.

use crate::ImportOptions;
use crate::error::{ImportError, NodeRef};
use crate::ir_name;
use crate::lower::{self, Node, Out};
use crate::model::{self, node_ref};
use crate::proto::{ModelProto, ValueInfoProto, tensor_shape_proto::dimension};
use crate::tensor::{dtype_of, to_tensor};
use sinter_ir::{DType, Graph, InputKind, Op, Tensor, TensorType, Value};
use std::collections::{HashMap, HashSet};

/// What an ONNX name stands for during conversion.
#[derive(Clone, Debug, Default)]
pub struct Slot {
    /// The tensor, when it is known at import time.
    pub known: Option<Tensor>,
    /// The graph value, once one exists.
    pub value: Option<Value>,
    /// A trainable initializer: it becomes a `param`, and ops on it are never folded.
    pub param: bool,
    /// The name its constant or parameter gets when materialised.
    pub name: Option<String>,
}

/// Conversion state: the graph being built and what every ONNX name is bound to.
pub struct Ctx {
    /// The graph so far.
    pub graph: Graph,
    /// The default-domain opset of the model.
    pub opset: i64,
    slots: HashMap<String, Slot>,
    reserved: HashSet<String>,
    hint: String,
    next: usize,
}

impl Ctx {
    fn new(name: &str, opset: i64) -> Ctx {
        Ctx {
            graph: Graph::new(name),
            opset,
            slots: HashMap::new(),
            reserved: HashSet::new(),
            hint: "v".into(),
            next: 0,
        }
    }

    /// A fresh value name derived from the current node.
    pub fn fresh(&mut self) -> String {
        loop {
            self.next += 1;
            let name = format!("{}.{}", self.hint, self.next);
            if self.graph.find(&name).is_none() && !self.reserved.contains(&name) {
                return name;
            }
        }
    }

    fn slot(&self, name: &str) -> Result<&Slot, String> {
        self.slots
            .get(name)
            .ok_or_else(|| format!("`{name}` is not defined before its use"))
    }

    /// The tensor bound to `name` when it is known at import time (for attributes given as
    /// inputs: shapes, axes, pads). Trainable initializers count as known here.
    pub fn known(&self, name: &str) -> Option<&Tensor> {
        self.slots.get(name).and_then(|s| s.known.as_ref())
    }

    /// The tensor bound to `name` if ops on it may be folded (known and not trainable).
    pub fn foldable(&self, name: &str) -> Option<&Tensor> {
        self.slots
            .get(name)
            .filter(|s| !s.param)
            .and_then(|s| s.known.as_ref())
    }

    /// The type of `name`, without materialising it.
    pub fn type_of(&self, name: &str) -> Result<TensorType, String> {
        let s = self.slot(name)?;
        match (&s.value, &s.known) {
            (Some(v), _) => Ok(self.graph.ty(*v).clone()),
            (None, Some(t)) => Ok(t.ty()),
            (None, None) => Err(format!("`{name}` has no value")),
        }
    }

    /// The graph value of `name`, making a constant (or parameter) of a known tensor.
    pub fn value(&mut self, name: &str) -> Result<Value, String> {
        let s = self.slot(name)?.clone();
        if let Some(v) = s.value {
            return Ok(v);
        }
        let t = s.known.ok_or_else(|| format!("`{name}` has no value"))?;
        let vname = match s.name {
            Some(n) if self.graph.find(&n).is_none() => n,
            _ => self.fresh(),
        };
        let v = if s.param {
            self.graph.add_input(&vname, t.ty(), InputKind::Param)
        } else {
            self.graph.add_const(&vname, t)
        }
        .map_err(|e| e.to_string())?;
        self.slots.get_mut(name).expect("slot").value = Some(v);
        Ok(v)
    }

    /// A constant with a fresh name.
    pub fn constant(&mut self, t: Tensor) -> Result<Value, String> {
        let name = self.fresh();
        self.graph.add_const(&name, t).map_err(|e| e.to_string())
    }

    /// An `f32[]` constant.
    pub fn scalar(&mut self, v: f32) -> Result<Value, String> {
        self.constant(Tensor::scalar(v))
    }

    /// Applies a single-output op, with a fresh name.
    pub fn op(&mut self, op: Op, inputs: &[Value]) -> Result<Value, String> {
        Ok(self.op_multi(op, inputs, 1)?[0])
    }

    /// Applies an op with `n` outputs, with fresh names.
    pub fn op_multi(&mut self, op: Op, inputs: &[Value], n: usize) -> Result<Vec<Value>, String> {
        let names: Vec<String> = (0..n).map(|_| self.fresh()).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let vs = self
            .graph
            .add_op(&refs, op, inputs)
            .map_err(|e| e.to_string())?;
        Ok(vs.to_vec())
    }

    /// The type of a graph value.
    pub fn ty(&self, v: Value) -> TensorType {
        self.graph.ty(v).clone()
    }

    /// The shape of a graph value.
    pub fn shape(&self, v: Value) -> Vec<usize> {
        self.graph.ty(v).shape.to_vec()
    }

    fn bind(&mut self, name: &str, out: Out) {
        let slot = match out {
            Out::Value(v) => Slot {
                value: Some(v),
                ..Slot::default()
            },
            Out::Known(t) => Slot {
                known: Some(t),
                ..Slot::default()
            },
        };
        self.slots.insert(name.to_string(), slot);
    }
}

fn model_err(e: impl Into<String>) -> ImportError {
    ImportError::Model(e.into())
}

/// The static type of a graph input, with the shape fixed by `options` where given.
fn input_type(vi: &ValueInfoProto, options: &ImportOptions) -> Result<TensorType, ImportError> {
    let name = vi.name();
    let tensor = match vi.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        Some(crate::proto::type_proto::Value::TensorType(t)) => t,
        _ => {
            return Err(model_err(format!(
                "graph input `{name}` is not a tensor (sequences, maps and optionals are not supported)"
            )));
        }
    };
    let dtype = match dtype_of(tensor.elem_type()) {
        Ok(DType::F32) if tensor.elem_type() != 1 => Err("double is not supported".to_string()),
        other => other,
    }
    .map_err(|e| model_err(format!("graph input `{name}`: {e}")))?;
    let given = options.shapes.get(name);
    let dims = match tensor.shape.as_ref() {
        Some(s) => &s.dim[..],
        None => match given {
            Some(g) => return Ok(TensorType::new(dtype, g)),
            None => {
                return Err(model_err(format!(
                    "graph input `{name}` has no shape: give one with --shape {name}=DxDx..."
                )));
            }
        },
    };
    if let Some(g) = given
        && g.len() != dims.len()
    {
        return Err(model_err(format!(
            "--shape {name}: the model's input has rank {}, the option gives {} extents",
            dims.len(),
            g.len()
        )));
    }
    let mut shape = Vec::with_capacity(dims.len());
    for (axis, d) in dims.iter().enumerate() {
        let fixed = match &d.value {
            Some(dimension::Value::DimValue(v)) if *v >= 0 => Some(*v as usize),
            _ => None,
        };
        let extent = match (fixed, given) {
            (Some(f), Some(g)) if g[axis] != f => {
                return Err(model_err(format!(
                    "--shape {name}: axis {axis} is {} in the model, the option gives {}",
                    f, g[axis]
                )));
            }
            (Some(f), _) => f,
            (None, Some(g)) => g[axis],
            (None, None) => {
                let what = match &d.value {
                    Some(dimension::Value::DimParam(p)) if !p.is_empty() => format!("`{p}`"),
                    _ => "of unknown extent".to_string(),
                };
                return Err(model_err(format!(
                    "graph input `{name}` has a dynamic dimension {what} on axis {axis}: \
                     Sinter shapes are static, fix it with --shape {name}=DxDx... \
                     (ImportOptions::shapes)"
                )));
            }
        };
        shape.push(extent);
    }
    Ok(TensorType::new(dtype, &shape))
}

/// Converts a decoded model into a verified graph.
pub fn convert(model: &ModelProto, options: &ImportOptions) -> Result<Graph, ImportError> {
    let checked = model::check(model)?;
    let g = checked.graph;
    let graph_name = if g.name().is_empty() {
        "onnx"
    } else {
        g.name()
    };
    let mut cx = Ctx::new(&ir_name(graph_name), checked.opset);

    let inits: HashSet<&str> = g.initializer.iter().map(|t| t.name()).collect();
    for name in options.shapes.keys() {
        if !g.input.iter().any(|i| i.name() == name) || inits.contains(name.as_str()) {
            let inputs: Vec<&str> = g
                .input
                .iter()
                .map(|i| i.name())
                .filter(|n| !inits.contains(n))
                .collect();
            return Err(model_err(format!(
                "--shape names `{name}`, which is not a graph input (inputs: {})",
                inputs.join(", ")
            )));
        }
    }
    // Names that must stay available: graph inputs and outputs and initializers.
    for n in g
        .input
        .iter()
        .map(|i| i.name())
        .chain(g.output.iter().map(|o| o.name()))
        .chain(inits.iter().copied())
    {
        cx.reserved.insert(ir_name(n));
    }
    for init in &g.initializer {
        let t = to_tensor(init)
            .map_err(|e| model_err(format!("initializer `{}`: {e}", init.name())))?;
        let param = options.trainable && t.dtype() == DType::F32;
        cx.slots.insert(
            init.name().to_string(),
            Slot {
                known: Some(t),
                value: None,
                param,
                name: Some(ir_name(init.name())),
            },
        );
    }
    for vi in g.input.iter().filter(|i| !inits.contains(i.name())) {
        let ty = input_type(vi, options)?;
        let v = cx
            .graph
            .add_input(&ir_name(vi.name()), ty, InputKind::Data)
            .map_err(|e| {
                model_err(format!(
                    "graph input `{}`: {} (names are made valid by replacing other characters with `_`)",
                    vi.name(),
                    e.message
                ))
            })?;
        cx.bind(vi.name(), Out::Value(v));
    }

    for &i in &checked.order {
        let proto = &g.node[i];
        let node = Node::new(proto);
        cx.hint = ir_name(proto.output.first().map(String::as_str).unwrap_or("v"));
        cx.next = 0;
        let err = |message: String| ImportError::Node {
            node: node_ref(proto),
            message,
        };
        let outs = lower::lower(&mut cx, &node).map_err(err)?;
        for (k, name) in proto.output.iter().enumerate() {
            if name.is_empty() {
                continue;
            }
            match outs.get(k) {
                Some(Some(out)) => cx.bind(name, out.clone()),
                _ => {
                    return Err(err(format!(
                        "output {k} (`{name}`) is not supported: only the first {} output(s) can be used",
                        outs.iter().filter(|o| o.is_some()).count()
                    )));
                }
            }
        }
    }

    let mut outputs = Vec::new();
    let mut rename: HashMap<Value, String> = HashMap::new();
    for o in &g.output {
        let want = ir_name(o.name());
        cx.hint = want.clone();
        let node = NodeRef {
            name: o.name().to_string(),
            op_type: "graph output".into(),
        };
        let err = |message: String| ImportError::Node {
            node: node.clone(),
            message,
        };
        let mut v = cx.value(o.name()).map_err(err)?;
        let is_input = matches!(cx.graph.node(v.node).kind, sinter_ir::NodeKind::Input(_));
        if cx.graph.value_name(v) != want || outputs.contains(&v) {
            if !is_input && !outputs.contains(&v) && !rename.contains_key(&v) {
                // Made while lowering: it takes the output's name when the graph is rebuilt.
                rename.insert(v, want);
            } else {
                let shape = cx.shape(v).iter().map(|&d| d as i64).collect();
                v = cx
                    .graph
                    .add_op(&[&want], Op::Reshape { shape }, &[v])
                    .map_err(|e| err(e.to_string()))?[0];
            }
        }
        outputs.push(v);
    }
    cx.graph
        .set_outputs(&outputs)
        .map_err(|e| model_err(e.to_string()))?;
    let graph = rebuild(&cx.graph, &rename).map_err(|e| model_err(e.to_string()))?;
    graph.verify().map_err(|e| model_err(e.to_string()))?;
    Ok(graph)
}

/// Copies the nodes the outputs depend on (and every input) into a new graph, renaming the
/// values in `rename`. This drops what lowering made but nothing uses (constants folded away,
/// unused outputs of multi-output ops stay with their node) and gives graph outputs their
/// ONNX names without copies.
fn rebuild(old: &Graph, rename: &HashMap<Value, String>) -> Result<Graph, sinter_ir::IrError> {
    let live = old.live_nodes();
    let mut g = Graph::new(old.name());
    let mut map: HashMap<Value, Value> = HashMap::new();
    for (i, node) in old.nodes().iter().enumerate() {
        if !live[i] {
            continue;
        }
        let id = sinter_ir::NodeId(i as u32);
        let names: Vec<String> = (0..node.outputs.len() as u32)
            .map(|output| {
                let v = Value { node: id, output };
                rename
                    .get(&v)
                    .cloned()
                    .unwrap_or_else(|| old.value_name(v).to_string())
            })
            .collect();
        let new: Vec<Value> = match &node.kind {
            sinter_ir::NodeKind::Input(k) => {
                vec![g.add_input(&names[0], node.outputs[0].ty.clone(), *k)?]
            }
            sinter_ir::NodeKind::Const(t) => vec![g.add_const(&names[0], t.clone())?],
            sinter_ir::NodeKind::Op(op) => {
                let ins: Vec<Value> = node.inputs.iter().map(|v| map[v]).collect();
                let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                g.add_op(&refs, op.clone(), &ins)?.to_vec()
            }
        };
        for (output, v) in new.into_iter().enumerate() {
            map.insert(
                Value {
                    node: id,
                    output: output as u32,
                },
                v,
            );
        }
    }
    let outs: Vec<Value> = old.outputs().iter().map(|v| map[v]).collect();
    g.set_outputs(&outs)?;
    Ok(g)
}
