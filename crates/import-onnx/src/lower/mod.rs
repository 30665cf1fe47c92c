//! Lowerings from ONNX ops to Sinter ops, one module per family.
//!
//! [`SUPPORTED`] is the one list of ONNX op types this importer takes; [`lower`] dispatches
//! on it. Each lowering reads its attributes through [`Node`], asks the [`Ctx`] for operands
//! and returns one [`Out`] per ONNX output it can produce (a graph value, or a tensor folded
//! at import time). Errors are plain strings that the caller prefixes with the node's name
//! and op type; they include the shapes involved.
//!
//! - [`nn`]: convolutions, pooling, batch norm, `Gemm`, `MatMul`.
//! - [`elementwise`]: unary and binary math, `Clip`, softmax, reductions, `Cast`.
//! - [`shape`]: movement ops and the shape-computing ops that fold.
//! - [`rnn`]: `LSTM` and `RNN`, unrolled into cells over time.

pub mod elementwise;
pub mod nn;
pub mod rnn;
pub mod shape;

use crate::convert::Ctx;
use crate::proto::{AttributeProto, NodeProto, attribute_proto::AttributeType};
use crate::tensor::to_tensor;
use sinter_ir::{DType, Tensor, Value};

/// Every ONNX op type (default domain) the importer lowers.
pub const SUPPORTED: &[&str] = &[
    "Abs",
    "Add",
    "AveragePool",
    "BatchNormalization",
    "Cast",
    "Clip",
    "Concat",
    "Constant",
    "ConstantOfShape",
    "Conv",
    "ConvTranspose",
    "Div",
    "Dropout",
    "Exp",
    "Expand",
    "Flatten",
    "Gather",
    "Gemm",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "Identity",
    "LSTM",
    "LeakyRelu",
    "Log",
    "LogSoftmax",
    "MatMul",
    "Max",
    "MaxPool",
    "Min",
    "Mul",
    "Neg",
    "PRelu",
    "Pad",
    "Pow",
    "RNN",
    "ReduceMax",
    "ReduceMean",
    "ReduceSum",
    "Relu",
    "Reshape",
    "Shape",
    "Sigmoid",
    "Slice",
    "Softmax",
    "Split",
    "Sqrt",
    "Squeeze",
    "Sub",
    "Sum",
    "Tanh",
    "Transpose",
    "Unsqueeze",
];

/// Whether an op type of the default domain has a lowering.
pub fn is_supported(op_type: &str) -> bool {
    SUPPORTED.contains(&op_type)
}

/// One result of a lowered node.
#[derive(Clone, Debug)]
pub enum Out {
    /// A value of the Sinter graph.
    Value(Value),
    /// A tensor computed at import time.
    Known(Tensor),
}

/// Lowering result: one entry per ONNX output; `None` for an output that cannot be produced
/// (an error if the model uses it).
pub type Outs = Vec<Option<Out>>;

/// Results of a lowering.
pub type R<T> = Result<T, String>;

/// An ONNX node with typed access to its inputs and attributes.
pub struct Node<'a> {
    /// The protobuf node.
    pub proto: &'a NodeProto,
}

fn attr_type_name(t: AttributeType) -> &'static str {
    t.as_str_name()
}

impl<'a> Node<'a> {
    /// Wraps a node.
    pub fn new(proto: &'a NodeProto) -> Node<'a> {
        Node { proto }
    }

    /// The op type.
    pub fn op_type(&self) -> &'a str {
        self.proto.op_type()
    }

    /// Input `i`, or `None` when it is absent (missing or the empty name).
    pub fn input(&self, i: usize) -> Option<&'a str> {
        self.proto
            .input
            .get(i)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    /// Input `i`, which must be present.
    pub fn req(&self, i: usize) -> R<&'a str> {
        self.input(i).ok_or_else(|| {
            format!(
                "input {i} is required ({} has {} input(s))",
                self.op_type(),
                self.proto.input.len()
            )
        })
    }

    /// Number of input slots (absent ones included).
    pub fn n_inputs(&self) -> usize {
        self.proto.input.len()
    }

    /// Number of output slots.
    pub fn n_outputs(&self) -> usize {
        self.proto.output.len()
    }

    fn attr(&self, name: &str, want: AttributeType) -> R<Option<&'a AttributeProto>> {
        match self.proto.attribute.iter().find(|a| a.name() == name) {
            None => Ok(None),
            Some(a) => {
                let t = a.r#type();
                if t != want && t != AttributeType::Undefined {
                    return Err(format!(
                        "attribute `{name}` must be {}, got {}",
                        attr_type_name(want),
                        attr_type_name(t)
                    ));
                }
                Ok(Some(a))
            }
        }
    }

    /// Whether the attribute is given.
    pub fn has(&self, name: &str) -> bool {
        self.proto.attribute.iter().any(|a| a.name() == name)
    }

    /// An `INT` attribute.
    pub fn int(&self, name: &str, default: i64) -> R<i64> {
        Ok(self
            .attr(name, AttributeType::Int)?
            .map_or(default, |a| a.i()))
    }

    /// A `FLOAT` attribute.
    pub fn float(&self, name: &str, default: f32) -> R<f32> {
        Ok(self
            .attr(name, AttributeType::Float)?
            .map_or(default, |a| a.f()))
    }

    /// An `INTS` attribute, if given.
    pub fn ints(&self, name: &str) -> R<Option<Vec<i64>>> {
        Ok(self
            .attr(name, AttributeType::Ints)?
            .map(|a| a.ints.clone()))
    }

    /// A `FLOATS` attribute, if given.
    pub fn floats(&self, name: &str) -> R<Option<Vec<f32>>> {
        Ok(self
            .attr(name, AttributeType::Floats)?
            .map(|a| a.floats.clone()))
    }

    /// A `STRING` attribute.
    pub fn string(&self, name: &str, default: &str) -> R<String> {
        Ok(self
            .attr(name, AttributeType::String)?
            .map_or(default.to_string(), |a| {
                String::from_utf8_lossy(a.s()).into_owned()
            }))
    }

    /// A `STRINGS` attribute, if given.
    pub fn strings(&self, name: &str) -> R<Option<Vec<String>>> {
        Ok(self.attr(name, AttributeType::Strings)?.map(|a| {
            a.strings
                .iter()
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect()
        }))
    }

    /// A `TENSOR` attribute, if given.
    pub fn tensor(&self, name: &str) -> R<Option<Tensor>> {
        match self.attr(name, AttributeType::Tensor)? {
            None => Ok(None),
            Some(a) => {
                let t =
                    a.t.as_ref()
                        .ok_or_else(|| format!("attribute `{name}` holds no tensor"))?;
                to_tensor(t)
                    .map(Some)
                    .map_err(|e| format!("attribute `{name}`: {e}"))
            }
        }
    }
}

/// The `i64` values of an input that must be known at import time (shapes, axes, pads).
pub fn known_ints(cx: &Ctx, n: &Node, i: usize, what: &str) -> R<Vec<i64>> {
    let name = n.req(i)?;
    let t = cx.known(name).ok_or_else(|| {
        format!(
            "input {i} (`{name}`, the {what}) must be known at import time: a constant, an \
             initializer or computed from static shapes"
        )
    })?;
    match t.data() {
        sinter_ir::TensorData::I64(v) => Ok(v.clone()),
        _ => Err(format!(
            "input {i} (`{name}`, the {what}) must be an integer tensor, got {}",
            t.ty()
        )),
    }
}

/// Optional known `i64` input: `None` when absent.
pub fn opt_known_ints(cx: &Ctx, n: &Node, i: usize, what: &str) -> R<Option<Vec<i64>>> {
    match n.input(i) {
        None => Ok(None),
        Some(_) => known_ints(cx, n, i, what).map(Some),
    }
}

/// The graph value of input `i`, which must be `f32`.
pub fn f32_input(cx: &mut Ctx, n: &Node, i: usize) -> R<Value> {
    let name = n.req(i)?;
    let v = cx.value(name)?;
    let ty = cx.ty(v);
    if ty.dtype != DType::F32 {
        return Err(format!(
            "input {i} (`{name}`) is {ty}: Sinter's {} needs f32",
            n.op_type()
        ));
    }
    Ok(v)
}

/// Normalises an axis for a rank, with the error ONNX users expect.
pub fn axis(a: i64, rank: usize) -> R<usize> {
    let r = rank as i64;
    if a < -r || a >= r {
        return Err(format!("axis {a} is out of range for rank {rank}"));
    }
    Ok(if a < 0 { (a + r) as usize } else { a as usize })
}

/// A single graph-valued output.
pub fn one(v: Value) -> R<Outs> {
    Ok(vec![Some(Out::Value(v))])
}

/// A single known output.
pub fn known(t: Tensor) -> R<Outs> {
    Ok(vec![Some(Out::Known(t))])
}

/// Lowers one node.
pub fn lower(cx: &mut Ctx, n: &Node) -> R<Outs> {
    match n.op_type() {
        "Conv" => nn::conv(cx, n),
        "ConvTranspose" => nn::conv_transpose(cx, n),
        "BatchNormalization" => nn::batch_norm(cx, n),
        "MaxPool" | "AveragePool" => nn::pool(cx, n),
        "GlobalAveragePool" | "GlobalMaxPool" => nn::global_pool(cx, n),
        "Gemm" => nn::gemm(cx, n),
        "MatMul" => nn::matmul(cx, n),
        "Relu" | "Sigmoid" | "Tanh" | "Sqrt" | "Exp" | "Log" | "Neg" | "Abs" | "LeakyRelu" => {
            elementwise::unary(cx, n)
        }
        "PRelu" => elementwise::prelu(cx, n),
        "Add" | "Sub" | "Mul" | "Div" | "Pow" | "Max" | "Min" | "Sum" => elementwise::binary(cx, n),
        "Clip" => elementwise::clip(cx, n),
        "Softmax" | "LogSoftmax" => elementwise::softmax(cx, n),
        "ReduceMean" | "ReduceSum" | "ReduceMax" => elementwise::reduce(cx, n),
        "Cast" => elementwise::cast(cx, n),
        "Concat" => shape::concat(cx, n),
        "Split" => shape::split(cx, n),
        "Slice" => shape::slice(cx, n),
        "Pad" => shape::pad(cx, n),
        "Reshape" | "Flatten" | "Squeeze" | "Unsqueeze" => shape::reshape(cx, n),
        "Transpose" => shape::transpose(cx, n),
        "Gather" => shape::gather(cx, n),
        "Expand" => shape::expand(cx, n),
        "Shape" => shape::shape(cx, n),
        "ConstantOfShape" => shape::constant_of_shape(cx, n),
        "Constant" => shape::constant(cx, n),
        "Identity" | "Dropout" => shape::identity(cx, n),
        "LSTM" | "RNN" => rnn::lower(cx, n),
        other => Err(format!("no lowering for `{other}`")),
    }
}
