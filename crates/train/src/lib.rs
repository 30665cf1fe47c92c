//! Training procedures.

pub mod dbn;
pub mod rbm;
pub mod sae;
pub mod util;

pub use dbn::{DbnTrainConfig, pretrain_dbn, train_dbn};
pub use rbm::{CdConfig, Rbm, cd_graph, train_rbm};
pub use sae::{AeConfig, SaeTrainConfig, pretrain_sae, train_autoencoder_layer, train_sae};
pub use util::{FineTuneConfig, StackReport, StageEpoch, TrainError};
