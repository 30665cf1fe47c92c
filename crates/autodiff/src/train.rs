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
//! becomes `batch_norm` reading the running statistics, `dropout` the identity and
//! `stochastic_pool2d` its probability-weighted average. A forward graph with the `i64[]` data
//! input [`RNG_STEP`] has it carried as a step counter, so its random ops draw anew each step.

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

/// The learning-rate input.
pub const LR: &str = "lr";

/// The `i64[]` data input that, when a forward graph has it, is the step counter of its
/// random ops (the counter operand of `stochastic_pool2d`, `dropout`, ...):
/// [`training_graph`] carries it as state (0 on the first step, then `+1` per step), so each
/// step draws anew, reproducibly; [`inference_graph`] drops it with the random ops that read
/// it. The same as [`sinter_ir::rng::STEP_INPUT`].
pub const RNG_STEP: &str = sinter_ir::rng::STEP_INPUT;

/// What a step carries to the next: the state inputs with their initial values and, for
/// every carried input, the value that becomes its next value.
#[derive(Default)]
struct Carry {
    state: Vec<(String, Tensor)>,
    next: Vec<(Value, String)>,
}

impl Carry {
    /// A state input called `name`, starting at `init`.
    fn input(&mut self, g: &mut Graph, name: &str, init: Tensor) -> Result<Value, AutodiffError> {
        let v = g.add_input(name, init.ty(), InputKind::Data)?;
        self.state.push((name.to_string(), init));
        Ok(v)
    }

    /// `v` is the next value of the input `input`.
    fn output(&mut self, input: &str, v: Value) {
        self.next.push((v, input.to_string()));
    }
}

/// Builds the training step of `forward` with the `f32[]` loss `loss`; see the
/// [module docs](self). Every parameter is trained. The names `lr`, `opt.*` and `*.next`
/// must be free in `forward`.
pub fn training_graph(
    forward: &Graph,
    loss: Value,
    cfg: &TrainConfig,
) -> Result<TrainingGraph, AutodiffError> {
    // Composite ops (stochastic pooling) become their training form; every name stays.
    let expanded = sinter_ir::expand_composites(forward)?;
    let loss = expanded
        .find(forward.value_name(loss))
        .ok_or_else(|| AutodiffError::Train("the loss is not a value of the graph".into()))?;
    let forward = expanded.as_ref();
    let ps = params(forward);
    let gr = grad(forward, loss, &ps)?;
    let mut g = gr.graph;
    let names: Vec<String> = ps
        .iter()
        .map(|&p| forward.value_name(p).to_string())
        .collect();
    let mut carry = Carry::default();
    // Inputs first, so that the update can read them.
    let lr = g.add_input(LR, TensorType::f32(&[]), InputKind::Data)?;
    let step = match cfg.optimizer {
        Optimizer::Adam { .. } | Optimizer::AdamW { .. } => {
            Some(carry.input(&mut g, STEP, Tensor::scalar(0.0))?)
        }
        Optimizer::Sgd { .. } => None,
    };
    // The random ops' step counter, carried as 0, 1, 2, ... (counted in f32, exact to 2^24).
    let rng_step = forward
        .find(RNG_STEP)
        .filter(|&v| *forward.ty(v) == TensorType::i64(&[]))
        .filter(|&v| {
            forward
                .inputs()
                .any(|(i, k)| i == v && k == InputKind::Data)
        });
    if rng_step.is_some() {
        carry
            .state
            .push((RNG_STEP.to_string(), Tensor::from_i64(&[], vec![0])));
    }
    let mut slots: Vec<Vec<Value>> = Vec::new();
    for (p, name) in ps.iter().zip(&names) {
        let zeros = Tensor::zeros(forward.ty(*p));
        let mut vs = Vec::new();
        for slot in optimizer_slots(&cfg.optimizer) {
            vs.push(carry.input(&mut g, &format!("opt.{name}.{slot}"), zeros.clone())?);
        }
        slots.push(vs);
    }
    let mut batch_norm = Vec::new();
    for (i, node) in forward.nodes().iter().enumerate() {
        if let NodeKind::Op(Op::BatchNormTrain { .. }) = node.kind {
            let y = &node.outputs[0].name;
            let c = node.outputs[1].ty.shape[0];
            let stats = BatchNormStats {
                node: y.clone(),
                mean: format!("{y}.running_mean"),
                var: format!("{y}.running_var"),
            };
            let m = carry.input(&mut g, &stats.mean, Tensor::zeros(&TensorType::f32(&[c])))?;
            let v = carry.input(&mut g, &stats.var, Tensor::full(&[c], 1.0))?;
            batch_norm.push((NodeId(i as u32), stats, m, v));
        }
    }

    let mut e = Emitter::new(&mut g, "u");
    let grads = clip(&mut e, &gr.grads, cfg.clip)?;
    // The number t = step + 1 of this update.
    let t = match step {
        Some(s) => {
            let one = e.scalar(1.0)?;
            let t = e.add(s, one)?;
            carry.output(STEP, t);
            Some(t)
        }
        None => None,
    };
    if let Some(r) = rng_step {
        let f = e.cast(r, sinter_ir::DType::F32)?;
        let one = e.scalar(1.0)?;
        let f1 = e.add(f, one)?;
        let next = e.cast(f1, sinter_ir::DType::I64)?;
        carry.output(RNG_STEP, next);
    }
    for (i, (&p, mut d)) in ps.iter().zip(grads).enumerate() {
        if cfg.weight_decay != 0.0 {
            let wd = e.scale(p, cfg.weight_decay)?;
            d = e.add(d, wd)?;
        }
        let (p_next, st_next) = update(&mut e, &cfg.optimizer, p, d, lr, t, &slots[i])?;
        carry.output(&names[i], p_next);
        for (s, sn) in slots[i].iter().zip(st_next) {
            let input = e.g.value_name(*s).to_string();
            carry.output(&input, sn);
        }
    }
    for (node, stats, m, v) in &batch_norm {
        let (m_next, v_next) = running_stats(&mut e, forward, *node, (*m, *v), cfg.bn_momentum)?;
        carry.output(&stats.mean, m_next);
        carry.output(&stats.var, v_next);
    }

    let rename: HashMap<Value, String> = carry
        .next
        .iter()
        .map(|(v, input)| (*v, next_name(input)))
        .collect();
    let mut outputs = vec![loss];
    outputs.extend(forward.outputs().iter().filter(|&&v| v != loss));
    outputs.extend(carry.next.iter().map(|(v, _)| *v));
    let mut graph = rebuild(e.g, &rename)?;
    graph.set_outputs(&outputs)?;
    graph.verify()?;
    Ok(TrainingGraph {
        graph,
        loss: forward.value_name(loss).to_string(),
        lr: LR.to_string(),
        params: names,
        state: carry.state,
        feedback: carry
            .next
            .into_iter()
            .map(|(_, input)| (next_name(&input), input))
            .collect(),
        batch_norm: batch_norm.into_iter().map(|(_, s, _, _)| s).collect(),
        data: forward
            .inputs()
            .filter(|&(v, k)| k == InputKind::Data && Some(v) != rng_step)
            .map(|(v, _)| forward.value_name(v).to_string())
            .collect(),
    })
}

/// The state slots an optimiser keeps per parameter (`opt.<param>.<slot>`).
fn optimizer_slots(opt: &Optimizer) -> &'static [&'static str] {
    match opt {
        Optimizer::Sgd { momentum, .. } if *momentum != 0.0 => &["buf"],
        Optimizer::Sgd { .. } => &[],
        Optimizer::Adam { .. } | Optimizer::AdamW { .. } => &["m", "v"],
    }
}

/// The next running mean and variance of the `batch_norm_train` node `node`:
/// `(1 - mom) running + mom batch`, the batch variance made unbiased (`n / (n - 1)`).
fn running_stats(
    e: &mut Emitter<'_>,
    forward: &Graph,
    node: NodeId,
    (mean, var): (Value, Value),
    mom: f32,
) -> Result<(Value, Value), AutodiffError> {
    let xs = &forward.ty(forward.node(node).inputs[0]).shape;
    let n: usize = (0..xs.len()).filter(|&a| a != 1).map(|a| xs[a]).product();
    let unbiased = if n > 1 {
        n as f32 / (n - 1) as f32
    } else {
        1.0
    };
    let batch = |output| Value { node, output };
    let a = e.scale(mean, 1.0 - mom)?;
    let b = e.scale(batch(1), mom)?;
    let m = e.add(a, b)?;
    let a = e.scale(var, 1.0 - mom)?;
    let b = e.scale(batch(2), mom * unbiased)?;
    let v = e.add(a, b)?;
    Ok((m, v))
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
/// batch-variance outputs become those inputs), every `dropout` the identity and every
/// `stochastic_pool2d` the probability-weighted average of its windows (an input read only
/// as the counter of those ops goes away with them). The other nodes, the names and the
/// outputs stay as they are.
pub fn inference_graph(forward: &Graph) -> Result<Graph, AutodiffError> {
    let mut out = Graph::new(forward.name());
    let mut map: HashMap<Value, Value> = HashMap::new();
    let counters_only = dropout_counters_only(forward);
    for (i, node) in forward.nodes().iter().enumerate() {
        if counters_only[i] {
            continue;
        }
        let old = |k: usize| Value {
            node: NodeId(i as u32),
            output: k as u32,
        };
        // Every operand has been copied, except a dropped dropout counter (read by no one).
        let ins: Vec<Value> = node
            .inputs
            .iter()
            .filter_map(|v| map.get(v).copied())
            .collect();
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
            NodeKind::Op(Op::StochasticPool2d { kernel, .. }) => {
                let y = sinter_ir::composite::stochastic_pool_inference(
                    &mut out,
                    names[0],
                    ins[0],
                    *kernel as usize,
                )?;
                map.insert(old(0), y);
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

/// For each node: whether it is an input read only as the counter of `dropout`s and
/// `stochastic_pool2d`s (and is not an output), so that the inference graph, which has
/// neither, does not need it.
fn dropout_counters_only(g: &Graph) -> Vec<bool> {
    let n = g.nodes().len();
    let mut counter_use = vec![false; n];
    let mut other_use = vec![false; n];
    for node in g.nodes() {
        for (k, v) in node.inputs.iter().enumerate() {
            let as_counter = k == 1
                && matches!(
                    node.kind,
                    NodeKind::Op(Op::Dropout { .. } | Op::StochasticPool2d { .. })
                );
            if as_counter {
                counter_use[v.node.index()] = true;
            } else {
                other_use[v.node.index()] = true;
            }
        }
    }
    for v in g.outputs() {
        other_use[v.node.index()] = true;
    }
    (0..n)
        .map(|i| matches!(g.nodes()[i].kind, NodeKind::Input(_)) && counter_use[i] && !other_use[i])
        .collect()
}
