//! Training procedures.

pub mod art;
pub mod dbn;
pub mod gan;
pub mod grid;
pub mod hopfield;
pub mod init_study;
pub mod perceptron;
pub mod rbm;
pub mod sae;
pub mod sequence;
pub mod som;
pub mod step;
pub mod util;
pub mod wake_sleep;

pub use dbn::{DbnTrainConfig, pretrain_dbn, train_dbn};
pub use gan::{Gan, GanConfig, GanStep, train_gan};
pub use grid::{GridError, GridLayout, PixelRange, grid_pixels, write_grid};
pub use perceptron::{Gate, Perceptron, PerceptronTrainConfig, train_perceptron, train_xor_mlp};
pub use rbm::{CdConfig, Rbm, cd_graph, train_rbm};
pub use sae::{AeConfig, SaeTrainConfig, pretrain_sae, train_autoencoder_layer, train_sae};
pub use sequence::{EpochStats, SequenceConfig, SequenceReport, train_sequence};
pub use step::Stepper;
pub use util::{FineTuneConfig, StackReport, StageEpoch, TrainError};
