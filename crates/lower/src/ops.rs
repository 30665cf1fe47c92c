//! Lowering of one graph op to a [`Kernel`]: one exhaustive `match` over [`Op`].
//!
//! The match has no wildcard arm (an Architecture Invariant), so a new op in the table fails to
//! compile here until it has a lowering. Each arm writes the op's definition as loops in the
//! interpreter's accumulation order, so results agree with the oracle bit for bit wherever the
//! arithmetic is the same (sums are not reassociated; `exp`/`ln`/`tanh`/`powf`/`cos` call the
//! same Rust functions unless the fast polynomial is asked for).
//!
//! Buffer convention: the kernel's buffers are the op's inputs in order, then its outputs.

use crate::loops::{
    BinOp, Buf, Expr, GemmCall, GemmEpilogue, Im2col, Kernel, MatArg, Stmt, Ty, UnOp, Var, bin,
    load, select, un,
};
use sinter_ir::infer::{norm_axes, norm_axis, slice_bounds};
use sinter_ir::types::strides;
use sinter_ir::{DType, Op, TensorType};

/// Options that change the generated code without changing what it computes (beyond the
/// documented accuracy of the fast paths).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LowerOptions {
    /// Use the inline polynomial `exp` (max error measured in `sinter-jit`'s tests) instead of
    /// calling `f32::exp`, in `exp`, `sigmoid`, `softmax` and `log_softmax`.
    pub fast_math: bool,
    /// Lower matmul, gemm and conv2d to calls of the GEMM microkernel driver (im2col for
    /// convolutions, none for 1x1) instead of plain Cranelift loops (the portable path, which
    /// also reproduces the interpreter's summation order exactly).
    pub microkernels: bool,
    /// Threads the GEMM driver may use.
    pub threads: usize,
    /// Im2col matrices larger than this many bytes are implicit (packed by the driver from
    /// the image), smaller ones built by the kernel (see [`IMPLICIT_IM2COL_BYTES`], the
    /// default; tests set 0 to run every convolution through the implicit path).
    pub implicit_im2col_bytes: usize,
    /// With more than one thread, kernels estimated to do at least this much work run their
    /// parallel loop in pieces (see [`crate::parallel`]; the default is
    /// [`crate::parallel::MIN_WORK`], tests set 0 to split every kernel that can be).
    pub parallel_min_work: u64,
}

impl Default for LowerOptions {
    fn default() -> LowerOptions {
        LowerOptions {
            fast_math: false,
            microkernels: true,
            threads: 1,
            implicit_im2col_bytes: IMPLICIT_IM2COL_BYTES,
            parallel_min_work: crate::parallel::MIN_WORK,
        }
    }
}

type R<T> = Result<T, String>;

/// `i64` constant.
pub(crate) fn c(v: usize) -> Expr {
    Expr::I(v as i64)
}

/// The row-major linear index of `idx` under `strides`.
pub fn linear(idx: &[Expr], strides: &[usize]) -> Expr {
    idx.iter()
        .zip(strides)
        .fold(Expr::I(0), |acc, (i, &s)| acc + i.clone() * c(s))
}

/// Nested loops over `shape` (outermost first) around the statements `f` builds from the
/// index expressions.
pub fn nest(
    k: &mut Kernel,
    shape: &[usize],
    hint: &str,
    f: impl FnOnce(&mut Kernel, &[Expr]) -> Vec<Stmt>,
) -> Vec<Stmt> {
    let vars: Vec<Var> = (0..shape.len()).map(|_| k.var(hint, Ty::I64)).collect();
    let idx: Vec<Expr> = vars.iter().map(|&v| Expr::v(v)).collect();
    let mut body = f(k, &idx);
    for (d, &v) in shape.iter().zip(&vars).rev() {
        body = vec![Stmt::For {
            var: v,
            extent: *d as i64,
            body,
        }];
    }
    body
}

/// `for v in 0..n { f(v) }`.
fn for_(
    k: &mut Kernel,
    hint: &str,
    n: usize,
    f: impl FnOnce(&mut Kernel, Expr) -> Vec<Stmt>,
) -> Stmt {
    let v = k.var(hint, Ty::I64);
    let body = f(k, Expr::v(v));
    Stmt::For {
        var: v,
        extent: n as i64,
        body,
    }
}

/// Index into an input of shape `ins` broadcast (numpy rules) to the output index `idx`.
pub fn bcast_index(idx: &[Expr], ins: &[usize], out: &[usize]) -> Expr {
    let st = strides(ins);
    let lead = out.len() - ins.len();
    let mut e = Expr::I(0);
    for (j, &d) in ins.iter().enumerate() {
        if d != 1 {
            e = e + idx[lead + j].clone() * c(st[j]);
        }
    }
    e
}

/// An elementwise kernel: `out[i] = f(inputs broadcast to i)`. One flat loop when no input
/// broadcasts (scalars aside), else a nest over the output shape.
pub(crate) fn map(
    k: &mut Kernel,
    ins: &[(Buf, &TensorType)],
    out: Buf,
    out_ty: &TensorType,
    f: impl FnOnce(&mut Kernel, Vec<Expr>) -> Expr,
) {
    let n = out_ty.numel();
    let flat = ins
        .iter()
        .all(|(_, t)| t.numel() == 1 || t.shape == out_ty.shape);
    let body = if flat {
        vec![for_(k, "i", n, |k, i| {
            let args = ins
                .iter()
                .map(|(b, t)| {
                    load(
                        *b,
                        if t.numel() == 1 {
                            Expr::I(0)
                        } else {
                            i.clone()
                        },
                    )
                })
                .collect();
            let v = f(k, args);
            vec![Stmt::Store(out, i, v)]
        })]
    } else {
        nest(k, &out_ty.shape, "i", |k, idx| {
            let args = ins
                .iter()
                .map(|(b, t)| load(*b, bcast_index(idx, &t.shape, &out_ty.shape)))
                .collect();
            let v = f(k, args);
            vec![Stmt::Store(out, linear(idx, &strides(&out_ty.shape)), v)]
        })
    };
    k.body.extend(body);
}

/// `e^x`, exact call or inline polynomial.
fn exp(x: Expr, o: LowerOptions) -> Expr {
    un(
        if o.fast_math {
            UnOp::FastExp
        } else {
            UnOp::Exp
        },
        x,
    )
}

/// `tanh` under `fast_math`, vectorisable: for `|x| < 0.625` Cephes' odd polynomial
/// `x (1 + x^2 P(x^2))` (written so that `-0.0` stays `-0.0`), else `1 - 2 / (e^{2|x|} + 1)` with
/// the inline `exp` (no cancellation there: the result is at least 0.55), signed like `x`. Max
/// error measured in `sinter-runtime`'s tests (`fast_math_tanh_and_sigmoid_accuracy`).
fn fast_tanh(x: Expr, o: LowerOptions) -> Expr {
    let f = Expr::F;
    let z = x.clone() * x.clone();
    let p = (((f(-5.704_988_7e-3) * z.clone() + f(2.063_909e-2)) * z.clone() - f(5.373_971_6e-2))
        * z.clone()
        + f(1.333_144_2e-1))
        * z.clone()
        - f(3.333_328e-1);
    let small = x.clone() * (f(1.0) + z * p);
    let ax = un(UnOp::Abs, x.clone());
    let big = f(1.0) - f(2.0) / (exp(f(2.0) * ax.clone(), o) + f(1.0));
    let signed = select(x.lt(f(0.0)), un(UnOp::Neg, big.clone()), big);
    select(ax.lt(f(0.625)), small, signed)
}

/// NaN-propagating maximum (the interpreter's `max_nan`).
fn max_nan(a: Expr, b: Expr) -> Expr {
    let nan = un(UnOp::IsNan, a.clone()).or(un(UnOp::IsNan, b.clone()));
    select(
        nan,
        Expr::F(f32::NAN),
        select(a.clone().ge(b.clone()), a, b),
    )
}

/// NaN-propagating minimum.
fn min_nan(a: Expr, b: Expr) -> Expr {
    let nan = un(UnOp::IsNan, a.clone()).or(un(UnOp::IsNan, b.clone()));
    select(
        nan,
        Expr::F(f32::NAN),
        select(a.clone().le(b.clone()), a, b),
    )
}

fn imin(a: Expr, b: Expr) -> Expr {
    bin(BinOp::Min, a, b)
}

fn imax(a: Expr, b: Expr) -> Expr {
    bin(BinOp::Max, a, b)
}

pub(crate) fn dims4(t: &TensorType) -> R<[usize; 4]> {
    match t.shape.as_slice() {
        &[a, b, c, d] => Ok([a, b, c, d]),
        _ => Err(format!("expected a rank-4 tensor, got {t}")),
    }
}

pub(crate) fn idx4(d: [usize; 4], [a, b, cc, e]: [Expr; 4]) -> Expr {
    ((a * c(d[1]) + b) * c(d[2]) + cc) * c(d[3]) + e
}

/// `(outer, extent, inner)` around `axis`.
fn split_at(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    (
        shape[..axis].iter().product(),
        shape[axis],
        shape[axis + 1..].iter().product(),
    )
}

/// Window geometry of convolutions and pools along one axis.
#[derive(Clone, Copy)]
struct Axis {
    stride: i64,
    before: i64,
    after: i64,
    dilation: i64,
}

fn axes_of(stride: [i64; 2], pad: [i64; 4], dilation: [i64; 2]) -> [Axis; 2] {
    [0, 1].map(|a| Axis {
        stride: stride[a],
        before: pad[a],
        after: pad[a + 2],
        dilation: dilation[a],
    })
}

/// Input position `o*stride - pad_before + k*dilation`.
fn tap(o: Expr, k: Expr, a: Axis) -> Expr {
    o * Expr::I(a.stride) + k * Expr::I(a.dilation) - Expr::I(a.before)
}

/// Whether `v` takes over from the running maximum `bv` (f32) in a first-maximum scan, as
/// the interpreter's `argmax` and max pooling decide: NaN beats every number and nothing
/// beats NaN; otherwise strictly greater (so ties keep the first).
fn beats(v: Var, bv: Var) -> Expr {
    un(UnOp::Not, un(UnOp::IsNan, Expr::v(bv)))
        .and(un(UnOp::IsNan, Expr::v(v)).or(Expr::v(v).gt(Expr::v(bv))))
}

/// A kernel whose buffers are `ins` then `outs`, named after the op.
fn start(
    name: &str,
    ins: &[&TensorType],
    outs: &[TensorType],
    names: &[String],
) -> (Kernel, Vec<Buf>, Vec<Buf>) {
    let mut k = Kernel::new(name);
    let ib = ins
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let n = names.get(i).cloned().unwrap_or_else(|| format!("in{i}"));
            k.buf(&n, Ty::of(t.dtype), t.numel(), false)
        })
        .collect();
    let ob = outs
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let n = names
                .get(ins.len() + i)
                .cloned()
                .unwrap_or_else(|| format!("out{i}"));
            k.buf(&n, Ty::of(t.dtype), t.numel(), true)
        })
        .collect();
    (k, ib, ob)
}

/// Fills `buf` (of `n` elements) with `v`.
fn fill(k: &mut Kernel, buf: Buf, n: usize, v: Expr) {
    let s = for_(k, "z", n, |_, i| vec![Stmt::Store(buf, i, v)]);
    k.body.push(s);
}

/// `buf[i] = buf[i] + v`.
fn accumulate(buf: Buf, i: Expr, v: Expr) -> Stmt {
    Stmt::Store(buf, i.clone(), load(buf, i) + v)
}

/// The random stream key `rng::key(seed, counter)` with the counter loaded from `counter`
/// (or 0), as statements setting an i64 variable.
fn stream_key(k: &mut Kernel, seed: i64, counter: Option<Buf>) -> Expr {
    let cnt = match counter {
        Some(b) => load(b, Expr::I(0)),
        None => Expr::I(0),
    };
    let key = k.var("key", Ty::I64);
    let mixed_seed = Expr::I(sinter_ir::rng::mix64(seed as u64) as i64);
    let v = mix64(
        k,
        bin(
            BinOp::Xor,
            mixed_seed,
            cnt * Expr::I(0xD1B5_4A32_D192_ED03_u64 as i64),
        ),
    );
    k.body.push(Stmt::Set(key, v));
    Expr::v(key)
}

/// SplitMix64's finaliser as expressions (see `sinter_ir::rng::mix64`), through variables so
/// the tree stays linear.
fn mix64(k: &mut Kernel, z: Expr) -> Expr {
    let _ = k;
    let z0 = z + Expr::I(0x9E37_79B9_7F4A_7C15_u64 as i64);
    let step = |z: Expr, sh: i64, m: u64| {
        bin(BinOp::Xor, z.clone(), bin(BinOp::Shr, z, Expr::I(sh))) * Expr::I(m as i64)
    };
    let z1 = step(z0, 30, 0xBF58_476D_1CE4_E5B9);
    let z2 = step(z1, 27, 0x94D0_49BB_1331_11EB);
    bin(BinOp::Xor, z2.clone(), bin(BinOp::Shr, z2, Expr::I(31)))
}

/// Statements computing `uniform(key, i)` into a fresh f32 variable.
fn uniform(k: &mut Kernel, key: &Expr, i: Expr) -> (Vec<Stmt>, Expr) {
    let a = k.var("h", Ty::I64);
    let b = k.var("h", Ty::I64);
    let u = k.var("u", Ty::F32);
    let mut s = Vec::new();
    s.push(Stmt::Set(a, mix64(k, i)));
    s.push(Stmt::Set(
        b,
        mix64(k, bin(BinOp::Xor, key.clone(), Expr::v(a))),
    ));
    // Three variables keep each mixer step a shared value, not a re-evaluated tree.
    let bits = bin(BinOp::Shr, Expr::v(b), Expr::I(40));
    s.push(Stmt::Set(
        u,
        un(UnOp::I64ToF32, bits) * Expr::F(1.0 / 16_777_216.0),
    ));
    (s, Expr::v(u))
}

/// Lowers one op. `names` names the buffers (inputs then outputs) for the printout.
pub fn lower_op(
    op: &Op,
    ins: &[&TensorType],
    outs: &[TensorType],
    names: &[String],
    opt: LowerOptions,
) -> R<Kernel> {
    let (mut k, ib, ob) = start(op.name(), ins, outs, names);
    let out = &outs[0];
    let o = ob[0];
    let i0 = || (ib[0], ins[0]);
    match op {
        Op::StochasticPool2d { .. } => {
            return Err("stochastic_pool2d is a composite op: expand it first \
                 (sinter_ir::expand_composites; the runtime does)"
                .to_string());
        }
        Op::Neg {}
        | Op::Exp {}
        | Op::Log {}
        | Op::Sqrt {}
        | Op::Rsqrt {}
        | Op::Abs {}
        | Op::Relu {}
        | Op::Sigmoid {}
        | Op::Tanh {}
        | Op::LeakyRelu { .. }
        | Op::Add {}
        | Op::Sub {}
        | Op::Mul {}
        | Op::Div {}
        | Op::Max {}
        | Op::Min {}
        | Op::Pow {}
        | Op::Prelu {}
        | Op::Equal {}
        | Op::Less {}
        | Op::LessEqual {}
        | Op::Greater {}
        | Op::GreaterEqual {}
        | Op::Select {}
        | Op::Cast { .. } => {
            let args: Vec<(Buf, &TensorType)> =
                ib.iter().copied().zip(ins.iter().copied()).collect();
            let dtypes: Vec<DType> = ins.iter().map(|t| t.dtype).collect();
            map(&mut k, &args, o, out, |_, a| {
                elementwise(op, &dtypes, a, opt).expect("an elementwise op")
            });
        }
        Op::Matmul {} if opt.microkernels => gemm_matmul(&mut k, ins, out, &ib, o, opt.threads),
        Op::Matmul {} => lower_matmul(&mut k, ins, out, &ib, o),
        Op::Gemm {
            trans_a,
            trans_b,
            alpha,
            beta,
        } if opt.microkernels => gemm_gemm(
            &mut k,
            ins,
            out,
            &ib,
            o,
            (*trans_a, *trans_b),
            (alpha.get(), beta.get()),
            opt.threads,
        ),
        Op::Gemm {
            trans_a,
            trans_b,
            alpha,
            beta,
        } => lower_gemm(
            &mut k,
            ins,
            out,
            &ib,
            o,
            (*trans_a, *trans_b),
            (alpha.get(), beta.get()),
        ),
        Op::Conv2d {
            stride,
            pad,
            dilation,
            groups,
        } if opt.microkernels => gemm_conv2d(
            &mut k,
            ins,
            out,
            &ib,
            o,
            axes_of(*stride, *pad, *dilation),
            *groups as usize,
            opt,
        )?,
        Op::Conv2d {
            stride,
            pad,
            dilation,
            groups,
        } => lower_conv2d(
            &mut k,
            ins,
            out,
            &ib,
            o,
            axes_of(*stride, *pad, *dilation),
            *groups as usize,
        )?,
        Op::WinogradFilter { tile, transposed } => {
            crate::winograd::filter(&mut k, ins, out, &ib, o, *tile, *transposed, opt)?
        }
        Op::WinogradInput { tile, pad } => {
            crate::winograd::input(&mut k, ins, out, &ib, o, *tile, *pad, opt)?
        }
        Op::WinogradOutput { tile, out: _ } => {
            crate::winograd::output(&mut k, ins, out, &ib, o, *tile, opt)?
        }
        Op::ConvTranspose2d {
            stride,
            pad,
            output_pad: _,
            dilation,
            groups,
        } if opt.microkernels => gemm_conv_transpose2d(
            &mut k,
            ins,
            out,
            &ib,
            o,
            axes_of(*stride, *pad, *dilation),
            *groups as usize,
            opt.threads,
        )?,
        Op::ConvTranspose2d {
            stride,
            pad,
            output_pad: _,
            dilation,
            groups,
        } => lower_conv_transpose2d(
            &mut k,
            ins,
            out,
            &ib,
            o,
            axes_of(*stride, *pad, *dilation),
            *groups as usize,
        )?,
        Op::Conv2dWeightGrad {
            kernel: _,
            stride,
            pad,
            dilation,
            groups,
        } if opt.microkernels => gemm_conv_weight_grad(
            &mut k,
            ins,
            out,
            &ib,
            o,
            axes_of(*stride, *pad, *dilation),
            *groups as usize,
            opt,
        )?,
        Op::Conv2dWeightGrad {
            kernel: _,
            stride,
            pad,
            dilation,
            groups,
        } => lower_conv_weight_grad(
            &mut k,
            ins,
            out,
            &ib,
            o,
            axes_of(*stride, *pad, *dilation),
            *groups as usize,
        )?,
        Op::MaxPool2d {
            kernel,
            stride,
            pad,
        } => lower_pool(
            &mut k,
            ins[0],
            out,
            ib[0],
            o,
            *kernel,
            axes_of(*stride, *pad, [1, 1]),
            None,
        )?,
        Op::AvgPool2d {
            kernel,
            stride,
            pad,
            count_include_pad,
        } => lower_pool(
            &mut k,
            ins[0],
            out,
            ib[0],
            o,
            *kernel,
            axes_of(*stride, *pad, [1, 1]),
            Some(*count_include_pad),
        )?,
        Op::GlobalAvgPool {} => {
            let [n, ch, h, w] = dims4(ins[0])?;
            let area = h * w;
            let s = for_(&mut k, "p", n * ch, |k, p| {
                let acc = k.var("acc", Ty::F32);
                let inner = for_(k, "j", area, |_, j| {
                    vec![Stmt::Set(
                        acc,
                        Expr::v(acc) + load(ib[0], p.clone() * c(area) + j),
                    )]
                });
                vec![
                    Stmt::Set(acc, Expr::F(0.0)),
                    inner,
                    Stmt::Store(o, p, Expr::v(acc) / Expr::F(area as f32)),
                ]
            });
            k.body.push(s);
        }
        Op::MaxPool2dGrad {
            kernel,
            stride,
            pad,
        } => lower_pool_grad(
            &mut k,
            ins,
            &ib,
            o,
            *kernel,
            axes_of(*stride, *pad, [1, 1]),
            None,
        )?,
        Op::AvgPool2dGrad {
            kernel,
            stride,
            pad,
            count_include_pad,
        } => lower_pool_grad(
            &mut k,
            ins,
            &ib,
            o,
            *kernel,
            axes_of(*stride, *pad, [1, 1]),
            Some(*count_include_pad),
        )?,
        Op::BatchNorm { eps } => {
            let (n, ch, inner) = split_at(&ins[0].shape, 1);
            let eps = eps.get();
            let s = nest(&mut k, &[n, ch, inner], "i", |_, idx| {
                let at = linear(idx, &[ch * inner, inner, 1]);
                let cc = idx[1].clone();
                let v = (load(ib[0], at.clone()) - load(ib[3], cc.clone()))
                    / un(UnOp::Sqrt, load(ib[4], cc.clone()) + Expr::F(eps))
                    * load(ib[1], cc.clone())
                    + load(ib[2], cc);
                vec![Stmt::Store(o, at, v)]
            });
            k.body.extend(s);
        }
        Op::BatchNormTrain { eps } => {
            let (n, ch, inner) = split_at(&ins[0].shape, 1);
            let count = (n * inner) as f32;
            let eps = eps.get();
            let (x, g, b) = (ib[0], ib[1], ib[2]);
            let (mean_b, var_b) = (ob[1], ob[2]);
            let s = for_(&mut k, "c", ch, |k, cc| {
                let sum = k.var("sum", Ty::F32);
                let sq = k.var("sq", Ty::F32);
                let m = k.var("mean", Ty::F32);
                let at = |idx: &[Expr]| {
                    (idx[0].clone() * c(ch) + cc.clone()) * c(inner) + idx[1].clone()
                };
                let l1 = nest(k, &[n, inner], "i", |_, idx| {
                    vec![Stmt::Set(sum, Expr::v(sum) + load(x, at(idx)))]
                });
                let l2 = nest(k, &[n, inner], "i", |k, idx| {
                    let d = k.var("d", Ty::F32);
                    vec![
                        Stmt::Set(d, load(x, at(idx)) - Expr::v(m)),
                        Stmt::Set(sq, Expr::v(sq) + Expr::v(d) * Expr::v(d)),
                    ]
                });
                let mut s = vec![Stmt::Set(sum, Expr::F(0.0))];
                s.extend(l1);
                s.push(Stmt::Set(m, Expr::v(sum) / Expr::F(count)));
                s.push(Stmt::Set(sq, Expr::F(0.0)));
                s.extend(l2);
                s.push(Stmt::Store(mean_b, cc.clone(), Expr::v(m)));
                s.push(Stmt::Store(var_b, cc, Expr::v(sq) / Expr::F(count)));
                s
            });
            k.body.push(s);
            let s = nest(&mut k, &[n, ch, inner], "i", |_, idx| {
                let at = linear(idx, &[ch * inner, inner, 1]);
                let cc = idx[1].clone();
                let v = (load(x, at.clone()) - load(mean_b, cc.clone()))
                    / un(UnOp::Sqrt, load(var_b, cc.clone()) + Expr::F(eps))
                    * load(g, cc.clone())
                    + load(b, cc);
                vec![Stmt::Store(o, at, v)]
            });
            k.body.extend(s);
        }
        Op::Softmax { axis } | Op::LogSoftmax { axis } => {
            let log = matches!(op, Op::LogSoftmax { .. });
            let axis = norm_axis(*axis, ins[0].rank())?;
            lower_softmax(&mut k, ins[0], ib[0], o, axis, log, opt);
        }
        Op::Dropout { p, seed } => {
            let key = stream_key(&mut k, *seed, ib.get(1).copied());
            let p = p.get();
            let scale = 1.0 / (1.0 - p);
            let x = ib[0];
            let s = for_(&mut k, "i", out.numel(), |k, i| {
                let (mut s, u) = uniform(k, &key, i.clone());
                s.push(Stmt::Store(
                    o,
                    i.clone(),
                    select(u.ge(Expr::F(p)), load(x, i) * Expr::F(scale), Expr::F(0.0)),
                ));
                s
            });
            k.body.push(s);
        }
        Op::RandomUniform {
            shape: _,
            low,
            high,
            seed,
        } => {
            let key = stream_key(&mut k, *seed, ib.first().copied());
            let (lo, hi) = (low.get(), high.get());
            let s = for_(&mut k, "i", out.numel(), |k, i| {
                let (mut s, u) = uniform(k, &key, i.clone());
                s.push(Stmt::Store(o, i, Expr::F(lo) + Expr::F(hi - lo) * u));
                s
            });
            k.body.push(s);
        }
        Op::RandomNormal {
            shape: _,
            mean,
            std,
            seed,
        } => {
            let key = stream_key(&mut k, *seed, ib.first().copied());
            let (mean, std) = (mean.get(), std.get());
            let s = for_(&mut k, "i", out.numel(), |k, i| {
                let (mut s, u1) = uniform(k, &key, i.clone() * Expr::I(2));
                let (s2, u2) = uniform(k, &key, i.clone() * Expr::I(2) + Expr::I(1));
                s.extend(s2);
                let r = un(UnOp::Sqrt, Expr::F(-2.0) * un(UnOp::Ln, Expr::F(1.0) - u1));
                let z = r * un(UnOp::Cos, Expr::F(std::f32::consts::TAU) * u2);
                s.push(Stmt::Store(o, i, Expr::F(mean) + Expr::F(std) * z));
                s
            });
            k.body.push(s);
        }
        Op::Bernoulli { seed } => {
            let key = stream_key(&mut k, *seed, ib.get(1).copied());
            let x = ib[0];
            let s = for_(&mut k, "i", out.numel(), |k, i| {
                let (mut s, u) = uniform(k, &key, i.clone());
                s.push(Stmt::Store(
                    o,
                    i.clone(),
                    select(u.lt(load(x, i)), Expr::F(1.0), Expr::F(0.0)),
                ));
                s
            });
            k.body.push(s);
        }
        Op::ReduceSum { axes, keepdims: _ } => lower_reduce(
            &mut k,
            ins[0],
            ib[0],
            o,
            &norm_axes(axes, ins[0].rank())?,
            0,
        ),
        Op::ReduceMean { axes, keepdims: _ } => lower_reduce(
            &mut k,
            ins[0],
            ib[0],
            o,
            &norm_axes(axes, ins[0].rank())?,
            1,
        ),
        Op::ReduceMax { axes, keepdims: _ } => lower_reduce(
            &mut k,
            ins[0],
            ib[0],
            o,
            &norm_axes(axes, ins[0].rank())?,
            2,
        ),
        Op::Argmax { axis, keepdims: _ } => {
            let axis = norm_axis(*axis, ins[0].rank())?;
            let (outer, d, inner) = split_at(&ins[0].shape, axis);
            let is_f = ins[0].dtype == DType::F32;
            let ty = Ty::of(ins[0].dtype);
            let x = ib[0];
            let s = nest(&mut k, &[outer, inner], "i", |k, idx| {
                let at = |j: Expr| (idx[0].clone() * c(d) + j) * c(inner) + idx[1].clone();
                let best = k.var("best", Ty::I64);
                let bv = k.var("bv", ty);
                let scan = for_(k, "j", d.saturating_sub(1), |k, j| {
                    let j = j + Expr::I(1);
                    let a = k.var("a", ty);
                    let beats = if is_f {
                        beats(a, bv)
                    } else {
                        Expr::v(a).gt(Expr::v(bv))
                    };
                    vec![
                        Stmt::Set(a, load(x, at(j.clone()))),
                        Stmt::If(
                            beats,
                            vec![Stmt::Set(best, j), Stmt::Set(bv, Expr::v(a))],
                            vec![],
                        ),
                    ]
                });
                let mut s = vec![Stmt::Set(best, Expr::I(0))];
                if d > 0 {
                    s.push(Stmt::Set(bv, load(x, at(Expr::I(0)))));
                    s.push(scan);
                }
                s.push(Stmt::Store(
                    o,
                    idx[0].clone() * c(inner) + idx[1].clone(),
                    Expr::v(best),
                ));
                s
            });
            k.body.extend(s);
        }
        Op::Reshape { shape: _ } | Op::Flatten { axis: _ } => {
            map(&mut k, &[(ib[0], out)], o, out, |_, a| a[0].clone());
        }
        Op::Transpose { perm } => {
            let perm = norm_axes(perm, ins[0].rank())?;
            let ist = strides(&ins[0].shape);
            let st: Vec<usize> = perm.iter().map(|&a| ist[a]).collect();
            let s = nest(&mut k, &out.shape, "i", |_, idx| {
                vec![Stmt::Store(
                    o,
                    linear(idx, &strides(&out.shape)),
                    load(ib[0], linear(idx, &st)),
                )]
            });
            k.body.extend(s);
        }
        Op::Broadcast { shape: _ } => map(&mut k, &[i0()], o, out, |_, a| a[0].clone()),
        Op::Concat { axis } => {
            let axis = norm_axis(*axis, ins[0].rank())?;
            let ost = strides(&out.shape);
            let mut start = 0usize;
            for (p, t) in ins.iter().enumerate() {
                let s = nest(&mut k, &t.shape, "i", |_, idx| {
                    let mut oi = idx.to_vec();
                    oi[axis] = oi[axis].clone() + c(start);
                    vec![Stmt::Store(
                        o,
                        linear(&oi, &ost),
                        load(ib[p], linear(idx, &strides(&t.shape))),
                    )]
                });
                k.body.extend(s);
                start += t.shape[axis];
            }
        }
        Op::Split { axis, sizes: _ } => {
            let axis = norm_axis(*axis, ins[0].rank())?;
            let ist = strides(&ins[0].shape);
            let mut start = 0usize;
            for (p, t) in outs.iter().enumerate() {
                let s = nest(&mut k, &t.shape, "i", |_, idx| {
                    let mut ii = idx.to_vec();
                    ii[axis] = ii[axis].clone() + c(start);
                    vec![Stmt::Store(
                        ob[p],
                        linear(idx, &strides(&t.shape)),
                        load(ib[0], linear(&ii, &ist)),
                    )]
                });
                k.body.extend(s);
                start += t.shape[axis];
            }
        }
        Op::Slice {
            axes,
            starts,
            ends: _,
            steps,
        } => {
            let axes = norm_axes(axes, ins[0].rank())?;
            let ist = strides(&ins[0].shape);
            let mut st: Vec<usize> = ist.to_vec();
            let mut offset = 0usize;
            for (i, &a) in axes.iter().enumerate() {
                let (s0, _) = slice_bounds(starts[i], 0, ins[0].shape[a]);
                offset += s0 * ist[a];
                st[a] = ist[a] * steps[i] as usize;
            }
            let s = nest(&mut k, &out.shape, "i", |_, idx| {
                vec![Stmt::Store(
                    o,
                    linear(idx, &strides(&out.shape)),
                    load(ib[0], linear(idx, &st) + c(offset)),
                )]
            });
            k.body.extend(s);
        }
        Op::Pad { pads, value } => {
            fill(&mut k, o, out.numel(), Expr::F(value.get()));
            let ost = strides(&out.shape);
            let r = ins[0].rank();
            let s = nest(&mut k, &ins[0].shape, "i", |_, idx| {
                let oi: Vec<Expr> = (0..r).map(|a| idx[a].clone() + Expr::I(pads[a])).collect();
                vec![Stmt::Store(
                    o,
                    linear(&oi, &ost),
                    load(ib[0], linear(idx, &strides(&ins[0].shape))),
                )]
            });
            k.body.extend(s);
        }
        Op::Gather { axis } => {
            let axis = norm_axis(*axis, ins[0].rank())?;
            let (outer, extent, inner) = split_at(&ins[0].shape, axis);
            let npos = ins[1].numel();
            let (data, ix) = (ib[0], ib[1]);
            let code = k.error(format!(
                "gather index out of range for axis {axis} of extent {extent}"
            ));
            let s = nest(&mut k, &[outer, npos], "i", |k, idx| {
                let row = k.var("row", Ty::I64);
                let copy = for_(k, "j", inner, |_, j| {
                    vec![Stmt::Store(
                        o,
                        (idx[0].clone() * c(npos) + idx[1].clone()) * c(inner) + j.clone(),
                        load(
                            data,
                            (idx[0].clone() * c(extent) + Expr::v(row)) * c(inner) + j,
                        ),
                    )]
                });
                vec![
                    Stmt::Set(row, load(ix, idx[1].clone())),
                    Stmt::Set(
                        row,
                        select(
                            Expr::v(row).lt(Expr::I(0)),
                            Expr::v(row) + c(extent),
                            Expr::v(row),
                        ),
                    ),
                    Stmt::Check(Expr::v(row).in_range(extent as i64), code),
                    copy,
                ]
            });
            k.body.extend(s);
        }
        Op::OneHot { depth } => {
            fill(&mut k, o, out.numel(), Expr::F(0.0));
            let d = *depth;
            let s = for_(&mut k, "r", ins[0].numel(), |k, r| {
                let v = k.var("ix", Ty::I64);
                vec![
                    Stmt::Set(v, load(ib[0], r.clone())),
                    Stmt::If(
                        Expr::v(v).in_range(d),
                        vec![Stmt::Store(o, r * Expr::I(d) + Expr::v(v), Expr::F(1.0))],
                        vec![],
                    ),
                ]
            });
            k.body.push(s);
        }
        Op::ScatterAdd { axis, extent: _ } => {
            let axis = norm_axis(*axis, out.rank())?;
            let (outer, extent, inner) = split_at(&out.shape, axis);
            let (ix, upd) = (ib[0], ib[1]);
            let npos = ins[0].numel();
            let code = k.error(format!(
                "scatter_add index out of range for axis {axis} of extent {extent}"
            ));
            // Check every index before touching the output, as the interpreter does.
            let s = for_(&mut k, "p", npos, |_, p| {
                vec![Stmt::Check(
                    {
                        let i = load(ix, p);
                        let row = select(i.clone().lt(Expr::I(0)), i.clone() + c(extent), i);
                        row.in_range(extent as i64)
                    },
                    code,
                )]
            });
            k.body.push(s);
            fill(&mut k, o, out.numel(), Expr::F(0.0));
            let s = for_(&mut k, "p", npos, |k, p| {
                let row = k.var("row", Ty::I64);
                let inner_loops = nest(k, &[outer, inner], "i", |_, idx| {
                    vec![accumulate(
                        o,
                        (idx[0].clone() * c(extent) + Expr::v(row)) * c(inner) + idx[1].clone(),
                        load(
                            upd,
                            (idx[0].clone() * c(npos) + p.clone()) * c(inner) + idx[1].clone(),
                        ),
                    )]
                });
                let mut s = vec![
                    Stmt::Set(row, load(ix, p)),
                    Stmt::Set(
                        row,
                        select(
                            Expr::v(row).lt(Expr::I(0)),
                            Expr::v(row) + c(extent),
                            Expr::v(row),
                        ),
                    ),
                ];
                s.extend(inner_loops);
                s
            });
            k.body.push(s);
        }
    }
    Ok(k)
}

/// The scalar expression of a pure elementwise op (unary, binary, compare, `select`, `cast`)
/// applied to `args` (the operands' elements, `dtypes` their types); `None` for other ops.
/// Shared by [`lower_op`] and the fusion pass, so a fused chain computes exactly what the
/// separate kernels would.
pub fn elementwise(op: &Op, dtypes: &[DType], args: Vec<Expr>, opt: LowerOptions) -> Option<Expr> {
    let mut a = args.into_iter();
    let mut next = || a.next().unwrap_or(Expr::F(0.0));
    let zero = || Expr::F(0.0);
    Some(match op {
        Op::Neg {} => un(UnOp::Neg, next()),
        Op::Exp {} => exp(next(), opt),
        Op::Log {} => un(UnOp::Ln, next()),
        Op::Sqrt {} => un(UnOp::Sqrt, next()),
        Op::Rsqrt {} => Expr::F(1.0) / un(UnOp::Sqrt, next()),
        Op::Abs {} => un(UnOp::Abs, next()),
        Op::Relu {} => {
            let x = next();
            select(x.clone().lt(zero()), zero(), x)
        }
        Op::Sigmoid {} => Expr::F(1.0) / (Expr::F(1.0) + exp(un(UnOp::Neg, next()), opt)),
        Op::Tanh {} if opt.fast_math => fast_tanh(next(), opt),
        Op::Tanh {} => un(UnOp::Tanh, next()),
        Op::LeakyRelu { alpha } => {
            let x = next();
            select(x.clone().ge(zero()), x.clone(), Expr::F(alpha.get()) * x)
        }
        Op::Add {} => next() + next(),
        Op::Sub {} => next() - next(),
        Op::Mul {} => next() * next(),
        Op::Div {} => next() / next(),
        Op::Max {} => max_nan(next(), next()),
        Op::Min {} => min_nan(next(), next()),
        Op::Pow {} => bin(BinOp::Pow, next(), next()),
        Op::Prelu {} => {
            let (x, s) = (next(), next());
            select(x.clone().ge(zero()), x.clone(), s * x)
        }
        Op::Equal {} => bin(BinOp::Eq, next(), next()),
        Op::Less {} => bin(BinOp::Lt, next(), next()),
        Op::LessEqual {} => bin(BinOp::Le, next(), next()),
        Op::Greater {} => bin(BinOp::Gt, next(), next()),
        Op::GreaterEqual {} => bin(BinOp::Ge, next(), next()),
        Op::Select {} => select(next(), next(), next()),
        Op::Cast { to } => cast(next(), *dtypes.first()?, *to),
        Op::Matmul {}
        | Op::Gemm { .. }
        | Op::Conv2d { .. }
        | Op::ConvTranspose2d { .. }
        | Op::Conv2dWeightGrad { .. }
        | Op::WinogradFilter { .. }
        | Op::WinogradInput { .. }
        | Op::WinogradOutput { .. }
        | Op::MaxPool2d { .. }
        | Op::AvgPool2d { .. }
        | Op::GlobalAvgPool {}
        | Op::MaxPool2dGrad { .. }
        | Op::AvgPool2dGrad { .. }
        | Op::BatchNorm { .. }
        | Op::BatchNormTrain { .. }
        | Op::Softmax { .. }
        | Op::LogSoftmax { .. }
        | Op::Dropout { .. }
        | Op::RandomUniform { .. }
        | Op::RandomNormal { .. }
        | Op::Bernoulli { .. }
        | Op::StochasticPool2d { .. }
        | Op::ReduceSum { .. }
        | Op::ReduceMean { .. }
        | Op::ReduceMax { .. }
        | Op::Argmax { .. }
        | Op::Reshape { .. }
        | Op::Transpose { .. }
        | Op::Broadcast { .. }
        | Op::Concat { .. }
        | Op::Split { .. }
        | Op::Slice { .. }
        | Op::Pad { .. }
        | Op::Flatten { .. }
        | Op::Gather { .. }
        | Op::OneHot { .. }
        | Op::ScatterAdd { .. } => return None,
    })
}

fn cast(x: Expr, from: DType, to: DType) -> Expr {
    match (from, to) {
        (DType::F32, DType::F32) | (DType::I64, DType::I64) | (DType::Bool, DType::Bool) => x,
        (DType::F32, DType::I64) => un(UnOp::F32ToI64, x),
        (DType::F32, DType::Bool) => un(UnOp::F32ToBool, x),
        (DType::I64, DType::F32) => un(UnOp::I64ToF32, x),
        (DType::I64, DType::Bool) => un(UnOp::I64ToBool, x),
        (DType::Bool, DType::F32) => un(UnOp::BoolToF32, x),
        (DType::Bool, DType::I64) => un(UnOp::BoolToI64, x),
    }
}

fn mat(buf: Buf, offset: Expr, rs: usize, cs: usize) -> MatArg {
    MatArg {
        buf,
        offset,
        rs: rs as i64,
        cs: cs as i64,
    }
}

fn gemm_matmul(
    k: &mut Kernel,
    ins: &[&TensorType],
    out: &TensorType,
    ib: &[Buf],
    o: Buf,
    threads: usize,
) {
    let (a, b) = (ins[0], ins[1]);
    let (ar, br, or) = (a.rank(), b.rank(), out.rank());
    let (m, kk) = (a.shape[ar - 2], a.shape[ar - 1]);
    let n = b.shape[br - 1];
    let batch = &out.shape[..or - 2];
    let s = nest(k, batch, "b", |_, bidx| {
        let pa = bcast_index(bidx, &a.shape[..ar - 2], batch);
        let pb = bcast_index(bidx, &b.shape[..br - 2], batch);
        let po = linear(bidx, &strides(batch));
        vec![Stmt::Gemm(Box::new(GemmCall {
            m,
            n,
            k: kk,
            alpha: 1.0,
            beta: 0.0,
            a: mat(ib[0], pa * c(m * kk), kk, 1),
            b: mat(ib[1], pb * c(kk * n), n, 1),
            c: mat(o, po * c(m * n), n, 1),
            threads,
            epilogue: GemmEpilogue::default(),
            im2col: None,
            a_packed: false,
            b_packed: false,
        }))]
    });
    k.body.extend(s);
}

#[allow(clippy::too_many_arguments)]
fn gemm_gemm(
    k: &mut Kernel,
    ins: &[&TensorType],
    out: &TensorType,
    ib: &[Buf],
    o: Buf,
    (ta, tb): (bool, bool),
    (alpha, beta): (f32, f32),
    threads: usize,
) {
    let (m, n) = (out.shape[0], out.shape[1]);
    let kk = if ta { ins[0].shape[0] } else { ins[0].shape[1] };
    let mut epilogue = GemmEpilogue::default();
    let beta = match ins.get(2) {
        // With beta 1, C (broadcast) is the driver's bias: added per tile, no copy.
        Some(ct) if beta == 1.0 => {
            let cs: Vec<usize> = std::iter::repeat_n(1, 2 - ct.rank().min(2))
                .chain(ct.shape.iter().copied())
                .collect();
            let rs = if cs[0] == 1 { 0 } else { cs[1] };
            let cstride = usize::from(cs[1] != 1);
            epilogue.bias = Some(mat(ib[2], Expr::I(0), rs, cstride));
            0.0
        }
        Some(ct) => {
            // C first (broadcast), then the driver accumulates into it.
            map(k, &[(ib[2], ct)], o, out, |_, a| a[0].clone());
            beta
        }
        None => 0.0,
    };
    let a = if ta {
        mat(ib[0], Expr::I(0), 1, m)
    } else {
        mat(ib[0], Expr::I(0), kk, 1)
    };
    let b = if tb {
        mat(ib[1], Expr::I(0), 1, kk)
    } else {
        mat(ib[1], Expr::I(0), n, 1)
    };
    k.body.push(Stmt::Gemm(Box::new(GemmCall {
        m,
        n,
        k: kk,
        alpha,
        beta,
        a,
        b,
        c: mat(o, Expr::I(0), n, 1),
        threads,
        epilogue,
        im2col: None,
        a_packed: false,
        b_packed: false,
    })));
}

/// conv2d as GEMM per image and group: `y[g] = w[g] (C_out/g x C_in/g*kH*kW) * col`, where
/// `col` is the im2col matrix: implicit for a large one (the driver packs its blocks straight
/// from the image, [`Im2col`]), built in a scratch buffer for a small one (see
/// [`IMPLICIT_IM2COL_BYTES`]); or the input itself for 1x1 stride-1 unpadded convolutions.
/// The bias is the driver's epilogue.
#[allow(clippy::too_many_arguments)]
fn gemm_conv2d(
    k: &mut Kernel,
    ins: &[&TensorType],
    out: &TensorType,
    ib: &[Buf],
    o: Buf,
    ax: [Axis; 2],
    groups: usize,
    opt: LowerOptions,
) -> R<()> {
    let threads = opt.threads;
    let xd = dims4(ins[0])?;
    let wd = dims4(ins[1])?;
    let od = dims4(out)?;
    let [n, _, h, w] = xd;
    let [c_out, cig, kh, kw] = wd;
    let [_, _, oh, ow] = od;
    let groups = groups.max(1);
    let cog = c_out / groups;
    let kdim = cig * kh * kw;
    let ohw = oh * ow;
    let (cols, col) = im2col_choice(k, ax, [cig, h, w], [kh, kw], [oh, ow], false, opt);
    let (x, wb) = (ib[0], ib[1]);
    let s = nest(k, &[n, groups], "g", |k, bg| {
        let (b, g) = (bg[0].clone(), bg[1].clone());
        let mut s = Vec::new();
        let (build, bmat) = conv_b(
            k,
            (x, xd),
            col,
            (&b, &g),
            [cig, kh, kw],
            [oh, ow],
            ax,
            false,
        );
        s.extend(build);
        s.push(Stmt::Gemm(Box::new(GemmCall {
            m: cog,
            n: ohw,
            k: kdim,
            alpha: 1.0,
            beta: 0.0,
            a: mat(wb, g.clone() * c(cog * kdim), kdim, 1),
            b: bmat,
            c: mat(o, (b * c(c_out) + g.clone() * c(cog)) * c(ohw), ohw, 1),
            threads,
            epilogue: GemmEpilogue {
                // One bias value per row of C (an output channel of this group).
                bias: ib.get(2).map(|&bb| mat(bb, g * c(cog), 1, 0)),
                act: None,
            },
            im2col: cols.clone(),
            a_packed: false,
            b_packed: false,
        })));
        s
    });
    k.body.extend(s);
    Ok(())
}

/// conv2d's weight gradient as GEMM per image and group, accumulated over the batch:
/// `dw[g] (C_out/g x C_in/g*kH*kW) += dy[b, g] (C_out/g x oH*oW) * col^T`, where `col` is the
/// forward conv's im2col matrix of image `b`, implicit or built as in [`gemm_conv2d`] (or the
/// input itself for 1x1 stride-1 unpadded convolutions), read transposed.
#[allow(clippy::too_many_arguments)]
fn gemm_conv_weight_grad(
    k: &mut Kernel,
    ins: &[&TensorType],
    out: &TensorType,
    ib: &[Buf],
    o: Buf,
    ax: [Axis; 2],
    groups: usize,
    opt: LowerOptions,
) -> R<()> {
    let threads = opt.threads;
    let xd = dims4(ins[0])?;
    let dd = dims4(ins[1])?;
    let wd = dims4(out)?;
    let [n, _, h, w] = xd;
    let [_, c_out, oh, ow] = dd;
    let [_, cig, kh, kw] = wd;
    let groups = groups.max(1);
    let cog = c_out / groups;
    let kdim = cig * kh * kw;
    let ohw = oh * ow;
    let (cols, col) = im2col_choice(k, ax, [cig, h, w], [kh, kw], [oh, ow], true, opt);
    fill(k, o, out.numel(), Expr::F(0.0));
    let (x, dy) = (ib[0], ib[1]);
    let s = nest(k, &[n, groups], "g", |k, bg| {
        let (b, g) = (bg[0].clone(), bg[1].clone());
        let mut s = Vec::new();
        // B = col^T: element (p, q) is col[q, p].
        let (build, bmat) = conv_b(k, (x, xd), col, (&b, &g), [cig, kh, kw], [oh, ow], ax, true);
        s.extend(build);
        s.push(Stmt::Gemm(Box::new(GemmCall {
            m: cog,
            n: kdim,
            k: ohw,
            alpha: 1.0,
            beta: 1.0,
            a: mat(dy, (b * c(c_out) + g.clone() * c(cog)) * c(ohw), ohw, 1),
            b: bmat,
            c: mat(o, g * c(cog * kdim), kdim, 1),
            threads,
            epilogue: GemmEpilogue::default(),
            im2col: cols.clone(),
            a_packed: false,
            b_packed: false,
        })));
        s
    });
    k.body.extend(s);
    Ok(())
}

/// For kernel tap `kx` along axis `a`: the input position of output `o` is `o * stride +
/// shift`, and it lies inside `[0, extent)` exactly for outputs `o` in `lo..hi` (clamped to
/// `0..outs`). Returns `(shift, lo, hi)`: the compile-time split that im2col and max pooling
/// use instead of a test per element.
fn tap_range(kx: i64, a: Axis, extent: usize, outs: usize) -> (i64, i64, i64) {
    let shift = kx * a.dilation - a.before;
    // ceil(-shift / stride) for stride > 0.
    let lo = (-(shift.div_euclid(a.stride))).clamp(0, outs as i64);
    let hi = ((extent as i64 - 1 - shift).div_euclid(a.stride) + 1).clamp(lo, outs as i64);
    (shift, lo, hi)
}

/// The B operand of a convolution's GEMM for batch element `b` and group `g` (B = col, or
/// col^T when `transposed`: a weight gradient's), and the statements that build it: the image
/// itself (for a 1x1 stride-1 unpadded convolution, or as the image of an implicit im2col
/// operand), or `col`, the scratch matrix that [`im2col`] fills.
#[allow(clippy::too_many_arguments)]
fn conv_b(
    k: &mut Kernel,
    (x, xd): (Buf, [usize; 4]),
    col: Option<Buf>,
    (b, g): (&Expr, &Expr),
    [cig, kh, kw]: [usize; 3],
    [oh, ow]: [usize; 2],
    ax: [Axis; 2],
    transposed: bool,
) -> (Vec<Stmt>, MatArg) {
    let [_, c_in, h, w] = xd;
    // A matrix of `rows x cols`, read transposed if so asked.
    let m = |buf: Buf, offset: Expr, rows: usize| {
        if transposed {
            mat(buf, offset, 1, rows)
        } else {
            mat(buf, offset, rows, 1)
        }
    };
    match col {
        None => (
            Vec::new(),
            m(
                x,
                (b.clone() * c(c_in) + g.clone() * c(cig)) * c(h * w),
                h * w,
            ),
        ),
        Some(col) => (
            im2col(
                k,
                (x, xd),
                col,
                (b.clone(), g.clone() * c(cig)),
                [cig, kh, kw],
                [oh, ow],
                ax,
            ),
            m(col, Expr::I(0), oh * ow),
        ),
    }
}

/// Im2col matrices up to this size are built explicitly (the default of
/// [`LowerOptions::implicit_im2col_bytes`]), larger ones packed by the driver
/// straight from the image. The JIT's im2col (compile-time ranges, `kx` unrolled, four lanes
/// at a time) costs less per element than the driver's packing, whose per-run bookkeeping
/// dominates on small images (LeNet's 10x10 outputs: a conv 0.71 -> 1.31 ms implicit); a
/// large matrix, though, is written and read back through memory (64 channels at 56x56: 7 MB,
/// 7.8 -> 5.3 ms implicit). Measured crossover about 1 MiB (a 1.1 MB matrix: level).
const IMPLICIT_IM2COL_BYTES: usize = 1 << 20;

/// How a convolution's GEMM gets its im2col operand: `(Some(implicit), None)` packed by the
/// driver from the image, `(None, Some(col))` built in the scratch buffer `col` by
/// [`im2col`], or `(None, None)` for a 1x1 stride-1 unpadded convolution (B is the image).
fn im2col_choice(
    k: &mut Kernel,
    ax: [Axis; 2],
    image: [usize; 3],
    kernel: [usize; 2],
    out: [usize; 2],
    transposed: bool,
    opt: LowerOptions,
) -> (Option<Im2col>, Option<Buf>) {
    match im2col_of(ax, image, kernel, out, transposed) {
        Some(i) if i.channels * i.kh * i.kw * i.oh * i.ow * 4 <= opt.implicit_im2col_bytes => {
            let len = i.channels * i.kh * i.kw * i.oh * i.ow;
            (None, Some(k.scratch("col", Ty::F32, len)))
        }
        geo => (geo, None),
    }
}

/// The implicit im2col operand of a convolution's GEMM (or of its weight gradient's, then
/// `transposed`), or `None` for a 1x1 stride-1 unpadded convolution, whose B is the image
/// itself. The verifier guarantees strides and dilations >= 1 and pads >= 0, the geometry the
/// driver's packing takes.
fn im2col_of(
    ax: [Axis; 2],
    [channels, h, w]: [usize; 3],
    [kh, kw]: [usize; 2],
    [oh, ow]: [usize; 2],
    transposed: bool,
) -> Option<Im2col> {
    let direct = kh == 1
        && kw == 1
        && ax
            .iter()
            .all(|a| a.stride == 1 && a.before == 0 && a.after == 0);
    (!direct).then(|| Im2col {
        channels,
        h,
        w,
        kh,
        kw,
        stride: ax.map(|a| a.stride as usize),
        pad: ax.map(|a| a.before as usize),
        dilation: ax.map(|a| a.dilation as usize),
        oh,
        ow,
        transposed,
    })
}

/// The im2col matrix of one image and group: row `(ci, ky, kx)` (the weight's `K` order),
/// column `(oy, ox)`, holding `x[b, c0 + ci, iy, ix]` or 0 in the padding.
///
/// The kernel's `kx` is unrolled, so that along each row the columns whose `ix` is inside the
/// image form one range known at compile time: a copy loop (with stride 1, four lanes at a
/// time) between two zero-fill loops, and no test per element. A row whose `iy` falls in the
/// padding is zero-filled whole.
fn im2col(
    k: &mut Kernel,
    (x, xd): (Buf, [usize; 4]),
    col: Buf,
    (b, c0): (Expr, Expr),
    [cig, kh, kw]: [usize; 3],
    [oh, ow]: [usize; 2],
    ax: [Axis; 2],
) -> Vec<Stmt> {
    let [_, _, h, w] = xd;
    let (ohw, ay, a) = (oh * ow, ax[0], ax[1]);
    let mut out = Vec::new();
    for kx in 0..kw as i64 {
        // ix = ox * stride + kx * dilation - before lies in [0, w) for ox in [lo, hi).
        let (shift, lo, hi) = tap_range(kx, a, w, ow);
        let rows = nest(k, &[cig, kh, oh], "r", |k, r| {
            let (ci, ky, oy) = (r[0].clone(), r[1].clone(), r[2].clone());
            let iy = k.var("iy", Ty::I64);
            let base = ((ci.clone() * c(kh) + ky.clone()) * c(kw) + Expr::I(kx)) * c(ohw)
                + oy.clone() * c(ow);
            let zeros = |k: &mut Kernel, from: i64, n: i64| -> Option<Stmt> {
                (n > 0).then(|| {
                    for_(k, "z", n as usize, |_, v| {
                        vec![Stmt::Store(
                            col,
                            base.clone() + Expr::I(from) + v,
                            Expr::F(0.0),
                        )]
                    })
                })
            };
            let mut inside: Vec<Stmt> = zeros(k, 0, lo).into_iter().collect();
            if hi > lo {
                let xrow = idx4(xd, [b.clone(), c0.clone() + ci, Expr::v(iy), Expr::I(0)]);
                inside.push(for_(k, "ox", (hi - lo) as usize, |_, v| {
                    let ox = Expr::I(lo) + v.clone();
                    vec![Stmt::Store(
                        col,
                        base.clone() + Expr::I(lo) + v,
                        load(x, xrow + ox * Expr::I(a.stride) + Expr::I(shift)),
                    )]
                }));
            }
            inside.extend(zeros(k, hi, ow as i64 - hi));
            let outside: Vec<Stmt> = zeros(k, 0, ow as i64).into_iter().collect();
            vec![
                Stmt::Set(iy, tap(oy, ky, ay)),
                Stmt::If(Expr::v(iy).in_range(h as i64), inside, outside),
            ]
        });
        out.extend(rows);
    }
    out
}

fn lower_matmul(k: &mut Kernel, ins: &[&TensorType], out: &TensorType, ib: &[Buf], o: Buf) {
    let (a, b) = (ins[0], ins[1]);
    let (ar, br, or) = (a.rank(), b.rank(), out.rank());
    let (m, kk) = (a.shape[ar - 2], a.shape[ar - 1]);
    let n = b.shape[br - 1];
    let batch = &out.shape[..or - 2];
    let s = nest(k, batch, "b", |k, bidx| {
        let pa = bcast_index(bidx, &a.shape[..ar - 2], batch);
        let pb = bcast_index(bidx, &b.shape[..br - 2], batch);
        let po = linear(bidx, &strides(batch));
        nest(k, &[m, n], "i", |k, idx| {
            let acc = k.var("acc", Ty::F32);
            let (i, j) = (idx[0].clone(), idx[1].clone());
            let red = for_(k, "k", kk, |_, r| {
                let av = load(
                    ib[0],
                    pa.clone() * c(m * kk) + i.clone() * c(kk) + r.clone(),
                );
                let bv = load(ib[1], pb.clone() * c(kk * n) + r * c(n) + j.clone());
                vec![Stmt::Set(acc, Expr::v(acc) + av * bv)]
            });
            vec![
                Stmt::Set(acc, Expr::F(0.0)),
                red,
                Stmt::Store(o, po.clone() * c(m * n) + i * c(n) + j, Expr::v(acc)),
            ]
        })
    });
    k.body.extend(s);
}

fn lower_gemm(
    k: &mut Kernel,
    ins: &[&TensorType],
    out: &TensorType,
    ib: &[Buf],
    o: Buf,
    (ta, tb): (bool, bool),
    (alpha, beta): (f32, f32),
) {
    let (m, n) = (out.shape[0], out.shape[1]);
    let kk = if ta { ins[0].shape[0] } else { ins[0].shape[1] };
    let s = nest(k, &[m, n], "i", |k, idx| {
        let acc = k.var("acc", Ty::F32);
        let (i, j) = (idx[0].clone(), idx[1].clone());
        let red = for_(k, "k", kk, |_, r| {
            let ai = if ta {
                r.clone() * c(m) + i.clone()
            } else {
                i.clone() * c(kk) + r.clone()
            };
            let bi = if tb {
                j.clone() * c(kk) + r
            } else {
                r * c(n) + j.clone()
            };
            vec![Stmt::Set(
                acc,
                Expr::v(acc) + load(ib[0], ai) * load(ib[1], bi),
            )]
        });
        let v = match ins.get(2) {
            Some(ct) => {
                Expr::F(alpha) * Expr::v(acc)
                    + Expr::F(beta) * load(ib[2], bcast_index(idx, &ct.shape, &out.shape))
            }
            None => Expr::F(alpha) * Expr::v(acc),
        };
        vec![
            Stmt::Set(acc, Expr::F(0.0)),
            red,
            Stmt::Store(o, i * c(n) + j, v),
        ]
    });
    k.body.extend(s);
}

fn lower_conv2d(
    k: &mut Kernel,
    ins: &[&TensorType],
    out: &TensorType,
    ib: &[Buf],
    o: Buf,
    ax: [Axis; 2],
    groups: usize,
) -> R<()> {
    let xd = dims4(ins[0])?;
    let wd = dims4(ins[1])?;
    let od = dims4(out)?;
    let [_, _, h, w] = xd;
    let [c_out, cig, kh, kw] = wd;
    let cog = c_out / groups.max(1);
    let (x, wb) = (ib[0], ib[1]);
    let bias = ib.get(2).copied();
    let s = nest(k, &od, "o", |k, idx| {
        let acc = k.var("acc", Ty::F32);
        let (b, co, oy, ox) = (
            idx[0].clone(),
            idx[1].clone(),
            idx[2].clone(),
            idx[3].clone(),
        );
        let red = nest(k, &[cig, kh, kw], "r", |k, r| {
            let iy = k.var("iy", Ty::I64);
            let ix = k.var("ix", Ty::I64);
            let ci = co.clone() / c(cog) * c(cig) + r[0].clone();
            let xi = idx4(xd, [b.clone(), ci, Expr::v(iy), Expr::v(ix)]);
            let wi = idx4(wd, [co.clone(), r[0].clone(), r[1].clone(), r[2].clone()]);
            vec![
                Stmt::Set(iy, tap(oy.clone(), r[1].clone(), ax[0])),
                Stmt::Set(ix, tap(ox.clone(), r[2].clone(), ax[1])),
                Stmt::If(
                    Expr::v(iy)
                        .in_range(h as i64)
                        .and(Expr::v(ix).in_range(w as i64)),
                    vec![Stmt::Set(acc, Expr::v(acc) + load(x, xi) * load(wb, wi))],
                    vec![],
                ),
            ]
        });
        let mut s = vec![Stmt::Set(acc, Expr::F(0.0))];
        s.extend(red);
        let v = match bias {
            Some(bb) => Expr::v(acc) + load(bb, co.clone()),
            None => Expr::v(acc),
        };
        s.push(Stmt::Store(o, idx4(od, [b, co, oy, ox]), v));
        s
    });
    k.body.extend(s);
    Ok(())
}

fn lower_conv_weight_grad(
    k: &mut Kernel,
    ins: &[&TensorType],
    out: &TensorType,
    ib: &[Buf],
    o: Buf,
    ax: [Axis; 2],
    groups: usize,
) -> R<()> {
    let xd = dims4(ins[0])?;
    let dd = dims4(ins[1])?;
    let wd = dims4(out)?;
    let [n, _, h, w] = xd;
    let [_, _, oh, ow] = dd;
    let [c_out, cig, _, _] = wd;
    let cog = c_out / groups.max(1);
    let (x, dy) = (ib[0], ib[1]);
    let s = nest(k, &wd, "w", |k, idx| {
        let acc = k.var("acc", Ty::F32);
        let (co, cl, ky, kx) = (
            idx[0].clone(),
            idx[1].clone(),
            idx[2].clone(),
            idx[3].clone(),
        );
        let red = nest(k, &[n, oh, ow], "r", |k, r| {
            let iy = k.var("iy", Ty::I64);
            let ix = k.var("ix", Ty::I64);
            let ci = co.clone() / c(cog) * c(cig) + cl.clone();
            let xi = idx4(xd, [r[0].clone(), ci, Expr::v(iy), Expr::v(ix)]);
            let di = idx4(dd, [r[0].clone(), co.clone(), r[1].clone(), r[2].clone()]);
            vec![
                Stmt::Set(iy, tap(r[1].clone(), ky.clone(), ax[0])),
                Stmt::Set(ix, tap(r[2].clone(), kx.clone(), ax[1])),
                Stmt::If(
                    Expr::v(iy)
                        .in_range(h as i64)
                        .and(Expr::v(ix).in_range(w as i64)),
                    vec![Stmt::Set(acc, Expr::v(acc) + load(dy, di) * load(x, xi))],
                    vec![],
                ),
            ]
        });
        let mut s = vec![Stmt::Set(acc, Expr::F(0.0))];
        s.extend(red);
        s.push(Stmt::Store(o, idx4(wd, [co, cl, ky, kx]), Expr::v(acc)));
        s
    });
    k.body.extend(s);
    Ok(())
}

fn lower_conv_transpose2d(
    k: &mut Kernel,
    ins: &[&TensorType],
    out: &TensorType,
    ib: &[Buf],
    o: Buf,
    ax: [Axis; 2],
    groups: usize,
) -> R<()> {
    // The interpreter's scatter form, in its order, so sums agree exactly.
    let xd = dims4(ins[0])?;
    let wd = dims4(ins[1])?;
    let od = dims4(out)?;
    let [_, c_in, _, _] = xd;
    let [_, cog, kh, kw] = wd;
    let [_, _, oh, ow] = od;
    let cig = c_in / groups.max(1);
    let (x, wb) = (ib[0], ib[1]);
    fill(k, o, out.numel(), Expr::F(0.0));
    let s = nest(k, &xd, "i", |k, idx| {
        let v = k.var("v", Ty::F32);
        let (b, ci, iy, ix) = (
            idx[0].clone(),
            idx[1].clone(),
            idx[2].clone(),
            idx[3].clone(),
        );
        let inner = nest(k, &[cog, kh, kw], "r", |k, r| {
            let oy = k.var("oy", Ty::I64);
            let ox = k.var("ox", Ty::I64);
            let co = ci.clone() / c(cig) * c(cog) + r[0].clone();
            let oi = idx4(od, [b.clone(), co, Expr::v(oy), Expr::v(ox)]);
            let wi = idx4(wd, [ci.clone(), r[0].clone(), r[1].clone(), r[2].clone()]);
            vec![
                Stmt::Set(oy, tap(iy.clone(), r[1].clone(), ax[0])),
                Stmt::Set(ox, tap(ix.clone(), r[2].clone(), ax[1])),
                Stmt::If(
                    Expr::v(oy)
                        .in_range(oh as i64)
                        .and(Expr::v(ox).in_range(ow as i64)),
                    vec![accumulate(o, oi, Expr::v(v) * load(wb, wi))],
                    vec![],
                ),
            ]
        });
        let mut s = vec![Stmt::Set(v, load(x, idx4(xd, [b, ci, iy, ix])))];
        s.extend(inner);
        s
    });
    k.body.extend(s);
    if let Some(&bb) = ib.get(2) {
        add_channel_bias(k, o, od, bb);
    }
    Ok(())
}

/// `o[b, c, y, x] += bias[c]`.
fn add_channel_bias(k: &mut Kernel, o: Buf, od: [usize; 4], bias: Buf) {
    let s = nest(k, &od, "o", |_, idx| {
        vec![accumulate(
            o,
            idx4(
                od,
                [
                    idx[0].clone(),
                    idx[1].clone(),
                    idx[2].clone(),
                    idx[3].clone(),
                ],
            ),
            load(bias, idx[1].clone()),
        )]
    });
    k.body.extend(s);
}

/// conv_transpose2d as GEMM per image and group, then col2im: `cols (C_out/g*kH*kW x H*W) =
/// w[g]^T * x[b, g]` (the weight read transposed through its strides), and each `cols`
/// element is added to the output position its tap reaches (if inside), into the group's
/// channels zeroed first; then the image's bias. Everything for image `b` happens in
/// iteration `b` of the outer loop, so images can run on different threads
/// ([`crate::parallel`]).
#[allow(clippy::too_many_arguments)]
fn gemm_conv_transpose2d(
    k: &mut Kernel,
    ins: &[&TensorType],
    out: &TensorType,
    ib: &[Buf],
    o: Buf,
    ax: [Axis; 2],
    groups: usize,
    threads: usize,
) -> R<()> {
    let xd = dims4(ins[0])?;
    let wd = dims4(ins[1])?;
    let od = dims4(out)?;
    let [n, c_in, h, w] = xd;
    let [_, cog, kh, kw] = wd;
    let [_, c_out, oh, ow] = od;
    let groups = groups.max(1);
    let cig = c_in / groups;
    let (rows, hw, ohw) = (cog * kh * kw, h * w, oh * ow);
    let (x, wb) = (ib[0], ib[1]);
    // `cols (rows x ncols) = w[g]^T * B`, B read from `x` at `b`.
    let product = |g: &Expr, b: MatArg, ncols: usize, cols: Buf| {
        Stmt::Gemm(Box::new(GemmCall {
            m: rows,
            n: ncols,
            k: cig,
            alpha: 1.0,
            beta: 0.0,
            // A = w[g]^T: element (p, q) is w[g * cig + q, p].
            a: mat(wb, g.clone() * c(cig * rows), 1, rows),
            b,
            c: mat(cols, Expr::I(0), ncols, 1),
            threads,
            epilogue: GemmEpilogue::default(),
            im2col: None,
            a_packed: false,
            b_packed: false,
        }))
    };
    // Image `b`'s channels of group `g` zeroed, then its matrix (element `r` at
    // `cols[r * stride + col0]`) scattered into them.
    let scatter = |k: &mut Kernel, b: Expr, g: Expr, cols: Buf, at: (i64, Expr)| {
        let first = (b.clone() * c(c_out) + g.clone() * c(cog)) * c(ohw);
        let mut s = vec![for_(k, "z", cog * ohw, |_, z| {
            vec![Stmt::Store(o, first.clone() + z, Expr::F(0.0))]
        })];
        s.extend(col2im(
            k,
            (cols, [cog, kh, kw, h, w]),
            at,
            (o, od),
            (b, g),
            ax,
        ));
        s
    };
    if hw == 1 && n > 1 {
        // One input pixel per image (a DCGAN's first layer, from the noise vector): per image
        // the product would be a matrix-vector product that reads every weight once for a
        // single column. Fold the batch into the GEMM's columns instead, `cols (rows x n) =
        // w[g]^T * x[:, g]`, then scatter each image's column.
        let cols = k.scratch("cols", Ty::F32, rows * n);
        let s = for_(k, "g", groups, |k, g| {
            // Element (q, b) of B is x[b, g * cig + q].
            let b_all = mat(x, g.clone() * c(cig), 1, c_in);
            vec![
                product(&g, b_all, n, cols),
                for_(k, "b", n, |k, b| {
                    scatter(k, b.clone(), g.clone(), cols, (n as i64, b))
                }),
            ]
        });
        k.body.push(s);
        if let Some(&bb) = ib.get(2) {
            add_channel_bias(k, o, od, bb);
        }
        return Ok(());
    }
    let cols = k.scratch("cols", Ty::F32, rows * hw);
    let per_image = for_(k, "b", n, |k, b| {
        let mut s = vec![for_(k, "g", groups, |k, g| {
            let image = mat(x, (b.clone() * c(c_in) + g.clone() * c(cig)) * c(hw), hw, 1);
            let mut s = vec![product(&g, image, hw, cols)];
            s.extend(scatter(k, b.clone(), g, cols, (1, Expr::I(0))));
            s
        })];
        if let Some(&bias) = ib.get(2) {
            s.push(for_(k, "c", c_out, |k, ch| {
                let row = (b.clone() * c(c_out) + ch.clone()) * c(ohw);
                vec![for_(k, "p", ohw, |_, p| {
                    vec![accumulate(o, row + p, load(bias, ch))]
                })]
            }));
        }
        s
    });
    k.body.push(per_image);
    Ok(())
}

/// col2im of one image and group: each `cols` element (row `(co, ky, kx)`, column `(y, x)`;
/// element `r` of the image's matrix is `cols[r * col_stride + col0]`, so one column of a
/// batch-wide matrix can be read) is added to the output position its tap reaches, `(y * stride + ky * dilation - before,
/// x * ...)`, if inside. The kernel's `kx` is unrolled, so that along
/// each row the columns whose output lands inside form one range known at compile time: no
/// test per element, and with stride 1 a contiguous (vectorised) add. Every output still
/// receives its taps in `(ky, kx)` order, as the interpreter adds them.
fn col2im(
    k: &mut Kernel,
    (cols, [cog, kh, kw, h, w]): (Buf, [usize; 5]),
    (col_stride, col0): (i64, Expr),
    (o, od): (Buf, [usize; 4]),
    (b, g): (Expr, Expr),
    ax: [Axis; 2],
) -> Vec<Stmt> {
    let [_, _, oh, ow] = od;
    let (hw, a) = (h * w, ax[1]);
    nest(k, &[cog, kh, h], "c", |k, r| {
        let (co, ky, y) = (r[0].clone(), r[1].clone(), r[2].clone());
        let oy = k.var("oy", Ty::I64);
        let orow = idx4(
            od,
            [
                b.clone(),
                g.clone() * c(cog) + co.clone(),
                Expr::v(oy),
                Expr::I(0),
            ],
        );
        let mut inside = Vec::new();
        for kx in 0..kw as i64 {
            // ox = x * stride + kx * dilation - before lies in [0, ow) for x in [lo, hi).
            let (shift, lo, hi) = tap_range(kx, a, ow, w);
            if hi == lo {
                continue;
            }
            let crow = ((co.clone() * c(kh) + ky.clone()) * c(kw) + Expr::I(kx)) * c(hw)
                + y.clone() * c(w);
            inside.push(for_(k, "x", (hi - lo) as usize, |_, v| {
                let x = Expr::I(lo) + v;
                vec![accumulate(
                    o,
                    orow.clone() + x.clone() * Expr::I(a.stride) + Expr::I(shift),
                    load(
                        cols,
                        (crow.clone() + x) * Expr::I(col_stride) + col0.clone(),
                    ),
                )]
            }));
        }
        vec![
            Stmt::Set(oy, tap(y, ky, ax[0])),
            Stmt::If(Expr::v(oy).in_range(oh as i64), inside, vec![]),
        ]
    })
}

/// `max_pool2d_grad` when the windows are disjoint (stride = kernel), unpadded and inside the
/// image (LeNet's and VGG's 2x2/2 pools): every input element belongs to at most one window,
/// so each is written once, `0.0 + dy` at its window's first maximum and `0.0` elsewhere
/// (exactly what accumulating into zeros gives, `-0.0` included), with the window's taps
/// unrolled and the winner kept by selects. Rows and columns no window covers (`h` not a
/// multiple of the kernel) are zeroed first.
fn max_pool_grad_disjoint(
    k: &mut Kernel,
    (x, xd): (Buf, [usize; 4]),
    (dy, od): (Buf, [usize; 4]),
    o: Buf,
    [kh, kw]: [usize; 2],
) {
    let [_, _, h, w] = xd;
    let [_, _, oh, ow] = od;
    if oh * kh != h || ow * kw != w {
        fill(k, o, xd.iter().product(), Expr::F(0.0));
    }
    let s = nest(k, &od[..3], "o", |k, idx| {
        let (b, ch, oy) = (idx[0].clone(), idx[1].clone(), idx[2].clone());
        let xrow = idx4(xd, [b.clone(), ch.clone(), oy.clone() * c(kh), Expr::I(0)]);
        let dyrow = idx4(od, [b, ch, oy, Expr::I(0)]);
        vec![for_(k, "ox", ow, |k, ox| {
            let at = |t: usize| xrow.clone() + ox.clone() * c(kw) + c((t / kw) * w + t % kw);
            let g = k.var("g", Ty::F32);
            let best = k.var("best", Ty::I64);
            let bv = k.var("bv", Ty::F32);
            let mut s = vec![
                Stmt::Set(g, Expr::F(0.0) + load(dy, dyrow.clone() + ox.clone())),
                Stmt::Set(best, Expr::I(0)),
                Stmt::Set(bv, load(x, at(0))),
            ];
            for t in 1..kh * kw {
                let v = k.var("v", Ty::F32);
                let beats = beats(v, bv);
                s.push(Stmt::Set(v, load(x, at(t))));
                s.push(Stmt::Set(best, select(beats.clone(), c(t), Expr::v(best))));
                s.push(Stmt::Set(bv, select(beats, Expr::v(v), Expr::v(bv))));
            }
            for t in 0..kh * kw {
                let win = bin(BinOp::Eq, Expr::v(best), c(t));
                s.push(Stmt::Store(o, at(t), select(win, Expr::v(g), Expr::F(0.0))));
            }
            s
        })]
    });
    k.body.extend(s);
}

/// Number of window positions along an axis inside the padded input (count_include_pad).
fn padded_count(o: Expr, kernel: i64, a: Axis, extent: usize) -> Expr {
    let lim = Expr::I(extent as i64 + a.before + a.after) - o * Expr::I(a.stride);
    imin(Expr::I(kernel), imax(Expr::I(0), lim))
}

#[allow(clippy::too_many_arguments)]
fn lower_pool(
    k: &mut Kernel,
    xt: &TensorType,
    out: &TensorType,
    x: Buf,
    o: Buf,
    kernel: [i64; 2],
    ax: [Axis; 2],
    avg: Option<bool>,
) -> R<()> {
    let xd = dims4(xt)?;
    let od = dims4(out)?;
    let s = pool_rows(k, (x, xd), (o, od), kernel, ax, avg);
    k.body.extend(s);
    Ok(())
}

/// Pooling a row of outputs at a time: the row starts at -inf (max) or 0 (average), then for
/// each window row `ky` every output takes the max with, or adds, its taps `kx` that are
/// inside the image, in `kx` order (the taps in row-major order, as the interpreter visits
/// them, so ties, NaN and sums resolve the same way), and is written once per `ky`. `kx` is
/// unrolled, and the outputs split at compile time into segments with the same inside taps:
/// no test per element, and with stride 1 or 2 each segment runs four lanes at a time. An
/// average then divides each output by its count (real taps, or taps inside the padded input),
/// the product of a per-row count and a per-column count known at compile time, computed as
/// the integer product and converted once, as the interpreter does.
fn pool_rows(
    k: &mut Kernel,
    (x, xd): (Buf, [usize; 4]),
    (o, od): (Buf, [usize; 4]),
    kernel: [i64; 2],
    ax: [Axis; 2],
    avg: Option<bool>,
) -> Vec<Stmt> {
    let [_, _, h, w] = xd;
    let [_, _, oh, ow] = od;
    let a = ax[1];
    let init = if avg.is_some() {
        0.0
    } else {
        f32::NEG_INFINITY
    };
    nest(k, &od[..3], "o", |k, idx| {
        let (b, ch, oy) = (idx[0].clone(), idx[1].clone(), idx[2].clone());
        let row = ((b.clone() * c(od[1]) + ch.clone()) * c(oh) + oy.clone()) * c(ow);
        let mut s = vec![for_(k, "i", ow, |_, v| {
            vec![Stmt::Store(o, row.clone() + v, Expr::F(init))]
        })];
        // The outputs whose tap `kx` is inside the image: one range per `kx`. Between the
        // ranges' ends the set of inside taps is constant: one loop per such segment takes
        // them all, in `kx` order, and writes the output once.
        let ranges: Vec<(i64, i64, i64)> =
            (0..kernel[1]).map(|kx| tap_range(kx, a, w, ow)).collect();
        let mut cuts: Vec<i64> = ranges
            .iter()
            .flat_map(|&(_, lo, hi)| [lo, hi])
            .chain([0, ow as i64])
            .collect();
        cuts.sort_unstable();
        cuts.dedup();
        let taps = for_(k, "ky", kernel[0] as usize, |k, ky| {
            let iy = k.var("iy", Ty::I64);
            let mut inside = Vec::new();
            let xrow = idx4(xd, [b.clone(), ch.clone(), Expr::v(iy), Expr::I(0)]);
            for seg in cuts.windows(2) {
                let (from, to) = (seg[0], seg[1]);
                let shifts: Vec<i64> = ranges
                    .iter()
                    .filter(|&&(_, lo, hi)| lo <= from && to <= hi)
                    .map(|&(shift, _, _)| shift)
                    .collect();
                if to <= from || shifts.is_empty() {
                    continue;
                }
                inside.push(for_(k, "ox", (to - from) as usize, |k, v| {
                    let ox = Expr::I(from) + v;
                    let at = row.clone() + ox.clone();
                    let mut acc = k.var("m", Ty::F32);
                    let mut body = vec![Stmt::Set(acc, load(o, at.clone()))];
                    for &shift in &shifts {
                        let tap = load(
                            x,
                            xrow.clone() + ox.clone() * Expr::I(a.stride) + Expr::I(shift),
                        );
                        let next = k.var("m", Ty::F32);
                        body.push(Stmt::Set(
                            next,
                            match avg {
                                None => max_nan(Expr::v(acc), tap),
                                Some(_) => Expr::v(acc) + tap,
                            },
                        ));
                        acc = next;
                    }
                    body.push(Stmt::Store(o, at, Expr::v(acc)));
                    body
                }));
            }
            vec![
                Stmt::Set(iy, tap(oy.clone(), ky, ax[0])),
                Stmt::If(Expr::v(iy).in_range(h as i64), inside, vec![]),
            ]
        });
        s.push(taps);
        let Some(include_pad) = avg else {
            return s;
        };
        // Taps along one axis counted for output `o`: inside the padded input, or real.
        let count = |o: i64, kn: i64, a: Axis, e: i64| {
            if include_pad {
                kn.min((e + a.before + a.after - o * a.stride).max(0))
            } else {
                let lo = o * a.stride - a.before;
                ((e).min(lo + kn) - lo.max(0)).max(0)
            }
        };
        let cy = k.var("cy", Ty::I64);
        let cy_e = if include_pad {
            padded_count(oy.clone(), kernel[0], ax[0], h)
        } else {
            let lo = oy.clone() * Expr::I(ax[0].stride) - Expr::I(ax[0].before);
            let first = imax(Expr::I(0), lo.clone());
            let last = imin(Expr::I(h as i64), lo + Expr::I(kernel[0]));
            imax(Expr::I(0), last - first)
        };
        s.push(Stmt::Set(cy, cy_e));
        let mut ox = 0;
        while ox < ow as i64 {
            let cx = count(ox, kernel[1], a, w as i64);
            let mut end = ox + 1;
            while end < ow as i64 && count(end, kernel[1], a, w as i64) == cx {
                end += 1;
            }
            let div = k.var("div", Ty::F32);
            s.push(Stmt::Set(
                div,
                un(UnOp::I64ToF32, Expr::v(cy) * Expr::I(cx)),
            ));
            s.push(for_(k, "ox", (end - ox) as usize, |_, v| {
                let at = row.clone() + Expr::I(ox) + v;
                vec![Stmt::Store(o, at.clone(), load(o, at) / Expr::v(div))]
            }));
            ox = end;
        }
        s
    })
}

fn lower_pool_grad(
    k: &mut Kernel,
    ins: &[&TensorType],
    ib: &[Buf],
    o: Buf,
    kernel: [i64; 2],
    ax: [Axis; 2],
    avg: Option<bool>,
) -> R<()> {
    let xd = dims4(ins[0])?;
    let od = dims4(ins[1])?;
    let [_, _, h, w] = xd;
    let (x, dy) = (ib[0], ib[1]);
    let kk = [kernel[0] as usize, kernel[1] as usize];
    let all_inside = (0..2).all(|a| {
        let (ax, extent, outs) = (ax[a], xd[2 + a] as i64, od[2 + a] as i64);
        ax.before == 0 && (outs - 1) * ax.stride + kernel[a] - 1 < extent
    });
    let disjoint = (0..2).all(|a| ax[a].stride == kernel[a] && ax[a].dilation == 1);
    if avg.is_none() && all_inside && disjoint && kk[0] * kk[1] <= 16 {
        max_pool_grad_disjoint(k, (x, xd), (dy, od), o, kk);
        return Ok(());
    }
    fill(k, o, ins[0].numel(), Expr::F(0.0));
    let s = nest(k, &od, "o", |k, idx| {
        let g = k.var("g", Ty::F32);
        let (b, ch, oy, ox) = (
            idx[0].clone(),
            idx[1].clone(),
            idx[2].clone(),
            idx[3].clone(),
        );
        let iy = k.var("iy", Ty::I64);
        let ix = k.var("ix", Ty::I64);
        let inside = Expr::v(iy)
            .in_range(h as i64)
            .and(Expr::v(ix).in_range(w as i64));
        let at = idx4(xd, [b.clone(), ch.clone(), Expr::v(iy), Expr::v(ix)]);
        let taps = |r: &[Expr]| {
            vec![
                Stmt::Set(iy, tap(oy.clone(), r[0].clone(), ax[0])),
                Stmt::Set(ix, tap(ox.clone(), r[1].clone(), ax[1])),
            ]
        };
        let mut s = vec![Stmt::Set(
            g,
            load(
                dy,
                idx4(od, [b.clone(), ch.clone(), oy.clone(), ox.clone()]),
            ),
        )];
        match avg {
            // No padding and every window inside the image (LeNet's and VGG's 2x2/2 pools):
            // the scan starts at the first tap, with no range tests and no "nothing yet"
            // state; rescanning the first tap changes nothing (`beats` is strict).
            None if all_inside => {
                let best = k.var("best", Ty::I64);
                let bv = k.var("bv", Ty::F32);
                let scan = nest(k, &kk, "r", |k, r| {
                    let v = k.var("v", Ty::F32);
                    let beats = beats(v, bv);
                    // Selects, not a branch: which tap wins is data, and mispredicted.
                    let mut s = taps(r);
                    s.push(Stmt::Set(v, load(x, at.clone())));
                    s.push(Stmt::Set(
                        best,
                        select(beats.clone(), at.clone(), Expr::v(best)),
                    ));
                    s.push(Stmt::Set(bv, select(beats, Expr::v(v), Expr::v(bv))));
                    s
                });
                s.extend(taps(&[Expr::I(0), Expr::I(0)]));
                s.push(Stmt::Set(best, at.clone()));
                s.push(Stmt::Set(bv, load(x, Expr::v(best))));
                s.extend(scan);
                s.push(accumulate(o, Expr::v(best), Expr::v(g)));
            }
            None => {
                let best = k.var("best", Ty::I64);
                let bv = k.var("bv", Ty::F32);
                let scan = nest(k, &kk, "r", |k, r| {
                    let v = k.var("v", Ty::F32);
                    let beats = beats(v, bv);
                    let take = vec![Stmt::Set(best, at.clone()), Stmt::Set(bv, Expr::v(v))];
                    let mut s = taps(r);
                    s.push(Stmt::If(
                        inside.clone(),
                        vec![
                            Stmt::Set(v, load(x, at.clone())),
                            Stmt::If(Expr::v(best).lt(Expr::I(0)).or(beats), take, vec![]),
                        ],
                        vec![],
                    ));
                    s
                });
                s.push(Stmt::Set(best, Expr::I(-1)));
                s.push(Stmt::Set(bv, Expr::F(0.0)));
                s.extend(scan);
                s.push(Stmt::If(
                    Expr::v(best).ge(Expr::I(0)),
                    vec![accumulate(o, Expr::v(best), Expr::v(g))],
                    vec![],
                ));
            }
            Some(include_pad) => {
                let div = k.var("div", Ty::F32);
                let count = if include_pad {
                    padded_count(oy.clone(), kernel[0], ax[0], h)
                        * padded_count(ox.clone(), kernel[1], ax[1], w)
                } else {
                    // Real elements: the in-range taps per axis, multiplied.
                    let per = |o: Expr, kn: i64, a: Axis, e: usize| {
                        let lo = o.clone() * Expr::I(a.stride) - Expr::I(a.before);
                        let first = imax(Expr::I(0), lo.clone());
                        let last = imin(Expr::I(e as i64), lo + Expr::I(kn));
                        imax(Expr::I(0), last - first)
                    };
                    per(oy.clone(), kernel[0], ax[0], h) * per(ox.clone(), kernel[1], ax[1], w)
                };
                s.push(Stmt::Set(div, un(UnOp::I64ToF32, count)));
                let spread = nest(k, &kk, "r", |_, r| {
                    let mut s = taps(r);
                    s.push(Stmt::If(
                        inside.clone(),
                        vec![accumulate(o, at.clone(), Expr::v(g) / Expr::v(div))],
                        vec![],
                    ));
                    s
                });
                s.extend(spread);
            }
        }
        s
    });
    k.body.extend(s);
    Ok(())
}

fn lower_softmax(
    k: &mut Kernel,
    xt: &TensorType,
    x: Buf,
    o: Buf,
    axis: usize,
    log: bool,
    opt: LowerOptions,
) {
    let (outer, d, inner) = split_at(&xt.shape, axis);
    let s = nest(k, &[outer, inner], "i", |k, idx| {
        let at = |j: Expr| (idx[0].clone() * c(d) + j) * c(inner) + idx[1].clone();
        let max = k.var("max", Ty::F32);
        let sum = k.var("sum", Ty::F32);
        let l1 = for_(k, "j", d, |k, j| {
            let v = k.var("v", Ty::F32);
            vec![
                Stmt::Set(v, load(x, at(j))),
                Stmt::If(
                    Expr::v(v).gt(Expr::v(max)),
                    vec![Stmt::Set(max, Expr::v(v))],
                    vec![],
                ),
            ]
        });
        let l2 = for_(k, "j", d, |_, j| {
            vec![Stmt::Set(
                sum,
                Expr::v(sum) + exp(load(x, at(j)) - Expr::v(max), opt),
            )]
        });
        let fin = if log {
            let ls = k.var("lse", Ty::F32);
            let l3 = for_(k, "j", d, |_, j| {
                vec![Stmt::Store(
                    o,
                    at(j.clone()),
                    load(x, at(j)) - Expr::v(max) - Expr::v(ls),
                )]
            });
            vec![Stmt::Set(ls, un(UnOp::Ln, Expr::v(sum))), l3]
        } else {
            vec![for_(k, "j", d, |_, j| {
                vec![Stmt::Store(
                    o,
                    at(j.clone()),
                    exp(load(x, at(j)) - Expr::v(max), opt) / Expr::v(sum),
                )]
            })]
        };
        let mut s = vec![
            Stmt::Set(max, Expr::F(f32::NEG_INFINITY)),
            l1,
            Stmt::Set(sum, Expr::F(0.0)),
            l2,
        ];
        s.extend(fin);
        s
    });
    k.body.extend(s);
}

/// `kind`: 0 sum, 1 mean, 2 max. Accumulates in row-major order of the reduced axes, as the
/// interpreter does.
fn lower_reduce(k: &mut Kernel, xt: &TensorType, x: Buf, o: Buf, axes: &[usize], kind: u8) {
    let shape = &xt.shape;
    let reduced = |a: usize| axes.is_empty() || axes.contains(&a);
    let kept: Vec<usize> = (0..shape.len())
        .filter(|&a| !reduced(a))
        .map(|a| shape[a])
        .collect();
    let red: Vec<usize> = (0..shape.len())
        .filter(|&a| reduced(a))
        .map(|a| shape[a])
        .collect();
    let count: usize = red.iter().product();
    let ist = strides(shape);
    let s = nest(k, &kept, "i", |k, kidx| {
        let acc = k.var("acc", Ty::F32);
        let body = nest(k, &red, "r", |_, ridx| {
            let (mut ki, mut ri) = (0, 0);
            let mut full = Vec::new();
            for a in 0..shape.len() {
                if reduced(a) {
                    full.push(ridx[ri].clone());
                    ri += 1;
                } else {
                    full.push(kidx[ki].clone());
                    ki += 1;
                }
            }
            let v = load(x, linear(&full, &ist));
            vec![Stmt::Set(
                acc,
                if kind == 2 {
                    max_nan(Expr::v(acc), v)
                } else {
                    Expr::v(acc) + v
                },
            )]
        });
        let init = if kind == 2 { f32::NEG_INFINITY } else { 0.0 };
        let mut s = vec![Stmt::Set(acc, Expr::F(init))];
        s.extend(body);
        let v = if kind == 1 {
            Expr::v(acc) / Expr::F(count as f32)
        } else {
            Expr::v(acc)
        };
        s.push(Stmt::Store(o, linear(kidx, &strides(&kept)), v));
        s
    });
    k.body.extend(s);
}
