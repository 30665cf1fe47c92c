//! Differential tests: every op of the table through the JIT against the reference
//! interpreter, at odd shapes (1, primes, non-multiples of 4, large padding, stride > kernel),
//! in the normal and the bounds-checked mode; plus data errors that must come back as `Err`.

mod common;

use common::{Tol, check, inputs_for};
use sinter_ir::{OpKind, Tensor};
use sinter_runtime::{CompileOptions, Compiled, RunError};
use std::collections::{BTreeSet, HashMap};

/// One graph per line group; every op kind appears at least once (checked below).
const CASES: &[&str] = &[
    "graph @unary { input %x: f32[3,7]
       %a = neg(%x)  %b = exp(%x)  %c = log(%x)  %d = sqrt(%x)  %e = rsqrt(%x)  %f = abs(%x)
       %g = relu(%x) %h = sigmoid(%x) %i = tanh(%x) %j = leaky_relu(%x) {alpha=0.2}
       output %a, %b, %c, %d, %e, %f, %g, %h, %i, %j }",
    "graph @binary { input %x: f32[2,1,5]  input %y: f32[3,1]  input %s: f32[]  input %z: f32[1,5]
       %a = add(%x, %y) %b = sub(%x, %y) %c = mul(%x, %s) %d = div(%x, %y) %e = max(%x, %y)
       %f = min(%y, %x) %g = pow(%x, %y) %h = prelu(%x, %z)
       output %a, %b, %c, %d, %e, %f, %g, %h }",
    "graph @compare { input %x: f32[5,3]  input %y: f32[3]  input %i: i64[5,1]  input %j: i64[3]
       %a = equal(%i, %j) %b = less(%x, %y) %c = less_equal(%i, %j) %d = greater(%x, %y)
       %e = greater_equal(%x, %y) %s = select(%b, %x, %y) %t = select(%c, %i, %j)
       output %a, %b, %c, %d, %e, %s, %t }",
    "graph @casts { input %x: f32[7]  input %i: i64[7]  input %b: bool[7]
       %a = cast(%x) {to=i64} %c = cast(%x) {to=bool} %d = cast(%i) {to=f32} %e = cast(%i) {to=bool}
       %f = cast(%b) {to=f32} %g = cast(%b) {to=i64} %h = cast(%x) {to=f32}
       output %a, %c, %d, %e, %f, %g, %h }",
    "graph @linear { input %a: f32[2,1,5,7]  input %b: f32[3,7,6]  input %m: f32[7,5]  input %n: f32[3,7]  input %c: f32[5,1]
       %p = matmul(%a, %b)
       %g = gemm(%m, %n, %c) {trans_a=true, trans_b=true, alpha=0.5, beta=2}
       %h = gemm(%n, %m)
       output %p, %g, %h }",
    "graph @conv { input %x: f32[2,6,7,5]  input %w: f32[4,3,3,2]  input %b: f32[4]
       %y = conv2d(%x, %w, %b) {stride=[2, 3], pad=[2, 1, 3, 4], dilation=[2, 1], groups=2}
       %z = conv2d(%x, %w) {stride=[4, 5], groups=2}
       output %y, %z }",
    "graph @convpad { input %x: f32[1,2,3,9]  input %w: f32[3,2,3,3]  input %b: f32[3]
       %y = conv2d(%x, %w, %b) {pad=[4, 5, 4, 6]}
       %z = conv2d(%x, %w) {pad=[0, 2, 1, 3], dilation=[1, 3]}
       output %y, %z }",
    "graph @conv1x1 { input %x: f32[1,5,3,7]  input %w: f32[3,5,1,1]
       %y = conv2d(%x, %w)  output %y }",
    "graph @convt { input %x: f32[2,4,3,5]  input %w: f32[4,3,3,2]  input %b: f32[6]
       %y = conv_transpose2d(%x, %w, %b) {stride=[2, 3], pad=[1, 0, 2, 1], output_pad=[1, 2], dilation=[2, 1], groups=2}
       output %y }",
    "graph @convt_pixel { input %x: f32[3,4,1,1]  input %w: f32[4,3,2,3]  input %b: f32[6]
       %y = conv_transpose2d(%x, %w, %b) {stride=[2, 1], pad=[0, 1, 1, 0], groups=2}
       %z = conv_transpose2d(%x, %w) {groups=2}  %zt = tanh(%z)
       output %y, %zt }",
    "graph @wgrad { input %x: f32[2,6,7,5]  input %dy: f32[2,4,4,3]
       %dw = conv2d_weight_grad(%x, %dy) {kernel=[3, 2], stride=[2, 3], pad=[2, 1, 3, 4], dilation=[2, 1], groups=2}
       output %dw }",
    "graph @wgrad1x1 { input %x: f32[2,6,3,5]  input %dy: f32[2,4,3,5]
       %dw = conv2d_weight_grad(%x, %dy) {kernel=[1, 1], groups=2}
       output %dw }",
    "graph @pools { input %x: f32[2,3,7,5]
       %m = max_pool2d(%x) {kernel=[3, 2], stride=[2, 3], pad=[1, 1, 2, 1]}
       %a = avg_pool2d(%x) {kernel=[3, 2], stride=[2, 3], pad=[1, 1, 2, 1]}
       %c = avg_pool2d(%x) {kernel=[3, 2], stride=[2, 3], pad=[1, 1, 2, 1], count_include_pad=true}
       %s = max_pool2d(%x) {kernel=[1, 1], stride=[3, 2]}
       %g = global_avg_pool(%x)
       output %m, %a, %c, %s, %g }",
    "graph @pools_s1 { input %x: f32[1,2,6,9]
       %a = max_pool2d(%x) {kernel=[3, 3], stride=[1, 1], pad=[1, 1, 1, 1]}
       %b = max_pool2d(%x) {kernel=[2, 3], stride=[1, 1], pad=[0, 2, 1, 0]}
       %c = max_pool2d(%x) {kernel=[3, 3], stride=[2, 2], pad=[1, 1, 1, 1]}
       output %a, %b, %c }",
    "graph @poolgrads { input %x: f32[2,3,7,5]  input %dy: f32[2,3,4,2]
       %m = max_pool2d_grad(%x, %dy) {kernel=[3, 2], stride=[2, 3], pad=[1, 1, 2, 1]}
       %a = avg_pool2d_grad(%x, %dy) {kernel=[3, 2], stride=[2, 3], pad=[1, 1, 2, 1]}
       %c = avg_pool2d_grad(%x, %dy) {kernel=[3, 2], stride=[2, 3], pad=[1, 1, 2, 1], count_include_pad=true}
       output %m, %a, %c }",
    "graph @overlap { input %x: f32[1,2,6,6]  input %dy: f32[1,2,5,5]
       %m = max_pool2d_grad(%x, %dy) {kernel=[2, 2], stride=[1, 1]}
       %a = avg_pool2d_grad(%x, %dy) {kernel=[2, 2], stride=[1, 1]}
       output %m, %a }",
    "graph @norms { input %x: f32[3,5,2,3]  input %g: f32[5]  input %b: f32[5]  input %m: f32[5]  input %v: f32[5]
       %y = batch_norm(%x, %g, %b, %m, %v) {eps=0.001}
       %t, %mean, %var = batch_norm_train(%x, %g, %b)
       %s = softmax(%x) {axis=1}  %l = log_softmax(%x)
       output %y, %t, %mean, %var, %s, %l }",
    "graph @random { input %step: i64[]  input %p: f32[5,3]  input %q: f32[2,3,6,6]
       %u = random_uniform() {shape=[7,3], low=-1, high=3, seed=42}
       %n = random_normal(%step) {shape=[11], mean=1, std=0.5, seed=7}
       %h = bernoulli(%p, %step) {seed=3}
       %d = dropout(%p, %step) {p=0.3, seed=9}
       %e = dropout(%p) {p=0.5}
       %r = relu(%q)
       %s = stochastic_pool2d(%r, %step) {kernel=2, seed=5}
       %s3 = stochastic_pool2d(%r) {kernel=3}
       output %u, %n, %h, %d, %e, %s, %s3 }",
    "graph @reduce { input %x: f32[3,5,2,7]  input %i: i64[4,3]
       %a = reduce_sum(%x) {axes=[1, 3]} %b = reduce_mean(%x) {axes=[0], keepdims=true}
       %c = reduce_max(%x) {axes=[]} %d = argmax(%x) {axis=2} %e = argmax(%i) {axis=0, keepdims=true}
       output %a, %b, %c, %d, %e }",
    "graph @movement { input %x: f32[2,3,5]  input %b: bool[3,1]
       %r = reshape(%x) {shape=[5, -1]} %t = transpose(%x) {perm=[2, 0, 1]}
       %c = broadcast(%b) {shape=[2, 3, 5]} %k = concat(%x, %x, %x) {axis=1}
       %s1, %s2 = split(%x) {axis=2, sizes=[2, 3]}
       %l = slice(%x) {axes=[2, 0], starts=[-4, 1], ends=[5, 2], steps=[2, 1]}
       %p = pad(%x) {pads=[0, 3, 1, 1, 0, 2], value=-1.5}
       %f = flatten(%x) {axis=2}
       output %r, %t, %c, %k, %s1, %s2, %l, %p, %f }",
    "graph @indexing { input %d: f32[4,3,5]  input %i: i64[2,3]  input %u: f32[4,2,3,5]
       %g = gather(%d, %i) {axis=1}
       %o = one_hot(%i) {depth=3}
       %s = scatter_add(%i, %u) {axis=1, extent=3}
       output %g, %o, %s }",
    "graph @convs3 { input %x: f32[3,2,7,6]  input %w: f32[4,2,3,3]  input %b: f32[4]  input %s: f32[4,1,1]  input %t: f32[3,4,4,5]  input %v: f32[5,2,2,3]
       %y = conv2d(%x, %w, %b) {stride=[2, 1], pad=[1, 0, 2, 1]}  %yr = relu(%y)
       %z = conv2d(%x, %w) {dilation=[2, 1], pad=[2, 2, 1, 1]}  %zp = prelu(%z, %s)
       %u = conv2d(%x, %w, %b) {stride=[2, 1], pad=[1, 0, 2, 1]}  %up = prelu(%u, %t)
       %e = conv2d(%x, %v) {stride=[3, 2]}
       output %yr, %zp, %up, %e }",
    "graph @epilogue { input %x: f32[2,6,7,5]  input %w: f32[4,3,3,2]  input %b: f32[4]  input %m: f32[5,7]  input %n: f32[7,3]  input %c: f32[3]  input %r: f32[5,1]  input %a: f32[2,5,7]  input %k: f32[7,5]
       %y = conv2d(%x, %w, %b) {stride=[2, 1], pad=[1, 1, 0, 2], groups=2}  %yr = relu(%y)
       %g = gemm(%m, %n, %c)  %gr = relu(%g)
       %h = gemm(%k, %n, %r) {trans_a=true, alpha=-0.5}  %hr = relu(%h)
       %q = gemm(%m, %n, %c) {beta=2}  %qr = relu(%q)
       %p = matmul(%a, %n)  %pr = relu(%p)
       %z = conv2d(%x, %w, %b) {groups=2}  %zr = relu(%z)  %zs = add(%zr, %z)
       %o = gemm(%m, %n)  %or = relu(%o)
       output %yr, %gr, %hr, %qr, %pr, %zs, %o, %or }",
    "graph @epilogue_acts { input %x: f32[2,6,7,5]  input %w: f32[4,6,3,2]  input %v: f32[4,3,3,2]  input %b: f32[4]  input %s: f32[4,1,1]  input %m: f32[5,7]  input %n: f32[7,3]  input %c: f32[3]  input %t: f32[3]  input %u: f32[5,1]  input %a: f32[2,5,7]
       %y = conv2d(%x, %w, %b) {pad=[1, 1, 0, 2]}  %ys = sigmoid(%y)
       %y2 = conv2d(%x, %w) {stride=[2, 1]}  %yp = prelu(%y2, %s)
       %g = gemm(%m, %n, %c)  %gt = tanh(%g)
       %h = gemm(%m, %n, %c) {beta=2}  %hl = leaky_relu(%h) {alpha=0.2}
       %q = gemm(%m, %n)  %qp = prelu(%q, %t)
       %q2 = gemm(%m, %n, %c)  %qu = prelu(%q2, %u)
       %p = matmul(%a, %n)  %ps = sigmoid(%p)
       %p2 = matmul(%a, %n)  %pp = prelu(%p2, %t)
       %z = conv2d(%x, %v, %b) {groups=2}  %zp = prelu(%z, %s)
       output %ys, %yp, %gt, %hl, %qp, %qu, %ps, %pp, %zp }",
    "graph @epilogue_more { input %x: f32[2,6,7,5]  input %w: f32[4,6,3,2]  input %t: f32[6,4,3,2]  input %b: f32[4]  input %s: f32[4,1,1]  input %m: f32[5,7]  input %n: f32[7,3]  input %c: f32[3]  input %mk: f32[5,3]  input %mc: f32[2,4,6,7]  input %sl: f32[5,3]
       const %zero: f32[] = 0.0
       %d = conv_transpose2d(%x, %t, %b) {stride=[2, 1], pad=[1, 0, 0, 1]}  %dt = tanh(%d)
       %d2 = conv_transpose2d(%x, %t)  %dp = prelu(%d2, %s)
       %g = gemm(%m, %n, %c)  %gm = greater(%mk, %zero)  %gs = select(%gm, %g, %zero)
       %y = conv2d(%x, %w, %b) {pad=[1, 1, 0, 2]}  %ym = greater(%mc, %zero)  %ys = select(%ym, %y, %zero)
       %q = gemm(%m, %n)  %qp = prelu(%q, %sl)
       %d3 = conv_transpose2d(%x, %t, %b)  %dm = greater(%d3, %zero)  %ds = select(%dm, %d3, %zero)
       output %dt, %dp, %gs, %ys, %qp, %ds }",
    "graph @rows { input %x: f32[3,11]  input %y: f32[11]  input %z: f32[3,1]
       %s = softmax(%x)  %l = log_softmax(%x)  %a = add(%x, %y)  %b = mul(%z, %x)
       %c = sub(%y, %z)
       output %s, %l, %a, %b, %c }",
    "graph @rows_reduce { input %x: f32[13,7]  input %y: f32[5,4,9]  input %z: f32[1,3]  input %w: f32[4,4]
       %s = softmax(%x)  %l = log_softmax(%x)  %a = reduce_sum(%x) {axes=[1]}
       %b = reduce_mean(%x) {axes=[0]}  %c = reduce_max(%x) {axes=[1]}  %d = reduce_max(%y) {axes=[2]}
       %e = reduce_sum(%y) {axes=[0]}  %f = softmax(%y) {axis=1}  %g = log_softmax(%z)
       %h = reduce_max(%y) {axes=[0]}  %i = softmax(%y) {axis=0}  %j = reduce_mean(%y) {axes=[1, 2]}
       %k = softmax(%w)  %m = reduce_sum(%w) {axes=[1], keepdims=true}
       output %s, %l, %a, %b, %c, %d, %e, %f, %g, %h, %i, %j, %k, %m }",
    "graph @pools_s2 { input %x: f32[2,3,11,13]  input %y: f32[1,2,8,8]  input %u: f32[1,5,5,1]
       %a = max_pool2d(%x) {kernel=[2, 2], stride=[2, 2]}
       %b = max_pool2d(%x) {kernel=[3, 3], stride=[2, 2], pad=[1, 1, 1, 1]}
       %c = avg_pool2d(%x) {kernel=[2, 2], stride=[2, 2]}
       %d = avg_pool2d(%x) {kernel=[3, 3], stride=[2, 2], pad=[1, 1, 1, 1]}
       %e = avg_pool2d(%x) {kernel=[3, 3], stride=[2, 2], pad=[1, 1, 1, 1], count_include_pad=true}
       %f = max_pool2d(%y) {kernel=[2, 2], stride=[2, 2]}
       %g = avg_pool2d(%y) {kernel=[3, 3], stride=[1, 1], pad=[1, 1, 1, 1]}
       %h = global_avg_pool(%x)  %i = max_pool2d(%u) {kernel=[3, 1], stride=[2, 1]}
       %j = avg_pool2d(%y) {kernel=[2, 3], stride=[2, 2], pad=[0, 2, 1, 1], count_include_pad=true}
       output %a, %b, %c, %d, %e, %f, %g, %h, %i, %j }",
    "graph @winograd { input %x: f32[2,5,7,9]  input %w: f32[3,5,3,3]  input %wt: f32[5,3,3,3]  input %b: f32[3]  input %s: f32[3,1,1]
       %u2 = winograd_filter(%w) {tile=2}
       %v2 = winograd_input(%x) {tile=2, pad=[1, 2, 0, 3]}
       %m2 = matmul(%u2, %v2)
       %y2 = winograd_output(%m2, %b) {tile=2, out=[6, 12]}  %r2 = relu(%y2)
       %u4 = winograd_filter(%wt) {tile=4, transposed=true}
       %v4 = winograd_input(%x) {tile=4, pad=[1, 1, 1, 1]}
       %m4 = matmul(%u4, %v4)
       %y4 = winograd_output(%m4) {tile=4, out=[7, 9]}  %p4 = prelu(%y4, %s)
       const %eighth: f32[] = 0.125  %m5 = mul(%m4, %eighth)
       %y5 = winograd_output(%m5, %b) {tile=4, out=[7, 9]}  %t5 = sigmoid(%y5)
       %v1 = winograd_input(%x) {tile=2, pad=[3, 0, 0, 4]}
       output %r2, %p4, %t5, %u2, %v1 }",
    "graph @gather_i64 { input %d: i64[3,2]  input %i: i64[5]
       %g = gather(%d, %i) output %g }",
];

fn graphs() -> Vec<sinter_ir::Graph> {
    CASES
        .iter()
        .map(|src| sinter_ir::parse(src).unwrap_or_else(|e| panic!("{e}\n{src}")))
        .collect()
}

#[test]
fn every_op_has_a_case() {
    let mut seen = BTreeSet::new();
    for g in graphs() {
        for n in g.nodes() {
            if let Some(op) = n.op() {
                seen.insert(op.kind());
            }
        }
    }
    let missing: Vec<&str> = OpKind::ALL
        .iter()
        .filter(|k| !seen.contains(k))
        .map(|k| k.name())
        .collect();
    assert!(
        missing.is_empty(),
        "ops without a differential case: {missing:?}"
    );
}

/// GEMM-based kernels (the microkernel driver) sum in another order than the interpreter;
/// the Winograd transforms also differ in rounding, by an amount that scales with the whole
/// output (not each element: measured up to 2.7e-6 of the output's magnitude for F(4x4,3x3));
/// the sigmoid there reads products scaled down by 8 (exactly), so that its inputs' error,
/// which scales with their own magnitude, stays within the sigmoid's output scale of 1.
/// Everything else reproduces the interpreter's arithmetic.
fn tol(g: &sinter_ir::Graph) -> Tol {
    if g.name() == "winograd" {
        return Tol::Scaled(1e-5);
    }
    if [
        "linear",
        "convs3",
        "convt_pixel",
        "conv",
        "convpad",
        "conv1x1",
        "epilogue",
        "epilogue_acts",
        "epilogue_more",
        "wgrad",
        "wgrad1x1",
    ]
    .contains(&g.name())
    {
        Tol::Elem(1e-5)
    } else {
        Tol::Elem(1e-6)
    }
}

#[test]
fn every_op_matches_the_interpreter() {
    for (i, g) in graphs().iter().enumerate() {
        for seed in 0..3 {
            let inputs = inputs_for(g, 1000 * i as u64 + seed);
            check(g, &inputs, CompileOptions::default(), tol(g));
        }
    }
}

#[test]
fn every_op_matches_the_interpreter_bounds_checked() {
    for (i, g) in graphs().iter().enumerate() {
        let inputs = inputs_for(g, 7 + i as u64);
        check(g, &inputs, CompileOptions::checked(), tol(g));
    }
}

/// Every convolution (and weight gradient) through the implicit im2col path, which by
/// default only large images take: normal and bounds-checked.
#[test]
fn every_op_matches_the_interpreter_implicit_im2col() {
    for (i, g) in graphs().iter().enumerate() {
        for (seed, mut opts) in [CompileOptions::default(), CompileOptions::checked()]
            .into_iter()
            .enumerate()
        {
            opts.lower.implicit_im2col_bytes = 0;
            let inputs = inputs_for(g, 500 + 10 * i as u64 + seed as u64);
            check(g, &inputs, opts, tol(g));
        }
    }
}

/// Every kernel that has an independent loop split across threads (3 pieces, so ranges are
/// uneven; no work threshold, so the small cases split too): normal, bounds-checked, and
/// through the implicit im2col path. Also checks that splitting happens at all.
#[test]
fn every_op_matches_the_interpreter_threaded() {
    let mut split = 0;
    let mut names: Vec<String> = Vec::new();
    for (i, g) in graphs().iter().enumerate() {
        for (seed, mut opts) in [CompileOptions::default(), CompileOptions::checked()]
            .into_iter()
            .enumerate()
        {
            opts.lower.threads = 3;
            opts.lower.parallel_min_work = 0;
            if seed == 1 {
                opts.lower.implicit_im2col_bytes = 0;
            }
            let inputs = inputs_for(g, 300 + 10 * i as u64 + seed as u64);
            check(g, &inputs, opts, tol(g));
            if seed == 0 {
                let c = Compiled::new(g, opts).unwrap();
                for s in c
                    .program
                    .steps
                    .iter()
                    .filter(|s| s.kernel.parallel.is_some())
                {
                    split += 1;
                    names.push(s.kernel.name.clone());
                }
            }
        }
    }
    assert!(
        split >= 50,
        "only {split} kernels were split across threads"
    );
    // A transposed convolution's trailing activation moves into its loop over images.
    assert!(
        names.iter().any(|n| n == "conv_transpose2d_tanh_dt"),
        "{names:?}"
    );
}

/// Elementwise kernels are one loop; split across threads, it is strip-mined first so the
/// inner loop stays vectorised. Odd extents, 2 and 3 pieces, normal and bounds-checked.
#[test]
fn strip_mined_elementwise_chains_match_the_interpreter() {
    let g = sinter_ir::parse(
        "graph @chain { input %x: f32[3,7,50]  input %y: f32[7,50]  input %z: f32[9,61]
           %a = mul(%x, %y)  %b = tanh(%a)  %c = add(%b, %x)  %d = relu(%c)
           %e = exp(%z)  %f = neg(%e)
           output %d, %f }",
    )
    .unwrap();
    for (seed, threads) in [2, 3].into_iter().enumerate() {
        for mut opts in [CompileOptions::default(), CompileOptions::checked()] {
            opts.lower.threads = threads;
            opts.lower.parallel_min_work = 0;
            let c = Compiled::new(&g, opts).unwrap();
            let split: Vec<&str> = c
                .program
                .steps
                .iter()
                .filter(|s| s.kernel.parallel.is_some())
                .map(|s| s.kernel.name.as_str())
                .collect();
            assert_eq!(split.len(), c.program.steps.len(), "split: {split:?}");
            check(&g, &inputs_for(&g, 40 + seed as u64), opts, 1e-6);
        }
    }
}

/// The portable path (plain Cranelift loops for matmul, gemm and conv2d, no microkernels),
/// without Cranelift's optimiser, bounds-checked: the interpreter's arithmetic exactly.
#[test]
fn every_op_matches_portable_unoptimised() {
    let mut opts = CompileOptions::checked();
    opts.jit.optimize = false;
    opts.lower.microkernels = false;
    for (i, g) in graphs().iter().enumerate() {
        let inputs = inputs_for(g, 99 + i as u64);
        check(g, &inputs, opts, 1e-6);
    }
}

fn feed(pairs: &[(&str, Tensor)]) -> HashMap<String, Tensor> {
    pairs
        .iter()
        .map(|(n, t)| (n.to_string(), t.clone()))
        .collect()
}

#[test]
fn index_errors_are_errors() {
    let g = sinter_ir::parse(
        "graph @g { input %d: f32[4,3]  input %i: i64[2]
           %g = gather(%d, %i) {axis=1}
           output %g }",
    )
    .unwrap();
    for opts in [CompileOptions::default(), CompileOptions::checked()] {
        let c = Compiled::new(&g, opts).unwrap();
        let d = Tensor::from_f32(&[4, 3], (0..12).map(|v| v as f32).collect());
        let ok = c.run(&feed(&[
            ("d", d.clone()),
            ("i", Tensor::from_i64(&[2], vec![-3, 2])),
        ]));
        assert!(ok.is_ok(), "{ok:?}");
        let e = c
            .run(&feed(&[
                ("d", d.clone()),
                ("i", Tensor::from_i64(&[2], vec![0, 3])),
            ]))
            .unwrap_err();
        assert!(matches!(e, RunError::Data { .. }), "{e}");
        assert!(e.to_string().contains("gather index out of range"), "{e}");
        let e = c
            .run(&feed(&[
                ("d", d),
                ("i", Tensor::from_i64(&[2], vec![-4, 0])),
            ]))
            .unwrap_err();
        assert!(e.to_string().contains("%g = gather(%d, %i)"), "{e}");
    }
    let s = sinter_ir::parse(
        "graph @s { input %i: i64[2]  input %u: f32[3,2]
           %s = scatter_add(%i, %u) {axis=1, extent=5}  output %s }",
    )
    .unwrap();
    let c = Compiled::new(&s, CompileOptions::checked()).unwrap();
    let u = Tensor::from_f32(&[3, 2], vec![1.0; 6]);
    let e = c
        .run(&feed(&[
            ("i", Tensor::from_i64(&[2], vec![1, -6])),
            ("u", u.clone()),
        ]))
        .unwrap_err();
    assert!(
        e.to_string().contains("scatter_add index out of range"),
        "{e}"
    );
    let ok = c
        .run(&feed(&[
            ("i", Tensor::from_i64(&[2], vec![1, -5])),
            ("u", u),
        ]))
        .unwrap();
    assert_eq!(ok[0].1.as_f32().unwrap()[0], 1.0);
}

#[test]
fn inputs_are_checked_by_name_dtype_and_shape() {
    let g = sinter_ir::parse("graph @g { input %x: f32[2,3]  %y = relu(%x)  output %y }").unwrap();
    let c = Compiled::new(&g, CompileOptions::default()).unwrap();
    let e = c.run(&feed(&[])).unwrap_err();
    assert_eq!(e.to_string(), "missing input `%x` (f32[2,3])");
    let e = c
        .run(&feed(&[(
            "x",
            Tensor::zeros(&sinter_ir::TensorType::f32(&[3, 2])),
        )]))
        .unwrap_err();
    assert_eq!(e.to_string(), "input `%x` expects f32[2,3], got f32[3,2]");
    let e = c
        .run(&feed(&[(
            "x",
            Tensor::zeros(&sinter_ir::TensorType::i64(&[2, 3])),
        )]))
        .unwrap_err();
    assert_eq!(e.to_string(), "input `%x` expects f32[2,3], got i64[2,3]");
    let x = Tensor::zeros(&sinter_ir::TensorType::f32(&[2, 3]));
    let e = c
        .run(&feed(&[("x", x.clone()), ("z", x.clone())]))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "unexpected input `%z`: the graph's inputs are `%x`"
    );
    // Compiled once, run many times.
    for _ in 0..3 {
        assert_eq!(c.run(&feed(&[("x", x.clone())])).unwrap().len(), 1);
    }
}

#[test]
fn memory_plan_reuses_buffers() {
    let g = sinter_ir::parse(
        "graph @chain { input %x: f32[64,64]
           %a = softmax(%x) %b = softmax(%a) %c = log_softmax(%b) %d = softmax(%c) %e = softmax(%d)
           output %e }",
    )
    .unwrap();
    let c = Compiled::new(&g, CompileOptions::default()).unwrap();
    assert_eq!(c.plan.total_bytes, 5 * 64 * 64 * 4);
    assert_eq!(c.plan.peak_bytes, 2 * 64 * 64 * 4, "{:?}", c.plan);
    check(&g, &inputs_for(&g, 1), CompileOptions::default(), 0.0);
}

/// A relu that is the only reader of a conv2d, gemm or matmul runs in the GEMM driver's
/// epilogue (with the bias): the producer's kernel writes the relu's value and no relu kernel
/// remains. A producer read twice, or that is a graph output, keeps its own kernel.
#[test]
fn relu_runs_in_the_gemm_epilogue() {
    let g = graphs()
        .into_iter()
        .find(|g| g.name() == "epilogue")
        .unwrap();
    let c = Compiled::new(&g, CompileOptions::default()).unwrap();
    let names = c.kernel_names();
    for fused in [
        "conv2d_relu_yr",
        "gemm_relu_gr",
        "gemm_relu_hr",
        "gemm_relu_qr",
        "matmul_relu_pr",
    ] {
        assert!(names.iter().any(|n| n == fused), "no {fused} in {names:?}");
    }
    for kept in ["conv2d_z", "gemm_o"] {
        assert!(names.iter().any(|n| n == kept), "no {kept} in {names:?}");
    }
    // Only the relu of the graph output %o keeps a kernel of its own.
    let relus: Vec<&String> = names.iter().filter(|n| n.starts_with("relu_")).collect();
    assert_eq!(relus, ["relu_or"], "{names:?}");
    let loops = c.program.to_string();
    assert!(
        loops.contains(" bias=b[") && loops.contains(" relu"),
        "{loops}"
    );
}

/// Sigmoid, tanh, leaky_relu and prelu run in the GEMM epilogue like relu: the producer's
/// kernel writes the activation's value. A prelu whose slope varies along what one GEMM call
/// cannot index (per channel of a grouped conv) keeps its own kernel, and so does a sigmoid
/// under `fast_math` (its polynomial `exp` is the fast path). The results are checked against
/// the interpreter by `every_op_matches_the_interpreter` (case `@epilogue_acts`).
#[test]
fn activations_run_in_the_gemm_epilogue() {
    let g = graphs()
        .into_iter()
        .find(|g| g.name() == "epilogue_acts")
        .unwrap();
    let c = Compiled::new(&g, CompileOptions::default()).unwrap();
    let names = c.kernel_names();
    for fused in [
        "conv2d_sigmoid_ys",
        "conv2d_prelu_yp",
        "gemm_tanh_gt",
        "gemm_leaky_relu_hl",
        "gemm_prelu_qp",
        "gemm_prelu_qu",
        "matmul_sigmoid_ps",
        "matmul_prelu_pp",
        "conv2d_z",
        "prelu_zp",
    ] {
        assert!(names.iter().any(|n| n == fused), "no {fused} in {names:?}");
    }
    assert_eq!(names.len(), 10, "{names:?}");
    let loops = c.program.to_string();
    assert!(
        loops.contains(" leaky_relu(0.2)") && loops.contains(" prelu(s["),
        "{loops}"
    );
    let mut fast = CompileOptions::default();
    fast.lower.fast_math = true;
    let names = Compiled::new(&g, fast).unwrap().kernel_names();
    assert!(
        names.iter().any(|n| n == "conv2d_y") && names.iter().any(|n| n == "sigmoid_ys"),
        "{names:?}"
    );
}

/// The relu backward `select(greater(m, 0), y, 0)` of a training step runs in the GEMM
/// epilogue (the mask `m` addressed like C), so does a prelu whose slope has the output's
/// shape; after a conv_transpose2d (whose col2im scatters) the activation is a loop at the end
/// of the same kernel. A `select` whose mask is the linear op's own output (read twice) stays
/// apart. Results: `every_op_matches_the_interpreter` (case `@epilogue_more`).
#[test]
fn masks_and_transposed_convs_absorb_their_activation() {
    let g = graphs()
        .into_iter()
        .find(|g| g.name() == "epilogue_more")
        .unwrap();
    let names = Compiled::new(&g, CompileOptions::default())
        .unwrap()
        .kernel_names();
    for want in [
        "conv_transpose2d_tanh_dt",
        "conv_transpose2d_prelu_dp",
        "gemm_relu_mask_gs",
        "conv2d_relu_mask_ys",
        "gemm_prelu_qp",
        "conv_transpose2d_d3",
    ] {
        assert!(names.iter().any(|n| n == want), "no {want} in {names:?}");
    }
    assert_eq!(names.len(), 7, "{names:?}");
}

/// A compiled graph reuses the arena of its last run (in test builds the first arena starts
/// as all-ones bytes, NaN as f32): runs with other inputs in between change nothing.
#[test]
fn reused_arenas_give_the_same_results() {
    for g in graphs() {
        let c = Compiled::new(&g, CompileOptions::default()).unwrap();
        let (a, b) = (inputs_for(&g, 1), inputs_for(&g, 2));
        let first = c.run(&a).unwrap();
        let other = c.run(&b).unwrap();
        let again = c.run(&a).unwrap();
        // Bit for bit (NaN included: log of a negative input).
        let bits = |outs: &[(String, Tensor)]| -> Vec<Vec<u64>> {
            outs.iter()
                .map(|(_, t)| match t.data() {
                    sinter_ir::TensorData::F32(v) => {
                        v.iter().map(|x| u64::from(x.to_bits())).collect()
                    }
                    sinter_ir::TensorData::I64(v) => v.iter().map(|&x| x as u64).collect(),
                    sinter_ir::TensorData::Bool(v) => v.iter().map(|&x| u64::from(x)).collect(),
                })
                .collect()
        };
        assert_eq!(bits(&first), bits(&again), "@{}", g.name());
        let want = sinter_interp::run(&g, &b).unwrap();
        for ((name, w), (_, got)) in want.iter().zip(&other) {
            common::assert_same(&format!("@{} %{name}", g.name()), w, got, tol(&g));
        }
    }
}

/// Max pooling propagates NaN and keeps the first of equal values (-0 before +0) exactly as
/// the interpreter does, in the four-lane rows too.
#[test]
fn max_pool_nan_and_signed_zero() {
    let g = graphs()
        .into_iter()
        .find(|g| g.name() == "pools_s1")
        .unwrap();
    let mut v: Vec<f32> = (0..108).map(|i| ((i * 7) % 11) as f32 - 5.0).collect();
    v[13] = f32::NAN;
    v[60] = f32::NAN;
    for i in (1..108).step_by(5) {
        v[i] = if i % 2 == 0 { 0.0 } else { -0.0 };
    }
    let x = Tensor::new(&[1, 2, 6, 9], sinter_ir::TensorData::F32(v)).unwrap();
    let inputs = HashMap::from([("x".to_string(), x)]);
    let want = sinter_interp::run(&g, &inputs).unwrap();
    for opts in [CompileOptions::default(), CompileOptions::checked()] {
        let got = Compiled::new(&g, opts).unwrap().run(&inputs).unwrap();
        for ((n, w), (_, r)) in want.iter().zip(&got) {
            let (w, r) = (w.as_f32().unwrap(), r.as_f32().unwrap());
            let bits = |v: &[f32]| -> Vec<u32> {
                v.iter()
                    .map(|x| if x.is_nan() { u32::MAX } else { x.to_bits() })
                    .collect()
            };
            assert_eq!(bits(w), bits(r), "%{n}");
        }
    }
}

/// max_pool2d_grad on disjoint windows (stride = kernel: each element written once, winner by
/// selects) and on overlapping or padded ones (accumulated) equals the interpreter bit for bit,
/// with ties, NaN and both zeros in `x` and `-0.0` in `dy`, in the normal and the bounds-checked
/// mode; a 7x5 input leaves its last row and column outside every 2x2 window (zeroed).
#[test]
fn max_pool_grad_ties_nan_and_zeros_are_exact() {
    let cases = [
        ("[1,2,6,9]", "[1,2,3,3]", "kernel=[2, 3], stride=[2, 3]"),
        ("[2,3,7,5]", "[2,3,3,2]", "kernel=[2, 2], stride=[2, 2]"),
        (
            "[2,3,7,5]",
            "[2,3,4,3]",
            "kernel=[2, 2], stride=[2, 2], pad=[1, 1, 0, 0]",
        ),
        ("[1,2,6,9]", "[1,2,5,8]", "kernel=[2, 2], stride=[1, 1]"),
    ];
    for (xs, ds, attrs) in cases {
        let src = format!(
            "graph @g {{ input %x: f32{xs}  input %dy: f32{ds}
               %m = max_pool2d_grad(%x, %dy) {{{attrs}}}  output %m }}"
        );
        let g = sinter_ir::parse(&src).unwrap_or_else(|e| panic!("{e}\n{src}"));
        let ty = |v: &str| g.ty(g.find(v).unwrap()).clone();
        let pick = [1.0, 0.0, -0.0, -1.0, f32::NAN, 1.0, 2.0];
        let x: Vec<f32> = (0..ty("x").numel())
            .map(|i| pick[(i * 5 + i / 7) % 7])
            .collect();
        let dy: Vec<f32> = (0..ty("dy").numel())
            .map(|i| if i % 4 == 0 { -0.0 } else { i as f32 - 3.5 })
            .collect();
        let inputs = HashMap::from([
            ("x".to_string(), Tensor::from_f32(&ty("x").shape, x)),
            ("dy".to_string(), Tensor::from_f32(&ty("dy").shape, dy)),
        ]);
        let want = sinter_interp::run(&g, &inputs).unwrap();
        let bits =
            |t: &Tensor| -> Vec<u32> { t.as_f32().unwrap().iter().map(|x| x.to_bits()).collect() };
        for opts in [CompileOptions::default(), CompileOptions::checked()] {
            let got = Compiled::new(&g, opts).unwrap().run(&inputs).unwrap();
            assert_eq!(bits(&want[0].1), bits(&got[0].1), "{attrs} on {xs}");
        }
    }
}

/// The rows-vectorised reductions and softmax, the stride-2 pools and the average pools by
/// rows reproduce the interpreter bit for bit (NaN as a class), with NaN, -0 and +0 in the
/// data, in the normal and the bounds-checked mode.
#[test]
fn vectorised_reductions_and_pools_are_exact() {
    for name in ["rows_reduce", "pools_s2", "pools", "rows"] {
        let g = graphs().into_iter().find(|g| g.name() == name).unwrap();
        for seed in 0..3u64 {
            let mut inputs = inputs_for(&g, 500 + seed);
            for t in inputs.values_mut() {
                let Some(v) = t.as_f32() else { continue };
                let mut v = v.to_vec();
                for (i, x) in v.iter_mut().enumerate() {
                    match (i as u64 * 7 + seed) % 23 {
                        0 if seed > 0 => *x = f32::NAN,
                        1 => *x = 0.0,
                        2 => *x = -0.0,
                        _ => {}
                    }
                }
                *t = Tensor::new(t.shape(), sinter_ir::TensorData::F32(v)).unwrap();
            }
            let want = sinter_interp::run(&g, &inputs).unwrap();
            for opts in [CompileOptions::default(), CompileOptions::checked()] {
                let got = Compiled::new(&g, opts).unwrap().run(&inputs).unwrap();
                for ((n, w), (_, r)) in want.iter().zip(&got) {
                    let bits = |v: &[f32]| -> Vec<u32> {
                        v.iter()
                            .map(|x| if x.is_nan() { u32::MAX } else { x.to_bits() })
                            .collect()
                    };
                    let (w, r) = (w.as_f32().unwrap(), r.as_f32().unwrap());
                    assert_eq!(bits(w), bits(r), "@{name} %{n} seed {seed}");
                }
            }
        }
    }
}

/// `n` uniform values in [-1, 1) from the xorshift state, as a text-format constant list.
fn literal(state: &mut u64, n: usize) -> String {
    let v: Vec<String> = (0..n)
        .map(|_| {
            *state ^= *state << 13;
            *state ^= *state >> 7;
            *state ^= *state << 17;
            format!(
                "{:?}",
                ((*state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            )
        })
        .collect();
    format!("[{}]", v.join(", "))
}

/// [`check`] to 1e-5 (GEMM summation order), normal and bounds-checked (inputs from seeds
/// `seed`, `seed + 1`), each on 1 and 2 threads.
fn check_normal_checked_threaded(g: &sinter_ir::Graph, seed: u64) {
    for (i, mut opts) in [CompileOptions::default(), CompileOptions::checked()]
        .into_iter()
        .enumerate()
    {
        for threads in [1, 2] {
            opts.lower.threads = threads;
            check(g, &inputs_for(g, seed + i as u64), opts, 1e-5);
        }
    }
}

/// Constant B operands of gemm and matmul (and a reshaped constant, as the ONNX import
/// writes an LSTM's weights) are packed once at compile time (`BufDecl::pack_b`), and the
/// products match the interpreter: transposed and plain B, more columns than one 32-wide
/// panel and not a multiple of it, k > 256 (two k slices), bias and activation epilogues,
/// normal, bounds-checked and on 2 threads. A product of one row (a batch-1 layer, which the
/// driver streams as dot products) keeps its weights unpacked.
#[test]
fn constant_gemm_weights_are_prepacked() {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut lit = |n: usize| literal(&mut state, n);
    let src = format!(
        "graph @prepack_b {{ input %x: f32[7,300]  input %h: f32[5,40]  input %one: f32[1,300]
           const %w: f32[45,300] = {}
           const %b: f32[45] = {}
           const %v: f32[40,33] = {}
           const %r: f32[1320] = {}
           %y = gemm(%x, %w, %b) {{trans_b=true}}  %yr = relu(%y)
           %z = matmul(%h, %v)  %zt = tanh(%z)
           %rr = reshape(%r) {{shape=[40, 33]}}
           %q = gemm(%h, %rr)
           %o = gemm(%one, %w) {{trans_b=true}}
           output %yr, %zt, %q, %o }}",
        lit(45 * 300),
        lit(45),
        lit(40 * 33),
        lit(1320)
    );
    let g = sinter_ir::parse(&src).unwrap();
    let c = Compiled::new(&g, CompileOptions::default()).unwrap();
    let packed: Vec<(String, sinter_lower::loops::PackB)> = c
        .program
        .steps
        .iter()
        .flat_map(|s| s.kernel.bufs.iter())
        .filter_map(|b| b.pack_b.map(|p| (b.name.clone(), p)))
        .collect();
    let pack = |k, n, rs, cs| sinter_lower::loops::PackB { k, n, rs, cs };
    assert_eq!(
        packed,
        vec![
            ("w".to_string(), pack(300, 45, 1, 300)),
            ("v".to_string(), pack(40, 33, 33, 1)),
            ("rr".to_string(), pack(40, 33, 33, 1)),
        ]
    );
    check_normal_checked_threaded(&g, 70);
}

/// Constant weights of transposed convolutions (read as `w[g]^T`) are packed once at compile
/// time, transposed (`PackA::transposed`), and the convolutions match the interpreter:
/// groups, stride and padding, a 1x1 input image (the DCGAN's first layer), more than one
/// 6-row panel per matrix and a partial last one, bias and a trailing activation; normal,
/// bounds-checked and on 2 threads.
#[test]
fn constant_transposed_conv_weights_are_prepacked() {
    let mut state = 0x5DEE_CE66_D1CE_4E5Bu64;
    let mut lit = |n: usize| literal(&mut state, n);
    let src = format!(
        "graph @prepack_t {{ input %x: f32[3,6,4,5]  input %z: f32[2,10,1,1]
           const %w: f32[6,5,3,3] = {}
           const %b: f32[10] = {}
           const %v: f32[10,7,4,4] = {}
           %y = conv_transpose2d(%x, %w, %b) {{stride=[2, 2], pad=[1, 0, 1, 1], groups=2}}
           %yt = tanh(%y)
           %u = conv_transpose2d(%z, %v)  %ur = relu(%u)
           output %yt, %ur }}",
        lit(6 * 5 * 9),
        lit(10),
        lit(10 * 7 * 16)
    );
    let g = sinter_ir::parse(&src).unwrap();
    let c = Compiled::new(&g, CompileOptions::default()).unwrap();
    let packed: Vec<(String, sinter_lower::loops::PackA)> = c
        .program
        .steps
        .iter()
        .flat_map(|s| s.kernel.bufs.iter())
        .filter_map(|b| b.pack_a.map(|p| (b.name.clone(), p)))
        .collect();
    let pack = |m, k, groups| sinter_lower::loops::PackA {
        m,
        k,
        groups,
        transposed: true,
    };
    assert_eq!(
        packed,
        vec![
            ("w".to_string(), pack(45, 3, 2)),
            ("v".to_string(), pack(112, 10, 1)),
        ]
    );
    check_normal_checked_threaded(&g, 90);
}

/// Constant conv weights are packed once at compile time (`BufDecl::pack_a`) and the packed
/// convolutions match the interpreter, normal and bounds-checked: groups, an output-channel
/// count that is not a multiple of the 6-row panels, more rows than one cache block (150 >
/// 144), k > 192 (several k slices), stride, padding and dilation, one constant read by two
/// convolutions, and a 1x1 convolution (no im2col: the image is a plain B).
#[test]
fn constant_conv_weights_are_prepacked() {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut lit = |n: usize| literal(&mut state, n);
    let src = format!(
        "graph @prepack {{ input %x: f32[2,6,9,7]  input %u: f32[1,24,6,5]
           const %w: f32[10,3,3,3] = {}
           const %b: f32[10] = {}
           const %v: f32[150,24,3,3] = {}
           const %p: f32[4,6,1,1] = {}
           %y = conv2d(%x, %w, %b) {{pad=[1, 1, 1, 1], groups=2}}  %yr = relu(%y)
           %z = conv2d(%x, %w) {{stride=[2, 1], pad=[2, 0, 1, 3], dilation=[1, 2], groups=2}}
           %e = conv2d(%u, %v) {{pad=[1, 1, 1, 1]}}
           %q = conv2d(%x, %p)
           output %yr, %z, %e, %q }}",
        lit(270),
        lit(10),
        lit(150 * 216),
        lit(24)
    );
    let g = sinter_ir::parse(&src).unwrap();
    // These images are small: force the implicit path, whose calls take packed weights.
    let lower = sinter_lower::LowerOptions {
        implicit_im2col_bytes: 0,
        ..Default::default()
    };
    let program = sinter_lower::lower_graph(&g, lower).unwrap();
    let packed: Vec<(String, sinter_lower::loops::PackA)> = program
        .steps
        .iter()
        .flat_map(|s| s.kernel.bufs.iter())
        .filter_map(|b| b.pack_a.map(|p| (b.name.clone(), p)))
        .collect();
    let pack = |m, k, groups| sinter_lower::loops::PackA {
        m,
        k,
        groups,
        transposed: false,
    };
    assert_eq!(
        packed,
        [
            ("w".to_string(), pack(5, 27, 2)),
            ("w".to_string(), pack(5, 27, 2)),
            ("v".to_string(), pack(150, 216, 1)),
            ("p".to_string(), pack(4, 6, 1)),
        ]
    );
    // The first convolution's kernel: packed weights, the implicit operand, no col scratch.
    insta::assert_snapshot!("prepacked_conv_kernel", program.steps[0].kernel.to_string());
    for (seed, mut opts) in [CompileOptions::default(), CompileOptions::checked()]
        .into_iter()
        .enumerate()
    {
        opts.lower = lower;
        let inputs = inputs_for(&g, 40 + seed as u64);
        check(&g, &inputs, opts, 1e-5);
    }
}

/// `winograd_filter` of a constant weight (plain and transposed) is computed once when the
/// graph is compiled (no kernel runs it) and gives the interpreter's results; of an input
/// weight it stays a kernel.
#[test]
fn constant_winograd_filters_are_folded_at_compile_time() {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut lit = |n: usize| literal(&mut state, n);
    let src = format!(
        "graph @wfold {{ input %x: f32[1,5,6,7]  input %wi: f32[4,5,3,3]
           const %w: f32[4,5,3,3] = {}
           const %wt: f32[5,4,3,3] = {}
           %u = winograd_filter(%w) {{tile=4}}
           %ut = winograd_filter(%wt) {{tile=2, transposed=true}}
           %ui = winograd_filter(%wi) {{tile=2}}
           %v4 = winograd_input(%x) {{tile=4, pad=[1, 1, 1, 1]}}
           %v2 = winograd_input(%x) {{tile=2, pad=[1, 1, 1, 1]}}
           %m4 = matmul(%u, %v4)  %m2 = matmul(%ut, %v2)  %mi = matmul(%ui, %v2)
           %y4 = winograd_output(%m4) {{tile=4, out=[6, 7]}}
           %y2 = winograd_output(%m2) {{tile=2, out=[6, 7]}}
           %yi = winograd_output(%mi) {{tile=2, out=[6, 7]}}
           output %y4, %y2, %yi }}",
        lit(180),
        lit(180)
    );
    let g = sinter_ir::parse(&src).unwrap();
    for opts in [CompileOptions::default(), CompileOptions::checked()] {
        let c = Compiled::new(&g, opts).unwrap();
        let filters: Vec<String> = c
            .kernel_names()
            .into_iter()
            .filter(|n| n.starts_with("winograd_filter"))
            .collect();
        assert_eq!(
            filters,
            ["winograd_filter_ui"],
            "only the input weight's transform runs"
        );
        // The folded transforms are constants, packed once as the products' A operands.
        let packed: Vec<&str> = c
            .program
            .steps
            .iter()
            .flat_map(|s| s.kernel.bufs.iter())
            .filter(|b| b.pack_a.is_some())
            .map(|b| b.name.as_str())
            .collect();
        assert_eq!(packed, ["u", "ut"]);
        check(&g, &inputs_for(&g, 3), opts, Tol::Scaled(1e-5));
    }
}

/// The Winograd kernels on random shapes (1-2 images, 1-9 channels in and out, 1-12 pixels
/// per side, padding 0-3 per side: ragged tiles, windows wholly in the padding), both tile
/// sizes, with and without bias and a fused relu, normal and bounds-checked, against the
/// interpreter.
#[test]
fn winograd_random_shapes_match_the_interpreter() {
    let mut s = 0x1234_5678_9abc_def1u64;
    let mut next = |lo: usize, hi: usize| {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        lo + (s % (hi - lo + 1) as u64) as usize
    };
    let mut cases = 0;
    while cases < 40 {
        let (n, c, co) = (next(1, 2), next(1, 9), next(1, 9));
        let (h, w) = (next(1, 12), next(1, 12));
        let pad = [next(0, 3), next(0, 3), next(0, 3), next(0, 3)];
        let (oh, ow) = (h + pad[0] + pad[2], w + pad[1] + pad[3]);
        if oh < 3 || ow < 3 {
            continue;
        }
        let (oh, ow) = (oh - 2, ow - 2);
        let tile = [2, 4][next(0, 1)];
        let bias = next(0, 1) == 1;
        let relu = next(0, 1) == 1;
        let pads = format!("[{}, {}, {}, {}]", pad[0], pad[1], pad[2], pad[3]);
        let src = format!(
            "graph @winograd_random {{ input %x: f32[{n},{c},{h},{w}]  input %w: f32[{co},{c},3,3]  input %b: f32[{co}]
               %u = winograd_filter(%w) {{tile={tile}}}
               %v = winograd_input(%x) {{tile={tile}, pad={pads}}}
               %m = matmul(%u, %v)
               %y = winograd_output(%m{}) {{tile={tile}, out=[{oh}, {ow}]}}
               %r = {}(%y)
               output %r }}",
            if bias { ", %b" } else { "" },
            if relu { "relu" } else { "neg" },
        );
        let g = sinter_ir::parse(&src).unwrap_or_else(|e| panic!("{e}\n{src}"));
        assert_eq!(g.ty(g.outputs()[0]).shape[..], [n, co, oh, ow], "{src}");
        for opts in [CompileOptions::default(), CompileOptions::checked()] {
            check(&g, &inputs_for(&g, cases as u64), opts, Tol::Scaled(1e-5));
        }
        cases += 1;
    }
}

fn ulps(a: f32, b: f32) -> u32 {
    if a.is_nan() || b.is_nan() {
        return if a.is_nan() && b.is_nan() {
            0
        } else {
            u32::MAX
        };
    }
    if a == b {
        return 0;
    }
    // Distance on the line of ordered floats.
    let key = |x: f32| {
        let i = x.to_bits() as i32;
        if i < 0 { i32::MIN - i } else { i }
    };
    (key(a) as i64 - key(b) as i64)
        .unsigned_abs()
        .min(u32::MAX as u64) as u32
}

/// The accuracy of `--fast-math` (vectorised inline `exp`, and `sigmoid`, `tanh` built on it)
/// against the exact `f32` functions, over a dense sweep of [-30, 30], tiny values, and the
/// special values (±0, ±inf, NaN): the bounds the documentation states.
#[test]
fn fast_math_tanh_and_sigmoid_accuracy() {
    let mut xs: Vec<f32> = (0..240_001).map(|i| -30.0 + i as f32 * 2.5e-4).collect();
    xs.extend((0..200).flat_map(|i| {
        let t = 1e-30f32 * 1.5f32.powi(i);
        [t, -t]
    }));
    xs.extend([
        0.0,
        -0.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        0.625,
        -0.625,
    ]);
    let n = xs.len();
    let g = sinter_ir::parse(&format!(
        "graph @fast {{ input %x: f32[{n}]  %t = tanh(%x)  %s = sigmoid(%x)  %e = exp(%x)
           output %t, %s, %e }}"
    ))
    .unwrap();
    let mut opts = CompileOptions::default();
    opts.lower.fast_math = true;
    let c = Compiled::new(&g, opts).unwrap();
    let x = Tensor::new(&[n], sinter_ir::TensorData::F32(xs.clone())).unwrap();
    let outs = c.run(&feed(&[("x", x)])).unwrap();
    let exact: [fn(f32) -> f32; 3] = [f32::tanh, |x| 1.0 / (1.0 + (-x).exp()), f32::exp];
    let mut worst = [(0u32, 0.0f32); 3];
    for (k, (_, t)) in outs.iter().enumerate() {
        let sinter_ir::TensorData::F32(got) = t.data() else {
            panic!()
        };
        for (&x, &y) in xs.iter().zip(got) {
            let want = exact[k](x);
            let e = ulps(y, want);
            assert!(e != u32::MAX, "output {k} at {x}: {y} vs {want}");
            if want.is_sign_negative() != y.is_sign_negative() && want == 0.0 {
                panic!("output {k} at {x}: sign of zero {y} vs {want}");
            }
            if e > worst[k].0 {
                worst[k] = (e, x);
            }
        }
    }
    // Measured: tanh 2 ULP (at -0.998), sigmoid 4 (at -16.8, where it is ~5e-8), exp 1.
    for (k, bound) in [2, 4, 2].into_iter().enumerate() {
        assert!(worst[k].0 <= bound, "output {k}: {:?}", worst[k]);
    }
}
