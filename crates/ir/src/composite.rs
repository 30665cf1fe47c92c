//! Composite ops: ops defined by their expansion into primitives.
//!
//! `stochastic_pool2d` is an op so that a model can say what it means and the stages that
//! care can find it: [`inference_graph`](../../sinter_autodiff/fn.inference_graph.html)
//! replaces it by its inference form (the probability-weighted average), as it replaces
//! `dropout` by the identity. Everything else (the interpreter, autodiff, the optimiser, the
//! lowering) calls [`expand_composites`] on entry and sees only the primitives of its training
//! form, which every stage already handles: one definition of the semantics, written once,
//! and the JIT draws bit for bit what the interpreter draws.
//!
//! The expansions are spelled out in `ir-spec/compositions.md` (Stochastic pooling).

use crate::error::IrError;
use crate::graph::{Graph, NodeKind, Value};
use crate::ops::Op;
use crate::tensor::Tensor;
use std::borrow::Cow;
use std::collections::HashMap;

type R<T> = Result<T, IrError>;

/// Whether `op` is a composite op (expanded by [`expand_composites`]).
pub fn is_composite(op: &Op) -> bool {
    matches!(op, Op::StochasticPool2d { .. })
}

/// Adds ops and constants under names derived from one result name (`<name>.<suffix>`), so
/// an expansion never takes a name a later node of the original graph holds (which a
/// numbering like the builder's could).
struct Emit<'a> {
    g: &'a mut Graph,
    name: &'a str,
}

impl Emit<'_> {
    fn op(&mut self, suffix: &str, op: Op, ins: &[Value]) -> R<Value> {
        let name = format!("{}.{suffix}", self.name);
        Ok(self.g.add_op(&[&name], op, ins)?[0])
    }

    fn reshape(&mut self, suffix: &str, x: Value, shape: &[usize]) -> R<Value> {
        let shape = shape.iter().map(|&d| d as i64).collect();
        self.op(suffix, Op::Reshape { shape }, &[x])
    }

    /// Swaps axes 3 and 4 of a rank-6 value: `[N,C,oH,k,oW,k]` <-> `[N,C,oH,oW,k,k]`, the
    /// window gathering's transposition and its own inverse.
    fn swap_window_axes(&mut self, suffix: &str, x: Value) -> R<Value> {
        let perm = vec![0, 1, 2, 4, 3, 5];
        self.op(suffix, Op::Transpose { perm }, &[x])
    }

    fn scalar(&mut self, suffix: &str, v: f32) -> R<Value> {
        let name = format!("{}.{suffix}", self.name);
        self.g.add_const(&name, Tensor::scalar(v))
    }

    /// The `k x k` windows of NCHW `x` as a last axis of `k*k`, their sums (keepdims) and the
    /// sums with 0 replaced by 1.
    fn windows(&mut self, x: Value, k: usize) -> R<(Value, Value, [usize; 5])> {
        let &[n, c, h, w] = self.g.ty(x).shape.as_slice() else {
            return Err(IrError::node(
                format!("%{} ({})", self.g.value_name(x), self.g.ty(x)),
                "stochastic_pool2d needs an NCHW input",
            ));
        };
        if k == 0 || !h.is_multiple_of(k) || !w.is_multiple_of(k) {
            return Err(IrError::node(
                format!("%{} ({})", self.g.value_name(x), self.g.ty(x)),
                format!("stochastic_pool2d: window {k} must divide the height {h} and width {w}"),
            ));
        }
        let (oh, ow, kk) = (h / k, w / k, k * k);
        let r = self.reshape("rows", x, &[n, c, oh, k, ow, k])?;
        let t = self.swap_window_axes("cols", r)?;
        let win = self.reshape("win", t, &[n, c, oh, ow, kk])?;
        let sum = self.op(
            "sum",
            Op::ReduceSum {
                axes: vec![4],
                keepdims: true,
            },
            &[win],
        )?;
        let zero = self.scalar("zero", 0.0)?;
        let positive = self.op("positive", Op::Greater {}, &[sum, zero])?;
        let one = self.scalar("one", 1.0)?;
        let safe = self.op("safe_sum", Op::Select {}, &[positive, sum, one])?;
        Ok((win, safe, [n, c, oh, ow, kk]))
    }
}

/// The drawn element of each window of `stochastic_pool2d {kernel=k, seed}(x, counter)` as a
/// one-hot mask over the windows, `f32[N,C,H/k,W/k,k*k]`, and the windows themselves (same
/// shape); intermediate values are called `<name>.<part>`. The training form multiplies the
/// two and sums; the gradient rule recomputes the mask (the draw is a pure function of seed,
/// counter and index, so it is the forward's) to route the output gradient to the drawn
/// element.
pub fn stochastic_pool_pick(
    g: &mut Graph,
    name: &str,
    x: Value,
    k: usize,
    seed: i64,
    counter: Option<Value>,
) -> R<(Value, Value)> {
    let mut e = Emit { g, name };
    let (win, safe, shape) = e.windows(x, k)?;
    let p = e.op("p", Op::Div {}, &[win, safe])?;
    let logp = e.op("logp", Op::Log {}, &[p])?;
    let draw = Op::RandomUniform {
        shape: shape.iter().map(|&d| d as i64).collect(),
        low: crate::Float(f32::MIN_POSITIVE),
        high: crate::Float(1.0),
        seed,
    };
    let u = match counter {
        Some(ctr) => e.op("u", draw, &[ctr])?,
        None => e.op("u", draw, &[])?,
    };
    let lu = e.op("log_u", Op::Log {}, &[u])?;
    let nlu = e.op("neg_log_u", Op::Neg {}, &[lu])?;
    let llu = e.op("gumbel", Op::Log {}, &[nlu])?;
    let score = e.op("score", Op::Sub {}, &[logp, llu])?;
    let idx = e.op(
        "index",
        Op::Argmax {
            axis: 4,
            keepdims: false,
        },
        &[score],
    )?;
    let pick = e.op(
        "pick",
        Op::OneHot {
            depth: shape[4] as i64,
        },
        &[idx],
    )?;
    Ok((pick, win))
}

/// Values of `f32[N,C,H/k,W/k,k*k]` (one per window element) back in NCHW `f32[N,C,H,W]`
/// positions: the inverse of the window gathering, for the gradient rule.
pub fn stochastic_pool_scatter(g: &mut Graph, name: &str, wins: Value, k: usize) -> R<Value> {
    let &[n, c, oh, ow, _] = g.ty(wins).shape.as_slice() else {
        return Err(IrError::node(
            format!("%{} ({})", g.value_name(wins), g.ty(wins)),
            "expected windows of rank 5",
        ));
    };
    let mut e = Emit { g, name };
    let r = e.reshape("split", wins, &[n, c, oh, ow, k, k])?;
    let t = e.swap_window_axes("rows", r)?;
    e.reshape("nchw", t, &[n, c, oh * k, ow * k])
}

/// The training form of `stochastic_pool2d` on `x` (`counter`: its optional i64 counter),
/// whose result is called `name`: Gumbel-max sampling within each window.
fn stochastic_pool_training(
    g: &mut Graph,
    name: &str,
    x: Value,
    k: usize,
    seed: i64,
    counter: Option<Value>,
) -> R<Value> {
    let (pick, win) = stochastic_pool_pick(g, name, x, k, seed, counter)?;
    let mut e = Emit { g, name };
    let chosen = e.op("chosen", Op::Mul {}, &[pick, win])?;
    let sum = Op::ReduceSum {
        axes: vec![4],
        keepdims: false,
    };
    Ok(g.add_op(&[name], sum, &[chosen])?[0])
}

/// The inference form of `stochastic_pool2d {kernel=k}` on `x`, whose result is called
/// `name`: each window's probability-weighted average `sum(x^2) / sum(x)` (0 for an all-zero
/// window).
pub fn stochastic_pool_inference(g: &mut Graph, name: &str, x: Value, k: usize) -> R<Value> {
    let mut e = Emit { g, name };
    let (win, safe, _) = e.windows(x, k)?;
    let sq = e.op("sq", Op::Mul {}, &[win, win])?;
    let sum = |keepdims| Op::ReduceSum {
        axes: vec![4],
        keepdims,
    };
    let num = e.op("num", sum(false), &[sq])?;
    let den = e.op("den", sum(false), &[safe])?;
    Ok(g.add_op(&[name], Op::Div {}, &[num, den])?[0])
}

/// `g` with every composite op replaced by its expansion (the training form); `g` itself,
/// borrowed, when it has none. Every name of `g` keeps its value; the expansion's
/// intermediate values are called `<result>.<part>`.
pub fn expand_composites(g: &Graph) -> R<Cow<'_, Graph>> {
    if !g.nodes().iter().any(|n| n.op().is_some_and(is_composite)) {
        return Ok(Cow::Borrowed(g));
    }
    let mut out = Graph::new(g.name());
    let mut map: HashMap<Value, Value> = HashMap::new();
    for (i, node) in g.nodes().iter().enumerate() {
        let old = |k: usize| Value {
            node: crate::NodeId(i as u32),
            output: k as u32,
        };
        let ins: Vec<Value> = node.inputs.iter().map(|v| map[v]).collect();
        let names: Vec<&str> = node.outputs.iter().map(|o| o.name.as_str()).collect();
        let vs: Vec<Value> = match &node.kind {
            NodeKind::Input(kind) => {
                vec![out.add_input(names[0], node.outputs[0].ty.clone(), *kind)?]
            }
            NodeKind::Const(t) => vec![out.add_const(names[0], t.clone())?],
            NodeKind::Op(Op::StochasticPool2d { kernel, seed }) => {
                vec![stochastic_pool_training(
                    &mut out,
                    names[0],
                    ins[0],
                    *kernel as usize,
                    *seed,
                    ins.get(1).copied(),
                )?]
            }
            NodeKind::Op(op) => out.add_op(&names, op.clone(), &ins)?.to_vec(),
        };
        for (k, v) in vs.into_iter().enumerate() {
            map.insert(old(k), v);
        }
    }
    let outs: Vec<Value> = g.outputs().iter().map(|v| map[v]).collect();
    out.set_outputs(&outs)?;
    Ok(Cow::Owned(out))
}
