//! Op attributes: compile-time parameters such as strides, axes and seeds.
//!
//! Attributes are stored in the [`Op`](crate::Op) enum with their real Rust types; this module
//! gives each such type a conversion to and from [`AttrValue`], the untyped form that the text
//! format reads and writes. Floats are wrapped in [`Float`] so that every op is `Eq + Hash + Ord`
//! (the e-graph needs that to hash-cons nodes).

use crate::types::DType;
use std::fmt;

/// An `f32` attribute compared, hashed and ordered by its bits, so ops can be `Eq + Hash`.
#[derive(Clone, Copy, Default)]
pub struct Float(pub f32);

impl Float {
    /// The value.
    pub fn get(self) -> f32 {
        self.0
    }
}

impl From<f32> for Float {
    fn from(v: f32) -> Float {
        Float(v)
    }
}

impl PartialEq for Float {
    fn eq(&self, other: &Float) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}
impl Eq for Float {}
impl std::hash::Hash for Float {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.0.to_bits().hash(h)
    }
}
impl PartialOrd for Float {
    fn partial_cmp(&self, other: &Float) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Float {
    fn cmp(&self, other: &Float) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}
impl fmt::Debug for Float {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_f32(self.0, f)
    }
}
impl fmt::Display for Float {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_f32(self.0, f)
    }
}

/// Formats an `f32` so that it reads back bit-exactly and always looks like a float
/// (`1.0`, `1e-5`, `nan`, `inf`, `-inf`).
pub fn fmt_f32(v: f32, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    if v.is_nan() {
        f.write_str("nan")
    } else if v.is_infinite() {
        f.write_str(if v > 0.0 { "inf" } else { "-inf" })
    } else {
        // Rust's Debug for floats is the shortest string that round-trips, and always
        // contains a '.' or an exponent.
        write!(f, "{v:?}")
    }
}

/// An attribute value as written in the text format.
#[derive(Clone, Debug, PartialEq)]
pub enum AttrValue {
    /// An integer: `3`, `-1`.
    Int(i64),
    /// A float: `0.5`, `1e-5`, `nan`.
    Float(f32),
    /// `true` or `false`.
    Bool(bool),
    /// A list of integers: `[1, 2]`, `[]`.
    Ints(Vec<i64>),
    /// A dtype name: `f32`.
    DType(DType),
}

impl fmt::Display for AttrValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttrValue::Int(v) => write!(f, "{v}"),
            AttrValue::Float(v) => fmt_f32(*v, f),
            AttrValue::Bool(v) => write!(f, "{v}"),
            AttrValue::Ints(v) => {
                f.write_str("[")?;
                for (i, x) in v.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{x}")?;
                }
                f.write_str("]")
            }
            AttrValue::DType(d) => write!(f, "{d}"),
        }
    }
}

/// A Rust type usable as an op attribute.
pub trait Attr: Sized {
    /// The type's name in the spec and in error messages.
    const TYPE: &'static str;
    /// To the untyped form.
    fn to_value(&self) -> AttrValue;
    /// From the untyped form; `Err` says what was expected.
    fn from_value(v: &AttrValue) -> Result<Self, String>;
}

fn expected<T>(ty: &str, v: &AttrValue) -> Result<T, String> {
    Err(format!("expected {ty}, found `{v}`"))
}

impl Attr for i64 {
    const TYPE: &'static str = "int";
    fn to_value(&self) -> AttrValue {
        AttrValue::Int(*self)
    }
    fn from_value(v: &AttrValue) -> Result<i64, String> {
        match v {
            AttrValue::Int(x) => Ok(*x),
            _ => expected(Self::TYPE, v),
        }
    }
}

impl Attr for Float {
    const TYPE: &'static str = "float";
    fn to_value(&self) -> AttrValue {
        AttrValue::Float(self.0)
    }
    fn from_value(v: &AttrValue) -> Result<Float, String> {
        match v {
            AttrValue::Float(x) => Ok(Float(*x)),
            // An integer literal is accepted where a float is expected (`alpha=1`).
            AttrValue::Int(x) => Ok(Float(*x as f32)),
            _ => expected(Self::TYPE, v),
        }
    }
}

impl Attr for bool {
    const TYPE: &'static str = "bool";
    fn to_value(&self) -> AttrValue {
        AttrValue::Bool(*self)
    }
    fn from_value(v: &AttrValue) -> Result<bool, String> {
        match v {
            AttrValue::Bool(x) => Ok(*x),
            _ => expected(Self::TYPE, v),
        }
    }
}

impl Attr for Vec<i64> {
    const TYPE: &'static str = "[int]";
    fn to_value(&self) -> AttrValue {
        AttrValue::Ints(self.clone())
    }
    fn from_value(v: &AttrValue) -> Result<Vec<i64>, String> {
        match v {
            AttrValue::Ints(x) => Ok(x.clone()),
            _ => expected(Self::TYPE, v),
        }
    }
}

impl<const N: usize> Attr for [i64; N] {
    const TYPE: &'static str = match N {
        2 => "[int; 2]",
        4 => "[int; 4]",
        _ => "[int; N]",
    };
    fn to_value(&self) -> AttrValue {
        AttrValue::Ints(self.to_vec())
    }
    fn from_value(v: &AttrValue) -> Result<[i64; N], String> {
        match v {
            AttrValue::Ints(x) if x.len() == N => {
                let mut out = [0; N];
                out.copy_from_slice(x);
                Ok(out)
            }
            AttrValue::Ints(x) => Err(format!(
                "expected a list of {N} ints, found {} in `{v}`",
                x.len()
            )),
            _ => expected(Self::TYPE, v),
        }
    }
}

impl Attr for DType {
    const TYPE: &'static str = "dtype";
    fn to_value(&self) -> AttrValue {
        AttrValue::DType(*self)
    }
    fn from_value(v: &AttrValue) -> Result<DType, String> {
        match v {
            AttrValue::DType(x) => Ok(*x),
            _ => expected(Self::TYPE, v),
        }
    }
}
