//! Whole-graph evaluation with [`sinter_interp::run`]: feeding inputs, multi-node graphs,
//! multi-output ops, dead code, and every [`InterpError`] variant's message.

mod common;

use common::*;
use sinter_interp::{InterpError, run};
use sinter_ir::{Graph, InputKind, Op, Tensor, TensorType, Value};
use std::collections::HashMap;

/// `r = relu(x @ w + b)`, `s = reduce_sum(r, axes=[1])`, with outputs `(r, s)`.
fn mlp() -> Graph {
    let mut g = Graph::new("mlp");
    let x = g
        .add_input("x", TensorType::f32(&[2, 3]), InputKind::Data)
        .unwrap();
    let w = g
        .add_input("w", TensorType::f32(&[3, 2]), InputKind::Param)
        .unwrap();
    let b = g.add_const("b", f(&[2], &[1.0, -100.0])).unwrap();
    let y = g.add_op(&["y"], Op::Matmul {}, &[x, w]).unwrap()[0];
    let z = g.add_op(&["z"], Op::Add {}, &[y, b]).unwrap()[0];
    let r = g.add_op(&["r"], Op::Relu {}, &[z]).unwrap()[0];
    let s = g
        .add_op(
            &["s"],
            Op::ReduceSum {
                axes: vec![1],
                keepdims: false,
            },
            &[r],
        )
        .unwrap()[0];
    g.set_outputs(&[r, s]).unwrap();
    g
}

fn feeds(pairs: &[(&str, Tensor)]) -> HashMap<String, Tensor> {
    pairs
        .iter()
        .map(|(n, t)| (n.to_string(), t.clone()))
        .collect()
}

fn mlp_feeds() -> HashMap<String, Tensor> {
    feeds(&[
        ("x", f(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])),
        ("w", f(&[3, 2], &[7.0, 8.0, 9.0, 10.0, 11.0, 12.0])),
    ])
}

#[test]
fn runs_a_small_graph() {
    let out = run(&mlp(), &mlp_feeds()).unwrap();
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].0, "r");
    assert_eq!(out[1].0, "s");
    // x @ w = [[58, 64], [139, 154]]; + b = [[59, -36], [140, 54]]; relu; row sums.
    assert_f32(&out[0].1, &[2, 2], &[59.0, 0.0, 140.0, 54.0]);
    assert_f32(&out[1].1, &[2], &[59.0, 194.0]);
}

#[test]
fn inputs_constants_and_multi_output_ops() {
    let mut g = Graph::new("pieces");
    let x = g
        .add_input("x", TensorType::i64(&[5]), InputKind::Data)
        .unwrap();
    let parts = g
        .add_op(
            &["a", "b", "c"],
            Op::Split {
                axis: 0,
                sizes: vec![1, 3, 1],
            },
            &[x],
        )
        .unwrap();
    // `a` is unused, `b` feeds a node, `c` is an output; `x` itself is also an output, and
    // the same value is read twice by one node.
    let sum = g
        .add_op(&["cat"], Op::Concat { axis: 0 }, &[parts[1], parts[1]])
        .unwrap()[0];
    let k = g.add_const("k", Tensor::scalar(2.5)).unwrap();
    g.set_outputs(&[sum, parts[2], x, k]).unwrap();
    let out = run(&g, &feeds(&[("x", i(&[5], &[1, 2, 3, 4, 5]))])).unwrap();
    let names: Vec<&str> = out.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["cat", "c", "x", "k"]);
    assert_eq!(out[0].1, i(&[6], &[2, 3, 4, 2, 3, 4]));
    assert_eq!(out[1].1, i(&[1], &[5]));
    assert_eq!(out[2].1, i(&[5], &[1, 2, 3, 4, 5]));
    assert_eq!(out[3].1, Tensor::scalar(2.5));
}

#[test]
fn dead_nodes_are_not_evaluated() {
    // A gather whose index is out of range would fail, but nothing reads it.
    let mut g = Graph::new("dead");
    let x = g
        .add_input("x", TensorType::f32(&[3]), InputKind::Data)
        .unwrap();
    let idx = g.add_const("idx", i(&[1], &[7])).unwrap();
    let _bad = g
        .add_op(&["bad"], Op::Gather { axis: 0 }, &[x, idx])
        .unwrap();
    let y = g.add_op(&["y"], Op::Neg {}, &[x]).unwrap()[0];
    g.set_outputs(&[y]).unwrap();
    let out = run(&g, &feeds(&[("x", f(&[3], &[1.0, 2.0, 3.0]))])).unwrap();
    assert_f32(&out[0].1, &[3], &[-1.0, -2.0, -3.0]);
}

#[test]
fn random_ops_in_a_graph_match_eval_op() {
    let mut g = Graph::new("rand");
    let step = g
        .add_input("step", TensorType::i64(&[]), InputKind::Data)
        .unwrap();
    let x = g
        .add_input("x", TensorType::f32(&[64]), InputKind::Data)
        .unwrap();
    let d = g
        .add_op(
            &["d"],
            Op::Dropout {
                p: sinter_ir::Float(0.5),
                seed: 3,
            },
            &[x, step],
        )
        .unwrap()[0];
    g.set_outputs(&[d]).unwrap();
    let x_t = Tensor::full(&[64], 1.0);
    let step_t = i(&[], &[9]);
    let out = run(&g, &feeds(&[("x", x_t.clone()), ("step", step_t.clone())])).unwrap();
    let direct = eval1(
        Op::Dropout {
            p: sinter_ir::Float(0.5),
            seed: 3,
        },
        &[&x_t, &step_t],
    );
    assert_eq!(out[0].1, direct);
}

#[test]
fn missing_input_message() {
    let e = run(&mlp(), &feeds(&[("w", f(&[3, 2], &[0.0; 6]))])).unwrap_err();
    assert_eq!(
        e,
        InterpError::MissingInput {
            name: "x".into(),
            expected: "f32[2,3]".into(),
            available: vec!["w".into()],
        }
    );
    assert_eq!(e.to_string(), "missing input `%x` (f32[2,3]); given: `%w`");
    let e = run(&mlp(), &HashMap::new()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "missing input `%x` (f32[2,3]); no inputs were given"
    );
}

#[test]
fn unexpected_input_message() {
    let mut inputs = mlp_feeds();
    inputs.insert("q".into(), Tensor::scalar(1.0));
    let e = run(&mlp(), &inputs).unwrap_err();
    assert_eq!(
        e,
        InterpError::UnexpectedInput {
            name: "q".into(),
            known: vec!["x".into(), "w".into()]
        }
    );
    assert_eq!(
        e.to_string(),
        "unexpected input `%q`: the graph's inputs are `%x`, `%w`"
    );
    // A constant is not an input.
    inputs.remove("q");
    inputs.insert("b".into(), f(&[2], &[0.0, 0.0]));
    assert!(
        matches!(run(&mlp(), &inputs), Err(InterpError::UnexpectedInput { name, .. }) if name == "b")
    );
}

#[test]
fn wrong_input_message() {
    let mut inputs = mlp_feeds();
    inputs.insert("x".into(), f(&[2, 4], &[0.0; 8]));
    let e = run(&mlp(), &inputs).unwrap_err();
    assert_eq!(e.to_string(), "input `%x` expects f32[2,3], got f32[2,4]");
    inputs.insert("x".into(), i(&[2, 3], &[0; 6]));
    let e = run(&mlp(), &inputs).unwrap_err();
    assert_eq!(
        e,
        InterpError::WrongInput {
            name: "x".into(),
            expected: "f32[2,3]".into(),
            got: "i64[2,3]".into()
        }
    );
}

#[test]
fn node_error_names_the_node() {
    let mut g = Graph::new("g");
    let d = g
        .add_input("d", TensorType::f32(&[3, 2]), InputKind::Data)
        .unwrap();
    let idx = g
        .add_input("i", TensorType::i64(&[2]), InputKind::Data)
        .unwrap();
    let y: Value = g.add_op(&["y"], Op::Gather { axis: 0 }, &[d, idx]).unwrap()[0];
    g.set_outputs(&[y]).unwrap();
    let data = f(&[3, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let ok = run(&g, &feeds(&[("d", data.clone()), ("i", i(&[2], &[-1, 0]))])).unwrap();
    assert_f32(&ok[0].1, &[2, 2], &[5.0, 6.0, 1.0, 2.0]);
    let e = run(&g, &feeds(&[("d", data), ("i", i(&[2], &[1, 5]))])).unwrap_err();
    assert_eq!(
        e.to_string(),
        "%y = gather(%d, %i): gather index 5 (element 1 of the indices) is out of range for axis 0 of extent 3"
    );
    assert!(matches!(e, InterpError::Node { location, .. } if location == "%y = gather(%d, %i)"));
}
