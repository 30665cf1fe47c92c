//! The zoo's RNN and LSTM learn the digits read row by row (8 steps of 8 pixels), trained
//! through the compiled path, to the bar of 90% held-out accuracy on the fixed split.

use sinter_models::Cell;
use sinter_train::{EpochStats, SequenceConfig, train_sequence};
use std::time::Instant;

/// Trains `cell` with its digits preset and checks the bar, the loss trend and the callback.
fn learns_digits(cell: Cell) {
    let (train, test) = sinter_data::digits_split().unwrap();
    let cfg = SequenceConfig::digits(cell);
    let t0 = Instant::now();
    let mut seen: Vec<EpochStats> = Vec::new();
    let report = train_sequence(&cfg, &train, &test, |s| {
        eprintln!(
            "{cell:?} epoch {}: loss {:.4}, held-out accuracy {:.3}",
            s.epoch, s.loss, s.accuracy
        );
        seen.push(*s);
    })
    .unwrap();
    eprintln!("{cell:?}: {:.1} s", t0.elapsed().as_secs_f64());
    assert_eq!(seen, report.epochs, "the callback sees every epoch");
    assert_eq!(report.epochs.len(), cfg.epochs);
    let losses: Vec<f32> = report.epochs.iter().map(|e| e.loss).collect();
    assert!(losses.iter().all(|l| l.is_finite()), "{losses:?}");
    // Chance is ln 10 = 2.30; a learned classifier ends far below its first epoch.
    assert!(
        losses[losses.len() - 1] < 0.5 * losses[0],
        "the training loss did not halve: {losses:?}"
    );
    assert!(
        report.accuracy() >= 0.90,
        "{cell:?}: held-out accuracy {:.3} < 0.90 ({:?})",
        report.accuracy(),
        report.epochs
    );
}

#[test]
fn lstm_reaches_90_percent_on_held_out_digits() {
    learns_digits(Cell::Lstm);
}

#[test]
fn rnn_reaches_90_percent_on_held_out_digits() {
    learns_digits(Cell::Rnn);
}

#[test]
fn data_that_does_not_fit_is_an_error() {
    let (train, test) = sinter_data::digits_split().unwrap();
    let mut flat = test.clone();
    flat.sample_shape = vec![64];
    let cfg = SequenceConfig::digits(Cell::Rnn);
    let e = train_sequence(&cfg, &train, &flat, |_| {}).unwrap_err();
    assert!(e.to_string().contains("[64]"), "{e}");
    let tiny = train.subset(&[0, 1]);
    let e = train_sequence(&cfg, &tiny, &test, |_| {}).unwrap_err();
    assert!(
        e.to_string().contains("2 training samples, batch 32"),
        "{e}"
    );
}

#[test]
fn held_out_sets_larger_than_an_evaluation_batch_are_scored_in_pieces() {
    // The held-out set twice over (720 samples: a batch of 512 and one of 208) must score
    // exactly as the set once (one batch of 360): same parameters, same samples.
    let (train, test) = sinter_data::digits_split().unwrap();
    let twice = sinter_data::Dataset {
        x: [test.x.clone(), test.x.clone()].concat(),
        labels: [test.labels.clone(), test.labels.clone()].concat(),
        ..test.clone()
    };
    assert!(twice.len() > sinter_train::sequence::EVAL_BATCH);
    let mut cfg = SequenceConfig::digits(Cell::Rnn);
    cfg.epochs = 1;
    let once = train_sequence(&cfg, &train, &test, |_| {}).unwrap();
    let again = train_sequence(&cfg, &train, &twice, |_| {}).unwrap();
    assert_eq!(once.model, again.model);
    assert_eq!(once.accuracy(), again.accuracy());
    assert!(once.accuracy() > 0.5, "{}", once.accuracy());
}
