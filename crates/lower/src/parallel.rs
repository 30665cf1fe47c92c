//! Splitting a kernel across threads: finding a loop whose iterations are independent.
//!
//! The GEMM driver and the Winograd transforms thread their own work, but every other kernel
//! (im2col and the small GEMMs of a batch of convolutions, pooling, softmax, elementwise
//! chains, col2im) ran on one core: on LeNet-5 at batch 64 a second thread bought nothing. The
//! work of most kernels, though, is a loop over images, channels or rows whose iterations touch
//! disjoint parts of the outputs. [`parallelize`] finds that loop and proves the disjointness
//! on the loop IR itself, so it holds for every op's lowering and for fused chains alike,
//! without a promise from each lowering that could go stale:
//!
//! - the loop is the kernel's whole body (inside loops of one iteration), so each thread runs
//!   its range of the loop and nothing else;
//! - every access to a buffer the loop writes lies in `[S * v, S * v + S)` for one stride `S`
//!   per buffer, where `v` is the loop's counter: an affine index `S * v + r` whose remainder
//!   `r` is proved to lie in `[0, S)` by interval arithmetic over the other loop counters and
//!   variables. Iterations therefore never write what another iteration reads or writes;
//! - every scalar variable the body reads is assigned earlier in the same iteration (no value
//!   flows from one iteration to the next through a variable);
//! - scratch buffers (kernel-private temporaries, such as an im2col matrix) carry nothing
//!   between iterations by the contract of [`crate::loops::BufDecl::scratch`]; the runtime
//!   gives each piece its own copy.
//!
//! A loop with no loop inside (an elementwise chain's single loop) is first strip-mined into
//! `blocks x block` so that the inner loop stays whole for the JIT's vectoriser.

use crate::loops::{BinOp, Buf, Expr, GemmCall, Kernel, MatArg, Parallel, Stmt, UnOp, Var};

/// Kernels doing less than this much work (innermost statements executed, plus GEMM
/// multiply-adds / 8) stay on one thread: the pool's hand-off costs a few microseconds.
pub const MIN_WORK: u64 = 1 << 15;

/// Marks `k`'s parallel loop ([`Kernel::parallel`]) for `threads` pieces, when it has one and
/// an estimated `min_work` or more to do; GEMM calls inside it then run on one thread each.
/// Strip-mines a lone innermost loop first (see the module docs).
pub fn parallelize(k: &mut Kernel, threads: usize, min_work: u64) {
    if threads < 2 || k.parallel.is_some() || work(&k.body) < min_work {
        return;
    }
    let Some((var, extent)) = candidate(&k.body) else {
        return;
    };
    if innermost(k, var) && !strip_mine(k, var, extent, threads) {
        return;
    }
    // After strip-mining the candidate is the outer loop of blocks.
    let Some((var, extent)) = candidate(&k.body) else {
        return;
    };
    if extent < 2 || !independent(k, var) {
        return;
    }
    single_threaded_gemms(&mut k.body);
    k.parallel = Some(Parallel {
        var,
        extent,
        pieces: threads.min(extent as usize),
    });
}

/// The loop that would be split: the first loop of more than one iteration on the path from
/// the body through single-statement loops of one iteration.
fn candidate(body: &[Stmt]) -> Option<(Var, i64)> {
    match body {
        [
            Stmt::For {
                extent: 1, body, ..
            },
        ] => candidate(body),
        [Stmt::For { var, extent, .. }] => Some((*var, *extent)),
        _ => None,
    }
}

/// The candidate loop's body.
fn loop_body(body: &[Stmt], var: Var) -> Option<&[Stmt]> {
    match body {
        [Stmt::For { var: v, body, .. }] if *v == var => Some(body),
        [
            Stmt::For {
                extent: 1, body, ..
            },
        ] => loop_body(body, var),
        _ => None,
    }
}

/// Whether the loop over `var` has no loop or GEMM inside.
fn innermost(k: &Kernel, var: Var) -> bool {
    fn flat(s: &[Stmt]) -> bool {
        s.iter().all(|s| match s {
            Stmt::For { .. } | Stmt::Gemm(_) | Stmt::Winograd(_) => false,
            Stmt::If(_, a, b) => flat(a) && flat(b),
            Stmt::Set(..) | Stmt::Store(..) | Stmt::Check(..) => true,
        })
    }
    loop_body(&k.body, var).is_some_and(flat)
}

/// Estimated work of `body`: statements executed (loops multiply), GEMMs by their
/// multiply-adds / 8 (a vector FMA does eight).
fn work(body: &[Stmt]) -> u64 {
    body.iter()
        .map(|s| match s {
            Stmt::For { extent, body, .. } => (*extent as u64).saturating_mul(work(body).max(1)),
            Stmt::If(_, a, b) => 1 + work(a).max(work(b)),
            Stmt::Gemm(g) => (g.m as u64 * g.n as u64 * g.k as u64) / 8 + 1,
            Stmt::Winograd(w) => w.src_len() as u64,
            Stmt::Set(..) | Stmt::Store(..) | Stmt::Check(..) => 1,
        })
        .fold(0, u64::saturating_add)
}

/// Rewrites the loop `for var in 0..extent { body }` as `for o in 0..blocks { for i in
/// 0..block { body[var := o * block + i] } }` with `blocks` dividing `extent` and balancing
/// `threads` pieces best. Returns false (and changes nothing) when no such split exists.
fn strip_mine(k: &mut Kernel, var: Var, extent: i64, threads: usize) -> bool {
    let t = threads as i64;
    // Imbalance of `blocks` over the threads: the largest piece / the mean piece.
    let imbalance = |blocks: i64| (((blocks + t - 1) / t) * t) as f64 / blocks as f64;
    let Some(blocks) = (t..=16 * t)
        .filter(|&b| extent % b == 0 && extent / b >= 16)
        .min_by(|&a, &b| imbalance(a).total_cmp(&imbalance(b)).then(a.cmp(&b)))
    else {
        return false;
    };
    if imbalance(blocks) > 1.25 {
        return false;
    }
    let block = extent / blocks;
    let o = k.var("blk", crate::loops::Ty::I64);
    let i = k.var("j", crate::loops::Ty::I64);
    let index = Expr::Var(o) * Expr::I(block) + Expr::Var(i);
    let Some(body) = loop_body(&k.body, var) else {
        return false;
    };
    let inner: Vec<Stmt> = body.iter().map(|s| subst_stmt(s, var, &index)).collect();
    // The loop statement itself: find it again and replace it whole.
    fn replace(body: &mut [Stmt], var: Var, new: Stmt) {
        let [s] = body else {
            unreachable!("the candidate loop was found above")
        };
        match s {
            Stmt::For { var: v, .. } if *v == var => *s = new,
            Stmt::For { body, .. } => replace(body, var, new),
            _ => unreachable!("the candidate loop was found above"),
        }
    }
    replace(
        &mut k.body,
        var,
        Stmt::For {
            var: o,
            extent: blocks,
            body: vec![Stmt::For {
                var: i,
                extent: block,
                body: inner,
            }],
        },
    );
    true
}

fn subst_stmt(s: &Stmt, var: Var, e: &Expr) -> Stmt {
    let x = |x: &Expr| subst(x, var, e);
    match s {
        Stmt::For {
            var: v,
            extent,
            body,
        } => Stmt::For {
            var: *v,
            extent: *extent,
            body: body.iter().map(|s| subst_stmt(s, var, e)).collect(),
        },
        Stmt::Set(v, a) => Stmt::Set(*v, x(a)),
        Stmt::Store(b, i, a) => Stmt::Store(*b, x(i), x(a)),
        Stmt::If(c, a, b) => Stmt::If(
            x(c),
            a.iter().map(|s| subst_stmt(s, var, e)).collect(),
            b.iter().map(|s| subst_stmt(s, var, e)).collect(),
        ),
        Stmt::Check(c, code) => Stmt::Check(x(c), *code),
        // `innermost` admits no GEMM or Winograd call in a strip-mined loop.
        Stmt::Gemm(_) | Stmt::Winograd(_) => s.clone(),
    }
}

fn subst(x: &Expr, var: Var, e: &Expr) -> Expr {
    let r = |a: &Expr| Box::new(subst(a, var, e));
    match x {
        Expr::Var(v) if *v == var => e.clone(),
        Expr::Var(_) | Expr::I(_) | Expr::F(_) | Expr::B(_) => x.clone(),
        Expr::Load(b, i) => Expr::Load(*b, r(i)),
        Expr::Un(op, a) => Expr::Un(*op, r(a)),
        Expr::Bin(op, a, b) => Expr::Bin(*op, r(a), r(b)),
        Expr::Select(c, a, b) => Expr::Select(r(c), r(a), r(b)),
    }
}

fn single_threaded_gemms(body: &mut [Stmt]) {
    for s in body {
        match s {
            Stmt::For { body, .. } => single_threaded_gemms(body),
            Stmt::If(_, a, b) => {
                single_threaded_gemms(a);
                single_threaded_gemms(b);
            }
            Stmt::Gemm(g) => g.threads = 1,
            Stmt::Winograd(w) => w.threads = 1,
            Stmt::Set(..) | Stmt::Store(..) | Stmt::Check(..) => {}
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The independence proof

/// `S * v + r` with `r` in `[lo, hi]`, where `v` is the parallel loop's counter.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Affine {
    coef: i128,
    lo: i128,
    hi: i128,
}

impl Affine {
    fn constant(c: i128) -> Affine {
        Affine {
            coef: 0,
            lo: c,
            hi: c,
        }
    }
    fn range(lo: i128, hi: i128) -> Affine {
        Affine { coef: 0, lo, hi }
    }
}

/// Coefficients and bounds beyond this are treated as unknown (no proof). Every accepted
/// subexpression then stays within `±2^62`, so the kernel's i64 index arithmetic does not
/// wrap where the proof reasons exactly (and the proof's own i128 products, of two such
/// values or of one and a loop extent, cannot overflow).
const LIMIT: i128 = 1 << 62;

/// An access to a buffer: where it starts (an element index, as an affine form evaluated
/// where the access is) and how far past it it reaches.
struct Access {
    buf: Buf,
    /// `None` when the index is not affine in the parallel counter with known bounds.
    at: Option<Affine>,
    /// The largest offset from `at` touched (a GEMM operand's extent), 0 for a scalar.
    span: i64,
    /// A matrix operand's strides must be non-negative for `span` to bound it.
    ok: bool,
}

/// What the proof knows while walking the loop body.
struct Scope {
    /// Per variable: its counter range (loops), or the affine form of its single assignment.
    known: Vec<Option<Affine>>,
    /// Variables assigned (so far, on every path) in the current iteration.
    defined: Vec<bool>,
    /// How many times each variable is assigned in the loop body (lexically).
    assignments: Vec<u32>,
    accesses: Vec<Access>,
    written: Vec<bool>,
    ok: bool,
}

/// Whether the iterations of the loop over `v` (the kernel's candidate) are independent (see
/// the module docs).
fn independent(k: &Kernel, v: Var) -> bool {
    blocks(k, &k.body, v).is_some()
}

/// If the iterations of the loop over `v` (the candidate of the statements `top`) are
/// independent, the block stride of each buffer they write (`None` for buffers not written,
/// and for scratch buffers).
fn blocks(k: &Kernel, top: &[Stmt], v: Var) -> Option<Vec<Option<i128>>> {
    let body = loop_body(top, v)?;
    let n = k.vars.len();
    let mut s = Scope {
        known: vec![None; n],
        defined: vec![false; n],
        assignments: vec![0; n],
        accesses: Vec::new(),
        written: vec![false; k.bufs.len()],
        ok: true,
    };
    count_assignments(body, &mut s.assignments);
    if s.assignments[v.0 as usize] != 0 {
        return None;
    }
    // The enclosing loops of one iteration hold 0; `v` is the counter itself.
    let mut outer = Vec::new();
    enclosing(top, v, &mut outer);
    for o in outer {
        if s.assignments[o.0 as usize] != 0 {
            return None;
        }
        s.known[o.0 as usize] = Some(Affine::constant(0));
        s.defined[o.0 as usize] = true;
    }
    s.known[v.0 as usize] = Some(Affine {
        coef: 1,
        lo: 0,
        hi: 0,
    });
    s.defined[v.0 as usize] = true;
    s.stmts(body);
    if !s.ok {
        return None;
    }
    // Each buffer written: every access within one stride's block.
    let mut stride: Vec<Option<i128>> = vec![None; k.bufs.len()];
    for a in &s.accesses {
        let b = a.buf.0 as usize;
        if !s.written[b] || k.bufs[b].scratch {
            continue;
        }
        if !a.ok {
            return None;
        }
        let f = a.at?;
        let st = *stride[b].get_or_insert(f.coef);
        if st <= 0 || f.coef != st || f.lo < 0 || f.hi + a.span as i128 >= st {
            return None;
        }
    }
    Some(stride)
}

/// Moves an elementwise pass over the whole output `out` (`numel` elements) that follows the
/// kernel's loop over images into that loop: `[for b in 0..n { ... }, for i in 0..numel {
/// f(i) }]` becomes `[for b in 0..n { ...; for j in 0..numel/n { f(b * numel/n + j) } }]`.
/// Valid when iteration `b` is proved to be the only one touching image `b` of `out` (a block
/// of `numel/n` elements; see [`blocks`]) and `f(i)` writes `out[i]` reading only element `i`
/// of `out`: image `b` is final at the end of its iteration. How an activation after a
/// transposed convolution (a trailing pass, not a GEMM epilogue) stays in the parallel loop.
/// Returns whether it moved.
pub(crate) fn sink_trailing_map(k: &mut Kernel, out: Buf, numel: usize) -> bool {
    let [
        Stmt::For {
            var: b, extent: n, ..
        },
        Stmt::For {
            var: i,
            extent,
            body: map,
        },
    ] = k.body.as_slice()
    else {
        return false;
    };
    let (b, n, i, extent, map) = (*b, *n, *i, *extent, map.clone());
    if extent != numel as i64 || n < 2 || numel as i64 % n != 0 || !reads_out_at(&map, out, i) {
        return false;
    }
    let per = numel as i64 / n;
    let Some(strides) = blocks(k, &k.body[..1], b) else {
        return false;
    };
    if strides[out.0 as usize] != Some(per as i128) {
        return false;
    }
    let j = k.var("j", crate::loops::Ty::I64);
    let index = Expr::Var(b) * Expr::I(per) + Expr::Var(j);
    let moved = Stmt::For {
        var: j,
        extent: per,
        body: map.iter().map(|s| subst_stmt(s, i, &index)).collect(),
    };
    k.body.pop();
    let Stmt::For { body, .. } = &mut k.body[0] else {
        unreachable!("matched above")
    };
    body.push(moved);
    true
}

/// Whether `body` (of a loop over `i`) is `Set`s then one store to `out[i]`, and reads `out`
/// only at `i`.
fn reads_out_at(body: &[Stmt], out: Buf, i: Var) -> bool {
    fn loads_ok(e: &Expr, out: Buf, i: Var) -> bool {
        match e {
            Expr::Load(b, at) => (*b != out || **at == Expr::Var(i)) && loads_ok(at, out, i),
            Expr::Var(_) | Expr::I(_) | Expr::F(_) | Expr::B(_) => true,
            Expr::Un(_, a) => loads_ok(a, out, i),
            Expr::Bin(_, a, b) => loads_ok(a, out, i) && loads_ok(b, out, i),
            Expr::Select(c, a, b) => {
                loads_ok(c, out, i) && loads_ok(a, out, i) && loads_ok(b, out, i)
            }
        }
    }
    let Some((Stmt::Store(b, at, e), sets)) = body.split_last() else {
        return false;
    };
    *b == out
        && *at == Expr::Var(i)
        && loads_ok(e, out, i)
        && sets
            .iter()
            .all(|s| matches!(s, Stmt::Set(_, e) if loads_ok(e, out, i)))
}

/// The loop counters of the single-iteration loops around the loop over `v`.
fn enclosing(body: &[Stmt], v: Var, out: &mut Vec<Var>) {
    if let [Stmt::For { var, body, .. }] = body
        && *var != v
    {
        out.push(*var);
        enclosing(body, v, out);
    }
}

fn count_assignments(body: &[Stmt], n: &mut [u32]) {
    for s in body {
        match s {
            Stmt::For { var, body, .. } => {
                n[var.0 as usize] += 1;
                count_assignments(body, n);
            }
            Stmt::Set(v, _) => n[v.0 as usize] += 1,
            Stmt::If(_, a, b) => {
                count_assignments(a, n);
                count_assignments(b, n);
            }
            Stmt::Store(..) | Stmt::Gemm(_) | Stmt::Winograd(_) | Stmt::Check(..) => {}
        }
    }
}

impl Scope {
    fn stmts(&mut self, body: &[Stmt]) {
        for s in body {
            self.stmt(s);
        }
    }

    fn stmt(&mut self, s: &Stmt) {
        match s {
            Stmt::For { var, extent, body } => {
                let i = var.0 as usize;
                if self.assignments[i] != 1 {
                    // A counter assigned elsewhere too.
                    self.ok = false;
                }
                let before = self.defined.clone();
                self.known[i] = Some(Affine::range(0, (*extent as i128 - 1).max(0)));
                self.defined[i] = true;
                self.stmts(body);
                if *extent < 1 {
                    // The body never ran: it defined nothing.
                    self.defined = before;
                }
                // Read after the loop (which the lowering never does), the counter is `extent`.
                self.known[i] = Some(Affine::range(0, (*extent as i128).max(0)));
                self.defined[i] = true;
            }
            Stmt::Set(var, e) => {
                self.expr(e);
                let i = var.0 as usize;
                // The form of a variable assigned once holds wherever it is read (it is read
                // only after this assignment, in the same iteration: see `Expr::Var`).
                self.known[i] = if self.assignments[i] == 1 {
                    self.affine(e)
                } else {
                    None
                };
                self.defined[i] = true;
            }
            Stmt::Store(b, i, e) => {
                self.expr(i);
                self.expr(e);
                self.written[b.0 as usize] = true;
                self.accesses.push(Access {
                    buf: *b,
                    at: self.affine(i),
                    span: 0,
                    ok: true,
                });
            }
            Stmt::If(c, a, b) => {
                self.expr(c);
                let before = self.defined.clone();
                // Inside the `then` branch, bounds the condition puts on variables hold
                // (col2im's `if 0 <= oy < oh`).
                let saved = self.known.clone();
                self.narrow(c);
                self.stmts(a);
                self.known = saved;
                let after_a = std::mem::replace(&mut self.defined, before);
                self.stmts(b);
                // Defined after the `if` only when both branches define it.
                for (d, a) in self.defined.iter_mut().zip(after_a) {
                    *d = *d && a;
                }
            }
            Stmt::Check(c, _) => self.expr(c),
            Stmt::Gemm(g) => self.gemm(g),
            // Whole-buffer transforms with their own threads.
            Stmt::Winograd(_) => self.ok = false,
        }
    }

    fn matrix(&mut self, a: &MatArg, rows: usize, cols: usize, write: bool) {
        self.expr(&a.offset);
        if write {
            self.written[a.buf.0 as usize] = true;
        }
        let span = (rows.max(1) as i64 - 1) * a.rs + (cols.max(1) as i64 - 1) * a.cs;
        self.accesses.push(Access {
            buf: a.buf,
            at: self.affine(&a.offset),
            span,
            ok: a.rs >= 0 && a.cs >= 0,
        });
    }

    fn gemm(&mut self, g: &GemmCall) {
        self.matrix(&g.c, g.m, g.n, true);
        // Operands read whole by the driver: an implicit im2col image or a packed A has no
        // strides to bound them, so such a buffer must not be written in the loop (no access
        // recorded for it would be `ok`).
        let packed = |b: Buf| Access {
            buf: b,
            at: None,
            span: 0,
            ok: false,
        };
        if g.a_packed {
            self.expr(&g.a.offset);
            self.accesses.push(packed(g.a.buf));
        } else {
            self.matrix(&g.a, g.m, g.k, false);
        }
        if g.im2col.is_some() || g.b_packed {
            self.expr(&g.b.offset);
            self.accesses.push(packed(g.b.buf));
        } else {
            self.matrix(&g.b, g.k, g.n, false);
        }
        if let Some(b) = &g.epilogue.bias {
            self.matrix(b, g.m, g.n, false);
        }
        if let Some(crate::loops::Activation::Prelu(a) | crate::loops::Activation::ReluMask(a)) =
            &g.epilogue.act
        {
            self.matrix(a, g.m, g.n, false)
        }
    }

    /// Narrows the ranges of variables (not depending on the parallel counter) by the
    /// conjuncts `var >= c`, `var > c`, `var < c`, `var <= c` of a condition known to hold.
    fn narrow(&mut self, cond: &Expr) {
        let Expr::Bin(op, a, b) = cond else {
            return;
        };
        if *op == BinOp::And {
            self.narrow(a);
            self.narrow(b);
            return;
        }
        let (Expr::Var(x), Expr::I(c)) = (&**a, &**b) else {
            return;
        };
        let Some(f) = self.known[x.0 as usize].as_mut() else {
            return;
        };
        if f.coef != 0 {
            return;
        }
        let c = *c as i128;
        match op {
            BinOp::Ge => f.lo = f.lo.max(c),
            BinOp::Gt => f.lo = f.lo.max(c + 1),
            BinOp::Lt => f.hi = f.hi.min(c - 1),
            BinOp::Le => f.hi = f.hi.min(c),
            _ => {}
        }
    }

    /// Checks the variables `e` reads and records its loads.
    fn expr(&mut self, e: &Expr) {
        match e {
            Expr::Var(v) => {
                if !self.defined[v.0 as usize] {
                    // A value from before the iteration (or from an earlier one).
                    self.ok = false;
                }
            }
            Expr::I(_) | Expr::F(_) | Expr::B(_) => {}
            Expr::Load(b, i) => {
                self.expr(i);
                self.accesses.push(Access {
                    buf: *b,
                    at: self.affine(i),
                    span: 0,
                    ok: true,
                });
            }
            Expr::Un(_, a) => self.expr(a),
            Expr::Bin(_, a, b) => {
                self.expr(a);
                self.expr(b);
            }
            Expr::Select(c, a, b) => {
                self.expr(c);
                self.expr(a);
                self.expr(b);
            }
        }
    }

    /// `e` as `S * v + r` with bounds on `r`, if the proof can say.
    fn affine(&self, e: &Expr) -> Option<Affine> {
        let f = match e {
            Expr::Var(x) => self.known[x.0 as usize]?,
            Expr::I(c) => Affine::constant(*c as i128),
            Expr::F(_) | Expr::B(_) => return None,
            // A loaded index: nothing is known of it.
            Expr::Load(..) => return None,
            Expr::Un(UnOp::Neg, a) => {
                let a = self.affine(a)?;
                Affine {
                    coef: -a.coef,
                    lo: -a.hi,
                    hi: -a.lo,
                }
            }
            Expr::Un(..) => return None,
            Expr::Bin(op, a, b) => {
                let (a, b) = (self.affine(a)?, self.affine(b)?);
                match op {
                    BinOp::Add => Affine {
                        coef: a.coef + b.coef,
                        lo: a.lo + b.lo,
                        hi: a.hi + b.hi,
                    },
                    BinOp::Sub => Affine {
                        coef: a.coef - b.coef,
                        lo: a.lo - b.hi,
                        hi: a.hi - b.lo,
                    },
                    BinOp::Mul => {
                        let scale = |x: Affine, c: i128| {
                            let (lo, hi) = (x.lo * c, x.hi * c);
                            Affine {
                                coef: x.coef * c,
                                lo: lo.min(hi),
                                hi: lo.max(hi),
                            }
                        };
                        if b.coef == 0 && b.lo == b.hi {
                            scale(a, b.lo)
                        } else if a.coef == 0 && a.lo == a.hi {
                            scale(b, a.lo)
                        } else if a.coef == 0 && b.coef == 0 {
                            let p = [a.lo * b.lo, a.lo * b.hi, a.hi * b.lo, a.hi * b.hi];
                            Affine::range(*p.iter().min()?, *p.iter().max()?)
                        } else {
                            return None;
                        }
                    }
                    BinOp::Min | BinOp::Max if a.coef == 0 && b.coef == 0 => {
                        if *op == BinOp::Min {
                            Affine::range(a.lo.min(b.lo), a.hi.min(b.hi))
                        } else {
                            Affine::range(a.lo.max(b.lo), a.hi.max(b.hi))
                        }
                    }
                    // Truncating division and remainder by a positive constant.
                    BinOp::Div if a.coef == 0 && b.coef == 0 && b.lo == b.hi && b.lo > 0 => {
                        Affine::range(a.lo / b.lo, a.hi / b.lo)
                    }
                    BinOp::Rem if a.coef == 0 && b.coef == 0 && b.lo == b.hi && b.lo > 0 => {
                        let m = b.lo - 1;
                        Affine::range(
                            if a.lo >= 0 { 0 } else { -m },
                            if a.hi <= 0 { 0 } else { m },
                        )
                    }
                    _ => return None,
                }
            }
            Expr::Select(_, a, b) => {
                let (a, b) = (self.affine(a)?, self.affine(b)?);
                if a.coef != b.coef {
                    return None;
                }
                Affine {
                    coef: a.coef,
                    lo: a.lo.min(b.lo),
                    hi: a.hi.max(b.hi),
                }
            }
        };
        self.bounded(f)
    }

    fn bounded(&self, f: Affine) -> Option<Affine> {
        (f.coef.abs() < LIMIT && f.lo.abs() < LIMIT && f.hi.abs() < LIMIT).then_some(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loops::{Ty, load};

    fn v(x: Var) -> Expr {
        Expr::Var(x)
    }

    /// A kernel with input `x: f32[n]` and output `y: f32[n]`, and loop `o in 0..outer`
    /// around what `body` builds from `(kernel, o, x, y)`.
    fn kernel(
        n: usize,
        outer: i64,
        body: impl FnOnce(&mut Kernel, Var, Buf, Buf) -> Vec<Stmt>,
    ) -> Kernel {
        let mut k = Kernel::new("t");
        let x = k.buf("x", Ty::F32, n, false);
        let y = k.buf("y", Ty::F32, n, true);
        let o = k.var("o", Ty::I64);
        let b = body(&mut k, o, x, y);
        k.body = vec![Stmt::For {
            var: o,
            extent: outer,
            body: b,
        }];
        k
    }

    fn inner(k: &mut Kernel, extent: i64, f: impl FnOnce(Var) -> Vec<Stmt>) -> Stmt {
        let i = k.var("i", Ty::I64);
        Stmt::For {
            var: i,
            extent,
            body: f(i),
        }
    }

    fn split(mut k: Kernel) -> Option<Parallel> {
        parallelize(&mut k, 2, 0);
        k.parallel
    }

    #[test]
    fn rows_of_disjoint_blocks_split() {
        // y[o * 8 + i] = x[o * 8 + i] + x[3]: every write within its row's block of 8.
        let k = kernel(64, 8, |k, o, x, y| {
            vec![inner(k, 8, |i| {
                let at = v(o) * Expr::I(8) + v(i);
                vec![Stmt::Store(
                    y,
                    at.clone(),
                    load(x, at) + load(x, Expr::I(3)),
                )]
            })]
        });
        assert_eq!(
            split(k).map(|p| (p.extent, p.pieces)),
            Some((8, 2)),
            "independent rows"
        );
    }

    #[test]
    fn overlapping_blocks_stay_serial() {
        // y[o * 8 + i] for i in 0..9 reaches into the next row's block.
        let k = kernel(80, 8, |k, o, _, y| {
            vec![inner(k, 9, |i| {
                vec![Stmt::Store(y, v(o) * Expr::I(8) + v(i), Expr::F(1.0))]
            })]
        });
        assert_eq!(split(k), None);
    }

    #[test]
    fn accumulation_across_iterations_stays_serial() {
        // y[i] += x[o * 8 + i]: every iteration writes the same elements (a weight gradient
        // summed over the batch).
        let k = kernel(64, 8, |k, o, x, y| {
            vec![inner(k, 8, |i| {
                vec![Stmt::Store(
                    y,
                    v(i),
                    load(y, v(i)) + load(x, v(o) * Expr::I(8) + v(i)),
                )]
            })]
        });
        assert_eq!(split(k), None);
    }

    #[test]
    fn reading_another_iterations_output_stays_serial() {
        // y[o * 8 + i] = y[(o - 1) * 8 + i]: a scan over rows.
        let k = kernel(64, 8, |k, o, _, y| {
            vec![inner(k, 8, |i| {
                vec![Stmt::Store(
                    y,
                    v(o) * Expr::I(8) + v(i),
                    load(y, (v(o) - Expr::I(1)) * Expr::I(8) + v(i)),
                )]
            })]
        });
        assert_eq!(split(k), None);
    }

    #[test]
    fn a_scalar_carried_between_iterations_stays_serial() {
        // acc = acc + x[o]; y[o] = acc: a running sum through a variable.
        let k = kernel(64, 64, |k, o, x, y| {
            let acc = k.var("acc", Ty::F32);
            vec![
                Stmt::Set(acc, v(acc) + load(x, v(o))),
                Stmt::Store(y, v(o), v(acc)),
            ]
        });
        assert_eq!(split(k), None);
        // Set before it is read in the same iteration, the variable carries nothing.
        let k = kernel(64, 64, |k, o, x, y| {
            let acc = k.var("acc", Ty::F32);
            vec![
                Stmt::Set(acc, Expr::F(0.0)),
                Stmt::Set(acc, v(acc) + load(x, v(o))),
                Stmt::Store(y, v(o), v(acc)),
            ]
        });
        assert!(split(k).is_some());
        // Set on one branch only, it may still hold the last iteration's value.
        let k = kernel(64, 64, |k, o, x, y| {
            let acc = k.var("acc", Ty::F32);
            vec![
                Stmt::If(
                    load(x, v(o)).gt(Expr::F(0.0)),
                    vec![Stmt::Set(acc, Expr::F(1.0))],
                    vec![],
                ),
                Stmt::Store(y, v(o), v(acc)),
            ]
        });
        assert_eq!(split(k), None);
    }

    #[test]
    fn data_dependent_and_nonlinear_indices_stay_serial() {
        // y[x[o]] = 1: a scatter through loaded indices.
        let mut k = Kernel::new("t");
        let idx = k.buf("idx", Ty::I64, 64, false);
        let y = k.buf("y", Ty::F32, 64, true);
        let o = k.var("o", Ty::I64);
        k.body = vec![Stmt::For {
            var: o,
            extent: 64,
            body: vec![Stmt::Store(y, load(idx, v(o)), Expr::F(1.0))],
        }];
        assert_eq!(split(k), None);
        // y[o % 4] = 1: iterations 0 and 4 write the same element.
        let k = kernel(64, 64, |_, o, _, y| {
            vec![Stmt::Store(
                y,
                crate::loops::bin(BinOp::Rem, v(o), Expr::I(4)),
                Expr::F(1.0),
            )]
        });
        assert_eq!(split(k), None);
    }

    #[test]
    fn variables_set_once_carry_their_affine_form() {
        // base = o * 8; y[base + i] = ...: the form of `base` is known where it is read.
        let k = kernel(64, 8, |k, o, x, y| {
            let base = k.var("base", Ty::I64);
            vec![
                Stmt::Set(base, v(o) * Expr::I(8)),
                inner(k, 8, |i| {
                    vec![Stmt::Store(y, v(base) + v(i), load(x, v(i)))]
                }),
            ]
        });
        assert!(split(k).is_some());
        // Assigned twice, its form is unknown.
        let k = kernel(64, 8, |k, o, x, y| {
            let base = k.var("base", Ty::I64);
            vec![
                Stmt::Set(base, v(o) * Expr::I(8)),
                Stmt::Set(base, v(base) + Expr::I(1)),
                inner(k, 7, |i| {
                    vec![Stmt::Store(y, v(base) + v(i), load(x, v(i)))]
                }),
            ]
        });
        assert_eq!(split(k), None);
    }

    #[test]
    fn a_lone_loop_is_strip_mined_for_the_vectoriser() {
        let mut k = kernel(1000, 1000, |_, o, x, y| {
            vec![Stmt::Store(y, v(o), load(x, v(o)) * Expr::F(2.0))]
        });
        parallelize(&mut k, 2, 0);
        let p = k.parallel.expect("split");
        assert_eq!((p.extent, p.pieces), (2, 2));
        assert_eq!(
            k.to_string(),
            "kernel t(x: f32[1000], out y: f32[1000]) {\n  for blk1 in 0..2 parallel(2) {\n    for j2 in 0..500 {\n      y[((blk1 * 500) + j2)] = (x[((blk1 * 500) + j2)] * 2.0)\n    }\n  }\n}\n"
        );
        // A prime extent has no even split.
        let mut k = kernel(997, 997, |_, o, x, y| {
            vec![Stmt::Store(y, v(o), load(x, v(o)))]
        });
        parallelize(&mut k, 2, 0);
        assert_eq!(k.parallel, None);
    }

    #[test]
    fn gemm_blocks_must_fit_their_iteration() {
        use crate::loops::{GemmCall, GemmEpilogue, MatArg};
        let gemm = |o: Var, y: Buf, x: Buf, rows: usize| {
            Stmt::Gemm(Box::new(GemmCall {
                m: rows,
                n: 4,
                k: 2,
                alpha: 1.0,
                beta: 0.0,
                a: MatArg {
                    buf: x,
                    offset: Expr::I(0),
                    rs: 2,
                    cs: 1,
                },
                b: MatArg {
                    buf: x,
                    offset: Expr::I(0),
                    rs: 4,
                    cs: 1,
                },
                c: MatArg {
                    buf: y,
                    offset: v(o) * Expr::I(12),
                    rs: 4,
                    cs: 1,
                },
                threads: 2,
                epilogue: GemmEpilogue::default(),
                im2col: None,
                a_packed: false,
                b_packed: false,
            }))
        };
        // C of 3 x 4 at o * 12: exactly one block per iteration; the call goes single-threaded.
        let mut k = kernel(96, 8, |_, o, x, y| vec![gemm(o, y, x, 3)]);
        parallelize(&mut k, 2, 0);
        assert!(k.parallel.is_some());
        let Stmt::For { body, .. } = &k.body[0] else {
            panic!()
        };
        assert!(matches!(&body[0], Stmt::Gemm(g) if g.threads == 1));
        // 4 rows reach into the next block.
        let k = kernel(104, 8, |_, o, x, y| vec![gemm(o, y, x, 4)]);
        assert_eq!(split(k), None);
    }
}
