#![allow(missing_docs)]
//! Threaded GEMM on the shapes of issues 4 and 8: `sinter_microkernels::sgemm_threaded` on 1 and
//! 2 threads for square, ResNet-18 (batch 1, im2col: M = pixels, K = 9 * C_in, N = C_out) and
//! LeNet-5 (per image: M = C_out, N = pixels, K = C_in * 25) shapes. Criterion's throughput is
//! in elements per second with one element per FLOP, so "Gelem/s" reads as GFLOP/s.
//! Whether a call splits at all is the driver's policy (small GEMMs stay on one thread).
//! `cargo bench -p sinter --bench gemm_threads`; filter as usual (`-- 3136`).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput};
use sinter_microkernels as mk;

/// (name, m, n, k); the names are `m x k x n`, as in `benches/gemm.rs`.
const SHAPES: &[(&str, usize, usize, usize)] = &[
    ("512x512x512", 512, 512, 512),
    ("1024x1024x1024", 1024, 1024, 1024),
    ("resnet 3136x576x64", 3136, 64, 576),
    ("resnet 784x1152x128", 784, 128, 1152),
    ("resnet 196x2304x256", 196, 256, 2304),
    ("resnet 49x4608x512", 49, 512, 4608),
    ("lenet 6x25x784", 6, 784, 25),
    ("lenet 16x150x100", 16, 100, 150),
];

fn data(len: usize, seed: u32) -> Vec<f32> {
    (0..len)
        .map(|i| {
            ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) >> 20) as f32 / 4096.0 - 0.5
        })
        .collect()
}

fn gemm_threads(c: &mut Criterion) {
    let mut g = c.benchmark_group("gemm_threads");
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1500));
    for &(name, m, n, k) in SHAPES {
        let a = data(m * k, 1);
        let b = data(k * n, 2);
        let mut out = vec![0.0f32; m * n];
        g.throughput(Throughput::Elements(2 * (m * n * k) as u64));
        for threads in [1, 2] {
            g.bench_function(format!("{name} t{threads}"), |bch| {
                bch.iter(|| {
                    mk::sgemm_threaded(
                        m, n, k, 1.0, &a, k as isize, 1, &b, n as isize, 1, 0.0, &mut out,
                        n as isize, 1, threads,
                    )
                    .unwrap();
                    black_box(&out);
                })
            });
        }
    }
    g.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    gemm_threads(&mut c);
    c.final_summary();
}
