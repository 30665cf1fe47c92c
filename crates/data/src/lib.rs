//! Data for training: where examples come from and how they reach a compiled step.
//!
//! A [`Dataset`] is a block of `f32` samples of one shape with integer labels, in memory.
//! [`digits`] decodes the UCI optical-digits set that ships inside the binary (so the demo
//! and the tests need no network and no files). The loaders read the files users have:
//! `.npy`/`.npz` ([`npz`], [`npy_pair`]), MNIST's idx files ([`mnist`]) and CIFAR-10's
//! binary batches ([`cifar10`]); [`load`] picks one by file name or directory contents, for
//! `sinter train --data PATH`.
//!
//! Every loader treats its input as untrusted: sizes in a header are checked against the
//! file's length before anything is allocated, and every mismatch comes back as a
//! [`DataError`] naming the file and the sizes involved, never as a panic.
//!
//! [`augment`] holds the per-sample transforms and [`Pipeline`] turns a data set into a
//! stream of shuffled, augmented batches prepared on a worker thread; [`pipeline`]'s docs
//! state its determinism contract (batches depend on the seed and epoch, never on timing).

pub mod augment;
mod cifar;
mod digits;
mod load;
mod mnist;
mod npy;
pub mod pipeline;
#[cfg(test)]
mod testutil;

pub use augment::{Augment, Crop};
pub use cifar::{cifar10, cifar10_files};
pub use digits::{DIGITS_CSV_GZ, digits, digits_split};
pub use load::{load, load_test};
pub use mnist::{mnist, mnist_files};
pub use npy::{NPZ_LABEL_KEYS, NPZ_SAMPLE_KEYS, npy_pair, npz, npz_keys};
pub use pipeline::{Batch, MAX_PREFETCH, Pipeline, PipelineConfig, epoch_order, sample_key};

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
    /// The pipeline's worker thread stopped without finishing its batches.
    #[error("data pipeline worker: {message}")]
    Worker {
        /// Why it stopped (a panic's message).
        message: String,
    },
}

impl DataError {
    /// A [`DataError::Format`] for `source`.
    pub(crate) fn format(source: impl std::fmt::Display, message: impl Into<String>) -> Self {
        DataError::Format {
            source_name: source.to_string(),
            message: message.into(),
        }
    }

    /// A [`DataError::Io`] for `path`.
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

/// The product of `dims`, or `None` where it overflows.
pub(crate) fn checked_product(dims: &[usize]) -> Option<usize> {
    dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
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

    /// Checks that the fields agree: `x` holds `len() * sample_len()` values and every label
    /// is in `0..classes`. `source` names the data in the error.
    pub fn check(&self, source: &str) -> Result<(), DataError> {
        let want = checked_product(&self.sample_shape).and_then(|n| n.checked_mul(self.len()));
        if want != Some(self.x.len()) {
            return Err(DataError::format(
                source,
                format!(
                    "{} samples of shape {:?} need {} values, but there are {}",
                    self.len(),
                    self.sample_shape,
                    want.map_or("more than usize::MAX".to_string(), |n| n.to_string()),
                    self.x.len()
                ),
            ));
        }
        if let Some((i, l)) = self
            .labels
            .iter()
            .enumerate()
            .find(|&(_, &l)| l < 0 || l as u64 >= self.classes as u64)
        {
            return Err(DataError::format(
                source,
                format!("label {l} of sample {i} is outside 0..{}", self.classes),
            ));
        }
        Ok(())
    }

    /// The same samples viewed with another sample shape of the same size, say `[28, 28]`
    /// as `[1, 28, 28]`.
    pub fn reshape_samples(mut self, shape: &[usize]) -> Result<Dataset, DataError> {
        if checked_product(shape) != Some(self.sample_len()) {
            return Err(DataError::format(
                "reshape",
                format!(
                    "samples of shape {:?} ({} values) cannot be viewed as {shape:?}",
                    self.sample_shape,
                    self.sample_len()
                ),
            ));
        }
        self.sample_shape = shape.to_vec();
        Ok(self)
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
