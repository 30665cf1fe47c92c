//! Decoding and structural checks: everything that can be said about a model before any op
//! is converted.
//!
//! The checks run in an order that gives the most useful first error: the opset (an unknown
//! one makes every later message unreliable), then **all** unsupported ops at once (the
//! question a user asks first is "what is missing?", and one at a time would take as many
//! runs as there are), then names (every input defined exactly once) and finally the order:
//! ONNX requires nodes to be sorted topologically, but exporters are not always careful, so
//! the nodes are sorted here and a cycle is reported with the nodes on it.

use crate::error::{ImportError, NodeRef};
use crate::lower;
use crate::proto::{GraphProto, ModelProto, NodeProto};
use prost::Message;
use std::collections::{HashMap, HashSet};

/// Opsets of the default domain this importer knows: 13 to 21.
pub const OPSETS: std::ops::RangeInclusive<i64> = 13..=21;

/// Decodes the protobuf bytes of a model.
pub fn decode(bytes: &[u8]) -> Result<ModelProto, ImportError> {
    if bytes.is_empty() {
        return Err(ImportError::Decode("the file is empty".into()));
    }
    ModelProto::decode(bytes).map_err(|e| ImportError::Decode(e.to_string()))
}

/// A node as errors name it. An unnamed node is named by its first output.
pub fn node_ref(node: &NodeProto) -> NodeRef {
    let name = if node.name().is_empty() {
        match node.output.first() {
            Some(o) => format!("<unnamed, output {o}>"),
            None => "<unnamed>".to_string(),
        }
    } else {
        node.name().to_string()
    };
    let op_type = match node.domain() {
        "" | "ai.onnx" => node.op_type().to_string(),
        d => format!("{d}.{}", node.op_type()),
    };
    NodeRef { name, op_type }
}

/// A model that passed the structural checks.
pub struct Checked<'a> {
    /// The main graph.
    pub graph: &'a GraphProto,
    /// The default-domain opset.
    pub opset: i64,
    /// Node indices in a topological order.
    pub order: Vec<usize>,
}

/// The default-domain opset version of a model.
pub fn opset(model: &ModelProto) -> Result<i64, ImportError> {
    let versions: Vec<i64> = model
        .opset_import
        .iter()
        .filter(|o| matches!(o.domain(), "" | "ai.onnx"))
        .map(|o| o.version())
        .collect();
    match versions.as_slice() {
        [] => Err(ImportError::Model(
            "the model imports no opset of the default ONNX domain".into(),
        )),
        [v] if OPSETS.contains(v) => Ok(*v),
        [v] => Err(ImportError::Model(format!(
            "opset {v} is not supported: this importer takes opsets {} to {} \
             (re-export the model, e.g. torch.onnx.export(..., opset_version=17))",
            OPSETS.start(),
            OPSETS.end()
        ))),
        _ => Err(ImportError::Model(format!(
            "the default ONNX domain is imported twice (opsets {versions:?})"
        ))),
    }
}

/// Runs every structural check and orders the nodes.
pub fn check(model: &ModelProto) -> Result<Checked<'_>, ImportError> {
    let graph = model
        .graph
        .as_ref()
        .ok_or_else(|| ImportError::Model("the model has no graph".into()))?;
    let opset = opset(model)?;

    let unsupported: Vec<NodeRef> = graph
        .node
        .iter()
        .filter(|n| !matches!(n.domain(), "" | "ai.onnx") || !lower::is_supported(n.op_type()))
        .map(node_ref)
        .collect();
    if !unsupported.is_empty() {
        return Err(ImportError::Unsupported(unsupported));
    }

    // Names: graph inputs and initializers, then node outputs, each defined once.
    let mut defined: HashSet<&str> = HashSet::new();
    for init in &graph.initializer {
        if !defined.insert(init.name()) {
            return Err(ImportError::Model(format!(
                "initializer `{}` is defined twice",
                init.name()
            )));
        }
    }
    for input in &graph.input {
        // An input that is also an initializer is an initializer with a default (IR >= 4).
        defined.insert(input.name());
    }
    let mut producer: HashMap<&str, usize> = HashMap::new();
    for (i, node) in graph.node.iter().enumerate() {
        for out in node.output.iter().filter(|o| !o.is_empty()) {
            if defined.contains(out.as_str()) || producer.insert(out, i).is_some() {
                return Err(ImportError::Node {
                    node: node_ref(node),
                    message: format!("output `{out}` is already defined elsewhere in the graph"),
                });
            }
        }
    }
    for node in &graph.node {
        for input in node.input.iter().filter(|i| !i.is_empty()) {
            if !defined.contains(input.as_str()) && !producer.contains_key(input.as_str()) {
                return Err(ImportError::Node {
                    node: node_ref(node),
                    message: format!(
                        "input `{input}` is not defined by any node, initializer or graph input"
                    ),
                });
            }
        }
    }
    for out in &graph.output {
        if !defined.contains(out.name()) && !producer.contains_key(out.name()) {
            return Err(ImportError::Model(format!(
                "graph output `{}` is not defined by any node, initializer or graph input",
                out.name()
            )));
        }
    }
    if graph.output.is_empty() {
        return Err(ImportError::Model("the graph has no outputs".into()));
    }

    // Kahn's algorithm, keeping the file's order among ready nodes.
    let n = graph.node.len();
    let mut deps = vec![0usize; n];
    let mut users: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, node) in graph.node.iter().enumerate() {
        let mut seen = HashSet::new();
        for input in node.input.iter().filter(|i| !i.is_empty()) {
            if let Some(&p) = producer.get(input.as_str())
                && seen.insert(p)
            {
                deps[i] += 1;
                users[p].push(i);
            }
        }
    }
    let mut ready: std::collections::BTreeSet<usize> = (0..n).filter(|&i| deps[i] == 0).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(i) = ready.pop_first() {
        order.push(i);
        for &u in &users[i] {
            deps[u] -= 1;
            if deps[u] == 0 {
                ready.insert(u);
            }
        }
    }
    if order.len() < n {
        let stuck: Vec<String> = (0..n)
            .filter(|&i| deps[i] > 0)
            .map(|i| node_ref(&graph.node[i]).to_string())
            .collect();
        return Err(ImportError::Model(format!(
            "the graph has a cycle through {}",
            stuck.join(", ")
        )));
    }
    Ok(Checked {
        graph,
        opset,
        order,
    })
}
