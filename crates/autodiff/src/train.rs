//! Training graphs: forward, loss, backward and optimiser update as ONE graph.
//!
//! [`training_graph`] differentiates the loss with respect to every parameter and appends
//! gradient clipping, weight decay and the optimiser update. Everything a step changes is a
//! graph input whose new value is a graph output: the parameters (`w` -> `w.next`), the
//! optimiser state (`opt.w.m` -> `opt.w.m.next`, `opt.step` -> `opt.step.next`) and the
//! running statistics of every `batch_norm_train` (`bn.running_mean` -> `bn.running_mean.next`).
//! A runtime feeds the outputs back as the next step's inputs ([`TrainingGraph::feedback`]).
//! The learning rate is the `f32[]` input `lr`, so schedules ([`crate::schedule`]) live on the
//! host and the compiled step never changes. Being one graph, the step is optimised and
//! compiled as a whole: activations the backward pass needs are kept, the rest freed.
//!
//! [`inference_graph`] turns the forward graph into its inference form: `batch_norm_train`
//! becomes `batch_norm` reading the running statistics, and `dropout` the identity.

use crate::emit::Emitter;
use crate::error::AutodiffError;
use crate::grad::{grad, params, rebuild};
use sinter_ir::{Graph, InputKind, NodeId, NodeKind, Op, Tensor, TensorType, Value};
use std::collections::HashMap;

/// The optimiser of a training graph.
#[derive(Clone, Debug, PartialEq)]
pub enum Optimizer {
    /// Stochastic gradient descent, as PyTorch's `SGD` without dampening: with momentum
    /// `mu > 0`, `buf = mu buf + g` and the step is `buf` (`g + mu buf` when `nesterov`);
    /// with `mu = 0` the step is `g` and there is no state.
    Sgd {
        /// Momentum `mu` in `[0, 1)`.
        momentum: f32,
        /// Nesterov momentum.
        nesterov: bool,
    },
    /// Adam (Kingma and Ba) with bias correction:
    /// `m = b1 m + (1-b1) g`, `v = b2 v + (1-b2) g^2`,
    /// `p -= lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)`.
    Adam {
        /// Decay of the first moment.
        beta1: f32,
        /// Decay of the second moment.
        beta2: f32,
        /// Added to the denominator.
        eps: f32,
    },
    /// AdamW (Loshchilov and Hutter): Adam plus the decoupled decay `p -= lr wd p`, applied
    /// to the parameter before the Adam step (as PyTorch does).
    AdamW {
        /// Decay of the first moment.
        beta1: f32,
        /// Decay of the second moment.
        beta2: f32,
        /// Added to the denominator.
        eps: f32,
        /// Decoupled weight decay `wd`.
        weight_decay: f32,
    },
}

impl Optimizer {
    /// Adam with the usual constants (0.9, 0.999, 1e-8).
    pub fn adam() -> Optimizer {
        Optimizer::Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }

    /// Plain SGD with momentum `momentum` (0 for none).
    pub fn sgd(momentum: f32) -> Optimizer {
        Optimizer::Sgd {
            momentum,
            nesterov: false,
        }
    }
}

/// Gradient clipping, applied to the raw gradients before weight decay and the update.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Clip {
    /// Scale every gradient by `min(1, c / ||g||)`, `||g||` being the 2-norm of all
    /// gradients together (PyTorch's `clip_grad_norm_`, without its 1e-6 in the divisor).
    GlobalNorm(f32),
    /// Clamp every gradient element to `[-c, c]`.
    Value(f32),
}

/// How a training graph updates its parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainConfig {
    /// The optimiser.
    pub optimizer: Optimizer,
    /// L2 weight decay: `wd * p` is added to every parameter's gradient (after clipping).
    pub weight_decay: f32,
    /// Optional gradient clipping.
    pub clip: Option<Clip>,
    /// Momentum of the batch-norm running statistics: `running = (1 - m) running + m batch`
    /// (the variance uses the unbiased batch variance, as PyTorch does). 0.1 by default.
    pub bn_momentum: f32,
}

impl TrainConfig {
    /// A configuration with `optimizer`, no weight decay, no clipping, batch-norm momentum 0.1.
    pub fn new(optimizer: Optimizer) -> TrainConfig {
        TrainConfig {
            optimizer,
            weight_decay: 0.0,
            clip: None,
            bn_momentum: 0.1,
        }
    }
}

/// The running statistics kept for one `batch_norm_train` node.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchNormStats {
    /// The name of the node's first output (`y`).
    pub node: String,
    /// The running-mean input (`<node>.running_mean`), initially 0.
    pub mean: String,
    /// The running-variance input (`<node>.running_var`), initially 1.
    pub var: String,
}

/// A compiled-as-one training step; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct TrainingGraph {
    /// The step: inputs are the forward graph's data inputs, its parameters, `lr` and the
    /// state; outputs are the loss, the forward graph's other outputs, then every
    /// `*.next` value of [`TrainingGraph::feedback`].
    pub graph: Graph,
    /// The loss output's name.
    pub loss: String,
    /// The learning-rate input's name (`lr`, `f32[]`).
    pub lr: String,
    /// The parameters, in the forward graph's order.
    pub params: Vec<String>,
    /// Optimiser state and running statistics: input name and initial value.
    pub state: Vec<(String, Tensor)>,
    /// `(output, input)`: after a step, the output's value is the input's next value
    /// (parameters and state alike).
    pub feedback: Vec<(String, String)>,
    /// The running statistics of each `batch_norm_train`, in graph order.
    pub batch_norm: Vec<BatchNormStats>,
    /// The data inputs a batch must feed (the forward graph's `input`s).
    pub data: Vec<String>,
}

impl TrainingGraph {
    /// The initial optimiser state and running statistics, by input name.
    pub fn initial_state(&self) -> HashMap<String, Tensor> {
        self.state.iter().cloned().collect()
    }
}

/// The name of the value that holds `name`'s next value in a training graph.
pub fn next_name(name: &str) -> String {
    format!("{name}.next")
}

/// The `f32[]` step counter input of optimisers that count steps (Adam, AdamW).
pub const STEP: &str = "opt.step";

/// Builds the training step of `forward` with the `f32[]` loss `loss`; see the
/// [module docs](self). Every parameter is trained.
pub fn training_graph(
    forward: &Graph,
    loss: Value,
    cfg: &TrainConfig,
) -> Result<TrainingGraph, AutodiffError> {
    let ps = params(forward);
    let gr = grad(forward, loss, &ps)?;
    let mut g = gr.graph;
    let param_names: Vec<String> = ps
        .iter()
        .map(|&p| forward.value_name(p).to_string())
        .collect();
    let mut state: Vec<(String, Tensor)> = Vec::new();
    let mut feedback: Vec<(String, String)> = Vec::new();
    let mut next: Vec<Value> = Vec::new();

    let lr = g.add_input("lr", TensorType::f32(&[]), InputKind::Data)?;
    let mut add_state =
        |g: &mut Graph, name: String, init: Tensor| -> Result<Value, AutodiffError> {
            let v = g.add_input(&name, init.ty(), InputKind::Data)?;
            state.push((name, init));
            Ok(v)
        };
    // Inputs first, so that emitting the update can refer to them.
    let counts_steps = matches!(
        cfg.optimizer,
        Optimizer::Adam { .. } | Optimizer::AdamW { .. }
    );
    let step = if counts_steps {
        Some(add_state(&mut g, STEP.to_string(), Tensor::scalar(0.0))?)
    } else {
        None
    };
    let mut slots: Vec<Vec<Value>> = Vec::new();
    for (p, name) in ps.iter().zip(&param_names) {
        let ty = forward.ty(*p).clone();
        let names: Vec<String> = match cfg.optimizer {
            Optimizer::Sgd { momentum, .. } if momentum != 0.0 => vec![format!("opt.{name}.buf")],
            Optimizer::Sgd { .. } => vec![],
            Optimizer::Adam { .. } | Optimizer::AdamW { .. } => {
                vec![format!("opt.{name}.m"), format!("opt.{name}.v")]
            }
        };
        let mut vs = Vec::new();
        for n in names {
            vs.push(add_state(&mut g, n, Tensor::zeros(&ty))?);
        }
        slots.push(vs);
    }
    let bn_nodes: Vec<(usize, String)> = forward
        .nodes()
        .iter()
        .enumerate()
        .filter(|(_, n)| matches!(n.kind, NodeKind::Op(Op::BatchNormTrain { .. })))
        .map(|(i, n)| (i, n.outputs[0].name.clone()))
        .collect();
    let mut bn_inputs = Vec::new();
    for (i, name) in &bn_nodes {
        let c = forward.nodes()[*i].outputs[1].ty.shape[0];
        let m = add_state(
            &mut g,
            format!("{name}.running_mean"),
            Tensor::zeros(&TensorType::f32(&[c])),
        )?;
        let v = add_state(
            &mut g,
            format!("{name}.running_var"),
            Tensor::full(&[c], 1.0),
        )?;
        bn_inputs.push((m, v));
    }

    let mut names_out: Vec<String> = Vec::new();
    {
        let mut e = Emitter::new(&mut g, "u");
        let grads = clip(&mut e, &gr.grads, cfg.clip)?;
        // The step number t = step + 1 of this update.
        let t = match step {
            Some(s) => {
                let one = e.scalar(1.0)?;
                let t = e.add(s, one)?;
                next.push(t);
                names_out.push(next_name(STEP));
                feedback.push((next_name(STEP), STEP.to_string()));
                Some(t)
            }
            None => None,
        };
        for (i, (&p, mut d)) in ps.iter().zip(grads).enumerate() {
            if cfg.weight_decay != 0.0 {
                let wd = e.scale(p, cfg.weight_decay)?;
                d = e.add(d, wd)?;
            }
            let (p_next, st_next) = update(&mut e, &cfg.optimizer, p, d, lr, t, &slots[i])?;
            next.push(p_next);
            names_out.push(next_name(&param_names[i]));
            feedback.push((next_name(&param_names[i]), param_names[i].clone()));
            for (s, sn) in slots[i].iter().zip(st_next) {
                let n = e.g.value_name(*s).to_string();
                next.push(sn);
                names_out.push(next_name(&n));
                feedback.push((next_name(&n), n));
            }
        }
        let mut batch_norm = Vec::new();
        for ((i, name), (rm, rv)) in bn_nodes.iter().zip(&bn_inputs) {
            let node = &forward.nodes()[*i];
            let xs = &forward.ty(node.inputs[0]).shape;
            let count: usize = xs
                .iter()
                .enumerate()
                .filter(|(a, _)| *a != 1)
                .map(|(_, d)| d)
                .product();
            let bm = Value {
                node: NodeId(*i as u32),
                output: 1,
            };
            let bv = Value {
                node: NodeId(*i as u32),
                output: 2,
            };
            let mom = cfg.bn_momentum;
            let unbiased = if count > 1 {
                count as f32 / (count - 1) as f32
            } else {
                1.0
            };
            let a = e.scale(*rm, 1.0 - mom)?;
            let b = e.scale(bm, mom)?;
            next.push(e.add(a, b)?);
            let a = e.scale(*rv, 1.0 - mom)?;
            let b = e.scale(bv, mom * unbiased)?;
            next.push(e.add(a, b)?);
            let (mn, vn) = (
                format!("{name}.running_mean"),
                format!("{name}.running_var"),
            );
            for n in [&mn, &vn] {
                names_out.push(next_name(n));
                feedback.push((next_name(n), n.clone()));
            }
            batch_norm.push(BatchNormStats {
                node: name.clone(),
                mean: mn,
                var: vn,
            });
        }
        let rename: HashMap<Value, String> = next
            .iter()
            .copied()
            .zip(names_out.iter().cloned())
            .collect();
        let mut outputs = vec![loss];
        outputs.extend(forward.outputs().iter().filter(|&&v| v != loss));
        outputs.extend(&next);
        let mut g2 = rebuild(e.g, &rename)?;
        g2.set_outputs(&outputs)?;
        g2.verify()?;
        let data = forward
            .inputs()
            .filter(|(_, k)| *k == InputKind::Data)
            .map(|(v, _)| forward.value_name(v).to_string())
            .collect();
        Ok(TrainingGraph {
            graph: g2,
            loss: forward.value_name(loss).to_string(),
            lr: "lr".to_string(),
            params: param_names,
            state,
            feedback,
            batch_norm,
            data,
        })
    }
}

/// Clipped gradients (the same values when `clip` is `None`).
fn clip(
    e: &mut Emitter<'_>,
    grads: &[Value],
    clip: Option<Clip>,
) -> Result<Vec<Value>, AutodiffError> {
    match clip {
        None => Ok(grads.to_vec()),
        Some(Clip::Value(c)) => {
            let mut out = Vec::new();
            for &d in grads {
                let lo = e.scalar(-c)?;
                let hi = e.scalar(c)?;
                let a = e.max(d, lo)?;
                out.push(e.min(a, hi)?);
            }
            Ok(out)
        }
        Some(Clip::GlobalNorm(c)) => {
            let mut sq = Vec::new();
            for &d in grads {
                let s = e.mul(d, d)?;
                sq.push(e.reduce_sum(s, &[], false)?);
            }
            let Some(total) = e.sum(&sq)? else {
                return Ok(vec![]);
            };
            let norm = e.sqrt(total)?;
            let cv = e.scalar(c)?;
            let denom = e.max(norm, cv)?;
            let scale = e.div(cv, denom)?;
            let mut out = Vec::new();
            for &d in grads {
                out.push(e.mul(d, scale)?);
            }
            Ok(out)
        }
    }
}

/// One parameter's update: the new parameter and the new values of its state slots.
fn update(
    e: &mut Emitter<'_>,
    opt: &Optimizer,
    p: Value,
    d: Value,
    lr: Value,
    t: Option<Value>,
    slots: &[Value],
) -> Result<(Value, Vec<Value>), AutodiffError> {
    match *opt {
        Optimizer::Sgd { momentum, nesterov } => {
            let (stepv, st) = if momentum == 0.0 {
                (d, vec![])
            } else {
                let mb = e.scale(slots[0], momentum)?;
                let buf = e.add(mb, d)?;
                let s = if nesterov {
                    let mb2 = e.scale(buf, momentum)?;
                    e.add(d, mb2)?
                } else {
                    buf
                };
                (s, vec![buf])
            };
            let ls = e.mul(lr, stepv)?;
            Ok((e.sub(p, ls)?, st))
        }
        Optimizer::Adam { beta1, beta2, eps } => {
            adam(e, p, d, lr, t, slots, (beta1, beta2, eps), 0.0)
        }
        Optimizer::AdamW {
            beta1,
            beta2,
            eps,
            weight_decay,
        } => adam(e, p, d, lr, t, slots, (beta1, beta2, eps), weight_decay),
    }
}

#[allow(clippy::too_many_arguments)]
fn adam(
    e: &mut Emitter<'_>,
    p: Value,
    d: Value,
    lr: Value,
    t: Option<Value>,
    slots: &[Value],
    (b1, b2, eps): (f32, f32, f32),
    decoupled: f32,
) -> Result<(Value, Vec<Value>), AutodiffError> {
    let t = t.ok_or_else(|| AutodiffError::Train("Adam needs the step counter".into()))?;
    let m1 = e.scale(slots[0], b1)?;
    let m2 = e.scale(d, 1.0 - b1)?;
    let m = e.add(m1, m2)?;
    let d2 = e.mul(d, d)?;
    let v1 = e.scale(slots[1], b2)?;
    let v2 = e.scale(d2, 1.0 - b2)?;
    let v = e.add(v1, v2)?;
    // Bias corrections 1 - b^t.
    let one = e.scalar(1.0)?;
    let b1c = e.scalar(b1)?;
    let b2c = e.scalar(b2)?;
    let p1 = e.op(Op::Pow {}, &[b1c, t])?;
    let p2 = e.op(Op::Pow {}, &[b2c, t])?;
    let c1 = e.sub(one, p1)?;
    let c2 = e.sub(one, p2)?;
    let mhat = e.div(m, c1)?;
    let vhat = e.div(v, c2)?;
    let root = e.sqrt(vhat)?;
    let epsv = e.scalar(eps)?;
    let den = e.add(root, epsv)?;
    let stepv = e.div(mhat, den)?;
    let mut base = p;
    if decoupled != 0.0 {
        let lwd = e.scale(lr, decoupled)?;
        let dec = e.mul(lwd, p)?;
        base = e.sub(p, dec)?;
    }
    let ls = e.mul(lr, stepv)?;
    Ok((e.sub(base, ls)?, vec![m, v]))
}

/// The inference form of `forward`: every `batch_norm_train` becomes `batch_norm` reading
/// the data inputs `<y>.running_mean` and `<y>.running_var` (its batch-mean and
/// batch-variance outputs become those inputs), and every `dropout` the identity. The other
/// nodes, the names and the outputs stay as they are.
pub fn inference_graph(forward: &Graph) -> Result<Graph, AutodiffError> {
    let mut out = Graph::new(forward.name());
    let mut map: HashMap<Value, Value> = HashMap::new();
    for (i, node) in forward.nodes().iter().enumerate() {
        let old = |k: usize| Value {
            node: NodeId(i as u32),
            output: k as u32,
        };
        let ins: Vec<Value> = node.inputs.iter().map(|v| map[v]).collect();
        let names: Vec<&str> = node.outputs.iter().map(|o| o.name.as_str()).collect();
        match &node.kind {
            NodeKind::Input(kind) => {
                map.insert(
                    old(0),
                    out.add_input(names[0], node.outputs[0].ty.clone(), *kind)?,
                );
            }
            NodeKind::Const(t) => {
                map.insert(old(0), out.add_const(names[0], t.clone())?);
            }
            NodeKind::Op(Op::BatchNormTrain { eps }) => {
                let ty = node.outputs[1].ty.clone();
                let m = out.add_input(
                    &format!("{}.running_mean", names[0]),
                    ty.clone(),
                    InputKind::Data,
                )?;
                let v = out.add_input(&format!("{}.running_var", names[0]), ty, InputKind::Data)?;
                let y = out.add_op(
                    &[names[0]],
                    Op::BatchNorm { eps: *eps },
                    &[ins[0], ins[1], ins[2], m, v],
                )?[0];
                map.insert(old(0), y);
                map.insert(old(1), m);
                map.insert(old(2), v);
            }
            NodeKind::Op(Op::Dropout { .. }) => {
                map.insert(old(0), ins[0]);
            }
            NodeKind::Op(op) => {
                let vs = out.add_op(&names, op.clone(), &ins)?;
                for (k, v) in vs.into_iter().enumerate() {
                    map.insert(old(k), v);
                }
            }
        }
    }
    let mut outs: Vec<Value> = Vec::new();
    for v in forward.outputs() {
        let m = map[v];
        if !outs.contains(&m) {
            outs.push(m);
        }
    }
    out.set_outputs(&outs)?;
    Ok(out)
}
