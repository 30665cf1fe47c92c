//! `f32x4` code for straight-line elementwise loop bodies (fused chains included).
//!
//! Cranelift 0.135 lowers 128-bit vectors only, so four lanes it is. A loop qualifies when its
//! body is a run of `Set`s of f32/bool variables ending in one `Store` at the loop index, every
//! load reads an f32 buffer at the loop index (or a fixed element, splatted), and every op has
//! a vector form (calls such as `f32::exp` do not; the inline polynomial does). Comparisons
//! become lane masks and `select` a `bitselect`, which is exact for every input including NaN
//! (no `fmin`/`fmax`, which are slower here and differ on NaN). The remainder of the loop
//! (`extent % 4`) runs the scalar code.

use crate::codegen::Emitter;
use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::{Endianness, InstBuilder, MemFlagsData, Value, types};
use sinter_lower::loops::{BinOp, Expr, Kernel, Stmt, Ty, UnOp, Var};
use std::collections::HashMap;

fn ok_expr(k: &Kernel, e: &Expr, lv: Var, defined: &[Var]) -> bool {
    match e {
        Expr::Var(v) => defined.contains(v),
        Expr::F(_) | Expr::B(_) => true,
        Expr::I(_) => false,
        Expr::Load(b, i) => {
            k.bufs[b.0 as usize].ty == Ty::F32
                && matches!(&**i, Expr::Var(v) if *v == lv) | matches!(&**i, Expr::I(_))
        }
        Expr::Un(op, x) => {
            matches!(
                op,
                UnOp::Neg | UnOp::Abs | UnOp::Sqrt | UnOp::FastExp | UnOp::Not | UnOp::IsNan
            ) && k.ty(x) != Ty::I64
                && ok_expr(k, x, lv, defined)
        }
        Expr::Bin(op, a, b) => {
            let t = k.ty(a);
            let allowed = match t {
                Ty::F32 => matches!(
                    op,
                    BinOp::Add
                        | BinOp::Sub
                        | BinOp::Mul
                        | BinOp::Div
                        | BinOp::Eq
                        | BinOp::Ne
                        | BinOp::Lt
                        | BinOp::Le
                        | BinOp::Gt
                        | BinOp::Ge
                ),
                Ty::Bool => matches!(op, BinOp::And | BinOp::Or | BinOp::Xor),
                Ty::I64 => false,
            };
            allowed && ok_expr(k, a, lv, defined) && ok_expr(k, b, lv, defined)
        }
        Expr::Select(c, a, b) => {
            k.ty(c) == Ty::Bool
                && ok_expr(k, c, lv, defined)
                && ok_expr(k, a, lv, defined)
                && ok_expr(k, b, lv, defined)
        }
    }
}

/// Whether the loop over `lv` with this body can run four lanes at a time.
pub(crate) fn vectorizable(k: &Kernel, lv: Var, body: &[Stmt]) -> bool {
    let Some((last, sets)) = body.split_last() else {
        return false;
    };
    let mut defined = Vec::new();
    for s in sets {
        match s {
            Stmt::Set(v, e) if k.vars[v.0 as usize].1 != Ty::I64 && !defined.contains(v) => {
                if !ok_expr(k, e, lv, &defined) {
                    return false;
                }
                defined.push(*v);
            }
            _ => return false,
        }
    }
    match last {
        Stmt::Store(b, Expr::Var(i), e) => {
            *i == lv
                && k.bufs[b.0 as usize].ty == Ty::F32
                && k.ty(e) == Ty::F32
                && ok_expr(k, e, lv, &defined)
        }
        _ => false,
    }
}

fn little() -> MemFlagsData {
    MemFlagsData::new().with_endianness(Endianness::Little)
}

fn as_f32x4(em: &mut Emitter<'_, '_>, mask: Value) -> Value {
    em.b.ins().bitcast(types::F32X4, little(), mask)
}

struct Lanes<'e, 'a, 'b> {
    em: &'e mut Emitter<'a, 'b>,
    lv: Var,
    j: Value,
    env: HashMap<Var, Value>,
}

impl Lanes<'_, '_, '_> {
    fn expr(&mut self, e: &Expr) -> Value {
        match e {
            Expr::Var(v) => self.env[v],
            Expr::F(x) => {
                let s = self.em.b.ins().f32const(*x);
                self.em.b.ins().splat(types::F32X4, s)
            }
            Expr::B(x) => {
                let s = self.em.b.ins().iconst(types::I32, 0);
                let zero = self.em.b.ins().splat(types::I32X4, s);
                if *x {
                    use cranelift_codegen::ir::condcodes::IntCC;
                    self.em.b.ins().icmp(IntCC::Equal, zero, zero)
                } else {
                    zero
                }
            }
            Expr::I(_) => unreachable!("rejected by `vectorizable`"),
            Expr::Load(b, i) => match &**i {
                Expr::Var(v) if *v == self.lv => {
                    let addr = self.em.addr_at(*b, self.j, 4);
                    self.em
                        .b
                        .ins()
                        .load(types::F32X4, MemFlagsData::new().with_notrap(), addr, 0)
                }
                other => {
                    let s = self.em.expr(&Expr::Load(*b, Box::new(other.clone())));
                    self.em.b.ins().splat(types::F32X4, s)
                }
            },
            Expr::Un(op, x) => {
                let v = self.expr(x);
                let ins = self.em.b.ins();
                match op {
                    UnOp::Neg => ins.fneg(v),
                    UnOp::Abs => ins.fabs(v),
                    UnOp::Sqrt => ins.sqrt(v),
                    UnOp::Not => ins.bnot(v),
                    UnOp::IsNan => ins.fcmp(FloatCC::Unordered, v, v),
                    UnOp::FastExp => crate::approx::exp(self.em.b, v),
                    _ => unreachable!("rejected by `vectorizable`"),
                }
            }
            Expr::Bin(op, a, c) => {
                let x = self.expr(a);
                let y = self.expr(c);
                let ins = self.em.b.ins();
                match op {
                    BinOp::Add => ins.fadd(x, y),
                    BinOp::Sub => ins.fsub(x, y),
                    BinOp::Mul => ins.fmul(x, y),
                    BinOp::Div => ins.fdiv(x, y),
                    BinOp::Eq => ins.fcmp(FloatCC::Equal, x, y),
                    BinOp::Ne => ins.fcmp(FloatCC::NotEqual, x, y),
                    BinOp::Lt => ins.fcmp(FloatCC::LessThan, x, y),
                    BinOp::Le => ins.fcmp(FloatCC::LessThanOrEqual, x, y),
                    BinOp::Gt => ins.fcmp(FloatCC::GreaterThan, x, y),
                    BinOp::Ge => ins.fcmp(FloatCC::GreaterThanOrEqual, x, y),
                    BinOp::And => ins.band(x, y),
                    BinOp::Or => ins.bor(x, y),
                    BinOp::Xor => ins.bxor(x, y),
                    _ => unreachable!("rejected by `vectorizable`"),
                }
            }
            Expr::Select(c, a, d) => {
                let m = self.expr(c);
                let x = self.expr(a);
                let y = self.expr(d);
                if self.em.k.ty(a) == Ty::F32 {
                    let m = as_f32x4(self.em, m);
                    self.em.b.ins().bitselect(m, x, y)
                } else {
                    self.em.b.ins().bitselect(m, x, y)
                }
            }
        }
    }
}

/// Emits one four-lane iteration of `body` at element `j`.
pub(crate) fn emit(em: &mut Emitter<'_, '_>, lv: Var, j: Value, body: &[Stmt]) {
    let mut l = Lanes {
        em,
        lv,
        j,
        env: HashMap::new(),
    };
    for s in body {
        match s {
            Stmt::Set(v, e) => {
                let x = l.expr(e);
                l.env.insert(*v, x);
            }
            Stmt::Store(b, _, e) => {
                let x = l.expr(e);
                let addr = l.em.addr_at(*b, j, 4);
                l.em.b
                    .ins()
                    .store(MemFlagsData::new().with_notrap(), x, addr, 0);
            }
            _ => unreachable!("rejected by `vectorizable`"),
        }
    }
}
