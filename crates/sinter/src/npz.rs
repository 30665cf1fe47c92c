//! Reading and writing `.npz` archives of named tensors, as numpy writes them.
//!
//! Inputs and outputs of `sinter run` are keyed by graph input and output names. The format
//! itself is handled by `npyz`; this module maps numpy dtypes to Sinter's and reports every
//! mismatch with the array's name. Float64 arrays are accepted for f32 inputs and int32 for
//! i64 (numpy's defaults are wider than the IR's), converted on load.

use npyz::WriterBuilder;
use sinter_ir::{Tensor, TensorData};
use std::collections::BTreeMap;
use std::path::Path;

/// A failure to read or write an archive, naming the file and array.
#[derive(Debug, thiserror::Error)]
pub enum NpzError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The archive.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// An array whose dtype or layout Sinter cannot take.
    #[error("{path}: array `{name}`: {message}")]
    Array {
        /// The archive.
        path: String,
        /// The array.
        name: String,
        /// What is wrong.
        message: String,
    },
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> NpzError + '_ {
    move |source| NpzError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Reads every array of an `.npz` file, by name.
pub fn read_npz(path: &Path) -> Result<BTreeMap<String, Tensor>, NpzError> {
    let mut archive = npyz::npz::NpzArchive::open(path).map_err(io(path))?;
    let names: Vec<String> = archive.array_names().map(str::to_string).collect();
    let mut out = BTreeMap::new();
    for name in names {
        let err = |message: String| NpzError::Array {
            path: path.display().to_string(),
            name: name.clone(),
            message,
        };
        let npy = archive
            .by_name(&name)
            .map_err(io(path))?
            .ok_or_else(|| err("vanished".into()))?;
        if npy.order() == npyz::Order::Fortran && npy.shape().len() > 1 {
            return Err(err(
                "Fortran-ordered arrays are not supported: save with np.ascontiguousarray".into(),
            ));
        }
        let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
        let dtype = npy.dtype();
        let descr = dtype.descr();
        let data = match descr.as_str() {
            "'<f4'" => TensorData::F32(npy.into_vec::<f32>().map_err(io(path))?),
            "'<f8'" => TensorData::F32(
                npy.into_vec::<f64>()
                    .map_err(io(path))?
                    .into_iter()
                    .map(|v| v as f32)
                    .collect(),
            ),
            "'<i8'" => TensorData::I64(npy.into_vec::<i64>().map_err(io(path))?),
            "'<i4'" => TensorData::I64(
                npy.into_vec::<i32>()
                    .map_err(io(path))?
                    .into_iter()
                    .map(i64::from)
                    .collect(),
            ),
            "'|b1'" => TensorData::Bool(npy.into_vec::<bool>().map_err(io(path))?),
            other => {
                return Err(err(format!(
                    "dtype {other} is not supported (use float32, float64, int64, int32 or bool)"
                )));
            }
        };
        let t = Tensor::new(&shape, data).map_err(|e| err(e.to_string()))?;
        out.insert(name, t);
    }
    Ok(out)
}

/// Writes named tensors to an `.npz` file (f32 as `<f4`, i64 as `<i8`, bool as `|b1`).
pub fn write_npz<'a>(
    path: &Path,
    tensors: impl IntoIterator<Item = (&'a str, &'a Tensor)>,
) -> Result<(), NpzError> {
    let mut w = npyz::npz::NpzWriter::create(path).map_err(io(path))?;
    for (name, t) in tensors {
        let shape: Vec<u64> = t.shape().iter().map(|&d| d as u64).collect();
        match t.data() {
            TensorData::F32(v) => write_array(&mut w, name, &shape, v),
            TensorData::I64(v) => write_array(&mut w, name, &shape, v),
            TensorData::Bool(v) => write_array(&mut w, name, &shape, v),
        }
        .map_err(io(path))?;
    }
    Ok(())
}

fn write_array<T, W>(
    w: &mut npyz::npz::NpzWriter<W>,
    name: &str,
    shape: &[u64],
    data: &[T],
) -> std::io::Result<()>
where
    T: npyz::AutoSerialize + Copy,
    W: std::io::Write + std::io::Seek,
{
    let mut a = w
        .array::<T>(name, Default::default())?
        .default_dtype()
        .shape(shape)
        .begin_nd()?;
    a.extend(data.iter().copied())?;
    a.finish()
}
