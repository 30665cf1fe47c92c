//! Stacked autoencoders through the compiled path: on the digits, each layer's per-epoch mean
//! reconstruction error falls monotonically during greedy pretraining, the pretrained
//! encoders feed the zoo's stacked autoencoder by name, and the fine-tuned classifier gets at
//! least 90% of the held-out digits right.

mod common;

use sinter_data::digits_split;
use sinter_runtime::{CompileOptions, Compiled};
use sinter_train::util::{flat_batch, up_pass};
use sinter_train::*;
use std::collections::HashMap;

#[test]
fn sae_pretrains_monotonically_and_classifies_digits() {
    let (train, test) = digits_split().unwrap();
    let cfg = SaeTrainConfig::default();
    let mut seen = Vec::new();
    let t0 = std::time::Instant::now();
    let report = train_sae(&train, &test, &cfg, &mut |s| seen.push(s.clone())).unwrap();
    eprintln!("SAE in {:.2} s", t0.elapsed().as_secs_f64());
    common::check_stack_report(
        &report,
        &seen,
        "enc",
        (cfg.hidden.len(), cfg.pretrain.epochs, cfg.fine_tune.epochs),
    );
    assert!(report.model.contains_key("enc2.w") && !report.model.contains_key("dec1.w"));
}

/// Two pretrained layers feed the zoo's two-layer reconstruction graph by name: its
/// held-out error is far below that of a freshly initialised stack, and its code equals the
/// layers' up-passes chained.
#[test]
fn pretrained_layers_feed_the_zoo_autoencoder() {
    let (train, test) = digits_split().unwrap();
    let cfg = SaeTrainConfig {
        hidden: vec![32, 16],
        pretrain: AeConfig {
            epochs: 2,
            ..AeConfig::default()
        },
        ..SaeTrainConfig::default()
    };
    let (params, stats) = pretrain_sae(&train, &cfg, &mut |_| {}).unwrap();
    assert_eq!(stats.len(), 2);
    let mut names: Vec<&String> = params.keys().collect();
    names.sort();
    assert_eq!(
        names,
        [
            "dec1.b", "dec1.w", "dec2.b", "dec2.w", "enc1.b", "enc1.w", "enc2.b", "enc2.w"
        ]
    );
    let g = sinter_models::autoencoder(&sinter_models::AutoencoderConfig {
        batch: test.len(),
        inputs: 64,
        hidden: cfg.hidden.clone(),
        classes: None,
    })
    .unwrap();
    let c = Compiled::new(&g, CompileOptions::default()).unwrap();
    let all: Vec<usize> = (0..test.len()).collect();
    let x = flat_batch(&test, &all).0;
    let fresh = sinter_autodiff::init_params(&g, sinter_autodiff::Init::XavierUniform, 0);
    let mut errs = Vec::new();
    for p in [&fresh, &params] {
        let mut feeds: HashMap<_, _> = p.clone();
        feeds.insert("x".into(), x.clone());
        let outs = c.run(&feeds).unwrap();
        errs.push(outs[0].1.as_f32().unwrap()[0]);
    }
    eprintln!("held-out reconstruction error: fresh, pretrained {errs:?}");
    assert!(errs[1] < 0.5 * errs[0], "{errs:?}");
    // The code the next layer would see: enc2 over enc1's codes.
    let code = up_pass(&up_pass(&test, "enc1", &params).unwrap(), "enc2", &params).unwrap();
    assert_eq!(code.sample_shape, [16]);
    assert!(code.x.iter().all(|v| (0.0..=1.0).contains(v)));
}
