//! [`Emitter`]: appends nodes to a graph under fresh names, for the backward and update code.
//!
//! The gradient rules and the optimiser updates are written as short sequences of primitive
//! ops; this wrapper keeps them readable (`e.mul(g, y)?`) and gives every new value a name
//! with a common prefix (`d.17`), skipping names already taken, so the generated graph never
//! collides with the forward graph's names. Every node goes through [`Graph::add_op`], so the
//! generated code is shape-checked as it is emitted.

use sinter_ir::{DType, Graph, IrError, Op, Tensor, TensorType, Value};
use smallvec::SmallVec;

type R<T> = Result<T, IrError>;

/// Appends ops to a graph, naming results `<prefix>.<n>`.
pub(crate) struct Emitter<'g> {
    pub(crate) g: &'g mut Graph,
    prefix: String,
    next: usize,
    /// Scalar constants emitted so far, by bit pattern: each is emitted once.
    scalars: std::collections::HashMap<u32, Value>,
}

impl<'g> Emitter<'g> {
    /// An emitter over `g` whose values are called `<prefix>.0`, `<prefix>.1`, ...
    pub(crate) fn new(g: &'g mut Graph, prefix: &str) -> Emitter<'g> {
        Emitter {
            g,
            prefix: prefix.to_string(),
            next: 0,
            scalars: std::collections::HashMap::new(),
        }
    }

    /// A fresh name, for code that adds its own nodes (and names its parts after it).
    pub(crate) fn fresh_name(&mut self) -> String {
        self.fresh()
    }

    fn fresh(&mut self) -> String {
        loop {
            let name = format!("{}.{}", self.prefix, self.next);
            self.next += 1;
            if self.g.find(&name).is_none() {
                return name;
            }
        }
    }

    /// The type of a value.
    pub(crate) fn ty(&self, v: Value) -> TensorType {
        self.g.ty(v).clone()
    }

    /// The shape of a value.
    pub(crate) fn shape(&self, v: Value) -> Vec<usize> {
        self.g.ty(v).shape.to_vec()
    }

    /// A single-output op.
    pub(crate) fn op(&mut self, op: Op, inputs: &[Value]) -> R<Value> {
        Ok(self.op_multi(op, inputs, 1)?[0])
    }

    /// An op with `n` outputs.
    pub(crate) fn op_multi(
        &mut self,
        op: Op,
        inputs: &[Value],
        n: usize,
    ) -> R<SmallVec<[Value; 1]>> {
        let names: Vec<String> = (0..n).map(|_| self.fresh()).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        self.g.add_op(&refs, op, inputs)
    }

    /// A constant tensor.
    pub(crate) fn constant(&mut self, t: Tensor) -> R<Value> {
        let name = self.fresh();
        self.g.add_const(&name, t)
    }

    /// An `f32[]` constant (one node per distinct value).
    pub(crate) fn scalar(&mut self, v: f32) -> R<Value> {
        if let Some(&c) = self.scalars.get(&v.to_bits()) {
            return Ok(c);
        }
        let c = self.constant(Tensor::scalar(v))?;
        self.scalars.insert(v.to_bits(), c);
        Ok(c)
    }

    /// An f32 zero tensor of `shape` (stored as a scalar broadcast, so it stays small).
    pub(crate) fn zeros(&mut self, shape: &[usize]) -> R<Value> {
        let z = self.scalar(0.0)?;
        self.broadcast(z, shape)
    }

    pub(crate) fn add(&mut self, a: Value, b: Value) -> R<Value> {
        self.op(Op::Add {}, &[a, b])
    }
    pub(crate) fn sub(&mut self, a: Value, b: Value) -> R<Value> {
        self.op(Op::Sub {}, &[a, b])
    }
    pub(crate) fn mul(&mut self, a: Value, b: Value) -> R<Value> {
        self.op(Op::Mul {}, &[a, b])
    }
    pub(crate) fn div(&mut self, a: Value, b: Value) -> R<Value> {
        self.op(Op::Div {}, &[a, b])
    }
    pub(crate) fn neg(&mut self, a: Value) -> R<Value> {
        self.op(Op::Neg {}, &[a])
    }
    pub(crate) fn sqrt(&mut self, a: Value) -> R<Value> {
        self.op(Op::Sqrt {}, &[a])
    }
    pub(crate) fn max(&mut self, a: Value, b: Value) -> R<Value> {
        self.op(Op::Max {}, &[a, b])
    }
    pub(crate) fn min(&mut self, a: Value, b: Value) -> R<Value> {
        self.op(Op::Min {}, &[a, b])
    }

    /// `a * k` for a constant `k`.
    pub(crate) fn scale(&mut self, a: Value, k: f32) -> R<Value> {
        let k = self.scalar(k)?;
        self.mul(a, k)
    }

    /// `cond ? a : b`.
    pub(crate) fn select(&mut self, cond: Value, a: Value, b: Value) -> R<Value> {
        self.op(Op::Select {}, &[cond, a, b])
    }

    /// `cond ? a : 0`.
    pub(crate) fn keep(&mut self, cond: Value, a: Value) -> R<Value> {
        let z = self.scalar(0.0)?;
        self.select(cond, a, z)
    }

    /// `cond ? 0 : a`.
    pub(crate) fn drop_where(&mut self, cond: Value, a: Value) -> R<Value> {
        let z = self.scalar(0.0)?;
        self.select(cond, z, a)
    }

    pub(crate) fn greater(&mut self, a: Value, b: Value) -> R<Value> {
        self.op(Op::Greater {}, &[a, b])
    }
    pub(crate) fn greater_equal(&mut self, a: Value, b: Value) -> R<Value> {
        self.op(Op::GreaterEqual {}, &[a, b])
    }
    pub(crate) fn less(&mut self, a: Value, b: Value) -> R<Value> {
        self.op(Op::Less {}, &[a, b])
    }

    /// `x > 0` as a bool mask.
    pub(crate) fn positive(&mut self, x: Value) -> R<Value> {
        let z = self.scalar(0.0)?;
        self.greater(x, z)
    }

    /// `x >= 0` as a bool mask.
    pub(crate) fn non_negative(&mut self, x: Value) -> R<Value> {
        let z = self.scalar(0.0)?;
        self.greater_equal(x, z)
    }

    pub(crate) fn cast(&mut self, x: Value, to: DType) -> R<Value> {
        self.op(Op::Cast { to }, &[x])
    }

    pub(crate) fn reshape(&mut self, x: Value, shape: &[usize]) -> R<Value> {
        let shape = shape.iter().map(|&d| d as i64).collect();
        self.op(Op::Reshape { shape }, &[x])
    }

    pub(crate) fn broadcast(&mut self, x: Value, shape: &[usize]) -> R<Value> {
        let shape = shape.iter().map(|&d| d as i64).collect();
        self.op(Op::Broadcast { shape }, &[x])
    }

    pub(crate) fn transpose(&mut self, x: Value, perm: &[usize]) -> R<Value> {
        let perm = perm.iter().map(|&a| a as i64).collect();
        self.op(Op::Transpose { perm }, &[x])
    }

    pub(crate) fn reduce_sum(&mut self, x: Value, axes: &[usize], keepdims: bool) -> R<Value> {
        let axes = axes.iter().map(|&a| a as i64).collect();
        self.op(Op::ReduceSum { axes, keepdims }, &[x])
    }

    pub(crate) fn reduce_mean(&mut self, x: Value, axes: &[usize], keepdims: bool) -> R<Value> {
        let axes = axes.iter().map(|&a| a as i64).collect();
        self.op(Op::ReduceMean { axes, keepdims }, &[x])
    }

    /// Sums `g` (of a broadcast result's shape) down to `target`, the shape of an operand
    /// that was broadcast into it: leading axes and axes where `target` has extent 1 are
    /// summed. Returns `g` itself when nothing was broadcast.
    pub(crate) fn unbroadcast(&mut self, g: Value, target: &[usize]) -> R<Value> {
        let shape = self.shape(g);
        if shape == target {
            return Ok(g);
        }
        let lead = shape.len() - target.len();
        let axes: Vec<usize> = (0..shape.len())
            .filter(|&i| i < lead || (target[i - lead] == 1 && shape[i] != 1))
            .collect();
        let s = if axes.is_empty() {
            g
        } else {
            self.reduce_sum(g, &axes, false)?
        };
        if self.shape(s) == target {
            Ok(s)
        } else {
            self.reshape(s, target)
        }
    }

    /// A `[C]` vector reshaped to `[1, C, 1, ...]` so that it broadcasts along axis 1 of a
    /// tensor of rank `rank`.
    pub(crate) fn per_channel(&mut self, v: Value, rank: usize) -> R<Value> {
        let c = self.shape(v)[0];
        let mut shape = vec![1; rank];
        shape[1] = c;
        self.reshape(v, &shape)
    }

    /// The sum of the values, as a left-to-right chain of `add`s (`None` for none).
    pub(crate) fn sum(&mut self, vs: &[Value]) -> R<Option<Value>> {
        let mut it = vs.iter();
        let Some(&first) = it.next() else {
            return Ok(None);
        };
        let mut acc = first;
        for &v in it {
            acc = self.add(acc, v)?;
        }
        Ok(Some(acc))
    }
}
