//! The model zoo: classic networks built as verified [`Graph`]s.
//!
//! Each family has a config struct with a `small()` preset (a few channels, small inputs:
//! what the tests run) and a `full()` preset (the published sizes), and a builder from the
//! config to a verified graph. The graphs follow the convention `sinter train` reads: the data
//! input `x`, integer `labels: i64[B]` for classifiers, the scalar output `loss`, and for
//! classifiers the `[B, classes]` output `logits`. Trainable weights are `param`s named after
//! their layer (`conv1.w`, `conv1.b`, `layer1.0.bn1.gamma`). Batch norm follows the training
//! graph's convention (see [`Mode`]). [`zoo`] lists every model for the command line.
//!
//! ```
//! use sinter_models::{LeNetConfig, Preset, build, lenet, param_count};
//! let g = lenet(&LeNetConfig::full()).unwrap();
//! assert_eq!(param_count(&g), 61_706);
//! assert_eq!(g.ty(g.find("logits").unwrap()).to_string(), "f32[32,10]");
//! let small = build("resnet18", Preset::Small).unwrap();
//! assert!(small.find("layer1.0.bn1.gamma").is_some());
//! ```

mod classic;
mod cnn;
mod dcgan;
mod fit;
mod inception;
mod mlp;
mod net;
mod rbm;
mod resnet;
mod rnn;
mod zoo;

pub use classic::{
    Art1Config, HopfieldConfig, PerceptronConfig, SomConfig, art1, art1_choice, best_match,
    energy_of, hopfield, perceptron, sign_keeping, som, squared_distances,
};
pub use cnn::{AlexNetConfig, LeNetConfig, VggConfig, alexnet, lenet, vgg};
pub use dcgan::{DcganConfig, dcgan_discriminator, dcgan_generator, dcgan_generator_step};
pub use fit::{Fit, build_fit};
pub use inception::{GoogLeNetConfig, InceptionSpec, googlenet, googlenet_stages};
pub use mlp::{AutoencoderConfig, MlpConfig, autoencoder, mlp};
pub use rbm::{DbnConfig, RbmConfig, dbn, rbm};
pub use resnet::{Block, ResNetConfig, resnet};
pub use rnn::{Cell, RnnConfig, rnn};
pub use zoo::{Preset, ZooEntry, build, param_count, running_stats, zoo};

use sinter_ir::{Graph, IrError};

/// How batch norm appears in a graph.
///
/// [`Mode::Train`] uses `batch_norm_train` (batch statistics), whose first result is named
/// after the layer, say `bn1`; `sinter_autodiff::training_graph` then keeps the running
/// statistics as the state inputs `bn1.running_mean` and `bn1.running_var`.
/// [`Mode::Inference`] uses `batch_norm` reading the data inputs `bn1.running_mean` and
/// `bn1.running_var`: the graph `sinter_autodiff::inference_graph` makes of the training form,
/// so the statistics a training run saves feed it by name. [`running_stats`] gives their
/// initial values (mean 0, variance 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Mode {
    /// Batch statistics (`batch_norm_train`).
    #[default]
    Train,
    /// Running statistics as data inputs (`batch_norm`).
    Inference,
}

/// The pooling of a CNN builder's pooling layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Pooling {
    /// Max pooling.
    #[default]
    Max,
    /// Stochastic pooling (Zeiler and Fergus, 2013) over non-overlapping windows: in
    /// [`Mode::Train`] the op `stochastic_pool2d` with this `seed`, its counter the data input
    /// `rng.step` ([`sinter_ir::rng::STEP_INPUT`], carried by `training_graph` so each step
    /// draws anew); in [`Mode::Inference`] the probability-weighted average, exactly as
    /// `sinter_autodiff::inference_graph` rewrites the training form.
    Stochastic {
        /// The draws' seed.
        seed: i64,
    },
}

/// Why a model could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The graph is ill-typed (a config whose sizes do not fit the architecture).
    #[error(transparent)]
    Ir(IrError),
    /// The config is invalid.
    #[error("{0}")]
    Config(String),
    /// No zoo model has this name.
    #[error("no model `{0}` in the zoo (see `sinter zoo`)")]
    Unknown(String),
}

/// A classifier head: `linear` to `classes` called `logits`, then softmax cross-entropy
/// against `labels` called `loss`. Returns the graph with outputs `[loss, logits]`.
fn classify(
    mut n: net::Net,
    features: sinter_ir::Value,
    labels: sinter_ir::Value,
    classes: usize,
) -> Result<Graph, BuildError> {
    let logits = n.linear("logits", features, classes)?;
    let loss = n.softmax_cross_entropy(logits, labels)?;
    n.finish(&[loss, logits])
}

/// `base * width`, rounded, at least 1: a channel count scaled by a width multiplier.
fn scale(base: usize, width: f32) -> usize {
    ((base as f32 * width).round() as usize).max(1)
}
