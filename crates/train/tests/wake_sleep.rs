//! Up-down (wake-sleep) fine-tuning of a pretrained DBN on the digits: the reconstruction
//! error through the untied layers falls over the epochs; samples of the top RBM, generated
//! down to pixels, are written as a PNG grid.

use sinter_data::digits_split;
use sinter_train::dbn::{DbnTrainConfig, pretrain_dbn};
use sinter_train::grid::{GridLayout, write_grid};
use sinter_train::wake_sleep::*;

#[test]
fn reconstruction_error_falls_and_samples_are_drawn() {
    let (train, _) = digits_split().unwrap();
    let (layers, _) = pretrain_dbn(&train, &DbnTrainConfig::default(), &mut |_| {}).unwrap();
    let cfg = WakeSleepConfig::default();
    let (net, initial, stats) = train_wake_sleep(&train, &layers, &cfg, &mut |_| {}).unwrap();
    let recon: Vec<f32> = stats.iter().map(|s| s.recon).collect();
    let secs: f64 = stats.iter().map(|s| s.seconds).sum();
    eprintln!("reconstruction error: untied {initial}, per epoch {recon:?} ({secs:.2} s)");
    assert!(recon[recon.len() - 1] < recon[0], "{recon:?}");
    assert!(recon[recon.len() - 1] < initial, "{initial} -> {recon:?}");
    let samples = net.sample(16, 500, 5).unwrap();
    assert_eq!(samples.len(), 16 * 64);
    assert!(samples.iter().all(|p| (0.0..=1.0).contains(p)));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dbn-samples.png");
    let layout = GridLayout {
        scale: 4,
        ..GridLayout::new(8, 8, 4)
    };
    write_grid(&path, &samples, &layout).unwrap();
}
