//! Compiled training end to end: an MLP trained by the JIT `Trainer` (the default engine of
//! `sinter::train`) on the embedded digits reaches at least 95% accuracy on the 360 held-out
//! images.

use sinter::train::{Engine, TrainOptions, train_digits};

/// 64 -> 64 (relu) -> 10, softmax cross-entropy, batch 32.
const MLP: &str = "graph @mlp {
  input %x: f32[32,64]
  input %labels: i64[32]
  param %w1: f32[64,64]
  param %b1: f32[64]
  param %w2: f32[64,10]
  param %b2: f32[10]
  %h = gemm(%x, %w1, %b1)
  %a = relu(%h)
  %logits = gemm(%a, %w2, %b2)
  %logp = log_softmax(%logits) {axis=-1}
  %onehot = one_hot(%labels) {depth=10}
  %picked = mul(%onehot, %logp)
  %per_row = reduce_sum(%picked) {axes=[1]}
  %mean = reduce_mean(%per_row) {axes=[]}
  %loss = neg(%mean)
  output %logits, %loss
}";

#[test]
fn jit_trained_mlp_reaches_95_percent_on_held_out_digits() {
    let g = sinter::ir::parse(MLP).unwrap();
    let opts = TrainOptions {
        epochs: 8,
        lr: 1e-2,
        optimizer: "adam".into(),
        progress: false,
        ..TrainOptions::default()
    };
    assert_eq!(opts.engine, Engine::Jit);
    let r = train_digits(&g, &opts).unwrap();
    assert_eq!(r.engine, Engine::Jit);
    assert_eq!(r.evaluated, 352, "11 whole batches of 32 held-out images");
    assert_eq!(r.steps, 8 * (1437 / 32));
    assert!(
        r.epoch_loss.last() < r.epoch_loss.first(),
        "{:?}",
        r.epoch_loss
    );
    assert!(r.accuracy() >= 0.95, "{}", r.render());
}
