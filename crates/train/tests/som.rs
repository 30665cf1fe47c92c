//! A Kohonen map on the digits: the quantisation error falls over the epochs, and the map is
//! written as a PNG grid.

use sinter_data::digits_split;
use sinter_train::som::*;

#[test]
fn quantisation_error_falls_and_the_map_is_drawn() {
    let (train, _) = digits_split().unwrap();
    let cfg = SomTrainConfig::default();
    let (map, stats) = train_som(&train, &cfg, &mut |_| {}).unwrap();
    let qe: Vec<f32> = stats.iter().map(|s| s.qe).collect();
    let secs: f64 = stats.iter().map(|s| s.seconds).sum();
    eprintln!("quantisation error per epoch: {qe:?} ({secs:.2} s)");
    assert!(qe[qe.len() - 1] < qe[0], "{qe:?}");
    // Averaged over pairs of epochs, it falls monotonically.
    let pairs: Vec<f32> = qe
        .chunks(2)
        .map(|c| c.iter().sum::<f32>() / c.len() as f32)
        .collect();
    for w in pairs.windows(2) {
        assert!(w[1] < w[0], "{pairs:?}");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("som.png");
    map.write_png(&path, 8, 8, 4).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(&bytes[1..4], b"PNG");
}
