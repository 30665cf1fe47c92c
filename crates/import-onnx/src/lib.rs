//! ONNX import: `.onnx` files from other frameworks become verified Sinter graphs.
//!
//! Every major framework exports ONNX, so this crate is how Sinter serves as a compiler
//! backend for models it did not build. The pipeline is short and one-way:
//!
//! 1. [`model`] decodes the protobuf (the official `onnx.proto`, compiled by `prost`), checks
//!    the opset, the names and the graph structure (dangling names, cycles), orders the nodes
//!    topologically and collects **every** unsupported op before converting anything.
//! 2. [`convert`] walks the nodes with the values known so far: tensors known at import time
//!    (initializers, `Constant`, `Shape` of a static shape, and arithmetic on them) are folded
//!    by [`fold`]; everything else becomes Sinter ops through the per-family lowerings in
//!    [`lower`] (convolution and pooling, elementwise, shape movement, recurrent cells).
//! 3. The result is a [`sinter_ir::Graph`] that has passed [`sinter_ir::Graph::verify`].
//!
//! Sinter shapes are static. A dynamic dimension (a `dim_param`, or a missing extent) must be
//! fixed with [`ImportOptions::shapes`] (`--shape x=1x3x224x224` on the command line).
//! ONNX names may use any characters; Sinter's use letters, digits, `_` and `.`, so [`ir_name`]
//! replaces the others with `_`. `ir-spec/onnx.md` is the op mapping table.

pub mod convert;
pub mod error;
pub mod fold;
pub mod lower;
pub mod model;
pub mod proto;
pub mod tensor;

pub use error::{ImportError, NodeRef};

use sinter_ir::Graph;
use std::collections::HashMap;
use std::path::Path;

/// How to import a model.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// Static shapes for graph inputs, by ONNX input name: they fix dynamic dimensions (and
    /// must agree with the model's static ones).
    pub shapes: HashMap<String, Vec<usize>>,
    /// Float initializers become trainable parameters (`param`, fed like inputs by name)
    /// instead of constants. Integer initializers (shapes, indices) stay constants.
    pub trainable: bool,
}

/// Imports an ONNX model from its serialized bytes.
pub fn import(bytes: &[u8], options: &ImportOptions) -> Result<Graph, ImportError> {
    let model = model::decode(bytes)?;
    convert::convert(&model, options)
}

/// Reads and imports an `.onnx` file.
pub fn import_file(path: &Path, options: &ImportOptions) -> Result<Graph, ImportError> {
    let bytes = std::fs::read(path).map_err(|source| ImportError::Io {
        path: path.display().to_string(),
        source,
    })?;
    import(&bytes, options)
}

/// The Sinter value name for an ONNX name: characters other than ASCII letters, digits, `_`
/// and `.` become `_`; an empty name becomes `_`. Graph inputs and outputs keep these names,
/// so `sinter run` feeds and writes arrays under them.
pub fn ir_name(onnx: &str) -> String {
    if onnx.is_empty() {
        return "_".into();
    }
    onnx.chars()
        .map(|c| {
            if sinter_ir::graph::is_name_char(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Parses a `--shape` option: `name=1x3x224x224` (a scalar is `name=`).
pub fn parse_shape_option(s: &str) -> Result<(String, Vec<usize>), String> {
    let (name, dims) = s
        .rsplit_once('=')
        .ok_or_else(|| format!("`{s}`: expected NAME=DxDxD, e.g. x=1x3x224x224"))?;
    if name.is_empty() {
        return Err(format!("`{s}`: the input name is empty"));
    }
    let shape = if dims.is_empty() {
        Vec::new()
    } else {
        dims.split('x')
            .map(|d| d.trim().parse::<usize>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| format!("`{s}`: extents must be non-negative integers joined by `x`"))?
    };
    Ok((name.to_string(), shape))
}
