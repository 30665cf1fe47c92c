//! Stochastic pooling compiled by the JIT draws exactly what the reference interpreter draws
//! (the sampling is counter-based; `log`, `argmax` and `one_hot` are exact), in training and
//! inference form, on a LeNet-sized activation.

use sinter_ir::{Builder, Tensor, TensorType};
use sinter_runtime::{CompileOptions, Compiled};
use std::collections::HashMap;

#[test]
fn jit_draws_what_the_interpreter_draws() {
    let mut b = Builder::new("pool");
    let x = b.input("x", TensorType::f32(&[4, 6, 28, 28])).unwrap();
    let ctr = b.input("ctr", TensorType::i64(&[])).unwrap();
    let r = b.relu(x).unwrap();
    let train = b.stochastic_pool2d(r, 2, Some((11, Some(ctr)))).unwrap();
    let inf = b.stochastic_pool2d(r, 2, None).unwrap();
    let g = b.finish(&[train, inf]).unwrap();
    let n = 4 * 6 * 28 * 28;
    let xs: Vec<f32> = (0..n)
        .map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0)
        .collect();
    for checked in [false, true] {
        let opts = if checked {
            CompileOptions::checked()
        } else {
            CompileOptions::default()
        };
        let c = Compiled::new(&g, opts).unwrap();
        for step in [0i64, 1, 99] {
            let feeds = HashMap::from([
                (
                    "x".to_string(),
                    Tensor::from_f32(&[4, 6, 28, 28], xs.clone()),
                ),
                ("ctr".to_string(), Tensor::from_i64(&[], vec![step])),
            ]);
            let want = sinter_interp::run(&g, &feeds).unwrap();
            let got = c.run(&feeds).unwrap();
            for ((name, w), (_, o)) in want.iter().zip(&got) {
                let (w, o) = (w.as_f32().unwrap(), o.as_f32().unwrap());
                // The drawn values are copies; the weighted average divides two sums summed in
                // the same order.
                let bad = w
                    .iter()
                    .zip(o)
                    .filter(|(a, b)| a.to_bits() != b.to_bits())
                    .count();
                assert_eq!(bad, 0, "%{name} (step {step}, checked {checked})");
            }
        }
    }
}

/// A zoo LeNet-5 with stochastic pooling: the training step carries the counter `rng.step`
/// (0, 1, 2, ...), so each step draws anew; the JIT step equals the interpreter's (which
/// evaluates the same expansion); the inference form has neither the op nor the counter.
#[test]
fn lenet_with_stochastic_pooling_carries_its_counter() {
    use sinter_autodiff::{
        Init, Interpret, Optimizer, RNG_STEP, Schedule, TrainConfig, Trainer, inference_graph,
        init_params, training_graph,
    };
    use sinter_models::{LeNetConfig, Pooling, lenet};
    use sinter_runtime::Jit;
    let cfg = LeNetConfig {
        pool: Pooling::Stochastic { seed: 1 },
        batch: 4,
        ..LeNetConfig::small()
    };
    let g = lenet(&cfg).unwrap();
    let loss = g.find("loss").unwrap();
    let tg = training_graph(&g, loss, &TrainConfig::new(Optimizer::adam())).unwrap();
    assert!(
        tg.state
            .iter()
            .any(|(n, t)| n == RNG_STEP && t.as_i64() == Some(&[0][..]))
    );
    assert!(!tg.data.iter().any(|n| n == RNG_STEP), "{:?}", tg.data);
    let inf = inference_graph(&g).unwrap();
    assert!(inf.find(RNG_STEP).is_none());
    let params = init_params(&g, Init::HeUniform, 5);
    let schedule = Schedule::Constant(1e-3);
    let mut jit = Trainer::new(
        Jit::new(Default::default()),
        tg.clone(),
        params.clone(),
        schedule.clone(),
    )
    .unwrap();
    let mut int = Trainer::new(Interpret(sinter_interp::run), tg, params, schedule).unwrap();
    let xs: Vec<f32> = (0..4 * 16 * 16).map(|i| (i % 13) as f32 / 13.0).collect();
    let batch = HashMap::from([
        ("x".to_string(), Tensor::from_f32(&[4, 1, 16, 16], xs)),
        (
            "labels".to_string(),
            Tensor::from_i64(&[4], vec![0, 3, 7, 9]),
        ),
    ]);
    for step in 1..=3i64 {
        let (a, b) = (jit.step(&batch).unwrap(), int.step(&batch).unwrap());
        assert!(
            (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
            "step {step}: {a} vs {b}"
        );
        for s in [jit.state(), int.state()] {
            assert_eq!(s[RNG_STEP].as_i64(), Some(&[step][..]));
        }
    }
}
