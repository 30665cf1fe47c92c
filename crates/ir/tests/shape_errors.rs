//! Shape-rule tests: for every op kind, valid inputs with their exact output types and invalid
//! inputs with the exact message `infer` gives. Each case is one table row; a kind without both
//! an accepted and a rejected row fails `every_kind_has_valid_and_invalid_cases`.
//!
//! Rows write types as the text format does (`f32[1,3,8,8]`, `i64[]`) and attributes as
//! `name=value` pairs (`stride=[2,2], groups=1`); omitted attributes take their defaults.
//!
//! Regressions for fixed bugs are at the end.

use sinter_ir::infer::infer;
use sinter_ir::{AttrValue, DType, Graph, InputKind, Op, OpKind, TensorType, Value};
use std::collections::BTreeSet;

/// One `infer` case: op name, attributes, input types, and the output types or the message.
struct Case {
    op: &'static str,
    attrs: &'static str,
    ins: &'static [&'static str],
    want: Result<&'static [&'static str], &'static str>,
}

const fn ok(
    op: &'static str,
    attrs: &'static str,
    ins: &'static [&'static str],
    outs: &'static [&'static str],
) -> Case {
    Case {
        op,
        attrs,
        ins,
        want: Ok(outs),
    }
}

const fn err(
    op: &'static str,
    attrs: &'static str,
    ins: &'static [&'static str],
    msg: &'static str,
) -> Case {
    Case {
        op,
        attrs,
        ins,
        want: Err(msg),
    }
}

#[rustfmt::skip]
const CASES: &[Case] = &[
    // ---- Unary: f32 in, same type out.
    ok("neg", "", &["f32[2,3]"], &["f32[2,3]"]),
    err("neg", "", &["i64[2,3]"], "input must be f32, got i64[2,3]"),
    ok("exp", "", &["f32[]"], &["f32[]"]),
    err("exp", "", &["bool[4]"], "input must be f32, got bool[4]"),
    ok("log", "", &["f32[0,5]"], &["f32[0,5]"]),
    err("log", "", &["i64[]"], "input must be f32, got i64[]"),
    ok("sqrt", "", &["f32[7]"], &["f32[7]"]),
    err("sqrt", "", &[], "`sqrt` takes 1 input, got 0"),
    ok("rsqrt", "", &["f32[1,1,1,1,1]"], &["f32[1,1,1,1,1]"]),
    err("rsqrt", "", &["i64[3]"], "input must be f32, got i64[3]"),
    ok("abs", "", &["f32[3,2]"], &["f32[3,2]"]),
    err("abs", "", &["bool[3,2]"], "input must be f32, got bool[3,2]"),
    ok("relu", "", &["f32[1,3,8,8]"], &["f32[1,3,8,8]"]),
    err("relu", "", &["f32[2]", "f32[2]"], "`relu` takes 1 input, got 2"),
    ok("sigmoid", "", &["f32[4,3]"], &["f32[4,3]"]),
    err("sigmoid", "", &["i64[4,3]"], "input must be f32, got i64[4,3]"),
    ok("tanh", "", &["f32[4,3]"], &["f32[4,3]"]),
    err("tanh", "", &["bool[]"], "input must be f32, got bool[]"),
    ok("leaky_relu", "alpha=0.2", &["f32[4,3]"], &["f32[4,3]"]),
    ok("leaky_relu", "", &["f32[2]"], &["f32[2]"]),
    err("leaky_relu", "alpha=0.2", &["i64[4,3]"], "input must be f32, got i64[4,3]"),

    // ---- Binary: f32 x f32, numpy broadcasting.
    ok("add", "", &["f32[2,1,4]", "f32[3,1]"], &["f32[2,3,4]"]),
    ok("add", "", &["f32[4,3]", "f32[3]"], &["f32[4,3]"]),
    err("add", "", &["f32[2,3]", "f32[4]"], "shapes [2,3] and [4] do not broadcast (axis 1: 3 vs 4)"),
    ok("sub", "", &["f32[]", "f32[2,3]"], &["f32[2,3]"]),
    err("sub", "", &["f32[3]", "i64[3]"], "right input must be f32, got i64[3]"),
    ok("mul", "", &["f32[5,1]", "f32[1,6]"], &["f32[5,6]"]),
    err("mul", "", &["bool[3]", "f32[3]"], "left input must be f32, got bool[3]"),
    ok("div", "", &["f32[0,3]", "f32[1]"], &["f32[0,3]"]),
    err("div", "", &["f32[0,3]", "f32[2,1]"], "shapes [0,3] and [2,1] do not broadcast (axis 0: 0 vs 2)"),
    ok("max", "", &["f32[2,3]", "f32[]"], &["f32[2,3]"]),
    err("max", "", &["f32[2]", "f32[2]", "f32[2]"], "`max` takes 2 inputs, got 3"),
    ok("min", "", &["f32[1,2,3]", "f32[4,1,1]"], &["f32[4,2,3]"]),
    err("min", "", &["i64[2]", "i64[2]"], "left input must be f32, got i64[2]"),
    ok("pow", "", &["f32[3]", "f32[3]"], &["f32[3]"]),
    err("pow", "", &["f32[3]", "f32[2]"], "shapes [3] and [2] do not broadcast (axis 0: 3 vs 2)"),
    ok("prelu", "", &["f32[1,4,5,5]", "f32[4,1,1]"], &["f32[1,4,5,5]"]),
    ok("prelu", "", &["f32[2,3]", "f32[]"], &["f32[2,3]"]),
    err("prelu", "", &["f32[4,1,1]", "f32[1,4,5,5]"], "slope f32[1,4,5,5] does not broadcast to input f32[4,1,1]"),
    err("prelu", "", &["f32[2,3]", "i64[3]"], "slope must be f32, got i64[3]"),
    err("prelu", "", &["f32[2,3]", "f32[2]"], "shapes [2,3] and [2] do not broadcast (axis 1: 3 vs 2)"),

    // ---- Compare: same dtype (f32 or i64), broadcasting, bool out.
    ok("equal", "", &["i64[3]", "i64[]"], &["bool[3]"]),
    err("equal", "", &["bool[3]", "bool[3]"], "compares two f32 or two i64 tensors, got bool[3] and bool[3]"),
    ok("less", "", &["f32[2,1]", "f32[3]"], &["bool[2,3]"]),
    err("less", "", &["f32[2]", "i64[2]"], "compares two f32 or two i64 tensors, got f32[2] and i64[2]"),
    ok("less_equal", "", &["f32[2]", "f32[2]"], &["bool[2]"]),
    err("less_equal", "", &["f32[2]", "f32[3]"], "shapes [2] and [3] do not broadcast (axis 0: 2 vs 3)"),
    ok("greater", "", &["i64[4,1]", "i64[1,5]"], &["bool[4,5]"]),
    err("greater", "", &["f32[2]"], "`greater` takes 2 inputs, got 1"),
    ok("greater_equal", "", &["f32[]", "f32[]"], &["bool[]"]),
    err("greater_equal", "", &["i64[2]", "f32[2]"], "compares two f32 or two i64 tensors, got i64[2] and f32[2]"),

    // ---- Elementwise.
    ok("select", "", &["bool[2,1]", "f32[3]", "f32[2,3]"], &["f32[2,3]"]),
    ok("select", "", &["bool[]", "i64[4]", "i64[4]"], &["i64[4]"]),
    err("select", "", &["f32[2]", "f32[2]", "f32[2]"], "condition must be bool, got f32[2]"),
    err("select", "", &["bool[2]", "f32[2]", "i64[2]"], "branches have different dtypes: f32[2] and i64[2]"),
    err("select", "", &["bool[2]", "f32[3]", "f32[3]"], "shapes [2] and [3] do not broadcast (axis 0: 2 vs 3)"),
    err("select", "", &["bool[2]", "f32[2]", "f32[3]"], "shapes [2] and [3] do not broadcast (axis 0: 2 vs 3)"),
    ok("cast", "to=i64", &["f32[2,3]"], &["i64[2,3]"]),
    ok("cast", "to=f32", &["bool[]"], &["f32[]"]),
    ok("cast", "to=bool", &["i64[5]"], &["bool[5]"]),
    err("cast", "to=i64", &[], "`cast` takes 1 input, got 0"),

    // ---- Linear.
    ok("matmul", "", &["f32[3,4]", "f32[4,5]"], &["f32[3,5]"]),
    ok("matmul", "", &["f32[2,1,3,4]", "f32[5,4,6]"], &["f32[2,5,3,6]"]),
    err("matmul", "", &["f32[3,4]", "f32[5,6]"], "inner dimensions differ: f32[3,4] x f32[5,6] (4 vs 5)"),
    err("matmul", "", &["f32[4]", "f32[4,5]"], "matmul needs rank >= 2 on both sides, got f32[4] and f32[4,5]"),
    err("matmul", "", &["f32[2,3,4]", "f32[3,4,5]"], "batch axes of f32[2,3,4] and f32[3,4,5]: shapes [2] and [3] do not broadcast (axis 0: 2 vs 3)"),
    err("matmul", "", &["i64[3,4]", "f32[4,5]"], "left input must be f32, got i64[3,4]"),
    ok("gemm", "", &["f32[3,4]", "f32[4,5]"], &["f32[3,5]"]),
    ok("gemm", "trans_b=true, alpha=0.5, beta=2.0", &["f32[3,4]", "f32[5,4]", "f32[5]"], &["f32[3,5]"]),
    ok("gemm", "trans_a=true", &["f32[4,3]", "f32[4,5]", "f32[3,1]"], &["f32[3,5]"]),
    err("gemm", "", &["f32[2,3,4]", "f32[4,5]"], "A must have rank 2, got f32[2,3,4]"),
    err("gemm", "trans_a=true", &["f32[3,4]", "f32[4,5]"], "inner dimensions differ: A f32[3,4]^T x B f32[4,5] (3 vs 4)"),
    err("gemm", "", &["f32[3,4]", "f32[4,5]", "f32[2,5]"], "C f32[2,5] does not broadcast to [3,5]"),
    err("gemm", "", &["f32[3,4]", "f32[4,5]", "f32[1,3,5]"], "C f32[1,3,5] does not broadcast to [3,5]"),
    err("gemm", "", &["f32[3,4]", "i64[4,5]"], "B must be f32, got i64[4,5]"),

    // ---- Convolution.
    ok("conv2d", "", &["f32[1,3,8,8]", "f32[4,3,3,3]"], &["f32[1,4,6,6]"]),
    ok("conv2d", "stride=[2,2], pad=[1,1,1,1]", &["f32[2,3,8,8]", "f32[4,3,3,3]", "f32[4]"], &["f32[2,4,4,4]"]),
    ok("conv2d", "pad=[0,1,2,3]", &["f32[1,3,8,8]", "f32[4,3,3,3]"], &["f32[1,4,8,10]"]),
    ok("conv2d", "dilation=[2,1]", &["f32[1,3,8,8]", "f32[4,3,3,3]"], &["f32[1,4,4,6]"]),
    ok("conv2d", "stride=[3,3]", &["f32[1,3,8,8]", "f32[4,3,2,2]"], &["f32[1,4,3,3]"]),
    ok("conv2d", "groups=3", &["f32[1,3,8,8]", "f32[6,1,3,3]", "f32[6]"], &["f32[1,6,6,6]"]),
    err("conv2d", "", &["f32[1,3,8,8]", "f32[4,1,3,3]"], "input f32[1,3,8,8] has 3 channels, weight f32[4,1,3,3] expects 1"),
    err("conv2d", "groups=2", &["f32[1,4,8,8]", "f32[3,2,3,3]"], "groups=2 must divide input channels 4 and output channels 3"),
    err("conv2d", "groups=0", &["f32[1,4,8,8]", "f32[4,4,3,3]"], "groups=0 must be in 1..=2^32"),
    err("conv2d", "", &["f32[1,3,8,8]", "f32[4,3,3,3]", "f32[3]"], "bias f32[3] must be f32[4]"),
    err("conv2d", "", &["f32[1,3,8,8]", "f32[4,3,3,3]", "i64[4]"], "bias i64[4] must be f32[4]"),
    err("conv2d", "", &["f32[1,3,4,4]", "f32[4,3,5,5]"], "height: window of 5 (kernel 5, dilation 1) is larger than the padded input 4"),
    err("conv2d", "dilation=[1,3]", &["f32[1,3,8,6]", "f32[4,3,3,3]"], "width: window of 7 (kernel 3, dilation 3) is larger than the padded input 6"),
    err("conv2d", "stride=[0,1]", &["f32[1,3,8,8]", "f32[4,3,3,3]"], "stride [0, 1] must be >= 1"),
    err("conv2d", "dilation=[1,-1]", &["f32[1,3,8,8]", "f32[4,3,3,3]"], "dilation [1, -1] must be >= 1"),
    err("conv2d", "pad=[-1,0,0,0]", &["f32[1,3,8,8]", "f32[4,3,3,3]"], "pad [-1, 0, 0, 0] must be >= 0"),
    err("conv2d", "", &["f32[3,8,8]", "f32[4,3,3,3]"], "input must have rank 4, got f32[3,8,8]"),
    err("conv2d", "", &["f32[1,3,8,8]", "f32[4,3,3]"], "weight must have rank 4, got f32[4,3,3]"),
    err("conv2d", "", &["f32[1,3,8,8]", "f32[4,3,0,3]"], "weight f32[4,3,0,3] has an empty kernel"),
    err("conv2d", "", &["f32[1,3,8,8]"], "`conv2d` takes 2 to 3 inputs, got 1"),
    ok("conv2d_weight_grad", "kernel=[3,3]", &["f32[2,3,8,8]", "f32[2,4,6,6]"], &["f32[4,3,3,3]"]),
    ok("conv2d_weight_grad", "kernel=[3,3], stride=[2,2], pad=[1,1,1,1], groups=3", &["f32[1,6,8,8]", "f32[1,9,4,4]"], &["f32[9,2,3,3]"]),
    err("conv2d_weight_grad", "kernel=[3,3]", &["f32[2,3,8,8]", "f32[2,4,5,5]"], "output gradient is f32[2,4,5,5], but the forward op gives f32[2,4,6,6]"),
    err("conv2d_weight_grad", "kernel=[3,3], groups=2", &["f32[2,3,8,8]", "f32[2,4,6,6]"], "groups=2 must divide input channels 3"),
    err("conv2d_weight_grad", "kernel=[0,3]", &["f32[2,3,8,8]", "f32[2,4,6,6]"], "kernel [0, 3] must be >= 1"),
    ok("winograd_filter", "tile=2", &["f32[4,3,3,3]"], &["f32[16,4,3]"]),
    ok("winograd_filter", "tile=4, transposed=true", &["f32[4,3,3,3]"], &["f32[36,3,4]"]),
    err("winograd_filter", "tile=3", &["f32[4,3,3,3]"], "tile=3: Winograd output tiles are [2, 4]"),
    err("winograd_filter", "tile=2", &["f32[4,3,5,5]"], "weight f32[4,3,5,5] must have a 3x3 kernel"),
    ok("winograd_input", "tile=2, pad=[1,1,1,1]", &["f32[2,3,5,5]"], &["f32[16,3,18]"]),
    ok("winograd_input", "tile=4", &["f32[1,3,7,12]"], &["f32[36,3,6]"]),
    err("winograd_input", "tile=2", &["f32[1,3,2,5]"], "height: window of 3 (kernel 3, dilation 1) is larger than the padded input 2"),
    err("winograd_input", "tile=2, pad=[0,-1,0,0]", &["f32[1,3,5,5]"], "pad [0, -1, 0, 0] must be >= 0"),
    ok("winograd_output", "tile=2, out=[5,5]", &["f32[16,4,18]", "f32[4]"], &["f32[2,4,5,5]"]),
    ok("winograd_output", "tile=4, out=[5,10]", &["f32[36,4,6]"], &["f32[1,4,5,10]"]),
    err("winograd_output", "tile=2, out=[4,4]", &["f32[16,2,3]"], "products f32[16,2,3] must be [16, C, N*4] for 2x2 tiles of a 4x4 output"),
    err("winograd_output", "tile=2, out=[4,4]", &["f32[16,2,4]", "f32[3]"], "bias f32[3] must be f32[2]"),
    ok("conv_transpose2d", "", &["f32[1,4,5,5]", "f32[4,2,3,3]"], &["f32[1,2,7,7]"]),
    ok("conv_transpose2d", "stride=[2,2]", &["f32[1,4,5,5]", "f32[4,2,3,3]"], &["f32[1,2,11,11]"]),
    ok("conv_transpose2d", "stride=[2,2], pad=[1,1,1,1], output_pad=[1,1]", &["f32[1,4,5,5]", "f32[4,2,3,3]", "f32[2]"], &["f32[1,2,10,10]"]),
    ok("conv_transpose2d", "dilation=[2,2], output_pad=[1,0]", &["f32[1,4,5,5]", "f32[4,2,3,3]"], &["f32[1,2,10,9]"]),
    ok("conv_transpose2d", "groups=2", &["f32[2,4,5,5]", "f32[4,3,1,1]", "f32[6]"], &["f32[2,6,5,5]"]),
    err("conv_transpose2d", "", &["f32[1,4,5,5]", "f32[3,2,3,3]"], "input f32[1,4,5,5] has 4 channels, weight f32[3,2,3,3] expects 3"),
    err("conv_transpose2d", "groups=3", &["f32[1,4,5,5]", "f32[4,2,3,3]"], "groups=3 must divide input channels 4"),
    err("conv_transpose2d", "groups=-2", &["f32[1,4,5,5]", "f32[4,2,3,3]"], "groups=-2 must be in 1..=2^32"),
    err("conv_transpose2d", "stride=[2,2], output_pad=[2,0]", &["f32[1,4,5,5]", "f32[4,2,3,3]"], "output_pad [2, 0] must be >= 0 and smaller than the stride or the dilation"),
    err("conv_transpose2d", "output_pad=[0,1]", &["f32[1,4,5,5]", "f32[4,2,3,3]"], "output_pad [0, 1] must be >= 0 and smaller than the stride or the dilation"),
    err("conv_transpose2d", "stride=[2,2], output_pad=[-1,0]", &["f32[1,4,5,5]", "f32[4,2,3,3]"], "output_pad [-1, 0] must be >= 0 and smaller than the stride or the dilation"),
    err("conv_transpose2d", "pad=[1,0,0,0]", &["f32[1,1,1,1]", "f32[1,1,1,1]"], "height: padding 1 removes the whole output of 1"),
    err("conv_transpose2d", "pad=[0,2,0,1]", &["f32[1,1,1,1]", "f32[1,1,3,3]"], "width: padding 3 removes the whole output of 3"),
    err("conv_transpose2d", "", &["f32[1,4,5,5]", "f32[4,2,3,3]", "f32[4]"], "bias f32[4] must be f32[2]"),
    err("conv_transpose2d", "", &["f32[1,4,5,5]", "f32[4,2,0,3]"], "weight f32[4,2,0,3] has an empty kernel"),
    err("conv_transpose2d", "stride=[1,0]", &["f32[1,4,5,5]", "f32[4,2,3,3]"], "stride [1, 0] must be >= 1"),
    err("conv_transpose2d", "", &["i64[1,4,5,5]", "f32[4,2,3,3]"], "input must be f32, got i64[1,4,5,5]"),

    // ---- Pooling.
    ok("max_pool2d", "kernel=[2,2], stride=[2,2]", &["f32[1,3,8,8]"], &["f32[1,3,4,4]"]),
    ok("max_pool2d", "kernel=[3,3], stride=[2,2], pad=[1,1,1,1]", &["f32[1,3,8,8]"], &["f32[1,3,4,4]"]),
    ok("max_pool2d", "kernel=[2,3], stride=[1,2], pad=[0,2,1,0]", &["f32[2,1,5,7]"], &["f32[2,1,5,4]"]),
    err("max_pool2d", "kernel=[2,2], stride=[2,2], pad=[2,0,0,0]", &["f32[1,3,8,8]"], "pad [2, 0, 0, 0] must be smaller than the kernel [2, 2]"),
    err("max_pool2d", "kernel=[3,3], stride=[1,1]", &["f32[1,3,2,8]"], "height: window of 3 (kernel 3, dilation 1) is larger than the padded input 2"),
    err("max_pool2d", "kernel=[0,3], stride=[1,1]", &["f32[1,3,8,8]"], "kernel [0, 3] must be >= 1"),
    err("max_pool2d", "kernel=[2,2], stride=[2,2]", &["f32[3,8,8]"], "input must have rank 4, got f32[3,8,8]"),
    ok("max_pool2d_grad", "kernel=[2,2], stride=[2,2]", &["f32[1,3,8,8]", "f32[1,3,4,4]"], &["f32[1,3,8,8]"]),
    err("max_pool2d_grad", "kernel=[2,2], stride=[2,2]", &["f32[1,3,8,8]", "f32[1,3,4,5]"], "output gradient is f32[1,3,4,5], but the forward op gives f32[1,3,4,4]"),
    err("max_pool2d_grad", "kernel=[2,2], stride=[2,2], pad=[2,0,0,0]", &["f32[1,3,8,8]", "f32[1,3,4,4]"], "pad [2, 0, 0, 0] must be smaller than the kernel [2, 2]"),
    ok("avg_pool2d_grad", "kernel=[3,3], stride=[2,2], pad=[1,1,1,1], count_include_pad=true", &["f32[2,1,5,5]", "f32[2,1,3,3]"], &["f32[2,1,5,5]"]),
    err("avg_pool2d_grad", "kernel=[2,2], stride=[2,2]", &["f32[1,3,8,8]", "i64[1,3,4,4]"], "output gradient is i64[1,3,4,4], but the forward op gives f32[1,3,4,4]"),
    ok("avg_pool2d", "kernel=[2,2], stride=[2,2], count_include_pad=true", &["f32[1,3,7,7]"], &["f32[1,3,3,3]"]),
    ok("avg_pool2d", "kernel=[3,3], stride=[1,1], pad=[1,1,1,1]", &["f32[4,2,5,5]"], &["f32[4,2,5,5]"]),
    err("avg_pool2d", "kernel=[2,2], stride=[2,2]", &["i64[1,3,8,8]"], "input must be f32, got i64[1,3,8,8]"),
    err("avg_pool2d", "kernel=[2,2], stride=[2,2], pad=[0,0,0,3]", &["f32[1,3,8,8]"], "pad [0, 0, 0, 3] must be smaller than the kernel [2, 2]"),
    err("avg_pool2d", "kernel=[2,2], stride=[2,-1]", &["f32[1,3,8,8]"], "stride [2, -1] must be >= 1"),
    ok("global_avg_pool", "", &["f32[2,3,5,7]"], &["f32[2,3,1,1]"]),
    err("global_avg_pool", "", &["f32[2,3,5]"], "input must have rank 4, got f32[2,3,5]"),
    err("global_avg_pool", "", &["i64[2,3,5,7]"], "input must be f32, got i64[2,3,5,7]"),

    // ---- Normalization.
    ok("batch_norm", "", &["f32[2,3,4,4]", "f32[3]", "f32[3]", "f32[3]", "f32[3]"], &["f32[2,3,4,4]"]),
    ok("batch_norm", "eps=0.001", &["f32[8,5]", "f32[5]", "f32[5]", "f32[5]", "f32[5]"], &["f32[8,5]"]),
    err("batch_norm", "", &["f32[2,3,4,4]", "f32[3]", "f32[3]", "f32[3]", "f32[4]"], "var f32[4] must be f32[3] for input f32[2,3,4,4]"),
    err("batch_norm", "", &["f32[3]", "f32[3]", "f32[3]", "f32[3]", "f32[3]"], "input f32[3] needs rank >= 2 (channels on axis 1)"),
    err("batch_norm", "eps=-1.0", &["f32[2,3]", "f32[3]", "f32[3]", "f32[3]", "f32[3]"], "eps=-1 must be >= 0"),
    err("batch_norm", "", &["f32[2,3]", "f32[3]", "f32[3]", "f32[3]"], "`batch_norm` takes 5 inputs, got 4"),
    ok("batch_norm_train", "", &["f32[2,3,4,4]", "f32[3]", "f32[3]"], &["f32[2,3,4,4]", "f32[3]", "f32[3]"]),
    err("batch_norm_train", "", &["f32[2,3,4,4]", "i64[3]", "f32[3]"], "gamma i64[3] must be f32[3] for input f32[2,3,4,4]"),
    err("batch_norm_train", "eps=nan", &["f32[2,3]", "f32[3]", "f32[3]"], "eps=NaN must be >= 0"),

    // ---- Softmax.
    ok("softmax", "", &["f32[4,10]"], &["f32[4,10]"]),
    ok("softmax", "axis=0", &["f32[4,10]"], &["f32[4,10]"]),
    err("softmax", "axis=2", &["f32[4,10]"], "axis 2 is out of range for rank 2"),
    err("softmax", "", &["f32[]"], "axis -1 is out of range for rank 0"),
    ok("log_softmax", "axis=-2", &["f32[4,10]"], &["f32[4,10]"]),
    err("log_softmax", "", &["i64[4,10]"], "input must be f32, got i64[4,10]"),
    err("log_softmax", "axis=-3", &["f32[4,10]"], "axis -3 is out of range for rank 2"),

    // ---- Random.
    ok("dropout", "p=0.5", &["f32[4,3]"], &["f32[4,3]"]),
    ok("dropout", "p=0.0, seed=7", &["f32[4,3]", "i64[]"], &["f32[4,3]"]),
    err("dropout", "p=1.0", &["f32[4,3]"], "dropout probability p=1 is outside [0, 1)"),
    err("dropout", "p=-0.5", &["f32[4,3]"], "dropout probability p=-0.5 is outside [0, 1)"),
    err("dropout", "p=0.5", &["f32[4,3]", "i64[1]"], "the counter input must be an i64 scalar (i64[]), got i64[1]"),
    err("dropout", "p=0.5", &["f32[4,3]", "f32[]"], "the counter input must be an i64 scalar (i64[]), got f32[]"),
    err("dropout", "p=0.5", &["i64[4,3]"], "input must be f32, got i64[4,3]"),
    ok("random_uniform", "shape=[2,3]", &[], &["f32[2,3]"]),
    ok("random_uniform", "shape=[], low=-1.0, high=1.0, seed=3", &["i64[]"], &["f32[]"]),
    ok("random_uniform", "shape=[4], low=2.0, high=2.0", &[], &["f32[4]"]),
    err("random_uniform", "shape=[2,3], low=1.0, high=0.0", &[], "low=1 and high=0 must be finite with low <= high"),
    err("random_uniform", "shape=[2,-3]", &[], "shape [2, -3] has a negative entry"),
    err("random_uniform", "shape=[2]", &["i64[]", "i64[]"], "`random_uniform` takes 0 to 1 inputs, got 2"),
    err("random_uniform", "shape=[2]", &["f32[]"], "the counter input must be an i64 scalar (i64[]), got f32[]"),
    ok("random_normal", "shape=[8,8], mean=1.0, std=0.1", &[], &["f32[8,8]"]),
    err("random_normal", "shape=[8,8], std=-1.0", &[], "std=-1 must be >= 0"),
    err("random_normal", "shape=[4294967296,4294967296,2]", &[], "type f32[4294967296,4294967296,2] has more than 2^32 elements"),
    ok("bernoulli", "", &["f32[4,16]"], &["f32[4,16]"]),
    ok("bernoulli", "seed=9", &["f32[4,16]", "i64[]"], &["f32[4,16]"]),
    err("bernoulli", "", &["f32[4,16]", "i64[2]"], "the counter input must be an i64 scalar (i64[]), got i64[2]"),
    err("bernoulli", "", &["bool[4,16]"], "probabilities must be f32, got bool[4,16]"),
    ok("stochastic_pool2d", "kernel=2", &["f32[2,3,8,6]"], &["f32[2,3,4,3]"]),
    ok("stochastic_pool2d", "kernel=3, seed=4", &["f32[1,1,9,3]", "i64[]"], &["f32[1,1,3,1]"]),
    err("stochastic_pool2d", "kernel=2", &["f32[1,1,3,4]"], "kernel 2 must be positive and divide the height 3 and width 4 of input f32[1,1,3,4]"),
    err("stochastic_pool2d", "kernel=0", &["f32[1,1,4,4]"], "kernel 0 must be positive and divide the height 4 and width 4 of input f32[1,1,4,4]"),
    err("stochastic_pool2d", "kernel=2", &["f32[4,4]"], "input must have rank 4, got f32[4,4]"),
    err("stochastic_pool2d", "kernel=2", &["f32[1,1,4,4]", "f32[]"], "the counter input must be an i64 scalar (i64[]), got f32[]"),

    // ---- Reduction.
    ok("reduce_sum", "axes=[1]", &["f32[2,3,4]"], &["f32[2,4]"]),
    ok("reduce_sum", "axes=[1], keepdims=true", &["f32[2,3,4]"], &["f32[2,1,4]"]),
    ok("reduce_sum", "axes=[]", &["f32[2,3,4]"], &["f32[]"]),
    ok("reduce_sum", "axes=[], keepdims=true", &["f32[2,3,4]"], &["f32[1,1,1]"]),
    ok("reduce_sum", "axes=[-1,0]", &["f32[2,3,4]"], &["f32[3]"]),
    err("reduce_sum", "axes=[-1,2]", &["f32[2,3,4]"], "axis 2 is listed twice in [-1, 2]"),
    err("reduce_sum", "axes=[0]", &["i64[2,3]"], "input must be f32, got i64[2,3]"),
    ok("reduce_mean", "axes=[2,3], keepdims=true", &["f32[2,3,4,5]"], &["f32[2,3,1,1]"]),
    err("reduce_mean", "axes=[3]", &["f32[2,3,4]"], "axis 3 is out of range for rank 3"),
    ok("reduce_max", "axes=[0]", &["f32[2,3]"], &["f32[3]"]),
    ok("reduce_max", "axes=[0]", &["f32[2,0]"], &["f32[0]"]),
    err("reduce_max", "axes=[1]", &["f32[2,0]"], "`reduce_max` over the empty axis 1 of f32[2,0]"),
    err("reduce_max", "axes=[]", &["f32[0,3]"], "`reduce_max` over the empty axis 0 of f32[0,3]"),
    ok("argmax", "axis=1", &["f32[2,3]"], &["i64[2]"]),
    ok("argmax", "axis=-1, keepdims=true", &["i64[2,3]"], &["i64[2,1]"]),
    err("argmax", "axis=0", &["bool[3]"], "argmax needs f32 or i64, got bool[3]"),
    err("argmax", "axis=0", &["f32[0,3]"], "argmax over empty axis 0 of f32[0,3]"),
    err("argmax", "axis=0", &["f32[]"], "axis 0 is out of range for rank 0"),

    // ---- Movement.
    ok("reshape", "shape=[6,-1]", &["f32[2,3,4]"], &["f32[6,4]"]),
    ok("reshape", "shape=[]", &["i64[1,1]"], &["i64[]"]),
    ok("reshape", "shape=[-1,4]", &["f32[0,4]"], &["f32[0,4]"]),
    ok("reshape", "shape=[3,2]", &["bool[6]"], &["bool[3,2]"]),
    err("reshape", "shape=[-1,-1]", &["f32[2,3]"], "shape [-1, -1] has more than one -1"),
    err("reshape", "shape=[4,2]", &["f32[2,3]"], "cannot reshape f32[2,3] (6 elements) to [4, 2] (8 elements)"),
    err("reshape", "shape=[4,-1]", &["f32[2,3]"], "cannot reshape f32[2,3] (6 elements) to [4, -1]"),
    err("reshape", "shape=[0,-1]", &["f32[0,3]"], "cannot reshape f32[0,3] (0 elements) to [0, -1]"),
    err("reshape", "shape=[2,-2]", &["f32[2,3]"], "shape [2, -2] has a negative extent"),
    ok("transpose", "perm=[1,0,2]", &["f32[2,3,4]"], &["f32[3,2,4]"]),
    ok("transpose", "perm=[-1,0,1]", &["i64[2,3,4]"], &["i64[4,2,3]"]),
    ok("transpose", "perm=[]", &["f32[]"], &["f32[]"]),
    err("transpose", "perm=[1,0]", &["f32[2,3,4]"], "perm [1, 0] is not a permutation of the 3 axes of f32[2,3,4]"),
    err("transpose", "perm=[0,0,1]", &["f32[2,3,4]"], "axis 0 is listed twice in [0, 0, 1]"),
    err("transpose", "perm=[0,3,1]", &["f32[2,3,4]"], "axis 3 is out of range for rank 3"),
    ok("broadcast", "shape=[2,3,4]", &["f32[3,1]"], &["f32[2,3,4]"]),
    ok("broadcast", "shape=[5]", &["bool[]"], &["bool[5]"]),
    err("broadcast", "shape=[3]", &["f32[2,3]"], "f32[2,3] does not broadcast to [3]"),
    err("broadcast", "shape=[2,4]", &["f32[3]"], "shapes [3] and [2,4] do not broadcast (axis 1: 3 vs 4)"),
    err("broadcast", "shape=[-2]", &["f32[]"], "shape [-2] has a negative entry"),
    ok("concat", "axis=1", &["f32[2,3]", "f32[2,5]"], &["f32[2,8]"]),
    ok("concat", "axis=-1", &["i64[2,3]", "i64[2,5]", "i64[2,0]"], &["i64[2,8]"]),
    ok("concat", "axis=0", &["f32[2,3]"], &["f32[2,3]"]),
    err("concat", "axis=1", &["f32[2,3]", "f32[3,5]"], "input 1 is f32[3,5] but input 0 is f32[2,3]: dtypes and all extents but axis 1 must match"),
    err("concat", "axis=0", &["f32[2,3]", "f32[2,3]", "i64[2,3]"], "input 2 is i64[2,3] but input 0 is f32[2,3]: dtypes and all extents but axis 0 must match"),
    err("concat", "axis=0", &["f32[2,3]", "f32[2,3,1]"], "input 1 is f32[2,3,1] but input 0 is f32[2,3]: dtypes and all extents but axis 0 must match"),
    err("concat", "axis=0", &["f32[]", "f32[]"], "axis 0 is out of range for rank 0"),
    err("concat", "axis=0", &[], "`concat` takes at least 1 inputs, got 0"),
    ok("split", "axis=1, sizes=[1,2]", &["f32[2,3]"], &["f32[2,1]", "f32[2,2]"]),
    ok("split", "axis=-1, sizes=[2,0,2]", &["i64[4]"], &["i64[2]", "i64[0]", "i64[2]"]),
    err("split", "axis=1, sizes=[1,1]", &["f32[2,3]"], "sizes [1, 1] do not sum to the extent 3 of axis 1 of f32[2,3]"),
    err("split", "axis=0, sizes=[]", &["f32[0]"], "sizes [] do not sum to the extent 0 of axis 0 of f32[0]"),
    err("split", "axis=0, sizes=[-1,3]", &["f32[2]"], "sizes [-1, 3] has a negative entry"),
    ok("slice", "axes=[0], starts=[1], ends=[100], steps=[1]", &["f32[5,4]"], &["f32[4,4]"]),
    ok("slice", "axes=[-1], starts=[-3], ends=[-1], steps=[1]", &["f32[5,4]"], &["f32[5,2]"]),
    ok("slice", "axes=[0,1], starts=[0,3], ends=[5,1], steps=[2,1]", &["f32[5,4]"], &["f32[3,0]"]),
    ok("slice", "axes=[0], starts=[-100], ends=[2], steps=[3]", &["i64[5]"], &["i64[1]"]),
    ok("slice", "axes=[], starts=[], ends=[], steps=[]", &["f32[5]"], &["f32[5]"]),
    err("slice", "axes=[0], starts=[0], ends=[1], steps=[]", &["f32[5]"], "axes, starts, ends and steps need equal lengths, got 1, 1, 1, 0"),
    err("slice", "axes=[-1], starts=[0], ends=[1], steps=[0]", &["f32[5,4]"], "slice step 0 on axis 1 must be >= 1"),
    err("slice", "axes=[2], starts=[0], ends=[1], steps=[1]", &["f32[5,4]"], "axis 2 is out of range for rank 2"),
    ok("pad", "pads=[1,2,3,4]", &["f32[2,3]"], &["f32[6,9]"]),
    ok("pad", "pads=[], value=-1.0", &["f32[]"], &["f32[]"]),
    err("pad", "pads=[1,1]", &["f32[2,3]"], "pads [1, 1] need 4 entries (before and after per axis) for f32[2,3]"),
    err("pad", "pads=[-1,0,0,0]", &["f32[2,3]"], "pads [-1, 0, 0, 0] has a negative entry"),
    err("pad", "pads=[0,0]", &["i64[2]"], "input must be f32, got i64[2]"),
    ok("flatten", "", &["f32[2,3,4]"], &["f32[2,12]"]),
    ok("flatten", "axis=0", &["f32[2,3,4]"], &["f32[1,24]"]),
    ok("flatten", "axis=3", &["i64[2,3,4]"], &["i64[24,1]"]),
    ok("flatten", "axis=-1", &["f32[2,3,4]"], &["f32[6,4]"]),
    ok("flatten", "axis=0", &["f32[]"], &["f32[1,1]"]),
    err("flatten", "axis=4", &["f32[2,3,4]"], "flatten axis 4 is out of range for f32[2,3,4]"),
    err("flatten", "axis=-4", &["f32[2,3,4]"], "flatten axis -4 is out of range for f32[2,3,4]"),

    // ---- Indexing.
    ok("gather", "", &["f32[5,4]", "i64[2,3]"], &["f32[2,3,4]"]),
    ok("gather", "axis=1", &["f32[5,4]", "i64[2,3]"], &["f32[5,2,3]"]),
    ok("gather", "axis=-1", &["i64[5,4]", "i64[]"], &["i64[5]"]),
    err("gather", "", &["f32[5,4]", "f32[2]"], "indices must be i64, got f32[2]"),
    ok("scatter_add", "axis=0, extent=5", &["i64[2,3]", "f32[2,3,4]"], &["f32[5,4]"]),
    ok("scatter_add", "axis=1, extent=7", &["i64[3]", "f32[5,3]"], &["f32[5,7]"]),
    ok("scatter_add", "axis=-1, extent=4", &["i64[]", "f32[5]"], &["f32[5,4]"]),
    err("scatter_add", "axis=0, extent=5", &["f32[2]", "f32[2,4]"], "indices must be i64, got f32[2]"),
    err("scatter_add", "axis=0, extent=5", &["i64[2]", "f32[3,4]"], "updates f32[3,4] must have the indices' shape [2] at axis 0"),
    err("scatter_add", "axis=2, extent=5", &["i64[2]", "f32[2,4]"], "axis 2 does not fit indices i64[2] into updates f32[2,4]"),
    err("scatter_add", "axis=0, extent=-1", &["i64[2]", "f32[2]"], "extent=-1 must be in 0..=2^32"),
    err("gather", "axis=2", &["f32[5,4]", "i64[2]"], "axis 2 is out of range for rank 2"),
    ok("one_hot", "depth=10", &["i64[4]"], &["f32[4,10]"]),
    ok("one_hot", "depth=3", &["i64[]"], &["f32[3]"]),
    err("one_hot", "depth=0", &["i64[4]"], "depth 0 must be >= 1"),
    err("one_hot", "depth=10", &["f32[4]"], "indices must be i64, got f32[4]"),
];

/// Arity through `Graph::add_op`, one row per kind: op, attributes, `name: type` inputs and the
/// full `IrError` display.
#[rustfmt::skip]
const ARITY: &[(&str, &str, &[&str], &str)] = &[
    ("neg", "", &[], "%y = neg(): `neg` takes 1 input, got 0"),
    ("exp", "", &["a: f32[2]", "b: f32[2]"], "%y = exp(%a, %b): `exp` takes 1 input, got 2"),
    ("log", "", &[], "%y = log(): `log` takes 1 input, got 0"),
    ("sqrt", "", &["a: f32[2]", "b: f32[2]"], "%y = sqrt(%a, %b): `sqrt` takes 1 input, got 2"),
    ("rsqrt", "", &[], "%y = rsqrt(): `rsqrt` takes 1 input, got 0"),
    ("abs", "", &["a: f32[2]", "b: f32[2]"], "%y = abs(%a, %b): `abs` takes 1 input, got 2"),
    ("relu", "", &[], "%y = relu(): `relu` takes 1 input, got 0"),
    ("sigmoid", "", &["a: f32[2]", "b: f32[2]"], "%y = sigmoid(%a, %b): `sigmoid` takes 1 input, got 2"),
    ("tanh", "", &[], "%y = tanh(): `tanh` takes 1 input, got 0"),
    ("leaky_relu", "", &["a: f32[2]", "b: f32[2]"], "%y = leaky_relu(%a, %b): `leaky_relu` takes 1 input, got 2"),
    ("add", "", &["a: f32[2]"], "%y = add(%a): `add` takes 2 inputs, got 1"),
    ("sub", "", &["a: f32[2]", "b: f32[2]", "c: f32[2]"], "%y = sub(%a, %b, %c): `sub` takes 2 inputs, got 3"),
    ("mul", "", &[], "%y = mul(): `mul` takes 2 inputs, got 0"),
    ("div", "", &["a: f32[2]"], "%y = div(%a): `div` takes 2 inputs, got 1"),
    ("max", "", &["a: f32[2]"], "%y = max(%a): `max` takes 2 inputs, got 1"),
    ("min", "", &["a: f32[2]", "b: f32[2]", "c: f32[2]"], "%y = min(%a, %b, %c): `min` takes 2 inputs, got 3"),
    ("pow", "", &["a: f32[2]"], "%y = pow(%a): `pow` takes 2 inputs, got 1"),
    ("prelu", "", &["x: f32[1,4,5,5]"], "%y = prelu(%x): `prelu` takes 2 inputs, got 1"),
    ("equal", "", &["a: i64[2]"], "%y = equal(%a): `equal` takes 2 inputs, got 1"),
    ("less", "", &["a: f32[2]", "b: f32[2]", "c: f32[2]"], "%y = less(%a, %b, %c): `less` takes 2 inputs, got 3"),
    ("less_equal", "", &["a: f32[2]"], "%y = less_equal(%a): `less_equal` takes 2 inputs, got 1"),
    ("greater", "", &[], "%y = greater(): `greater` takes 2 inputs, got 0"),
    ("greater_equal", "", &["a: f32[2]"], "%y = greater_equal(%a): `greater_equal` takes 2 inputs, got 1"),
    ("select", "", &["c: bool[2]", "a: f32[2]"], "%y = select(%c, %a): `select` takes 3 inputs, got 2"),
    ("cast", "to=i64", &["a: f32[2]", "b: f32[2]"], "%y = cast(%a, %b): `cast` takes 1 input, got 2"),
    ("matmul", "", &["a: f32[2,2]"], "%y = matmul(%a): `matmul` takes 2 inputs, got 1"),
    ("gemm", "", &["a: f32[2,2]", "b: f32[2,2]", "c: f32[2]", "d: f32[2]"], "%y = gemm(%a, %b, %c, %d): `gemm` takes 2 to 3 inputs, got 4"),
    ("conv2d", "", &["x: f32[1,3,8,8]"], "%y = conv2d(%x): `conv2d` takes 2 to 3 inputs, got 1"),
    ("conv_transpose2d", "", &["x: f32[1,4,5,5]", "w: f32[4,2,3,3]", "b: f32[2]", "c: f32[2]"], "%y = conv_transpose2d(%x, %w, %b, %c): `conv_transpose2d` takes 2 to 3 inputs, got 4"),
    ("max_pool2d", "kernel=[2,2], stride=[2,2]", &[], "%y = max_pool2d(): `max_pool2d` takes 1 input, got 0"),
    ("avg_pool2d", "kernel=[2,2], stride=[2,2]", &["x: f32[1,3,8,8]", "z: f32[1,3,8,8]"], "%y = avg_pool2d(%x, %z): `avg_pool2d` takes 1 input, got 2"),
    ("global_avg_pool", "", &[], "%y = global_avg_pool(): `global_avg_pool` takes 1 input, got 0"),
    ("batch_norm", "", &["x: f32[2,3]", "g: f32[3]", "b: f32[3]"], "%y = batch_norm(%x, %g, %b): `batch_norm` takes 5 inputs, got 3"),
    ("batch_norm_train", "", &["x: f32[2,3]", "g: f32[3]", "b: f32[3]", "m: f32[3]", "v: f32[3]"], "%y = batch_norm_train(%x, %g, %b, %m, %v): `batch_norm_train` takes 3 inputs, got 5"),
    ("softmax", "", &[], "%y = softmax(): `softmax` takes 1 input, got 0"),
    ("log_softmax", "", &["a: f32[2]", "b: f32[2]"], "%y = log_softmax(%a, %b): `log_softmax` takes 1 input, got 2"),
    ("dropout", "p=0.5", &["x: f32[2]", "n: i64[]", "m: i64[]"], "%y = dropout(%x, %n, %m): `dropout` takes 1 to 2 inputs, got 3"),
    ("random_uniform", "shape=[2]", &["n: i64[]", "m: i64[]"], "%y = random_uniform(%n, %m): `random_uniform` takes 0 to 1 inputs, got 2"),
    ("random_normal", "shape=[2]", &["n: i64[]", "m: i64[]"], "%y = random_normal(%n, %m): `random_normal` takes 0 to 1 inputs, got 2"),
    ("bernoulli", "", &[], "%y = bernoulli(): `bernoulli` takes 1 to 2 inputs, got 0"),
    ("stochastic_pool2d", "kernel=2", &[], "%y = stochastic_pool2d(): `stochastic_pool2d` takes 1 to 2 inputs, got 0"),
    ("reduce_sum", "axes=[]", &[], "%y = reduce_sum(): `reduce_sum` takes 1 input, got 0"),
    ("reduce_mean", "axes=[]", &["a: f32[2]", "b: f32[2]"], "%y = reduce_mean(%a, %b): `reduce_mean` takes 1 input, got 2"),
    ("reduce_max", "axes=[]", &[], "%y = reduce_max(): `reduce_max` takes 1 input, got 0"),
    ("argmax", "axis=0", &["a: f32[2]", "b: f32[2]"], "%y = argmax(%a, %b): `argmax` takes 1 input, got 2"),
    ("reshape", "shape=[2]", &[], "%y = reshape(): `reshape` takes 1 input, got 0"),
    ("transpose", "perm=[0]", &["a: f32[2]", "b: f32[2]"], "%y = transpose(%a, %b): `transpose` takes 1 input, got 2"),
    ("broadcast", "shape=[2]", &[], "%y = broadcast(): `broadcast` takes 1 input, got 0"),
    ("concat", "axis=0", &[], "%y = concat(): `concat` takes at least 1 inputs, got 0"),
    ("split", "axis=0, sizes=[1,1]", &["a: f32[2]", "b: f32[2]"], "%y = split(%a, %b): `split` takes 1 input, got 2"),
    ("slice", "axes=[], starts=[], ends=[], steps=[]", &[], "%y = slice(): `slice` takes 1 input, got 0"),
    ("pad", "pads=[0,0]", &["a: f32[2]", "b: f32[2]"], "%y = pad(%a, %b): `pad` takes 1 input, got 2"),
    ("flatten", "", &[], "%y = flatten(): `flatten` takes 1 input, got 0"),
    ("gather", "", &["d: f32[5,4]"], "%y = gather(%d): `gather` takes 2 inputs, got 1"),
    ("scatter_add", "axis=0, extent=2", &["i: i64[2]"], "%y = scatter_add(%i): `scatter_add` takes 2 inputs, got 1"),
    ("max_pool2d_grad", "kernel=[2,2], stride=[2,2]", &["x: f32[1,1,4,4]"], "%y = max_pool2d_grad(%x): `max_pool2d_grad` takes 2 inputs, got 1"),
    ("avg_pool2d_grad", "kernel=[2,2], stride=[2,2]", &["x: f32[1,1,4,4]"], "%y = avg_pool2d_grad(%x): `avg_pool2d_grad` takes 2 inputs, got 1"),
    ("conv2d_weight_grad", "kernel=[1,1]", &["x: f32[1,1,4,4]"], "%y = conv2d_weight_grad(%x): `conv2d_weight_grad` takes 2 inputs, got 1"),
    ("winograd_filter", "tile=2", &[], "%y = winograd_filter(): `winograd_filter` takes 1 input, got 0"),
    ("winograd_input", "tile=2", &["a: f32[1,1,4,4]", "b: f32[1,1,4,4]"], "%y = winograd_input(%a, %b): `winograd_input` takes 1 input, got 2"),
    ("winograd_output", "tile=2, out=[2,2]", &[], "%y = winograd_output(): `winograd_output` takes 1 to 2 inputs, got 0"),
    ("one_hot", "depth=3", &["a: i64[2]", "b: i64[2]"], "%y = one_hot(%a, %b): `one_hot` takes 1 input, got 2"),
];

// ---------------------------------------------------------------------------------------------
// Helpers: types and attributes written as in the text format.

fn ty(s: &str) -> TensorType {
    let s = s.trim();
    let open = s
        .find('[')
        .unwrap_or_else(|| panic!("type `{s}` has no `[`"));
    let dtype = DType::from_name(&s[..open]).unwrap_or_else(|| panic!("bad dtype in `{s}`"));
    let dims = s[open + 1..]
        .strip_suffix(']')
        .unwrap_or_else(|| panic!("type `{s}` has no `]`"));
    let shape: Vec<usize> = dims
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| d.parse().unwrap())
        .collect();
    TensorType::new(dtype, &shape)
}

fn attr_value(v: &str) -> AttrValue {
    let v = v.trim();
    if let Some(list) = v.strip_prefix('[') {
        let list = list.strip_suffix(']').unwrap();
        return AttrValue::Ints(
            list.split(',')
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .map(|x| x.parse().unwrap())
                .collect(),
        );
    }
    match v {
        "true" => return AttrValue::Bool(true),
        "false" => return AttrValue::Bool(false),
        _ => {}
    }
    if let Some(d) = DType::from_name(v) {
        return AttrValue::DType(d);
    }
    if let Ok(i) = v.parse::<i64>() {
        return AttrValue::Int(i);
    }
    AttrValue::Float(
        v.parse::<f32>()
            .unwrap_or_else(|_| panic!("bad attribute value `{v}`")),
    )
}

/// `stride=[2,2], groups=1` -> named values (commas inside brackets do not split).
fn attrs(s: &str) -> Vec<(String, AttrValue)> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in s.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
        .into_iter()
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            let (k, v) = p
                .split_once('=')
                .unwrap_or_else(|| panic!("bad attribute `{p}`"));
            (k.trim().to_string(), attr_value(v))
        })
        .collect()
}

fn op(name: &str, attr_text: &str) -> Op {
    let kind = OpKind::from_name(name).unwrap_or_else(|| panic!("no op `{name}`"));
    kind.with_attrs(&attrs(attr_text))
        .unwrap_or_else(|e| panic!("{name} {{{attr_text}}}: {e}"))
}

fn run_infer(name: &str, attr_text: &str, ins: &[&str]) -> Result<Vec<TensorType>, String> {
    let tys: Vec<TensorType> = ins.iter().map(|s| ty(s)).collect();
    let refs: Vec<&TensorType> = tys.iter().collect();
    infer(&op(name, attr_text), &refs)
}

fn show(r: &Result<Vec<TensorType>, String>) -> String {
    match r {
        Ok(ts) => format!(
            "Ok({})",
            ts.iter()
                .map(|t| t.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Err(e) => format!("Err({e:?})"),
    }
}

/// A graph with inputs written `name: type`; returns it and the input values.
fn graph_with(inputs: &[&str]) -> (Graph, Vec<Value>) {
    let mut g = Graph::new("g");
    let vals = inputs
        .iter()
        .map(|s| {
            let (n, t) = s.split_once(':').unwrap();
            g.add_input(n.trim(), ty(t), InputKind::Data).unwrap()
        })
        .collect();
    (g, vals)
}

// ---------------------------------------------------------------------------------------------
// The table-driven tests.

#[test]
fn infer_cases() {
    let mut failures = Vec::new();
    for c in CASES {
        let got = run_infer(c.op, c.attrs, c.ins);
        let want = c
            .want
            .map(|outs| outs.iter().map(|s| ty(s)).collect::<Vec<_>>())
            .map_err(str::to_string);
        if got != want {
            failures.push(format!(
                "{} {{{}}} ({}):\n    want {}\n    got  {}",
                c.op,
                c.attrs,
                c.ins.join(", "),
                show(&want),
                show(&got)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}

#[test]
fn every_kind_has_valid_and_invalid_cases() {
    let all: BTreeSet<&str> = OpKind::ALL.iter().map(|k| k.name()).collect();
    let valid: BTreeSet<&str> = CASES
        .iter()
        .filter(|c| c.want.is_ok())
        .map(|c| c.op)
        .collect();
    let invalid: BTreeSet<&str> = CASES
        .iter()
        .filter(|c| c.want.is_err())
        .map(|c| c.op)
        .collect();
    let arity: BTreeSet<&str> = ARITY.iter().map(|r| r.0).collect();
    assert_eq!(valid, all, "kinds with an accepted case vs OpKind::ALL");
    assert_eq!(invalid, all, "kinds with a rejected case vs OpKind::ALL");
    assert_eq!(arity, all, "kinds with an arity case vs OpKind::ALL");
}

#[test]
fn arity_errors_name_the_node() {
    let mut failures = Vec::new();
    for &(name, attr_text, inputs, want) in ARITY {
        let (mut g, vals) = graph_with(inputs);
        let got = match g.add_op(&["y"], op(name, attr_text), &vals) {
            Ok(_) => "accepted".to_string(),
            Err(e) => e.to_string(),
        };
        if got != want {
            failures.push(format!("{name}:\n    want {want}\n    got  {got}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Op, attributes, `name: type` inputs, result names, and the full `IrError` display.
type NodeErrorRow = (
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
    &'static str,
);

#[test]
fn shape_errors_name_the_node() {
    #[rustfmt::skip]
    let rows: &[NodeErrorRow] = &[
        ("conv2d", "", &["x: f32[1,3,8,8]", "w: f32[4,1,3,3]"], &["y"],
         "%y = conv2d(%x, %w): input f32[1,3,8,8] has 3 channels, weight f32[4,1,3,3] expects 1"),
        ("add", "", &["a: f32[2,3]", "b: f32[4]"], &["s"],
         "%s = add(%a, %b): shapes [2,3] and [4] do not broadcast (axis 1: 3 vs 4)"),
        ("split", "axis=0, sizes=[1,1]", &["x: f32[2]"], &["y"],
         "%y = split(%x): `split` has 2 outputs but 1 names were given"),
        ("split", "axis=0, sizes=[1,2]", &["x: f32[2]"], &["p", "q"],
         "%p, %q = split(%x): sizes [1, 2] do not sum to the extent 2 of axis 0 of f32[2]"),
        ("relu", "", &["x: f32[2]"], &[],
         "_ = relu(%x): `relu` has 1 outputs but 0 names were given"),
        ("broadcast", "shape=[65536,65537]", &["x: f32[]"], &["y"],
         "%y = broadcast(%x): type f32[65536,65537] has more than 2^32 elements"),
        ("relu", "", &["x: f32[2]"], &["x"],
         "graph @g: value `%x` is defined twice"),
        ("relu", "", &["x: f32[2]"], &["a-b"],
         "graph @g: invalid name `a-b`: names are non-empty and use only letters, digits, `_` and `.`"),
    ];
    let mut failures = Vec::new();
    for &(name, attr_text, inputs, names, want) in rows {
        let (mut g, vals) = graph_with(inputs);
        let got = match g.add_op(names, op(name, attr_text), &vals) {
            Ok(_) => "accepted".to_string(),
            Err(e) => e.to_string(),
        };
        if got != want {
            failures.push(format!("{name}:\n    want {want}\n    got  {got}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn multi_output_ops_through_the_graph() {
    let (mut g, vals) = graph_with(&["x: f32[2,3,4,4]", "gamma: f32[3]", "beta: f32[3]"]);
    let outs = g
        .add_op(&["y", "mean", "var"], op("batch_norm_train", ""), &vals)
        .unwrap();
    let tys: Vec<String> = outs.iter().map(|v| g.ty(*v).to_string()).collect();
    assert_eq!(tys, ["f32[2,3,4,4]", "f32[3]", "f32[3]"]);
    let parts = g
        .add_op(&["p", "q"], op("split", "axis=1, sizes=[1,2]"), &[outs[0]])
        .unwrap();
    assert_eq!(g.ty(parts[1]).to_string(), "f32[2,2,4,4]");
    g.set_outputs(&[parts[0], outs[1]]).unwrap();
    g.verify().unwrap();
}

#[test]
fn graph_level_errors() {
    // Inputs over MAX_ELEMENTS are located at the value.
    let mut g = Graph::new("g");
    let e = g
        .add_input("x", ty("f32[65536,65536,2]"), InputKind::Param)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "%x: type f32[65536,65536,2] has more than 2^32 elements"
    );
    // Exactly 2^32 elements is allowed.
    let x = g
        .add_input("x", ty("f32[65536,65536]"), InputKind::Data)
        .unwrap();

    // No outputs.
    assert_eq!(
        g.verify().unwrap_err().to_string(),
        "graph @g: graph has no outputs"
    );

    // Duplicate outputs.
    let e = g.set_outputs(&[x, x]).unwrap_err();
    assert_eq!(e.to_string(), "graph @g: output `%x` is listed twice");
    g.set_outputs(&[x]).unwrap();
    g.verify().unwrap();

    // Invalid graph input names.
    let e = g.add_input("", ty("f32[]"), InputKind::Data).unwrap_err();
    assert_eq!(
        e.to_string(),
        "graph @g: invalid name ``: names are non-empty and use only letters, digits, `_` and `.`"
    );
    g.add_input("layer1.w_0", ty("f32[]"), InputKind::Param)
        .unwrap();
}

#[test]
fn attribute_errors() {
    #[rustfmt::skip]
    let rows: &[(&str, &str, &str)] = &[
        ("relu", "x=1", "unknown attribute `x` for `relu` (it takes: none)"),
        ("softmax", "axis=0, axis=1", "attribute `axis` given twice"),
        ("max_pool2d", "stride=[2,2]", "missing attribute `kernel` ([int; 2])"),
        ("conv2d", "stride=[1]", "attribute `stride`: expected a list of 2 ints, found 1 in `[1]`"),
        ("gemm", "alpha=true", "attribute `alpha`: expected float, found `true`"),
        ("cast", "to=1", "attribute `to`: expected dtype, found `1`"),
        ("reduce_sum", "axes=[0], keepdims=1", "attribute `keepdims`: expected bool, found `1`"),
    ];
    for &(name, attr_text, want) in rows {
        let kind = OpKind::from_name(name).unwrap();
        assert_eq!(
            kind.with_attrs(&attrs(attr_text)).unwrap_err(),
            want,
            "{name} {{{attr_text}}}"
        );
    }
    // An integer literal is accepted where a float is expected.
    assert_eq!(
        op("leaky_relu", "alpha=1"),
        Op::LeakyRelu { alpha: 1.0.into() }
    );
}

// ---------------------------------------------------------------------------------------------
// Regressions: bugs found in the shape rules (overflow panics, windows of padding only,
// misleading messages), each asserting the correct behaviour.

fn rejects(name: &str, attr_text: &str, ins: &[&str]) -> String {
    let r = std::panic::catch_unwind(|| run_infer(name, attr_text, ins));
    match r {
        Ok(Err(e)) => e,
        Ok(Ok(ts)) => panic!(
            "{name} {{{attr_text}}} accepted {ins:?}, giving {}",
            show(&Ok(ts))
        ),
        Err(_) => {
            panic!("{name} {{{attr_text}}} panicked on {ins:?} instead of returning an error")
        }
    }
}

#[test]
fn bug_split_sizes_sum_overflow() {
    // The product check in `dims` passes (one size is 0), then `sizes.iter().sum()` overflows.
    rejects(
        "split",
        "axis=0, sizes=[0,9223372036854775807,9223372036854775807,2]",
        &["f32[4]"],
    );
}

#[test]
fn bug_pad_extent_overflow() {
    rejects(
        "pad",
        "pads=[9223372036854775807,0,9223372036854775807,0]",
        &["f32[2,3]"],
    );
}

#[test]
fn bug_conv_transpose2d_extent_overflow() {
    rejects(
        "conv_transpose2d",
        "stride=[9223372036854775807,1]",
        &["f32[1,1,4,4]", "f32[1,1,1,1]"],
    );
    rejects(
        "conv_transpose2d",
        "dilation=[1,9223372036854775807]",
        &["f32[1,1,4,4]", "f32[1,1,3,3]"],
    );
}

#[test]
fn bug_conv_groups_overflow() {
    // With 0 input and output channels every `groups` divides them; then `w.shape[1] * groups`
    // overflows.
    rejects(
        "conv2d",
        "groups=4611686018427387904",
        &["f32[1,0,4,4]", "f32[0,4,1,1]"],
    );
    rejects(
        "conv_transpose2d",
        "groups=9223372036854775807",
        &["f32[1,0,4,4]", "f32[0,4,1,1]"],
    );
}

#[test]
fn extents_are_bounded_so_concat_cannot_overflow() {
    // Zero-element types could otherwise carry absurd extents (f32[0,2^63]); concatenating two
    // of them would overflow. Every extent is bounded by 2^32 when a value is created, and
    // concat adds with a check.
    let mut g = Graph::new("g");
    let e = g
        .add_input("a", ty("f32[0,9223372036854775808]"), InputKind::Data)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "%a: type f32[0,9223372036854775808] has an extent above 2^32 on axis 1"
    );
    let (mut g, vals) = graph_with(&["a: f32[0,4294967296]", "b: f32[0,4294967296]"]);
    let e = g.add_op(&["y"], op("concat", "axis=1"), &vals).unwrap_err();
    assert_eq!(
        e.to_string(),
        "%y = concat(%a, %b): type f32[0,8589934592] has an extent above 2^32 on axis 1"
    );
}

#[test]
fn bug_pool_window_of_padding_only() {
    // H = 0 with pad [1,_,1,_] and kernel 2: the one output row's window holds no input element,
    // so max_pool2d has nothing to take the max of ("padded positions never win") and
    // avg_pool2d without count_include_pad divides by 0.
    rejects(
        "max_pool2d",
        "kernel=[2,2], stride=[1,1], pad=[1,0,1,0]",
        &["f32[1,1,0,4]"],
    );
    rejects(
        "avg_pool2d",
        "kernel=[2,2], stride=[1,1], pad=[1,0,1,0]",
        &["f32[1,1,0,4]"],
    );
}

#[test]
fn bug_conv_transpose2d_empty_input_message() {
    let e = rejects("conv_transpose2d", "", &["f32[1,1,0,4]", "f32[1,1,3,3]"]);
    assert!(!e.contains("padding 0 removes"), "misleading message: {e}");
    assert!(
        e.contains("f32[1,1,0,4]"),
        "the message should name the empty input: {e}"
    );
}
