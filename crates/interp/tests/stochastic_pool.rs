//! Stochastic pooling (`Builder::stochastic_pool2d`, a composition of primitives) on the
//! reference interpreter: the statistics of its sampling, its inference form, and where its
//! gradient goes.

use sinter_ir::{Builder, Graph, Tensor, TensorType};
use std::collections::HashMap;

fn pool_graph() -> Graph {
    let mut b = Builder::new("g");
    let x = b.input("x", TensorType::f32(&[1, 2, 2, 2])).unwrap();
    let ctr = b.input("ctr", TensorType::i64(&[])).unwrap();
    let train = b.stochastic_pool2d(x, 2, Some((7, Some(ctr)))).unwrap();
    let inf = b.stochastic_pool2d(x, 2, None).unwrap();
    assert_eq!(b.ty(train), &TensorType::f32(&[1, 2, 1, 1]));
    b.finish(&[train, inf]).unwrap()
}

/// Channel 0's window is [1, 2, 3, 4] (probabilities 0.1 .. 0.4), channel 1's all zero. Over
/// 4,000 draws each value's frequency is within 4 binomial standard deviations of its
/// probability, nothing outside the window is drawn, the zero window gives 0, and the
/// inference form gives `(1 + 4 + 9 + 16) / 10 = 3`.
#[test]
fn samples_in_proportion_to_the_activations() {
    let g = pool_graph();
    let xs = Tensor::from_f32(&[1, 2, 2, 2], vec![1.0, 2.0, 3.0, 4.0, 0.0, 0.0, 0.0, 0.0]);
    let draws = 4000;
    let mut counts = [0usize; 5];
    for i in 0..draws {
        let feeds = HashMap::from([
            ("x".to_string(), xs.clone()),
            ("ctr".to_string(), Tensor::from_i64(&[], vec![i])),
        ]);
        let outs = sinter_interp::run(&g, &feeds).unwrap();
        let t = outs[0].1.as_f32().unwrap();
        assert_eq!(t[1], 0.0, "an all-zero window gives 0");
        assert_eq!(t[0].fract(), 0.0, "{t:?}");
        counts[t[0] as usize] += 1;
        let inf = outs[1].1.as_f32().unwrap();
        assert!((inf[0] - 3.0).abs() < 1e-6 && inf[1] == 0.0, "{inf:?}");
    }
    assert_eq!(counts[0], 0, "only window elements are drawn");
    for (v, &got) in counts.iter().enumerate().skip(1) {
        let p = v as f64 / 10.0;
        let mean = p * draws as f64;
        let sd = (draws as f64 * p * (1.0 - p)).sqrt();
        assert!(
            (got as f64 - mean).abs() <= 4.0 * sd,
            "value {v}: {got} draws, expected {mean} +- {sd}"
        );
    }
}

/// The gradient reaches only the element drawn: of `sum(pool(x) * 3)` it is 3 there and 0
/// elsewhere in the window.
#[test]
fn the_gradient_goes_to_the_drawn_element() {
    let mut b = Builder::new("g");
    let x = b.param("x", TensorType::f32(&[1, 1, 2, 2])).unwrap();
    let y = b.stochastic_pool2d(x, 2, Some((3, None))).unwrap();
    let three = b.scalar(3.0).unwrap();
    let s = b.mul(y, three).unwrap();
    let loss = b.reduce_sum(s, &[0, 1, 2, 3], false).unwrap();
    let g = b.finish(&[loss, y]).unwrap();
    let gr = sinter_autodiff::grad(&g, loss, &[x]).unwrap();
    let xs = Tensor::from_f32(&[1, 1, 2, 2], vec![0.5, 1.5, 2.5, 3.5]);
    let feeds = HashMap::from([("x".to_string(), xs.clone())]);
    let outs = sinter_interp::run(&gr.graph, &feeds).unwrap();
    let find = |v: sinter_ir::Value| {
        let n = gr.graph.value_name(v);
        outs.iter().find(|(k, _)| k == n).unwrap().1.clone()
    };
    let picked = find(y).as_f32().unwrap()[0];
    let dx = find(gr.grads[0]);
    let dx = dx.as_f32().unwrap();
    for (v, d) in xs.as_f32().unwrap().iter().zip(dx) {
        assert_eq!(
            *d,
            if *v == picked { 3.0 } else { 0.0 },
            "{dx:?} (drew {picked})"
        );
    }
}
