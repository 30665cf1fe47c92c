//! Checks shared by the layer-wise procedures' tests (DBN, stacked autoencoder).

use sinter_train::{StackReport, StageEpoch};

/// A layer-wise report's claims: `layers` pretrained layers named `<prefix>1`, `<prefix>2`, ...,
/// each with `pretrain_epochs` finite, positive reconstruction errors falling every epoch;
/// `fine_tune_epochs` fine-tuning epochs; every epoch of every stage given to the callback in
/// order (`seen`); and at least 90% held-out accuracy.
pub fn check_stack_report(
    report: &StackReport,
    seen: &[StageEpoch],
    prefix: &str,
    (layers, pretrain_epochs, fine_tune_epochs): (usize, usize, usize),
) {
    assert_eq!(report.pretrain.len(), layers);
    for (i, layer) in report.pretrain.iter().enumerate() {
        let errs: Vec<f32> = layer.iter().map(|s| s.loss).collect();
        eprintln!("{prefix}{}: reconstruction errors {errs:?}", i + 1);
        assert_eq!(errs.len(), pretrain_epochs);
        assert!(
            layer
                .iter()
                .all(|s| s.stage == format!("{prefix}{}", i + 1))
        );
        assert!(errs.iter().all(|e| e.is_finite() && *e > 0.0), "{errs:?}");
        for w in errs.windows(2) {
            assert!(w[1] < w[0], "{prefix}{}: {errs:?}", i + 1);
        }
    }
    let ce: Vec<f32> = report.fine_tune.iter().map(|s| s.loss).collect();
    eprintln!(
        "fine-tuning cross-entropy {ce:?}, accuracy {}",
        report.accuracy
    );
    assert_eq!(ce.len(), fine_tune_epochs);
    // Every epoch of every stage reached the callback, in order.
    let all: Vec<_> = report
        .pretrain
        .iter()
        .flatten()
        .chain(&report.fine_tune)
        .collect();
    assert_eq!(seen.iter().collect::<Vec<_>>(), all);
    assert!(
        report.accuracy >= 0.90,
        "held-out accuracy {}",
        report.accuracy
    );
}
