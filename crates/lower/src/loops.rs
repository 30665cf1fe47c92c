//! The loop-nest IR: kernels made of loops, scalar expressions, loads and stores.
//!
//! This is the level between the tensor graph and Cranelift. A [`Kernel`] reads and writes
//! flat buffers (one per tensor) through element indices computed by integer expressions, so
//! every op of the graph, including the scatter-style gradients and the index-driven ops, is a
//! few nested [`Stmt::For`] loops over [`Expr`] trees. Keeping it this small means the code
//! generator is one straightforward translation and the bounds-checked mode only has to guard
//! two instructions (load and store). The printer ([`Kernel`]'s `Display`) is what the `lower`
//! filetests snapshot.

use std::fmt;

/// Scalar type of an expression or variable. Buffers store `Bool` as one byte (0 or 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ty {
    /// 32-bit float.
    F32,
    /// 64-bit integer (indices, also used as a raw 64-bit word by the random-number mixer).
    I64,
    /// Boolean.
    Bool,
}

impl Ty {
    /// From an IR dtype.
    pub fn of(d: sinter_ir::DType) -> Ty {
        match d {
            sinter_ir::DType::F32 => Ty::F32,
            sinter_ir::DType::I64 => Ty::I64,
            sinter_ir::DType::Bool => Ty::Bool,
        }
    }

    /// Bytes per element in a buffer.
    pub fn size(self) -> usize {
        match self {
            Ty::F32 => 4,
            Ty::I64 => 8,
            Ty::Bool => 1,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Ty::F32 => "f32",
            Ty::I64 => "i64",
            Ty::Bool => "bool",
        }
    }
}

/// A kernel-local variable: a loop counter or a mutable scalar (accumulator).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Var(pub u32);

/// A buffer parameter of a kernel, by position in [`Kernel::bufs`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Buf(pub u32);

/// One-operand operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnOp {
    /// Arithmetic negation (f32 or i64).
    Neg,
    /// `|x|` (f32).
    Abs,
    /// Square root (f32, correctly rounded).
    Sqrt,
    /// `e^x` (f32): a call to the runtime's exact `f32::exp`.
    Exp,
    /// Natural log (f32): a call to `f32::ln`.
    Ln,
    /// Hyperbolic tangent (f32): a call to `f32::tanh`.
    Tanh,
    /// Cosine (f32): a call to `f32::cos` (Box-Muller).
    Cos,
    /// `e^x` by the inline polynomial (see `sinter-jit`'s `approx` module).
    FastExp,
    /// Boolean not.
    Not,
    /// `x != x` (f32): true for NaN.
    IsNan,
    /// f32 -> i64 truncating, saturating, NaN -> 0 (Rust `as`).
    F32ToI64,
    /// i64 -> f32 (round to nearest).
    I64ToF32,
    /// bool -> f32 (0 or 1).
    BoolToF32,
    /// bool -> i64 (0 or 1).
    BoolToI64,
    /// f32 -> bool (`x != 0`, so NaN is true).
    F32ToBool,
    /// i64 -> bool (`x != 0`).
    I64ToBool,
}

/// Two-operand operations; both operands have the same type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinOp {
    /// `a + b` (f32; i64 wrapping).
    Add,
    /// `a - b`.
    Sub,
    /// `a * b` (i64 wrapping).
    Mul,
    /// `a / b` (f32 IEEE; i64 signed, truncating; the lowering never divides by zero).
    Div,
    /// i64 signed remainder.
    Rem,
    /// Smaller (i64 only: float min/max are written with `Select` for exact NaN rules).
    Min,
    /// Larger (i64 only).
    Max,
    /// `a ^ b` (f32): a call to `f32::powf`.
    Pow,
    /// Bitwise and (i64, bool).
    And,
    /// Bitwise or (i64, bool).
    Or,
    /// Bitwise xor (i64, bool).
    Xor,
    /// Logical shift right of the 64-bit word (i64).
    Shr,
    /// `a == b` -> bool.
    Eq,
    /// `a != b` -> bool (true when either f32 is NaN).
    Ne,
    /// `a < b` -> bool.
    Lt,
    /// `a <= b` -> bool.
    Le,
    /// `a > b` -> bool.
    Gt,
    /// `a >= b` -> bool.
    Ge,
}

impl BinOp {
    /// Whether the result is `bool` whatever the operand type.
    pub fn is_compare(self) -> bool {
        matches!(
            self,
            BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge
        )
    }
}

/// A scalar expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// A variable's current value.
    Var(Var),
    /// An i64 constant.
    I(i64),
    /// An f32 constant.
    F(f32),
    /// A bool constant.
    B(bool),
    /// Element `index` of a buffer (typed by the buffer).
    Load(Buf, Box<Expr>),
    /// A one-operand op.
    Un(UnOp, Box<Expr>),
    /// A two-operand op.
    Bin(BinOp, Box<Expr>, Box<Expr>),
    /// `cond ? a : b` (both branches evaluated; no side effects exist to skip).
    Select(Box<Expr>, Box<Expr>, Box<Expr>),
}

/// A statement.
#[derive(Clone, Debug, PartialEq)]
pub enum Stmt {
    /// `for var in 0..extent { body }`.
    For {
        /// The counter (i64).
        var: Var,
        /// Trip count, fixed at compile time.
        extent: i64,
        /// Loop body.
        body: Vec<Stmt>,
    },
    /// `var = value`.
    Set(Var, Expr),
    /// `buf[index] = value`.
    Store(Buf, Expr, Expr),
    /// `if cond { then } else { other }`.
    If(Expr, Vec<Stmt>, Vec<Stmt>),
    /// A call of the GEMM microkernel driver (`sinter_microkernels`), for matmul, gemm and
    /// convolutions: compute-bound work that 128-bit Cranelift code would run at half speed.
    Gemm(Box<GemmCall>),
    /// A call of a Winograd transform of `sinter_microkernels::winograd` (the input and output
    /// transforms of a 3x3 convolution: streaming, vectorised across tiles).
    Winograd(Box<WinogradCall>),
    /// Return error number `code` (an index into [`Kernel::errors`]) unless `cond` holds:
    /// how data errors (a gather index out of range) become `Err` instead of undefined
    /// behaviour.
    Check(Expr, u32),
}

/// A Winograd transform over whole buffers (see `sinter_ir::winograd` for the layouts): `src`
/// is read from element 0 for [`WinogradCall::src_len`] elements, `dst` written likewise.
#[derive(Clone, Debug, PartialEq)]
pub struct WinogradCall {
    /// Which transform, with its extents.
    pub stage: WinogradStage,
    /// Output tile size (2 or 4).
    pub tile: usize,
    /// What the transform reads.
    pub src: Buf,
    /// What it writes.
    pub dst: Buf,
    /// Threads it may use.
    pub threads: usize,
}

/// The transform of a [`WinogradCall`].
#[derive(Clone, Debug, PartialEq)]
pub enum WinogradStage {
    /// `winograd_filter`: 3x3 weights `[co, ci, 3, 3]` (or `[ci, co, 3, 3]`, `transposed`) to
    /// `U: [T, co, ci]`.
    Filter {
        /// Output channels.
        co: usize,
        /// Input channels.
        ci: usize,
        /// The weight is a transposed convolution's, `[ci, co, 3, 3]`, each filter rotated
        /// by 180 degrees (`winograd_filter`'s `transposed`).
        transposed: bool,
    },
    /// `winograd_input`: NCHW image `[n, c, h, w]` padded by `pad` (top, left, bottom,
    /// right) to `V: [T, c, tiles]`.
    Input {
        /// Images.
        n: usize,
        /// Channels.
        c: usize,
        /// Height.
        h: usize,
        /// Width.
        w: usize,
        /// Padding.
        pad: [usize; 4],
    },
    /// `winograd_output`: `M: [T, c, tiles]` to `[n, c, oh, ow]`, then the bias (per channel)
    /// and the activation (only the elementwise ones, no prelu or mask).
    Output {
        /// Images.
        n: usize,
        /// Channels.
        c: usize,
        /// Output height.
        oh: usize,
        /// Output width.
        ow: usize,
        /// `c` values added per channel.
        bias: Option<Buf>,
        /// Applied last (the sole-reader activation absorbed into the kernel).
        act: Option<Activation>,
    },
}

impl WinogradCall {
    /// Output tiles along height and width of the convolution this call belongs to.
    fn tiles(&self, oh: usize, ow: usize) -> usize {
        oh.div_ceil(self.tile) * ow.div_ceil(self.tile)
    }

    /// Elements of `src` read.
    pub fn src_len(&self) -> usize {
        let t = (self.tile + 2) * (self.tile + 2);
        match &self.stage {
            WinogradStage::Filter { co, ci, .. } => co * ci * 9,
            WinogradStage::Input { n, c, h, w, .. } => n * c * h * w,
            WinogradStage::Output { n, c, oh, ow, .. } => t * c * n * self.tiles(*oh, *ow),
        }
    }

    /// Elements of `dst` written.
    pub fn dst_len(&self) -> usize {
        let t = (self.tile + 2) * (self.tile + 2);
        match &self.stage {
            WinogradStage::Filter { co, ci, .. } => t * co * ci,
            WinogradStage::Input { n, c, h, w, pad } => {
                let oh = h + pad[0] + pad[2] - 2;
                let ow = w + pad[1] + pad[3] - 2;
                t * c * n * self.tiles(oh, ow)
            }
            WinogradStage::Output { n, c, oh, ow, .. } => n * c * oh * ow,
        }
    }
}

/// A matrix operand inside a buffer: element `(i, j)` is `buf[offset + i*rs + j*cs]`.
#[derive(Clone, Debug, PartialEq)]
pub struct MatArg {
    /// The buffer.
    pub buf: Buf,
    /// Element index of `(0, 0)`.
    pub offset: Expr,
    /// Row stride in elements.
    pub rs: i64,
    /// Column stride in elements.
    pub cs: i64,
}

/// `C = alpha * A * B + beta * C` with `A: m x k`, `B: k x n`, `C: m x n` (`beta == 0`
/// does not read C).
#[derive(Clone, Debug, PartialEq)]
pub struct GemmCall {
    /// Rows of A and C.
    pub m: usize,
    /// Columns of B and C.
    pub n: usize,
    /// Columns of A, rows of B.
    pub k: usize,
    /// Scale of the product.
    pub alpha: f32,
    /// Scale of the old C.
    pub beta: f32,
    /// Left operand.
    pub a: MatArg,
    /// Right operand.
    pub b: MatArg,
    /// Result.
    pub c: MatArg,
    /// Threads the driver may use.
    pub threads: usize,
    /// Applied to C after the product, tile by tile.
    pub epilogue: GemmEpilogue,
    /// If set, B is no matrix in memory but the im2col matrix of the image that `b` locates
    /// (its first element; `b`'s strides are unused): the driver packs B's blocks straight
    /// from the image (`sinter_microkernels::im2col`), so the matrix is never built.
    pub im2col: Option<Im2col>,
    /// A is packed ahead of time (its buffer has [`BufDecl::pack_a`]; `a`'s offset is that of
    /// the packed matrix, its strides unused).
    pub a_packed: bool,
    /// B is packed ahead of time (its buffer has [`BufDecl::pack_b`], and `b` is at offset 0;
    /// its strides are unused). Never with `im2col`.
    pub b_packed: bool,
}

/// The geometry of an implicit im2col B operand (`sinter_microkernels::ConvGeom`): the image
/// is `channels` contiguous `h x w` planes; B has `channels * kh * kw` rows (`k`) and
/// `oh * ow` columns (`n`), element `((c, ky, kx), (oy, ox))` =
/// `image[c, oy*stride[0] + ky*dilation[0] - pad[0], ox*stride[1] + kx*dilation[1] - pad[1]]`,
/// or 0 outside the image.
#[derive(Clone, Debug, PartialEq)]
pub struct Im2col {
    /// Channels of the image (of this group).
    pub channels: usize,
    /// Image height.
    pub h: usize,
    /// Image width.
    pub w: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Stride (y, x).
    pub stride: [usize; 2],
    /// Padding before the image (y, x).
    pub pad: [usize; 2],
    /// Dilation (y, x).
    pub dilation: [usize; 2],
    /// Output height.
    pub oh: usize,
    /// Output width.
    pub ow: usize,
    /// B is the transpose of that matrix (`oh * ow` rows, `channels * kh * kw` columns): a
    /// weight gradient's `dw = dy * col^T`.
    pub transposed: bool,
}

impl Im2col {
    /// Floats of the image the operand reads.
    pub fn image_len(&self) -> usize {
        self.channels * self.h * self.w
    }
}

/// What the GEMM driver applies to each tile of C after its last `k` slice, while the tile is
/// in L1 (`sinter_microkernels::Epilogue`): a layer's bias and activation without a pass over
/// C.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GemmEpilogue {
    /// `c(i, j) += bias(i, j)`, a [`MatArg`] with one zero stride: a bias per row (`cs == 0`)
    /// or per column (`rs == 0`).
    pub bias: Option<MatArg>,
    /// Then this activation (the sole reader of the GEMM's op, absorbed).
    pub act: Option<Activation>,
}

/// An activation the GEMM driver applies in its epilogue, each with the IR op's formula
/// (the driver computes exactly what the interpreter does).
#[derive(Clone, Debug, PartialEq)]
pub enum Activation {
    /// `relu`: `c = 0` where `c < 0` (NaN passes).
    Relu,
    /// `leaky_relu` with this `alpha`.
    LeakyRelu(f32),
    /// `sigmoid` (with `f32::exp`).
    Sigmoid,
    /// `tanh`.
    Tanh,
    /// `prelu` with the slope at `slope(i, j)` (strides 0 where the slope broadcasts).
    Prelu(MatArg),
    /// A relu's backward `select(greater(mask, 0), c, 0)`, the mask at `mask(i, j)`.
    ReluMask(MatArg),
}

impl Activation {
    /// The name printed in kernel listings and kernel names.
    pub fn name(&self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::LeakyRelu(_) => "leaky_relu",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Prelu(_) => "prelu",
            Activation::ReluMask(_) => "relu_mask",
        }
    }
}

impl GemmEpilogue {
    /// Whether there is nothing to apply.
    pub fn is_empty(&self) -> bool {
        self.bias.is_none() && self.act.is_none()
    }
}

/// A buffer parameter: name (for printing and errors), element type and length.
#[derive(Clone, Debug, PartialEq)]
pub struct BufDecl {
    /// Value name in the graph, or a descriptive name.
    pub name: String,
    /// Element type.
    pub ty: Ty,
    /// Number of elements.
    pub len: usize,
    /// Whether the kernel writes it.
    pub output: bool,
    /// A kernel-private temporary (e.g. an im2col matrix): the runtime gives it arena space
    /// for the kernel's duration only; it is bound to no graph value. Its contents do not
    /// carry from one iteration of a kernel's [`Kernel::parallel`] loop to the next (every
    /// iteration writes what it reads of it first), so each thread may have its own copy.
    pub scratch: bool,
    /// Bound to a constant that the runtime packs once, at compile time, into the GEMM
    /// driver's panel layout: `groups` row-major `m x k` matrices (the constant's elements, in
    /// order), each packed whole (`sinter_microkernels::pack_a_whole`), one after another.
    /// The buffer's `len` is the packed length.
    pub pack_a: Option<PackA>,
    /// Bound to a constant that the runtime packs once, at compile time, as the B operand of
    /// the kernel's GEMM calls (`sinter_microkernels::PackedB`: the layout the driver packs B
    /// into on every call otherwise). The buffer's `len` is the packed length.
    pub pack_b: Option<PackB>,
}

/// How a constant B operand is packed ahead of time (see [`BufDecl::pack_b`]): element
/// `(p, j)` of the `k x n` matrix is element `p * rs + j * cs` of the constant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PackB {
    /// Rows (the GEMM's `k`).
    pub k: usize,
    /// Columns (the GEMM's `n`).
    pub n: usize,
    /// Row stride in the constant.
    pub rs: i64,
    /// Column stride in the constant.
    pub cs: i64,
}

impl PackB {
    /// Floats of the packed matrix: `k * ceil(n / 32) * 32` (the driver's `NR` is 32).
    pub fn packed_len(&self) -> usize {
        self.k * self.n.div_ceil(32) * 32
    }
}

/// How a constant weight buffer is packed ahead of time (see [`BufDecl::pack_a`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PackA {
    /// Rows of each matrix (a conv group's output channels; a transposed conv's
    /// `C_out/groups * kH * kW`).
    pub m: usize,
    /// Columns of each matrix (`C_in/groups * kH * kW`; a transposed conv's `C_in/groups`).
    pub k: usize,
    /// Matrices, one after another in the constant.
    pub groups: usize,
    /// Each matrix is stored transposed (element `(i, j)` at `j * m + i`): a transposed
    /// convolution's weights, read as `w[g]^T`.
    pub transposed: bool,
}

impl PackA {
    /// Floats of one packed matrix: `ceil(m / 6) * 6 * k` (the driver's `MR` is 6).
    pub fn packed_len(&self) -> usize {
        self.m.div_ceil(6) * 6 * self.k
    }
}

/// A kernel: a function of its buffers, returning 0 or `1 + code` of a failed [`Stmt::Check`].
#[derive(Clone, Debug, PartialEq)]
pub struct Kernel {
    /// Name (for printing, profiles and symbols).
    pub name: String,
    /// Buffers, inputs and outputs.
    pub bufs: Vec<BufDecl>,
    /// Variable types, indexed by [`Var`].
    pub vars: Vec<(String, Ty)>,
    /// The body.
    pub body: Vec<Stmt>,
    /// Data-error messages, indexed by [`Stmt::Check`] codes.
    pub errors: Vec<String>,
    /// The loop whose iterations the runtime may run on several threads (set by
    /// [`crate::parallel::parallelize`], which proves them independent).
    pub parallel: Option<Parallel>,
}

/// A loop of a kernel split across threads: the runtime calls the kernel once per piece with
/// a range of the loop's counter (each piece with its own scratch buffers), and the kernel
/// runs that range of the loop instead of `0..extent`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parallel {
    /// The loop's counter.
    pub var: Var,
    /// The loop's trip count.
    pub extent: i64,
    /// Pieces to split it into (at most `extent`).
    pub pieces: usize,
}

impl Parallel {
    /// The counter range of piece `i`: `extent` split as evenly as it goes.
    pub fn range(&self, i: usize) -> (i64, i64) {
        let p = self.pieces as i64;
        let i = i as i64;
        (self.extent * i / p, self.extent * (i + 1) / p)
    }
}

impl Kernel {
    /// An empty kernel.
    pub fn new(name: impl Into<String>) -> Kernel {
        Kernel {
            name: name.into(),
            bufs: Vec::new(),
            vars: Vec::new(),
            body: Vec::new(),
            errors: Vec::new(),
            parallel: None,
        }
    }

    /// Adds a buffer parameter.
    pub fn buf(&mut self, name: &str, ty: Ty, len: usize, output: bool) -> Buf {
        self.bufs.push(BufDecl {
            name: name.to_string(),
            ty,
            len,
            output,
            scratch: false,
            pack_a: None,
            pack_b: None,
        });
        Buf(self.bufs.len() as u32 - 1)
    }

    /// Adds a scratch buffer (see [`BufDecl::scratch`]).
    pub fn scratch(&mut self, name: &str, ty: Ty, len: usize) -> Buf {
        let b = self.buf(name, ty, len, true);
        self.bufs[b.0 as usize].scratch = true;
        b
    }

    /// A fresh variable; `hint` names it in the printout.
    pub fn var(&mut self, hint: &str, ty: Ty) -> Var {
        let name = format!("{hint}{}", self.vars.len());
        self.vars.push((name, ty));
        Var(self.vars.len() as u32 - 1)
    }

    /// Registers a data-error message, giving the code for [`Stmt::Check`].
    pub fn error(&mut self, msg: String) -> u32 {
        self.errors.push(msg);
        self.errors.len() as u32 - 1
    }

    /// The type of an expression (operands are assumed well-typed).
    pub fn ty(&self, e: &Expr) -> Ty {
        match e {
            Expr::Var(v) => self.vars[v.0 as usize].1,
            Expr::I(_) => Ty::I64,
            Expr::F(_) => Ty::F32,
            Expr::B(_) => Ty::Bool,
            Expr::Load(b, _) => self.bufs[b.0 as usize].ty,
            Expr::Un(op, x) => match op {
                UnOp::Not | UnOp::IsNan | UnOp::F32ToBool | UnOp::I64ToBool => Ty::Bool,
                UnOp::F32ToI64 | UnOp::BoolToI64 => Ty::I64,
                UnOp::I64ToF32 | UnOp::BoolToF32 => Ty::F32,
                _ => self.ty(x),
            },
            Expr::Bin(op, a, _) => {
                if op.is_compare() {
                    Ty::Bool
                } else {
                    self.ty(a)
                }
            }
            Expr::Select(_, a, _) => self.ty(a),
        }
    }

    /// Number of loop statements (a size measure for tests and timings).
    pub fn loop_count(&self) -> usize {
        fn count(s: &[Stmt]) -> usize {
            s.iter()
                .map(|s| match s {
                    Stmt::For { body, .. } => 1 + count(body),
                    Stmt::If(_, a, b) => count(a) + count(b),
                    _ => 0,
                })
                .sum()
        }
        count(&self.body)
    }
}

// Operator sugar so lowering code reads like the index arithmetic it builds.
macro_rules! sugar {
    ($tr:ident, $f:ident, $op:ident) => {
        impl std::ops::$tr for Expr {
            type Output = Expr;
            fn $f(self, rhs: Expr) -> Expr {
                bin(BinOp::$op, self, rhs)
            }
        }
    };
}
sugar!(Add, add, Add);
sugar!(Sub, sub, Sub);
sugar!(Mul, mul, Mul);
sugar!(Div, div, Div);
sugar!(Rem, rem, Rem);

/// A two-operand expression, folding i64 constants and the identities `x+0`, `x*1`, `x*0`
/// so printed index arithmetic stays readable.
pub fn bin(op: BinOp, a: Expr, b: Expr) -> Expr {
    use Expr::I;
    match (op, &a, &b) {
        (BinOp::Add, I(x), I(y)) => I(x.wrapping_add(*y)),
        (BinOp::Sub, I(x), I(y)) => I(x.wrapping_sub(*y)),
        (BinOp::Mul, I(x), I(y)) => I(x.wrapping_mul(*y)),
        (BinOp::Add, I(0), _) => b,
        (BinOp::Add | BinOp::Sub, _, I(0)) => a,
        (BinOp::Mul, I(1), _) => b,
        (BinOp::Mul | BinOp::Div, _, I(1)) => a,
        (BinOp::Mul, I(0), _) | (BinOp::Mul, _, I(0)) => I(0),
        _ => Expr::Bin(op, Box::new(a), Box::new(b)),
    }
}

/// A one-operand expression.
pub fn un(op: UnOp, a: Expr) -> Expr {
    Expr::Un(op, Box::new(a))
}

/// `cond ? a : b`.
pub fn select(c: Expr, a: Expr, b: Expr) -> Expr {
    Expr::Select(Box::new(c), Box::new(a), Box::new(b))
}

/// `buf[index]`.
pub fn load(b: Buf, index: Expr) -> Expr {
    Expr::Load(b, Box::new(index))
}

impl Expr {
    /// A variable's value.
    pub fn v(var: Var) -> Expr {
        Expr::Var(var)
    }
    /// `self < o`.
    pub fn lt(self, o: Expr) -> Expr {
        bin(BinOp::Lt, self, o)
    }
    /// `self <= o`.
    pub fn le(self, o: Expr) -> Expr {
        bin(BinOp::Le, self, o)
    }
    /// `self > o`.
    pub fn gt(self, o: Expr) -> Expr {
        bin(BinOp::Gt, self, o)
    }
    /// `self >= o`.
    pub fn ge(self, o: Expr) -> Expr {
        bin(BinOp::Ge, self, o)
    }
    /// `self == o`.
    pub fn eq_(self, o: Expr) -> Expr {
        bin(BinOp::Eq, self, o)
    }
    /// `self && o` (bool).
    pub fn and(self, o: Expr) -> Expr {
        match (&self, &o) {
            (Expr::B(true), _) => o,
            (_, Expr::B(true)) => self,
            _ => bin(BinOp::And, self, o),
        }
    }
    /// `self || o` (bool).
    pub fn or(self, o: Expr) -> Expr {
        bin(BinOp::Or, self, o)
    }
    /// `0 <= self < hi` for an i64 index.
    pub fn in_range(self, hi: i64) -> Expr {
        self.clone().ge(Expr::I(0)).and(self.lt(Expr::I(hi)))
    }
}

// ---------------------------------------------------------------------------------------------
// Printer

struct Show<'a>(&'a Kernel, &'a Expr);

impl fmt::Display for Show<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let k = self.0;
        match self.1 {
            Expr::Var(v) => f.write_str(&k.vars[v.0 as usize].0),
            Expr::I(i) => write!(f, "{i}"),
            Expr::F(x) => write!(f, "{x:?}"),
            Expr::B(b) => write!(f, "{b}"),
            Expr::Load(b, i) => write!(f, "{}[{}]", k.bufs[b.0 as usize].name, Show(k, i)),
            Expr::Un(op, x) => write!(f, "{}({})", format!("{op:?}").to_lowercase(), Show(k, x)),
            Expr::Bin(op, a, b) => {
                let sym = match op {
                    BinOp::Add => "+",
                    BinOp::Sub => "-",
                    BinOp::Mul => "*",
                    BinOp::Div => "/",
                    BinOp::Rem => "%",
                    BinOp::And => "&",
                    BinOp::Or => "|",
                    BinOp::Xor => "^",
                    BinOp::Shr => ">>",
                    BinOp::Eq => "==",
                    BinOp::Ne => "!=",
                    BinOp::Lt => "<",
                    BinOp::Le => "<=",
                    BinOp::Gt => ">",
                    BinOp::Ge => ">=",
                    BinOp::Min | BinOp::Max | BinOp::Pow => {
                        let name = format!("{op:?}").to_lowercase();
                        return write!(f, "{name}({}, {})", Show(k, a), Show(k, b));
                    }
                };
                write!(f, "({} {sym} {})", Show(k, a), Show(k, b))
            }
            Expr::Select(c, a, b) => {
                write!(f, "select({}, {}, {})", Show(k, c), Show(k, a), Show(k, b))
            }
        }
    }
}

fn pad_str(depth: usize) -> String {
    "  ".repeat(depth)
}

fn print_stmts(k: &Kernel, body: &[Stmt], depth: usize, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let pad = "  ".repeat(depth);
    for s in body {
        match s {
            Stmt::For { var, extent, body } => {
                let par = match k.parallel {
                    Some(p) if p.var == *var => format!(" parallel({})", p.pieces),
                    _ => String::new(),
                };
                writeln!(
                    f,
                    "{pad}for {} in 0..{extent}{par} {{",
                    k.vars[var.0 as usize].0
                )?;
                print_stmts(k, body, depth + 1, f)?;
                writeln!(f, "{pad}}}")?;
            }
            Stmt::Set(v, e) => writeln!(f, "{pad}{} = {}", k.vars[v.0 as usize].0, Show(k, e))?,
            Stmt::Store(b, i, e) => writeln!(
                f,
                "{pad}{}[{}] = {}",
                k.bufs[b.0 as usize].name,
                Show(k, i),
                Show(k, e)
            )?,
            Stmt::If(c, a, b) => {
                writeln!(f, "{pad}if {} {{", Show(k, c))?;
                print_stmts(k, a, depth + 1, f)?;
                if !b.is_empty() {
                    writeln!(f, "{pad}}} else {{")?;
                    print_stmts(k, b, depth + 1, f)?;
                }
                writeln!(f, "{pad}}}")?;
            }
            Stmt::Gemm(g) => {
                let m = |a: &MatArg| {
                    format!(
                        "{}[{}] ({}, {})",
                        k.bufs[a.buf.0 as usize].name,
                        Show(k, &a.offset),
                        a.rs,
                        a.cs
                    )
                };
                let b = match &g.im2col {
                    None if g.b_packed => format!("packed({})", k.bufs[g.b.buf.0 as usize].name),
                    None => m(&g.b),
                    Some(i) => format!(
                        "im2col{}({}[{}] c={} h={} w={} kernel={}x{} stride={:?} pad={:?} dilation={:?} out={}x{})",
                        if i.transposed { "^T" } else { "" },
                        k.bufs[g.b.buf.0 as usize].name,
                        Show(k, &g.b.offset),
                        i.channels,
                        i.h,
                        i.w,
                        i.kh,
                        i.kw,
                        i.stride,
                        i.pad,
                        i.dilation,
                        i.oh,
                        i.ow
                    ),
                };
                let a = if g.a_packed {
                    format!(
                        "packed({}[{}])",
                        k.bufs[g.a.buf.0 as usize].name,
                        Show(k, &g.a.offset)
                    )
                } else {
                    m(&g.a)
                };
                write!(
                    f,
                    "{pad}gemm m={} n={} k={} alpha={:?} beta={:?} A={} B={} C={} threads={}",
                    g.m,
                    g.n,
                    g.k,
                    g.alpha,
                    g.beta,
                    a,
                    b,
                    m(&g.c),
                    g.threads
                )?;
                if let Some(b) = &g.epilogue.bias {
                    write!(f, " bias={}", m(b))?;
                }
                match &g.epilogue.act {
                    None => {}
                    Some(Activation::LeakyRelu(a)) => write!(f, " leaky_relu({a:?})")?,
                    Some(Activation::Prelu(s)) => write!(f, " prelu({})", m(s))?,
                    Some(Activation::ReluMask(s)) => write!(f, " relu_mask({})", m(s))?,
                    Some(a) => write!(f, " {}", a.name())?,
                }
                writeln!(f)?
            }
            Stmt::Winograd(w) => {
                let name = |b: Buf| &k.bufs[b.0 as usize].name;
                match &w.stage {
                    WinogradStage::Filter { co, ci, transposed } => write!(
                        f,
                        "{}winograd_filter tile={} {}[{}, 3, 3]{} -> {} threads={}",
                        pad_str(depth),
                        w.tile,
                        name(w.src),
                        if *transposed {
                            format!("{ci}, {co}")
                        } else {
                            format!("{co}, {ci}")
                        },
                        if *transposed { " transposed" } else { "" },
                        name(w.dst),
                        w.threads
                    )?,
                    WinogradStage::Input {
                        n,
                        c,
                        h,
                        w: wd,
                        pad,
                    } => write!(
                        f,
                        "{pad_s}winograd_input tile={} {}[{n}, {c}, {h}, {wd}] pad={pad:?} -> {} threads={}",
                        w.tile,
                        name(w.src),
                        name(w.dst),
                        w.threads,
                        pad_s = pad_str(depth),
                    )?,
                    WinogradStage::Output {
                        n,
                        c,
                        oh,
                        ow,
                        bias,
                        act,
                    } => {
                        write!(
                            f,
                            "{}winograd_output tile={} {} -> {}[{n}, {c}, {oh}, {ow}] threads={}",
                            pad_str(depth),
                            w.tile,
                            name(w.src),
                            name(w.dst),
                            w.threads
                        )?;
                        if let Some(b) = bias {
                            write!(f, " bias={}", name(*b))?;
                        }
                        match act {
                            None => {}
                            Some(Activation::LeakyRelu(a)) => write!(f, " leaky_relu({a:?})")?,
                            Some(a) => write!(f, " {}", a.name())?,
                        }
                    }
                }
                writeln!(f)?
            }
            Stmt::Check(c, code) => writeln!(
                f,
                "{pad}check {} else error {code} // {}",
                Show(k, c),
                k.errors[*code as usize]
            )?,
        }
    }
    Ok(())
}

impl fmt::Display for Kernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let params: Vec<String> = self
            .bufs
            .iter()
            .map(|b| {
                format!(
                    "{}{}: {}[{}]",
                    if b.scratch {
                        "scratch "
                    } else if b.output {
                        "out "
                    } else {
                        ""
                    },
                    b.name,
                    b.ty.name(),
                    b.len,
                ) + &b
                    .pack_a
                    .map(|p| format!(" packed {}x{{{}x{}}}", p.groups, p.m, p.k))
                    .unwrap_or_default()
            })
            .collect();
        writeln!(f, "kernel {}({}) {{", self.name, params.join(", "))?;
        print_stmts(self, &self.body, 1, f)?;
        writeln!(f, "}}")
    }
}
