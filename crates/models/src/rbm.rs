//! Restricted Boltzmann machines and deep belief networks: their deterministic forward graphs.
//!
//! An RBM is trained by contrastive divergence, which is not the gradient of any loss a graph
//! could write down, so its training step is built in `sinter-train` (`rbm.rs` there), not by
//! autodiff. What the zoo holds is what the trained weights compute. [`rbm`] is the
//! mean-field reconstruction: visible data up to hidden probabilities and back down to
//! visible probabilities, with its mean squared error as `loss` (the reconstruction error
//! contrastive divergence reports). [`dbn`] is the network a deep belief net becomes for
//! fine-tuning: the RBMs' up-passes stacked as `linear -> sigmoid` layers under a softmax
//! classifier.
//!
//! Names tie the two together. An RBM layer `rbm1` keeps its weights `rbm1.w: [V, H]` and its
//! hidden biases `rbm1.b: [H]` under the names [`crate::mlp`]'s linear layers use, so its
//! up-pass *is* the linear layer `rbm1` of the DBN and pretrained weights feed the
//! fine-tuning graph by name; only the visible biases `rbm1.b_v: [V]`, which the up-pass does
//! not read, are the RBM's own.
//!
//! ```
//! use sinter_models::{DbnConfig, RbmConfig, dbn, param_count, rbm};
//! // 784 x 500 weights, 500 hidden and 784 visible biases.
//! assert_eq!(param_count(&rbm(&RbmConfig::full()).unwrap()), 393_284);
//! // 784-500-500-2000 and a 10-way classifier: Hinton et al.'s 1.7 million weights.
//! let g = dbn(&DbnConfig::full()).unwrap();
//! assert_eq!(param_count(&g), 1_665_010);
//! assert!(g.find("rbm3.w").is_some() && g.find("rbm1.b_v").is_none());
//! ```

use crate::net::Net;
use crate::{BuildError, Mode, classify};
use sinter_ir::{Graph, Op, TensorType};

/// A Bernoulli-Bernoulli RBM layer.
#[derive(Clone, Debug, PartialEq)]
pub struct RbmConfig {
    /// Batch size.
    pub batch: usize,
    /// Visible units (`x: f32[batch, visible]`, values in `[0, 1]`).
    pub visible: usize,
    /// Hidden units.
    pub hidden: usize,
}

impl RbmConfig {
    /// 64 visible units (the 8x8 digits), 32 hidden, batch 8.
    pub fn small() -> RbmConfig {
        RbmConfig {
            batch: 8,
            visible: 64,
            hidden: 32,
        }
    }

    /// MNIST-sized: 784 visible, 500 hidden (the first layer of Hinton, Osindero and Teh's
    /// DBN), batch 64.
    pub fn full() -> RbmConfig {
        RbmConfig {
            batch: 64,
            visible: 784,
            hidden: 500,
        }
    }
}

/// The mean-field reconstruction of the RBM `cfg`, its layer called `rbm`: `hidden =
/// sigmoid(x @ rbm.w + rbm.b)`, `recon = sigmoid(hidden @ rbm.w^T + rbm.b_v)`, `loss` the
/// mean squared error of `recon` against `x`. Outputs `loss`, `recon` and `hidden`.
pub fn rbm(cfg: &RbmConfig) -> Result<Graph, BuildError> {
    if cfg.visible == 0 || cfg.hidden == 0 {
        return Err(BuildError::Config(
            "an RBM needs at least one visible and one hidden unit".into(),
        ));
    }
    let mut n = Net::new("rbm", Mode::Train);
    let x = n.input("x", TensorType::f32(&[cfg.batch, cfg.visible]))?;
    // `Net::linear` written out: the down-pass reads the same `rbm.w`.
    let w = n.param("rbm.w", &[cfg.visible, cfg.hidden])?;
    let b = n.param("rbm.b", &[cfg.hidden])?;
    let b_v = n.param("rbm.b_v", &[cfg.visible])?;
    let z = n.named("rbm", gemm(false), &[x, w, b])?;
    let h = n.named("hidden", Op::Sigmoid {}, &[z])?;
    let zv = n.op(gemm(true), &[h, w, b_v])?;
    let recon = n.named("recon", Op::Sigmoid {}, &[zv])?;
    let loss = n.mse(recon, x)?;
    n.finish(&[loss, recon, h])
}

/// `a @ b + c`, or `a @ b^T + c` when `trans_b`.
fn gemm(trans_b: bool) -> Op {
    Op::Gemm {
        trans_a: false,
        trans_b,
        alpha: 1.0.into(),
        beta: 1.0.into(),
    }
}

/// A deep belief network as fine-tuned: RBM layers `rbm1`, `rbm2`, ... (`linear -> sigmoid`)
/// under a softmax classifier `logits`.
#[derive(Clone, Debug, PartialEq)]
pub struct DbnConfig {
    /// Batch size.
    pub batch: usize,
    /// Input features (`x: f32[batch, inputs]`, values in `[0, 1]`).
    pub inputs: usize,
    /// Hidden widths of the stacked RBMs, lowest first.
    pub hidden: Vec<usize>,
    /// Classes.
    pub classes: usize,
}

impl DbnConfig {
    /// 64 inputs, RBMs of 32 and 16 hidden units, 10 classes, batch 8.
    pub fn small() -> DbnConfig {
        DbnConfig {
            batch: 8,
            inputs: 64,
            hidden: vec![32, 16],
            classes: 10,
        }
    }

    /// Hinton, Osindero and Teh's MNIST network (2006): 784-500-500-2000, 10 classes,
    /// batch 64.
    pub fn full() -> DbnConfig {
        DbnConfig {
            batch: 64,
            inputs: 784,
            hidden: vec![500, 500, 2000],
            classes: 10,
        }
    }
}

/// The DBN classifier of `cfg`: outputs `loss` and `logits`.
pub fn dbn(cfg: &DbnConfig) -> Result<Graph, BuildError> {
    if cfg.hidden.is_empty() {
        return Err(BuildError::Config(
            "a deep belief network needs at least one RBM layer".into(),
        ));
    }
    let mut n = Net::new("dbn", Mode::Train);
    let x = n.input("x", TensorType::f32(&[cfg.batch, cfg.inputs]))?;
    let labels = n.input("labels", TensorType::i64(&[cfg.batch]))?;
    let mut h = x;
    for (i, &w) in cfg.hidden.iter().enumerate() {
        let z = n.linear(&format!("rbm{}", i + 1), h, w)?;
        h = n.op(Op::Sigmoid {}, &[z])?;
    }
    classify(n, h, labels, cfg.classes)
}
