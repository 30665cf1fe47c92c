//! The demo's path through the public API: the embedded digits, enlarged to LeNet-5's 32x32
//! and augmented, batched on the worker thread.

use sinter_data::{Augment, Pipeline, PipelineConfig, digits_split, sample_key};

#[test]
fn digits_upsampled_for_lenet_in_seeded_batches() {
    let (train, _) = digits_split().unwrap();
    let train = std::sync::Arc::new(train);
    let config = PipelineConfig {
        seed: 3,
        augment: Augment {
            resize: Some([32, 32]),
            shift: 2,
            ..Augment::default()
        },
        ..PipelineConfig::new(64)
    };
    let p = Pipeline::new(train.clone(), config.clone()).unwrap();
    assert_eq!(p.sample_shape(), &[1, 32, 32]);
    assert_eq!(p.batches_per_epoch(), train.len().div_ceil(64));
    let mut seen = vec![0usize; train.len()];
    for batch in p.take(3) {
        let batch = batch.unwrap();
        assert_eq!(batch.x.shape(), &[64, 1, 32, 32]);
        let x = batch.x.as_f32().unwrap();
        for (k, &i) in batch.indices.iter().enumerate() {
            seen[i] += 1;
            let want =
                config
                    .augment
                    .apply(train.sample(i), &train.sample_shape, sample_key(3, 0, i));
            assert_eq!(&x[k * 1024..(k + 1) * 1024], &want[..]);
            assert_eq!(batch.labels.as_i64().unwrap()[k], train.labels[i]);
        }
    }
    assert_eq!(seen.iter().sum::<usize>(), 3 * 64);
    assert!(seen.iter().all(|&c| c <= 1), "no sample twice in one epoch");
}
