//! Deep belief networks: RBMs pretrained greedily layer by layer, then fine-tuned as a
//! classifier.
//!
//! Hinton, Osindero and Teh (2006) train a stack of RBMs bottom-up: the first on the data,
//! each next one on the hidden probabilities of the one below, every layer by contrastive
//! divergence ([`crate::rbm`]). Each layer models what the layer below has found, without the
//! vanishing gradients a deep sigmoid network has when trained from random weights. The
//! stack is then turned into a feed-forward network: each RBM's up-pass `sigmoid(x W + b)`
//! becomes a hidden layer of `sinter_models::dbn` (same parameter names, so the pretrained
//! weights feed it by name), a softmax classifier goes on top, and the whole network is
//! fine-tuned by backpropagation (autodiff's training graph, Adam, on the JIT).
//!
//! Why hidden probabilities, not samples, go up: the next RBM's visible units are Bernoulli
//! too, and training it on probabilities is training on the expectation of the samples (less
//! noise, same mean); it is also exactly what the fine-tuned network computes at that layer.

use crate::rbm::{CdConfig, Rbm, train_rbm};
use crate::util::{FineTuneConfig, Progress, StackReport, TrainError, fine_tune};
use sinter_data::Dataset;
use sinter_models::{DbnConfig, dbn};
use std::collections::HashMap;

/// How to pretrain and fine-tune a deep belief network.
#[derive(Clone, Debug, PartialEq)]
pub struct DbnTrainConfig {
    /// Hidden widths of the RBMs, lowest first (layers `rbm1`, `rbm2`, ...).
    pub hidden: Vec<usize>,
    /// Contrastive divergence for every layer (layer `i`, from 0, uses seed `cd.seed + i`).
    pub cd: CdConfig,
    /// The supervised fine-tuning.
    pub fine_tune: FineTuneConfig,
}

impl Default for DbnTrainConfig {
    /// Two RBMs of 64 and 32 hidden units for the 8x8 digits, CD-1 and fine-tuning defaults.
    fn default() -> DbnTrainConfig {
        DbnTrainConfig {
            hidden: vec![64, 32],
            cd: CdConfig::default(),
            fine_tune: FineTuneConfig::default(),
        }
    }
}

/// Pretrains the RBMs of `cfg` on `train`, greedily; see the [module docs](self). Returns the
/// layers and each layer's epochs.
pub fn pretrain_dbn(
    train: &Dataset,
    cfg: &DbnTrainConfig,
    progress: Progress<'_>,
) -> Result<(Vec<Rbm>, Vec<Vec<crate::StageEpoch>>), TrainError> {
    let mut layers = Vec::new();
    let mut stats = Vec::new();
    let mut data = train.clone();
    for (i, &h) in cfg.hidden.iter().enumerate() {
        let cd = CdConfig {
            seed: cfg.cd.seed.wrapping_add(i as i64),
            ..cfg.cd.clone()
        };
        let (rbm, s) = train_rbm(&format!("rbm{}", i + 1), &data, h, &cd, progress)?;
        if i + 1 < cfg.hidden.len() {
            data = rbm.hidden_probs(&data)?;
        }
        layers.push(rbm);
        stats.push(s);
    }
    Ok((layers, stats))
}

/// Pretrains a deep belief network on `train` ([`pretrain_dbn`]), fine-tunes it as a
/// classifier (`sinter_models::dbn` starting from the RBMs' weights) and scores it on `test`.
/// Calls `progress` after every epoch of every stage.
pub fn train_dbn(
    train: &Dataset,
    test: &Dataset,
    cfg: &DbnTrainConfig,
    progress: Progress<'_>,
) -> Result<StackReport, TrainError> {
    if cfg.hidden.is_empty() {
        return Err(TrainError::Config(
            "a deep belief network needs at least one RBM".into(),
        ));
    }
    let (layers, pretrain) = pretrain_dbn(train, cfg, progress)?;
    let init: HashMap<_, _> = layers.into_iter().flat_map(|l| l.params).collect();
    let net = |batch| DbnConfig {
        batch,
        inputs: train.sample_len(),
        hidden: cfg.hidden.clone(),
        classes: train.classes,
    };
    let build = |batch| dbn(&net(batch));
    let report = fine_tune(&build, &init, train, test, &cfg.fine_tune, progress)?;
    Ok(StackReport { pretrain, ..report })
}
