//! Data for training: where examples come from and how they reach a compiled step.
//!
//! A [`Dataset`] is a block of `f32` samples of one shape with integer labels, in memory.
//! [`digits`] decodes the UCI optical-digits set that ships inside the binary (so the demo
//! and the tests need no network and no files).

mod digits;

pub use digits::{DIGITS_CSV_GZ, digits, digits_split};

use sinter_ir::Tensor;

/// Why data could not be loaded or batched.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The contents are not what the format says.
    #[error("{source_name}: {message}")]
    Format {
        /// The file or embedded resource.
        source_name: String,
        /// What is wrong, with the sizes involved.
        message: String,
    },
}

/// Samples of one shape with their labels, in memory.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// All samples, row-major, one after another (`len() * sample_shape.product()` values).
    pub x: Vec<f32>,
    /// The shape of one sample, say `[1, 8, 8]`.
    pub sample_shape: Vec<usize>,
    /// One label per sample, in `0..classes`.
    pub labels: Vec<i64>,
    /// The number of classes.
    pub classes: usize,
}

impl Dataset {
    /// The number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Values per sample.
    pub fn sample_len(&self) -> usize {
        self.sample_shape.iter().product()
    }

    /// Sample `i`'s values.
    pub fn sample(&self, i: usize) -> &[f32] {
        let n = self.sample_len();
        &self.x[i * n..(i + 1) * n]
    }

    /// The samples at `indices` as a batch: `x: f32[n, ..sample_shape]` and `labels: i64[n]`.
    pub fn batch(&self, indices: &[usize]) -> (Tensor, Tensor) {
        let mut x = Vec::with_capacity(indices.len() * self.sample_len());
        for &i in indices {
            x.extend_from_slice(self.sample(i));
        }
        let mut shape = vec![indices.len()];
        shape.extend_from_slice(&self.sample_shape);
        let labels = indices.iter().map(|&i| self.labels[i]).collect();
        (
            Tensor::from_f32(&shape, x),
            Tensor::from_i64(&[indices.len()], labels),
        )
    }

    /// The samples at `indices`, as a new data set.
    pub fn subset(&self, indices: &[usize]) -> Dataset {
        let mut x = Vec::with_capacity(indices.len() * self.sample_len());
        for &i in indices {
            x.extend_from_slice(self.sample(i));
        }
        Dataset {
            x,
            sample_shape: self.sample_shape.clone(),
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            classes: self.classes,
        }
    }
}
