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
