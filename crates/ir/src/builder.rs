//! The builder: writing graphs in Rust, with the same checks as the text format.
//!
//! A [`Builder`] wraps a [`Graph`] and names values automatically (`%0`, `%1`, ... skipping
//! names already taken), so model code reads like the math. Every method checks shapes at
//! once and returns the located [`IrError`], so a mistake in a model builder surfaces at the
//! line that made it. Losses that are not primitive ops are written here as compositions
//! (see `ir-spec/compositions.md`), so later stages see only primitives.
//!
//! ```
//! use sinter_ir::{Builder, TensorType};
//! let mut b = Builder::new("mlp");
//! let x = b.input("x", TensorType::f32(&[4, 8])).unwrap();
//! let w = b.param("w", TensorType::f32(&[8, 3])).unwrap();
//! let h = b.matmul(x, w).unwrap();
//! let y = b.relu(h).unwrap();
//! let g = b.finish(&[y]).unwrap();
//! assert_eq!(g.ty(y).to_string(), "f32[4,3]");
//! ```

use crate::error::IrError;
use crate::graph::{Graph, InputKind, Value};
use crate::infer::infer;
use crate::ops::Op;
use crate::tensor::Tensor;
use crate::types::TensorType;
use smallvec::SmallVec;

type R<T> = Result<T, IrError>;

/// Builds a [`Graph`] op by op. See the [module docs](self).
pub struct Builder {
    graph: Graph,
    next: usize,
}

macro_rules! unary_methods {
    ($($(#[$m:meta])* $name:ident => $op:ident),* $(,)?) => {
        $( $(#[$m])* pub fn $name(&mut self, x: Value) -> R<Value> { self.op(Op::$op {}, &[x]) } )*
    };
}

macro_rules! binary_methods {
    ($($(#[$m:meta])* $name:ident => $op:ident),* $(,)?) => {
        $( $(#[$m])* pub fn $name(&mut self, a: Value, b: Value) -> R<Value> { self.op(Op::$op {}, &[a, b]) } )*
    };
}

impl Builder {
    /// A builder for a graph called `name`.
    pub fn new(name: &str) -> Builder {
        Builder {
            graph: Graph::new(name),
            next: 0,
        }
    }

    /// The graph so far.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The type of a value.
    pub fn ty(&self, v: Value) -> &TensorType {
        self.graph.ty(v)
    }

    /// The shape of a value.
    pub fn shape(&self, v: Value) -> &[usize] {
        &self.graph.ty(v).shape
    }

    fn fresh(&mut self) -> String {
        loop {
            let name = self.next.to_string();
            self.next += 1;
            if self.graph.find(&name).is_none() {
                return name;
            }
        }
    }

    /// A data input fed on every run.
    pub fn input(&mut self, name: &str, ty: TensorType) -> R<Value> {
        self.graph.add_input(name, ty, InputKind::Data)
    }

    /// A trainable parameter.
    pub fn param(&mut self, name: &str, ty: TensorType) -> R<Value> {
        self.graph.add_input(name, ty, InputKind::Param)
    }

    /// A constant with an automatic name.
    pub fn constant(&mut self, t: Tensor) -> R<Value> {
        let name = self.fresh();
        self.graph.add_const(&name, t)
    }

    /// A constant with a given name.
    pub fn named_constant(&mut self, name: &str, t: Tensor) -> R<Value> {
        self.graph.add_const(name, t)
    }

    /// An `f32[]` scalar constant (broadcasts against anything).
    pub fn scalar(&mut self, v: f32) -> R<Value> {
        self.constant(Tensor::scalar(v))
    }

    /// Applies a single-output op.
    pub fn op(&mut self, op: Op, inputs: &[Value]) -> R<Value> {
        let outs = self.op_multi(op, inputs)?;
        if outs.len() != 1 {
            let name = self.graph.value_name(outs[0]).to_string();
            return Err(IrError::node(
                format!("%{name}"),
                format!("has {} outputs: use `op_multi`", outs.len()),
            ));
        }
        Ok(outs[0])
    }

    /// Applies an op with automatically named outputs (any number of them).
    pub fn op_multi(&mut self, op: Op, inputs: &[Value]) -> R<SmallVec<[Value; 1]>> {
        let tys: Vec<&TensorType> = inputs.iter().map(|v| self.graph.ty(*v)).collect();
        // On a shape error, one name is enough: `add_op` reports the error at the node.
        let n = infer(&op, &tys).map(|t| t.len()).unwrap_or(1);
        let names: Vec<String> = (0..n).map(|_| self.fresh()).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        self.graph.add_op(&refs, op, inputs)
    }

    /// Applies a single-output op whose result gets `name`.
    pub fn named(&mut self, name: &str, op: Op, inputs: &[Value]) -> R<Value> {
        Ok(self.graph.add_op(&[name], op, inputs)?[0])
    }

    /// Finishes the graph with the given outputs, verified.
    pub fn finish(mut self, outputs: &[Value]) -> R<Graph> {
        self.graph.set_outputs(outputs)?;
        self.graph.verify()?;
        Ok(self.graph)
    }

    unary_methods! {
        /// `-x`.
        neg => Neg,
        /// `e^x`.
        exp => Exp,
        /// `ln x`.
        log => Log,
        /// `sqrt x`.
        sqrt => Sqrt,
        /// `1/sqrt x`.
        rsqrt => Rsqrt,
        /// `|x|`.
        abs => Abs,
        /// `max(x, 0)`.
        relu => Relu,
        /// Logistic sigmoid.
        sigmoid => Sigmoid,
        /// Hyperbolic tangent.
        tanh => Tanh,
        /// `[N, C, H, W] -> [N, C, 1, 1]` mean.
        global_avg_pool => GlobalAvgPool,
    }

    binary_methods! {
        /// `a + b` (broadcasting).
        add => Add,
        /// `a - b` (broadcasting).
        sub => Sub,
        /// `a * b` (broadcasting).
        mul => Mul,
        /// `a / b` (broadcasting).
        div => Div,
        /// Elementwise maximum.
        max => Max,
        /// Elementwise minimum.
        min => Min,
        /// `a ^ b`.
        pow => Pow,
        /// Parametric ReLU with a learnable slope.
        prelu => Prelu,
        /// Batched matrix product.
        matmul => Matmul,
    }

    /// Leaky ReLU with slope `alpha` below zero.
    pub fn leaky_relu(&mut self, x: Value, alpha: f32) -> R<Value> {
        self.op(
            Op::LeakyRelu {
                alpha: alpha.into(),
            },
            &[x],
        )
    }

    /// `x @ w + b` for `x: [N, K]`, `w: [K, M]`, `b: [M]` (a `gemm`).
    pub fn linear(&mut self, x: Value, w: Value, b: Option<Value>) -> R<Value> {
        let op = Op::Gemm {
            trans_a: false,
            trans_b: false,
            alpha: 1.0.into(),
            beta: 1.0.into(),
        };
        match b {
            Some(b) => self.op(op, &[x, w, b]),
            None => self.op(op, &[x, w]),
        }
    }

    /// Square-kernel convolution with equal stride and padding on both axes; use
    /// [`Builder::op`] with [`Op::Conv2d`] for anything else.
    pub fn conv2d(
        &mut self,
        x: Value,
        w: Value,
        b: Option<Value>,
        stride: i64,
        pad: i64,
    ) -> R<Value> {
        let op = Op::Conv2d {
            stride: [stride; 2],
            pad: [pad; 4],
            dilation: [1, 1],
            groups: 1,
        };
        match b {
            Some(b) => self.op(op, &[x, w, b]),
            None => self.op(op, &[x, w]),
        }
    }

    /// Max pooling with a square window.
    pub fn max_pool2d(&mut self, x: Value, kernel: i64, stride: i64) -> R<Value> {
        self.op(
            Op::MaxPool2d {
                kernel: [kernel; 2],
                stride: [stride; 2],
                pad: [0; 4],
            },
            &[x],
        )
    }

    /// Average pooling with a square window.
    pub fn avg_pool2d(&mut self, x: Value, kernel: i64, stride: i64) -> R<Value> {
        let op = Op::AvgPool2d {
            kernel: [kernel; 2],
            stride: [stride; 2],
            pad: [0; 4],
            count_include_pad: false,
        };
        self.op(op, &[x])
    }

    /// Stochastic pooling (Zeiler and Fergus, 2013) over non-overlapping `k x k` windows of a
    /// non-negative NCHW `x` (say, a relu's output) whose height and width `k` divides.
    ///
    /// With `sample = Some((seed, counter))` (training) it is the op `stochastic_pool2d`: each
    /// window outputs one of its elements, element `i` with probability `x_i / sum(x)` (the
    /// first element of an all-zero window, which is 0 either way), drawn by the Gumbel-max
    /// trick from `random_uniform` seeded by `seed` and the optional i64 scalar `counter`; the
    /// gradient flows to the chosen element only, as in max pooling. With `sample = None`
    /// (inference) it is the composition `inference_graph` puts in the op's place: each
    /// window's probability-weighted average `sum(x_i^2) / sum(x_i)` (0 for an all-zero
    /// window). See [`crate::composite`].
    pub fn stochastic_pool2d(
        &mut self,
        x: Value,
        k: usize,
        sample: Option<(i64, Option<Value>)>,
    ) -> R<Value> {
        match sample {
            Some((seed, counter)) => {
                let op = Op::StochasticPool2d {
                    kernel: k as i64,
                    seed,
                };
                match counter {
                    Some(c) => self.op(op, &[x, c]),
                    None => self.op(op, &[x]),
                }
            }
            None => {
                let name = self.fresh();
                crate::composite::stochastic_pool_inference(&mut self.graph, &name, x, k)
            }
        }
    }

    /// Inference batch norm.
    pub fn batch_norm(
        &mut self,
        x: Value,
        gamma: Value,
        beta: Value,
        mean: Value,
        var: Value,
        eps: f32,
    ) -> R<Value> {
        self.op(
            Op::BatchNorm { eps: eps.into() },
            &[x, gamma, beta, mean, var],
        )
    }

    /// Softmax along `axis`.
    pub fn softmax(&mut self, x: Value, axis: i64) -> R<Value> {
        self.op(Op::Softmax { axis }, &[x])
    }

    /// Log-softmax along `axis`.
    pub fn log_softmax(&mut self, x: Value, axis: i64) -> R<Value> {
        self.op(Op::LogSoftmax { axis }, &[x])
    }

    /// Sum over `axes` (empty: all).
    pub fn reduce_sum(&mut self, x: Value, axes: &[i64], keepdims: bool) -> R<Value> {
        self.op(
            Op::ReduceSum {
                axes: axes.to_vec(),
                keepdims,
            },
            &[x],
        )
    }

    /// Mean over `axes` (empty: all).
    pub fn reduce_mean(&mut self, x: Value, axes: &[i64], keepdims: bool) -> R<Value> {
        self.op(
            Op::ReduceMean {
                axes: axes.to_vec(),
                keepdims,
            },
            &[x],
        )
    }

    /// New shape, one entry may be -1.
    pub fn reshape(&mut self, x: Value, shape: &[i64]) -> R<Value> {
        self.op(
            Op::Reshape {
                shape: shape.to_vec(),
            },
            &[x],
        )
    }

    /// Permutes axes.
    pub fn transpose(&mut self, x: Value, perm: &[i64]) -> R<Value> {
        self.op(
            Op::Transpose {
                perm: perm.to_vec(),
            },
            &[x],
        )
    }

    /// `[prod(shape[..axis]), prod(shape[axis..])]`.
    pub fn flatten(&mut self, x: Value, axis: i64) -> R<Value> {
        self.op(Op::Flatten { axis }, &[x])
    }

    /// Joins along `axis`.
    pub fn concat(&mut self, xs: &[Value], axis: i64) -> R<Value> {
        self.op(Op::Concat { axis }, xs)
    }

    /// Cuts along `axis` into pieces of `sizes`.
    pub fn split(&mut self, x: Value, axis: i64, sizes: &[i64]) -> R<SmallVec<[Value; 1]>> {
        self.op_multi(
            Op::Split {
                axis,
                sizes: sizes.to_vec(),
            },
            &[x],
        )
    }

    /// Softmax cross-entropy of `logits: f32[N, C]` against integer `labels: i64[N]`, averaged
    /// over the batch: `-mean_n sum_c one_hot(labels)[n, c] * log_softmax(logits)[n, c]`.
    pub fn softmax_cross_entropy(&mut self, logits: Value, labels: Value) -> R<Value> {
        let classes = match self.shape(logits) {
            [_, c] => *c as i64,
            s => {
                let s = crate::types::ShapeDisplay(s).to_string();
                return Err(IrError::node(
                    format!("%{}", self.graph.value_name(logits)),
                    format!("softmax_cross_entropy wants logits [N, C], got {s}"),
                ));
            }
        };
        let logp = self.log_softmax(logits, -1)?;
        let onehot = self.op(Op::OneHot { depth: classes }, &[labels])?;
        let picked = self.mul(onehot, logp)?;
        let per_row = self.reduce_sum(picked, &[1], false)?;
        let mean = self.reduce_mean(per_row, &[], false)?;
        self.neg(mean)
    }

    /// Mean squared error `mean((pred - target)^2)`.
    pub fn mse(&mut self, pred: Value, target: Value) -> R<Value> {
        let d = self.sub(pred, target)?;
        let sq = self.mul(d, d)?;
        self.reduce_mean(sq, &[], false)
    }

    /// Binary cross-entropy with logits `z` and targets `y` in `[0, 1]`, averaged, in the
    /// stable form `max(z, 0) - z*y + log(1 + exp(-|z|))`.
    pub fn bce_with_logits(&mut self, z: Value, y: Value) -> R<Value> {
        let zero = self.scalar(0.0)?;
        let one = self.scalar(1.0)?;
        let pos = self.max(z, zero)?;
        let zy = self.mul(z, y)?;
        let a = self.sub(pos, zy)?;
        let absz = self.abs(z)?;
        let nabs = self.neg(absz)?;
        let e = self.exp(nabs)?;
        let onep = self.add(one, e)?;
        let l = self.log(onep)?;
        let total = self.add(a, l)?;
        self.reduce_mean(total, &[], false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_names_skip_taken_names() {
        let mut b = Builder::new("g");
        let x = b.input("0", TensorType::f32(&[2])).unwrap();
        let y = b.relu(x).unwrap();
        assert_eq!(b.graph().value_name(y), "1");
        let g = b.finish(&[y]).unwrap();
        assert_eq!(g.nodes().len(), 2);
    }

    #[test]
    fn errors_name_the_node() {
        let mut b = Builder::new("g");
        let x = b.input("x", TensorType::f32(&[1, 3, 8, 8])).unwrap();
        let w = b.param("w", TensorType::f32(&[4, 1, 3, 3])).unwrap();
        let e = b.conv2d(x, w, None, 1, 0).unwrap_err();
        assert_eq!(
            e.to_string(),
            "%0 = conv2d(%x, %w): input f32[1,3,8,8] has 3 channels, weight f32[4,1,3,3] expects 1"
        );
    }

    #[test]
    fn stochastic_pooling_needs_windows_that_divide() {
        let mut b = Builder::new("g");
        let x = b.input("x", TensorType::f32(&[1, 1, 3, 4])).unwrap();
        let e = b.stochastic_pool2d(x, 2, None).unwrap_err().to_string();
        assert!(
            e.contains("%x (f32[1,1,3,4])") && e.contains("window 2"),
            "{e}"
        );
        let y = b.input("y", TensorType::f32(&[3, 4])).unwrap();
        let e = b.stochastic_pool2d(y, 2, None).unwrap_err().to_string();
        assert!(e.contains("NCHW"), "{e}");
        // The training form is the op, checked by its shape rule.
        let e = b
            .stochastic_pool2d(x, 2, Some((0, None)))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("stochastic_pool2d") && e.contains("f32[1,1,3,4]") && e.contains("divide"),
            "{e}"
        );
    }

    #[test]
    fn losses_are_scalars() {
        let mut b = Builder::new("g");
        let z = b.input("z", TensorType::f32(&[4, 3])).unwrap();
        let l = b.input("l", TensorType::i64(&[4])).unwrap();
        let y = b.input("y", TensorType::f32(&[4, 3])).unwrap();
        let ce = b.softmax_cross_entropy(z, l).unwrap();
        let mse = b.mse(z, y).unwrap();
        let bce = b.bce_with_logits(z, y).unwrap();
        for v in [ce, mse, bce] {
            assert_eq!(b.ty(v), &TensorType::f32(&[]));
        }
        let e = b.softmax_cross_entropy(y, y).unwrap_err().to_string();
        assert!(e.contains("indices must be i64"), "{e}");
    }
}
