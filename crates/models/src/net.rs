//! `Net`: the layer vocabulary the zoo is written in, over a [`Graph`].
//!
//! [`sinter_ir::Builder`] names every value automatically and has no way to name the three
//! results of `batch_norm_train`. The running statistics of a batch norm are named after its
//! first result (`<y>.running_mean`, see `crates/autodiff/src/train.rs`), so a zoo model must
//! name it to keep those names stable between its training and inference forms and readable
//! in checkpoints. `Net` therefore adds ops to the graph itself, naming each layer's output
//! after the layer (`conv1`, `layer1.0.bn1`) and its parameters `<layer>.w`, `<layer>.b`
//! (batch norm: `<layer>.gamma`, `<layer>.beta`); intermediate values get fresh numbers as
//! the builder gives them. The losses are the builder's compositions, op for op.

use crate::{BuildError, Mode, Pooling};
use sinter_ir::composite::stochastic_pool_inference;
use sinter_ir::rng::STEP_INPUT;
use sinter_ir::{Graph, InputKind, IrError, Op, Tensor, TensorType, Value};

type R<T> = Result<T, BuildError>;

/// A graph under construction with the zoo's naming conventions.
pub(crate) struct Net {
    g: Graph,
    next: usize,
    /// Batch norm in training mode (`batch_norm_train`) or inference mode (`batch_norm`).
    pub mode: Mode,
}

impl Net {
    pub fn new(name: &str, mode: Mode) -> Net {
        Net {
            g: Graph::new(name),
            next: 0,
            mode,
        }
    }

    pub fn shape(&self, v: Value) -> &[usize] {
        &self.g.ty(v).shape
    }

    fn fresh(&mut self) -> String {
        loop {
            let name = self.next.to_string();
            self.next += 1;
            if self.g.find(&name).is_none() {
                return name;
            }
        }
    }

    pub fn input(&mut self, name: &str, ty: TensorType) -> R<Value> {
        Ok(self.g.add_input(name, ty, InputKind::Data)?)
    }

    pub fn param(&mut self, name: &str, shape: &[usize]) -> R<Value> {
        Ok(self
            .g
            .add_input(name, TensorType::f32(shape), InputKind::Param)?)
    }

    /// A weight input: a parameter, or a data input when `frozen` (fed, not trained).
    pub fn weight(&mut self, name: &str, shape: &[usize], frozen: bool) -> R<Value> {
        let kind = if frozen {
            InputKind::Data
        } else {
            InputKind::Param
        };
        Ok(self.g.add_input(name, TensorType::f32(shape), kind)?)
    }

    pub fn constant(&mut self, t: Tensor) -> R<Value> {
        let name = self.fresh();
        Ok(self.g.add_const(&name, t)?)
    }

    /// A single-output op with a fresh name.
    pub fn op(&mut self, op: Op, ins: &[Value]) -> R<Value> {
        let name = self.fresh();
        self.named(&name, op, ins)
    }

    /// A single-output op called `name`.
    pub fn named(&mut self, name: &str, op: Op, ins: &[Value]) -> R<Value> {
        Ok(self.g.add_op(&[name], op, ins)?[0])
    }

    pub fn finish(mut self, outputs: &[Value]) -> R<Graph> {
        self.g.set_outputs(outputs)?;
        self.g.verify()?;
        Ok(self.g)
    }

    // ---- elementwise and movement ----

    pub fn relu(&mut self, x: Value) -> R<Value> {
        self.op(Op::Relu {}, &[x])
    }

    pub fn leaky_relu(&mut self, x: Value, alpha: f32) -> R<Value> {
        self.op(
            Op::LeakyRelu {
                alpha: alpha.into(),
            },
            &[x],
        )
    }

    pub fn add(&mut self, a: Value, b: Value) -> R<Value> {
        self.op(Op::Add {}, &[a, b])
    }

    pub fn mul(&mut self, a: Value, b: Value) -> R<Value> {
        self.op(Op::Mul {}, &[a, b])
    }

    pub fn reshape(&mut self, x: Value, shape: &[i64]) -> R<Value> {
        self.op(
            Op::Reshape {
                shape: shape.to_vec(),
            },
            &[x],
        )
    }

    pub fn flatten(&mut self, x: Value) -> R<Value> {
        self.op(Op::Flatten { axis: 1 }, &[x])
    }

    // ---- layers ----

    /// `x @ <name>.w + <name>.b` for `x: [N, K]`, called `name`.
    pub fn linear(&mut self, name: &str, x: Value, out: usize) -> R<Value> {
        self.linear_in(name, x, out, false)
    }

    /// [`Net::linear`] with the weights as data inputs when `frozen`.
    pub fn linear_in(&mut self, name: &str, x: Value, out: usize, frozen: bool) -> R<Value> {
        let k = self.shape(x)[1];
        let w = self.weight(&format!("{name}.w"), &[k, out], frozen)?;
        let b = self.weight(&format!("{name}.b"), &[out], frozen)?;
        let op = Op::Gemm {
            trans_a: false,
            trans_b: false,
            alpha: 1.0.into(),
            beta: 1.0.into(),
        };
        self.named(name, op, &[x, w, b])
    }

    /// A square `k`x`k` convolution to `out` channels, called `name`, with a bias unless
    /// `bias` is false (a batch norm follows).
    #[allow(clippy::too_many_arguments)]
    pub fn conv(
        &mut self,
        name: &str,
        x: Value,
        out: usize,
        k: usize,
        stride: usize,
        pad: usize,
        bias: bool,
        frozen: bool,
    ) -> R<Value> {
        let c = self.shape(x)[1];
        let w = self.weight(&format!("{name}.w"), &[out, c, k, k], frozen)?;
        let mut ins = vec![x, w];
        if bias {
            ins.push(self.weight(&format!("{name}.b"), &[out], frozen)?);
        }
        let op = Op::Conv2d {
            stride: [stride as i64; 2],
            pad: [pad as i64; 4],
            dilation: [1, 1],
            groups: 1,
        };
        self.named(name, op, &ins)
    }

    /// A square `k`x`k` transposed convolution to `out` channels without bias, called `name`.
    pub fn conv_transpose(
        &mut self,
        name: &str,
        x: Value,
        out: usize,
        k: usize,
        stride: usize,
        pad: usize,
    ) -> R<Value> {
        let c = self.shape(x)[1];
        let w = self.param(&format!("{name}.w"), &[c, out, k, k])?;
        let op = Op::ConvTranspose2d {
            stride: [stride as i64; 2],
            pad: [pad as i64; 4],
            output_pad: [0, 0],
            dilation: [1, 1],
            groups: 1,
        };
        self.named(name, op, &[x, w])
    }

    /// Batch norm over the channels, called `name`, with parameters `<name>.gamma` and
    /// `<name>.beta`. In [`Mode::Train`] it is `batch_norm_train` (results `name`,
    /// `<name>.batch_mean`, `<name>.batch_var`); in [`Mode::Inference`] `batch_norm` reading
    /// the data inputs `<name>.running_mean` and `<name>.running_var`, exactly as
    /// `sinter_autodiff::inference_graph` rewrites the training form.
    pub fn batch_norm(&mut self, name: &str, x: Value) -> R<Value> {
        let c = self.shape(x)[1];
        let gamma = self.param(&format!("{name}.gamma"), &[c])?;
        let beta = self.param(&format!("{name}.beta"), &[c])?;
        let eps = 1e-5.into();
        match self.mode {
            Mode::Train => {
                let (m, v) = (format!("{name}.batch_mean"), format!("{name}.batch_var"));
                let outs = self.g.add_op(
                    &[name, &m, &v],
                    Op::BatchNormTrain { eps },
                    &[x, gamma, beta],
                )?;
                Ok(outs[0])
            }
            Mode::Inference => {
                let ty = TensorType::f32(&[c]);
                let m = self.input(&format!("{name}.running_mean"), ty.clone())?;
                let v = self.input(&format!("{name}.running_var"), ty)?;
                self.named(name, Op::BatchNorm { eps }, &[x, gamma, beta, m, v])
            }
        }
    }

    pub fn max_pool(&mut self, x: Value, k: usize, stride: usize, pad: [usize; 4]) -> R<Value> {
        self.op(
            Op::MaxPool2d {
                kernel: [k as i64; 2],
                stride: [stride as i64; 2],
                pad: pad.map(|p| p as i64),
            },
            &[x],
        )
    }

    /// Non-overlapping `k x k` pooling of the given kind (see [`Pooling`]).
    pub fn pool(&mut self, kind: Pooling, x: Value, k: usize) -> R<Value> {
        match (kind, self.mode) {
            (Pooling::Max, _) => self.max_pool(x, k, k, [0; 4]),
            (Pooling::Stochastic { seed }, Mode::Train) => {
                let step = match self.g.find(STEP_INPUT) {
                    Some(v) => v,
                    None => self.input(STEP_INPUT, TensorType::i64(&[]))?,
                };
                let op = Op::StochasticPool2d {
                    kernel: k as i64,
                    seed,
                };
                self.op(op, &[x, step])
            }
            (Pooling::Stochastic { .. }, Mode::Inference) => {
                let name = self.fresh();
                Ok(stochastic_pool_inference(&mut self.g, &name, x, k)?)
            }
        }
    }

    /// Global average pooling flattened to `[N, C]`.
    pub fn global_avg_pool(&mut self, x: Value) -> R<Value> {
        let p = self.op(Op::GlobalAvgPool {}, &[x])?;
        self.flatten(p)
    }

    // ---- losses (the compositions of `sinter_ir::Builder`), the result called `loss` ----

    /// `-mean_n sum_c one_hot(labels) * log_softmax(logits)`.
    pub fn softmax_cross_entropy(&mut self, logits: Value, labels: Value) -> R<Value> {
        let classes = self.shape(logits)[1] as i64;
        let logp = self.op(Op::LogSoftmax { axis: -1 }, &[logits])?;
        let onehot = self.op(Op::OneHot { depth: classes }, &[labels])?;
        let picked = self.mul(onehot, logp)?;
        let per_row = self.op(
            Op::ReduceSum {
                axes: vec![1],
                keepdims: false,
            },
            &[picked],
        )?;
        let mean = self.mean(per_row)?;
        self.named("loss", Op::Neg {}, &[mean])
    }

    fn mean(&mut self, x: Value) -> R<Value> {
        self.op(
            Op::ReduceMean {
                axes: vec![],
                keepdims: false,
            },
            &[x],
        )
    }

    /// `mean((pred - target)^2)`.
    pub fn mse(&mut self, pred: Value, target: Value) -> R<Value> {
        let d = self.op(Op::Sub {}, &[pred, target])?;
        let sq = self.mul(d, d)?;
        self.named(
            "loss",
            Op::ReduceMean {
                axes: vec![],
                keepdims: false,
            },
            &[sq],
        )
    }

    /// Binary cross-entropy with logits, `max(z, 0) - z*y + log(1 + exp(-|z|))` averaged.
    pub fn bce_with_logits(&mut self, z: Value, y: Value) -> R<Value> {
        let zero = self.constant(Tensor::scalar(0.0))?;
        let one = self.constant(Tensor::scalar(1.0))?;
        let pos = self.op(Op::Max {}, &[z, zero])?;
        let zy = self.mul(z, y)?;
        let a = self.op(Op::Sub {}, &[pos, zy])?;
        let absz = self.op(Op::Abs {}, &[z])?;
        let nabs = self.op(Op::Neg {}, &[absz])?;
        let e = self.op(Op::Exp {}, &[nabs])?;
        let onep = self.add(one, e)?;
        let l = self.op(Op::Log {}, &[onep])?;
        let total = self.add(a, l)?;
        self.named(
            "loss",
            Op::ReduceMean {
                axes: vec![],
                keepdims: false,
            },
            &[total],
        )
    }
}

impl From<IrError> for BuildError {
    fn from(e: IrError) -> BuildError {
        BuildError::Ir(e)
    }
}

impl Net {
    /// A multi-output op with the given result names.
    pub fn multi(&mut self, names: &[&str], op: Op, ins: &[Value]) -> R<Vec<Value>> {
        Ok(self.g.add_op(names, op, ins)?.into_vec())
    }
}
