//! ONNX tensors and types to Sinter ones.
//!
//! Sinter has three element types (`f32`, `i64`, `bool`); ONNX has many. Integers of every
//! width widen to `i64` and `double` narrows to `f32` (constants only: shape arithmetic and
//! the odd `double` scalar exporters emit). Anything else is refused by name. The decoded
//! data is checked against the declared dims, so a corrupted file gives an error, not a
//! short buffer read later.

use crate::proto::{TensorProto, tensor_proto::DataType};
use sinter_ir::{DType, Tensor, TensorData};

/// Largest tensor the importer builds at import time (constants it folds or creates):
/// 2^28 elements (1 GiB of `f32`). Real weights arrive as data of that size anyway; a bigger
/// shape from a corrupted file is refused before anything is allocated.
pub const MAX_FOLD_ELEMENTS: usize = 1 << 28;

/// Largest result of a fold that makes a tensor larger than its input (`Expand`,
/// `ConstantOfShape`): 2^16 elements, plenty for shape arithmetic. Above it the importer
/// emits a `broadcast` of the small constant instead, so a few bytes of file cannot make the
/// importer build (and the fuzzer wait on) hundreds of megabytes; the graph op costs nothing
/// until it runs, and the runtime's memory budget applies to it like any other.
pub const MAX_AMPLIFYING_FOLD: usize = 1 << 16;

/// The Sinter dtype of an ONNX `elem_type`, or a description of why there is none.
pub fn dtype_of(elem_type: i32) -> Result<DType, String> {
    match DataType::try_from(elem_type) {
        Ok(DataType::Float) | Ok(DataType::Double) => Ok(DType::F32),
        Ok(
            DataType::Int64
            | DataType::Int32
            | DataType::Int16
            | DataType::Int8
            | DataType::Uint8
            | DataType::Uint16
            | DataType::Uint32
            | DataType::Uint64,
        ) => Ok(DType::I64),
        Ok(DataType::Bool) => Ok(DType::Bool),
        Ok(other) => Err(format!(
            "element type {} is not supported (Sinter has f32, i64 and bool)",
            other.as_str_name()
        )),
        Err(_) => Err(format!("unknown element type {elem_type}")),
    }
}

/// Checked element count of ONNX dims (each >= 0), at most [`MAX_FOLD_ELEMENTS`].
pub fn dims_to_shape(dims: &[i64]) -> Result<Vec<usize>, String> {
    let mut shape = Vec::with_capacity(dims.len());
    let mut n: usize = 1;
    for &d in dims {
        let d = usize::try_from(d).map_err(|_| format!("dims {dims:?} have a negative entry"))?;
        n = n
            .checked_mul(d)
            .filter(|&n| n <= MAX_FOLD_ELEMENTS)
            .ok_or_else(|| format!("dims {dims:?} have more than 2^28 elements"))?;
        shape.push(d);
    }
    Ok(shape)
}

fn raw_chunks<const N: usize>(
    raw: &[u8],
    n: usize,
) -> Result<impl Iterator<Item = [u8; N]> + '_, String> {
    if raw.len() != n * N {
        return Err(format!(
            "raw_data has {} bytes, but {n} elements of {N} bytes need {}",
            raw.len(),
            n * N
        ));
    }
    Ok(raw.chunks_exact(N).map(|c| {
        let mut a = [0u8; N];
        a.copy_from_slice(c);
        a
    }))
}

fn check_len(what: &str, got: usize, n: usize) -> Result<(), String> {
    if got != n {
        return Err(format!("{what} has {got} elements, but the dims need {n}"));
    }
    Ok(())
}

/// Decodes a tensor (an initializer or an attribute value). Errors do not name the tensor:
/// the caller adds where it came from.
pub fn to_tensor(t: &TensorProto) -> Result<Tensor, String> {
    if t.data_location() == crate::proto::tensor_proto::DataLocation::External {
        return Err("external data (a separate weights file) is not supported".into());
    }
    let shape = dims_to_shape(&t.dims)?;
    let n: usize = shape.iter().product();
    let raw = t.raw_data();
    let has_raw = !raw.is_empty() || n == 0;
    let ty = DataType::try_from(t.data_type())
        .map_err(|_| format!("unknown data_type {}", t.data_type()))?;
    let data = match ty {
        DataType::Float => TensorData::F32(if has_raw && t.float_data.is_empty() {
            raw_chunks::<4>(raw, n)?.map(f32::from_le_bytes).collect()
        } else {
            check_len("float_data", t.float_data.len(), n)?;
            t.float_data.clone()
        }),
        DataType::Double => TensorData::F32(if has_raw && t.double_data.is_empty() {
            raw_chunks::<8>(raw, n)?
                .map(|b| f64::from_le_bytes(b) as f32)
                .collect()
        } else {
            check_len("double_data", t.double_data.len(), n)?;
            t.double_data.iter().map(|&v| v as f32).collect()
        }),
        DataType::Int64 => TensorData::I64(if has_raw && t.int64_data.is_empty() {
            raw_chunks::<8>(raw, n)?.map(i64::from_le_bytes).collect()
        } else {
            check_len("int64_data", t.int64_data.len(), n)?;
            t.int64_data.clone()
        }),
        DataType::Uint64 => TensorData::I64(if has_raw && t.uint64_data.is_empty() {
            raw_chunks::<8>(raw, n)?
                .map(|b| u64::from_le_bytes(b) as i64)
                .collect()
        } else {
            check_len("uint64_data", t.uint64_data.len(), n)?;
            t.uint64_data.iter().map(|&v| v as i64).collect()
        }),
        DataType::Int32 => TensorData::I64(if has_raw && t.int32_data.is_empty() {
            raw_chunks::<4>(raw, n)?
                .map(|b| i64::from(i32::from_le_bytes(b)))
                .collect()
        } else {
            check_len("int32_data", t.int32_data.len(), n)?;
            t.int32_data.iter().map(|&v| i64::from(v)).collect()
        }),
        DataType::Uint32 => TensorData::I64(if has_raw && t.uint64_data.is_empty() {
            raw_chunks::<4>(raw, n)?
                .map(|b| i64::from(u32::from_le_bytes(b)))
                .collect()
        } else {
            check_len("uint64_data", t.uint64_data.len(), n)?;
            t.uint64_data.iter().map(|&v| v as i64).collect()
        }),
        DataType::Int16 | DataType::Uint16 => {
            let signed = ty == DataType::Int16;
            TensorData::I64(if has_raw && t.int32_data.is_empty() {
                raw_chunks::<2>(raw, n)?
                    .map(|b| {
                        if signed {
                            i64::from(i16::from_le_bytes(b))
                        } else {
                            i64::from(u16::from_le_bytes(b))
                        }
                    })
                    .collect()
            } else {
                check_len("int32_data", t.int32_data.len(), n)?;
                t.int32_data.iter().map(|&v| i64::from(v)).collect()
            })
        }
        DataType::Int8 | DataType::Uint8 => {
            let signed = ty == DataType::Int8;
            TensorData::I64(if has_raw && t.int32_data.is_empty() {
                raw_chunks::<1>(raw, n)?
                    .map(|b| {
                        if signed {
                            i64::from(b[0] as i8)
                        } else {
                            i64::from(b[0])
                        }
                    })
                    .collect()
            } else {
                check_len("int32_data", t.int32_data.len(), n)?;
                t.int32_data.iter().map(|&v| i64::from(v)).collect()
            })
        }
        DataType::Bool => TensorData::Bool(if has_raw && t.int32_data.is_empty() {
            raw_chunks::<1>(raw, n)?.map(|b| b[0] != 0).collect()
        } else {
            check_len("int32_data", t.int32_data.len(), n)?;
            t.int32_data.iter().map(|&v| v != 0).collect()
        }),
        other => {
            return Err(format!(
                "element type {} is not supported (Sinter has f32, i64 and bool)",
                other.as_str_name()
            ));
        }
    };
    Tensor::new(&shape, data).map_err(|e| e.to_string())
}
