//! Shared test helpers: fixture paths, `.npz` reading and the tolerance check.
#![allow(dead_code)]

use sinter_ir::{Tensor, TensorData};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// `tests/onnx/fixtures` at the repository root.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/onnx/fixtures")
}

/// Every fixture model's stem, sorted.
pub fn fixture_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixtures())
        .expect("tests/onnx/fixtures exists")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".onnx").map(str::to_string)
        })
        .collect();
    names.sort();
    names
}

/// Reads every array of an `.npz` file (f32, f64 as f32, i64, i32 as i64, bool).
pub fn read_npz(path: &Path) -> HashMap<String, Tensor> {
    let file = std::io::BufReader::new(std::fs::File::open(path).unwrap());
    let mut archive = zip::ZipArchive::new(file).unwrap();
    let names: Vec<String> = archive
        .file_names()
        .filter_map(npyz::npz::array_name_from_file_name)
        .map(str::to_string)
        .collect();
    let mut out = HashMap::new();
    for name in names {
        let entry = archive
            .by_name(&npyz::npz::file_name_from_array_name(&name))
            .unwrap();
        let npy = npyz::NpyFile::new(entry).unwrap();
        let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
        let data = match npy.dtype().descr().as_str() {
            "'<f4'" => TensorData::F32(npy.into_vec::<f32>().unwrap()),
            "'<f8'" => TensorData::F32(
                npy.into_vec::<f64>()
                    .unwrap()
                    .into_iter()
                    .map(|v| v as f32)
                    .collect(),
            ),
            "'<i8'" => TensorData::I64(npy.into_vec::<i64>().unwrap()),
            "'<i4'" => TensorData::I64(
                npy.into_vec::<i32>()
                    .unwrap()
                    .into_iter()
                    .map(i64::from)
                    .collect(),
            ),
            "'|b1'" => TensorData::Bool(npy.into_vec::<bool>().unwrap()),
            other => panic!("{}: array {name}: dtype {other}", path.display()),
        };
        out.insert(name, Tensor::new(&shape, data).unwrap());
    }
    out
}

/// Absolute tolerance of the comparison with onnxruntime.
pub const ATOL: f32 = 1e-5;
/// Relative tolerance of the comparison with onnxruntime.
pub const RTOL: f32 = 1e-4;

/// `Err` describing the worst element when `got` and `want` differ beyond
/// `ATOL + RTOL * |want|`, or in type.
pub fn compare(got: &Tensor, want: &Tensor) -> Result<(), String> {
    if got.shape() != want.shape() {
        return Err(format!("shape {:?}, want {:?}", got.shape(), want.shape()));
    }
    match (got.data(), want.data()) {
        (TensorData::F32(g), TensorData::F32(w)) => {
            let mut worst: Option<(usize, f32)> = None;
            for (i, (&a, &b)) in g.iter().zip(w).enumerate() {
                let err = (a - b).abs();
                let ok = err <= ATOL + RTOL * b.abs() || (a.is_nan() && b.is_nan());
                if !ok && worst.is_none_or(|(_, e)| err > e) {
                    worst = Some((i, err));
                }
            }
            match worst {
                None => Ok(()),
                Some((i, e)) => Err(format!(
                    "element {i}: got {} want {} (error {e})",
                    g[i], w[i]
                )),
            }
        }
        (g, w) if g == w => Ok(()),
        _ => Err(format!("got {}, want {}", got.ty(), want.ty())),
    }
}

/// How the every-fixture tests import fixture `name`: `dyn_*` models have a dynamic batch,
/// fixed (as `--shape` would) to the shapes of their reference inputs; the others need no
/// options.
pub fn import_options(name: &str) -> sinter_import_onnx::ImportOptions {
    let mut opts = sinter_import_onnx::ImportOptions::default();
    if name.starts_with("dyn_") {
        for (k, t) in read_npz(&fixtures().join(format!("{name}.inputs.npz"))) {
            opts.shapes.insert(k, t.shape().to_vec());
        }
    }
    opts
}
