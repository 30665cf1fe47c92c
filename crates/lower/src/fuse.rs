//! Elementwise fusion: one kernel for a chain of elementwise ops.
//!
//! The root (the chain's last op) loops over its output; every fused producer becomes a scalar
//! variable set from its own elementwise expression ([`crate::ops::elementwise`], the same one
//! the unfused kernel uses), in definition order, so each intermediate is computed once per
//! element and never stored. Only values read once and of the root's shape are fused (see
//! `fusable`), so every fused producer is indexed exactly like the root.

use crate::Step;
use crate::loops::{Buf, Expr, Kernel, Stmt, Ty, load};
use crate::ops::{LowerOptions, bcast_index, elementwise, linear, nest};
use sinter_ir::types::strides;
use sinter_ir::{Graph, NodeId, Value};
use std::collections::HashMap;

/// Builds the fused kernel rooted at node `root`.
pub(crate) fn fused_kernel(graph: &Graph, root: usize, fused: &[bool], opt: LowerOptions) -> Step {
    let nodes = graph.nodes();
    let out_ty = nodes[root].outputs[0].ty.clone();
    let mut k = Kernel::new(format!("fused_{}", nodes[root].outputs[0].name));
    // The fused producers in definition order (all are earlier than the root).
    let mut members = Vec::new();
    collect(graph, root, fused, &mut members);
    members.sort_unstable();
    members.dedup();
    // Leaf values read from memory.
    let mut leaves: Vec<Value> = Vec::new();
    for &m in &members {
        for &v in &nodes[m].inputs {
            if !fused[v.node.index()] && !leaves.contains(&v) {
                leaves.push(v);
            }
        }
    }
    let mut bufs: HashMap<Value, Buf> = HashMap::new();
    let mut args = Vec::new();
    for &v in &leaves {
        let t = graph.ty(v);
        bufs.insert(
            v,
            k.buf(graph.value_name(v), Ty::of(t.dtype), t.numel(), false),
        );
        args.push(v);
    }
    let root_val = Value {
        node: NodeId(root as u32),
        output: 0,
    };
    let o = k.buf(
        &nodes[root].outputs[0].name,
        Ty::of(out_ty.dtype),
        out_ty.numel(),
        true,
    );
    args.push(root_val);
    let flat = leaves.iter().all(|&v| {
        let t = graph.ty(v);
        t.numel() == 1 || t.shape == out_ty.shape
    });
    let shape: Vec<usize> = if flat {
        vec![out_ty.numel()]
    } else {
        out_ty.shape.to_vec()
    };
    let body = nest(&mut k, &shape, "i", |k, idx| {
        let mut vars: HashMap<usize, Expr> = HashMap::new();
        let mut body = Vec::new();
        for &m in &members {
            let node = &nodes[m];
            let dtypes: Vec<_> = node.inputs.iter().map(|&v| graph.ty(v).dtype).collect();
            let operands: Vec<Expr> = node
                .inputs
                .iter()
                .map(|&v| match vars.get(&v.node.index()) {
                    Some(e) => e.clone(),
                    None => {
                        let t = graph.ty(v);
                        let i = if t.numel() == 1 {
                            Expr::I(0)
                        } else if flat {
                            idx[0].clone()
                        } else {
                            bcast_index(idx, &t.shape, &out_ty.shape)
                        };
                        load(bufs[&v], i)
                    }
                })
                .collect();
            let op = node.op().expect("fused nodes are ops");
            let e = elementwise(op, &dtypes, operands, opt).expect("fused nodes are elementwise");
            if m == root {
                let at = if flat {
                    idx[0].clone()
                } else {
                    linear(idx, &strides(&out_ty.shape))
                };
                body.push(Stmt::Store(o, at, e));
            } else {
                let var = k.var("t", Ty::of(node.outputs[0].ty.dtype));
                body.push(Stmt::Set(var, e));
                vars.insert(m, Expr::v(var));
            }
        }
        body
    });
    k.body = body;
    let mut nodes = members;
    nodes.push(root);
    nodes.sort_unstable();
    nodes.dedup();
    Step {
        kernel: k,
        args,
        nodes,
    }
}

fn collect(graph: &Graph, n: usize, fused: &[bool], out: &mut Vec<usize>) {
    out.push(n);
    for v in &graph.nodes()[n].inputs {
        if fused[v.node.index()] {
            collect(graph, v.node.index(), fused, out);
        }
    }
}
