//! Data sets from numpy's `.npy` and `.npz` files.
//!
//! A data set is two arrays: samples `[n, ..sample_shape]` (float32, float64, or uint8 pixels
//! scaled to `[0, 1]`) and integer labels `[n]` (or `[n, 1]`). `npyz` parses each `.npy`; an
//! `.npz` (a zip of `.npy` files) is opened with the `zip` crate, deflate only, as
//! `sinter::npz` does and for the same reason (npyz's own `npz` feature would build zstd,
//! bzip2 and AES into every build).
//!
//! Before `npyz` sees a file, this module reads the header's shape itself and checks the
//! element count against the bytes that follow: a header may claim any shape, and neither an
//! overflowing product nor a huge allocation may follow from a lie.

use crate::{DataError, Dataset};
use npyz::npz::{array_name_from_file_name, file_name_from_array_name};
use npyz::{NpyHeader, TypeChar};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

/// An array's values, widened to the types the data set needs.
#[derive(Debug)]
pub(crate) enum Values {
    /// float32.
    F32(Vec<f32>),
    /// float64.
    F64(Vec<f64>),
    /// uint8 (pixels when samples, classes when labels).
    U8(Vec<u8>),
    /// Any other integer type.
    Int(Vec<i64>),
}

/// One array: its shape and values.
#[derive(Debug)]
pub(crate) struct Array {
    pub shape: Vec<usize>,
    pub values: Values,
}

/// Samples from `x_path` and labels from `y_path`, two `.npy` files.
pub fn npy_pair(x_path: &Path, y_path: &Path) -> Result<Dataset, DataError> {
    let x = parse_npy(&read_file(x_path)?, &x_path.display().to_string())?;
    let y = parse_npy(&read_file(y_path)?, &y_path.display().to_string())?;
    to_dataset(
        x,
        y,
        &x_path.display().to_string(),
        &y_path.display().to_string(),
    )
}

/// The keys [`npz`] tries for samples, in order.
pub const NPZ_SAMPLE_KEYS: [&str; 3] = ["x", "images", "x_train"];
/// The keys [`npz`] tries for labels, in order.
pub const NPZ_LABEL_KEYS: [&str; 3] = ["y", "labels", "y_train"];

/// The data set in an `.npz` archive: samples under the first of `x`, `images`, `x_train`
/// and labels under the first of `y`, `labels`, `y_train` present.
pub fn npz(path: &Path) -> Result<Dataset, DataError> {
    let names = npz_names(path)?;
    let pick = |keys: &[&str], what: &str| {
        keys.iter()
            .find(|k| names.iter().any(|n| n == *k))
            .map(|k| k.to_string())
            .ok_or_else(|| {
                DataError::format(
                    path.display(),
                    format!("no {what} array: looked for {keys:?}, the archive has {names:?}"),
                )
            })
    };
    let x_key = pick(&NPZ_SAMPLE_KEYS, "samples")?;
    let y_key = pick(&NPZ_LABEL_KEYS, "labels")?;
    npz_keys(path, &x_key, &y_key)
}

/// The data set in an `.npz` archive with samples under `x_key` and labels under `y_key`.
pub fn npz_keys(path: &Path, x_key: &str, y_key: &str) -> Result<Dataset, DataError> {
    let mut archive = open_npz(path)?;
    let x = npz_array(&mut archive, path, x_key)?;
    let y = npz_array(&mut archive, path, y_key)?;
    let name = |k: &str| format!("{}: array `{k}`", path.display());
    to_dataset(x, y, &name(x_key), &name(y_key))
}

/// The names of the arrays in an `.npz` archive.
pub(crate) fn npz_names(path: &Path) -> Result<Vec<String>, DataError> {
    let archive = open_npz(path)?;
    Ok(archive
        .file_names()
        .filter_map(array_name_from_file_name)
        .map(str::to_string)
        .collect())
}

fn read_file(path: &Path) -> Result<Vec<u8>, DataError> {
    std::fs::read(path).map_err(|e| DataError::io(path, e))
}

fn open_npz(path: &Path) -> Result<zip::ZipArchive<BufReader<File>>, DataError> {
    let file = File::open(path).map_err(|e| DataError::io(path, e))?;
    zip::ZipArchive::new(BufReader::new(file))
        .map_err(|e| DataError::format(path.display(), format!("not a zip archive: {e}")))
}

fn npz_array(
    archive: &mut zip::ZipArchive<BufReader<File>>,
    path: &Path,
    key: &str,
) -> Result<Array, DataError> {
    let source = format!("{}: array `{key}`", path.display());
    let mut entry = match archive.by_name(&file_name_from_array_name(key)) {
        Ok(entry) => entry,
        Err(zip::result::ZipError::FileNotFound) => {
            let names = npz_names(path)?;
            return Err(DataError::format(
                path.display(),
                format!("no array `{key}`: the archive has {names:?}"),
            ));
        }
        Err(e) => return Err(DataError::format(&source, e.to_string())),
    };
    // The declared size bounds the read; the buffer grows with what is really there.
    let size = entry.size();
    let mut bytes = Vec::new();
    (&mut entry)
        .take(size)
        .read_to_end(&mut bytes)
        .map_err(|e| DataError::format(&source, e.to_string()))?;
    parse_npy(&bytes, &source)
}

/// The shape written in an `.npy` header's text, where it parses as a tuple (or list) of
/// integers.
fn header_shape(text: &str) -> Option<Vec<u64>> {
    let at = text.find("'shape'").or_else(|| text.find("\"shape\""))?;
    let rest = &text[at + 7..];
    let value = rest.trim_start().strip_prefix(':')?.trim_start();
    // A tuple, or a list (which numpy's parser also takes).
    let (inner, close) = match value.strip_prefix('(') {
        Some(t) => (t, ')'),
        None => (value.strip_prefix('[')?, ']'),
    };
    let inner = &inner[..inner.find(close)?];
    inner
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| d.trim_end_matches('L').parse::<u64>().ok())
        .collect()
}

/// Parses an `.npy` file's bytes; `source` names it in errors.
pub(crate) fn parse_npy(bytes: &[u8], source: &str) -> Result<Array, DataError> {
    let bad = |m: String| DataError::format(source, m);
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad(format!(
            "not an .npy file: expected the magic \\x93NUMPY, file is {} bytes",
            bytes.len()
        )));
    }
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        2 | 3 => {
            return Err(bad(
                "truncated header: the file ends inside its length".into()
            ));
        }
        v => return Err(bad(format!("unsupported .npy version {v}"))),
    };
    if bytes.len() - start < header_len {
        return Err(bad(format!(
            "truncated header: it declares {header_len} bytes, {} follow",
            bytes.len() - start
        )));
    }
    let text = String::from_utf8_lossy(&bytes[start..start + header_len]);
    if let Some(dims) = header_shape(&text)
        && dims
            .iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d))
            .is_none()
    {
        return Err(bad(format!(
            "shape {dims:?} has more elements than fit in 64 bits"
        )));
    }
    let mut data = bytes;
    let header = NpyHeader::from_reader(&mut data).map_err(|e| bad(e.to_string()))?;
    if header.uses_pickled_array() {
        return Err(bad("object arrays (pickled) are not supported".into()));
    }
    let shape: Vec<usize> = header
        .shape()
        .iter()
        .map(|&d| usize::try_from(d))
        .collect::<Result<_, _>>()
        .map_err(|_| bad(format!("shape {:?} does not fit in memory", header.shape())))?;
    if header.order() == npyz::Order::Fortran && shape.iter().filter(|&&d| d > 1).count() > 1 {
        return Err(bad(
            "Fortran-ordered arrays are not supported: save with np.ascontiguousarray".into(),
        ));
    }
    let dtype = header.dtype();
    let item = dtype.num_bytes().unwrap_or(0);
    let need = header.len().checked_mul(item as u64);
    if need != Some(data.len() as u64) {
        return Err(bad(format!(
            "shape {shape:?} of {} ({item} bytes each) needs {} data bytes, the file has {}",
            dtype.descr(),
            need.map_or("more than u64::MAX".into(), |n| n.to_string()),
            data.len()
        )));
    }
    let npyz::DType::Plain(ts) = &dtype else {
        return Err(bad(format!(
            "dtype {} is not a plain number",
            dtype.descr()
        )));
    };
    let file = npyz::NpyFile::with_header(header.clone(), data);
    let read_err = |e: std::io::Error| bad(e.to_string());
    let ints = |v: Vec<i64>| Values::Int(v);
    let values = match (ts.type_char(), ts.size_field()) {
        (TypeChar::Float, 4) => Values::F32(file.into_vec().map_err(read_err)?),
        (TypeChar::Float, 8) => Values::F64(file.into_vec().map_err(read_err)?),
        (TypeChar::Uint, 1) => Values::U8(file.into_vec().map_err(read_err)?),
        (TypeChar::Uint, 2) => ints(widen::<u16>(file).map_err(read_err)?),
        (TypeChar::Uint, 4) => ints(widen::<u32>(file).map_err(read_err)?),
        (TypeChar::Uint, 8) => {
            let v: Vec<u64> = file.into_vec().map_err(read_err)?;
            ints(
                v.into_iter()
                    .map(|u| i64::try_from(u).map_err(|_| bad(format!("value {u} exceeds i64"))))
                    .collect::<Result<_, _>>()?,
            )
        }
        (TypeChar::Int, 1) => ints(widen::<i8>(file).map_err(read_err)?),
        (TypeChar::Int, 2) => ints(widen::<i16>(file).map_err(read_err)?),
        (TypeChar::Int, 4) => ints(widen::<i32>(file).map_err(read_err)?),
        (TypeChar::Int, 8) => ints(file.into_vec().map_err(read_err)?),
        _ => {
            return Err(bad(format!(
                "dtype {} is not supported (use float32, float64, uint8 or another integer type)",
                dtype.descr()
            )));
        }
    };
    Ok(Array { shape, values })
}

fn widen<T: npyz::Deserialize + Into<i64>>(
    file: npyz::NpyFile<&[u8]>,
) -> std::io::Result<Vec<i64>> {
    Ok(file.into_vec::<T>()?.into_iter().map(Into::into).collect())
}

/// Pairs samples and labels into a data set; `xs` and `ys` name them in errors.
pub(crate) fn to_dataset(x: Array, y: Array, xs: &str, ys: &str) -> Result<Dataset, DataError> {
    let Some((&n, sample_shape)) = x.shape.split_first() else {
        return Err(DataError::format(
            xs,
            "samples need a leading sample axis, the array is a scalar",
        ));
    };
    let samples = match x.values {
        Values::F32(v) => v,
        Values::F64(v) => v.into_iter().map(|v| v as f32).collect(),
        Values::U8(v) => v.into_iter().map(|p| f32::from(p) / 255.0).collect(),
        Values::Int(_) => {
            return Err(DataError::format(
                xs,
                "samples must be float32, float64 or uint8 (pixels)",
            ));
        }
    };
    let labels: Vec<i64> = match y.values {
        Values::Int(v) => v,
        Values::U8(v) => v.into_iter().map(i64::from).collect(),
        Values::F32(_) | Values::F64(_) => {
            return Err(DataError::format(ys, "labels must be integers"));
        }
    };
    if !(y.shape.len() == 1 || y.shape.len() == 2 && y.shape[1] == 1) {
        return Err(DataError::format(
            ys,
            format!("labels must have shape [n] or [n, 1], not {:?}", y.shape),
        ));
    }
    if labels.len() != n {
        return Err(DataError::format(
            format!("{xs} and {ys}"),
            format!("{n} samples but {} labels", labels.len()),
        ));
    }
    if let Some((i, l)) = labels.iter().enumerate().find(|&(_, &l)| l < 0) {
        return Err(DataError::format(
            ys,
            format!("label {l} of sample {i} is negative"),
        ));
    }
    let classes = labels.iter().max().map_or(0, |&m| m as usize + 1);
    let data = Dataset {
        x: samples,
        sample_shape: sample_shape.to_vec(),
        labels,
        classes,
    };
    data.check(xs)?;
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::WriteFile;
    use npyz::WriterBuilder;

    fn npy_bytes<T: npyz::AutoSerialize + Copy>(shape: &[u64], data: &[T]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut w = npyz::WriteOptions::new()
            .default_dtype()
            .shape(shape)
            .writer(&mut out)
            .begin_nd()
            .unwrap();
        w.extend(data.iter().copied()).unwrap();
        w.finish().unwrap();
        out
    }

    /// A version-1 `.npy` of `<f4` with the header's shape written as `shape`.
    fn raw_npy(shape: &str, data: &[u8]) -> Vec<u8> {
        let mut h = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
        while (10 + h.len() + 1) % 64 != 0 {
            h.push(' ');
        }
        h.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&(h.len() as u16).to_le_bytes());
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        out
    }

    fn write_npz(path: &Path, arrays: &[(&str, Vec<u8>)]) {
        let mut w = zip::ZipWriter::new(File::create(path).unwrap());
        for (name, bytes) in arrays {
            w.start_file(file_name_from_array_name(name), Default::default())
                .unwrap();
            std::io::Write::write_all(&mut w, bytes).unwrap();
        }
        w.finish().unwrap();
    }

    #[test]
    fn npy_pair_round_trips_f32_and_widens_labels() {
        let dir = tempfile::tempdir().unwrap();
        let xs: Vec<f32> = (0..24).map(|i| i as f32 * 0.25 - 1.0).collect();
        let ys: Vec<i32> = vec![2, 0, 1, 2, 0, 1];
        let x = dir.write("x.npy", &npy_bytes(&[6, 2, 2], &xs));
        let y = dir.write("y.npy", &npy_bytes(&[6], &ys));
        let d = npy_pair(&x, &y).unwrap();
        assert_eq!(d.sample_shape, vec![2, 2]);
        assert_eq!(d.x, xs);
        assert_eq!(
            d.labels,
            ys.iter().map(|&l| i64::from(l)).collect::<Vec<_>>()
        );
        assert_eq!(d.classes, 3);
    }

    #[test]
    fn u8_samples_scale_and_f64_narrows() {
        let px: Vec<u8> = vec![0, 51, 255, 128];
        let a = parse_npy(&npy_bytes(&[2, 2], &px), "t").unwrap();
        let y = parse_npy(&npy_bytes(&[2, 1], &[1u8, 0]), "l").unwrap();
        let d = to_dataset(a, y, "t", "l").unwrap();
        let want: Vec<f32> = px.iter().map(|&p| f32::from(p) / 255.0).collect();
        assert_eq!(d.x, want);
        assert_eq!(d.labels, vec![1, 0]);
        let a = parse_npy(&npy_bytes(&[1, 2], &[0.5f64, -3.25]), "t").unwrap();
        let y = parse_npy(&npy_bytes(&[1], &[4u64]), "l").unwrap();
        let d = to_dataset(a, y, "t", "l").unwrap();
        assert_eq!((d.x.clone(), d.classes), (vec![0.5, -3.25], 5));
    }

    #[test]
    fn npz_default_and_alternative_keys() {
        let dir = tempfile::tempdir().unwrap();
        let xs: Vec<f32> = (0..12).map(|i| i as f32).collect();
        let p = dir.path().join("a.npz");
        write_npz(
            &p,
            &[
                ("images", npy_bytes(&[3, 4], &xs)),
                ("labels", npy_bytes(&[3], &[1i64, 0, 1])),
            ],
        );
        let d = npz(&p).unwrap();
        assert_eq!(
            (d.len(), d.sample_shape.clone(), d.x.clone()),
            (3, vec![4], xs)
        );
        let q = dir.path().join("b.npz");
        write_npz(
            &q,
            &[
                ("feat", npy_bytes(&[2, 1], &[1.0f32, 2.0])),
                ("cls", npy_bytes(&[2], &[0i64, 3])),
            ],
        );
        let e = npz(&q).unwrap_err().to_string();
        assert!(e.contains("no samples array") && e.contains("feat"), "{e}");
        let d = npz_keys(&q, "feat", "cls").unwrap();
        assert_eq!((d.labels.clone(), d.classes), (vec![0, 3], 4));
        let e = npz_keys(&q, "feat", "nope").unwrap_err().to_string();
        assert!(e.contains("no array `nope`"), "{e}");
    }

    #[test]
    fn truncated_and_oversized_headers_are_errors() {
        let good = npy_bytes(&[4, 3], &[1.0f32; 12]);
        let e = parse_npy(&good[..good.len() - 5], "cut.npy")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("cut.npy") && e.contains("needs 48 data bytes, the file has 43"),
            "{e}"
        );
        let e = parse_npy(&good[..20], "h.npy").unwrap_err().to_string();
        assert!(e.contains("truncated header"), "{e}");
        let e = parse_npy(b"\x93NUMPY\x02\x00\x10\x00", "v2.npy")
            .unwrap_err()
            .to_string();
        assert!(e.contains("truncated header"), "{e}");
        let e = parse_npy(b"\x93NUMPY\x07\x00\x10\x00", "v7.npy")
            .unwrap_err()
            .to_string();
        assert!(e.contains("version 7"), "{e}");
        let e = parse_npy(b"PK\x03\x04 not numpy at all", "m.npy")
            .unwrap_err()
            .to_string();
        assert!(e.contains("magic"), "{e}");
        // A header claiming far more data than the file holds, then one whose product overflows.
        let lie = raw_npy("(400000000, 3)", &good[good.len() - 48..]);
        let e = parse_npy(&lie, "lie.npy").unwrap_err().to_string();
        assert!(e.contains("needs 4800000000 data bytes"), "{e}");
        let huge = raw_npy("(4294967296, 4294967296, 16)", &[0; 8]);
        let e = parse_npy(&huge, "huge.npy").unwrap_err().to_string();
        assert!(e.contains("more elements than fit"), "{e}");
        let huge = raw_npy("[4294967296, 4294967296, 16]", &[0; 8]);
        let e = parse_npy(&huge, "list.npy").unwrap_err().to_string();
        assert!(e.contains("more elements than fit"), "{e}");
        let list = raw_npy("[2, 1]", &[0; 8]);
        assert_eq!(parse_npy(&list, "ok.npy").unwrap().shape, vec![2, 1]);
    }

    #[test]
    fn mismatched_and_bad_labels_are_errors() {
        let x = || parse_npy(&npy_bytes(&[3, 2], &[0.0f32; 6]), "x").unwrap();
        let y = |v: &[i64]| parse_npy(&npy_bytes(&[v.len() as u64], v), "y").unwrap();
        let e = to_dataset(x(), y(&[0, 1]), "x", "y")
            .unwrap_err()
            .to_string();
        assert!(e.contains("3 samples but 2 labels"), "{e}");
        let e = to_dataset(x(), y(&[0, -1, 1]), "x", "y")
            .unwrap_err()
            .to_string();
        assert!(e.contains("label -1 of sample 1"), "{e}");
        let fy = parse_npy(&npy_bytes(&[3], &[0.0f32; 3]), "y").unwrap();
        let e = to_dataset(x(), fy, "x", "y").unwrap_err().to_string();
        assert!(e.contains("labels must be integers"), "{e}");
        let wide = parse_npy(&npy_bytes(&[3, 2], &[0i64; 6]), "y").unwrap();
        let e = to_dataset(x(), wide, "x", "y").unwrap_err().to_string();
        assert!(e.contains("[3, 2]"), "{e}");
        let b = parse_npy(&npy_bytes(&[2], &[true, false]), "b")
            .unwrap_err()
            .to_string();
        assert!(b.contains("not supported"), "{b}");
    }

    #[test]
    fn missing_file_and_non_zip_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.npz");
        assert!(matches!(npz(&missing), Err(DataError::Io { .. })));
        let p = dir.write("junk.npz", b"definitely not a zip");
        let e = npz(&p).unwrap_err().to_string();
        assert!(e.contains("junk.npz") && e.contains("not a zip"), "{e}");
    }
}
