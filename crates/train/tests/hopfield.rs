//! Hopfield networks: stored digits are recalled from noisy versions; asynchronous recall
//! never raises the energy; with random patterns recall is good well below `0.14 N` and poor
//! well above it.

use sinter_data::digits_split;
use sinter_train::hopfield::*;

const N: usize = 64;

/// Binarised digits that differ enough to be stored together: the first training sample of
/// each of a few classes.
fn digit_patterns() -> Vec<f32> {
    let (train, _) = digits_split().unwrap();
    let bits = binarise(&train, 0.5);
    let mut out = Vec::new();
    for class in [0, 1, 7] {
        let i = train.labels.iter().position(|&l| l == class).unwrap();
        out.extend_from_slice(&bits[i * N..(i + 1) * N]);
    }
    out
}

#[test]
fn recalls_stored_digits_from_noise_and_energy_never_rises() {
    let pats = digit_patterns();
    let p = pats.len() / N;
    for a in 0..p {
        for b in 0..a {
            let m = overlap(&pats[a * N..(a + 1) * N], &pats[b * N..(b + 1) * N]);
            eprintln!("overlap {a}-{b}: {m}");
        }
    }
    let net = store(&pats, N).unwrap();
    // Every stored digit is a fixed point of synchronous recall.
    let same = net.recall_sync(&pats, 5).unwrap();
    assert!(same.converged);
    assert_eq!(same.states, pats);
    // Six of 64 pixels flipped (~10%).
    let noisy = corrupt(&pats, N, 6, 3);
    let r = net.recall_async(&noisy, 10, 1).unwrap();
    assert!(r.converged);
    for (k, (a, b)) in r.states.chunks(N).zip(pats.chunks(N)).enumerate() {
        assert_eq!(overlap(a, b), 1.0, "digit {k} not recalled");
    }
    for w in r.energies.windows(2) {
        for (e1, e0) in w[1].iter().zip(&w[0]) {
            assert!(
                *e1 <= e0 + 1e-4 * e0.abs().max(1.0),
                "energy rose {e0} -> {e1}"
            );
        }
    }
    let (first, last) = (&r.energies[0], r.energies.last().unwrap());
    eprintln!("energy {first:?} -> {last:?}");
    let s = net.recall_sync(&noisy, 10).unwrap();
    let ok = s
        .states
        .chunks(N)
        .zip(pats.chunks(N))
        .filter(|(a, b)| overlap(a, b) == 1.0);
    eprintln!("synchronous: {} of {p} recalled exactly", ok.count());
}

#[test]
fn capacity_is_about_0_14_n() {
    let units = 100;
    // 0.14 N = 14; the middle loads are only reported.
    let loads = [5, 8, 12, 14, 16, 20, 30, 40];
    let pts = capacity(units, &loads, 5, 11).unwrap();
    for p in &pts {
        eprintln!(
            "P = {:>2} (alpha {:.2}): mean overlap {:.3}, recalled {:.2}",
            p.patterns, p.load, p.overlap, p.recalled
        );
    }
    for p in &pts[..2] {
        assert!(p.overlap >= 0.95 && p.recalled >= 0.9, "{p:?}");
    }
    for p in &pts[6..] {
        assert!(p.overlap <= 0.85 && p.recalled <= 0.5, "{p:?}");
    }
}
