//! Translation of one loop-nest [`Kernel`] into a Cranelift function.
//!
//! The generated function has the C signature `fn(bufs: *const *mut u8) -> i32`: `bufs[i]` is
//! the base address of buffer `i`. It returns 0 on success, `1 + code` when a
//! [`Stmt::Check`] fails (a data error such as a gather index out of range), and `-1 - i` when
//! the bounds-checked mode catches an access outside buffer `i`. Loops become a header block
//! with a compare-and-branch; kernel variables become Cranelift `Variable`s, so the SSA
//! construction of `cranelift-frontend` does the phi placement.

use crate::externs::Extern;
use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{
    AbiParam, Block, FuncRef, InstBuilder, MemFlagsData, Type, Value, types,
};
use cranelift_frontend::{FunctionBuilder, Variable};
use sinter_lower::loops::{
    Activation, BinOp, Buf, Expr, GemmCall, Kernel, MatArg, Stmt, Ty, UnOp, Var, WinogradCall,
    WinogradStage,
};
use std::collections::HashMap;

/// Cranelift type of a loop-IR scalar type (`bool` is a byte holding 0 or 1).
pub(crate) fn clif_ty(t: Ty) -> Type {
    match t {
        Ty::F32 => types::F32,
        Ty::I64 => types::I64,
        Ty::Bool => types::I8,
    }
}

/// State while emitting one kernel.
pub(crate) struct Emitter<'a, 'b> {
    pub(crate) b: &'a mut FunctionBuilder<'b>,
    pub(crate) k: &'a Kernel,
    pub(crate) vars: Vec<Variable>,
    pub(crate) bases: Vec<Value>,
    pub(crate) bounds_checks: bool,
    /// Imported Rust functions, declared in this function on first use.
    pub(crate) externs: &'a mut dyn FnMut(Extern, &mut FunctionBuilder<'b>) -> FuncRef,
    pub(crate) extern_refs: HashMap<Extern, FuncRef>,
    /// Integer index arithmetic computed before the loops that enclose it, innermost last
    /// (see [`Emitter::hoist_invariants`]): `expr` returns these values instead of
    /// recomputing them on every iteration.
    pub(crate) hoisted: Vec<(Expr, cranelift_codegen::ir::StackSlot)>,
    /// The function's `lo` and `hi` parameters: the range of the kernel's parallel loop
    /// ([`Kernel::parallel`]) this call runs.
    pub(crate) range: (Value, Value),
}

/// Adds to `out` every variable `body` assigns (by `Set` or as a loop counter), at any depth.
fn assigned_in(body: &[Stmt], out: &mut Vec<Var>) {
    for s in body {
        match s {
            Stmt::For { var, body, .. } => {
                out.push(*var);
                assigned_in(body, out);
            }
            Stmt::Set(v, _) => out.push(*v),
            Stmt::If(_, a, b) => {
                assigned_in(a, out);
                assigned_in(b, out);
            }
            Stmt::Store(..) | Stmt::Gemm(_) | Stmt::Winograd(_) | Stmt::Check(..) => {}
        }
    }
}

/// Whether `e` is i64 arithmetic (`+`, `-`, `*`, negation) on constants and variables none of
/// which is in `assigned`: a value that cannot change while the loop runs, and whose
/// evaluation cannot trap (no division), so computing it early is safe even when the body
/// would evaluate it only under a condition.
fn invariant(k: &Kernel, e: &Expr, assigned: &[Var]) -> bool {
    match e {
        Expr::Var(v) => k.vars[v.0 as usize].1 == Ty::I64 && !assigned.contains(v),
        Expr::I(_) => true,
        Expr::Bin(BinOp::Add | BinOp::Sub | BinOp::Mul, a, b) => {
            k.ty(a) == Ty::I64 && invariant(k, a, assigned) && invariant(k, b, assigned)
        }
        Expr::Un(UnOp::Neg, a) => k.ty(a) == Ty::I64 && invariant(k, a, assigned),
        _ => false,
    }
}

/// Adds to `out` the largest invariant subexpressions of `e` that are worth a variable (an
/// operation, not a bare constant or variable).
fn invariant_parts(k: &Kernel, e: &Expr, assigned: &[Var], out: &mut Vec<Expr>) {
    if matches!(e, Expr::Bin(..) | Expr::Un(..)) && invariant(k, e, assigned) {
        if !out.contains(e) {
            out.push(e.clone());
        }
        return;
    }
    match e {
        Expr::Var(_) | Expr::I(_) | Expr::F(_) | Expr::B(_) => {}
        Expr::Load(_, i) | Expr::Un(_, i) => invariant_parts(k, i, assigned, out),
        Expr::Bin(_, a, b) => {
            invariant_parts(k, a, assigned, out);
            invariant_parts(k, b, assigned, out);
        }
        Expr::Select(c, a, b) => {
            invariant_parts(k, c, assigned, out);
            invariant_parts(k, a, assigned, out);
            invariant_parts(k, b, assigned, out);
        }
    }
}

fn invariant_parts_stmts(k: &Kernel, body: &[Stmt], assigned: &[Var], out: &mut Vec<Expr>) {
    for s in body {
        match s {
            Stmt::For { body, .. } => invariant_parts_stmts(k, body, assigned, out),
            Stmt::Set(_, e) | Stmt::Check(e, _) => invariant_parts(k, e, assigned, out),
            Stmt::Store(_, i, e) => {
                invariant_parts(k, i, assigned, out);
                invariant_parts(k, e, assigned, out);
            }
            Stmt::If(c, a, b) => {
                invariant_parts(k, c, assigned, out);
                invariant_parts_stmts(k, a, assigned, out);
                invariant_parts_stmts(k, b, assigned, out);
            }
            Stmt::Gemm(_) | Stmt::Winograd(_) => {}
        }
    }
}

impl<'b> Emitter<'_, 'b> {
    /// Emits the whole kernel body into the current (entry) block, then returns 0.
    pub(crate) fn emit_kernel(&mut self) {
        let body = self.k.body.clone();
        self.stmts(&body);
        let zero = self.b.ins().iconst(types::I32, 0);
        self.b.ins().return_(&[zero]);
    }

    /// Loop-invariant code motion for index arithmetic, which Cranelift 0.135 does not do
    /// here: the largest subexpressions of the loop's body that are integer arithmetic on
    /// variables the loop never assigns (`((b * C + c) * H + iy) * W` of `... + ox`) are
    /// computed once, before the loop over `lv`, and reused by every iteration (and by the
    /// loops inside, which hoist further parts of their own).
    fn hoist_invariants(&mut self, lv: Var, body: &[Stmt]) {
        if body.len() == 1 && matches!(body[0], Stmt::Gemm(_) | Stmt::Winograd(_)) {
            return;
        }
        let mut assigned = vec![lv];
        assigned_in(body, &mut assigned);
        let mut parts = Vec::new();
        invariant_parts_stmts(self.k, body, &assigned, &mut parts);
        for e in parts {
            let v = self.expr(&e);
            // Through a stack slot: a plain value (or a variable) would be placed back at
            // its uses, inside the loop, by Cranelift's mid-end when it involves constants
            // (wasmtime issue #7283); a load from the slot stays a load.
            let slot = self
                .b
                .create_sized_stack_slot(cranelift_codegen::ir::StackSlotData::new(
                    cranelift_codegen::ir::StackSlotKind::ExplicitSlot,
                    8,
                    3,
                ));
            self.b.ins().stack_store(types::I64, v, slot, 0);
            self.hoisted.push((e, slot));
        }
    }

    pub(crate) fn stmts(&mut self, body: &[Stmt]) {
        for s in body {
            self.stmt(s);
        }
    }

    fn stmt(&mut self, s: &Stmt) {
        match s {
            Stmt::For { var, extent, body } => {
                // A body that is one loop of one iteration (softmax over the last axis) is
                // that loop's body with its counter 0, so the outer loop can be vectorised.
                // The counter is not read after its loop (the lowering never does).
                if let [
                    Stmt::For {
                        var: one,
                        extent: 1,
                        body: inner,
                    },
                ] = body.as_slice()
                {
                    let zero = self.b.ins().iconst(types::I64, 0);
                    self.b.def_var(self.vars[one.0 as usize], zero);
                    return self.stmt(&Stmt::For {
                        var: *var,
                        extent: *extent,
                        body: inner.clone(),
                    });
                }
                let mark = self.hoisted.len();
                self.hoist_invariants(*var, body);
                if self.k.parallel.is_some_and(|p| p.var == *var) {
                    // One piece's range of the loop, in the parameters.
                    let (lo, hi) = self.range;
                    self.loop_between(*var, lo, hi, body);
                    self.hoisted.truncate(mark);
                    return;
                }
                let mut start = 0;
                if *extent >= 4 && crate::vector::vectorizable(self.k, *var, body) {
                    start = extent / 4 * 4;
                    self.vector_loop(*var, start, body);
                } else if *extent >= 4
                    && let Some(split) = crate::vector::rows_split(self.k, *var, body)
                {
                    start = extent / 4 * 4;
                    self.rows_loop(*var, start, body, split);
                }
                self.scalar_loop(*var, start, *extent, body);
                self.hoisted.truncate(mark);
            }
            Stmt::Set(var, e) => {
                let x = self.expr(e);
                self.b.def_var(self.vars[var.0 as usize], x);
            }
            Stmt::Store(buf, idx, e) => {
                let x = self.expr(e);
                let addr = self.addr(*buf, idx);
                self.b.ins().store(MemFlagsData::trusted(), x, addr, 0);
            }
            Stmt::If(c, then, other) => {
                let cv = self.expr(c);
                let tb = self.b.create_block();
                let eb = self.b.create_block();
                let join = self.b.create_block();
                self.b.ins().brif(cv, tb, &[], eb, &[]);
                self.b.switch_to_block(tb);
                self.stmts(then);
                self.b.ins().jump(join, &[]);
                self.b.switch_to_block(eb);
                self.stmts(other);
                self.b.ins().jump(join, &[]);
                self.b.switch_to_block(join);
            }
            Stmt::Gemm(g) => self.gemm(g),
            Stmt::Winograd(w) => self.winograd(w),
            Stmt::Check(c, code) => {
                let cv = self.expr(c);
                self.bail_unless(cv, 1 + *code as i64);
            }
        }
    }

    /// `for var in start..extent { body }`, one element per iteration.
    fn scalar_loop(
        &mut self,
        var: sinter_lower::loops::Var,
        start: i64,
        extent: i64,
        body: &[Stmt],
    ) {
        let lo = self.b.ins().iconst(types::I64, start);
        let hi = self.b.ins().iconst(types::I64, extent);
        self.loop_between(var, lo, hi, body);
    }

    /// `for var in lo..hi { body }` with bounds known at run time.
    fn loop_between(&mut self, var: sinter_lower::loops::Var, lo: Value, hi: Value, body: &[Stmt]) {
        let v = self.vars[var.0 as usize];
        self.counted_loop(v, lo, hi, 1, |s, _| s.stmts(body));
    }

    /// `for j in (0..end).step_by(4)`: the straight-line `body` on `f32x4` lanes
    /// (see [`crate::vector`]).
    fn vector_loop(&mut self, var: sinter_lower::loops::Var, end: i64, body: &[Stmt]) {
        let j = self.b.declare_var(types::I64);
        let lo = self.b.ins().iconst(types::I64, 0);
        let hi = self.b.ins().iconst(types::I64, end);
        self.counted_loop(j, lo, hi, 4, |s, cur| {
            crate::vector::emit(s, var, cur, body)
        });
    }

    /// `for r in (0..end).step_by(4)`: four iterations of `body` at once, one per lane
    /// (see [`crate::vector::rows_split`]).
    fn rows_loop(&mut self, var: sinter_lower::loops::Var, end: i64, body: &[Stmt], split: usize) {
        let r = self.b.declare_var(types::I64);
        let lo = self.b.ins().iconst(types::I64, 0);
        let hi = self.b.ins().iconst(types::I64, end);
        self.counted_loop(r, lo, hi, 4, |s, cur| {
            crate::vector::emit_rows(s, var, cur, body, split)
        });
    }

    /// The loop skeleton all four loops share: `v` counts from `lo` while below `hi` in steps
    /// of `step`, and `emit` writes the body given the counter's value for the iteration.
    fn counted_loop(
        &mut self,
        v: Variable,
        lo: Value,
        hi: Value,
        step: i64,
        emit: impl FnOnce(&mut Self, Value),
    ) {
        let header = self.b.create_block();
        let body_b = self.b.create_block();
        let exit = self.b.create_block();
        self.b.def_var(v, lo);
        self.b.ins().jump(header, &[]);
        self.b.switch_to_block(header);
        let cur = self.b.use_var(v);
        let go = self.b.ins().icmp(IntCC::SignedLessThan, cur, hi);
        self.b.ins().brif(go, body_b, &[], exit, &[]);
        self.b.switch_to_block(body_b);
        let cur = self.b.use_var(v);
        emit(self, cur);
        let cur = self.b.use_var(v);
        let next = self.b.ins().iadd_imm_s(cur, step);
        self.b.def_var(v, next);
        self.b.ins().jump(header, &[]);
        self.b.switch_to_block(exit);
    }

    /// Address of elements `i..i+lanes` of `buf`, checked in bounds-checked mode.
    pub(crate) fn addr_at(&mut self, buf: Buf, i: Value, lanes: i64) -> Value {
        let d = &self.k.bufs[buf.0 as usize];
        let (size, len) = (d.ty.size() as i64, d.len as i64);
        if self.bounds_checks {
            let last = self.b.ins().iadd_imm_s(i, lanes - 1);
            let ok = self.b.ins().icmp_imm_s(IntCC::UnsignedLessThan, last, len);
            let ok2 = self.b.ins().icmp_imm_s(IntCC::UnsignedLessThan, i, len);
            let both = self.b.ins().band(ok, ok2);
            self.bail_unless(both, -1 - buf.0 as i64);
        }
        let off = self.b.ins().imul_imm_s(i, size);
        self.b.ins().iadd(self.bases[buf.0 as usize], off)
    }

    /// Returns `ret` from the function unless `ok` (an i8 truth value) holds.
    fn bail_unless(&mut self, ok: Value, ret: i64) {
        let fail = self.b.create_block();
        let cont = self.b.create_block();
        self.b.ins().brif(ok, cont, &[], fail, &[]);
        self.b.switch_to_block(fail);
        self.b.set_cold_block(fail);
        let r = self.b.ins().iconst(types::I32, ret);
        self.b.ins().return_(&[r]);
        self.b.switch_to_block(cont);
    }

    /// Address of element `idx` of `buf`, checked against the length in bounds-checked mode.
    fn addr(&mut self, buf: Buf, idx: &Expr) -> Value {
        let d = &self.k.bufs[buf.0 as usize];
        let (size, len) = (d.ty.size() as i64, d.len as i64);
        let i = self.expr(idx);
        if self.bounds_checks {
            // Unsigned compare: a negative index is huge and fails too.
            let ok = self.b.ins().icmp_imm_s(IntCC::UnsignedLessThan, i, len);
            self.bail_unless(ok, -1 - buf.0 as i64);
        }
        let off = self.b.ins().imul_imm_s(i, size);
        self.b.ins().iadd(self.bases[buf.0 as usize], off)
    }

    /// Address of a GEMM operand, checking (in bounds-checked mode) that its whole
    /// `rows x cols` footprint lies inside the buffer.
    fn mat_addr(&mut self, a: &MatArg, rows: usize, cols: usize) -> Value {
        let off = self.expr(&a.offset);
        if self.bounds_checks && rows > 0 && cols > 0 {
            let d = &self.k.bufs[a.buf.0 as usize];
            let len = d.len as i64;
            let span = (rows as i64 - 1) * a.rs + (cols as i64 - 1) * a.cs;
            let last = self.b.ins().iadd_imm_s(off, span);
            let ok1 = self.b.ins().icmp_imm_s(IntCC::UnsignedLessThan, off, len);
            let ok2 = self.b.ins().icmp_imm_s(IntCC::UnsignedLessThan, last, len);
            let ok = self.b.ins().band(ok1, ok2);
            self.bail_unless(ok, -1 - a.buf.0 as i64);
        }
        let bytes = self.b.ins().imul_imm_s(off, 4);
        self.b.ins().iadd(self.bases[a.buf.0 as usize], bytes)
    }

    fn gemm(&mut self, g: &GemmCall) {
        if g.im2col.is_some() {
            self.gemm_conv(g);
            return;
        }
        if g.a_packed || g.b_packed {
            self.gemm_prepacked(g);
            return;
        }
        let pa = self.mat_addr(&g.a, g.m, g.k);
        let pb = self.mat_addr(&g.b, g.k, g.n);
        let pc = self.mat_addr(&g.c, g.m, g.n);
        let i = |s: &mut Self, v: i64| s.b.ins().iconst(types::I64, v);
        let args = [
            i(self, g.m as i64),
            i(self, g.n as i64),
            i(self, g.k as i64),
            self.f32c(g.alpha),
            pa,
            i(self, g.a.rs),
            i(self, g.a.cs),
            pb,
            i(self, g.b.rs),
            i(self, g.b.cs),
            self.f32c(g.beta),
            pc,
            i(self, g.c.rs),
            i(self, g.c.cs),
            i(self, g.threads.max(1) as i64),
        ];
        if g.epilogue.is_empty() {
            let f = self.func_ref(Extern::Sgemm);
            self.b.ins().call(f, &args);
            return;
        }
        let mut args = args.to_vec();
        args.extend(self.epilogue_args(g));
        let f = self.func_ref(Extern::SgemmEpilogue);
        self.b.ins().call(f, &args);
    }

    /// A GEMM with A or B (or both) packed at compile time; a packed operand is checked as
    /// one range in bounds-checked mode.
    fn gemm_prepacked(&mut self, g: &GemmCall) {
        let pa = if g.a_packed {
            self.packed_a_addr(g)
        } else {
            self.mat_addr(&g.a, g.m, g.k)
        };
        let pb = if g.b_packed {
            let len = self.k.bufs[g.b.buf.0 as usize].len;
            self.whole_addr(g.b.buf, len)
        } else {
            self.mat_addr(&g.b, g.k, g.n)
        };
        let pc = self.mat_addr(&g.c, g.m, g.n);
        let i = |s: &mut Self, v: i64| s.b.ins().iconst(types::I64, v);
        let mut args = vec![
            i(self, g.m as i64),
            i(self, g.n as i64),
            i(self, g.k as i64),
            self.f32c(g.alpha),
            pa,
            i(self, g.a.rs),
            i(self, g.a.cs),
            pb,
            i(self, g.b.rs),
            i(self, g.b.cs),
            // `sinter_sgemm_prepacked`'s flags: bit 0 packed A, bit 1 packed B.
            self.b.ins().iconst(
                types::I8,
                i64::from(g.a_packed) | (i64::from(g.b_packed) << 1),
            ),
            self.f32c(g.beta),
            pc,
            i(self, g.c.rs),
            i(self, g.c.cs),
            i(self, g.threads.max(1) as i64),
        ];
        args.extend(self.epilogue_args(g));
        let f = self.func_ref(Extern::SgemmPrepacked);
        self.b.ins().call(f, &args);
    }

    /// Address of a packed A operand: `ceil(m / MR)` panels of `MR x k` from its offset,
    /// checked as one range.
    fn packed_a_addr(&mut self, g: &GemmCall) -> Value {
        let packed = MatArg {
            rs: 0,
            cs: 1,
            ..g.a.clone()
        };
        self.mat_addr(
            &packed,
            1,
            sinter_microkernels::layout::packed_a_whole_len(g.m, g.k),
        )
    }

    /// A convolution's GEMM with implicit im2col: the image's whole footprint is checked (in
    /// bounds-checked mode), its geometry stored in a stack slot for `sinter_sgemm_conv`.
    fn gemm_conv(&mut self, g: &GemmCall) {
        let Some(geo) = &g.im2col else { return };
        let pa = if g.a_packed {
            self.packed_a_addr(g)
        } else {
            self.mat_addr(&g.a, g.m, g.k)
        };
        let image = MatArg {
            rs: 0,
            cs: 1,
            ..g.b.clone()
        };
        let px = self.mat_addr(&image, 1, geo.image_len());
        let pc = self.mat_addr(&g.c, g.m, g.n);
        // `sinter_microkernels::ConvGeom`, field by field (13 machine words, `repr(C)`).
        let words = [
            geo.channels,
            geo.h,
            geo.w,
            geo.kh,
            geo.kw,
            geo.stride[0],
            geo.stride[1],
            geo.pad[0],
            geo.pad[1],
            geo.dilation[0],
            geo.dilation[1],
            geo.oh,
            geo.ow,
        ];
        let slot = self
            .b
            .create_sized_stack_slot(cranelift_codegen::ir::StackSlotData::new(
                cranelift_codegen::ir::StackSlotKind::ExplicitSlot,
                8 * words.len() as u32,
                3,
            ));
        for (q, &v) in words.iter().enumerate() {
            let v = self.b.ins().iconst(types::I64, v as i64);
            self.b.ins().stack_store(types::I64, v, slot, 8 * q as i32);
        }
        let geom = self.b.ins().stack_addr(types::I64, slot, 0);
        let i = |s: &mut Self, v: i64| s.b.ins().iconst(types::I64, v);
        let mut args = vec![
            i(self, g.m as i64),
            self.f32c(g.alpha),
            pa,
            i(self, g.a.rs),
            i(self, g.a.cs),
            // `sinter_sgemm_conv`'s flags: bit 0 packed A, bit 1 transposed im2col.
            self.b.ins().iconst(
                types::I8,
                i64::from(g.a_packed) | (i64::from(geo.transposed) << 1),
            ),
            px,
            geom,
            self.f32c(g.beta),
            pc,
            i(self, g.c.rs),
            i(self, g.c.cs),
            i(self, g.threads.max(1) as i64),
        ];
        args.extend(self.epilogue_args(g));
        let f = self.func_ref(Extern::SgemmConv);
        self.b.ins().call(f, &args);
    }

    /// Address of `len` elements of `buf` from element 0, checked (in bounds-checked mode)
    /// against the buffer's length: the whole footprint of a call that reads or writes it.
    fn whole_addr(&mut self, buf: Buf, len: usize) -> Value {
        let arg = MatArg {
            buf,
            offset: Expr::I(0),
            rs: 0,
            cs: 1,
        };
        self.mat_addr(&arg, 1, len)
    }

    /// A Winograd transform: a call of `sinter_winograd_filter`, `sinter_winograd_input` or
    /// `sinter_winograd_output` on whole buffers.
    fn winograd(&mut self, w: &WinogradCall) {
        let src = self.whole_addr(w.src, w.src_len());
        let dst = self.whole_addr(w.dst, w.dst_len());
        let i = |s: &mut Self, v: usize| s.b.ins().iconst(types::I64, v as i64);
        let threads = i(self, w.threads.max(1));
        let tile = i(self, w.tile);
        match &w.stage {
            WinogradStage::Filter { co, ci, transposed } => {
                let tr = i(self, usize::from(*transposed));
                let args = [tile, src, i(self, *co), i(self, *ci), dst, threads, tr];
                let f = self.func_ref(Extern::WinogradFilter);
                self.b.ins().call(f, &args);
            }
            WinogradStage::Input {
                n,
                c,
                h,
                w: width,
                pad,
            } => {
                let mut args = vec![tile, src];
                for v in [*n, *c, *h, *width, pad[0], pad[1], pad[2], pad[3]] {
                    args.push(i(self, v));
                }
                args.extend([dst, threads]);
                let f = self.func_ref(Extern::WinogradInput);
                self.b.ins().call(f, &args);
            }
            WinogradStage::Output {
                n,
                c,
                oh,
                ow,
                bias,
                act,
            } => {
                let bias = match bias {
                    Some(b) => self.whole_addr(*b, *c),
                    None => i(self, 0),
                };
                // `sinter_winograd_output`'s activation codes (those of the GEMM epilogue).
                let (code, alpha) = match act {
                    None => (0, 0.0),
                    Some(Activation::Relu) => (1, 0.0),
                    Some(Activation::LeakyRelu(a)) => (2, *a),
                    Some(Activation::Sigmoid) => (3, 0.0),
                    Some(Activation::Tanh) => (4, 0.0),
                    // The lowering gives the output transform plain activations only.
                    Some(Activation::Prelu(_) | Activation::ReluMask(_)) => (0, 0.0),
                };
                let mut args = vec![tile, src];
                for v in [*n, *c, *oh, *ow] {
                    args.push(i(self, v));
                }
                args.push(bias);
                args.push(self.b.ins().iconst(types::I8, code));
                args.push(self.f32c(alpha));
                args.extend([dst, threads]);
                let f = self.func_ref(Extern::WinogradOutput);
                self.b.ins().call(f, &args);
            }
        }
    }

    /// The epilogue's arguments as `sinter_sgemm_epilogue` takes them: bias, bias_rs,
    /// bias_cs, act, act_alpha, slope, slope_rs, slope_cs.
    fn epilogue_args(&mut self, g: &GemmCall) -> [Value; 8] {
        let i = |s: &mut Self, v: i64| s.b.ins().iconst(types::I64, v);
        let (bias, rs, cs) = match &g.epilogue.bias {
            Some(b) => (self.mat_addr(b, g.m, g.n), b.rs, b.cs),
            None => (i(self, 0), 0, 0),
        };
        // The activation as `sinter_sgemm_epilogue` codes it.
        let (code, alpha, slope) = match &g.epilogue.act {
            None => (0, 0.0, None),
            Some(Activation::Relu) => (1, 0.0, None),
            Some(Activation::LeakyRelu(a)) => (2, *a, None),
            Some(Activation::Sigmoid) => (3, 0.0, None),
            Some(Activation::Tanh) => (4, 0.0, None),
            Some(Activation::Prelu(s)) => (5, 0.0, Some(s)),
            Some(Activation::ReluMask(s)) => (6, 0.0, Some(s)),
        };
        let (slope, srs, scs) = match slope {
            Some(s) => (self.mat_addr(s, g.m, g.n), s.rs, s.cs),
            None => (i(self, 0), 0, 0),
        };
        [
            bias,
            i(self, rs),
            i(self, cs),
            self.b.ins().iconst(types::I8, code),
            self.f32c(alpha),
            slope,
            i(self, srs),
            i(self, scs),
        ]
    }

    fn func_ref(&mut self, f: Extern) -> FuncRef {
        match self.extern_refs.get(&f) {
            Some(r) => *r,
            None => {
                let r = (self.externs)(f, self.b);
                self.extern_refs.insert(f, r);
                r
            }
        }
    }

    fn call(&mut self, f: Extern, args: &[Value]) -> Value {
        let r = match self.extern_refs.get(&f) {
            Some(r) => *r,
            None => {
                let r = (self.externs)(f, self.b);
                self.extern_refs.insert(f, r);
                r
            }
        };
        let call = self.b.ins().call(r, args);
        self.b.inst_results(call)[0]
    }

    fn f32c(&mut self, v: f32) -> Value {
        self.b.ins().f32const(v)
    }

    pub(crate) fn expr(&mut self, e: &Expr) -> Value {
        if matches!(e, Expr::Bin(..) | Expr::Un(..))
            && let Some(&(_, slot)) = self.hoisted.iter().rev().find(|(x, _)| x == e)
        {
            return self.b.ins().stack_load(types::I64, types::I64, slot, 0);
        }
        match e {
            Expr::Var(v) => self.b.use_var(self.vars[v.0 as usize]),
            Expr::I(i) => self.b.ins().iconst(types::I64, *i),
            Expr::F(x) => self.f32c(*x),
            Expr::B(x) => self.b.ins().iconst(types::I8, i64::from(*x)),
            Expr::Load(buf, idx) => {
                let ty = clif_ty(self.k.bufs[buf.0 as usize].ty);
                let addr = self.addr(*buf, idx);
                self.b.ins().load(ty, MemFlagsData::trusted(), addr, 0)
            }
            Expr::Un(op, x) => {
                let t = self.k.ty(x);
                let v = self.expr(x);
                self.unary(*op, t, v)
            }
            Expr::Bin(op, a, c) => {
                let t = self.k.ty(a);
                let x = self.expr(a);
                let y = self.expr(c);
                self.binary(*op, t, x, y)
            }
            Expr::Select(c, a, d) => {
                let cv = self.expr(c);
                let x = self.expr(a);
                let y = self.expr(d);
                if self.k.ty(a) == Ty::F32 {
                    // Cranelift lowers an f32 `select` on x64 to a branch around a move, which
                    // mispredicts when the condition is data (which tap of a pooling window
                    // wins); through i32 it is a `cmov`.
                    let bits = |b: &mut FunctionBuilder<'_>, v| {
                        b.ins().bitcast(types::I32, MemFlagsData::new(), v)
                    };
                    let (xi, yi) = (bits(self.b, x), bits(self.b, y));
                    let r = self.b.ins().select(cv, xi, yi);
                    self.b.ins().bitcast(types::F32, MemFlagsData::new(), r)
                } else {
                    self.b.ins().select(cv, x, y)
                }
            }
        }
    }

    pub(crate) fn unary(&mut self, op: UnOp, t: Ty, v: Value) -> Value {
        match op {
            UnOp::Neg => match t {
                Ty::F32 => self.b.ins().fneg(v),
                _ => self.b.ins().ineg(v),
            },
            UnOp::Abs => self.b.ins().fabs(v),
            UnOp::Sqrt => self.b.ins().sqrt(v),
            UnOp::Exp => self.call(Extern::Exp, &[v]),
            UnOp::Ln => self.call(Extern::Ln, &[v]),
            UnOp::Tanh => self.call(Extern::Tanh, &[v]),
            UnOp::Cos => self.call(Extern::Cos, &[v]),
            UnOp::FastExp => crate::approx::exp(self.b, v),
            UnOp::Not => self.b.ins().bxor_imm_s(v, 1),
            UnOp::IsNan => self.b.ins().fcmp(FloatCC::Unordered, v, v),
            UnOp::F32ToI64 => self.b.ins().fcvt_to_sint_sat(types::I64, v),
            UnOp::I64ToF32 => self.b.ins().fcvt_from_sint(types::F32, v),
            UnOp::BoolToF32 => {
                let one = self.f32c(1.0);
                let zero = self.f32c(0.0);
                self.b.ins().select(v, one, zero)
            }
            UnOp::BoolToI64 => self.b.ins().uextend(types::I64, v),
            UnOp::F32ToBool => {
                let zero = self.f32c(0.0);
                self.b.ins().fcmp(FloatCC::NotEqual, v, zero)
            }
            UnOp::I64ToBool => self.b.ins().icmp_imm_s(IntCC::NotEqual, v, 0),
        }
    }

    fn binary(&mut self, op: BinOp, t: Ty, x: Value, y: Value) -> Value {
        let fl = t == Ty::F32;
        let b = &mut *self.b;
        if op.is_compare() {
            if fl {
                let cc = match op {
                    BinOp::Eq => FloatCC::Equal,
                    BinOp::Ne => FloatCC::NotEqual,
                    BinOp::Lt => FloatCC::LessThan,
                    BinOp::Le => FloatCC::LessThanOrEqual,
                    BinOp::Gt => FloatCC::GreaterThan,
                    _ => FloatCC::GreaterThanOrEqual,
                };
                return b.ins().fcmp(cc, x, y);
            }
            let cc = match op {
                BinOp::Eq => IntCC::Equal,
                BinOp::Ne => IntCC::NotEqual,
                BinOp::Lt => IntCC::SignedLessThan,
                BinOp::Le => IntCC::SignedLessThanOrEqual,
                BinOp::Gt => IntCC::SignedGreaterThan,
                _ => IntCC::SignedGreaterThanOrEqual,
            };
            return b.ins().icmp(cc, x, y);
        }
        match op {
            BinOp::Add if fl => b.ins().fadd(x, y),
            BinOp::Sub if fl => b.ins().fsub(x, y),
            BinOp::Mul if fl => b.ins().fmul(x, y),
            BinOp::Div if fl => b.ins().fdiv(x, y),
            BinOp::Add => b.ins().iadd(x, y),
            BinOp::Sub => b.ins().isub(x, y),
            BinOp::Mul => b.ins().imul(x, y),
            BinOp::Div => b.ins().sdiv(x, y),
            BinOp::Rem => b.ins().srem(x, y),
            BinOp::Min => {
                let lt = b.ins().icmp(IntCC::SignedLessThan, x, y);
                b.ins().select(lt, x, y)
            }
            BinOp::Max => {
                let gt = b.ins().icmp(IntCC::SignedGreaterThan, x, y);
                b.ins().select(gt, x, y)
            }
            BinOp::Pow => self.call(Extern::Pow, &[x, y]),
            BinOp::And => b.ins().band(x, y),
            BinOp::Or => b.ins().bor(x, y),
            BinOp::Xor => b.ins().bxor(x, y),
            BinOp::Shr => b.ins().ushr(x, y),
            BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                unreachable!("comparisons handled above")
            }
        }
    }
}

/// Declares the kernel's parameter and the entry block; returns the buffer base addresses.
pub(crate) fn entry(
    b: &mut FunctionBuilder<'_>,
    k: &Kernel,
) -> (Block, Vec<Value>, (Value, Value)) {
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    let table = b.block_params(entry)[0];
    let range = (b.block_params(entry)[1], b.block_params(entry)[2]);
    let bases = (0..k.bufs.len())
        .map(|i| {
            b.ins()
                .load(types::I64, MemFlagsData::trusted(), table, (8 * i) as i32)
        })
        .collect();
    (entry, bases, range)
}

/// The kernel signature's parameter types (the buffer table, `lo`, `hi`) and return type.
pub(crate) fn signature_params() -> ([AbiParam; 3], AbiParam) {
    ([AbiParam::new(types::I64); 3], AbiParam::new(types::I32))
}
