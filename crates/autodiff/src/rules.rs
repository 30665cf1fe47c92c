//! The gradient table: one local rule per op, as one exhaustive `match` over [`Op`].
//!
//! [`backward`] is given a node's inputs `x`, outputs `y` and the loss's gradients `dy` with
//! respect to the outputs, and emits the gradients with respect to the inputs in primitive
//! ops. The `match` has no wildcard arm: a new op in the table fails to compile here until it
//! has a rule or an explicit "no gradient" entry. `ir-spec/autodiff.md` lists every rule.
//!
//! Conventions:
//! - Only `f32` values carry gradients. An op whose outputs are not `f32` (compares,
//!   `argmax`, casts to `i64`/`bool`) never receives one, and operands that are not `f32`
//!   (indices, labels, counters, conditions) never get one; so those ops need no rule.
//! - `need[i]` says whether input `i` leads to a value being differentiated; a rule emits
//!   nothing for the others (no dead backward code for data inputs).
//! - Broadcasting operands get [`Emitter::unbroadcast`]ed gradients.
//! - Piecewise ops choose one side at their kinks: `relu` and `abs` have gradient 0 at 0,
//!   `leaky_relu`/`prelu` take the `x >= 0` branch at 0 (as the forward op does), `max`/`min`
//!   send a tie to their first operand (as the forward op returns it), `reduce_max` splits a
//!   tie evenly between the tied elements, and `max_pool2d` routes to the first maximal element
//!   of a window (row-major), as `max_pool2d_grad` defines.

use crate::emit::Emitter;
use sinter_ir::infer::{infer, norm_axes, norm_axis, slice_bounds};
use sinter_ir::{DType, IrError, Op, Tensor, Value};

/// What a rule can fail with.
pub(crate) enum RuleError {
    /// Emitting failed its shape check.
    Ir(IrError),
    /// The op has no gradient along a path that needs one; the reason says why.
    NotDifferentiable(String),
}

impl From<IrError> for RuleError {
    fn from(e: IrError) -> RuleError {
        RuleError::Ir(e)
    }
}

type R<T> = Result<T, RuleError>;

/// Gradients with respect to the inputs of one node (`None`: not needed or not a float).
pub(crate) type InputGrads = Vec<Option<Value>>;

/// Emits the gradients of `op`'s inputs `x` given its outputs `y` and their gradients `dy`
/// (`None` where an output has no gradient); `need[i]` says which inputs want one.
pub(crate) fn backward(
    e: &mut Emitter<'_>,
    op: &Op,
    x: &[Value],
    y: &[Value],
    dy: &[Option<Value>],
    need: &[bool],
) -> R<InputGrads> {
    let mut out: InputGrads = vec![None; x.len()];
    // The gradient of the single output; multi-output ops read `dy` themselves.
    let g = || dy[0].ok_or_else(|| RuleError::NotDifferentiable("no output gradient".into()));
    match op {
        Op::Neg {} => out[0] = Some(e.neg(g()?)?),
        Op::Exp {} => out[0] = Some(e.mul(g()?, y[0])?),
        Op::Log {} => out[0] = Some(e.div(g()?, x[0])?),
        // d sqrt(x) = 1 / (2 sqrt(x)) = 0.5 / y.
        Op::Sqrt {} => {
            let h = e.scale(g()?, 0.5)?;
            out[0] = Some(e.div(h, y[0])?);
        }
        // d x^(-1/2) = -0.5 x^(-3/2) = -0.5 y^3.
        Op::Rsqrt {} => {
            let y2 = e.mul(y[0], y[0])?;
            let y3 = e.mul(y2, y[0])?;
            let gy3 = e.mul(g()?, y3)?;
            out[0] = Some(e.scale(gy3, -0.5)?);
        }
        // sign(x), with sign(0) = 0.
        Op::Abs {} => {
            let pos = e.positive(x[0])?;
            let z = e.scalar(0.0)?;
            let neg = e.less(x[0], z)?;
            let p = e.cast(pos, DType::F32)?;
            let n = e.cast(neg, DType::F32)?;
            let sign = e.sub(p, n)?;
            out[0] = Some(e.mul(g()?, sign)?);
        }
        // The mask from the result (y > 0 exactly where x > 0), so x need not be kept.
        Op::Relu {} => {
            let m = e.positive(y[0])?;
            out[0] = Some(e.keep(m, g()?)?);
        }
        Op::Sigmoid {} => {
            let one = e.scalar(1.0)?;
            let c = e.sub(one, y[0])?;
            let d = e.mul(y[0], c)?;
            out[0] = Some(e.mul(g()?, d)?);
        }
        Op::Tanh {} => {
            let one = e.scalar(1.0)?;
            let y2 = e.mul(y[0], y[0])?;
            let d = e.sub(one, y2)?;
            out[0] = Some(e.mul(g()?, d)?);
        }
        Op::LeakyRelu { alpha } => {
            let m = e.non_negative(x[0])?;
            let ga = e.scale(g()?, alpha.get())?;
            out[0] = Some(e.select(m, g()?, ga)?);
        }

        Op::Add {} => {
            for i in 0..2 {
                if need[i] {
                    out[i] = Some(e.unbroadcast(g()?, &e.shape(x[i]))?);
                }
            }
        }
        Op::Sub {} => {
            if need[0] {
                out[0] = Some(e.unbroadcast(g()?, &e.shape(x[0]))?);
            }
            if need[1] {
                let n = e.neg(g()?)?;
                out[1] = Some(e.unbroadcast(n, &e.shape(x[1]))?);
            }
        }
        Op::Mul {} => {
            for i in 0..2 {
                if need[i] {
                    let p = e.mul(g()?, x[1 - i])?;
                    out[i] = Some(e.unbroadcast(p, &e.shape(x[i]))?);
                }
            }
        }
        // d(a/b)/da = 1/b; d(a/b)/db = -a/b^2 = -y/b.
        Op::Div {} => {
            let ga = e.div(g()?, x[1])?;
            if need[0] {
                out[0] = Some(e.unbroadcast(ga, &e.shape(x[0]))?);
            }
            if need[1] {
                let p = e.mul(ga, y[0])?;
                let n = e.neg(p)?;
                out[1] = Some(e.unbroadcast(n, &e.shape(x[1]))?);
            }
        }
        // The forward op returns `a` where `a >= b` (`a <= b` for min): ties go to `a`.
        Op::Max {} | Op::Min {} => {
            let a_wins = if matches!(op, Op::Max {}) {
                e.greater_equal(x[0], x[1])?
            } else {
                e.op(Op::LessEqual {}, &[x[0], x[1]])?
            };
            if need[0] {
                let ga = e.keep(a_wins, g()?)?;
                out[0] = Some(e.unbroadcast(ga, &e.shape(x[0]))?);
            }
            if need[1] {
                let gb = e.drop_where(a_wins, g()?)?;
                out[1] = Some(e.unbroadcast(gb, &e.shape(x[1]))?);
            }
        }
        // d a^b / da = b a^(b-1); d a^b / db = a^b ln a, taken as 0 where a <= 0 (where the
        // real power is only defined for integer b, as a step function of b).
        Op::Pow {} => {
            if need[0] {
                let one = e.scalar(1.0)?;
                let bm1 = e.sub(x[1], one)?;
                let p = e.op(Op::Pow {}, &[x[0], bm1])?;
                let d = e.mul(x[1], p)?;
                let ga = e.mul(g()?, d)?;
                out[0] = Some(e.unbroadcast(ga, &e.shape(x[0]))?);
            }
            if need[1] {
                let pos = e.positive(x[0])?;
                let one = e.scalar(1.0)?;
                let safe = e.select(pos, x[0], one)?;
                let ln = e.op(Op::Log {}, &[safe])?;
                let gy = e.mul(g()?, y[0])?;
                let gb = e.mul(gy, ln)?;
                out[1] = Some(e.unbroadcast(gb, &e.shape(x[1]))?);
            }
        }
        Op::Prelu {} => {
            let m = e.non_negative(x[0])?;
            if need[0] {
                let gs = e.mul(g()?, x[1])?;
                out[0] = Some(e.select(m, g()?, gs)?);
            }
            if need[1] {
                let gx = e.mul(g()?, x[0])?;
                let gs = e.drop_where(m, gx)?;
                out[1] = Some(e.unbroadcast(gs, &e.shape(x[1]))?);
            }
        }

        // Bool results: no gradient ever reaches them.
        Op::Equal {} | Op::Less {} | Op::LessEqual {} | Op::Greater {} | Op::GreaterEqual {} => {}

        Op::Select {} => {
            for i in 1..3 {
                if need[i] {
                    let gi = if i == 1 {
                        e.keep(x[0], g()?)?
                    } else {
                        e.drop_where(x[0], g()?)?
                    };
                    out[i] = Some(e.unbroadcast(gi, &e.shape(x[i]))?);
                }
            }
        }
        // Only f32 -> f32 (the identity) passes a gradient: from an integer or bool there is
        // nothing to differentiate, and to one the result carries no gradient.
        Op::Cast { to } => {
            if *to == DType::F32 && need[0] {
                out[0] = Some(g()?);
            }
        }

        Op::Matmul {} => {
            let swap = |r: usize| -> Vec<usize> {
                let mut p: Vec<usize> = (0..r).collect();
                p.swap(r - 2, r - 1);
                p
            };
            if need[0] {
                let r = e.shape(x[1]).len();
                let bt = e.transpose(x[1], &swap(r))?;
                let ga = e.op(Op::Matmul {}, &[g()?, bt])?;
                out[0] = Some(e.unbroadcast(ga, &e.shape(x[0]))?);
            }
            if need[1] {
                let r = e.shape(x[0]).len();
                let at = e.transpose(x[0], &swap(r))?;
                let gb = e.op(Op::Matmul {}, &[at, g()?])?;
                out[1] = Some(e.unbroadcast(gb, &e.shape(x[1]))?);
            }
        }
        Op::Gemm {
            trans_a,
            trans_b,
            alpha,
            beta,
        } => {
            let (ta, tb, alpha) = (*trans_a, *trans_b, alpha.get());
            let gemm = |trans_a, trans_b| Op::Gemm {
                trans_a,
                trans_b,
                alpha: alpha.into(),
                beta: 1.0.into(),
            };
            // With A' = op(A), B' = op(B): dA' = alpha g B'^T and dB' = alpha A'^T g, each
            // transposed back when the operand was, folded into the gemm flags.
            if need[0] {
                let da = match (ta, tb) {
                    (false, false) => e.op(gemm(false, true), &[g()?, x[1]])?,
                    (false, true) => e.op(gemm(false, false), &[g()?, x[1]])?,
                    (true, false) => e.op(gemm(false, true), &[x[1], g()?])?,
                    (true, true) => e.op(gemm(true, true), &[x[1], g()?])?,
                };
                out[0] = Some(da);
            }
            if need[1] {
                let db = match (ta, tb) {
                    (false, false) => e.op(gemm(true, false), &[x[0], g()?])?,
                    (true, false) => e.op(gemm(false, false), &[x[0], g()?])?,
                    (false, true) => e.op(gemm(true, false), &[g()?, x[0]])?,
                    (true, true) => e.op(gemm(true, true), &[g()?, x[0]])?,
                };
                out[1] = Some(db);
            }
            if x.len() == 3 && need[2] {
                let gc = e.scale(g()?, beta.get())?;
                out[2] = Some(e.unbroadcast(gc, &e.shape(x[2]))?);
            }
        }

        Op::Conv2d {
            stride,
            pad,
            dilation,
            groups,
        } => {
            let a = ConvAttrs {
                stride: *stride,
                pad: *pad,
                dilation: *dilation,
                groups: *groups,
            };
            if need[0] {
                out[0] = Some(conv_input_grad(e, g()?, x[1], &e.shape(x[0]), &a)?);
            }
            if need[1] {
                let k = kernel_of(&e.shape(x[1]));
                out[1] = Some(conv_weight_grad(e, x[0], g()?, k, &a)?);
            }
            if x.len() == 3 && need[2] {
                out[2] = Some(e.reduce_sum(g()?, &[0, 2, 3], false)?);
            }
        }
        // y = conv_transpose2d(x, w) is the input gradient of a conv2d from y's shape to x's
        // with weight w; so dx is that conv2d of dy, and dw its weight gradient with the roles
        // of input and output gradient swapped: conv2d_weight_grad(dy, x).
        Op::ConvTranspose2d {
            stride,
            pad,
            output_pad: _,
            dilation,
            groups,
        } => {
            let a = ConvAttrs {
                stride: *stride,
                pad: *pad,
                dilation: *dilation,
                groups: *groups,
            };
            let xs = e.shape(x[0]);
            if need[0] {
                let c = e.op(a.conv(), &[g()?, x[1]])?;
                out[0] = Some(crop_to(e, c, &xs)?);
            }
            if need[1] {
                let k = kernel_of(&e.shape(x[1]));
                let full = e.ty(g()?);
                let w = e.ty(x[1]);
                let conv_out = infer(&a.conv(), &[&full, &w]).map_err(|m| {
                    RuleError::NotDifferentiable(format!("conv_transpose2d weight gradient: {m}"))
                })?;
                // With output_pad >= stride (allowed when smaller than the dilation) that
                // conv2d reaches past x; x is zero-extended to match (the extra rows add 0).
                let xp = pad_to(e, x[0], &conv_out[0].shape)?;
                out[1] = Some(conv_weight_grad(e, g()?, xp, k, &a)?);
            }
            if x.len() == 3 && need[2] {
                out[2] = Some(e.reduce_sum(g()?, &[0, 2, 3], false)?);
            }
        }
        // dw = conv2d_weight_grad(x, dy) is bilinear: <dw, G> = <dy, conv2d(x, G)>, so the
        // gradient G of dw gives conv2d(x, G) for dy and the conv2d input gradient
        // conv_transpose2d(dy, G) for x.
        Op::Conv2dWeightGrad {
            kernel: _,
            stride,
            pad,
            dilation,
            groups,
        } => {
            let a = ConvAttrs {
                stride: *stride,
                pad: *pad,
                dilation: *dilation,
                groups: *groups,
            };
            if need[0] {
                out[0] = Some(conv_input_grad(e, x[1], g()?, &e.shape(x[0]), &a)?);
            }
            if need[1] {
                out[1] = Some(e.op(a.conv(), &[x[0], g()?])?);
            }
        }

        // The optimiser produces these from convolutions after differentiation (the pipeline
        // is autodiff -> rewrite), and the input gradient of a stride-1 3x3 conv2d is itself
        // rewritten to them; a graph that already holds them has no gradient here.
        Op::WinogradFilter { .. } | Op::WinogradInput { .. } | Op::WinogradOutput { .. } => {
            if need.iter().any(|&n| n) {
                return Err(RuleError::NotDifferentiable(format!(
                    "`{}` is made by the optimiser after differentiation: differentiate the conv2d it came from",
                    op.name()
                )));
            }
        }

        Op::MaxPool2d {
            kernel,
            stride,
            pad,
        } => {
            let op = Op::MaxPool2dGrad {
                kernel: *kernel,
                stride: *stride,
                pad: *pad,
            };
            out[0] = Some(e.op(op, &[x[0], g()?])?);
        }
        Op::AvgPool2d {
            kernel,
            stride,
            pad,
            count_include_pad,
        } => {
            let op = Op::AvgPool2dGrad {
                kernel: *kernel,
                stride: *stride,
                pad: *pad,
                count_include_pad: *count_include_pad,
            };
            out[0] = Some(e.op(op, &[x[0], g()?])?);
        }
        Op::GlobalAvgPool {} => {
            let xs = e.shape(x[0]);
            let b = e.broadcast(g()?, &xs)?;
            out[0] = Some(e.scale(b, 1.0 / (xs[2] * xs[3]) as f32)?);
        }
        // Routing to the arg-max is piecewise linear in dy with a mask that depends on x; its
        // transpose would need a "gather at the arg-max" op the IR does not have.
        Op::MaxPool2dGrad { .. } => {
            return Err(RuleError::NotDifferentiable(
                "max_pool2d_grad has no gradient rule (second-order gradients through max \
                 pooling need an arg-max gather the IR lacks)"
                    .into(),
            ));
        }
        // Linear in dy (x only gives the shape): its transpose is the pooling itself.
        Op::AvgPool2dGrad {
            kernel,
            stride,
            pad,
            count_include_pad,
        } => {
            if need[1] {
                let op = Op::AvgPool2d {
                    kernel: *kernel,
                    stride: *stride,
                    pad: *pad,
                    count_include_pad: *count_include_pad,
                };
                out[1] = Some(e.op(op, &[g()?])?);
            }
        }

        Op::BatchNorm { eps } => batch_norm_infer_grad(e, x, g()?, eps.get(), need, &mut out)?,
        Op::BatchNormTrain { eps } => {
            batch_norm_train_grad(e, x, y, dy, eps.get(), need, &mut out)?;
        }

        // dx = y (g - sum(g y)).
        Op::Softmax { axis } => {
            let a = norm_axis(*axis, e.shape(x[0]).len()).map_err(RuleError::NotDifferentiable)?;
            let gy = e.mul(g()?, y[0])?;
            let s = e.reduce_sum(gy, &[a], true)?;
            let d = e.sub(g()?, s)?;
            out[0] = Some(e.mul(y[0], d)?);
        }
        // dx = g - softmax(x) sum(g), with softmax(x) = exp(y).
        Op::LogSoftmax { axis } => {
            let a = norm_axis(*axis, e.shape(x[0]).len()).map_err(RuleError::NotDifferentiable)?;
            let s = e.reduce_sum(g()?, &[a], true)?;
            let p = e.op(Op::Exp {}, &[y[0]])?;
            let ps = e.mul(p, s)?;
            out[0] = Some(e.sub(g()?, ps)?);
        }

        // The mask is a pure function of (seed, counter, index): the same op on dy applies
        // the same mask and the same 1/(1-p) scale.
        Op::Dropout { p, seed } => {
            let mut ins = vec![g()?];
            ins.extend_from_slice(&x[1..]);
            let op = Op::Dropout { p: *p, seed: *seed };
            out[0] = Some(e.op(op, &ins)?);
        }
        // No f32 operands: nothing to differentiate.
        Op::RandomUniform { .. } | Op::RandomNormal { .. } => {}
        // A step function of p: its derivative is 0 wherever it exists. Sampling is not a
        // differentiable path; estimators (REINFORCE, straight-through) are the model's job.
        // The output gradient goes to the element each window drew, as in max pooling. The
        // draw is recomputed (a pure function of seed, counter and index: the forward's).
        // `training_graph` expands the op before differentiating, and so reuses the
        // forward's draw instead.
        Op::StochasticPool2d { kernel, seed } => {
            if need[0] {
                let k = *kernel as usize;
                let name = e.fresh_name();
                let (pick, _) = sinter_ir::composite::stochastic_pool_pick(
                    e.g,
                    &name,
                    x[0],
                    k,
                    *seed,
                    x.get(1).copied(),
                )?;
                let s = e.shape(y[0]);
                let dy = e.reshape(g()?, &[s[0], s[1], s[2], s[3], 1])?;
                let dwin = e.mul(pick, dy)?;
                let name = e.fresh_name();
                out[0] = Some(sinter_ir::composite::stochastic_pool_scatter(
                    e.g, &name, dwin, k,
                )?);
            }
        }
        Op::Bernoulli { .. } => {
            if need[0] {
                out[0] = Some(e.zeros(&e.shape(x[0]))?);
            }
        }

        Op::ReduceSum { axes, keepdims } | Op::ReduceMean { axes, keepdims } => {
            let xs = e.shape(x[0]);
            let ax = norm_axes(axes, xs.len()).map_err(RuleError::NotDifferentiable)?;
            let gk = keep_dims(e, g()?, &xs, &ax, *keepdims)?;
            let b = e.broadcast(gk, &xs)?;
            out[0] = Some(if matches!(op, Op::ReduceMean { .. }) {
                let n: usize = reduced(&xs, &ax).iter().map(|&a| xs[a]).product();
                e.scale(b, 1.0 / n as f32)?
            } else {
                b
            });
        }
        // Split evenly between the elements equal to the maximum.
        Op::ReduceMax { axes, keepdims } => {
            let xs = e.shape(x[0]);
            let ax = norm_axes(axes, xs.len()).map_err(RuleError::NotDifferentiable)?;
            let red = reduced(&xs, &ax);
            let yk = keep_dims(e, y[0], &xs, &ax, *keepdims)?;
            let gk = keep_dims(e, g()?, &xs, &ax, *keepdims)?;
            let hit = e.op(Op::Equal {}, &[x[0], yk])?;
            let hitf = e.cast(hit, DType::F32)?;
            let count = e.reduce_sum(hitf, &red, true)?;
            let share = e.div(gk, count)?;
            out[0] = Some(e.mul(hitf, share)?);
        }
        Op::Argmax { .. } => {}

        Op::Reshape { .. } | Op::Flatten { .. } => {
            if need[0] {
                out[0] = Some(e.reshape(g()?, &e.shape(x[0]))?);
            }
        }
        Op::Transpose { perm } => {
            if need[0] {
                let p =
                    norm_axes(perm, e.shape(x[0]).len()).map_err(RuleError::NotDifferentiable)?;
                let mut inv = vec![0; p.len()];
                for (i, &a) in p.iter().enumerate() {
                    inv[a] = i;
                }
                out[0] = Some(e.transpose(g()?, &inv)?);
            }
        }
        Op::Broadcast { .. } => {
            if need[0] {
                out[0] = Some(e.unbroadcast(g()?, &e.shape(x[0]))?);
            }
        }
        Op::Concat { axis } => {
            let a = norm_axis(*axis, e.shape(x[0]).len()).map_err(RuleError::NotDifferentiable)?;
            let sizes: Vec<i64> = x.iter().map(|&v| e.shape(v)[a] as i64).collect();
            let n = sizes.len();
            let parts = e.op_multi(
                Op::Split {
                    axis: a as i64,
                    sizes,
                },
                &[g()?],
                n,
            )?;
            for i in 0..n {
                if need[i] {
                    out[i] = Some(parts[i]);
                }
            }
        }
        // Outputs without a gradient contribute zeros.
        Op::Split { axis, .. } => {
            let mut parts = Vec::with_capacity(y.len());
            for (k, d) in dy.iter().enumerate() {
                parts.push(match d {
                    Some(d) => *d,
                    None => e.zeros(&e.shape(y[k]))?,
                });
            }
            out[0] = Some(e.op(Op::Concat { axis: *axis }, &parts)?);
        }
        Op::Slice {
            axes,
            starts,
            ends,
            steps,
        } => {
            if need[0] {
                out[0] = Some(slice_grad(e, x[0], g()?, (axes, starts, ends, steps))?);
            }
        }
        Op::Pad { pads, .. } => {
            let xs = e.shape(x[0]);
            let r = xs.len();
            let op = Op::Slice {
                axes: (0..r as i64).collect(),
                starts: pads[..r].to_vec(),
                ends: (0..r).map(|i| pads[i] + xs[i] as i64).collect(),
                steps: vec![1; r],
            };
            out[0] = Some(e.op(op, &[g()?])?);
        }

        Op::Gather { axis } => {
            if need[0] {
                let xs = e.shape(x[0]);
                let a = norm_axis(*axis, xs.len()).map_err(RuleError::NotDifferentiable)?;
                let op = Op::ScatterAdd {
                    axis: a as i64,
                    extent: xs[a] as i64,
                };
                out[0] = Some(e.op(op, &[x[1], g()?])?);
            }
        }
        // i64 indices in, f32 out: nothing to differentiate.
        Op::OneHot { .. } => {}
        Op::ScatterAdd { axis, extent: _ } => {
            if need[1] {
                out[1] = Some(e.op(Op::Gather { axis: *axis }, &[g()?, x[0]])?);
            }
        }
    }
    Ok(out)
}

/// The attributes shared by the convolution ops.
struct ConvAttrs {
    stride: [i64; 2],
    pad: [i64; 4],
    dilation: [i64; 2],
    groups: i64,
}

impl ConvAttrs {
    fn conv(&self) -> Op {
        Op::Conv2d {
            stride: self.stride,
            pad: self.pad,
            dilation: self.dilation,
            groups: self.groups,
        }
    }
}

fn kernel_of(w: &[usize]) -> [i64; 2] {
    [w[2] as i64, w[3] as i64]
}

/// The gradient with respect to the input (of shape `xs`) of `conv2d(x, w)` given `dy`:
/// `conv_transpose2d(dy, w)` with the same geometry and the `output_pad` that restores the
/// rows and columns the forward stride skipped at the bottom and right.
fn conv_input_grad(
    e: &mut Emitter<'_>,
    dy: Value,
    w: Value,
    xs: &[usize],
    a: &ConvAttrs,
) -> R<Value> {
    let ys = e.shape(dy);
    let ws = e.shape(w);
    let mut output_pad = [0i64; 2];
    for i in 0..2 {
        let span = a.dilation[i] * (ws[2 + i] as i64 - 1) + 1;
        let padded = xs[2 + i] as i64 + a.pad[i] + a.pad[i + 2];
        output_pad[i] = padded - span - (ys[2 + i] as i64 - 1) * a.stride[i];
    }
    let op = Op::ConvTranspose2d {
        stride: a.stride,
        pad: a.pad,
        output_pad,
        dilation: a.dilation,
        groups: a.groups,
    };
    Ok(e.op(op, &[dy, w])?)
}

fn conv_weight_grad(
    e: &mut Emitter<'_>,
    x: Value,
    dy: Value,
    kernel: [i64; 2],
    a: &ConvAttrs,
) -> R<Value> {
    let op = Op::Conv2dWeightGrad {
        kernel,
        stride: a.stride,
        pad: a.pad,
        dilation: a.dilation,
        groups: a.groups,
    };
    Ok(e.op(op, &[x, dy])?)
}

/// `v` cut down to `shape` at the bottom and right of its last two axes (or `v` itself).
fn crop_to(e: &mut Emitter<'_>, v: Value, shape: &[usize]) -> R<Value> {
    if e.shape(v) == shape {
        return Ok(v);
    }
    let op = Op::Slice {
        axes: vec![2, 3],
        starts: vec![0, 0],
        ends: vec![shape[2] as i64, shape[3] as i64],
        steps: vec![1, 1],
    };
    Ok(e.op(op, &[v])?)
}

/// `v` zero-extended at the bottom and right of its last two axes to `shape` (or `v` itself).
fn pad_to(e: &mut Emitter<'_>, v: Value, shape: &[usize]) -> R<Value> {
    let vs = e.shape(v);
    if vs == shape {
        return Ok(v);
    }
    let pads = vec![
        0,
        0,
        0,
        0,
        0,
        0,
        (shape[2] - vs[2]) as i64,
        (shape[3] - vs[3]) as i64,
    ];
    Ok(e.op(
        Op::Pad {
            pads,
            value: 0.0.into(),
        },
        &[v],
    )?)
}

/// The reduced axes of a reduction over `axes` (empty: all) of a rank-`xs.len()` input.
fn reduced(xs: &[usize], axes: &[usize]) -> Vec<usize> {
    if axes.is_empty() {
        (0..xs.len()).collect()
    } else {
        axes.to_vec()
    }
}

/// A reduction's result (or its gradient) reshaped so the reduced axes are kept as 1.
fn keep_dims(
    e: &mut Emitter<'_>,
    v: Value,
    xs: &[usize],
    axes: &[usize],
    keepdims: bool,
) -> R<Value> {
    if keepdims {
        return Ok(v);
    }
    let red = reduced(xs, axes);
    let shape: Vec<usize> = (0..xs.len())
        .map(|i| if red.contains(&i) { 1 } else { xs[i] })
        .collect();
    Ok(e.reshape(v, &shape)?)
}

/// The adjoint of a slice: the gradient placed back at the sliced positions, zeros elsewhere.
/// Strided axes scatter their rows back with `scatter_add` (constant index tensors); the
/// unit-step axes are then restored by one `pad`.
fn slice_grad(
    e: &mut Emitter<'_>,
    x: Value,
    g: Value,
    (axes, starts, ends, steps): (&[i64], &[i64], &[i64], &[i64]),
) -> R<Value> {
    let xs = e.shape(x);
    let r = xs.len();
    let ax = norm_axes(axes, r).map_err(RuleError::NotDifferentiable)?;
    let mut cur = g;
    let mut pads = vec![0i64; 2 * r];
    for (i, &a) in ax.iter().enumerate() {
        let (s, _) = slice_bounds(starts[i], ends[i], xs[a]);
        let n = e.shape(cur)[a];
        if steps[i] == 1 {
            pads[a] = s as i64;
            pads[a + r] = (xs[a] - s - n) as i64;
        } else {
            let idx: Vec<i64> = (0..n as i64).map(|k| s as i64 + k * steps[i]).collect();
            let idx = e.constant(Tensor::from_i64(&[n], idx))?;
            let op = Op::ScatterAdd {
                axis: a as i64,
                extent: xs[a] as i64,
            };
            cur = e.op(op, &[idx, cur])?;
        }
    }
    if pads.iter().any(|&p| p != 0) {
        cur = e.op(
            Op::Pad {
                pads,
                value: 0.0.into(),
            },
            &[cur],
        )?;
    }
    Ok(cur)
}

/// Inference batch norm `y = (x - mean) r gamma + beta`, `r = 1/sqrt(var + eps)`.
fn batch_norm_infer_grad(
    e: &mut Emitter<'_>,
    x: &[Value],
    g: Value,
    eps: f32,
    need: &[bool],
    out: &mut InputGrads,
) -> R<()> {
    let rank = e.shape(x[0]).len();
    let others: Vec<usize> = (0..rank).filter(|&a| a != 1).collect();
    let eps = e.scalar(eps)?;
    let ve = e.add(x[4], eps)?;
    let r = e.op(Op::Rsqrt {}, &[ve])?; // [C]
    let rc = e.per_channel(r, rank)?;
    let gamma = e.per_channel(x[1], rank)?;
    let mean = e.per_channel(x[3], rank)?;
    let centred = e.sub(x[0], mean)?;
    if need[0] {
        let k = e.mul(gamma, rc)?;
        out[0] = Some(e.mul(g, k)?);
    }
    if need[1] {
        let xhat = e.mul(centred, rc)?;
        let p = e.mul(g, xhat)?;
        out[1] = Some(e.reduce_sum(p, &others, false)?);
    }
    let gsum = e.reduce_sum(g, &others, false)?; // [C]
    if need[2] {
        out[2] = Some(gsum);
    }
    let gr = e.mul(x[1], r)?; // gamma r, [C]
    if need[3] {
        let p = e.mul(gsum, gr)?;
        out[3] = Some(e.neg(p)?);
    }
    if need[4] {
        // d r / d var = -0.5 r^3.
        let gc = e.mul(g, centred)?;
        let s = e.reduce_sum(gc, &others, false)?;
        let r2 = e.mul(r, r)?;
        let k = e.mul(gr, r2)?;
        let p = e.mul(s, k)?;
        out[4] = Some(e.scale(p, -0.5)?);
    }
    Ok(())
}

/// Training batch norm with batch statistics `m`, `v` over every axis but 1 (count `n`):
/// with `xhat = (x - m) r` and `dxhat = dy gamma`,
/// `dx = r (dxhat - mean(dxhat) - xhat mean(dxhat xhat)) + dm / n + dv 2 (x - m) / n`,
/// where `dm`, `dv` are the gradients of the mean and variance outputs (if used).
fn batch_norm_train_grad(
    e: &mut Emitter<'_>,
    x: &[Value],
    y: &[Value],
    dy: &[Option<Value>],
    eps: f32,
    need: &[bool],
    out: &mut InputGrads,
) -> R<()> {
    let xs = e.shape(x[0]);
    let rank = xs.len();
    let others: Vec<usize> = (0..rank).filter(|&a| a != 1).collect();
    let n: usize = others.iter().map(|&a| xs[a]).product();
    let eps = e.scalar(eps)?;
    let ve = e.add(y[2], eps)?;
    let r = e.op(Op::Rsqrt {}, &[ve])?;
    let rc = e.per_channel(r, rank)?;
    let mc = e.per_channel(y[1], rank)?;
    let centred = e.sub(x[0], mc)?;
    let xhat = e.mul(centred, rc)?;
    let mut dx_parts = Vec::new();
    if let Some(g) = dy[0] {
        if need[0] {
            let gamma = e.per_channel(x[1], rank)?;
            let dxhat = e.mul(g, gamma)?;
            let m1 = e.reduce_mean(dxhat, &others, true)?;
            let dh = e.mul(dxhat, xhat)?;
            let m2 = e.reduce_mean(dh, &others, true)?;
            let t = e.mul(xhat, m2)?;
            let a = e.sub(dxhat, m1)?;
            let b = e.sub(a, t)?;
            dx_parts.push(e.mul(b, rc)?);
        }
        if need[1] {
            let p = e.mul(g, xhat)?;
            out[1] = Some(e.reduce_sum(p, &others, false)?);
        }
        if need[2] {
            out[2] = Some(e.reduce_sum(g, &others, false)?);
        }
    }
    if need[0] {
        if let Some(gm) = dy[1] {
            let c = e.per_channel(gm, rank)?;
            let c = e.scale(c, 1.0 / n as f32)?;
            dx_parts.push(e.broadcast(c, &xs)?);
        }
        if let Some(gv) = dy[2] {
            let c = e.per_channel(gv, rank)?;
            let c = e.scale(c, 2.0 / n as f32)?;
            dx_parts.push(e.mul(centred, c)?);
        }
        out[0] = e.sum(&dx_parts)?;
    }
    Ok(())
}
