//! [`eval_op`]: one op applied to concrete tensors, as one exhaustive `match` over [`Op`].
//!
//! The match has no wildcard arm, so adding an op to the table fails to compile here until
//! the interpreter can run it. Each arm only computes the output elements; the output shapes
//! come from shape inference, which [`eval_op`] re-runs first so that malformed calls are
//! errors rather than panics.

use crate::conv::{self, Window};
use crate::elementwise::{self as ew, Cmp, max_nan, min_nan};
use crate::movement;
use crate::norm;
use crate::pool::{self, Pool};
use crate::random;
use crate::reduce::{self, Reduce};
use sinter_ir::infer::{infer, norm_axes, norm_axis};
use sinter_ir::{Op, Tensor, TensorData, TensorType};

/// Evaluates one op on `inputs`. `out_types` are the op's output types as
/// [`sinter_ir::infer::infer`] gives them for these inputs (a mismatch is an error).
///
/// Returns one tensor per output, or a message saying what went wrong: inputs the op does
/// not accept, or a runtime data error such as a `gather` index out of range.
pub fn eval_op(
    op: &Op,
    inputs: &[&Tensor],
    out_types: &[TensorType],
) -> Result<Vec<Tensor>, String> {
    let in_types: Vec<TensorType> = inputs.iter().map(|t| t.ty()).collect();
    let in_refs: Vec<&TensorType> = in_types.iter().collect();
    let inferred = infer(op, &in_refs)?;
    if inferred != out_types {
        return Err(format!(
            "`{}` gives {} for inputs {}, but the expected outputs are {}",
            op.name(),
            list(&inferred),
            list(&in_types),
            list(out_types)
        ));
    }
    let data = eval_data(op, inputs, out_types)?;
    if data.len() != out_types.len() {
        return Err(format!(
            "`{}` produced {} outputs, expected {}",
            op.name(),
            data.len(),
            out_types.len()
        ));
    }
    data.into_iter()
        .zip(out_types)
        .map(|(d, ty)| {
            if d.dtype() != ty.dtype {
                return Err(format!(
                    "`{}` produced {} elements for {ty}",
                    op.name(),
                    d.dtype()
                ));
            }
            Tensor::new(&ty.shape, d).map_err(|e| format!("`{}`: {e}", op.name()))
        })
        .collect()
}

fn list(types: &[TensorType]) -> String {
    let parts: Vec<String> = types.iter().map(|t| t.to_string()).collect();
    format!("({})", parts.join(", "))
}

/// One f32 output.
fn f32_out(v: Result<Vec<f32>, String>) -> Result<Vec<TensorData>, String> {
    Ok(vec![TensorData::F32(v?)])
}

/// One output of any dtype.
fn one(d: Result<TensorData, String>) -> Result<Vec<TensorData>, String> {
    Ok(vec![d?])
}

/// The output elements of `op`; inputs and output types are already checked against the
/// shape rules.
fn eval_data(op: &Op, ins: &[&Tensor], outs: &[TensorType]) -> Result<Vec<TensorData>, String> {
    let out = outs
        .first()
        .ok_or_else(|| format!("`{}` has no outputs", op.name()))?;
    match op {
        Op::Neg {} => one(ew::unary(ins[0], |x| -x)),
        Op::Exp {} => one(ew::unary(ins[0], f32::exp)),
        Op::Log {} => one(ew::unary(ins[0], f32::ln)),
        Op::Sqrt {} => one(ew::unary(ins[0], f32::sqrt)),
        Op::Rsqrt {} => one(ew::unary(ins[0], |x| 1.0 / x.sqrt())),
        Op::Abs {} => one(ew::unary(ins[0], f32::abs)),
        // `x < 0` is false for NaN, so NaN passes through.
        Op::Relu {} => one(ew::unary(ins[0], |x| if x < 0.0 { 0.0 } else { x })),
        Op::Sigmoid {} => one(ew::unary(ins[0], |x| 1.0 / (1.0 + (-x).exp()))),
        Op::Tanh {} => one(ew::unary(ins[0], f32::tanh)),
        Op::LeakyRelu { alpha } => {
            let alpha = alpha.get();
            one(ew::unary(ins[0], |x| if x >= 0.0 { x } else { alpha * x }))
        }

        Op::Add {} => one(ew::binary(ins[0], ins[1], out, |a, b| a + b)),
        Op::Sub {} => one(ew::binary(ins[0], ins[1], out, |a, b| a - b)),
        Op::Mul {} => one(ew::binary(ins[0], ins[1], out, |a, b| a * b)),
        Op::Div {} => one(ew::binary(ins[0], ins[1], out, |a, b| a / b)),
        Op::Max {} => one(ew::binary(ins[0], ins[1], out, max_nan)),
        Op::Min {} => one(ew::binary(ins[0], ins[1], out, min_nan)),
        Op::Pow {} => one(ew::binary(ins[0], ins[1], out, f32::powf)),
        Op::Prelu {} => one(ew::binary(ins[0], ins[1], out, |x, s| {
            if x >= 0.0 { x } else { s * x }
        })),

        Op::Equal {} => one(ew::compare(ins[0], ins[1], out, Cmp::Eq)),
        Op::Less {} => one(ew::compare(ins[0], ins[1], out, Cmp::Lt)),
        Op::LessEqual {} => one(ew::compare(ins[0], ins[1], out, Cmp::Le)),
        Op::Greater {} => one(ew::compare(ins[0], ins[1], out, Cmp::Gt)),
        Op::GreaterEqual {} => one(ew::compare(ins[0], ins[1], out, Cmp::Ge)),

        Op::Select {} => one(ew::select(ins[0], ins[1], ins[2], out)),
        Op::Cast { to } => one(Ok(ew::cast(ins[0], *to))),

        Op::Matmul {} => f32_out(crate::linear::matmul(ins[0], ins[1], out)),
        Op::Gemm {
            trans_a,
            trans_b,
            alpha,
            beta,
        } => f32_out(crate::linear::gemm(
            ins[0],
            ins[1],
            ins.get(2).copied(),
            out,
            (*trans_a, *trans_b),
            (alpha.get(), beta.get()),
        )),

        Op::Conv2d {
            stride,
            pad,
            dilation,
            groups,
        } => {
            let win = Window::new(*stride, *pad, *dilation);
            f32_out(conv::conv2d(
                ins[0],
                ins[1],
                ins.get(2).copied(),
                out,
                &win,
                *groups as usize,
            ))
        }
        Op::WinogradFilter { tile, transposed } => {
            f32_out(crate::winograd::filter(ins[0], out, *tile, *transposed))
        }
        Op::WinogradInput { tile, pad } => {
            f32_out(crate::winograd::input(ins[0], out, *tile, *pad))
        }
        Op::WinogradOutput { tile, out: _ } => f32_out(crate::winograd::output(
            ins[0],
            ins.get(1).copied(),
            out,
            *tile,
        )),
        Op::Conv2dWeightGrad {
            kernel: _,
            stride,
            pad,
            dilation,
            groups,
        } => {
            // The kernel size is the output's; `out` already has it.
            let win = Window::new(*stride, *pad, *dilation);
            f32_out(conv::conv2d_weight_grad(
                ins[0],
                ins[1],
                out,
                &win,
                *groups as usize,
            ))
        }
        Op::ConvTranspose2d {
            stride,
            pad,
            output_pad: _,
            dilation,
            groups,
        } => {
            // `output_pad` only lengthens the output, whose shape `out` already has.
            let win = Window::new(*stride, *pad, *dilation);
            f32_out(conv::conv_transpose2d(
                ins[0],
                ins[1],
                ins.get(2).copied(),
                out,
                &win,
                *groups as usize,
            ))
        }

        Op::MaxPool2d {
            kernel,
            stride,
            pad,
        } => {
            let win = Window::new(*stride, *pad, [1, 1]);
            f32_out(pool::pool2d(
                ins[0],
                out,
                kernel.map(|k| k as usize),
                &win,
                Pool::Max,
            ))
        }
        Op::AvgPool2d {
            kernel,
            stride,
            pad,
            count_include_pad,
        } => {
            let win = Window::new(*stride, *pad, [1, 1]);
            f32_out(pool::pool2d(
                ins[0],
                out,
                kernel.map(|k| k as usize),
                &win,
                Pool::Avg(*count_include_pad),
            ))
        }
        Op::MaxPool2dGrad {
            kernel,
            stride,
            pad,
        } => {
            let win = Window::new(*stride, *pad, [1, 1]);
            f32_out(pool::pool2d_grad(
                ins[0],
                ins[1],
                kernel.map(|k| k as usize),
                &win,
                Pool::Max,
            ))
        }
        Op::AvgPool2dGrad {
            kernel,
            stride,
            pad,
            count_include_pad,
        } => {
            let win = Window::new(*stride, *pad, [1, 1]);
            let pool = Pool::Avg(*count_include_pad);
            f32_out(pool::pool2d_grad(
                ins[0],
                ins[1],
                kernel.map(|k| k as usize),
                &win,
                pool,
            ))
        }
        Op::GlobalAvgPool {} => f32_out(pool::global_avg_pool(ins[0])),

        Op::BatchNorm { eps } => f32_out(norm::batch_norm(ins, eps.get())),
        Op::BatchNormTrain { eps } => {
            let [y, mean, var] = norm::batch_norm_train(ins, eps.get())?;
            Ok(vec![
                TensorData::F32(y),
                TensorData::F32(mean),
                TensorData::F32(var),
            ])
        }
        Op::Softmax { axis } => f32_out(norm::softmax(
            ins[0],
            norm_axis(*axis, ins[0].shape().len())?,
            false,
        )),
        Op::LogSoftmax { axis } => f32_out(norm::softmax(
            ins[0],
            norm_axis(*axis, ins[0].shape().len())?,
            true,
        )),

        Op::Dropout { p, seed } => {
            let key = random::stream(*seed, ins.get(1).copied())?;
            f32_out(random::dropout(ins[0], p.get(), key))
        }
        Op::StochasticPool2d { kernel, seed } => {
            let key = random::stream(*seed, ins.get(1).copied())?;
            let k = usize::try_from(*kernel).map_err(|_| format!("kernel {kernel} is negative"))?;
            f32_out(random::stochastic_pool(ins[0], k, key))
        }
        Op::RandomUniform {
            shape: _,
            low,
            high,
            seed,
        } => {
            let key = random::stream(*seed, ins.first().copied())?;
            f32_out(Ok(random::random_uniform(
                out.numel(),
                low.get(),
                high.get(),
                key,
            )))
        }
        Op::RandomNormal {
            shape: _,
            mean,
            std,
            seed,
        } => {
            let key = random::stream(*seed, ins.first().copied())?;
            f32_out(Ok(random::random_normal(
                out.numel(),
                mean.get(),
                std.get(),
                key,
            )))
        }
        Op::Bernoulli { seed } => {
            let key = random::stream(*seed, ins.get(1).copied())?;
            f32_out(random::bernoulli(ins[0], key))
        }

        Op::ReduceSum { axes, keepdims: _ } => f32_out(reduce::reduce(
            ins[0],
            &norm_axes(axes, ins[0].shape().len())?,
            Reduce::Sum,
        )),
        Op::ReduceMean { axes, keepdims: _ } => f32_out(reduce::reduce(
            ins[0],
            &norm_axes(axes, ins[0].shape().len())?,
            Reduce::Mean,
        )),
        Op::ReduceMax { axes, keepdims: _ } => f32_out(reduce::reduce(
            ins[0],
            &norm_axes(axes, ins[0].shape().len())?,
            Reduce::Max,
        )),
        Op::Argmax { axis, keepdims: _ } => {
            let axis = norm_axis(*axis, ins[0].shape().len())?;
            Ok(vec![TensorData::I64(reduce::argmax(ins[0], axis)?)])
        }

        // Same row-major elements under the new shape (which `out` has).
        Op::Reshape { shape: _ } | Op::Flatten { axis: _ } => one(Ok(ins[0].data().clone())),
        Op::Transpose { perm } => one(Ok(movement::transpose(
            ins[0],
            &norm_axes(perm, ins[0].shape().len())?,
        ))),
        Op::Broadcast { shape: _ } => one(Ok(movement::broadcast(ins[0], out))),
        Op::Concat { axis } => one(movement::concat(
            ins,
            norm_axis(*axis, ins[0].shape().len())?,
        )),
        Op::Split { axis, sizes: _ } => Ok(movement::split(
            ins[0],
            norm_axis(*axis, ins[0].shape().len())?,
            outs,
        )),
        Op::Slice {
            axes,
            starts,
            ends: _,
            steps,
        } => {
            let axes = norm_axes(axes, ins[0].shape().len())?;
            one(Ok(movement::slice(ins[0], &axes, starts, steps, out)))
        }
        Op::Pad { pads, value } => f32_out(movement::pad(ins[0], pads, value.get(), out)),

        Op::Gather { axis } => one(movement::gather(
            ins[0],
            ins[1],
            norm_axis(*axis, ins[0].shape().len())?,
        )),
        Op::ScatterAdd { axis, extent: _ } => {
            let rank = out.shape.len();
            f32_out(movement::scatter_add(
                ins[0],
                ins[1],
                norm_axis(*axis, rank)?,
                out,
            ))
        }
        Op::OneHot { depth } => f32_out(movement::one_hot(ins[0], *depth as usize)),
    }
}
