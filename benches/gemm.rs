#![allow(missing_docs)]
// The peak-FMA probe needs `std::arch` intrinsics under `#[target_feature]` (unsafe to call).
#![allow(unsafe_code)]
//! GEMM microkernel throughput: this machine's single-core fp32 FMA peak, measured in the same
//! run, then `sinter_microkernels::sgemm` on square and convolution-shaped (im2col) problems on
//! 1 and 2 threads, reported as GFLOP/s and % of the measured peak.
//!
//! Criterion cannot express FLOPs, so every timed sample is also recorded here and a summary
//! table (median time per call, GFLOP/s, % of peak) is printed to stderr at the end.
//! `cargo bench -p sinter --bench gemm`; filter as usual (`-- gemm/512`).

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::Criterion;
use sinter_microkernels as mk;

/// One sample: wall seconds and process CPU seconds per call.
#[derive(Clone, Copy)]
struct Sample {
    wall: f64,
    cpu: f64,
}

/// FLOPs per call and every sample, by benchmark id.
type Samples = BTreeMap<String, (f64, Vec<Sample>)>;
static SAMPLES: Mutex<Samples> = Mutex::new(BTreeMap::new());

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// CPU time of the whole process (all threads, exited ones included), in seconds. The machine
/// is shared: wall time includes time when other processes held our cores, CPU time does not.
#[cfg(target_os = "linux")]
fn cpu_seconds() -> f64 {
    #[repr(C)]
    struct Timespec {
        sec: i64,
        nsec: i64,
    }
    unsafe extern "C" {
        fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
    }
    const CLOCK_PROCESS_CPUTIME_ID: i32 = 2;
    let mut ts = Timespec { sec: 0, nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is Linux's.
    let rc = unsafe { clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return f64::NAN;
    }
    ts.sec as f64 + ts.nsec as f64 * 1e-9
}

#[cfg(not(target_os = "linux"))]
fn cpu_seconds() -> f64 {
    f64::NAN
}

/// Times `iters` calls of `f` and records the per-call sample under `id`.
fn timed(id: &str, flops: f64, iters: u64, mut f: impl FnMut()) -> Duration {
    let (c0, t) = (cpu_seconds(), Instant::now());
    for _ in 0..iters {
        f();
    }
    let d = t.elapsed();
    let cpu = cpu_seconds() - c0;
    let n = iters as f64;
    let mut m = SAMPLES.lock().unwrap();
    let e = m.entry(id.to_string()).or_insert((flops, Vec::new()));
    e.1.push(Sample {
        wall: d.as_secs_f64() / n,
        cpu: cpu / n,
    });
    d
}

/// `iters` rounds of 24 independent AVX-512 FMA chains (enough to cover the FMA latency
/// at any plausible throughput); returns the FLOPs done.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn fma_chains(iters: u64) -> f64 {
    use std::arch::x86_64::*;
    let x = _mm512_set1_ps(black_box(0.999_999));
    let y = _mm512_set1_ps(black_box(1e-7));
    let mut acc = [_mm512_set1_ps(1.0); 24];
    for _ in 0..iters {
        for a in acc.iter_mut() {
            *a = _mm512_fmadd_ps(*a, x, y);
        }
    }
    let mut s = _mm512_setzero_ps();
    for a in acc {
        s = _mm512_add_ps(s, a);
    }
    black_box(s);
    (iters * 24 * 16 * 2) as f64
}

/// `iters` rounds of 12 independent AVX2 FMA chains (2 pipes x latency 4 needs 8; 12 of the
/// 16 ymm registers); returns the FLOPs done.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn fma_chains_avx2(iters: u64) -> f64 {
    use std::arch::x86_64::*;
    let x = _mm256_set1_ps(black_box(0.999_999));
    let y = _mm256_set1_ps(black_box(1e-7));
    let mut acc = [_mm256_set1_ps(1.0); 12];
    for _ in 0..iters {
        for a in acc.iter_mut() {
            *a = _mm256_fmadd_ps(*a, x, y);
        }
    }
    let mut s = _mm256_setzero_ps();
    for a in acc {
        s = _mm256_add_ps(s, a);
    }
    black_box(s);
    (iters * 12 * 8 * 2) as f64
}

/// The single-core FMA peak in GFLOP/s with the widest vectors this CPU has:
/// (vector width, median, best) over 31 runs of ~20 ms.
fn measure_peak() -> Option<(&'static str, f64, f64)> {
    #[cfg(target_arch = "x86_64")]
    {
        let avx512 = std::arch::is_x86_feature_detected!("avx512f");
        let avx2 = std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma");
        if avx512 || avx2 {
            let mut rates = Vec::new();
            for _ in 0..31 {
                let t = Instant::now();
                // SAFETY: the feature used was detected just above.
                let flops = unsafe {
                    if avx512 {
                        fma_chains(200_000)
                    } else {
                        fma_chains_avx2(400_000)
                    }
                };
                rates.push(flops / t.elapsed().as_secs_f64() / 1e9);
            }
            let best = rates.iter().cloned().fold(0.0, f64::max);
            let width = if avx512 { "AVX-512" } else { "AVX2" };
            return Some((width, median(&mut rates), best));
        }
    }
    None
}

/// Benchmark id of the microkernel-only case.
const UKERNEL: &str = "ukernel 6x32 k=KC, L1-resident";

struct Case {
    name: &'static str,
    m: usize,
    n: usize,
    k: usize,
}

const CASES: &[Case] = &[
    Case {
        name: "256^3",
        m: 256,
        n: 256,
        k: 256,
    },
    Case {
        name: "512^3",
        m: 512,
        n: 512,
        k: 512,
    },
    Case {
        name: "1024^3",
        m: 1024,
        n: 1024,
        k: 1024,
    },
    // im2col of a 3x3 conv, 64 -> 64 channels on 56x56: M = pixels, K = 3*3*64, N = 64.
    Case {
        name: "conv 3136x576x64",
        m: 3136,
        n: 64,
        k: 576,
    },
    // 3x3 conv, 128 -> 128 channels on 28x28: M = 784, K = 1152, N = 128.
    Case {
        name: "conv 784x1152x128",
        m: 784,
        n: 128,
        k: 1152,
    },
];

fn data(len: usize, seed: u32) -> Vec<f32> {
    (0..len)
        .map(|i| {
            ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) >> 20) as f32 / 4096.0 - 0.5
        })
        .collect()
}

fn gemm(c: &mut Criterion) {
    let mut g = c.benchmark_group("gemm");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1500));
    // The microkernel alone on L1-resident packed panels (k = KC), 1000 tiles per call: the
    // ceiling for the whole GEMM, free of packing and cache effects.
    {
        let (mr, nr, kc) = (mk::MR, mk::NR, mk::KC);
        let pa = data(kc * mr, 3);
        let pb = data(kc * nr, 4);
        let mut tile = vec![0.0f32; mr * nr];
        let flops = 2.0 * (mr * nr * kc * 1000) as f64;
        g.bench_function(UKERNEL, |bch| {
            bch.iter_custom(|iters| {
                timed(UKERNEL, flops, iters, || {
                    for _ in 0..1000 {
                        // SAFETY: the panels hold kc*MR and kc*NR floats; the tile is MR x NR
                        // row-major.
                        unsafe {
                            mk::ffi::sinter_ukernel(
                                mr,
                                nr,
                                kc,
                                1.0,
                                pa.as_ptr(),
                                pb.as_ptr(),
                                1.0,
                                tile.as_mut_ptr(),
                                nr as isize,
                                1,
                            )
                        }
                    }
                })
            })
        });
        black_box(&tile);
    }
    for case in CASES {
        let (m, n, k) = (case.m, case.n, case.k);
        let flops = 2.0 * (m * n * k) as f64;
        let a = data(m * k, 1);
        let b = data(k * n, 2);
        let mut out = vec![0.0f32; m * n];
        let (lda, ldb) = (k as isize, n as isize);
        for threads in [1, 2] {
            let id = format!("{} t{threads}", case.name);
            g.bench_function(id.clone(), |bch| {
                bch.iter_custom(|iters| {
                    timed(&id, flops, iters, || {
                        let c = &mut out;
                        mk::sgemm_threaded(
                            m, n, k, 1.0, &a, lda, 1, &b, ldb, 1, 0.0, c, ldb, 1, threads,
                        )
                        .unwrap()
                    })
                })
            });
        }
        if case.name.starts_with("conv") {
            // Constant weights packed once, as an inference engine would.
            let packed = mk::PackedB::new(k, n, &b, ldb, 1).unwrap();
            let id = format!("{} t1 packedB", case.name);
            g.bench_function(id.clone(), |bch| {
                bch.iter_custom(|iters| {
                    timed(&id, flops, iters, || {
                        let c = &mut out;
                        mk::sgemm_packed_b(m, 1.0, &a, lda, 1, &packed, 0.0, c, ldb, 1).unwrap()
                    })
                })
            });
        }
    }
    g.finish();
}

fn main() {
    let peak = measure_peak();
    let mut c = Criterion::default().configure_from_args();
    gemm(&mut c);
    c.final_summary();

    let (width, peak_med, peak_best) = peak.unwrap_or(("none", f64::NAN, f64::NAN));
    eprintln!();
    eprintln!(
        "GEMM summary (ISA {:?}; fp32 FMA peak, 1 core, {width}: median {peak_med:.1}, best {peak_best:.1} GFLOP/s; % of peak uses the best)",
        mk::Isa::detect()
    );
    eprintln!(
        "| shape (m x k x n) | threads | median ms (wall) | GFLOP/s (wall median) | GFLOP/s (wall best) | GFLOP/s per core (CPU time) | % of peak (CPU time) | wall speedup | CPU-time parallel efficiency |"
    );
    eprintln!("|---|---|---|---|---|---|---|---|---|");
    let samples = SAMPLES.lock().unwrap();
    let stats = |v: &[Sample]| {
        let mut wall: Vec<f64> = v.iter().map(|s| s.wall).collect();
        let best = wall.iter().cloned().fold(f64::INFINITY, f64::min);
        let mut cpu: Vec<f64> = v.iter().map(|s| s.cpu).collect();
        (median(&mut wall), best, median(&mut cpu))
    };
    if let Some((flops, v)) = samples.get(UKERNEL) {
        let (wall, best, cpu) = stats(v);
        let per_core = flops / cpu / 1e9;
        eprintln!(
            "| {UKERNEL} | t1 | {:.3} | {:.1} | {:.1} | {per_core:.1} | {:.0}% | - | - |",
            wall * 1e3,
            flops / wall / 1e9,
            flops / best / 1e9,
            100.0 * per_core / peak_best,
        );
    }
    for case in CASES {
        let base = samples
            .get(&format!("{} t1", case.name))
            .map(|(_, v)| stats(v));
        for suffix in [" t1", " t2", " t1 packedB"] {
            let id = format!("{}{suffix}", case.name);
            let Some((flops, v)) = samples.get(&id) else {
                continue;
            };
            let (wall, best, cpu) = stats(v);
            let per_core = flops / cpu / 1e9;
            let (speedup, eff) = match base {
                Some((w1, _, c1)) if suffix == " t2" => (
                    format!("{:.2}x", w1 / wall),
                    format!("{:.0}%", 100.0 * c1 / cpu),
                ),
                _ => ("-".into(), "-".into()),
            };
            eprintln!(
                "| {} ({}x{}x{}) | {} | {:.3} | {:.1} | {:.1} | {per_core:.1} | {:.0}% | {speedup} | {eff} |",
                case.name,
                case.m,
                case.k,
                case.n,
                suffix.trim(),
                wall * 1e3,
                flops / wall / 1e9,
                flops / best / 1e9,
                100.0 * per_core / peak_best,
            );
        }
    }
}
