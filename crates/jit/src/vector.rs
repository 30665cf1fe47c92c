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
use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{ConstantData, Endianness, InstBuilder, MemFlagsData, Value, types};
use cranelift_frontend::Variable;
use sinter_lower::loops::{BinOp, Buf, Expr, Kernel, Stmt, Ty, UnOp, Var, WinogradStage};
use std::collections::HashMap;

fn ok_expr(k: &Kernel, e: &Expr, lv: Var, defined: &[Var], set: &[Var]) -> bool {
    let ok = |e: &Expr| ok_expr(k, e, lv, defined, set);
    match e {
        // A variable set earlier in the body, or an f32 fixed for the loop (splatted).
        Expr::Var(v) => {
            defined.contains(v) || (!set.contains(v) && k.vars[v.0 as usize].1 == Ty::F32)
        }
        Expr::F(_) | Expr::B(_) => true,
        Expr::I(_) => false,
        Expr::Load(b, i) => {
            k.bufs[b.0 as usize].ty == Ty::F32 && matches!(coef(i, lv), Some(0..=2))
        }
        Expr::Un(op, x) => {
            matches!(
                op,
                UnOp::Neg | UnOp::Abs | UnOp::Sqrt | UnOp::FastExp | UnOp::Not | UnOp::IsNan
            ) && k.ty(x) != Ty::I64
                && ok(x)
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
            allowed && ok(a) && ok(b)
        }
        Expr::Select(c, a, b) => k.ty(c) == Ty::Bool && ok(c) && ok(a) && ok(b),
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
    let mut set = Vec::new();
    sets_in(body, &mut set);
    for s in sets {
        match s {
            Stmt::Set(v, e) if k.vars[v.0 as usize].1 != Ty::I64 && !defined.contains(v) => {
                if !ok_expr(k, e, lv, &defined, &set) {
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
                && ok_expr(k, e, lv, &defined, &set)
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
fn reads_only_at(e: &Expr, buf: Buf, at: &Expr) -> bool {
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

/// Four lanes of a loop body. In the elementwise form ([`emit`]) the lanes are four
/// consecutive iterations of the innermost loop and f32/bool variables live in `env`; in the
/// rows form ([`emit_rows`]) they are four iterations of an outer loop and variables are
/// Cranelift variables of vector type in `rows` (so inner loops can carry them).
struct Lanes<'e, 'a, 'b> {
    em: &'e mut Emitter<'a, 'b>,
    lv: Var,
    env: HashMap<Var, Value>,
    rows: Option<HashMap<Var, Variable>>,
}

impl Lanes<'_, '_, '_> {
    /// The vector value of a variable: a lane variable, or a scalar fixed for the loop,
    /// splatted.
    fn var(&mut self, v: Var) -> Value {
        if let Some(x) = self.env.get(&v) {
            return *x;
        }
        if let Some(x) = self.rows.as_ref().and_then(|r| r.get(&v)) {
            return self.em.b.use_var(*x);
        }
        let s = self.em.b.use_var(self.em.vars[v.0 as usize]);
        self.em.b.ins().splat(types::F32X4, s)
    }

    /// Sets lane variable `v` (rows form: declaring its vector variable on first use).
    fn set(&mut self, v: Var, x: Value) {
        match &mut self.rows {
            None => {
                self.env.insert(v, x);
            }
            Some(map) => {
                let var = match map.get(&v) {
                    Some(var) => *var,
                    None => {
                        let ty = match self.em.k.vars[v.0 as usize].1 {
                            Ty::F32 => types::F32X4,
                            _ => types::I32X4,
                        };
                        let var = self.em.b.declare_var(ty);
                        map.insert(v, var);
                        var
                    }
                };
                self.em.b.def_var(var, x);
            }
        }
    }

    /// Four f32 at element indices `at + stride * lane`.
    fn load_lanes(&mut self, b: Buf, at: Value, stride: i64) -> Value {
        let flags = MemFlagsData::new().with_notrap();
        match stride {
            0 => {
                let addr = self.em.addr_at(b, at, 1);
                let s = self.em.b.ins().load(types::F32, flags, addr, 0);
                self.em.b.ins().splat(types::F32X4, s)
            }
            1 => {
                let addr = self.em.addr_at(b, at, 4);
                self.em.b.ins().load(types::F32X4, flags, addr, 0)
            }
            2 => {
                // Elements 0..4 and 3..7 from `at` (never past element 6, the last lane's),
                // then lanes 0 and 2 of the first with lanes 1 and 3 of the second: one
                // `shufps`.
                let a0 = self.em.addr_at(b, at, 4);
                let v0 = self.em.b.ins().load(types::F32X4, flags, a0, 0);
                let at3 = self.em.b.ins().iadd_imm_s(at, 3);
                let a1 = self.em.addr_at(b, at3, 4);
                let v1 = self.em.b.ins().load(types::F32X4, flags, a1, 0);
                let mask: Vec<u8> = [0u8, 2, 5, 7]
                    .iter()
                    .flat_map(|&l| (0..4).map(move |i| 4 * l + i))
                    .collect();
                let imm = self.em.b.func.dfg.immediates.push(ConstantData::from(mask));
                let x0 = self.em.b.ins().bitcast(types::I8X16, little(), v0);
                let x1 = self.em.b.ins().bitcast(types::I8X16, little(), v1);
                let sh = self.em.b.ins().shuffle(x0, x1, imm);
                self.em.b.ins().bitcast(types::F32X4, little(), sh)
            }
            _ => {
                // A gather: four scalar loads.
                let mut v = None;
                for l in 0..4u8 {
                    let i = self.em.b.ins().iadd_imm_s(at, stride * l as i64);
                    let addr = self.em.addr_at(b, i, 1);
                    let s = self.em.b.ins().load(types::F32, flags, addr, 0);
                    v = Some(match v {
                        None => self.em.b.ins().scalar_to_vector(types::F32X4, s),
                        Some(v) => self.em.b.ins().insertlane(v, s, l),
                    });
                }
                v.expect("four lanes")
            }
        }
    }

    fn expr(&mut self, e: &Expr) -> Value {
        match e {
            Expr::Var(v) => self.var(*v),
            Expr::F(x) => {
                let s = self.em.b.ins().f32const(*x);
                self.em.b.ins().splat(types::F32X4, s)
            }
            Expr::B(x) => {
                let s = self.em.b.ins().iconst(types::I32, 0);
                let zero = self.em.b.ins().splat(types::I32X4, s);
                if *x {
                    self.em.b.ins().icmp(IntCC::Equal, zero, zero)
                } else {
                    zero
                }
            }
            Expr::I(_) => unreachable!("rejected by `vectorizable`"),
            Expr::Load(b, i) => {
                let stride = coef(i, self.lv).expect("checked affine");
                // The loop variable holds lane 0's value (see `emit`, `emit_rows`).
                let at = self.em.expr(i);
                self.load_lanes(*b, at, stride)
            }
            Expr::Un(op, x) => {
                let v = self.expr(x);
                if matches!(op, UnOp::Exp | UnOp::Ln | UnOp::Tanh | UnOp::Cos) {
                    // Rows form only: the exact Rust function, lane by lane.
                    let mut out = v;
                    for l in 0..4u8 {
                        let s = self.em.b.ins().extractlane(v, l);
                        let r = self.em.unary(*op, Ty::F32, s);
                        out = self.em.b.ins().insertlane(out, r, l);
                    }
                    return out;
                }
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
                self.blend(m, a, x, y)
            }
        }
    }

    /// `m ? x : y` lane by lane, `a` being the expression (or variable) `x` came from.
    fn blend(&mut self, m: Value, a: &Expr, x: Value, y: Value) -> Value {
        if self.em.k.ty(a) == Ty::F32 {
            let m = as_f32x4(self.em, m);
            self.em.b.ins().bitselect(m, x, y)
        } else {
            self.em.b.ins().bitselect(m, x, y)
        }
    }

    /// Stores four lanes at element indices `at + stride * lane`.
    fn store_lanes(&mut self, b: Buf, at: Value, stride: i64, x: Value) {
        let flags = MemFlagsData::new().with_notrap();
        if stride == 1 {
            let addr = self.em.addr_at(b, at, 4);
            self.em.b.ins().store(flags, x, addr, 0);
            return;
        }
        for l in 0..4u8 {
            let i = self.em.b.ins().iadd_imm_s(at, stride * l as i64);
            let addr = self.em.addr_at(b, i, 1);
            let s = self.em.b.ins().extractlane(x, l);
            self.em.b.ins().store(flags, s, addr, 0);
        }
    }

    /// A statement of a rows-form body (see [`rows_split`] for what is accepted).
    fn row_stmt(&mut self, s: &Stmt) {
        match s {
            Stmt::Set(v, e) => {
                let x = self.expr(e);
                self.set(*v, x);
            }
            Stmt::Store(b, i, e) => {
                let x = self.expr(e);
                let stride = coef(i, self.lv).expect("checked affine");
                let at = self.em.expr(i);
                self.store_lanes(*b, at, stride, x);
            }
            Stmt::If(c, then, other) => {
                // If-conversion: both branches run (they only set variables), each lane keeps
                // the values of the branch its condition picks.
                let m = self.expr(c);
                let mut vs = Vec::new();
                sets_in(then, &mut vs);
                sets_in(other, &mut vs);
                let before: Vec<Value> = vs.iter().map(|&v| self.var(v)).collect();
                for s in then {
                    self.row_stmt(s);
                }
                let taken: Vec<Value> = vs.iter().map(|&v| self.var(v)).collect();
                for (&v, &x) in vs.iter().zip(&before) {
                    self.set(v, x);
                }
                for s in other {
                    self.row_stmt(s);
                }
                for (i, &v) in vs.iter().enumerate() {
                    let y = self.var(v);
                    let z = self.blend(m, &Expr::Var(v), taken[i], y);
                    self.set(v, z);
                }
            }
            Stmt::For { var, extent, body } => {
                let v = self.em.vars[var.0 as usize];
                let header = self.em.b.create_block();
                let body_b = self.em.b.create_block();
                let exit = self.em.b.create_block();
                let first = self.em.b.ins().iconst(types::I64, 0);
                self.em.b.def_var(v, first);
                self.em.b.ins().jump(header, &[]);
                self.em.b.switch_to_block(header);
                let cur = self.em.b.use_var(v);
                let go = self
                    .em
                    .b
                    .ins()
                    .icmp_imm_s(IntCC::SignedLessThan, cur, *extent);
                self.em.b.ins().brif(go, body_b, &[], exit, &[]);
                self.em.b.switch_to_block(body_b);
                for s in body {
                    self.row_stmt(s);
                }
                let cur = self.em.b.use_var(v);
                let next = self.em.b.ins().iadd_imm_s(cur, 1);
                self.em.b.def_var(v, next);
                self.em.b.ins().jump(header, &[]);
                self.em.b.switch_to_block(exit);
            }
            _ => unreachable!("rejected by `rows_split`"),
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
        rows: None,
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
                l.store_lanes(*b, at, 1, x);
            }
            _ => unreachable!("rejected by `vectorizable`"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Rows: four iterations of an outer loop at once, one per lane.

/// Variables assigned anywhere in `body` (by `Set`; loop counters are not included).
fn sets_in(body: &[Stmt], out: &mut Vec<Var>) {
    for s in body {
        match s {
            Stmt::Set(v, _) if !out.contains(v) => out.push(*v),
            Stmt::For { body, .. } => sets_in(body, out),
            Stmt::If(_, a, b) => {
                sets_in(a, out);
                sets_in(b, out);
            }
            _ => {}
        }
    }
}

/// Buffers loaded (`loads`) and stored (`stores`) anywhere in `body`, indices included.
fn bufs_in(body: &[Stmt], loads: &mut Vec<Buf>, stores: &mut Vec<Buf>) {
    fn ex(e: &Expr, loads: &mut Vec<Buf>) {
        match e {
            Expr::Load(b, i) => {
                loads.push(*b);
                ex(i, loads);
            }
            Expr::Var(_) | Expr::I(_) | Expr::F(_) | Expr::B(_) => {}
            Expr::Un(_, x) => ex(x, loads),
            Expr::Bin(_, a, b) => {
                ex(a, loads);
                ex(b, loads);
            }
            Expr::Select(c, a, b) => {
                ex(c, loads);
                ex(a, loads);
                ex(b, loads);
            }
        }
    }
    for s in body {
        match s {
            Stmt::Set(_, e) => ex(e, loads),
            Stmt::Store(b, i, e) => {
                stores.push(*b);
                ex(i, loads);
                ex(e, loads);
            }
            Stmt::For { body, .. } => bufs_in(body, loads, stores),
            Stmt::If(c, a, b) => {
                ex(c, loads);
                bufs_in(a, loads, stores);
                bufs_in(b, loads, stores);
            }
            Stmt::Check(c, _) => ex(c, loads),
            Stmt::Gemm(g) => {
                for m in [&g.a, &g.b] {
                    loads.push(m.buf);
                    ex(&m.offset, loads);
                }
                // C is read when beta != 0 and by the epilogue: count it as both.
                loads.push(g.c.buf);
                stores.push(g.c.buf);
            }
            Stmt::Winograd(w) => {
                loads.push(w.src);
                if let WinogradStage::Output { bias: Some(b), .. } = &w.stage {
                    loads.push(*b);
                }
                stores.push(w.dst);
            }
        }
    }
}

/// Variables mentioned by `e`.
fn vars_of(e: &Expr, out: &mut Vec<Var>) {
    match e {
        Expr::Var(v) => out.push(*v),
        Expr::I(_) | Expr::F(_) | Expr::B(_) => {}
        Expr::Load(_, i) | Expr::Un(_, i) => vars_of(i, out),
        Expr::Bin(_, a, b) => {
            vars_of(a, out);
            vars_of(b, out);
        }
        Expr::Select(c, a, b) => {
            vars_of(c, out);
            vars_of(a, out);
            vars_of(b, out);
        }
    }
}

fn vars_in(body: &[Stmt], out: &mut Vec<Var>) {
    for s in body {
        match s {
            Stmt::Set(_, e) | Stmt::Check(e, _) => vars_of(e, out),
            Stmt::Store(_, i, e) => {
                vars_of(i, out);
                vars_of(e, out);
            }
            Stmt::For { body, .. } => vars_in(body, out),
            Stmt::If(c, a, b) => {
                vars_of(c, out);
                vars_in(a, out);
                vars_in(b, out);
            }
            Stmt::Gemm(g) => {
                for m in [&g.a, &g.b, &g.c] {
                    vars_of(&m.offset, out);
                }
            }
            Stmt::Winograd(_) => {}
        }
    }
}

/// Checker of a rows-form prefix.
struct Rows<'k> {
    k: &'k Kernel,
    lv: Var,
    /// Variables set anywhere in the loop body.
    set: Vec<Var>,
    /// Lane variables defined so far in this iteration.
    defined: Vec<Var>,
    /// Whether some inner loop carries a value from one iteration to the next (a reduction).
    reduces: bool,
}

impl Rows<'_> {
    /// An index: affine in the row variable, no loads, only integer variables that the body
    /// does not assign (loop counters and values fixed for the loop).
    fn index(&self, i: &Expr) -> bool {
        let mut vs = Vec::new();
        vars_of(i, &mut vs);
        let mut loads = Vec::new();
        bufs_in(&[Stmt::Check(i.clone(), 0)], &mut loads, &mut Vec::new());
        coef(i, self.lv).is_some()
            && loads.is_empty()
            && vs
                .iter()
                .all(|v| self.k.vars[v.0 as usize].1 == Ty::I64 && !self.set.contains(v))
    }

    fn expr(&self, e: &Expr) -> bool {
        let k = self.k;
        match e {
            Expr::Var(v) => {
                self.defined.contains(v)
                    || (!self.set.contains(v) && k.vars[v.0 as usize].1 == Ty::F32)
            }
            Expr::F(_) | Expr::B(_) => true,
            Expr::I(_) => false,
            Expr::Load(b, i) => k.bufs[b.0 as usize].ty == Ty::F32 && self.index(i),
            Expr::Un(op, x) => {
                matches!(
                    op,
                    UnOp::Neg
                        | UnOp::Abs
                        | UnOp::Sqrt
                        | UnOp::FastExp
                        | UnOp::Exp
                        | UnOp::Ln
                        | UnOp::Tanh
                        | UnOp::Cos
                        | UnOp::Not
                        | UnOp::IsNan
                ) && k.ty(x) != Ty::I64
                    && self.expr(x)
            }
            Expr::Bin(op, a, b) => {
                let allowed = match k.ty(a) {
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
                allowed && self.expr(a) && self.expr(b)
            }
            Expr::Select(c, a, b) => {
                k.ty(c) == Ty::Bool && self.expr(c) && self.expr(a) && self.expr(b)
            }
        }
    }

    /// Whether `s` can run on four rows at once; `in_if`: only assignments of variables
    /// defined before the `if` are allowed.
    fn stmt(&mut self, s: &Stmt, in_if: bool) -> bool {
        let k = self.k;
        match s {
            Stmt::Set(v, e) => {
                if k.vars[v.0 as usize].1 == Ty::I64 || !self.expr(e) {
                    return false;
                }
                if in_if {
                    return self.defined.contains(v);
                }
                if !self.defined.contains(v) {
                    self.defined.push(*v);
                }
                true
            }
            Stmt::If(c, a, b) => {
                k.ty(c) == Ty::Bool
                    && self.expr(c)
                    && a.iter().chain(b).all(|s| match s {
                        Stmt::Set(..) | Stmt::If(..) => self.stmt(s, true),
                        _ => false,
                    })
            }
            Stmt::Store(b, i, e) => {
                !in_if
                    && k.bufs[b.0 as usize].ty == Ty::F32
                    && self.index(i)
                    && coef(i, self.lv) != Some(0)
                    && k.ty(e) == Ty::F32
                    && self.expr(e)
            }
            Stmt::For { var, extent, body } => {
                if in_if || *extent < 1 || k.vars[var.0 as usize].1 != Ty::I64 {
                    return false;
                }
                let before = self.defined.clone();
                if !body.iter().all(|s| self.stmt(s, false)) {
                    return false;
                }
                // A variable used in the body before the body assigns it, but defined
                // before the loop: carried from one iteration to the next.
                let mut carried = Vec::new();
                sets_in(body, &mut carried);
                let mut used = Vec::new();
                vars_in(body, &mut used);
                if carried
                    .iter()
                    .any(|v| before.contains(v) && used.contains(v))
                {
                    self.reduces = true;
                }
                true
            }
            Stmt::Check(..) | Stmt::Gemm(_) | Stmt::Winograd(_) => false,
        }
    }
}

/// Whether the loop over `lv` with this body runs four iterations at once, one per lane (for
/// reductions: each lane accumulates its own row in the scalar code's order, so the result
/// is the scalar code's, bit for bit). Returns where the body splits: the statements before
/// run on four lanes; the rest (the first that cannot, or a loop that the elementwise
/// vectoriser runs along contiguous memory, and all after it) run once per lane with the
/// lane variables extracted. `None` when no statement of the four-lane part reduces.
///
/// Accepted in the four-lane part: `Set`s of f32/bool variables (no integer variable is
/// assigned), `if`s that only assign variables defined before them (if-converted), stores of
/// f32 with an index affine in `lv` (lanes at distinct elements), and inner loops of these.
/// Indices are affine in `lv` (any stride: stride 1 loads four consecutive elements, others
/// gather). The buffers stored by the body are not loaded anywhere in it, so running four rows
/// interleaved reads the same values as running them one after another (each output element
/// is written once, as the lowering does for every kernel that does not read its output).
pub(crate) fn rows_split(k: &Kernel, lv: Var, body: &[Stmt]) -> Option<usize> {
    let mut set = Vec::new();
    sets_in(body, &mut set);
    if set.contains(&lv) {
        return None;
    }
    let mut r = Rows {
        k,
        lv,
        set,
        defined: Vec::new(),
        reduces: false,
    };
    let mut split = body.len();
    for (n, s) in body.iter().enumerate() {
        if let Stmt::For { var, body, .. } = s
            && vectorizable(k, *var, body)
        {
            split = n;
            break;
        }
        let saved = (r.defined.clone(), r.reduces);
        if !r.stmt(s, false) {
            (r.defined, r.reduces) = saved;
            split = n;
            break;
        }
    }
    if !r.reduces {
        return None;
    }
    let (head, tail) = body.split_at(split);
    let (mut hl, mut hs, mut tl, mut ts) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    bufs_in(head, &mut hl, &mut hs);
    bufs_in(tail, &mut tl, &mut ts);
    if hs.iter().any(|b| hl.contains(b) || tl.contains(b)) || ts.iter().any(|b| hl.contains(b)) {
        return None;
    }
    // The tail sees the four-lane part's f32 variables lane by lane; not its bools.
    let mut tv = Vec::new();
    vars_in(tail, &mut tv);
    if tv
        .iter()
        .any(|v| r.defined.contains(v) && k.vars[v.0 as usize].1 != Ty::F32)
    {
        return None;
    }
    Some(split)
}

/// Emits four iterations (rows `r .. r + 4`) of a loop body split by [`rows_split`].
pub(crate) fn emit_rows(em: &mut Emitter<'_, '_>, lv: Var, r: Value, body: &[Stmt], split: usize) {
    em.b.def_var(em.vars[lv.0 as usize], r);
    let (head, tail) = body.split_at(split);
    let mut l = Lanes {
        em,
        lv,
        env: HashMap::new(),
        rows: Some(HashMap::new()),
    };
    for s in head {
        l.row_stmt(s);
    }
    if tail.is_empty() {
        return;
    }
    let lanes: Vec<(Var, Variable)> = l
        .rows
        .take()
        .expect("rows form")
        .into_iter()
        .filter(|(v, _)| l.em.k.vars[v.0 as usize].1 == Ty::F32)
        .collect();
    let em = l.em;
    for lane in 0..4u8 {
        let row = em.b.ins().iadd_imm_s(r, lane as i64);
        em.b.def_var(em.vars[lv.0 as usize], row);
        for &(v, vec) in &lanes {
            let x = em.b.use_var(vec);
            let s = em.b.ins().extractlane(x, lane);
            em.b.def_var(em.vars[v.0 as usize], s);
        }
        em.stmts(tail);
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
            // Stride 2 (stride-2 pooling): two loads and a shuffle.
            (|r, j| Expr::v(r) + Expr::v(j) * Expr::I(2), row),
        ] {
            let k = kernel(load, store);
            let (lv, body) = inner(&k);
            assert!(vectorizable(&k, lv, body), "{k}");
        }
    }

    #[test]
    fn other_indices_stay_scalar() {
        for (load, store) in [
            // Stride 3, a product of two variables, a quotient, a stride-2 store.
            (
                (|r, j| Expr::v(r) + Expr::v(j) * Expr::I(3)) as fn(Var, Var) -> Expr,
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
