//! `f32x4` code for straight-line elementwise loop bodies (fused chains included).
//!
//! Cranelift 0.135 lowers 128-bit vectors only, so four lanes it is. A loop qualifies when its
//! body is a run of `Set`s of f32/bool variables ending in one `Store`, every index (of the
//! store and of each f32 load) is affine in the loop variable with coefficient 1 (four
//! consecutive elements: `j`, `base + j`, `(row * d + j) * 1 + 0`, ...) or 0 (a value fixed
//! for the loop, loaded once per iteration and splatted), and every op has a vector form (calls such as `f32::exp` do not; the inline polynomial does). Comparisons
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
            k.bufs[b.0 as usize].ty == Ty::F32 && matches!(coef(i, lv), Some(0 | 1))
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

/// Whether `e` mentions the variable `v`.
fn mentions(e: &Expr, v: Var) -> bool {
    match e {
        Expr::Var(x) => *x == v,
        Expr::I(_) | Expr::F(_) | Expr::B(_) => false,
        Expr::Load(_, i) | Expr::Un(_, i) => mentions(i, v),
        Expr::Bin(_, a, b) => mentions(a, v) || mentions(b, v),
        Expr::Select(c, a, b) => mentions(c, v) || mentions(a, v) || mentions(b, v),
    }
}

/// The coefficient of `lv` in the integer index `e`, if `e` is affine in it (sums, differences
/// and products by constants); `Some(0)` when `e` does not mention `lv`. Other integer
/// variables are fixed for the loop: a vectorised body sets only f32 and bool variables.
fn coef(e: &Expr, lv: Var) -> Option<i64> {
    if !mentions(e, lv) {
        return Some(0);
    }
    match e {
        Expr::Var(_) => Some(1),
        Expr::Bin(BinOp::Add, a, b) => coef(a, lv)?.checked_add(coef(b, lv)?),
        Expr::Bin(BinOp::Sub, a, b) => coef(a, lv)?.checked_sub(coef(b, lv)?),
        Expr::Bin(BinOp::Mul, a, b) => match (&**a, &**b) {
            (Expr::I(c), x) | (x, Expr::I(c)) => coef(x, lv)?.checked_mul(*c),
            _ => None,
        },
        _ => None,
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
        Stmt::Store(b, i, e) => {
            coef(i, lv) == Some(1)
                && k.bufs[b.0 as usize].ty == Ty::F32
                && k.ty(e) == Ty::F32
                && ok_expr(k, e, lv, &defined)
                && sets
                    .iter()
                    .filter_map(|s| match s {
                        Stmt::Set(_, e) => Some(e),
                        _ => None,
                    })
                    .chain([e])
                    .all(|e| reads_only_at(e, *b, i))
        }
        _ => false,
    }
}

/// Whether every load of `buf` in `e` is at exactly `at`. Four lanes load before they store,
/// so a body that read the stored buffer anywhere else (the element before, a fixed one) could
/// see a value that the scalar loop would already have overwritten.
fn reads_only_at(e: &Expr, buf: sinter_lower::loops::Buf, at: &Expr) -> bool {
    match e {
        Expr::Load(b, i) => (*b != buf || **i == *at) && reads_only_at(i, buf, at),
        Expr::Var(_) | Expr::I(_) | Expr::F(_) | Expr::B(_) => true,
        Expr::Un(_, x) => reads_only_at(x, buf, at),
        Expr::Bin(_, a, c) => reads_only_at(a, buf, at) && reads_only_at(c, buf, at),
        Expr::Select(c, a, d) => {
            reads_only_at(c, buf, at) && reads_only_at(a, buf, at) && reads_only_at(d, buf, at)
        }
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
            Expr::Load(b, i) => {
                if coef(i, self.lv) == Some(1) {
                    // The loop variable holds `j` (see `emit`): this is lane 0's index.
                    let at = self.em.expr(i);
                    let addr = self.em.addr_at(*b, at, 4);
                    self.em
                        .b
                        .ins()
                        .load(types::F32X4, MemFlagsData::new().with_notrap(), addr, 0)
                } else {
                    let s = self.em.expr(&Expr::Load(*b, i.clone()));
                    self.em.b.ins().splat(types::F32X4, s)
                }
            }
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
    // Indices are evaluated as scalars for lane 0: the loop variable is `j` there (the scalar
    // remainder loop sets it afresh).
    em.b.def_var(em.vars[lv.0 as usize], j);
    let mut l = Lanes {
        em,
        lv,
        env: HashMap::new(),
    };
    for s in body {
        match s {
            Stmt::Set(v, e) => {
                let x = l.expr(e);
                l.env.insert(*v, x);
            }
            Stmt::Store(b, i, e) => {
                let x = l.expr(e);
                let at = l.em.expr(i);
                let addr = l.em.addr_at(*b, at, 4);
                l.em.b
                    .ins()
                    .store(MemFlagsData::new().with_notrap(), x, addr, 0);
            }
            _ => unreachable!("rejected by `vectorizable`"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sinter_lower::loops::Buf;

    /// `for j in 0..8 { o[store] = x[load] * 2 }` in a row loop `r`; returns the kernel and
    /// the inner loop's variable and body.
    fn kernel(load: impl Fn(Var, Var) -> Expr, store: impl Fn(Var, Var) -> Expr) -> Kernel {
        let mut k = Kernel::new("t");
        let x = k.buf("x", Ty::F32, 64, false);
        let o = k.buf("o", Ty::F32, 64, true);
        let r = k.var("r", Ty::I64);
        let j = k.var("j", Ty::I64);
        let body = vec![Stmt::Store(
            o,
            store(r, j),
            Expr::Load(x, Box::new(load(r, j))) * Expr::F(2.0),
        )];
        k.body = vec![Stmt::For {
            var: r,
            extent: 4,
            body: vec![Stmt::For {
                var: j,
                extent: 8,
                body,
            }],
        }];
        k
    }

    fn inner(k: &Kernel) -> (Var, &[Stmt]) {
        match &k.body[0] {
            Stmt::For { body, .. } => match &body[0] {
                Stmt::For { var, body, .. } => (*var, body),
                _ => unreachable!(),
            },
            _ => unreachable!(),
        }
    }

    fn row(r: Var, j: Var) -> Expr {
        Expr::v(r) * Expr::I(8) + Expr::v(j)
    }

    #[test]
    fn affine_indices_with_unit_stride_vectorise() {
        for (load, store) in [
            (row as fn(Var, Var) -> Expr, row as fn(Var, Var) -> Expr),
            // Broadcast along rows: x[j], a fixed element x[r], the row offset written after j.
            (|_, j| Expr::v(j), row),
            (
                |r, _| Expr::v(r),
                |r, j| Expr::v(j) + Expr::v(r) * Expr::I(8),
            ),
            (
                |_, j| (Expr::v(j) + Expr::I(3)) * Expr::I(1) - Expr::I(3),
                row,
            ),
        ] {
            let k = kernel(load, store);
            let (lv, body) = inner(&k);
            assert!(vectorizable(&k, lv, body), "{k}");
        }
    }

    #[test]
    fn other_indices_stay_scalar() {
        for (load, store) in [
            // Stride 2, a product of two variables, a quotient, a stride-2 store.
            (
                (|r, j| Expr::v(r) + Expr::v(j) * Expr::I(2)) as fn(Var, Var) -> Expr,
                row as fn(Var, Var) -> Expr,
            ),
            (|r, j| Expr::v(r) * Expr::v(j), row),
            (|_, j| Expr::v(j) / Expr::I(2), row),
            (row, |r, j| Expr::v(j) * Expr::I(2) + Expr::v(r)),
        ] {
            let k = kernel(load, store);
            let (lv, body) = inner(&k);
            assert!(!vectorizable(&k, lv, body), "{k}");
        }
    }

    #[test]
    fn reading_the_stored_buffer_elsewhere_stays_scalar() {
        // o[j] = o[j - 1] * 2 carries a value from one element to the next: four lanes would
        // read the old o[j - 1].
        let mut k = kernel(row, row);
        let o = Buf(1);
        let j = Var(1);
        let at = Expr::v(j);
        k.body = vec![Stmt::For {
            var: j,
            extent: 8,
            body: vec![Stmt::Store(
                o,
                at,
                Expr::Load(o, Box::new(Expr::v(j) - Expr::I(1))) * Expr::F(2.0),
            )],
        }];
        let Stmt::For { body, .. } = &k.body[0] else {
            unreachable!()
        };
        assert!(!vectorizable(&k, j, body));
        // In place at the same element is fine.
        let same = vec![Stmt::Store(
            o,
            Expr::v(j),
            Expr::Load(o, Box::new(Expr::v(j))) * Expr::F(2.0),
        )];
        assert!(vectorizable(&k, j, &same));
    }
}
