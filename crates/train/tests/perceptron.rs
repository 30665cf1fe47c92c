//! The perceptron rule learns the linearly separable gates exactly; on XOR it keeps making
//! mistakes (no line separates `{01, 10}` from `{00, 11}`, so the convergence theorem does
//! not apply and the weights cycle); a two-layer network trained by backpropagation solves
//! XOR.

use sinter_train::perceptron::*;

fn learn(gate: Gate) -> (Perceptron, Vec<f32>, Vec<f32>) {
    let (n, x, t) = gate.table();
    let p = train_perceptron(n, &x, &t, &PerceptronTrainConfig::default(), &mut |_, _| {}).unwrap();
    let o = p.predict(&x).unwrap();
    (p, o, t)
}

#[test]
fn learns_and_or_not_exactly() {
    for gate in [Gate::And, Gate::Or, Gate::Not] {
        let (p, o, t) = learn(gate);
        assert!(p.converged, "{gate:?}: mistakes per epoch {:?}", p.errors);
        assert_eq!(o, t, "{gate:?}");
        eprintln!("{gate:?}: mistakes per epoch {:?}", p.errors);
    }
}

/// XOR is not linearly separable: `b <= 0`, `w1 + b > 0`, `w2 + b > 0` and `w1 + w2 + b <= 0`
/// sum to `0 < 0`. So every epoch of the rule makes at least one mistake, however long it
/// runs, and the trained unit gets at most three of the four rows right.
#[test]
fn fails_to_separate_xor() {
    let (n, x, t) = Gate::Xor.table();
    let cfg = PerceptronTrainConfig {
        epochs: 100,
        ..PerceptronTrainConfig::default()
    };
    let p = train_perceptron(n, &x, &t, &cfg, &mut |_, _| {}).unwrap();
    assert!(!p.converged);
    assert_eq!(p.errors.len(), 100);
    assert!(p.errors.iter().all(|&e| e >= 1), "{:?}", p.errors);
    let o = p.predict(&x).unwrap();
    let right = o.iter().zip(&t).filter(|(a, b)| a == b).count();
    assert!(right <= 3, "{o:?}");
    eprintln!("XOR: mistakes per epoch (first 8) {:?}", &p.errors[..8]);
}

#[test]
fn a_two_layer_network_solves_xor() {
    let r = train_xor_mlp(&XorConfig::default()).unwrap();
    assert_eq!(r.predictions, r.targets, "losses ... {:?}", r.losses.last());
    let last = *r.losses.last().unwrap();
    assert!(last < 0.1 * r.losses[0], "{} -> {last}", r.losses[0]);
    eprintln!("XOR MLP: loss {} -> {last}", r.losses[0]);
}
