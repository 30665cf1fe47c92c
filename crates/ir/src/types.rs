//! Element types and static shapes.
//!
//! Every value in a Sinter graph has a [`TensorType`]: a [`DType`] and a fully static
//! [`Shape`]. Static shapes are a design choice: they let the verifier reject bad graphs
//! before anything runs, let the memory planner size every buffer at compile time, and let
//! the kernel generator bake sizes into loop bounds.

use smallvec::SmallVec;
use std::fmt;

/// Element type of a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DType {
    /// 32-bit IEEE float: all arithmetic.
    F32,
    /// 64-bit signed integer: indices and labels.
    I64,
    /// Boolean: masks produced by comparisons.
    Bool,
}

impl DType {
    /// All dtypes, in text order.
    pub const ALL: [DType; 3] = [DType::F32, DType::I64, DType::Bool];

    /// The text name (`f32`, `i64`, `bool`).
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::I64 => "i64",
            DType::Bool => "bool",
        }
    }

    /// Parse a text name.
    pub fn from_name(s: &str) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.name() == s)
    }

    /// Size of one element in bytes.
    pub fn size_bytes(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::I64 => 8,
            DType::Bool => 1,
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A static shape: one extent per axis. Rank 0 is a scalar.
pub type Shape = SmallVec<[usize; 4]>;

/// Number of elements of a shape (1 for a scalar), or `None` on overflow.
pub fn checked_numel(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

/// Row-major strides of a shape, in elements.
pub fn strides(shape: &[usize]) -> Shape {
    let mut s: Shape = smallvec::smallvec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// Formats a shape as `[2,3,4]`.
pub struct ShapeDisplay<'a>(pub &'a [usize]);

impl fmt::Display for ShapeDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{d}")?;
        }
        f.write_str("]")
    }
}

/// The type of a value: dtype and static shape. Displays as `f32[1,3,32,32]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TensorType {
    /// Element type.
    pub dtype: DType,
    /// Extents, outermost first.
    pub shape: Shape,
}

impl TensorType {
    /// A tensor type from a dtype and extents.
    pub fn new(dtype: DType, shape: &[usize]) -> TensorType {
        TensorType {
            dtype,
            shape: shape.into(),
        }
    }

    /// An `f32` tensor type.
    pub fn f32(shape: &[usize]) -> TensorType {
        TensorType::new(DType::F32, shape)
    }

    /// An `i64` tensor type.
    pub fn i64(shape: &[usize]) -> TensorType {
        TensorType::new(DType::I64, shape)
    }

    /// A `bool` tensor type.
    pub fn bool(shape: &[usize]) -> TensorType {
        TensorType::new(DType::Bool, shape)
    }

    /// Number of axes.
    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// Number of elements. Shapes in a verified graph never overflow (the verifier checks).
    pub fn numel(&self) -> usize {
        checked_numel(&self.shape).unwrap_or(usize::MAX)
    }
}

impl fmt::Display for TensorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.dtype, ShapeDisplay(&self.shape))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_strides() {
        let t = TensorType::f32(&[2, 3, 4]);
        assert_eq!(t.to_string(), "f32[2,3,4]");
        assert_eq!(TensorType::i64(&[]).to_string(), "i64[]");
        assert_eq!(strides(&[2, 3, 4]).as_slice(), &[12, 4, 1]);
        assert_eq!(t.numel(), 24);
        assert_eq!(checked_numel(&[usize::MAX, 2]), None);
    }
}
