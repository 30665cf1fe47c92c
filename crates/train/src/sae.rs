//! Stacked autoencoders: autoencoders pretrained greedily layer by layer, then fine-tuned as
//! a classifier.
//!
//! Bengio et al. (2007) replace the RBMs of a deep belief net with autoencoders: layer `i` is
//! a one-hidden-layer autoencoder (`sigmoid` encoder `enc<i>`, `sigmoid` decoder `dec<i>`)
//! trained to reconstruct its input under the mean squared error, its input being the codes
//! of the layer below. Unlike contrastive divergence this is ordinary gradient descent on a
//! loss, so each layer is `sinter_models::autoencoder` trained by autodiff's training graph
//! with Adam on the JIT. The decoders are then dropped and the encoders, stacked, start the
//! classifier `sinter_models::autoencoder` builds with `classes` set, which is fine-tuned by
//! backpropagation.
//!
//! The codes passed up are the encoder's sigmoid outputs, the values the stacked encoder
//! computes at that layer, so each layer is pretrained on exactly what it will see.

use crate::util::{
    FineTuneConfig, Params, Progress, StackReport, StageEpoch, TrainError, check_batch,
    epoch_batches, fine_tune, flat_batch, up_pass,
};
use sinter_autodiff::{
    Init, Optimizer, Schedule, TrainConfig, Trainer, init_params, training_graph,
};
use sinter_data::Dataset;
use sinter_models::{AutoencoderConfig, autoencoder};
use sinter_runtime::Jit;
use std::collections::HashMap;
use std::time::Instant;

/// How each autoencoder layer is pretrained.
#[derive(Clone, Debug, PartialEq)]
pub struct AeConfig {
    /// Passes over the data.
    pub epochs: usize,
    /// Batch size.
    pub batch: usize,
    /// Adam's learning rate (constant).
    pub lr: f32,
    /// Seed of the initialisation (Xavier uniform) and the batch order.
    pub seed: i64,
}

impl Default for AeConfig {
    /// For the 8x8 digits: 5 epochs of Adam at 1e-2, batch 20.
    fn default() -> AeConfig {
        AeConfig {
            epochs: 5,
            batch: 20,
            lr: 1e-2,
            seed: 0,
        }
    }
}

/// How to pretrain and fine-tune a stacked autoencoder.
#[derive(Clone, Debug, PartialEq)]
pub struct SaeTrainConfig {
    /// Code widths, lowest first (layers `enc1`, `enc2`, ...).
    pub hidden: Vec<usize>,
    /// Pretraining of every layer (layer `i`, from 0, uses seed `pretrain.seed + i`).
    pub pretrain: AeConfig,
    /// The supervised fine-tuning.
    pub fine_tune: FineTuneConfig,
}

impl Default for SaeTrainConfig {
    /// Two layers of 64 and 32 units for the 8x8 digits.
    fn default() -> SaeTrainConfig {
        SaeTrainConfig {
            hidden: vec![64, 32],
            pretrain: AeConfig::default(),
            fine_tune: FineTuneConfig::default(),
        }
    }
}

/// Trains layer `layer` (from 1) of a stacked autoencoder: an autoencoder with `hidden` units
/// reconstructing `data` (samples flattened). Returns its parameters, named `enc<layer>.*`
/// and `dec<layer>.*`, and its epochs (the loss being the mean squared reconstruction error).
pub fn train_autoencoder_layer(
    layer: usize,
    data: &Dataset,
    hidden: usize,
    cfg: &AeConfig,
    progress: Progress<'_>,
) -> Result<(Params, Vec<StageEpoch>), TrainError> {
    let stage = format!("enc{layer}");
    check_batch(data, cfg.batch, &stage)?;
    let forward = autoencoder(&AutoencoderConfig {
        batch: cfg.batch,
        inputs: data.sample_len(),
        hidden: vec![hidden],
        classes: None,
    })?;
    let loss = forward
        .find("loss")
        .ok_or_else(|| TrainError::Config("the autoencoder has no `%loss`".into()))?;
    let tg = training_graph(&forward, loss, &TrainConfig::new(Optimizer::adam()))?;
    let params = init_params(&forward, Init::XavierUniform, cfg.seed);
    let mut tr = Trainer::new(Jit::default(), tg, params, Schedule::Constant(cfg.lr))?;
    let mut stats = Vec::new();
    for epoch in 0..cfg.epochs {
        let t0 = Instant::now();
        let batches = epoch_batches(data.len(), cfg.batch, cfg.seed, epoch);
        let mut sum = 0.0;
        for idx in &batches {
            let feeds = HashMap::from([("x".to_string(), flat_batch(data, idx).0)]);
            sum += tr.step(&feeds)?;
        }
        let s = StageEpoch {
            stage: stage.clone(),
            epoch,
            loss: sum / batches.len() as f32,
            seconds: t0.elapsed().as_secs_f64(),
        };
        progress(&s);
        stats.push(s);
    }
    // A one-layer autoencoder names its layers `enc1` and `dec1`.
    let params = tr
        .model()
        .into_iter()
        .map(|(name, t)| {
            let name = match name.split_once('.') {
                Some(("enc1", rest)) => format!("enc{layer}.{rest}"),
                Some(("dec1", rest)) => format!("dec{layer}.{rest}"),
                _ => name,
            };
            (name, t)
        })
        .collect();
    Ok((params, stats))
}

/// Pretrains the layers of `cfg` on `train`, greedily; see the [module docs](self). Returns
/// every layer's parameters (`enc<i>.*`, `dec<i>.*`) and each layer's epochs.
pub fn pretrain_sae(
    train: &Dataset,
    cfg: &SaeTrainConfig,
    progress: Progress<'_>,
) -> Result<(Params, Vec<Vec<StageEpoch>>), TrainError> {
    let mut params = HashMap::new();
    let mut stats = Vec::new();
    let mut data = train.clone();
    for (i, &h) in cfg.hidden.iter().enumerate() {
        let ae = AeConfig {
            seed: cfg.pretrain.seed.wrapping_add(i as i64),
            ..cfg.pretrain.clone()
        };
        let (p, s) = train_autoencoder_layer(i + 1, &data, h, &ae, progress)?;
        if i + 1 < cfg.hidden.len() {
            data = up_pass(&data, &format!("enc{}", i + 1), &p)?;
        }
        params.extend(p);
        stats.push(s);
    }
    Ok((params, stats))
}

/// Pretrains a stacked autoencoder on `train` ([`pretrain_sae`]), fine-tunes its encoder with
/// a softmax classifier on top (`sinter_models::autoencoder` with `classes`, starting from
/// the pretrained encoders) and scores it on `test`. Calls `progress` after every epoch of
/// every stage.
pub fn train_sae(
    train: &Dataset,
    test: &Dataset,
    cfg: &SaeTrainConfig,
    progress: Progress<'_>,
) -> Result<StackReport, TrainError> {
    if cfg.hidden.is_empty() {
        return Err(TrainError::Config(
            "a stacked autoencoder needs at least one layer".into(),
        ));
    }
    let (init, pretrain) = pretrain_sae(train, cfg, progress)?;
    let net = |batch| AutoencoderConfig {
        batch,
        inputs: train.sample_len(),
        hidden: cfg.hidden.clone(),
        classes: Some(train.classes),
    };
    let build = |batch| autoencoder(&net(batch));
    let report = fine_tune(&build, &init, train, test, &cfg.fine_tune, progress)?;
    Ok(StackReport { pretrain, ..report })
}
