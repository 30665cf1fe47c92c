//! Convolutions, pooling, batch norm and the matrix products.
//!
//! Sinter's convolution and pooling ops are 2-D (NCHW) with explicit `[top, left, bottom,
//! right]` pads, so this module turns ONNX's window attributes into that form:
//!
//! - `auto_pad` becomes explicit pads: `SAME_UPPER` and `SAME_LOWER` pad the total
//!   `max((ceil(in / stride) - 1) * stride + dilation * (k - 1) + 1 - in, 0)`, the odd element
//!   going to the end (`UPPER`) or the beginning (`LOWER`); `VALID` pads nothing.
//! - 1-D convolutions and pools run as 2-D ones over a unit height.
//! - `ceil_mode` pools: ONNX's output extent is `ceil((in + pads - k) / stride) + 1`, less one
//!   when the last window would start inside the end padding. The end pad grows by
//!   `(out - 1) * stride + k - (in + pads)` so that Sinter's floor rule gives the same extent.
//!   This is exact: the added positions are padding, which `max_pool2d` never picks and
//!   `avg_pool2d` without `count_include_pad` never counts. With `count_include_pad` (where
//!   ONNX counts the declared pads but not the ceil extension), the declared pads become an
//!   explicit zero `pad` op, which the pool then counts as real elements, and only the
//!   extension stays pool padding, uncounted.

use super::{Node, Outs, R, f32_input, one};
use crate::convert::Ctx;
use sinter_ir::{Float, Op, Value};

/// Window attributes in Sinter's 2-D form.
struct Window {
    kernel: [i64; 2],
    stride: [i64; 2],
    dilation: [i64; 2],
    /// `[top, left, bottom, right]`.
    pad: [i64; 4],
}

/// Explicit `(begin, end)` pads for an `auto_pad` mode on one axis.
fn auto_pad(mode: &str, input: i64, k_eff: i64, stride: i64) -> Option<(i64, i64)> {
    match mode {
        "VALID" => Some((0, 0)),
        "SAME_UPPER" | "SAME_LOWER" => {
            let out = input.saturating_add(stride - 1) / stride;
            let total = (out - 1)
                .saturating_mul(stride)
                .saturating_add(k_eff)
                .saturating_sub(input)
                .max(0);
            let small = total / 2;
            Some(if mode == "SAME_UPPER" {
                (small, total - small)
            } else {
                (total - small, small)
            })
        }
        _ => None,
    }
}

/// Reads `kernel_shape`, `strides`, `dilations`, `pads` and `auto_pad` for `spatial`
/// (1 or 2) axes of the extents `input`, with `kernel` the weight's kernel (convolutions)
/// or `None` (pools, where `kernel_shape` is required).
fn window(n: &Node, input: &[usize], kernel: Option<&[usize]>) -> R<Window> {
    let sp = input.len();
    if !(1..=2).contains(&sp) {
        return Err(format!(
            "{}-D windows are not supported (Sinter has 2-D convolution and pooling; 1-D runs as 2-D)",
            sp
        ));
    }
    let ks = match (n.ints("kernel_shape")?, kernel) {
        (Some(k), Some(w)) => {
            if k.len() != sp || k.iter().zip(w).any(|(&a, &b)| a != b as i64) {
                return Err(format!(
                    "kernel_shape {k:?} does not match the weight's kernel {w:?}"
                ));
            }
            k
        }
        (Some(k), None) => k,
        (None, Some(w)) => w.iter().map(|&d| d as i64).collect(),
        (None, None) => return Err("attribute `kernel_shape` is required".into()),
    };
    let list = |name: &str, default: i64, len: usize| -> R<Vec<i64>> {
        match n.ints(name)? {
            Some(v) if v.len() == len => Ok(v),
            Some(v) => Err(format!(
                "attribute `{name}` {v:?} needs {len} entries for {sp}-D input"
            )),
            None => Ok(vec![default; len]),
        }
    };
    if ks.len() != sp {
        return Err(format!("kernel_shape {ks:?} needs {sp} entries"));
    }
    let strides = list("strides", 1, sp)?;
    let dilations = list("dilations", 1, sp)?;
    let mode = n.string("auto_pad", "NOTSET")?;
    let pads = match mode.as_str() {
        "NOTSET" => list("pads", 0, 2 * sp)?,
        "VALID" | "SAME_UPPER" | "SAME_LOWER" => {
            let mut begin = Vec::new();
            let mut end = Vec::new();
            for i in 0..sp {
                let k_eff = dilations[i].saturating_mul(ks[i] - 1).saturating_add(1);
                let (b, e) =
                    auto_pad(&mode, input[i] as i64, k_eff, strides[i].max(1)).unwrap_or((0, 0));
                begin.push(b);
                end.push(e);
            }
            begin.extend(end);
            begin
        }
        other => {
            return Err(format!(
                "auto_pad `{other}` is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID"
            ));
        }
    };
    Ok(if sp == 2 {
        Window {
            kernel: [ks[0], ks[1]],
            stride: [strides[0], strides[1]],
            dilation: [dilations[0], dilations[1]],
            pad: [pads[0], pads[1], pads[2], pads[3]],
        }
    } else {
        Window {
            kernel: [1, ks[0]],
            stride: [1, strides[0]],
            dilation: [1, dilations[0]],
            pad: [0, pads[0], 0, pads[1]],
        }
    })
}

/// `[N, C, L]` to `[N, C, 1, L]` for 1-D windows; rank-4 values pass through.
fn lift(cx: &mut Ctx, v: Value) -> R<Value> {
    let s = cx.shape(v);
    if s.len() == 3 {
        let shape = vec![s[0] as i64, s[1] as i64, 1, s[2] as i64];
        cx.op(Op::Reshape { shape }, &[v])
    } else {
        Ok(v)
    }
}

/// Undoes [`lift`] on a result when the input was 1-D.
fn unlift(cx: &mut Ctx, v: Value, was_1d: bool) -> R<Value> {
    if !was_1d {
        return Ok(v);
    }
    let s = cx.shape(v);
    let shape = vec![s[0] as i64, s[1] as i64, s[3] as i64];
    cx.op(Op::Reshape { shape }, &[v])
}

fn check_rank(cx: &Ctx, v: Value, what: &str) -> R<usize> {
    let ty = cx.ty(v);
    if !(3..=4).contains(&ty.rank()) {
        return Err(format!(
            "{what} {ty} must have rank 3 or 4 (1-D or 2-D NCHW; Sinter has no 3-D windows)"
        ));
    }
    Ok(ty.rank() - 2)
}

/// `Conv`: `conv2d`, over a unit height for 1-D input.
pub fn conv(cx: &mut Ctx, n: &Node) -> R<Outs> {
    let x = f32_input(cx, n, 0)?;
    let w = f32_input(cx, n, 1)?;
    let b = match n.input(2) {
        Some(_) => Some(f32_input(cx, n, 2)?),
        None => None,
    };
    let sp = check_rank(cx, x, "input")?;
    let (xs, ws) = (cx.shape(x), cx.shape(w));
    if ws.len() != xs.len() {
        return Err(format!(
            "weight {} must have the input's rank {}",
            cx.ty(w),
            xs.len()
        ));
    }
    let win = window(n, &xs[2..], Some(&ws[2..]))?;
    let op = Op::Conv2d {
        stride: win.stride,
        pad: win.pad,
        dilation: win.dilation,
        groups: n.int("group", 1)?,
    };
    let (x4, w4) = (lift(cx, x)?, lift(cx, w)?);
    let mut ins = vec![x4, w4];
    ins.extend(b);
    let y = cx.op(op, &ins)?;
    one(unlift(cx, y, sp == 1)?)
}

/// `ConvTranspose`: `conv_transpose2d`, with `output_shape` and `auto_pad` turned into pads.
pub fn conv_transpose(cx: &mut Ctx, n: &Node) -> R<Outs> {
    let x = f32_input(cx, n, 0)?;
    let w = f32_input(cx, n, 1)?;
    let b = match n.input(2) {
        Some(_) => Some(f32_input(cx, n, 2)?),
        None => None,
    };
    let sp = check_rank(cx, x, "input")?;
    let (xs, ws) = (cx.shape(x), cx.shape(w));
    if ws.len() != xs.len() {
        return Err(format!(
            "weight {} must have the input's rank {}",
            cx.ty(w),
            xs.len()
        ));
    }
    let k: Vec<i64> = match n.ints("kernel_shape")? {
        Some(k) if k.len() == sp => k,
        Some(k) => return Err(format!("kernel_shape {k:?} needs {sp} entries")),
        None => ws[2..].iter().map(|&d| d as i64).collect(),
    };
    let list = |name: &str, default: i64, len: usize| -> R<Vec<i64>> {
        match n.ints(name)? {
            Some(v) if v.len() == len => Ok(v),
            Some(v) => Err(format!(
                "attribute `{name}` {v:?} needs {len} entries for {sp}-D input"
            )),
            None => Ok(vec![default; len]),
        }
    };
    let strides = list("strides", 1, sp)?;
    let dilations = list("dilations", 1, sp)?;
    let mut out_pad = list("output_padding", 0, sp)?;
    let mode = n.string("auto_pad", "NOTSET")?;
    let output_shape = match n.ints("output_shape")? {
        Some(s) if s.len() >= sp => Some(s[s.len() - sp..].to_vec()),
        Some(s) => return Err(format!("output_shape {s:?} needs {sp} spatial entries")),
        None if mode == "SAME_UPPER" || mode == "SAME_LOWER" => {
            Some((0..sp).map(|i| xs[2 + i] as i64 * strides[i]).collect())
        }
        None => None,
    };
    let pads: Vec<i64> = match (output_shape, mode.as_str()) {
        (Some(out), _) => {
            let mut begin = vec![0; sp];
            let mut end = vec![0; sp];
            for i in 0..sp {
                let full = strides[i]
                    .saturating_mul(xs[2 + i] as i64 - 1)
                    .saturating_add(out_pad[i])
                    .saturating_add((k[i].saturating_sub(1)).saturating_mul(dilations[i]))
                    .saturating_add(1);
                let total = full.saturating_sub(out[i]);
                if total < 0 {
                    // A larger output than the full one: the extra rows are output padding.
                    out_pad[i] = out_pad[i].saturating_sub(total);
                    continue;
                }
                if mode == "SAME_UPPER" {
                    begin[i] = total / 2;
                    end[i] = total - total / 2;
                } else {
                    begin[i] = total - total / 2;
                    end[i] = total / 2;
                }
            }
            begin.extend(end);
            begin
        }
        (None, "NOTSET") => list("pads", 0, 2 * sp)?,
        (None, "VALID") => vec![0; 2 * sp],
        (None, other) => {
            return Err(format!(
                "auto_pad `{other}` is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID"
            ));
        }
    };
    let (stride, pad, output_pad, dilation) = if sp == 2 {
        (
            [strides[0], strides[1]],
            [pads[0], pads[1], pads[2], pads[3]],
            [out_pad[0], out_pad[1]],
            [dilations[0], dilations[1]],
        )
    } else {
        (
            [1, strides[0]],
            [0, pads[0], 0, pads[1]],
            [0, out_pad[0]],
            [1, dilations[0]],
        )
    };
    let op = Op::ConvTranspose2d {
        stride,
        pad,
        output_pad,
        dilation,
        groups: n.int("group", 1)?,
    };
    let (x4, w4) = (lift(cx, x)?, lift(cx, w)?);
    let mut ins = vec![x4, w4];
    ins.extend(b);
    let y = cx.op(op, &ins)?;
    one(unlift(cx, y, sp == 1)?)
}

/// `BatchNormalization` in inference mode: `batch_norm`.
pub fn batch_norm(cx: &mut Ctx, n: &Node) -> R<Outs> {
    if n.int("training_mode", 0)? != 0 {
        return Err("training_mode=1 is not supported (import is for inference)".into());
    }
    let mut ins = Vec::new();
    for i in 0..5 {
        ins.push(f32_input(cx, n, i)?);
    }
    let eps = n.float("epsilon", 1e-5)?;
    let y = cx.op(Op::BatchNorm { eps: Float(eps) }, &ins)?;
    one(y)
}

/// `MaxPool` and `AveragePool`; see the module docs for `ceil_mode` and `count_include_pad`.
pub fn pool(cx: &mut Ctx, n: &Node) -> R<Outs> {
    let x = f32_input(cx, n, 0)?;
    let sp = check_rank(cx, x, "input")?;
    let xs = cx.shape(x);
    let win = window(n, &xs[2..], None)?;
    if win.dilation != [1, 1] {
        return Err(format!(
            "dilations {:?} are not supported: Sinter's pools have no dilation",
            win.dilation
        ));
    }
    let is_max = n.op_type() == "MaxPool";
    let count_include_pad = !is_max && n.int("count_include_pad", 0)? != 0;
    let ceil = n.int("ceil_mode", 0)? != 0 && n.string("auto_pad", "NOTSET")? == "NOTSET";
    let x4 = lift(cx, x)?;
    let ins = cx.shape(x4);
    let mut pad = win.pad;
    let mut extra = [0i64; 2];
    if ceil {
        for a in 0..2 {
            let (k, s) = (win.kernel[a], win.stride[a].max(1));
            let (begin, end) = (pad[a], pad[a + 2]);
            let input = ins[2 + a] as i64;
            let span = input
                .saturating_add(begin)
                .saturating_add(end)
                .saturating_sub(k);
            if span < 0 {
                continue; // the shape rule reports the window larger than the input
            }
            let mut out = span.saturating_add(s - 1) / s + 1;
            if (out - 1).saturating_mul(s) >= input.saturating_add(begin) {
                out -= 1;
            }
            extra[a] = (out - 1)
                .saturating_mul(s)
                .saturating_add(k)
                .saturating_sub(input.saturating_add(begin).saturating_add(end))
                .max(0);
        }
    }
    let y = if is_max {
        pad[2] = pad[2].saturating_add(extra[0]);
        pad[3] = pad[3].saturating_add(extra[1]);
        cx.op(
            Op::MaxPool2d {
                kernel: win.kernel,
                stride: win.stride,
                pad,
            },
            &[x4],
        )?
    } else if count_include_pad && extra != [0, 0] {
        let padded = if pad == [0; 4] {
            x4
        } else {
            let pads = vec![0, 0, pad[0], pad[1], 0, 0, pad[2], pad[3]];
            cx.op(
                Op::Pad {
                    pads,
                    value: Float(0.0),
                },
                &[x4],
            )?
        };
        let op = Op::AvgPool2d {
            kernel: win.kernel,
            stride: win.stride,
            pad: [0, 0, extra[0], extra[1]],
            count_include_pad: false,
        };
        cx.op(op, &[padded])?
    } else {
        pad[2] = pad[2].saturating_add(extra[0]);
        pad[3] = pad[3].saturating_add(extra[1]);
        let op = Op::AvgPool2d {
            kernel: win.kernel,
            stride: win.stride,
            pad,
            count_include_pad,
        };
        cx.op(op, &[x4])?
    };
    one(unlift(cx, y, sp == 1)?)
}

/// `GlobalAveragePool` (`global_avg_pool` for NCHW, else `reduce_mean`) and `GlobalMaxPool`
/// (`reduce_max`), keeping the spatial axes as 1.
pub fn global_pool(cx: &mut Ctx, n: &Node) -> R<Outs> {
    let x = f32_input(cx, n, 0)?;
    let r = cx.ty(x).rank();
    if r < 3 {
        return Err(format!(
            "input {} needs rank >= 3 (N, C and spatial axes)",
            cx.ty(x)
        ));
    }
    let axes: Vec<i64> = (2..r as i64).collect();
    let y = match (n.op_type(), r) {
        ("GlobalAveragePool", 4) => cx.op(Op::GlobalAvgPool {}, &[x])?,
        ("GlobalAveragePool", _) => cx.op(
            Op::ReduceMean {
                axes,
                keepdims: true,
            },
            &[x],
        )?,
        _ => cx.op(
            Op::ReduceMax {
                axes,
                keepdims: true,
            },
            &[x],
        )?,
    };
    one(y)
}

/// `Gemm`: Sinter's `gemm` has the same attributes.
pub fn gemm(cx: &mut Ctx, n: &Node) -> R<Outs> {
    let a = f32_input(cx, n, 0)?;
    let b = f32_input(cx, n, 1)?;
    let mut ins = vec![a, b];
    if n.input(2).is_some() {
        ins.push(f32_input(cx, n, 2)?);
    }
    let op = Op::Gemm {
        trans_a: n.int("transA", 0)? != 0,
        trans_b: n.int("transB", 0)? != 0,
        alpha: Float(n.float("alpha", 1.0)?),
        beta: Float(n.float("beta", 1.0)?),
    };
    one(cx.op(op, &ins)?)
}

/// `MatMul`: `matmul`, with 1-D operands made 2-D and the added axis removed again
/// (numpy's rule).
pub fn matmul(cx: &mut Ctx, n: &Node) -> R<Outs> {
    let mut a = f32_input(cx, n, 0)?;
    let mut b = f32_input(cx, n, 1)?;
    let (ra, rb) = (cx.ty(a).rank(), cx.ty(b).rank());
    if ra == 0 || rb == 0 {
        return Err(format!(
            "MatMul of {} and {}: scalars have no matrix axes",
            cx.ty(a),
            cx.ty(b)
        ));
    }
    if ra == 1 {
        let k = cx.shape(a)[0] as i64;
        a = cx.op(Op::Reshape { shape: vec![1, k] }, &[a])?;
    }
    if rb == 1 {
        let k = cx.shape(b)[0] as i64;
        b = cx.op(Op::Reshape { shape: vec![k, 1] }, &[b])?;
    }
    let mut y = cx.op(Op::Matmul {}, &[a, b])?;
    if ra == 1 || rb == 1 {
        let mut s: Vec<i64> = cx.shape(y).iter().map(|&d| d as i64).collect();
        let r = s.len();
        if rb == 1 {
            s.remove(r - 1);
        }
        if ra == 1 {
            s.remove(r - 2);
        }
        y = cx.op(Op::Reshape { shape: s }, &[y])?;
    }
    one(y)
}
