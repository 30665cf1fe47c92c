//! The bodies of Sinter's fuzz targets, one function per target, shared by the `cargo fuzz`
//! binaries (`fuzz_targets/`) and the stable corpus test (`tests/robustness.rs` includes this
//! file as a module), so that a corpus file replays through exactly the fuzzed code path.
//!
//! Each function takes raw bytes and returns normally whatever they hold: rejecting the input
//! with an `Err` is always fine. It panics only on a bug: a panic inside the library, an
//! invalid graph coming out of a stage, or the JIT (or an optimised graph) computing something
//! other than the reference interpreter.

use sinter_ir::{DType, Graph, Tensor, TensorData, TensorType};
use std::collections::HashMap;
use std::fmt::Write;

/// Inputs larger than this are ignored: the targets look for logic errors, not for how long a
/// 1 MB graph takes to parse.
pub const MAX_INPUT: usize = 64 * 1024;

/// Graphs whose values hold more elements than this in total are not executed.
pub const MAX_RUN_ELEMENTS: usize = 1 << 14;

/// Target `ir_text`: the bytes as `.sir` text through the parser and verifier. A graph that
/// parses must verify, print, and re-parse to the same print (the printer's output is always
/// valid input).
pub fn ir_text(data: &[u8]) {
    if data.len() > MAX_INPUT {
        return;
    }
    let src = String::from_utf8_lossy(data);
    let Ok(g) = sinter_ir::parse(&src) else {
        return;
    };
    if let Err(e) = g.verify() {
        panic!("parsed graph does not verify: {e}\n{src}");
    }
    let printed = sinter_ir::print(&g);
    let again = sinter_ir::parse(&printed)
        .unwrap_or_else(|e| panic!("printed graph does not re-parse: {e}\n{printed}"));
    assert_eq!(
        sinter_ir::print(&again),
        printed,
        "print is not a fixed point"
    );
}

/// Target `onnx_import`: the bytes as a serialized ONNX model through the importer (default
/// options, then with trainable parameters). A graph that imports must verify.
pub fn onnx_import(data: &[u8]) {
    if data.len() > MAX_INPUT {
        return;
    }
    for trainable in [false, true] {
        let opts = sinter_import_onnx::ImportOptions {
            trainable,
            ..Default::default()
        };
        if let Ok(g) = sinter_import_onnx::import(data, &opts)
            && let Err(e) = g.verify()
        {
            panic!("imported graph does not verify: {e}");
        }
    }
}

/// Target `optimize`: the bytes as `.sir` text; a graph that parses and is small enough to run
/// goes through `sinter_rewrite::optimize` (small limits). An `Err` is fine; the optimised
/// graph must verify, keep the inputs and output types, and compute what the original
/// computes on the interpreter (random inputs), within a tolerance for reassociation.
pub fn optimize(data: &[u8]) {
    if data.len() > MAX_INPUT {
        return;
    }
    let Ok(g) = sinter_ir::parse(&String::from_utf8_lossy(data)) else {
        return;
    };
    if elements(&g) > MAX_RUN_ELEMENTS {
        return;
    }
    let opts = sinter_rewrite::Options {
        node_limit: 2_000,
        iter_limit: 4,
        time_limit: std::time::Duration::from_millis(200),
        fold_limit: 1 << 12,
        ..Default::default()
    };
    let Ok((opt, _report)) = sinter_rewrite::optimize(&g, &opts) else {
        return;
    };
    let src = sinter_ir::print(&g);
    if let Err(e) = opt.verify() {
        panic!(
            "optimised graph does not verify: {e}\n{src}\n=>\n{}",
            sinter_ir::print(&opt)
        );
    }
    let types =
        |g: &Graph| -> Vec<TensorType> { g.outputs().iter().map(|&v| g.ty(v).clone()).collect() };
    assert_eq!(types(&g), types(&opt), "output types changed\n{src}");
    let inputs = inputs_for(&g, 0x5eed);
    let (Ok(want), Ok(got)) = (
        sinter_interp::run(&g, &inputs),
        sinter_interp::run(&opt, &inputs),
    ) else {
        // A data error (an index out of range) may legitimately be folded away.
        return;
    };
    if lost_precision(&g, &inputs) {
        return;
    }
    for ((name, w), (_, o)) in want.iter().zip(&got) {
        if let Some(msg) = differs(w, o, 1e-3) {
            panic!("%{name}: {msg}\n{src}\n=>\n{}", sinter_ir::print(&opt));
        }
    }
}

/// Target `jit_diff`: the bytes decoded into a small random graph ([`decode_graph`]), run on
/// the interpreter and through the JIT in bounds-checked mode. Both must succeed with the same
/// values (within [`tolerance`]) or both fail. For odd seeds every convolution takes the
/// implicit im2col path (which by default only large images take). For seeds whose bit 1 is
/// set the kernels are lowered for 2 or 3 threads with no work threshold, so every kernel
/// whose outer loop the lowering proves independent runs in pieces (`sinter_lower::parallel`).
pub fn jit_diff(data: &[u8]) {
    let Some((g, seed)) = decode_graph(data) else {
        return;
    };
    let src = sinter_ir::print(&g);
    let inputs = inputs_for(&g, seed);
    let want = sinter_interp::run(&g, &inputs);
    let mut opts = sinter_runtime::CompileOptions::checked();
    if seed % 2 == 1 {
        opts.lower.implicit_im2col_bytes = 0;
    }
    if seed & 2 != 0 {
        opts.lower.threads = 2 + (seed as usize >> 2) % 2;
        opts.lower.parallel_min_work = 0;
    }
    let compiled = sinter_runtime::Compiled::new(&g, opts)
        .unwrap_or_else(|e| panic!("a verified graph does not compile: {e}\n{src}"));
    let got = compiled.run(&inputs);
    let tol = tolerance(&g);
    match (want, got) {
        (Ok(want), Ok(got)) => {
            let bad = want
                .iter()
                .zip(&got)
                .find_map(|((name, w), (_, j))| Some((name, differs(w, j, tol)?)));
            let Some((name, msg)) = bad else {
                return;
            };
            // A graph that amplifies relative error after an accumulation (`exp(exp(conv))`:
            // a 1e-7 change in the conv's last bits becomes 1e-4 of a 7e37 output) can leave
            // the GEMM path's summation order beyond any fixed tolerance. Then the portable
            // path, which sums in the interpreter's order, must match to 1e-6: the lowering is
            // checked exactly, and the difference is the summation order's. Fuzzer finding
            // `fuzz/corpus/jit_diff/issue-exp-amplifies-order`.
            if amplifies(&g) {
                let mut opts = sinter_runtime::CompileOptions::checked();
                opts.lower.microkernels = false;
                let portable = sinter_runtime::Compiled::new(&g, opts)
                    .map_err(|e| e.to_string())
                    .and_then(|c| c.run(&inputs).map_err(|e| e.to_string()))
                    .unwrap_or_else(|e| panic!("the portable path failed: {e}\n{src}"));
                for ((name, w), (_, j)) in want.iter().zip(&portable) {
                    if let Some(msg) = differs(w, j, 1e-6) {
                        panic!("%{name}: interpreter vs portable JIT: {msg}\n{src}");
                    }
                }
                return;
            }
            panic!("%{name}: interpreter vs JIT: {msg}\n{src}");
        }
        (Err(_), Err(sinter_runtime::RunError::Data { .. })) => {}
        (w, j) => panic!("interpreter {w:?}, JIT {j:?}\n{src}"),
    }
}

/// The comparison tolerance for `g`, relative to `1 + max |value|` of each output tensor.
///
/// Elementwise, comparison, movement, max-pooling and random ops evaluate each element in
/// the interpreter's order (transcendental functions call the same libm symbols), so they
/// match to the last bit; `1e-6` leaves room only for a fused multiply-add. Ops that
/// accumulate (matmul, gemm, convolutions, sums, means, average pooling, softmax, batch norm)
/// sum in a different order (GEMM tiles, vector lanes): a sum of `k` terms of magnitude `m`
/// reordered moves by at most about `k * eps * k * m`; with `k <= 64` terms of inputs in
/// `[-2, 2]` that is below `1e-4` of the output scale for the shapes [`decode_graph`] builds.
pub fn tolerance(g: &Graph) -> f32 {
    use sinter_ir::OpKind as K;
    let accumulates = g.nodes().iter().filter_map(|n| n.op()).any(|op| {
        matches!(
            op.kind(),
            K::Matmul
                | K::Gemm
                | K::Conv2d
                | K::WinogradOutput
                | K::ConvTranspose2d
                | K::Conv2dWeightGrad
                | K::ReduceSum
                | K::ReduceMean
                | K::AvgPool2d
                | K::AvgPool2dGrad
                | K::GlobalAvgPool
                | K::Softmax
                | K::LogSoftmax
                | K::BatchNorm
                | K::BatchNormTrain
        )
    });
    if accumulates { 1e-4 } else { 1e-6 }
}

/// Whether `g` holds an op that can multiply relative error (`exp`, `pow`, `div`, `log`,
/// `rsqrt`) and an accumulating op whose summation order the GEMM path changes.
pub fn amplifies(g: &Graph) -> bool {
    use sinter_ir::OpKind as K;
    let any = |f: &dyn Fn(K) -> bool| {
        g.nodes()
            .iter()
            .filter_map(|n| n.op())
            .any(|op| f(op.kind()))
    };
    tolerance(g) > 1e-6 && any(&|k| matches!(k, K::Exp | K::Pow | K::Div | K::Log | K::Rsqrt))
}

/// Total elements of every value in `g`.
pub fn elements(g: &Graph) -> usize {
    g.nodes()
        .iter()
        .flat_map(|n| &n.outputs)
        .map(|o| o.ty.numel())
        .fold(0usize, usize::saturating_add)
}

/// `None` when `want` and `got` agree within `tol * (1 + max |want|)` elementwise (NaN
/// matches NaN, infinities must be equal); otherwise what differs.
pub fn differs(want: &Tensor, got: &Tensor, tol: f32) -> Option<String> {
    if want.ty() != got.ty() {
        return Some(format!("types {} vs {}", want.ty(), got.ty()));
    }
    match (want.data(), got.data()) {
        (TensorData::F32(a), TensorData::F32(b)) => {
            let scale = 1.0
                + a.iter()
                    .filter(|x| x.is_finite())
                    .fold(0f32, |m, x| m.max(x.abs()));
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                let same = (x.is_nan() && y.is_nan()) || x == y || (x - y).abs() <= tol * scale;
                if !same {
                    return Some(format!(
                        "element {i}: {x} vs {y} (tolerance {tol} x {scale})"
                    ));
                }
            }
            None
        }
        (a, b) if a == b => None,
        (a, b) => Some(format!("{a:?} vs {b:?}")),
    }
}

/// Whether evaluating `g` on `inputs` makes an intermediate `f32` value subnormal or not
/// finite: the original graph then lost precision that a rewrite may keep, so its outputs are
/// no reference. Fuzzer findings: `log(softmax x)` whose softmax underflowed to 0 gives -inf
/// where `log_softmax x` gives -2378.6 (`fuzz/corpus/optimize/issue-log-softmax-underflow.sir`),
/// and one whose softmax is 1.2e-45, a subnormal with one significant bit, gives -103.28 where
/// `log_softmax` gives the accurate -103.92 (`issue-log-softmax-subnormal.sir`). Such inputs
/// are still optimised and verified, not compared.
pub fn lost_precision(g: &Graph, inputs: &HashMap<String, Tensor>) -> bool {
    let mut all = g.clone();
    let values: Vec<sinter_ir::Value> = g
        .nodes()
        .iter()
        .enumerate()
        .filter(|(_, n)| n.op().is_some())
        .flat_map(|(i, n)| {
            (0..n.outputs.len()).map(move |k| sinter_ir::Value {
                node: sinter_ir::NodeId(i as u32),
                output: k as u32,
            })
        })
        .filter(|&v| g.ty(v).dtype == DType::F32)
        .collect();
    if all.set_outputs(&values).is_err() {
        return false;
    }
    let Ok(outs) = sinter_interp::run(&all, inputs) else {
        return false;
    };
    outs.iter().any(|(_, t)| {
        t.as_f32()
            .is_some_and(|v| v.iter().any(|x| !x.is_finite() || x.is_subnormal()))
    })
}

/// SplitMix64: deterministic inputs, so every failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        sinter_ir::rng::mix64(self.0)
    }
    fn f32(&mut self) -> f32 {
        -2.0 + 4.0 * ((self.next() >> 40) as f32 / 16_777_216.0)
    }
}

/// Random inputs for every input and parameter of `g`: f32 in `[-2, 2)`, i64 in `[-3, 3)`,
/// bools.
pub fn inputs_for(g: &Graph, seed: u64) -> HashMap<String, Tensor> {
    let mut rng = Rng(seed);
    g.inputs()
        .map(|(v, _)| {
            let ty = g.ty(v);
            let n = ty.numel();
            let data = match ty.dtype {
                DType::F32 => TensorData::F32((0..n).map(|_| rng.f32()).collect()),
                DType::I64 => {
                    TensorData::I64((0..n).map(|_| (rng.next() % 6) as i64 - 3).collect())
                }
                DType::Bool => TensorData::Bool((0..n).map(|_| rng.next() & 1 == 1).collect()),
            };
            let t = Tensor::new(&ty.shape, data).expect("sizes follow the type");
            (g.value_name(v).to_string(), t)
        })
        .collect()
}

/// Fuzz bytes read one at a time (zeros once exhausted).
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
    /// In `lo..=hi`; `lo` when the range is empty (say `0..=rank-1` of a scalar: the op is
    /// then invalid and dropped by the verifier). Fuzzer finding
    /// `fuzz/corpus/jit_diff/issue-empty-range`: a remainder by zero.
    fn int(&mut self, lo: i64, hi: i64) -> i64 {
        let b = i64::from(self.u8());
        if hi < lo { lo } else { lo + b % (hi - lo + 1) }
    }
    fn bool(&mut self) -> bool {
        self.u8() & 1 == 1
    }
    fn pick<'s>(&mut self, xs: &[&'s str]) -> &'s str {
        xs[self.u8() as usize % xs.len()]
    }
}

fn list(xs: &[i64]) -> String {
    let s: Vec<String> = xs.iter().map(i64::to_string).collect();
    format!("[{}]", s.join(", "))
}

fn dims(xs: &[usize]) -> String {
    let s: Vec<String> = xs.iter().map(usize::to_string).collect();
    s.join(",")
}

/// Decodes fuzz bytes into a small verified graph and an input seed: an input
/// `%x: f32[n,c,h,w]` then up to eight ops, each applied to the last value (with fresh inputs
/// for weights, biases and other operands) with attributes taken from the bytes: kernel sizes,
/// strides, dilations, paddings (possibly larger than the kernel), groups, axes, permutations.
/// A line the verifier rejects is dropped and decoding goes on. `None` for an empty input.
pub fn decode_graph(data: &[u8]) -> Option<(Graph, u64)> {
    if data.is_empty() || data.len() > 256 {
        return None;
    }
    let mut b = Bytes(data);
    let seed = u64::from(b.u8());
    let x = [b.int(1, 2), b.int(1, 4), b.int(1, 9), b.int(1, 9)].map(|d| d as usize);
    let mut decls = format!("  input %x: f32[{}]\n", dims(&x));
    let mut body = String::new();
    let mut cur = "x".to_string();
    let mut extra_out: Option<String> = None;
    let mut g = sinter_ir::parse(&format!("graph @fuzz {{\n{decls}  output %x\n}}")).ok()?;
    let n_ops = b.int(1, 8);
    for i in 0..n_ops {
        let shape = g.ty(g.find(&cur)?).shape.clone();
        let rank = shape.len();
        let y = format!("v{i}");
        let mut new_decls = String::new();
        let mut input = |name: &str, shape: &[usize]| {
            let _ = writeln!(new_decls, "  input %{name}: f32[{}]", dims(shape));
        };
        let line = match b.u8() % 16 {
            0 | 1 => {
                let op = b.pick(&["neg", "relu", "abs", "sigmoid", "tanh", "exp", "leaky_relu"]);
                if op == "leaky_relu" {
                    format!(
                        "%{y} = leaky_relu(%{cur}) {{alpha={}}}",
                        b.int(-4, 4) as f32 / 4.0
                    )
                } else {
                    format!("%{y} = {op}(%{cur})")
                }
            }
            2 | 3 => {
                // The other operand: the current shape with some axes broadcast (or a suffix).
                let skip = b.int(0, rank as i64) as usize;
                let other: Vec<usize> = shape[skip..]
                    .iter()
                    .map(|&d| if b.bool() { 1 } else { d })
                    .collect();
                input(&format!("o{i}"), &other);
                let op = b.pick(&["add", "sub", "mul", "max", "min"]);
                if b.bool() {
                    format!("%{y} = {op}(%{cur}, %o{i})")
                } else {
                    format!("%{y} = {op}(%o{i}, %{cur})")
                }
            }
            4 if rank == 4 => {
                let c = shape[1] as i64;
                let groups = if b.bool() { 1 } else { c };
                let m = groups * b.int(1, 3);
                let k = [b.int(1, 4), b.int(1, 4)];
                input(
                    &format!("w{i}"),
                    &[
                        m as usize,
                        (c / groups) as usize,
                        k[0] as usize,
                        k[1] as usize,
                    ],
                );
                let bias = b.bool();
                if bias {
                    input(&format!("b{i}"), &[m as usize]);
                }
                let stride = [b.int(1, 3), b.int(1, 3)];
                let pad = [b.int(0, 3), b.int(0, 3), b.int(0, 3), b.int(0, 3)];
                let dilation = [b.int(1, 2), b.int(1, 2)];
                let attrs = format!(
                    "{{stride={}, pad={}, dilation={}, groups={groups}}}",
                    list(&stride),
                    list(&pad),
                    list(&dilation),
                );
                let bias = if bias {
                    format!(", %b{i}")
                } else {
                    String::new()
                };
                let (oh, ow) = (
                    shape[2] as i64 + pad[0] + pad[2] - 2,
                    shape[3] as i64 + pad[1] + pad[3] - 2,
                );
                if k == [3, 3] && groups == 1 && oh >= 1 && ow >= 1 && b.bool() {
                    // The Winograd form of the stride-1 convolution with this padding.
                    let tile = if b.bool() { 4 } else { 2 };
                    format!(
                        "%u{i} = winograd_filter(%w{i}) {{tile={tile}}}\n  \
                         %t{i} = winograd_input(%{cur}) {{tile={tile}, pad={}}}\n  \
                         %mm{i} = matmul(%u{i}, %t{i})\n  \
                         %{y} = winograd_output(%mm{i}{bias}) {{tile={tile}, out=[{oh}, {ow}]}}",
                        list(&pad)
                    )
                } else {
                    format!("%{y} = conv2d(%{cur}, %w{i}{bias}) {attrs}")
                }
            }
            5 if rank == 4 => {
                let c = shape[1] as i64;
                let groups = if b.bool() { 1 } else { c };
                let per = b.int(1, 2);
                let k = [b.int(1, 3), b.int(1, 3)];
                input(
                    &format!("w{i}"),
                    &[c as usize, per as usize, k[0] as usize, k[1] as usize],
                );
                let stride = [b.int(1, 3), b.int(1, 3)];
                let attrs = format!(
                    "{{stride={}, pad={}, output_pad={}, dilation={}, groups={groups}}}",
                    list(&stride),
                    list(&[b.int(0, 2), b.int(0, 2), b.int(0, 2), b.int(0, 2)]),
                    list(&[b.int(0, stride[0] - 1), b.int(0, stride[1] - 1)]),
                    list(&[b.int(1, 2), b.int(1, 2)]),
                );
                format!("%{y} = conv_transpose2d(%{cur}, %w{i}) {attrs}")
            }
            6 if rank == 4 => {
                let op = b.pick(&["max_pool2d", "avg_pool2d", "global_avg_pool"]);
                let k = [b.int(1, 4), b.int(1, 4)];
                let attrs = format!(
                    "{{kernel={}, stride={}, pad={}",
                    list(&k),
                    list(&[b.int(1, 3), b.int(1, 3)]),
                    list(&[b.int(0, 2), b.int(0, 2), b.int(0, 2), b.int(0, 2)]),
                );
                match op {
                    "max_pool2d" => format!("%{y} = max_pool2d(%{cur}) {attrs}}}"),
                    "avg_pool2d" => format!(
                        "%{y} = avg_pool2d(%{cur}) {attrs}, count_include_pad={}}}",
                        b.bool()
                    ),
                    _ => format!("%{y} = global_avg_pool(%{cur})"),
                }
            }
            7 => {
                let k = *shape.last()?;
                let n = b.int(1, 9) as usize;
                let mut w = shape[..rank.saturating_sub(2)].to_vec();
                if b.bool() {
                    w.clear();
                }
                w.extend([k, n]);
                input(&format!("w{i}"), &w);
                format!("%{y} = matmul(%{cur}, %w{i})")
            }
            8 if rank == 2 => {
                let (ta, tb) = (b.bool(), b.bool());
                let (m, k) = if ta {
                    (shape[1], shape[0])
                } else {
                    (shape[0], shape[1])
                };
                let n = b.int(1, 9) as usize;
                input(&format!("w{i}"), &if tb { [n, k] } else { [k, n] });
                let c = match b.u8() % 3 {
                    0 => String::new(),
                    1 => {
                        input(&format!("c{i}"), &[n]);
                        format!(", %c{i}")
                    }
                    _ => {
                        input(&format!("c{i}"), &[m, n]);
                        format!(", %c{i}")
                    }
                };
                format!(
                    "%{y} = gemm(%{cur}, %w{i}{c}) {{trans_a={ta}, trans_b={tb}, alpha={}, beta={}}}",
                    b.int(-2, 2) as f32 / 2.0,
                    b.int(-2, 2) as f32 / 2.0
                )
            }
            8 | 9 => format!("%{y} = flatten(%{cur}) {{axis={}}}", b.int(0, rank as i64)),
            10 => {
                let op = b.pick(&["softmax", "log_softmax"]);
                format!(
                    "%{y} = {op}(%{cur}) {{axis={}}}",
                    b.int(-(rank as i64), rank as i64 - 1)
                )
            }
            11 => {
                let op = b.pick(&["reduce_sum", "reduce_mean", "reduce_max", "argmax"]);
                let r = rank as i64;
                if op == "argmax" {
                    format!(
                        "%{y} = argmax(%{cur}) {{axis={}, keepdims={}}}",
                        b.int(-r, r - 1),
                        b.bool()
                    )
                } else {
                    let axes: Vec<i64> = (0..r).filter(|_| b.bool()).collect();
                    format!(
                        "%{y} = {op}(%{cur}) {{axes={}, keepdims={}}}",
                        list(&axes),
                        b.bool()
                    )
                }
            }
            12 => {
                let mut perm: Vec<i64> = (0..rank as i64).collect();
                for j in (1..perm.len()).rev() {
                    perm.swap(j, b.u8() as usize % (j + 1));
                }
                format!("%{y} = transpose(%{cur}) {{perm={}}}", list(&perm))
            }
            13 => {
                let seed = b.int(0, 9);
                match b.u8() % 3 {
                    0 => format!(
                        "%{y} = dropout(%{cur}) {{p={}, seed={seed}}}",
                        b.int(0, 3) as f32 / 4.0
                    ),
                    1 => format!("%{y} = bernoulli(%{cur}) {{seed={seed}}}"),
                    _ => {
                        let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
                        let _ = writeln!(
                            body,
                            "  %r{i} = random_normal() {{shape={}, seed={seed}}}",
                            list(&dims)
                        );
                        format!("%{y} = add(%{cur}, %r{i})")
                    }
                }
            }
            14 => {
                let a = b.int(0, rank as i64 - 1);
                let pads: Vec<i64> = (0..2 * rank).map(|_| b.int(-1, 2)).collect();
                if b.bool() {
                    format!("%{y} = concat(%{cur}, %{cur}) {{axis={a}}}")
                } else {
                    format!(
                        "%{y} = pad(%{cur}) {{pads={}, value={}}}",
                        list(&pads),
                        b.int(-2, 2)
                    )
                }
            }
            15 if rank == 4 => {
                let c = shape[1];
                for p in ["g", "be", "m", "va"] {
                    input(&format!("{p}{i}"), &[c]);
                }
                let _ = writeln!(body, "  %av{i} = abs(%va{i})");
                format!("%{y} = batch_norm(%{cur}, %g{i}, %be{i}, %m{i}, %av{i}) {{eps=0.001}}")
            }
            _ => format!("%{y} = relu(%{cur})"),
        };
        let try_decls = format!("{decls}{new_decls}");
        let try_body = format!("{body}  {line}\n");
        let out = match &extra_out {
            Some(e) => format!("%{y}, %{e}"),
            None => format!("%{y}"),
        };
        let src = format!("graph @fuzz {{\n{try_decls}{try_body}  output {out}\n}}");
        match sinter_ir::parse(&src) {
            Ok(ng) if elements(&ng) <= MAX_RUN_ELEMENTS => {
                g = ng;
                decls = try_decls;
                body = try_body;
                if b.u8() % 4 == 0 && extra_out.is_none() {
                    extra_out = Some(y.clone());
                }
                cur = y;
            }
            _ => {
                // Drop the line; a random_normal helper written ahead of it goes too.
                body = body
                    .lines()
                    .filter(|l| !l.contains(&format!("%r{i} ")) && !l.contains(&format!("%av{i} ")))
                    .map(|l| format!("{l}\n"))
                    .collect();
            }
        }
    }
    Some((g, seed))
}
