//! GEMM against a naive triple loop: many shapes (edges, primes, k = 0, k > KC), every stride
//! layout of A, B and C, alpha/beta cases, every ISA path available on this CPU, threads,
//! `PackedB`, the C-ABI entries and argument errors.
//!
//! Tolerance: the reference is accumulated in f64. For an f32 sum of `k` products the rounding
//! error is bounded by `gamma_k * sum |alpha * a * b|` with `gamma_k ~ k * u`, `u = 2^-24`
//! (Higham, ch. 3), plus one rounding each for alpha and the beta term. We accept
//! `|got - ref| <= 2 * (k + 3) * u * (sum_p |alpha a_ip b_pj| + |beta c_ij|) + 1e-30`, i.e. the
//! worst-case bound with a factor of 2 to spare; real errors are far smaller, a wrong index or
//! a missing term is far larger.

// The C-ABI entries are `unsafe extern "C"`: calling them, as the JIT will, needs unsafe.
#![allow(unsafe_code)]

use sinter_microkernels::{
    Activation, Bias, ConvGeom, Epilogue, GemmError, Isa, MR, NR, PackedB, ffi, layout,
    pack_a_whole, sgemm, sgemm_conv_with_isa, sgemm_epilogue_with_isa, sgemm_packed_b,
    sgemm_packed_b_with_isa, sgemm_threaded, sgemm_with_isa,
};

/// A small deterministic generator (xorshift), values in [-1, 1).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.next()).collect()
    }
}

/// How a logical matrix is laid out in memory.
#[derive(Clone, Copy, Debug)]
enum Layout {
    RowMajor,
    ColMajor,
    /// Row-major with a padded leading dimension (cols + 3).
    Padded,
    /// Row-major with the rows in reverse order (negative row stride).
    Reversed,
    /// Column stride 2 and padded rows: nothing contiguous.
    Strided,
}
const LAYOUTS: [Layout; 5] = [
    Layout::RowMajor,
    Layout::ColMajor,
    Layout::Padded,
    Layout::Reversed,
    Layout::Strided,
];

/// Storage of a logical `rows x cols` matrix (row-major `logical`) in `layout`, filling the gaps
/// with `fill`. Returns (storage, rs, cs).
fn store(
    logical: &[f32],
    rows: usize,
    cols: usize,
    layout: Layout,
    fill: f32,
) -> (Vec<f32>, isize, isize) {
    let (r, c) = (rows as isize, cols as isize);
    let (len, rs, cs, base) = match layout {
        Layout::RowMajor => (rows * cols, c, 1, 0),
        Layout::ColMajor => (rows * cols, 1, r, 0),
        Layout::Padded => (rows * (cols + 3), c + 3, 1, 0),
        Layout::Reversed => (rows * cols, -c, 1, (r - 1).max(0) * c),
        Layout::Strided => (rows * (2 * cols + 1), 2 * c + 1, 2, 0),
    };
    let mut v = vec![fill; len];
    for i in 0..rows {
        for j in 0..cols {
            v[(base + i as isize * rs + j as isize * cs) as usize] = logical[i * cols + j];
        }
    }
    (v, rs, cs)
}

/// Reads the logical matrix back out of `layout` storage.
fn load(v: &[f32], rows: usize, cols: usize, layout: Layout) -> Vec<f32> {
    let (r, c) = (rows as isize, cols as isize);
    let (rs, cs, base) = match layout {
        Layout::RowMajor => (c, 1, 0),
        Layout::ColMajor => (1, r, 0),
        Layout::Padded => (c + 3, 1, 0),
        Layout::Reversed => (-c, 1, (r - 1).max(0) * c),
        Layout::Strided => (2 * c + 1, 2, 0),
    };
    let mut out = Vec::with_capacity(rows * cols);
    for i in 0..rows {
        for j in 0..cols {
            out.push(v[(base + i as isize * rs + j as isize * cs) as usize]);
        }
    }
    out
}

/// The naive reference in f64, and the error bound for each element.
#[allow(clippy::too_many_arguments)]
fn reference(
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: &[f32],
    b: &[f32],
    beta: f32,
    c: &[f32],
) -> (Vec<f64>, Vec<f64>) {
    let u = 2f64.powi(-24);
    let mut r = vec![0.0; m * n];
    let mut tol = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            let (mut s, mut abs) = (0.0f64, 0.0f64);
            for p in 0..k {
                let t = a[i * k + p] as f64 * b[p * n + j] as f64;
                s += t;
                abs += t.abs();
            }
            let (al, be) = (alpha as f64, beta as f64);
            let cterm = if beta == 0.0 {
                0.0
            } else {
                be * c[i * n + j] as f64
            };
            r[i * n + j] = if alpha == 0.0 { cterm } else { al * s + cterm };
            tol[i * n + j] = 2.0 * (k as f64 + 3.0) * u * (al.abs() * abs + cterm.abs()) + 1e-30;
        }
    }
    (r, tol)
}

fn assert_close(got: &[f32], want: &[f64], tol: &[f64], what: &str) {
    for (idx, ((&g, &w), &t)) in got.iter().zip(want).zip(tol).enumerate() {
        assert!(
            (g as f64 - w).abs() <= t,
            "{what}: element {idx}: got {g}, want {w} (tolerance {t:e})"
        );
    }
}

const SHAPES: &[(usize, usize, usize)] = &[
    (1, 1, 1),
    (7, 13, 17),
    (31, 33, 65),
    (8, 32, 5),
    (9, 33, 1),
    (16, 64, 40),
    (3, 2, 300), // k > KC: two k slices, beta applied once
    (1, 70, 3),
    (45, 1, 2),
    (150, 40, 9), // m > MC
    (4, 5, 0),    // k = 0: C = beta * C
    (2, 37, 100), // m <= 4: the skinny path where B is contiguous along k
    (4, 9, 20),
    (12, 16, 30), // tiles of exactly 16 columns: AVX2's half-width kernel
    (7, 48, 5),   // a full 32-column panel, then one of 16
    (0, 5, 3),
    (5, 0, 3),
];

const ALPHA_BETA: &[(f32, f32)] = &[
    (1.0, 0.0),
    (1.5, 0.75),
    (-2.0, 1.0),
    (0.0, 2.0),
    (0.5, 0.0),
    (1.0, -1.0),
];

/// Runs every layout combination of one shape on one ISA, cycling through alpha/beta cases.
fn check_shape(isa: Isa, m: usize, n: usize, k: usize, threads: usize, seed: u64) {
    let mut rng = Rng(seed);
    let (a, b, c0) = (rng.vec(m * k), rng.vec(k * n), rng.vec(m * n));
    let mut case = 0;
    for la in LAYOUTS {
        for lb in LAYOUTS {
            for lc in LAYOUTS {
                let (alpha, beta) = ALPHA_BETA[case % ALPHA_BETA.len()];
                case += 1;
                // With beta == 0, C starts as NaN: it must be overwritten, not read.
                let cin: Vec<f32> = if beta == 0.0 {
                    vec![f32::NAN; m * n]
                } else {
                    c0.clone()
                };
                let (want, tol) = reference(m, n, k, alpha, &a, &b, beta, &cin);
                let (sa, rsa, csa) = store(&a, m, k, la, f32::NAN);
                let (sb, rsb, csb) = store(&b, k, n, lb, f32::NAN);
                let (mut sc, rsc, csc) = store(&cin, m, n, lc, -7.0);
                sgemm_with_isa(
                    isa, m, n, k, alpha, &sa, rsa, csa, &sb, rsb, csb, beta, &mut sc, rsc, csc,
                    threads,
                )
                .unwrap();
                let what = format!(
                    "{isa:?} {m}x{n}x{k} A {la:?} B {lb:?} C {lc:?} alpha {alpha} beta {beta}"
                );
                assert_close(&load(&sc, m, n, lc), &want, &tol, &what);
                // The gaps of C are untouched.
                let gaps = sc.iter().filter(|&&v| v == -7.0).count();
                let expect_gaps = sc.len() - m * n;
                assert!(gaps >= expect_gaps, "{what}: wrote outside C");
            }
        }
    }
}

#[test]
fn all_shapes_layouts_and_isas() {
    let isas = Isa::available();
    assert!(isas.contains(&Isa::Portable));
    for isa in isas {
        for (s, &(m, n, k)) in SHAPES.iter().enumerate() {
            check_shape(isa, m, n, k, 1, 0x9E37_79B9_7F4A_7C15 ^ s as u64);
        }
    }
}

#[test]
fn large_shape_every_isa() {
    for isa in Isa::available() {
        let (m, n, k) = (200, 300, 150);
        let mut rng = Rng(42);
        let (a, b, c0) = (rng.vec(m * k), rng.vec(k * n), rng.vec(m * n));
        for (alpha, beta) in [(1.0, 0.0), (0.5, 2.0)] {
            let (want, tol) = reference(m, n, k, alpha, &a, &b, beta, &c0);
            for (la, lb, lc) in [
                (Layout::RowMajor, Layout::RowMajor, Layout::RowMajor),
                (Layout::ColMajor, Layout::ColMajor, Layout::ColMajor),
                (Layout::RowMajor, Layout::ColMajor, Layout::Strided),
            ] {
                let (sa, rsa, csa) = store(&a, m, k, la, 0.0);
                let (sb, rsb, csb) = store(&b, k, n, lb, 0.0);
                let (mut sc, rsc, csc) = store(&c0, m, n, lc, 0.0);
                sgemm_with_isa(
                    isa, m, n, k, alpha, &sa, rsa, csa, &sb, rsb, csb, beta, &mut sc, rsc, csc, 1,
                )
                .unwrap();
                assert_close(
                    &load(&sc, m, n, lc),
                    &want,
                    &tol,
                    &format!("{isa:?} 200x300x150 {la:?} {lb:?} {lc:?}"),
                );
            }
        }
    }
}

#[test]
fn default_path_matches_reference() {
    let (m, n, k) = (37, 61, 29);
    let mut rng = Rng(7);
    let (a, b) = (rng.vec(m * k), rng.vec(k * n));
    let mut c = vec![f32::NAN; m * n];
    sgemm(
        m, n, k, 1.0, &a, k as isize, 1, &b, n as isize, 1, 0.0, &mut c, n as isize, 1,
    )
    .unwrap();
    let (want, tol) = reference(m, n, k, 1.0, &a, &b, 0.0, &c);
    assert_close(&c, &want, &tol, "sgemm");
}

/// Threads split M (m >= n) or N; each element is computed by the same kernel in the same
/// order, so the results are bitwise equal.
#[test]
fn threaded_equals_single_thread() {
    for isa in Isa::available() {
        for (m, n, k) in [(257, 300, 129), (40, 900, 64), (300, 150, 70)] {
            let mut rng = Rng(3);
            let (a, b, c0) = (rng.vec(m * k), rng.vec(k * n), rng.vec(m * n));
            let mut c1 = c0.clone();
            sgemm_with_isa(
                isa, m, n, k, 0.5, &a, k as isize, 1, &b, n as isize, 1, 1.25, &mut c1, n as isize,
                1, 1,
            )
            .unwrap();
            for threads in [2, 3, 0] {
                let mut c2 = c0.clone();
                sgemm_with_isa(
                    isa, m, n, k, 0.5, &a, k as isize, 1, &b, n as isize, 1, 1.25, &mut c2,
                    n as isize, 1, threads,
                )
                .unwrap();
                assert!(c1 == c2, "{isa:?} {m}x{n}x{k}: {threads} threads differ");
            }
        }
    }
    // The public default path too, with a column-major C (computed transposed).
    let (m, n, k) = (130, 170, 100);
    let mut rng = Rng(5);
    let (a, b) = (rng.vec(m * k), rng.vec(k * n));
    let mut c1 = vec![0.0; m * n];
    let mut c2 = vec![0.0; m * n];
    sgemm(
        m, n, k, 1.0, &a, k as isize, 1, &b, n as isize, 1, 0.0, &mut c1, 1, m as isize,
    )
    .unwrap();
    sgemm_threaded(
        m, n, k, 1.0, &a, k as isize, 1, &b, n as isize, 1, 0.0, &mut c2, 1, m as isize, 2,
    )
    .unwrap();
    assert!(c1 == c2);
}

/// C is bit-identical on 1, 2 and 3 threads with every epilogue (bias per row and per column,
/// each activation), on shapes large enough that the split policy uses 2 and 3 threads, along
/// M and along N, with edge tiles in both directions, and with a column-major C (the
/// transposed problem).
#[test]
fn threads_bit_identical_with_epilogues() {
    let mut rng = Rng(17);
    for isa in Isa::available() {
        for (m, n, k) in [
            (301, 97, 700),
            (53, 389, 1000),
            (7, 1000, 3000),
            (1000, 7, 3000),
        ] {
            let (a, b, c0) = (rng.vec(m * k), rng.vec(k * n), rng.vec(m * n));
            let (rows, cols, mask) = (rng.vec(m), rng.vec(n), rng.vec(m * n));
            let acts = [
                Activation::None,
                Activation::Relu,
                Activation::LeakyRelu(0.1),
                Activation::Sigmoid,
                Activation::Tanh,
                Activation::Prelu(Bias::PerRow(&rows)),
                Activation::Prelu(Bias::PerCol(&cols)),
                Activation::ReluMask(&mask),
            ];
            for (case, bias) in [Bias::PerRow(&rows), Bias::PerCol(&cols)]
                .into_iter()
                .enumerate()
            {
                for act in acts {
                    let lc = [Layout::RowMajor, Layout::ColMajor][case];
                    let epilogue = Epilogue {
                        bias,
                        activation: act,
                    };
                    let run = |threads| {
                        let (mut sc, rsc, csc) = store(&c0, m, n, lc, -7.0);
                        sgemm_epilogue_with_isa(
                            isa, m, n, k, 1.5, &a, k as isize, 1, &b, n as isize, 1, -0.5, &mut sc,
                            rsc, csc, threads, &epilogue,
                        )
                        .unwrap();
                        sc.iter().map(|v| v.to_bits()).collect::<Vec<u32>>()
                    };
                    let one = run(1);
                    for threads in [2, 3] {
                        assert!(
                            run(threads) == one,
                            "{isa:?} {m}x{n}x{k} C {lc:?} {bias:?} {act:?}: {threads} threads differ"
                        );
                    }
                }
            }
        }
    }
}

/// Threaded calls from several threads at once (they share the process-wide pool) give the
/// one-thread result.
#[test]
fn concurrent_threaded_calls() {
    let (m, n, k) = (250, 120, 500);
    let mut rng = Rng(23);
    let (a, b) = (rng.vec(m * k), rng.vec(k * n));
    let gemm = |threads| {
        let mut c = vec![0.0; m * n];
        sgemm_threaded(
            m, n, k, 1.0, &a, k as isize, 1, &b, n as isize, 1, 0.0, &mut c, n as isize, 1, threads,
        )
        .unwrap();
        c
    };
    let want = gemm(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let (gemm, want) = (&gemm, &want);
                s.spawn(move || (0..20).all(|_| gemm(2 + i % 2) == *want))
            })
            .collect();
        for h in handles {
            assert!(h.join().unwrap(), "a concurrent threaded call differs");
        }
    });
}

#[test]
fn packed_b_equals_unpacked() {
    for isa in Isa::available() {
        for (m, n, k) in [
            (1, 1, 1),
            (7, 13, 17),
            (33, 70, 300),
            (200, 300, 150),
            (5, 4, 0),
        ] {
            let mut rng = Rng(11);
            let (a, b, c0) = (rng.vec(m * k), rng.vec(k * n), rng.vec(m * n));
            // Pack a transposed view of B to exercise the transposing packer.
            let (bt, rsb, csb) = store(&b, k, n, Layout::ColMajor, 0.0);
            let packed = PackedB::new(k, n, &bt, rsb, csb).unwrap();
            assert_eq!((packed.k(), packed.n()), (k, n));
            for threads in [1, 2] {
                let mut c1 = c0.clone();
                let mut c2 = c0.clone();
                sgemm_with_isa(
                    isa, m, n, k, 1.5, &a, k as isize, 1, &b, n as isize, 1, -0.5, &mut c1,
                    n as isize, 1, 1,
                )
                .unwrap();
                sgemm_packed_b_with_isa(
                    isa, m, 1.5, &a, k as isize, 1, &packed, -0.5, &mut c2, n as isize, 1, threads,
                )
                .unwrap();
                assert!(
                    c1 == c2,
                    "{isa:?} {m}x{n}x{k} threads {threads}: PackedB differs"
                );
            }
        }
    }
    // Strided C through the default entry.
    let (m, n, k) = (20, 40, 10);
    let mut rng = Rng(1);
    let (a, b) = (rng.vec(m * k), rng.vec(k * n));
    let packed = PackedB::new(k, n, &b, n as isize, 1).unwrap();
    let (mut sc, rsc, csc) = store(&vec![0.0; m * n], m, n, Layout::Strided, 0.0);
    sgemm_packed_b(m, 1.0, &a, k as isize, 1, &packed, 0.0, &mut sc, rsc, csc).unwrap();
    let (want, tol) = reference(m, n, k, 1.0, &a, &b, 0.0, &vec![0.0; m * n]);
    assert_close(
        &load(&sc, m, n, Layout::Strided),
        &want,
        &tol,
        "packed strided C",
    );
}

#[test]
fn errors_not_panics() {
    let a = vec![0.0; 12];
    let b = vec![0.0; 20];
    let mut c = vec![0.0; 15];
    // 3x4 * 4x5 = 3x5 fits exactly.
    assert!(sgemm(3, 5, 4, 1.0, &a, 4, 1, &b, 5, 1, 0.0, &mut c, 5, 1).is_ok());
    let short = |r: Result<(), GemmError>, op: &str| match r {
        Err(GemmError::SliceTooShort { operand, .. }) => assert_eq!(operand, op),
        other => panic!("expected SliceTooShort for {op}, got {other:?}"),
    };
    short(
        sgemm(3, 5, 4, 1.0, &a[..11], 4, 1, &b, 5, 1, 0.0, &mut c, 5, 1),
        "A",
    );
    short(
        sgemm(3, 5, 4, 1.0, &a, 4, 1, &b[..19], 5, 1, 0.0, &mut c, 5, 1),
        "B",
    );
    short(
        sgemm(3, 5, 4, 1.0, &a, 4, 1, &b, 5, 1, 0.0, &mut c[..14], 5, 1),
        "C",
    );
    short(
        sgemm(3, 5, 4, 1.0, &a, 5, 1, &b, 5, 1, 0.0, &mut c, 5, 1),
        "A",
    ); // wrong leading dim
    short(
        sgemm_threaded(3, 5, 4, 1.0, &a, 4, 1, &b, 5, 1, 0.0, &mut c, 6, 1, 2),
        "C",
    );
    short(PackedB::new(4, 5, &b[..10], 5, 1).map(|_| ()), "B");
    let packed = PackedB::new(4, 5, &b, 5, 1).unwrap();
    short(
        sgemm_packed_b(3, 1.0, &a[..8], 4, 1, &packed, 0.0, &mut c, 5, 1),
        "A",
    );
    // Overlapping C (zero or too-small strides).
    assert!(matches!(
        sgemm(3, 5, 4, 1.0, &a, 4, 1, &b, 5, 1, 0.0, &mut c, 0, 1),
        Err(GemmError::OverlappingOutput { .. })
    ));
    assert!(matches!(
        sgemm(3, 5, 4, 1.0, &a, 4, 1, &b, 5, 1, 0.0, &mut c, 2, 1),
        Err(GemmError::OverlappingOutput { .. })
    ));
    // Absurd strides overflow instead of wrapping.
    assert!(matches!(
        sgemm(3, 5, 4, 1.0, &a, isize::MAX, 1, &b, 5, 1, 0.0, &mut c, 5, 1),
        Err(GemmError::Overflow { .. }) | Err(GemmError::SliceTooShort { .. })
    ));
    // Messages name the operand and the numbers.
    let msg = sgemm(3, 5, 4, 1.0, &a[..11], 4, 1, &b, 5, 1, 0.0, &mut c, 5, 1)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("operand A") && msg.contains("12") && msg.contains("11"),
        "{msg}"
    );
    // Empty problems need no storage.
    assert!(sgemm(0, 0, 0, 1.0, &[], 0, 0, &[], 0, 0, 0.0, &mut [], 0, 0).is_ok());
    // A path this CPU lacks is an error, not a crash.
    for isa in Isa::ALL {
        let r = sgemm_with_isa(isa, 3, 5, 4, 1.0, &a, 4, 1, &b, 5, 1, 0.0, &mut c, 5, 1, 1);
        assert_eq!(r.is_ok(), isa.is_available());
    }
}

/// The C-ABI entries: a whole GEMM, and a hand-written loop nest over pack + ukernel, as a JIT
/// would generate.
#[test]
fn c_abi_entries() {
    let (m, n, k) = (19, 45, 23);
    let mut rng = Rng(99);
    let (a, b, c0) = (rng.vec(m * k), rng.vec(k * n), rng.vec(m * n));
    let (want, tol) = reference(m, n, k, 2.0, &a, &b, 0.5, &c0);

    let mut c = c0.clone();
    // SAFETY: the shapes and strides describe the vectors exactly; C is distinct from A and B.
    unsafe {
        ffi::sinter_sgemm(
            m,
            n,
            k,
            2.0,
            a.as_ptr(),
            k as isize,
            1,
            b.as_ptr(),
            n as isize,
            1,
            0.5,
            c.as_mut_ptr(),
            n as isize,
            1,
        )
    };
    assert_close(&c, &want, &tol, "sinter_sgemm");

    let packed = PackedB::new(k, n, &b, n as isize, 1).unwrap();
    let mut c = c0.clone();
    // SAFETY: as above; `packed` was built with the same k and n.
    unsafe {
        ffi::sinter_sgemm_prepacked(
            m,
            n,
            k,
            2.0,
            a.as_ptr(),
            k as isize,
            1,
            packed.as_ptr(),
            0,
            0,
            2,
            0.5,
            c.as_mut_ptr(),
            n as isize,
            1,
            2,
            std::ptr::null(),
            0,
            0,
            0,
            0.0,
            std::ptr::null(),
            0,
            0,
        )
    };
    assert_close(&c, &want, &tol, "sinter_sgemm_prepacked");

    // Pack everything (k <= KC), then one ukernel call per tile.
    let mut pa = vec![0.0f32; layout::packed_a_len(m, k)];
    let mut pb = vec![0.0f32; layout::packed_b_len(k, n)];
    let mut c = c0.clone();
    // SAFETY: A and B are m x k and k x n row-major; the buffers have the documented sizes;
    // every tile call stays inside C (mr, nr clipped at the edges).
    unsafe {
        ffi::sinter_pack_a(m, k, a.as_ptr(), k as isize, 1, pa.as_mut_ptr());
        ffi::sinter_pack_b(k, n, b.as_ptr(), n as isize, 1, pb.as_mut_ptr());
        for ir in (0..m).step_by(MR) {
            for jr in (0..n).step_by(NR) {
                let (mr, nr) = (MR.min(m - ir), NR.min(n - jr));
                ffi::sinter_ukernel(
                    mr,
                    nr,
                    k,
                    2.0,
                    pa.as_ptr().add(ir * k),
                    pb.as_ptr().add(jr * k),
                    0.5,
                    c.as_mut_ptr().add(ir * n + jr),
                    n as isize,
                    1,
                );
            }
        }
    }
    assert_close(&c, &want, &tol, "pack + sinter_ukernel");

    let syms = ffi::symbols();
    let mut names: Vec<_> = syms.iter().map(|s| s.0).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), syms.len());
    assert!(names.contains(&"sinter_sgemm") && names.contains(&"sinter_ukernel"));
    assert!(syms.iter().all(|s| !s.1.is_null()));
}

/// The epilogue (bias per row or per column, then each activation, a PReLU slope along the
/// other axis than the bias) on every ISA, every layout of C (the column-major one runs the
/// transposed problem, which swaps the bias and slope axes), k slices (the epilogue must run
/// once, after the last), edge tiles, k = 0 and 2 threads (each thread's share starts at its
/// own row or column of the bias and slope).
#[test]
fn epilogue_bias_and_activation() {
    let shapes: &[(usize, usize, usize)] = &[
        (7, 13, 17),
        (31, 33, 65),
        (3, 2, 300),
        (150, 40, 9),
        (64, 200, 70),
        (4, 5, 0),
    ];
    let mut rng = Rng(11);
    for isa in Isa::available() {
        for &(m, n, k) in shapes {
            let (a, b, c0) = (rng.vec(m * k), rng.vec(k * n), rng.vec(m * n));
            let (rowb, colb) = (rng.vec(m), rng.vec(n));
            let (rows, cols) = (rng.vec(m), rng.vec(n));
            let mut mask = rng.vec(m * n);
            if let Some(x) = mask.first_mut() {
                *x = f32::NAN;
            }
            for (case, lc) in LAYOUTS.into_iter().enumerate() {
                for per_row in [false, true] {
                    let slope = if per_row {
                        Bias::PerCol(&cols)
                    } else {
                        Bias::PerRow(&rows)
                    };
                    let acts = [
                        Activation::None,
                        Activation::Relu,
                        Activation::LeakyRelu(0.1),
                        Activation::Sigmoid,
                        Activation::Tanh,
                        Activation::Prelu(slope),
                        Activation::ReluMask(&mask),
                    ];
                    for act in acts {
                        let (alpha, beta) = ALPHA_BETA[case % ALPHA_BETA.len()];
                        let threads = 1 + (case % 2);
                        let (mut want, tol) = reference(m, n, k, alpha, &a, &b, beta, &c0);
                        // One more rounding for the bias, then the activation's: its slope (at most
                        // 1 here) scales the error, and it rounds once more (a few ulps for
                        // exp and tanh).
                        let mut tol = tol;
                        for i in 0..m {
                            for j in 0..n {
                                let w = &mut want[i * n + j];
                                *w += if per_row { rowb[i] } else { colb[j] } as f64;
                                let t = tol[i * n + j] + w.abs() * 2f64.powi(-23);
                                let v = *w;
                                let neg = |s: f64| if v >= 0.0 { v } else { s * v };
                                *w = match act {
                                    Activation::None => v,
                                    Activation::Relu => v.max(0.0),
                                    Activation::LeakyRelu(a) => neg(a as f64),
                                    Activation::Sigmoid => 1.0 / (1.0 + (-v).exp()),
                                    Activation::Tanh => v.tanh(),
                                    Activation::Prelu(_) => {
                                        neg(if per_row { cols[j] } else { rows[i] } as f64)
                                    }
                                    // NaN > 0 is false: masked.
                                    Activation::ReluMask(_) if mask[i * n + j] > 0.0 => v,
                                    Activation::ReluMask(_) => 0.0,
                                };
                                tol[i * n + j] = t + w.abs() * 4.0 * 2f64.powi(-23);
                            }
                        }
                        let (mut sc, rsc, csc) = store(&c0, m, n, lc, -7.0);
                        let bias = if per_row {
                            Bias::PerRow(&rowb)
                        } else {
                            Bias::PerCol(&colb)
                        };
                        sgemm_epilogue_with_isa(
                            isa,
                            m,
                            n,
                            k,
                            alpha,
                            &a,
                            k as isize,
                            1,
                            &b,
                            n as isize,
                            1,
                            beta,
                            &mut sc,
                            rsc,
                            csc,
                            threads,
                            &Epilogue {
                                bias,
                                activation: act,
                            },
                        )
                        .unwrap();
                        let what = format!(
                            "{isa:?} {m}x{n}x{k} C {lc:?} per_row {per_row} {act:?} \
                             threads {threads}"
                        );
                        assert_close(&load(&sc, m, n, lc), &want, &tol, &what);
                        let gaps = sc.iter().filter(|&&v| v == -7.0).count();
                        assert!(gaps >= sc.len() - m * n, "{what}: wrote outside C");
                    }
                }
            }
        }
    }
    // A bias shorter than C's rows (or columns) is an error, not a read past its end.
    let mut c = [0.0; 6];
    let short = [1.0, 2.0];
    for bias in [Bias::PerRow(&short), Bias::PerCol(&short)] {
        let e = sgemm_epilogue_with_isa(
            Isa::detect(),
            3,
            3,
            1,
            1.0,
            &[1.0; 3],
            1,
            1,
            &[1.0; 3],
            3,
            1,
            0.0,
            &mut c[..],
            3,
            1,
            1,
            &Epilogue {
                bias,
                activation: Activation::None,
            },
        );
        assert!(
            matches!(
                e,
                Err(GemmError::SliceTooShort {
                    operand: "bias",
                    ..
                })
            ),
            "{e:?}"
        );
        let e = sgemm_epilogue_with_isa(
            Isa::detect(),
            3,
            3,
            1,
            1.0,
            &[1.0; 3],
            1,
            1,
            &[1.0; 3],
            3,
            1,
            0.0,
            &mut c[..],
            3,
            1,
            1,
            &Epilogue {
                bias: Bias::None,
                activation: Activation::Prelu(bias),
            },
        );
        assert!(
            matches!(
                e,
                Err(GemmError::SliceTooShort {
                    operand: "slope",
                    ..
                })
            ),
            "{e:?}"
        );
    }
}

/// The skinny path (at most 4 rows of C, B contiguous along k: a batch-1 linear layer's
/// transposed weight): every row count, column counts around its 4-column blocks, k around its
/// 8-lane steps, A and C in several layouts, with and without an epilogue, on every ISA, against
/// the reference; and bit-identical on 1, 2 and 3 threads (shares are column ranges).
/// C with at most four columns and a row-major A (a Winograd product on a small image) runs
/// as the transposed skinny problem: right results with a per-row bias and a per-row prelu
/// (their strides transposed with C), for every C layout.
#[test]
fn skinny_columns_row_major_a() {
    let mut rng = Rng(31);
    for isa in Isa::available() {
        for n in 1..=4 {
            for (m, k) in [(5, 1), (37, 9), (130, 300)] {
                let (a, b, c0) = (rng.vec(m * k), rng.vec(k * n), rng.vec(m * n));
                let (rows, slopes) = (rng.vec(m), rng.vec(m));
                for (case, (lb, lc)) in [
                    (Layout::RowMajor, Layout::RowMajor),
                    (Layout::ColMajor, Layout::Padded),
                    (Layout::Strided, Layout::Reversed),
                ]
                .into_iter()
                .enumerate()
                {
                    let (alpha, beta) = ALPHA_BETA[(case + k) % ALPHA_BETA.len()];
                    let (mut want, mut tol) = reference(m, n, k, alpha, &a, &b, beta, &c0);
                    for i in 0..m {
                        for j in 0..n {
                            let w = &mut want[i * n + j];
                            *w += rows[i] as f64;
                            tol[i * n + j] += w.abs() * 2f64.powi(-22);
                            if *w < 0.0 {
                                *w *= slopes[i] as f64;
                            }
                        }
                    }
                    let (sa, rsa, csa) = store(&a, m, k, Layout::RowMajor, f32::NAN);
                    let (sb, rsb, csb) = store(&b, k, n, lb, f32::NAN);
                    let (mut sc, rsc, csc) = store(&c0, m, n, lc, -7.0);
                    let epilogue = Epilogue {
                        bias: Bias::PerRow(&rows),
                        activation: Activation::Prelu(Bias::PerRow(&slopes)),
                    };
                    sgemm_epilogue_with_isa(
                        isa,
                        m,
                        n,
                        k,
                        alpha,
                        &sa,
                        rsa,
                        csa,
                        &sb,
                        rsb,
                        csb,
                        beta,
                        &mut sc,
                        rsc,
                        csc,
                        1 + case,
                        &epilogue,
                    )
                    .unwrap();
                    let what = format!("{isa:?} {m}x{n}x{k} B {lb:?} C {lc:?}");
                    assert_close(&load(&sc, m, n, lc), &want, &tol, &what);
                }
            }
        }
    }
}

#[test]
fn skinny_rows_transposed_b() {
    let mut rng = Rng(29);
    for isa in Isa::available() {
        for m in 1..=4 {
            for n in [1, 3, 4, 5, 37] {
                for k in [1, 7, 8, 9, 300] {
                    let (a, b, c0) = (rng.vec(m * k), rng.vec(k * n), rng.vec(m * n));
                    let cols = rng.vec(n);
                    for (case, (la, lc)) in [
                        (Layout::RowMajor, Layout::RowMajor),
                        (Layout::Strided, Layout::Padded),
                        (Layout::ColMajor, Layout::Reversed),
                    ]
                    .into_iter()
                    .enumerate()
                    {
                        let (alpha, beta) = ALPHA_BETA[(case + k) % ALPHA_BETA.len()];
                        let (mut want, mut tol) = reference(m, n, k, alpha, &a, &b, beta, &c0);
                        let relu = case == 1;
                        if relu {
                            // The bias adds one rounding; relu is exact.
                            for i in 0..m {
                                for j in 0..n {
                                    let w = &mut want[i * n + j];
                                    *w += cols[j] as f64;
                                    tol[i * n + j] += w.abs() * 2f64.powi(-23);
                                    *w = w.max(0.0);
                                }
                            }
                        }
                        let (sa, rsa, csa) = store(&a, m, k, la, f32::NAN);
                        let (sb, rsb, csb) = store(&b, k, n, Layout::ColMajor, f32::NAN);
                        let (mut sc, rsc, csc) = store(&c0, m, n, lc, -7.0);
                        let epilogue = if relu {
                            Epilogue {
                                bias: Bias::PerCol(&cols),
                                activation: Activation::Relu,
                            }
                        } else {
                            Epilogue::default()
                        };
                        sgemm_epilogue_with_isa(
                            isa, m, n, k, alpha, &sa, rsa, csa, &sb, rsb, csb, beta, &mut sc, rsc,
                            csc, 1, &epilogue,
                        )
                        .unwrap();
                        let what = format!("{isa:?} {m}x{n}x{k} A {la:?} C {lc:?}");
                        assert_close(&load(&sc, m, n, lc), &want, &tol, &what);
                    }
                }
            }
        }
        // Large enough that the split policy shares the columns among 2 and 3 threads.
        let (m, n, k) = (3, 3001, 1500);
        let (a, b) = (rng.vec(m * k), rng.vec(k * n));
        let (sb, rsb, csb) = store(&b, k, n, Layout::ColMajor, 0.0);
        let cols = rng.vec(n);
        let run = |threads| {
            let mut c = vec![f32::NAN; m * n];
            sgemm_epilogue_with_isa(
                isa,
                m,
                n,
                k,
                1.0,
                &a,
                k as isize,
                1,
                &sb,
                rsb,
                csb,
                0.0,
                &mut c,
                n as isize,
                1,
                threads,
                &Epilogue {
                    bias: Bias::PerCol(&cols),
                    activation: Activation::Tanh,
                },
            )
            .unwrap();
            c.iter().map(|v| v.to_bits()).collect::<Vec<u32>>()
        };
        let one = run(1);
        for threads in [2, 3] {
            assert!(run(threads) == one, "{isa:?}: {threads} threads differ");
        }
    }
}

/// A convolution through implicit im2col equals, bit for bit, the GEMM on the explicit im2col
/// matrix (same packed values, same kernel), on every ISA, for geometries with padding,
/// stride, dilation, k > KC (several k slices) and n > NC, with a bias-and-relu epilogue, on 1
/// and 2 threads.
#[test]
fn implicit_im2col_equals_explicit() {
    let mut rng = Rng(31);
    let geoms = [
        // channels, h, w, kh, kw, stride, pad, dilation
        (3, 9, 11, 3, 3, [1, 1], [1, 1], [1, 1]),
        (2, 12, 10, 5, 5, [2, 2], [2, 2], [1, 1]),
        (25, 8, 9, 3, 3, [1, 1], [1, 1], [2, 1]),
        (1, 50, 47, 2, 3, [1, 1], [0, 4], [1, 1]),
        (64, 14, 14, 3, 3, [1, 1], [1, 1], [1, 1]),
    ];
    for isa in Isa::available() {
        for (gi, &(channels, h, w, kh, kw, stride, pad, dilation)) in geoms.iter().enumerate() {
            let out = |e: usize, k: usize, s: usize, p: usize, d: usize| {
                (e + 2 * p - d * (k - 1) - 1) / s + 1
            };
            let g = ConvGeom {
                channels,
                h,
                w,
                kh,
                kw,
                stride,
                pad,
                dilation,
                oh: out(h, kh, stride[0], pad[0], dilation[0]),
                ow: out(w, kw, stride[1], pad[1], dilation[1]),
            };
            let (m, k, n) = (7 + gi * 5, g.k(), g.n());
            let (a, x) = (rng.vec(m * k), rng.vec(g.image_len()));
            let bias = rng.vec(m);
            let col: Vec<f32> = (0..k * n).map(|i| g.element(&x, i / n, i % n)).collect();
            let epilogue = Epilogue {
                bias: Bias::PerRow(&bias),
                activation: Activation::Relu,
            };
            for threads in [1, 2] {
                let mut want = vec![f32::NAN; m * n];
                sgemm_epilogue_with_isa(
                    isa, m, n, k, 1.0, &a, k as isize, 1, &col, n as isize, 1, 0.0, &mut want,
                    n as isize, 1, threads, &epilogue,
                )
                .unwrap();
                let mut got = vec![f32::NAN; m * n];
                sgemm_conv_with_isa(
                    isa, m, 1.0, &a, k as isize, 1, &x, &g, 0.0, &mut got, n as isize, 1, threads,
                    &epilogue,
                )
                .unwrap();
                let same = want
                    .iter()
                    .zip(&got)
                    .all(|(p, q)| p.to_bits() == q.to_bits());
                assert!(same, "{isa:?} {g:?} m {m}, {threads} threads");
            }
        }
    }
    // A short image is an error, not a read past it.
    let g = ConvGeom {
        channels: 2,
        h: 4,
        w: 4,
        kh: 3,
        kw: 3,
        stride: [1, 1],
        pad: [1, 1],
        dilation: [1, 1],
        oh: 4,
        ow: 4,
    };
    let mut c = vec![0.0; 16];
    let err = sgemm_conv_with_isa(
        Isa::Portable,
        1,
        1.0,
        &[0.0; 18],
        18,
        1,
        &[0.0; 31],
        &g,
        0.0,
        &mut c,
        16,
        1,
        1,
        &Epilogue::default(),
    );
    assert!(
        matches!(err, Err(GemmError::SliceTooShort { operand: "x", .. })),
        "{err:?}"
    );
}

/// Weights packed whole ahead of time (`pack_a_whole`, as the runtime does for constant conv
/// weights) give the convolution bit for bit as packing on the fly: m not a multiple of MR,
/// m > MC (several row blocks), k > KC (several k slices), on 1, 2 and 3 threads (row and
/// column shares), through the C-ABI entry the JIT calls.
#[test]
fn prepacked_conv_weights_equal_packing_on_the_fly() {
    let mut rng = Rng(37);
    let g = ConvGeom {
        channels: 40,
        h: 15,
        w: 13,
        kh: 3,
        kw: 3,
        stride: [1, 1],
        pad: [1, 1],
        dilation: [1, 1],
        oh: 15,
        ow: 13,
    };
    let (n, k) = (g.n(), g.k());
    for m in [5, 50, 200] {
        let (a, x, bias) = (rng.vec(m * k), rng.vec(g.image_len()), rng.vec(m));
        let packed = pack_a_whole(m, k, &a, k as isize, 1).unwrap();
        assert_eq!(packed.len(), layout::packed_a_whole_len(m, k));
        let epilogue = Epilogue {
            bias: Bias::PerRow(&bias),
            activation: Activation::Relu,
        };
        let mut want = vec![f32::NAN; m * n];
        sgemm_conv_with_isa(
            Isa::detect(),
            m,
            1.0,
            &a,
            k as isize,
            1,
            &x,
            &g,
            0.0,
            &mut want,
            n as isize,
            1,
            1,
            &epilogue,
        )
        .unwrap();
        for threads in [1, 2, 3] {
            let mut got = vec![f32::NAN; m * n];
            // SAFETY: `packed` holds packed_a_whole_len(m, k) floats, the image
            // g.image_len(), C m*n row-major, the bias m values; geom is a live ConvGeom.
            unsafe {
                ffi::sinter_sgemm_conv(
                    m,
                    1.0,
                    packed.as_ptr(),
                    0,
                    0,
                    1,
                    x.as_ptr(),
                    &g,
                    0.0,
                    got.as_mut_ptr(),
                    n as isize,
                    1,
                    threads,
                    bias.as_ptr(),
                    1,
                    0,
                    1,
                    0.0,
                    std::ptr::null(),
                    0,
                    0,
                )
            };
            let same = want
                .iter()
                .zip(&got)
                .all(|(p, q)| p.to_bits() == q.to_bits());
            assert!(same, "m {m}, {threads} threads");
        }
    }
}

/// A weight gradient through the transposed implicit im2col (`flags` bit 1 of
/// `sinter_sgemm_conv`: `dw += dy * col^T`, accumulating with beta 1) equals, bit for bit, the
/// GEMM on the explicit matrix read transposed through its strides (same packed values, same
/// kernel), with k = oH*oW > KC (several slices) and n = C_in*kH*kW not a multiple of NR, on
/// 1, 2 and 3 threads.
#[test]
fn transposed_implicit_im2col_equals_explicit() {
    let mut rng = Rng(41);
    for (channels, h, w, stride, pad, dilation) in [
        (3, 17, 15, [1, 1], [1, 1], [1, 1]),
        (5, 12, 13, [2, 1], [2, 0], [1, 2]),
    ] {
        let out = |e: usize, s: usize, p: usize, d: usize| (e + 2 * p - d * 2 - 1) / s + 1;
        let g = ConvGeom {
            channels,
            h,
            w,
            kh: 3,
            kw: 3,
            stride,
            pad,
            dilation,
            oh: out(h, stride[0], pad[0], dilation[0]),
            ow: out(w, stride[1], pad[1], dilation[1]),
        };
        let (m, q, kd) = (11, g.n(), g.k());
        let (dy, x, dw0) = (rng.vec(m * q), rng.vec(g.image_len()), rng.vec(m * kd));
        // col: kd x q, row-major; B = col^T (q x kd) has strides (1, q).
        let col: Vec<f32> = (0..kd * q).map(|i| g.element(&x, i / q, i % q)).collect();
        for threads in [1, 2, 3] {
            let mut want = dw0.clone();
            sgemm_with_isa(
                Isa::detect(),
                m,
                kd,
                q,
                1.0,
                &dy,
                q as isize,
                1,
                &col,
                1,
                q as isize,
                1.0,
                &mut want,
                kd as isize,
                1,
                threads,
            )
            .unwrap();
            let mut got = dw0.clone();
            // SAFETY: dy is m x q row-major, the image g.image_len() floats, dw m x kd
            // row-major; geom is a live ConvGeom; no epilogue.
            unsafe {
                ffi::sinter_sgemm_conv(
                    m,
                    1.0,
                    dy.as_ptr(),
                    q as isize,
                    1,
                    2,
                    x.as_ptr(),
                    &g,
                    1.0,
                    got.as_mut_ptr(),
                    kd as isize,
                    1,
                    threads,
                    std::ptr::null(),
                    0,
                    0,
                    0,
                    0.0,
                    std::ptr::null(),
                    0,
                    0,
                )
            };
            let same = want
                .iter()
                .zip(&got)
                .all(|(p, r)| p.to_bits() == r.to_bits());
            assert!(same, "{g:?}: {threads} threads");
        }
    }
}
