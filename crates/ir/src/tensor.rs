//! Dense host tensors: the payload of constants and the currency of the interpreter.

use crate::types::{DType, Shape, ShapeDisplay, TensorType, checked_numel};
use std::fmt;

/// Row-major element storage of one dtype.
#[derive(Clone, Debug, PartialEq)]
pub enum TensorData {
    /// `f32` elements.
    F32(Vec<f32>),
    /// `i64` elements.
    I64(Vec<i64>),
    /// `bool` elements.
    Bool(Vec<bool>),
}

impl TensorData {
    /// Element type of this storage.
    pub fn dtype(&self) -> DType {
        match self {
            TensorData::F32(_) => DType::F32,
            TensorData::I64(_) => DType::I64,
            TensorData::Bool(_) => DType::Bool,
        }
    }

    /// Number of stored elements.
    pub fn len(&self) -> usize {
        match self {
            TensorData::F32(v) => v.len(),
            TensorData::I64(v) => v.len(),
            TensorData::Bool(v) => v.len(),
        }
    }

    /// True when no element is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A dense, row-major tensor with a static shape.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    shape: Shape,
    data: TensorData,
}

/// A tensor whose element count does not match its shape.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("tensor of shape {shape} needs {expected} elements, got {got}")]
pub struct TensorShapeError {
    /// The shape, formatted.
    pub shape: String,
    /// Elements the shape needs.
    pub expected: usize,
    /// Elements given.
    pub got: usize,
}

impl Tensor {
    /// A tensor from a shape and matching storage.
    pub fn new(shape: &[usize], data: TensorData) -> Result<Tensor, TensorShapeError> {
        let expected = checked_numel(shape).unwrap_or(usize::MAX);
        if expected != data.len() {
            return Err(TensorShapeError {
                shape: ShapeDisplay(shape).to_string(),
                expected,
                got: data.len(),
            });
        }
        Ok(Tensor {
            shape: shape.into(),
            data,
        })
    }

    /// An `f32` tensor. Panics if `data.len()` does not match `shape`: for literals in code
    /// and tests. Use [`Tensor::new`] for data from outside.
    pub fn from_f32(shape: &[usize], data: Vec<f32>) -> Tensor {
        Tensor::new(shape, TensorData::F32(data)).expect("f32 tensor literal")
    }

    /// An `i64` tensor; panics on a length mismatch like [`Tensor::from_f32`].
    pub fn from_i64(shape: &[usize], data: Vec<i64>) -> Tensor {
        Tensor::new(shape, TensorData::I64(data)).expect("i64 tensor literal")
    }

    /// A `bool` tensor; panics on a length mismatch like [`Tensor::from_f32`].
    pub fn from_bool(shape: &[usize], data: Vec<bool>) -> Tensor {
        Tensor::new(shape, TensorData::Bool(data)).expect("bool tensor literal")
    }

    /// A scalar `f32`.
    pub fn scalar(v: f32) -> Tensor {
        Tensor::from_f32(&[], vec![v])
    }

    /// A tensor of the given type with every element zero (false).
    pub fn zeros(ty: &TensorType) -> Tensor {
        let n = ty.numel();
        let data = match ty.dtype {
            DType::F32 => TensorData::F32(vec![0.0; n]),
            DType::I64 => TensorData::I64(vec![0; n]),
            DType::Bool => TensorData::Bool(vec![false; n]),
        };
        Tensor {
            shape: ty.shape.clone(),
            data,
        }
    }

    /// An `f32` tensor with every element `v`.
    pub fn full(shape: &[usize], v: f32) -> Tensor {
        let n = checked_numel(shape).expect("shape overflows");
        Tensor::from_f32(shape, vec![v; n])
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.data.dtype()
    }

    /// Dtype and shape together.
    pub fn ty(&self) -> TensorType {
        TensorType {
            dtype: self.dtype(),
            shape: self.shape.clone(),
        }
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.data.len()
    }

    /// The storage.
    pub fn data(&self) -> &TensorData {
        &self.data
    }

    /// Consume into storage.
    pub fn into_data(self) -> TensorData {
        self.data
    }

    /// The `f32` elements, or `None` for another dtype.
    pub fn as_f32(&self) -> Option<&[f32]> {
        match &self.data {
            TensorData::F32(v) => Some(v),
            _ => None,
        }
    }

    /// The `i64` elements, or `None` for another dtype.
    pub fn as_i64(&self) -> Option<&[i64]> {
        match &self.data {
            TensorData::I64(v) => Some(v),
            _ => None,
        }
    }

    /// The `bool` elements, or `None` for another dtype.
    pub fn as_bool(&self) -> Option<&[bool]> {
        match &self.data {
            TensorData::Bool(v) => Some(v),
            _ => None,
        }
    }

    /// The same elements under another shape with the same element count.
    pub fn reshaped(&self, shape: &[usize]) -> Result<Tensor, TensorShapeError> {
        Tensor::new(shape, self.data.clone())
    }
}

impl fmt::Display for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.ty())
    }
}
