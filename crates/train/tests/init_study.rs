//! The initialisation study on the digits: He keeps a 20-layer ReLU network's activation
//! variance within a factor of 2 across the layers; small uniform weights make it vanish.

use sinter_data::digits_split;
use sinter_train::init_study::*;

#[test]
fn he_keeps_relu_variance_and_small_uniform_vanishes() {
    let (train, _) = digits_split().unwrap();
    let study = init_study(&train, &InitStudyConfig::default()).unwrap();
    eprintln!("{}", study.render());
    let row = |a, i| {
        study
            .rows
            .iter()
            .find(|r| r.activation == a && r.init == i)
            .unwrap()
    };
    let he = row(Activation::Relu, WeightInit::He);
    assert_eq!(he.std.len(), 20);
    eprintln!(
        "He/ReLU variance max/min over layers: {}",
        he.variance_spread()
    );
    assert!(he.variance_spread() <= 2.0, "{:?}", he.std);
    let small = row(Activation::Relu, WeightInit::SmallUniform(0.01));
    eprintln!(
        "U(0.01)/ReLU variance last/first: {:e}",
        small.variance_ratio()
    );
    assert!(small.variance_ratio() < 1e-20, "{:?}", small.std);
    // Xavier halves the ReLU variance per layer: it shrinks, though far less.
    let xavier = row(Activation::Relu, WeightInit::Xavier);
    assert!(xavier.variance_ratio() < 1e-3, "{:?}", xavier.std);
    // With tanh, Xavier keeps the signal alive over 20 layers (within two orders).
    let tanh = row(Activation::Tanh, WeightInit::Xavier);
    assert!(tanh.variance_ratio() > 1e-2, "{:?}", tanh.std);
    assert!(study.render().lines().count() == 7);
}
