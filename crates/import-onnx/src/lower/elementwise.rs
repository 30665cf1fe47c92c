//! Unary and binary math, `Clip`, softmax, reductions and `Cast`.
//!
//! Sinter's arithmetic is `f32`-only, while ONNX models do integer arithmetic on shapes. So
//! every op here first tries to fold (all inputs known at import, see [`crate::fold`]); what
//! remains must be `f32`. An integer constant operand of float arithmetic (an exporter's
//! `Pow(x, 2)` with an `int64` exponent) is converted at import.

use super::{Node, Out, Outs, R, axis, f32_input, known, one, opt_known_ints};
use crate::convert::Ctx;
use crate::fold;
use sinter_ir::{DType, Float, Op, Tensor};

/// `Relu`, `Sigmoid`, `Tanh`, `Sqrt`, `Exp`, `Log`, `Neg`, `Abs`, `LeakyRelu`.
pub fn unary(cx: &mut Ctx, n: &Node) -> R<Outs> {
    let name = n.req(0)?;
    if let Some(t) = cx.foldable(name)
        && let Some(v) = t.as_i64()
        && matches!(n.op_type(), "Neg" | "Abs")
    {
        let f = if n.op_type() == "Neg" {
            i64::wrapping_neg
        } else {
            i64::wrapping_abs
        };
        let data = v.iter().map(|&x| f(x)).collect();
        return known(
            Tensor::new(t.shape(), sinter_ir::TensorData::I64(data)).map_err(|e| e.to_string())?,
        );
    }
    let op = match n.op_type() {
        "Relu" => Op::Relu {},
        "Sigmoid" => Op::Sigmoid {},
        "Tanh" => Op::Tanh {},
        "Sqrt" => Op::Sqrt {},
        "Exp" => Op::Exp {},
        "Log" => Op::Log {},
        "Neg" => Op::Neg {},
        "Abs" => Op::Abs {},
        _ => Op::LeakyRelu {
            alpha: Float(n.float("alpha", 0.01)?),
        },
    };
    let x = f32_input(cx, n, 0)?;
    one(cx.op(op, &[x])?)
}

/// `PRelu`: `prelu` (the slope broadcasts to the input, as ONNX requires).
pub fn prelu(cx: &mut Ctx, n: &Node) -> R<Outs> {
    let x = f32_input(cx, n, 0)?;
    let s = f32_input(cx, n, 1)?;
    one(cx.op(Op::Prelu {}, &[x, s])?)
}

/// An operand of float arithmetic: integer constants are converted to `f32` at import.
fn float_operand(cx: &mut Ctx, n: &Node, i: usize) -> R<sinter_ir::Value> {
    let name = n.req(i)?;
    if let Some(t) = cx.foldable(name)
        && t.dtype() == DType::I64
    {
        return cx.constant(fold::cast(t, DType::F32));
    }
    f32_input(cx, n, i)
}

/// `Add`, `Sub`, `Mul`, `Div`, `Pow`, and the variadic `Max`, `Min`, `Sum` (folded left to
/// right), with numpy broadcasting.
pub fn binary(cx: &mut Ctx, n: &Node) -> R<Outs> {
    let ins: Vec<&str> = (0..n.n_inputs()).filter_map(|i| n.input(i)).collect();
    if ins.is_empty() || (ins.len() == 1 && !matches!(n.op_type(), "Max" | "Min" | "Sum")) {
        return Err(format!("needs 2 inputs, got {}", ins.len()));
    }
    let name = if n.op_type() == "Sum" {
        "Add"
    } else {
        n.op_type()
    };
    let known_all: Option<Vec<&Tensor>> = ins.iter().map(|i| cx.foldable(i)).collect();
    if let Some(ts) = known_all {
        let mut acc = ts[0].clone();
        for t in &ts[1..] {
            acc = fold::binary(name, &acc, t)?;
        }
        return known(acc);
    }
    let mut acc = float_operand(cx, n, 0)?;
    for i in 1..n.n_inputs() {
        if n.input(i).is_none() {
            continue;
        }
        let b = float_operand(cx, n, i)?;
        let op = match name {
            "Add" => Op::Add {},
            "Sub" => Op::Sub {},
            "Mul" => Op::Mul {},
            "Div" => Op::Div {},
            "Pow" => Op::Pow {},
            "Max" => Op::Max {},
            _ => Op::Min {},
        };
        acc = cx.op(op, &[acc, b])?;
    }
    one(acc)
}

/// `Clip` with optional `min` and `max` inputs: `max` then `min` (NaN stays NaN).
pub fn clip(cx: &mut Ctx, n: &Node) -> R<Outs> {
    let mut y = f32_input(cx, n, 0)?;
    if n.input(1).is_some() {
        let lo = float_operand(cx, n, 1)?;
        y = cx.op(Op::Max {}, &[y, lo])?;
    }
    if n.input(2).is_some() {
        let hi = float_operand(cx, n, 2)?;
        y = cx.op(Op::Min {}, &[y, hi])?;
    }
    one(y)
}

/// `Softmax` and `LogSoftmax` along one axis (opset 13 and later).
pub fn softmax(cx: &mut Ctx, n: &Node) -> R<Outs> {
    let x = f32_input(cx, n, 0)?;
    let axis = n.int("axis", -1)?;
    let op = if n.op_type() == "Softmax" {
        Op::Softmax { axis }
    } else {
        Op::LogSoftmax { axis }
    };
    one(cx.op(op, &[x])?)
}

/// `ReduceMean`, `ReduceSum`, `ReduceMax`: axes as an input from opset 13 (`ReduceSum`) or
/// 18 (the others), as an attribute before; `noop_with_empty_axes`; `keepdims`.
pub fn reduce(cx: &mut Ctx, n: &Node) -> R<Outs> {
    let x = f32_input(cx, n, 0)?;
    let input_form = n.op_type() == "ReduceSum" || cx.opset >= 18;
    let axes = if input_form {
        opt_known_ints(cx, n, 1, "axes")?
    } else {
        n.ints("axes")?
    }
    .unwrap_or_default();
    let keepdims = n.int("keepdims", 1)? != 0;
    if axes.is_empty() && n.int("noop_with_empty_axes", 0)? != 0 {
        return one(x);
    }
    let rank = cx.ty(x).rank();
    let axes = axes
        .iter()
        .map(|&a| axis(a, rank).map(|a| a as i64))
        .collect::<R<Vec<_>>>()?;
    let op = match n.op_type() {
        "ReduceMean" => Op::ReduceMean { axes, keepdims },
        "ReduceSum" => Op::ReduceSum { axes, keepdims },
        _ => Op::ReduceMax { axes, keepdims },
    };
    one(cx.op(op, &[x])?)
}

/// The Sinter dtype for a `Cast` target.
fn cast_target(to: i64) -> R<DType> {
    use crate::proto::tensor_proto::DataType as D;
    match D::try_from(to as i32) {
        Ok(D::Float) => Ok(DType::F32),
        Ok(D::Int64 | D::Int32 | D::Int16 | D::Int8 | D::Uint8 | D::Uint16 | D::Uint32) => {
            Ok(DType::I64)
        }
        Ok(D::Bool) => Ok(DType::Bool),
        Ok(d) => Err(format!(
            "Cast to {} is not supported (Sinter has f32, i64 and bool)",
            d.as_str_name()
        )),
        Err(_) => Err(format!("Cast to unknown type {to}")),
    }
}

/// `Cast` to float, an integer type (as `i64`) or bool.
pub fn cast(cx: &mut Ctx, n: &Node) -> R<Outs> {
    let to = cast_target(n.int("to", 0)?)?;
    let name = n.req(0)?;
    if let Some(t) = cx.foldable(name) {
        return known(fold::cast(t, to));
    }
    let x = cx.value(name)?;
    if cx.ty(x).dtype == to {
        return Ok(vec![Some(Out::Value(x))]);
    }
    one(cx.op(Op::Cast { to }, &[x])?)
}
