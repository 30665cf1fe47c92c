//! Canonical printer of the `.sir` format. Rules: `ir-spec/grammar.md`.

use crate::attr::Float;
use crate::graph::{Graph, InputKind, NodeKind};
use crate::tensor::{Tensor, TensorData};
use std::fmt::Write;

/// The elements of a tensor as literal text: one value when every element is bitwise equal
/// (and there is at least one), else the flat row-major list.
pub(crate) fn tensor_literal(t: &Tensor) -> String {
    fn lit<T: Copy>(v: &[T], same: impl Fn(T, T) -> bool, show: impl Fn(T) -> String) -> String {
        match v.first() {
            Some(&x) if v.iter().all(|&y| same(x, y)) => show(x),
            _ => {
                let items: Vec<String> = v.iter().map(|&y| show(y)).collect();
                format!("[{}]", items.join(", "))
            }
        }
    }
    match t.data() {
        TensorData::F32(v) => lit(
            v,
            |a, b| a.to_bits() == b.to_bits(),
            |x| Float(x).to_string(),
        ),
        TensorData::I64(v) => lit(v, |a, b| a == b, |x| x.to_string()),
        TensorData::Bool(v) => lit(v, |a, b| a == b, |x| x.to_string()),
    }
}

/// The canonical text of a graph.
pub(crate) fn graph(g: &Graph) -> String {
    let mut s = String::new();
    // Writing to a String cannot fail.
    let _ = write_graph(g, &mut s);
    s
}

fn write_graph(g: &Graph, s: &mut String) -> std::fmt::Result {
    writeln!(s, "graph @{} {{", g.name())?;
    for node in g.nodes() {
        let results: Vec<String> = node
            .outputs
            .iter()
            .map(|o| format!("%{}: {}", o.name, o.ty))
            .collect();
        let results = results.join(", ");
        match &node.kind {
            NodeKind::Input(InputKind::Data) => writeln!(s, "  input {results}")?,
            NodeKind::Input(InputKind::Param) => writeln!(s, "  param {results}")?,
            NodeKind::Const(t) => writeln!(s, "  const {results} = {}", tensor_literal(t))?,
            NodeKind::Op(op) => {
                let args: Vec<String> = node
                    .inputs
                    .iter()
                    .map(|v| format!("%{}", g.value_name(*v)))
                    .collect();
                write!(s, "  {results} = {}({})", op.name(), args.join(", "))?;
                let attrs: Vec<String> =
                    op.attrs().iter().map(|(n, v)| format!("{n}={v}")).collect();
                if !attrs.is_empty() {
                    write!(s, " {{{}}}", attrs.join(", "))?;
                }
                writeln!(s)?;
            }
        }
    }
    let outs: Vec<String> = g
        .outputs()
        .iter()
        .map(|v| format!("%{}", g.value_name(*v)))
        .collect();
    // A graph without outputs is not well-formed; print it without a trailing space anyway.
    let sep = if outs.is_empty() { "" } else { " " };
    writeln!(s, "  output{sep}{}", outs.join(", "))?;
    writeln!(s, "}}")
}
