//! Data for training.
