//! Reading and writing `.npz` archives of named tensors, as numpy writes them.
//!
//! Inputs and outputs of `sinter run` are keyed by graph input and output names. An `.npz` is
//! a zip of `.npy` files: the `zip` crate (deflate only: `npyz`'s own `npz` feature would build
//! zstd, bzip2 and AES into every build) reads the archive and `npyz` each array; this module
//! maps numpy dtypes to Sinter's and reports every mismatch with the array's name. Float64 arrays are accepted for f32 inputs and int32 for
//! i64 (numpy's defaults are wider than the IR's), converted on load.

use npyz::WriterBuilder;
use npyz::npz::{array_name_from_file_name, file_name_from_array_name};
use sinter_ir::{Tensor, TensorData};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, BufWriter};
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

/// A zip failure as an I/O error: the underlying one, or invalid data.
fn zip_io(e: zip::result::ZipError) -> std::io::Error {
    match e {
        zip::result::ZipError::Io(e) => e,
        other => std::io::Error::new(std::io::ErrorKind::InvalidData, other.to_string()),
    }
}

/// Reads every array of an `.npz` file, by name.
pub fn read_npz(path: &Path) -> Result<BTreeMap<String, Tensor>, NpzError> {
    let zip_err = |e| io(path)(zip_io(e));
    let file = File::open(path).map_err(io(path))?;
    let mut archive = zip::ZipArchive::new(BufReader::new(file)).map_err(zip_err)?;
    let names: Vec<String> = archive
        .file_names()
        .filter_map(array_name_from_file_name)
        .map(str::to_string)
        .collect();
    let mut out = BTreeMap::new();
    for name in names {
        let err = |message: String| NpzError::Array {
            path: path.display().to_string(),
            name: name.clone(),
            message,
        };
        let entry = archive
            .by_name(&file_name_from_array_name(&name))
            .map_err(zip_err)?;
        let npy = npyz::NpyFile::new(entry).map_err(io(path))?;
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
    let file = File::create(path).map_err(io(path))?;
    let mut w = zip::ZipWriter::new(BufWriter::new(file));
    for (name, t) in tensors {
        let shape: Vec<u64> = t.shape().iter().map(|&d| d as u64).collect();
        w.start_file(file_name_from_array_name(name), Default::default())
            .map_err(|e| io(path)(zip_io(e)))?;
        match t.data() {
            TensorData::F32(v) => write_array(&mut w, &shape, v),
            TensorData::I64(v) => write_array(&mut w, &shape, v),
            TensorData::Bool(v) => write_array(&mut w, &shape, v),
        }
        .map_err(io(path))?;
    }
    w.finish().map_err(|e| io(path)(zip_io(e)))?;
    Ok(())
}

fn write_array<T, W>(w: &mut W, shape: &[u64], data: &[T]) -> std::io::Result<()>
where
    T: npyz::AutoSerialize + Copy,
    W: std::io::Write,
{
    let mut a = npyz::WriteOptions::new()
        .default_dtype()
        .shape(shape)
        .writer(w)
        .begin_nd()?;
    a.extend(data.iter().copied())?;
    a.finish()
}
