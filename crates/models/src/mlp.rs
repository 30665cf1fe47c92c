//! Fully connected networks: the MLP classifier and the stacked autoencoder.

use crate::net::Net;
use crate::{BuildError, Mode, classify};
use sinter_ir::{Graph, Op, TensorType};

/// A multi-layer perceptron: `linear -> relu` per hidden layer, then a linear classifier.
#[derive(Clone, Debug, PartialEq)]
pub struct MlpConfig {
    /// Batch size.
    pub batch: usize,
    /// Input features (`x: f32[batch, inputs]`).
    pub inputs: usize,
    /// Hidden layer widths, `fc1`, `fc2`, ...
    pub hidden: Vec<usize>,
    /// Classes.
    pub classes: usize,
}

impl MlpConfig {
    /// 64 inputs (the 8x8 digits), one hidden layer of 32, batch 8.
    pub fn small() -> MlpConfig {
        MlpConfig {
            batch: 8,
            inputs: 64,
            hidden: vec![32],
            classes: 10,
        }
    }

    /// MNIST-sized: 784 inputs, hidden 512 and 256, batch 64.
    pub fn full() -> MlpConfig {
        MlpConfig {
            batch: 64,
            inputs: 784,
            hidden: vec![512, 256],
            classes: 10,
        }
    }
}

/// The MLP classifier of `cfg`: outputs `loss` and `logits`.
pub fn mlp(cfg: &MlpConfig) -> Result<Graph, BuildError> {
    let mut n = Net::new("mlp", Mode::Train);
    let x = n.input("x", TensorType::f32(&[cfg.batch, cfg.inputs]))?;
    let labels = n.input("labels", TensorType::i64(&[cfg.batch]))?;
    let mut h = x;
    for (i, &w) in cfg.hidden.iter().enumerate() {
        let z = n.linear(&format!("fc{}", i + 1), h, w)?;
        h = n.relu(z)?;
    }
    classify(n, h, labels, cfg.classes)
}

/// A stacked autoencoder: encoder layers `enc1`, `enc2`, ... (`linear -> sigmoid`) and, for
/// reconstruction, the mirrored decoder `dec<k>`, ..., `dec1` back to the input size.
#[derive(Clone, Debug, PartialEq)]
pub struct AutoencoderConfig {
    /// Batch size.
    pub batch: usize,
    /// Input features (`x: f32[batch, inputs]`, values in `[0, 1]`).
    pub inputs: usize,
    /// Encoder widths, outermost first.
    pub hidden: Vec<usize>,
    /// `None`: reconstruct `x` (output `recon`, `loss` the mean squared error). `Some(c)`:
    /// classify the code into `c` classes (the fine-tuning graph: output `logits`, input
    /// `labels`); the encoder's parameters have the same names in both forms.
    pub classes: Option<usize>,
}

impl AutoencoderConfig {
    /// 64 inputs, encoder 32 -> 16, reconstruction, batch 8.
    pub fn small() -> AutoencoderConfig {
        AutoencoderConfig {
            batch: 8,
            inputs: 64,
            hidden: vec![32, 16],
            classes: None,
        }
    }

    /// MNIST-sized: 784 inputs, encoder 500 -> 250 -> 30 (Hinton and Salakhutdinov's
    /// layout minus the first 1000), reconstruction, batch 64.
    pub fn full() -> AutoencoderConfig {
        AutoencoderConfig {
            batch: 64,
            inputs: 784,
            hidden: vec![500, 250, 30],
            classes: None,
        }
    }
}

/// The stacked autoencoder of `cfg`: outputs `loss` and `recon` (or `logits`).
pub fn autoencoder(cfg: &AutoencoderConfig) -> Result<Graph, BuildError> {
    if cfg.hidden.is_empty() {
        return Err(BuildError::Config(
            "an autoencoder needs at least one hidden layer".into(),
        ));
    }
    let mut n = Net::new("sae", Mode::Train);
    let x = n.input("x", TensorType::f32(&[cfg.batch, cfg.inputs]))?;
    let mut h = x;
    for (i, &w) in cfg.hidden.iter().enumerate() {
        let z = n.linear(&format!("enc{}", i + 1), h, w)?;
        h = n.op(Op::Sigmoid {}, &[z])?;
    }
    if let Some(classes) = cfg.classes {
        let labels = n.input("labels", TensorType::i64(&[cfg.batch]))?;
        return classify(n, h, labels, classes);
    }
    let mut widths: Vec<usize> = vec![cfg.inputs];
    widths.extend(&cfg.hidden[..cfg.hidden.len() - 1]);
    for i in (0..cfg.hidden.len()).rev() {
        let z = n.linear(&format!("dec{}", i + 1), h, widths[i])?;
        h = if i == 0 {
            n.named("recon", Op::Sigmoid {}, &[z])?
        } else {
            n.op(Op::Sigmoid {}, &[z])?
        };
    }
    let loss = n.mse(h, x)?;
    n.finish(&[loss, h])
}
