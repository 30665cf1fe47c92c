//! Quick kernel timings without criterion: `cargo run -p sinter-runtime --profile test
//! --example kernel_times [THREADS]`. Prints the median of 15 runs after 3 warm-ups for an
//! elementwise chain, softmax, max pooling, a 512^3 matmul and a conv3x3+bias+relu, with GB/s
//! or GFLOP/s. `benches/kernels.rs` is the criterion version.

use sinter_ir::{DType, Tensor, TensorData};
use sinter_runtime::{CompileOptions, Compiled};
use std::collections::HashMap;
use std::time::{Duration, Instant};

fn main() {
    let threads: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let n = 4 << 20;
    let cases: Vec<(&str, String, f64, &str)> = vec![
        (
            "copy-like chain of 5 elementwise ops, 4M f32",
            format!("graph @c {{ input %x: f32[{n}] input %b: f32[{n}] %a = mul(%x, %b) %s = add(%a, %x) %r = relu(%s) %m = max(%r, %b) %y = mul(%m, %x) output %y }}"),
            12.0 * n as f64,
            "GB/s",
        ),
        (
            "softmax 256x1000 (fast exp)",
            "graph @s { input %x: f32[256,1000] %s = softmax(%x) output %s }".into(),
            8.0 * 256.0 * 1000.0,
            "GB/s",
        ),
        (
            "max_pool 3x3 s2 on 64x112x112",
            "graph @p { input %x: f32[1,64,112,112] %p = max_pool2d(%x) {kernel=[3, 3], stride=[2, 2], pad=[1, 1, 1, 1]} output %p }".into(),
            4.0 * 64.0 * 112.0 * 112.0,
            "GB/s",
        ),
        (
            "matmul 512^3",
            "graph @m { input %a: f32[512,512] input %b: f32[512,512] %c = matmul(%a, %b) output %c }".into(),
            2.0 * 512f64.powi(3),
            "GFLOP/s",
        ),
        (
            "conv3x3 64->64 on 56x56 + bias + relu",
            "graph @c { input %x: f32[1,64,56,56] input %w: f32[64,64,3,3] input %b: f32[64] %y = conv2d(%x, %w, %b) {pad=[1, 1, 1, 1]} %r = relu(%y) output %r }".into(),
            2.0 * 64.0 * 56.0 * 56.0 * 64.0 * 9.0,
            "GFLOP/s",
        ),
        (
            "conv1x1 256->64 on 56x56",
            "graph @c { input %x: f32[1,256,56,56] input %w: f32[64,256,1,1] %y = conv2d(%x, %w) output %y }".into(),
            2.0 * 64.0 * 56.0 * 56.0 * 256.0,
            "GFLOP/s",
        ),
    ];
    for (name, src, work, unit) in cases {
        let g = sinter_ir::parse(&src).unwrap();
        let mut opts = CompileOptions::default();
        opts.lower.fast_math = true;
        opts.lower.threads = threads;
        let t0 = Instant::now();
        let c = Compiled::new(&g, opts).unwrap();
        let compile = t0.elapsed();
        let inputs: HashMap<String, Tensor> = c
            .inputs()
            .iter()
            .map(|(name, ty)| {
                let n = ty.numel();
                let d = match ty.dtype {
                    DType::F32 => TensorData::F32(
                        (0..n)
                            .map(|i| ((i * 7919) % 2003) as f32 / 1001.5 - 1.0)
                            .collect(),
                    ),
                    DType::I64 => TensorData::I64(vec![0; n]),
                    DType::Bool => TensorData::Bool(vec![false; n]),
                };
                (name.clone(), Tensor::new(&ty.shape, d).unwrap())
            })
            .collect();
        for _ in 0..3 {
            c.run(&inputs).unwrap();
        }
        let mut times: Vec<Duration> = Vec::new();
        let mut kernel: Vec<Vec<Duration>> = Vec::new();
        for _ in 0..15 {
            let mut t = Vec::new();
            let t0 = Instant::now();
            c.run_profiled(&inputs, Some(&mut t)).unwrap();
            times.push(t0.elapsed());
            kernel.push(t);
        }
        times.sort();
        let med = times[times.len() / 2];
        let kernels: Duration = {
            let mut ks: Vec<Duration> = kernel.iter().map(|t| t.iter().sum()).collect();
            ks.sort();
            ks[ks.len() / 2]
        };
        let rate = work / kernels.as_secs_f64() / 1e9;
        println!(
            "{name}: run {:.3} ms (kernels {:.3} ms), {rate:.1} {unit}, compile {:.1} ms, {} kernel(s)",
            med.as_secs_f64() * 1e3,
            kernels.as_secs_f64() * 1e3,
            compile.as_secs_f64() * 1e3,
            c.kernel_names().len()
        );
    }
}
