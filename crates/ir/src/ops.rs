//! The op table: every operation of the IR, defined once.
//!
//! [`define_ops!`] turns one entry per op (text name, category, input arity, typed attributes
//! with defaults, doc) into the [`Op`] enum, the fieldless [`OpKind`] enum and the static
//! [`OpInfo`] table. Every later stage (shape rules in `infer`, the interpreter, gradients,
//! lowering) is an exhaustive `match` over `Op`, so adding an entry here fails to compile until
//! each stage handles it. The text names are also the e-graph's s-expression names.
//!
//! Layout conventions: images are NCHW; conv weights are `[C_out, C_in/groups, kH, kW]`;
//! transposed-conv weights are `[C_in, C_out/groups, kH, kW]` (as in PyTorch and ONNX);
//! paddings are `[top, left, bottom, right]`. Negative axes count from the end.

use crate::attr::{Attr, AttrValue, Float};
use crate::types::DType;

/// Coarse grouping of ops, used by the spec and by passes that treat a category alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Category {
    /// One `f32` input, same-shaped output.
    Unary,
    /// Two `f32` inputs with numpy broadcasting.
    Binary,
    /// Two inputs compared elementwise with broadcasting, `bool` output.
    Compare,
    /// Choice, casts.
    Elementwise,
    /// Matrix products.
    Linear,
    /// Convolutions.
    Convolution,
    /// Pooling windows.
    Pooling,
    /// Batch normalisation.
    Normalization,
    /// Softmax family.
    Softmax,
    /// Seeded random numbers.
    Random,
    /// Reductions over axes.
    Reduction,
    /// Shape and data-movement ops.
    Movement,
    /// Index-driven ops.
    Indexing,
}

impl Category {
    /// All categories, in spec order.
    pub const ALL: [Category; 13] = [
        Category::Unary,
        Category::Binary,
        Category::Compare,
        Category::Elementwise,
        Category::Linear,
        Category::Convolution,
        Category::Pooling,
        Category::Normalization,
        Category::Softmax,
        Category::Random,
        Category::Reduction,
        Category::Movement,
        Category::Indexing,
    ];
}

/// One attribute of an op, as the table declares it.
#[derive(Debug)]
pub struct AttrInfo {
    /// Attribute name in the text format.
    pub name: &'static str,
    /// Type name (`int`, `float`, `bool`, `[int]`, `[int; 2]`, `dtype`).
    pub ty: &'static str,
    /// Default value when omitted in text or builder; `None` means required.
    pub default: Option<fn() -> AttrValue>,
}

/// Static description of an op kind.
#[derive(Debug)]
pub struct OpInfo {
    /// Text (and e-graph) name.
    pub name: &'static str,
    /// Category.
    pub category: Category,
    /// Fewest inputs.
    pub min_inputs: usize,
    /// Most inputs (`usize::MAX`: variadic).
    pub max_inputs: usize,
    /// Attributes in declaration (and printing) order.
    pub attrs: &'static [AttrInfo],
    /// Semantics, one paragraph.
    pub doc: &'static str,
}

/// Variadic input count.
pub const VARIADIC: usize = usize::MAX;

fn take_attr<T: Attr>(
    given: &[(String, AttrValue)],
    name: &str,
    default: Option<fn() -> AttrValue>,
) -> Result<T, String> {
    match given.iter().find(|(n, _)| n == name) {
        Some((_, v)) => T::from_value(v).map_err(|e| format!("attribute `{name}`: {e}")),
        None => match default {
            Some(d) => T::from_value(&d()),
            None => Err(format!("missing attribute `{name}` ({})", T::TYPE)),
        },
    }
}

macro_rules! attr_default {
    ($t:ty) => {
        None
    };
    ($t:ty, $d:expr) => {
        Some((|| <$t as Attr>::to_value(&$d)) as fn() -> AttrValue)
    };
}

macro_rules! define_ops {
    ($(
        $(#[doc = $doc:literal])*
        $var:ident = $name:literal, $cat:ident, inputs($min:expr, $max:expr) {
            $( $field:ident : $fty:ty $(= $def:expr)? ),* $(,)?
        }
    )*) => {
        /// An operation with its attributes. See the [module docs](self) and `ir-spec/`.
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[allow(missing_docs)]
        pub enum Op {
            $( $(#[doc = $doc])* $var { $( $field: $fty ),* } ),*
        }

        /// The kind of an [`Op`], without attributes.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[allow(missing_docs)]
        pub enum OpKind { $( $var ),* }

        impl OpKind {
            /// Every op kind, in table order.
            pub const ALL: &'static [OpKind] = &[ $( OpKind::$var ),* ];

            /// The table entry.
            pub fn info(self) -> &'static OpInfo {
                match self {
                    $( OpKind::$var => {
                        static INFO: OpInfo = OpInfo {
                            name: $name,
                            category: Category::$cat,
                            min_inputs: $min,
                            max_inputs: $max,
                            attrs: &[ $( AttrInfo {
                                name: stringify!($field),
                                ty: <$fty as Attr>::TYPE,
                                default: attr_default!($fty $(, $def)?),
                            } ),* ],
                            doc: concat!($($doc, "\n"),*),
                        };
                        &INFO
                    } )*
                }
            }

            /// Builds an op of this kind from named attributes, filling defaults.
            /// Unknown, duplicate, missing or mistyped attributes are errors.
            pub fn with_attrs(self, given: &[(String, AttrValue)]) -> Result<Op, String> {
                let info = self.info();
                for (i, (n, _)) in given.iter().enumerate() {
                    if !info.attrs.iter().any(|a| a.name == n) {
                        let known: Vec<&str> = info.attrs.iter().map(|a| a.name).collect();
                        return Err(format!(
                            "unknown attribute `{n}` for `{}` (it takes: {})",
                            info.name,
                            if known.is_empty() { "none".to_string() } else { known.join(", ") }
                        ));
                    }
                    if given[..i].iter().any(|(m, _)| m == n) {
                        return Err(format!("attribute `{n}` given twice"));
                    }
                }
                Ok(match self {
                    $( OpKind::$var => Op::$var {
                        $( $field: take_attr::<$fty>(given, stringify!($field), attr_default!($fty $(, $def)?))? ),*
                    } ),*
                })
            }
        }

        impl Op {
            /// The kind, without attributes.
            pub fn kind(&self) -> OpKind {
                match self { $( Op::$var { .. } => OpKind::$var ),* }
            }

            /// Attributes in table order, in untyped form (for printing).
            #[allow(unused_variables)]
            pub fn attrs(&self) -> Vec<(&'static str, AttrValue)> {
                match self {
                    $( Op::$var { $( $field ),* } => vec![ $( (stringify!($field), Attr::to_value($field)) ),* ] ),*
                }
            }
        }
    };
}

impl OpKind {
    /// Looks an op kind up by its text name.
    pub fn from_name(name: &str) -> Option<OpKind> {
        OpKind::ALL.iter().copied().find(|k| k.info().name == name)
    }

    /// The text name.
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// An op of this kind with every attribute at its default (`Err` if one is required).
    pub fn default_op(self) -> Result<Op, String> {
        self.with_attrs(&[])
    }
}

impl Op {
    /// The text name.
    pub fn name(&self) -> &'static str {
        self.kind().name()
    }

    /// The table entry.
    pub fn info(&self) -> &'static OpInfo {
        self.kind().info()
    }
}

define_ops! {
    /// `-x`.
    Neg = "neg", Unary, inputs(1, 1) {}
    /// `e^x`.
    Exp = "exp", Unary, inputs(1, 1) {}
    /// Natural logarithm; `-inf` at 0, NaN below.
    Log = "log", Unary, inputs(1, 1) {}
    /// Square root; NaN below 0.
    Sqrt = "sqrt", Unary, inputs(1, 1) {}
    /// `1 / sqrt(x)`.
    Rsqrt = "rsqrt", Unary, inputs(1, 1) {}
    /// `|x|`.
    Abs = "abs", Unary, inputs(1, 1) {}
    /// `max(x, 0)`.
    Relu = "relu", Unary, inputs(1, 1) {}
    /// `1 / (1 + e^-x)`.
    Sigmoid = "sigmoid", Unary, inputs(1, 1) {}
    /// Hyperbolic tangent.
    Tanh = "tanh", Unary, inputs(1, 1) {}
    /// `x` where `x >= 0`, else `alpha * x`.
    LeakyRelu = "leaky_relu", Unary, inputs(1, 1) { alpha: Float = Float(0.01) }

    /// `a + b`, numpy broadcasting.
    Add = "add", Binary, inputs(2, 2) {}
    /// `a - b`, numpy broadcasting.
    Sub = "sub", Binary, inputs(2, 2) {}
    /// `a * b`, numpy broadcasting.
    Mul = "mul", Binary, inputs(2, 2) {}
    /// `a / b`, numpy broadcasting (IEEE: division by zero gives inf or NaN).
    Div = "div", Binary, inputs(2, 2) {}
    /// Elementwise maximum, numpy broadcasting; NaN if either is NaN.
    Max = "max", Binary, inputs(2, 2) {}
    /// Elementwise minimum, numpy broadcasting; NaN if either is NaN.
    Min = "min", Binary, inputs(2, 2) {}
    /// `a ^ b` (`powf`), numpy broadcasting.
    Pow = "pow", Binary, inputs(2, 2) {}
    /// Parametric ReLU: `x` where `x >= 0`, else `slope * x`; `slope` broadcasts to `x`
    /// (typically `[C,1,1]` per channel) and the result has `x`'s shape.
    Prelu = "prelu", Binary, inputs(2, 2) {}

    /// `a == b` elementwise (f32 or i64, same dtype), broadcasting; bool result.
    Equal = "equal", Compare, inputs(2, 2) {}
    /// `a < b`, as `equal`.
    Less = "less", Compare, inputs(2, 2) {}
    /// `a <= b`, as `equal`.
    LessEqual = "less_equal", Compare, inputs(2, 2) {}
    /// `a > b`, as `equal`.
    Greater = "greater", Compare, inputs(2, 2) {}
    /// `a >= b`, as `equal`.
    GreaterEqual = "greater_equal", Compare, inputs(2, 2) {}

    /// `cond ? a : b` elementwise; `cond` is bool, `a` and `b` share a dtype; all three broadcast.
    Select = "select", Elementwise, inputs(3, 3) {}
    /// Converts the element type: f32->i64 truncates toward zero, bool->number gives 0/1,
    /// number->bool is `x != 0`.
    Cast = "cast", Elementwise, inputs(1, 1) { to: DType }

    /// Matrix product of the last two axes, `[.., M, K] x [.., K, N] -> [.., M, N]`; leading
    /// (batch) axes broadcast. Both inputs have rank >= 2.
    Matmul = "matmul", Linear, inputs(2, 2) {}
    /// `alpha * op(A) op(B) + beta * C` for 2-D `A`, `B` (`op` transposes when `trans_*`);
    /// the optional `C` broadcasts to `[M, N]`.
    Gemm = "gemm", Linear, inputs(2, 3) {
        trans_a: bool = false,
        trans_b: bool = false,
        alpha: Float = Float(1.0),
        beta: Float = Float(1.0),
    }

    /// 2-D convolution (cross-correlation) of NCHW `x` with weights `[C_out, C_in/groups, kH, kW]`
    /// and optional bias `[C_out]`. Output extent per axis:
    /// `(in + pad_before + pad_after - dilation*(k-1) - 1) / stride + 1`.
    Conv2d = "conv2d", Convolution, inputs(2, 3) {
        stride: [i64; 2] = [1, 1],
        pad: [i64; 4] = [0, 0, 0, 0],
        dilation: [i64; 2] = [1, 1],
        groups: i64 = 1,
    }
    /// Transposed convolution (the input-gradient of `conv2d`), weights
    /// `[C_in, C_out/groups, kH, kW]`, optional bias `[C_out]`. Output extent per axis:
    /// `(in-1)*stride - pad_before - pad_after + dilation*(k-1) + output_pad + 1`.
    ConvTranspose2d = "conv_transpose2d", Convolution, inputs(2, 3) {
        stride: [i64; 2] = [1, 1],
        pad: [i64; 4] = [0, 0, 0, 0],
        output_pad: [i64; 2] = [0, 0],
        dilation: [i64; 2] = [1, 1],
        groups: i64 = 1,
    }
    /// Weight gradient of `conv2d`: for input `x` and output gradient `dy` of a `conv2d` with
    /// these attributes and a `kernel`-sized weight, gives `dw: [C_out, C_in/groups, kH, kW]`
    /// with `dw[co, c, ky, kx] = sum over n, oy, ox of dy[n, co, oy, ox] *
    /// x[n, g*C_in/groups + c, oy*stride - pad + ky*dilation, ...]` (zero in the padding).
    Conv2dWeightGrad = "conv2d_weight_grad", Convolution, inputs(2, 2) {
        kernel: [i64; 2],
        stride: [i64; 2] = [1, 1],
        pad: [i64; 4] = [0, 0, 0, 0],
        dilation: [i64; 2] = [1, 1],
        groups: i64 = 1,
    }

    /// Winograd filter transform (see [`crate::winograd`]) of 3x3 conv weights `w:
    /// [C_out, C_in, 3, 3]` for output tiles of `tile` x `tile` (2 or 4): `U: [T, C_out, C_in]`
    /// with `T = (tile + 2)^2`, `U[i*(tile+2) + j, co, ci] = (G w[co, ci] G^T)[i, j]`. With
    /// `transposed`, `w` is a stride-1 `conv_transpose2d` weight `[C_in', C_out', 3, 3]` and
    /// the transform is that of the equivalent conv2d weight
    /// `w'[co, ci, ky, kx] = w[ci, co, 2 - ky, 2 - kx]`.
    WinogradFilter = "winograd_filter", Convolution, inputs(1, 1) {
        tile: i64,
        transposed: bool = false,
    }
    /// Winograd input transform of NCHW `x` padded by `pad` (zeros): the `(tile + 2)`-square
    /// windows at stride `tile` covering the output of a 3x3 stride-1 conv2d with that padding
    /// (`OH = H + pad_top + pad_bottom - 2`, likewise `OW`; `th = ceil(OH / tile)`,
    /// `tw = ceil(OW / tile)` windows, zeros beyond the image), each transformed as
    /// `B^T d B`: `V: [T, C, N*th*tw]`, `V[i*(tile+2) + j, c, (n*th + ti)*tw + tj] =
    /// (B^T d B)[i, j]` for the window of image `n`, channel `c` at row `ti*tile - pad_top`,
    /// column `tj*tile - pad_left`.
    WinogradInput = "winograd_input", Convolution, inputs(1, 1) {
        tile: i64,
        pad: [i64; 4] = [0, 0, 0, 0],
    }
    /// Winograd output transform: from the per-point products `M: [T, C, N*th*tw]`
    /// (`matmul(winograd_filter(w), winograd_input(x))`) to the conv2d output
    /// `y: [N, C, out[0], out[1]]`, each tile `A^T M A` cropped to the image, plus the optional
    /// bias `[C]`. `th = ceil(out[0] / tile)`, `tw = ceil(out[1] / tile)` and `N` is the
    /// third extent of `M` over `th*tw`.
    WinogradOutput = "winograd_output", Convolution, inputs(1, 2) {
        tile: i64,
        out: [i64; 2],
    }

    /// Maximum over each `kernel` window of NCHW `x`; padded positions never win.
    MaxPool2d = "max_pool2d", Pooling, inputs(1, 1) {
        kernel: [i64; 2],
        stride: [i64; 2],
        pad: [i64; 4] = [0, 0, 0, 0],
    }
    /// Mean over each window of NCHW `x`; padded positions count in the divisor only when
    /// `count_include_pad`.
    AvgPool2d = "avg_pool2d", Pooling, inputs(1, 1) {
        kernel: [i64; 2],
        stride: [i64; 2],
        pad: [i64; 4] = [0, 0, 0, 0],
        count_include_pad: bool = false,
    }
    /// Mean over the spatial axes: `[N, C, H, W] -> [N, C, 1, 1]`.
    GlobalAvgPool = "global_avg_pool", Pooling, inputs(1, 1) {}
    /// Gradient of `max_pool2d` with inputs `(x, dy)`: each window's `dy` goes to the window's
    /// first maximal real element of `x` (row-major), summed where windows overlap; result
    /// shaped like `x`.
    MaxPool2dGrad = "max_pool2d_grad", Pooling, inputs(2, 2) {
        kernel: [i64; 2],
        stride: [i64; 2],
        pad: [i64; 4] = [0, 0, 0, 0],
    }
    /// Gradient of `avg_pool2d` with inputs `(x, dy)` (`x` gives only the shape): each window's
    /// `dy`, divided by the window's divisor, is added to every real element of the window.
    AvgPool2dGrad = "avg_pool2d_grad", Pooling, inputs(2, 2) {
        kernel: [i64; 2],
        stride: [i64; 2],
        pad: [i64; 4] = [0, 0, 0, 0],
        count_include_pad: bool = false,
    }

    /// Inference batch norm over axis 1: `(x - mean) / sqrt(var + eps) * gamma + beta`, with
    /// inputs `(x, gamma, beta, mean, var)`, each parameter of shape `[C]`.
    BatchNorm = "batch_norm", Normalization, inputs(5, 5) { eps: Float = Float(1e-5) }
    /// Training batch norm over axis 1 with batch statistics, inputs `(x, gamma, beta)`.
    /// Three outputs: `y`, the batch mean `[C]` and the biased batch variance `[C]`
    /// (over every axis but 1).
    BatchNormTrain = "batch_norm_train", Normalization, inputs(3, 3) { eps: Float = Float(1e-5) }

    /// Softmax along `axis` (max-subtracted, so it does not overflow).
    Softmax = "softmax", Softmax, inputs(1, 1) { axis: i64 = -1 }
    /// `log(softmax(x))` along `axis`, computed stably as `x - max - log(sum(exp(x - max)))`.
    LogSoftmax = "log_softmax", Softmax, inputs(1, 1) { axis: i64 = -1 }

    /// Inverted dropout: keeps element `i` when `uniform(seed, counter, i) >= p` and scales kept
    /// elements by `1/(1-p)`. The optional second input is an i64 scalar counter (e.g. the
    /// step), so each step draws a new mask while a fixed seed stays reproducible.
    Dropout = "dropout", Random, inputs(1, 2) { p: Float, seed: i64 = 0 }
    /// Tensor of `shape` with elements uniform in `[low, high)`; optional i64 scalar counter input.
    RandomUniform = "random_uniform", Random, inputs(0, 1) {
        shape: Vec<i64>,
        low: Float = Float(0.0),
        high: Float = Float(1.0),
        seed: i64 = 0,
    }
    /// Tensor of `shape` with normal elements (Box-Muller); optional i64 scalar counter input.
    RandomNormal = "random_normal", Random, inputs(0, 1) {
        shape: Vec<i64>,
        mean: Float = Float(0.0),
        std: Float = Float(1.0),
        seed: i64 = 0,
    }
    /// 1.0 with probability `p[i]` (the input), else 0.0: `uniform(seed, counter, i) < p[i]`.
    /// For RBM sampling. Optional i64 scalar counter input.
    Bernoulli = "bernoulli", Random, inputs(1, 2) { seed: i64 = 0 }
    /// Stochastic pooling (Zeiler and Fergus, 2013) of a non-negative NCHW input over
    /// non-overlapping `kernel x kernel` windows (`kernel` divides the height and width): each
    /// window outputs one of its elements, element `i` with probability `x[i] / sum(window)`.
    /// Optional i64 scalar counter input. A composite op: defined by its expansion
    /// (`sinter_ir::composite`), which the stages apply on entry; `inference_graph` replaces
    /// it by the probability-weighted average.
    StochasticPool2d = "stochastic_pool2d", Random, inputs(1, 2) { kernel: i64, seed: i64 = 0 }

    /// Sum over `axes` (empty: every axis); removed axes are kept as 1 when `keepdims`.
    ReduceSum = "reduce_sum", Reduction, inputs(1, 1) { axes: Vec<i64>, keepdims: bool = false }
    /// Mean over `axes`, as `reduce_sum`.
    ReduceMean = "reduce_mean", Reduction, inputs(1, 1) { axes: Vec<i64>, keepdims: bool = false }
    /// Maximum over `axes`, as `reduce_sum`.
    ReduceMax = "reduce_max", Reduction, inputs(1, 1) { axes: Vec<i64>, keepdims: bool = false }
    /// Index (i64) of the first maximum along `axis`.
    Argmax = "argmax", Reduction, inputs(1, 1) { axis: i64, keepdims: bool = false }

    /// Same elements, new shape; one entry may be -1 (inferred). Any dtype.
    Reshape = "reshape", Movement, inputs(1, 1) { shape: Vec<i64> }
    /// Permutes axes: output axis `i` is input axis `perm[i]`. Any dtype.
    Transpose = "transpose", Movement, inputs(1, 1) { perm: Vec<i64> }
    /// Broadcasts to `shape` by numpy rules (the input's shape must be broadcastable to it).
    Broadcast = "broadcast", Movement, inputs(1, 1) { shape: Vec<i64> }
    /// Joins inputs along `axis`; all other extents and the dtype must match.
    Concat = "concat", Movement, inputs(1, VARIADIC) { axis: i64 }
    /// Cuts `x` along `axis` into pieces of `sizes` (which sum to the extent): one output each.
    Split = "split", Movement, inputs(1, 1) { axis: i64, sizes: Vec<i64> }
    /// Strided slice on `axes`, numpy style: negative `starts`/`ends` count from the end and are
    /// clamped to the extent; `steps` are positive.
    Slice = "slice", Movement, inputs(1, 1) {
        axes: Vec<i64>,
        starts: Vec<i64>,
        ends: Vec<i64>,
        steps: Vec<i64>,
    }
    /// Constant padding; `pads` holds every axis's before-pad then every axis's after-pad
    /// (ONNX order), all >= 0.
    Pad = "pad", Movement, inputs(1, 1) { pads: Vec<i64>, value: Float = Float(0.0) }
    /// Reshapes to 2-D `[prod(shape[..axis]), prod(shape[axis..])]`.
    Flatten = "flatten", Movement, inputs(1, 1) { axis: i64 = 1 }

    /// Takes slices of `data` along `axis` at i64 `indices` (negative counts from the end):
    /// output shape `data[..axis] ++ indices ++ data[axis+1..]`. Out-of-range is an error.
    Gather = "gather", Indexing, inputs(2, 2) { axis: i64 = 0 }
    /// f32 one-hot encoding of i64 `indices` with a new last axis of `depth`; an index
    /// outside `0..depth` gives an all-zero row.
    OneHot = "one_hot", Indexing, inputs(1, 1) { depth: i64 }
    /// The adjoint of `gather`: inputs `(indices, updates)`; starts from zeros of shape
    /// `updates[..axis] ++ [extent] ++ updates[axis+rank(indices)..]` and adds each slice of
    /// `updates` at its index along `axis` (negative indices count from the end; repeated
    /// indices accumulate; out of range is an error).
    ScatterAdd = "scatter_add", Indexing, inputs(2, 2) { axis: i64, extent: i64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_round_trip() {
        for (i, k) in OpKind::ALL.iter().enumerate() {
            assert_eq!(OpKind::from_name(k.name()), Some(*k));
            for other in &OpKind::ALL[..i] {
                assert_ne!(other.name(), k.name());
            }
            assert!(!k.info().doc.trim().is_empty(), "{} has no doc", k.name());
        }
    }

    #[test]
    fn defaults_and_errors() {
        let op = OpKind::Conv2d.default_op().unwrap();
        assert_eq!(
            op,
            Op::Conv2d {
                stride: [1, 1],
                pad: [0; 4],
                dilation: [1, 1],
                groups: 1
            }
        );
        let e = OpKind::MaxPool2d.default_op().unwrap_err();
        assert!(e.contains("missing attribute `kernel`"), "{e}");
        let e = OpKind::Relu
            .with_attrs(&[("x".into(), AttrValue::Int(1))])
            .unwrap_err();
        assert!(e.contains("unknown attribute `x` for `relu`"), "{e}");
        let e = OpKind::Conv2d
            .with_attrs(&[("stride".into(), AttrValue::Ints(vec![1]))])
            .unwrap_err();
        assert!(e.contains("list of 2 ints"), "{e}");
    }
}
