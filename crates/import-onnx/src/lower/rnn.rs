//! `LSTM` and `RNN`, unrolled into cells over time.
//!
//! Sinter graphs have static shapes and no loops, so a recurrent layer over a sequence of
//! known length `S` becomes `S` copies of its cell. The input projection of all time steps is
//! one `gemm` over `[S * B, I]` (with both biases folded into it); each step then adds the
//! recurrent term with one `gemm` whose `C` operand is that step's projection, as in
//! `ir-spec/compositions.md` (LSTM cell).
//!
//! ONNX layouts: `X` is `[S, B, I]` (`layout=0`) or `[B, S, I]` (`layout=1`); `W` is
//! `[D, G*H, I]`, `R` is `[D, G*H, H]` and `B` is `[D, 2*G*H]` (`Wb` then `Rb`), with `D`
//! directions and `G` gates, in ONNX's gate order **i, o, f, c** for LSTM. Outputs: `Y`
//! `[S, D, B, H]` (`[B, S, D, H]` with `layout=1`), `Y_h` and `Y_c` `[D, B, H]` (`[B, D, H]`).
//! Directions `forward`, `reverse` and `bidirectional` are supported, with the default
//! activations (LSTM: sigmoid, tanh, tanh; RNN: tanh, or relu or sigmoid by name); peepholes,
//! `clip`, `input_forget` and sequence lengths shorter than `S` are refused.

use super::{Node, Out, Outs, R, f32_input};
use crate::convert::Ctx;
use sinter_ir::{Float, Op, Tensor, Value};

/// Most cells one layer may unroll to (time steps times directions): far beyond the models
/// this is for, and a bound on the graph a corrupted shape can make.
pub const MAX_STEPS: usize = 4096;

fn reshape(cx: &mut Ctx, v: Value, shape: &[usize]) -> R<Value> {
    let shape = shape.iter().map(|&d| d as i64).collect();
    cx.op(Op::Reshape { shape }, &[v])
}

/// `v[d]` along axis 0 as a value of `shape`.
fn pick(cx: &mut Ctx, v: Value, d: usize, shape: &[usize]) -> R<Value> {
    let s = cx.op(
        Op::Slice {
            axes: vec![0],
            starts: vec![d as i64],
            ends: vec![d as i64 + 1],
            steps: vec![1],
        },
        &[v],
    )?;
    reshape(cx, s, shape)
}

fn gemm_bt() -> Op {
    Op::Gemm {
        trans_a: false,
        trans_b: true,
        alpha: Float(1.0),
        beta: Float(1.0),
    }
}

fn act(name: &str) -> R<Op> {
    match name {
        "Tanh" => Ok(Op::Tanh {}),
        "Sigmoid" => Ok(Op::Sigmoid {}),
        "Relu" => Ok(Op::Relu {}),
        other => Err(format!(
            "activation `{other}` is not supported (Tanh, Sigmoid, Relu)"
        )),
    }
}

/// Lowers `LSTM` or `RNN`.
pub fn lower(cx: &mut Ctx, n: &Node) -> R<Outs> {
    let lstm = n.op_type() == "LSTM";
    let gates = if lstm { 4 } else { 1 };
    let layout = n.int("layout", 0)?;
    let direction = n.string("direction", "forward")?;
    let dirs = match direction.as_str() {
        "forward" | "reverse" => 1,
        "bidirectional" => 2,
        other => {
            return Err(format!(
                "direction `{other}` is not forward, reverse or bidirectional"
            ));
        }
    };
    if n.has("clip") {
        return Err("attribute `clip` is not supported".into());
    }
    if n.int("input_forget", 0)? != 0 {
        return Err("input_forget=1 is not supported".into());
    }
    if n.has("activation_alpha") || n.has("activation_beta") {
        return Err("activation_alpha and activation_beta are not supported".into());
    }
    if lstm && n.input(7).is_some() {
        return Err("peephole weights (input P) are not supported".into());
    }
    let per_dir: Vec<&str> = if lstm {
        vec!["Sigmoid", "Tanh", "Tanh"]
    } else {
        vec!["Tanh"]
    };
    let acts: Vec<String> = match n.strings("activations")? {
        Some(a) => a,
        None => per_dir
            .iter()
            .cycle()
            .take(per_dir.len() * dirs)
            .map(|s| s.to_string())
            .collect(),
    };
    if acts.len() != per_dir.len() * dirs {
        return Err(format!(
            "activations {acts:?} need {} entries",
            per_dir.len() * dirs
        ));
    }
    if lstm && acts.chunks(3).any(|c| c != ["Sigmoid", "Tanh", "Tanh"]) {
        return Err(format!(
            "activations {acts:?}: only the default Sigmoid, Tanh, Tanh are supported"
        ));
    }

    let mut x = f32_input(cx, n, 0)?;
    if cx.ty(x).rank() != 3 {
        return Err(format!("input X {} must have rank 3", cx.ty(x)));
    }
    if layout != 0 {
        x = cx.op(
            Op::Transpose {
                perm: vec![1, 0, 2],
            },
            &[x],
        )?;
    }
    let xs = cx.shape(x);
    let (s, b, i) = (xs[0], xs[1], xs[2]);
    if s.saturating_mul(dirs) > MAX_STEPS
        || s.saturating_mul(b).saturating_mul(i) > crate::tensor::MAX_FOLD_ELEMENTS
    {
        return Err(format!(
            "X {} is too large to unroll: at most {MAX_STEPS} cells in all directions",
            cx.ty(x)
        ));
    }
    let w = f32_input(cx, n, 1)?;
    let r = f32_input(cx, n, 2)?;
    let ws = cx.shape(w);
    if ws.len() != 3 || ws[0] != dirs || ws[2] != i || !ws[1].is_multiple_of(gates) {
        return Err(format!(
            "W {} must be [{dirs}, {gates}*hidden, {i}] for X [S={s}, B={b}, I={i}]",
            cx.ty(w)
        ));
    }
    let h = ws[1] / gates;
    if b.saturating_mul(h) > crate::tensor::MAX_FOLD_ELEMENTS {
        return Err(format!("the state [{b}, {h}] is too large"));
    }
    if let Ok(hs) = n.int("hidden_size", h as i64)
        && hs != h as i64
    {
        return Err(format!(
            "hidden_size={hs} but W {} has hidden size {h}",
            cx.ty(w)
        ));
    }
    let want = |v: Value, shape: &[usize], what: &str, cx: &Ctx| -> R<()> {
        if cx.shape(v) != shape {
            return Err(format!("{what} {} must be {shape:?}", cx.ty(v)));
        }
        Ok(())
    };
    want(r, &[dirs, gates * h, h], "R", cx)?;
    let bias = match n.input(3) {
        Some(_) => {
            let v = f32_input(cx, n, 3)?;
            want(v, &[dirs, 2 * gates * h], "B", cx)?;
            Some(v)
        }
        None => None,
    };
    if let Some(name) = n.input(4) {
        let lens = cx.known(name).and_then(|t| t.as_i64().map(<[i64]>::to_vec));
        if lens.is_none_or(|l| l.iter().any(|&v| v != s as i64)) {
            return Err(format!(
                "sequence_lens must be known and equal to the sequence length {s} for every batch entry"
            ));
        }
    }
    let init = |k: usize, what: &str, cx: &mut Ctx| -> R<Option<Value>> {
        match n.input(k) {
            Some(_) => {
                let mut v = f32_input(cx, n, k)?;
                if layout != 0 {
                    v = cx.op(
                        Op::Transpose {
                            perm: vec![1, 0, 2],
                        },
                        &[v],
                    )?;
                }
                want(v, &[dirs, b, h], what, cx)?;
                Ok(Some(v))
            }
            None => Ok(None),
        }
    };
    let h0 = init(5, "initial_h", cx)?;
    let c0 = if lstm {
        init(6, "initial_c", cx)?
    } else {
        None
    };

    let x2 = reshape(cx, x, &[s * b, i])?;
    let (mut ys, mut hs, mut cs) = (Vec::new(), Vec::new(), Vec::new());
    for d in 0..dirs {
        let wd = pick(cx, w, d, &[gates * h, i])?;
        let rd = pick(cx, r, d, &[gates * h, h])?;
        let mut proj_in = vec![x2, wd];
        if let Some(bv) = bias {
            let bd = pick(cx, bv, d, &[2 * gates * h])?;
            let halves = cx.op_multi(
                Op::Split {
                    axis: 0,
                    sizes: vec![(gates * h) as i64; 2],
                },
                &[bd],
                2,
            )?;
            proj_in.push(cx.op(Op::Add {}, &[halves[0], halves[1]])?);
        }
        let proj = cx.op(gemm_bt(), &proj_in)?;
        let proj = reshape(cx, proj, &[s, b, gates * h])?;
        let zeros = Tensor::zeros(&sinter_ir::TensorType::f32(&[b, h]));
        let mut hv = match h0 {
            Some(v) => pick(cx, v, d, &[b, h])?,
            None => cx.constant(zeros.clone())?,
        };
        let mut cv = match c0 {
            Some(v) => pick(cx, v, d, &[b, h])?,
            None if lstm => cx.constant(zeros)?,
            None => hv,
        };
        let reverse = direction == "reverse" || d == 1;
        let mut steps: Vec<Option<Value>> = vec![None; s];
        let act_rnn = act(&acts[d * per_dir.len()])?;
        for k in 0..s {
            let t = if reverse { s - 1 - k } else { k };
            let xt = pick(cx, proj, t, &[b, gates * h])?;
            let z = cx.op(gemm_bt(), &[hv, rd, xt])?;
            if lstm {
                let g = cx.op_multi(
                    Op::Split {
                        axis: 1,
                        sizes: vec![h as i64; 4],
                    },
                    &[z],
                    4,
                )?;
                let ig = cx.op(Op::Sigmoid {}, &[g[0]])?;
                let og = cx.op(Op::Sigmoid {}, &[g[1]])?;
                let fg = cx.op(Op::Sigmoid {}, &[g[2]])?;
                let cg = cx.op(Op::Tanh {}, &[g[3]])?;
                let fc = cx.op(Op::Mul {}, &[fg, cv])?;
                let ic = cx.op(Op::Mul {}, &[ig, cg])?;
                cv = cx.op(Op::Add {}, &[fc, ic])?;
                let tc = cx.op(Op::Tanh {}, &[cv])?;
                hv = cx.op(Op::Mul {}, &[og, tc])?;
            } else {
                hv = cx.op(act_rnn.clone(), &[z])?;
            }
            steps[t] = Some(hv);
        }
        let mut parts = Vec::with_capacity(s);
        for v in steps.into_iter().flatten() {
            parts.push(reshape(cx, v, &[1, 1, b, h])?);
        }
        ys.push(cx.op(Op::Concat { axis: 0 }, &parts)?);
        hs.push(reshape(cx, hv, &[1, b, h])?);
        cs.push(reshape(cx, cv, &[1, b, h])?);
    }
    let cat = |cx: &mut Ctx, vs: Vec<Value>, axis: i64| -> R<Value> {
        if vs.len() == 1 {
            Ok(vs[0])
        } else {
            cx.op(Op::Concat { axis }, &vs)
        }
    };
    let mut y = cat(cx, ys, 1)?;
    let mut yh = cat(cx, hs, 0)?;
    let mut yc = cat(cx, cs, 0)?;
    if layout != 0 {
        y = cx.op(
            Op::Transpose {
                perm: vec![2, 0, 1, 3],
            },
            &[y],
        )?;
        yh = cx.op(
            Op::Transpose {
                perm: vec![1, 0, 2],
            },
            &[yh],
        )?;
        if lstm {
            yc = cx.op(
                Op::Transpose {
                    perm: vec![1, 0, 2],
                },
                &[yc],
            )?;
        }
    }
    let mut outs = vec![Some(Out::Value(y)), Some(Out::Value(yh))];
    if lstm {
        outs.push(Some(Out::Value(yc)));
    }
    Ok(outs)
}
