//! The optimised graph keeps its output names even when the optimiser proves an output equal
//! to a graph input (whose name is fixed) or to another output: callers (the ONNX importer's
//! tests, `sinter run --out`) look outputs up by name.

use sinter_ir::{Tensor, parse};
use std::collections::HashMap;

#[test]
fn outputs_equal_to_an_input_keep_their_names() {
    let g = parse(
        "graph @g {
  input %x: f32[2,3]
  %id: f32[2,3] = reshape(%x) {shape=[2, 3]}
  %dr: f32[2,3] = reshape(%x) {shape=[2, 3]}
  %r: f32[3,2] = reshape(%x) {shape=[3, 2]}
  output %id, %r, %dr, %x
}",
    )
    .unwrap();
    let (opt, _) = sinter_rewrite::optimize(&g, &sinter_rewrite::Options::default()).unwrap();
    opt.verify().unwrap();
    let names: Vec<&str> = opt.outputs().iter().map(|&v| opt.value_name(v)).collect();
    assert_eq!(names, ["id", "r", "dr", "x"]);
    // And the values are still right.
    let x = Tensor::from_f32(&[2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let inputs = HashMap::from([("x".to_string(), x)]);
    let want = sinter_interp::run(&g, &inputs).unwrap();
    let got = sinter_interp::run(&opt, &inputs).unwrap();
    assert_eq!(got, want);
}
