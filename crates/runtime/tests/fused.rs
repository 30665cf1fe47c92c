//! Random fused graphs: chains of elementwise and broadcast ops (which the lowering fuses into
//! one vectorised loop) checked against the interpreter, plain and bounds-checked, with and
//! without fast math.

mod common;

use proptest::prelude::*;
use sinter_runtime::CompileOptions;

const UNARY: &[&str] = &[
    "neg",
    "relu",
    "abs",
    "sigmoid",
    "tanh",
    "exp",
    "sqrt",
    "leaky_relu",
];
const BINARY: &[&str] = &["add", "sub", "mul", "div", "max", "min"];

/// A chain over `x: f32[rows, cols]` with a broadcast row `b: f32[cols]` and a scalar `s`.
fn chain(rows: usize, cols: usize, ops: &[(u8, u8, u8)]) -> String {
    let mut src = format!(
        "graph @chain {{ input %x: f32[{rows},{cols}]  input %b: f32[{cols}]  input %s: f32[]\n"
    );
    let mut last = "x".to_string();
    for (i, &(kind, which, operand)) in ops.iter().enumerate() {
        let name = format!("v{i}");
        if kind % 2 == 0 {
            let op = UNARY[which as usize % UNARY.len()];
            src += &format!("  %{name} = {op}(%{last})\n");
        } else {
            let op = BINARY[which as usize % BINARY.len()];
            let other = ["b", "s", "x"][operand as usize % 3];
            src += &format!("  %{name} = {op}(%{last}, %{other})\n");
        }
        last = name;
    }
    // A comparison and a select keep the mask paths in the mix.
    src += &format!("  %m = greater(%{last}, %b)\n  %y = select(%m, %{last}, %s)\n  output %y }}");
    src
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn fused_chains_match(rows in 1usize..6, cols in 1usize..19,
                          ops in proptest::collection::vec((0u8..2, 0u8..8, 0u8..3), 1..8),
                          seed in 0u64..1000) {
        let src = chain(rows, cols, &ops);
        let g = sinter_ir::parse(&src).unwrap();
        let inputs = common::inputs_for(&g, seed);
        common::check(&g, &inputs, CompileOptions::default(), 1e-6);
        common::check(&g, &inputs, CompileOptions::checked(), 1e-6);
        let mut fast = CompileOptions::checked();
        fast.lower.fast_math = true;
        common::check(&g, &inputs, fast, 1e-4);
    }
}

#[test]
fn a_chain_becomes_two_kernels() {
    // `%v2` has two readers (the comparison and the select), so it is materialised once and
    // the rest of the chain fuses around it.
    let g = sinter_ir::parse(&chain(3, 5, &[(0, 1, 0), (1, 0, 0), (0, 4, 0)])).unwrap();
    let c = sinter_runtime::Compiled::new(&g, CompileOptions::default()).unwrap();
    assert_eq!(
        c.kernel_names(),
        vec!["fused_v2".to_string(), "fused_y".to_string()]
    );
}
