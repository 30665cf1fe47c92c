//! Lowering of the `winograd_*` ops (layouts in `sinter_ir::winograd` and `ir-spec/ops.md`).
//!
//! Each transform is `L X R^T` of a small tile `X` with constant matrices, so in the loop IR
//! it is a loop nest over the tiles whose body loads the tile into scalar variables, forms the
//! products as sums of the nonzero coefficients' terms (two stages, `L X` then `(L X) R^T`,
//! the interpreter's order, so the portable path reproduces it) and stores the results.
//! That is the portable path; with microkernels the transforms are calls of
//! `sinter_microkernels::winograd` ([`Stmt::Winograd`]), which vectorise (a transposed
//! filter, an input gradient's in a training step, is read rotated by the transform itself). (Constant weights have their filter transform computed when the graph is
//! compiled, so no kernel runs it.)

use crate::loops::{Buf, Expr, Kernel, Stmt, Ty, Var, WinogradCall, WinogradStage, load};
use crate::ops::{LowerOptions, c, dims4, idx4, nest};
use sinter_ir::TensorType;
use sinter_ir::winograd::{Matrices, matrices, tiles};

type R<T> = Result<T, String>;

fn table(tile: i64) -> R<Matrices> {
    matrices(tile).ok_or_else(|| format!("no Winograd tables for tile={tile}"))
}

/// `sum_k l[i*q + k] * x[k]` over the nonzero coefficients, in order (0 if none).
fn dot(l: &[f32], x: &[Expr]) -> Expr {
    let mut acc: Option<Expr> = None;
    for (&coef, v) in l.iter().zip(x) {
        if coef == 0.0 {
            continue;
        }
        let term = if coef == 1.0 {
            v.clone()
        } else {
            Expr::F(coef) * v.clone()
        };
        acc = Some(match acc {
            None => term,
            Some(a) => a + term,
        });
    }
    acc.unwrap_or(Expr::F(0.0))
}

/// Statements setting fresh variables to `L X R^T` for `L: p x q`, `X: q x s` (the
/// expressions `x`, row-major) and `R: p2 x s` (`p`, `p2` from the lengths); returns them with
/// the `p x p2` result variables, row-major.
fn sandwich(k: &mut Kernel, l: &[f32], x: &[Expr], s: usize, r: &[f32]) -> (Vec<Stmt>, Vec<Var>) {
    let q = x.len() / s;
    let (p, p2) = (l.len() / q, r.len() / s);
    let mut st = Vec::new();
    let mut lx = Vec::with_capacity(p * s);
    for i in 0..p {
        for j in 0..s {
            let col: Vec<Expr> = (0..q).map(|kk| x[kk * s + j].clone()).collect();
            let v = k.var("lx", Ty::F32);
            st.push(Stmt::Set(v, dot(&l[i * q..(i + 1) * q], &col)));
            lx.push(Expr::v(v));
        }
    }
    let mut out = Vec::with_capacity(p * p2);
    for i in 0..p {
        for j in 0..p2 {
            let v = k.var("t", Ty::F32);
            st.push(Stmt::Set(
                v,
                dot(&r[j * s..(j + 1) * s], &lx[i * s..(i + 1) * s]),
            ));
            out.push(v);
        }
    }
    (st, out)
}

/// `U[t, co, ci] = (G g G^T)[t]` of each 3x3 filter (rotated and transposed with
/// `transposed`): with microkernels a call of the vectorised transform, else a loop nest.
#[allow(clippy::too_many_arguments)] // the lowering's usual operands plus the op's attributes
pub(crate) fn filter(
    k: &mut Kernel,
    ins: &[&TensorType],
    out: &TensorType,
    ib: &[Buf],
    o: Buf,
    tile: i64,
    transposed: bool,
    opt: LowerOptions,
) -> R<()> {
    let f = table(tile)?;
    let wd = dims4(ins[0])?;
    let (co_n, ci_n) = (out.shape[1], out.shape[2]);
    let w = ib[0];
    if opt.microkernels {
        k.body.push(Stmt::Winograd(Box::new(WinogradCall {
            stage: WinogradStage::Filter {
                co: co_n,
                ci: ci_n,
                transposed,
            },
            tile: f.m,
            src: w,
            dst: o,
            threads: opt.threads,
        })));
        return Ok(());
    }
    let body = nest(k, &[co_n, ci_n], "f", |k, idx| {
        let (co, ci) = (idx[0].clone(), idx[1].clone());
        let g: Vec<Expr> = (0..9)
            .map(|q| {
                let index = if transposed {
                    idx4(wd, [ci.clone(), co.clone(), c(2 - q / 3), c(2 - q % 3)])
                } else {
                    idx4(wd, [co.clone(), ci.clone(), c(q / 3), c(q % 3)])
                };
                load(w, index)
            })
            .collect();
        let (mut st, u) = sandwich(k, f.g, &g, 3, f.g);
        for (t, v) in u.into_iter().enumerate() {
            let at = (c(t * co_n) + co.clone()) * c(ci_n) + ci.clone();
            st.push(Stmt::Store(o, at, Expr::v(v)));
        }
        st
    });
    k.body.extend(body);
    Ok(())
}

/// `V[t, c, p] = (B^T d B)[t]` of every padded window.
#[allow(clippy::too_many_arguments)] // the lowering's usual operands plus the op's attributes
pub(crate) fn input(
    k: &mut Kernel,
    ins: &[&TensorType],
    out: &TensorType,
    ib: &[Buf],
    o: Buf,
    tile: i64,
    pad: [i64; 4],
    opt: LowerOptions,
) -> R<()> {
    let f = table(tile)?;
    let [n, ch, h, w] = dims4(ins[0])?;
    let pad = pad.map(|p| p as usize);
    if opt.microkernels {
        k.body.push(Stmt::Winograd(Box::new(WinogradCall {
            stage: WinogradStage::Input {
                n,
                c: ch,
                h,
                w,
                pad,
            },
            tile: f.m,
            src: ib[0],
            dst: o,
            threads: opt.threads,
        })));
        return Ok(());
    }
    let (oh, ow) = (h + pad[0] + pad[2] - 2, w + pad[1] + pad[3] - 2);
    let (th, tw) = (tiles(oh, f.m), tiles(ow, f.m));
    let (a, p_n, x) = (f.a(), out.shape[2], ib[0]);
    let body = nest(k, &[n, ch, th, tw], "w", |k, idx| {
        let (img, cc, ti, tj) = (
            idx[0].clone(),
            idx[1].clone(),
            idx[2].clone(),
            idx[3].clone(),
        );
        let mut st = Vec::new();
        let mut d = Vec::with_capacity(a * a);
        for i in 0..a {
            for j in 0..a {
                let v = k.var("d", Ty::F32);
                let y = ti.clone() * c(f.m) + c(i) - c(pad[0]);
                let xx = tj.clone() * c(f.m) + c(j) - c(pad[1]);
                st.push(Stmt::Set(v, Expr::F(0.0)));
                st.push(Stmt::If(
                    y.clone()
                        .in_range(h as i64)
                        .and(xx.clone().in_range(w as i64)),
                    vec![Stmt::Set(
                        v,
                        load(x, idx4([n, ch, h, w], [img.clone(), cc.clone(), y, xx])),
                    )],
                    vec![],
                ));
                d.push(Expr::v(v));
            }
        }
        let (s2, t) = sandwich(k, f.bt, &d, a, f.bt);
        st.extend(s2);
        let p = (img * c(th) + ti) * c(tw) + tj;
        for (q, v) in t.into_iter().enumerate() {
            let at = (c(q * ch) + cc.clone()) * c(p_n) + p.clone();
            st.push(Stmt::Store(o, at, Expr::v(v)));
        }
        st
    });
    k.body.extend(body);
    Ok(())
}

/// `y = A^T M A` per tile, cropped, plus the bias.
pub(crate) fn output(
    k: &mut Kernel,
    ins: &[&TensorType],
    out: &TensorType,
    ib: &[Buf],
    o: Buf,
    tile: i64,
    opt: LowerOptions,
) -> R<()> {
    let f = table(tile)?;
    let od = dims4(out)?;
    let [n, ch, oh, ow] = od;
    let bias = ib.get(1).copied();
    if opt.microkernels {
        k.body.push(Stmt::Winograd(Box::new(WinogradCall {
            stage: WinogradStage::Output {
                n,
                c: ch,
                oh,
                ow,
                bias,
                act: None,
            },
            tile: f.m,
            src: ib[0],
            dst: o,
            threads: opt.threads,
        })));
        return Ok(());
    }
    let (th, tw) = (tiles(oh, f.m), tiles(ow, f.m));
    let (a, m, p_n, src) = (f.a(), f.m, ins[0].shape[2], ib[0]);
    let body = nest(k, &[n, ch, th, tw], "w", |k, idx| {
        let (img, cc, ti, tj) = (
            idx[0].clone(),
            idx[1].clone(),
            idx[2].clone(),
            idx[3].clone(),
        );
        let p = (img.clone() * c(th) + ti.clone()) * c(tw) + tj.clone();
        let mut st = Vec::new();
        let mut x = Vec::with_capacity(a * a);
        for q in 0..a * a {
            let v = k.var("m", Ty::F32);
            let at = (c(q * ch) + cc.clone()) * c(p_n) + p.clone();
            st.push(Stmt::Set(v, load(src, at)));
            x.push(Expr::v(v));
        }
        let (s2, y) = sandwich(k, f.at, &x, a, f.at);
        st.extend(s2);
        for r in 0..m {
            for s in 0..m {
                let yy = ti.clone() * c(m) + c(r);
                let xx = tj.clone() * c(m) + c(s);
                let v = match bias {
                    Some(b) => Expr::v(y[r * m + s]) + load(b, cc.clone()),
                    None => Expr::v(y[r * m + s]),
                };
                st.push(Stmt::If(
                    yy.clone().lt(c(oh)).and(xx.clone().lt(c(ow))),
                    vec![Stmt::Store(
                        o,
                        idx4(od, [img.clone(), cc.clone(), yy, xx]),
                        v,
                    )],
                    vec![],
                ));
            }
        }
        st
    });
    k.body.extend(body);
    Ok(())
}
