#![allow(missing_docs)]
//! JIT kernel benchmarks: elementwise chains (GB/s against a measured copy bandwidth),
//! softmax, pooling, convolutions at ResNet/VGG layer shapes (GFLOP/s), a conv+bias+relu, and
//! the whole LeNet example. Each graph is compiled once; criterion times `Compiled::run`.
//! `SINTER_BENCH_THREADS` sets the GEMM driver's threads (default 1).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sinter::ir::{DType, Graph, Tensor, TensorData};
use sinter_runtime::{CompileOptions, Compiled};
use std::collections::HashMap;
use std::hint::black_box;

fn threads() -> usize {
    std::env::var("SINTER_BENCH_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
}

fn inputs(g: &Graph) -> HashMap<String, Tensor> {
    g.inputs()
        .map(|(v, _)| {
            let ty = g.ty(v);
            let n = ty.numel();
            let data = match ty.dtype {
                DType::F32 => TensorData::F32(
                    (0..n)
                        .map(|i| ((i * 7919) % 2003) as f32 / 1001.5 - 1.0)
                        .collect(),
                ),
                DType::I64 => TensorData::I64(vec![0; n]),
                DType::Bool => TensorData::Bool(vec![false; n]),
            };
            (
                g.value_name(v).to_string(),
                Tensor::new(&ty.shape, data).unwrap(),
            )
        })
        .collect()
}

fn compiled(src: &str, fast_math: bool) -> (Compiled, HashMap<String, Tensor>) {
    let g = sinter::ir::parse(src).expect("bench graph parses");
    let mut opts = CompileOptions::default();
    opts.lower.threads = threads();
    opts.lower.fast_math = fast_math;
    let c = Compiled::new(&g, opts).expect("compiles");
    let i = inputs(&g);
    (c, i)
}

fn bench_graph(c: &mut Criterion, name: &str, src: &str, fast_math: bool, tp: Throughput) {
    let (exe, ins) = compiled(src, fast_math);
    let mut grp = c.benchmark_group("jit");
    grp.throughput(tp);
    grp.bench_function(name, |b| b.iter(|| black_box(exe.run(&ins).expect("runs"))));
    grp.finish();
}

/// The machine's streaming bandwidth in the same run: copying a 64 MiB buffer.
fn bandwidth(c: &mut Criterion) {
    let n = 16 << 20;
    let src = vec![1.0f32; n];
    let mut dst = vec![0.0f32; n];
    let mut grp = c.benchmark_group("bandwidth");
    grp.throughput(Throughput::Bytes((8 * n) as u64));
    grp.bench_function("copy_64MiB", |b| {
        b.iter(|| {
            dst.copy_from_slice(black_box(&src));
            black_box(&dst);
        })
    });
    grp.finish();
}

fn elementwise(c: &mut Criterion) {
    let n = 4 << 20;
    // Reads x and b, writes y: 12 bytes per element.
    let src = format!(
        "graph @chain {{ input %x: f32[{n}]  input %b: f32[{n}]
           %a = mul(%x, %b) %s = add(%a, %x) %r = relu(%s) %m = max(%r, %b) %y = mul(%m, %x)
           output %y }}"
    );
    bench_graph(
        c,
        "elementwise_chain5_4M",
        &src,
        false,
        Throughput::Bytes(12 * n as u64),
    );
    let src = format!("graph @sig {{ input %x: f32[{n}]  %s = sigmoid(%x)  output %s }}");
    bench_graph(
        c,
        "sigmoid_fast_4M",
        &src,
        true,
        Throughput::Bytes(8 * n as u64),
    );
}

fn softmax_pool(c: &mut Criterion) {
    let src = "graph @sm { input %x: f32[256,1000]  %s = softmax(%x)  output %s }";
    bench_graph(
        c,
        "softmax_256x1000",
        src,
        true,
        Throughput::Bytes(8 * 256 * 1000),
    );
    let src = "graph @sm { input %x: f32[256,1000]  %s = softmax(%x)  output %s }";
    bench_graph(
        c,
        "softmax_exact_256x1000",
        src,
        false,
        Throughput::Bytes(8 * 256 * 1000),
    );
    for (name, axes) in [
        ("reduce_sum_last_256x1000", "[1]"),
        ("reduce_sum_first_256x1000", "[0]"),
        ("reduce_max_last_256x1000", "[1]"),
    ] {
        let op = if name.starts_with("reduce_max") {
            "reduce_max"
        } else {
            "reduce_sum"
        };
        let src = format!(
            "graph @r {{ input %x: f32[256,1000]  %s = {op}(%x) {{axes={axes}}}  output %s }}"
        );
        bench_graph(c, name, &src, false, Throughput::Bytes(4 * 256 * 1000));
    }
    let src = "graph @mp2 { input %x: f32[64,6,28,28]
        %p = max_pool2d(%x) {kernel=[2, 2], stride=[2, 2]}  output %p }";
    bench_graph(
        c,
        "maxpool2x2s2_64x6x28x28",
        src,
        false,
        Throughput::Bytes(4 * 64 * 6 * 28 * 28),
    );
    let src = "graph @ap { input %x: f32[1,64,112,112]
        %p = avg_pool2d(%x) {kernel=[3, 3], stride=[2, 2], pad=[1, 1, 1, 1]}  output %p }";
    bench_graph(
        c,
        "avgpool3x3s2_64x112x112",
        src,
        false,
        Throughput::Bytes(4 * 64 * 112 * 112),
    );
    let src = "graph @mp { input %x: f32[1,64,112,112]
        %p = max_pool2d(%x) {kernel=[3, 3], stride=[2, 2], pad=[1, 1, 1, 1]}  output %p }";
    bench_graph(
        c,
        "maxpool3x3s2_64x112x112",
        src,
        false,
        Throughput::Bytes(4 * 64 * 112 * 112),
    );
}

fn conv(c: &mut Criterion) {
    // (name, C_in, H, C_out, k, stride, pad)
    let shapes = [
        ("resnet_conv3x3_64x56x56", 64, 56, 64, 3, 1, 1),
        ("resnet_conv1x1_256x56x56_to_64", 256, 56, 64, 1, 1, 0),
        ("resnet_conv3x3_256x14x14", 256, 14, 256, 3, 1, 1),
        ("vgg_conv3x3_128x56x56_to_128", 128, 56, 128, 3, 1, 1),
    ];
    for (name, ci, h, co, k, s, p) in shapes {
        let oh = (h + 2 * p - k) / s + 1;
        let flops = 2 * co * oh * oh * ci * k * k;
        let src = format!(
            "graph @c {{ input %x: f32[1,{ci},{h},{h}]  input %w: f32[{co},{ci},{k},{k}]
               %y = conv2d(%x, %w) {{stride=[{s}, {s}], pad=[{p}, {p}, {p}, {p}]}}  output %y }}"
        );
        bench_graph(c, name, &src, false, Throughput::Elements(flops as u64));
    }
    let src = "graph @cbr { input %x: f32[1,64,56,56]  input %w: f32[64,64,3,3]  input %b: f32[64]
        %y = conv2d(%x, %w, %b) {pad=[1, 1, 1, 1]}  %r = relu(%y)  output %r }";
    let flops = 2 * 64 * 56 * 56 * 64 * 9;
    bench_graph(
        c,
        "conv3x3_bias_relu_64x56x56",
        src,
        false,
        Throughput::Elements(flops as u64),
    );
}

fn lenet(c: &mut Criterion) {
    let g = sinter::ir::parse(include_str!("../ir-spec/examples/lenet.sir")).expect("lenet parses");
    let mut opts = CompileOptions::default();
    opts.lower.threads = threads();
    let exe = Compiled::new(&g, opts).expect("compiles");
    let ins = inputs(&g);
    c.bench_function("jit/lenet_batch16", |b| {
        b.iter(|| black_box(exe.run(&ins).expect("runs")))
    });
    c.bench_function("jit/lenet_compile", |b| {
        b.iter(|| black_box(Compiled::new(&g, CompileOptions::default()).expect("compiles")))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).warm_up_time(std::time::Duration::from_millis(500)).measurement_time(std::time::Duration::from_secs(2));
    targets = bandwidth, elementwise, softmax_pool, conv, lenet
}
criterion_main!(benches);
