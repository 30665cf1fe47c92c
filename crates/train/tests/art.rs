//! ART-1 on binarised digits: the number of categories grows with the vigilance.

use sinter_data::digits_split;
use sinter_train::art::*;

#[test]
fn categories_grow_with_vigilance() {
    let (train, _) = digits_split().unwrap();
    let n = 300;
    let bits = binary_inputs(&train, 0.5);
    let bits = &bits[..n * 64];
    let mut counts = Vec::new();
    for rho in [0.3, 0.5, 0.7, 0.9] {
        let cfg = ArtConfig {
            vigilance: rho,
            categories: n,
            ..ArtConfig::default()
        };
        let (art, stats) = train_art1(bits, 64, &cfg, &mut |_| {}).unwrap();
        eprintln!(
            "rho {rho}: {} categories after {} passes ({:?})",
            art.categories,
            stats.len(),
            stats.iter().map(|s| s.changed).collect::<Vec<_>>()
        );
        assert!(
            art.assignment
                .iter()
                .all(|&c| (0..art.categories as i64).contains(&c))
        );
        counts.push(art.categories);
    }
    for w in counts.windows(2) {
        assert!(w[1] > w[0], "{counts:?}");
    }
}

#[test]
fn running_out_of_nodes_is_an_error() {
    let (train, _) = digits_split().unwrap();
    let bits = binary_inputs(&train, 0.5);
    let cfg = ArtConfig {
        vigilance: 0.95,
        categories: 4,
        ..ArtConfig::default()
    };
    let e = train_art1(&bits[..64 * 50], 64, &cfg, &mut |_| {}).unwrap_err();
    assert!(e.to_string().contains("ran out"), "{e}");
}
