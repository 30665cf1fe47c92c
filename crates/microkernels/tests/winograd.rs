//! Winograd transforms F(2x2, 3x3) and F(4x4, 3x3): the whole pipeline (filter transform,
//! input transform, per-point products, output transform) against a direct convolution in
//! f64, the transforms against their matrix definitions, every ISA path against the portable
//! one and every thread count against one thread (bit for bit), the C-ABI entries, and
//! argument errors.
//!
//! Tolerance: over the 126 shapes of `pipeline_matches_direct_convolution` (`c` up to 19,
//! values in [-1, 1), the per-point products exact to f32 rounding), the largest
//! `max |y - y_ref| / max |y_ref|` measured was 1.5e-7 for m = 2 and 3.8e-6 for m = 4 (most
//! cases 1e-6 to 2.5e-6; F(4,3)'s input and output transforms have entries up to 5 and 8, so
//! its intermediate values are up to ~100x and ~360x the data, and rounding them costs that
//! much more; an exact filter transform only brings 3.8e-6 down to 2.7e-6). The test asserts
//! 5e-7 and 1e-5, about three times the measured error; a wrong index, sign or coefficient is
//! off by far more (changing AT's 8 to 7.99 gives 7e-3).

// The C-ABI entries are `unsafe extern "C"`: calling them, as the JIT will, needs unsafe.
#![allow(unsafe_code)]

use sinter_microkernels::winograd::{output_extent, points, tile_count, tiles};
use sinter_microkernels::{
    Activation, Bias, Isa, WinogradError, ffi, filter_transform, filter_transform_with_isa,
    input_transform, input_transform_with_isa, output_transform, output_transform_with_isa,
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
    fn below(&mut self, n: usize) -> usize {
        ((self.next() * 0.5 + 0.5) * n as f32) as usize % n
    }
    fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.next()).collect()
    }
}

/// One convolution: the input's shape, the output channels and the padding.
#[derive(Clone, Copy, Debug)]
struct Case {
    n: usize,
    c: usize,
    co: usize,
    h: usize,
    w: usize,
    pad: [usize; 4],
}

impl Case {
    fn out(&self) -> (usize, usize) {
        output_extent(self.h, self.w, self.pad).unwrap()
    }
    fn p(&self, m: usize) -> usize {
        let (oh, ow) = self.out();
        tile_count(m, self.n, oh, ow).unwrap()
    }
}

/// The direct convolution (cross-correlation) plus bias, in f64: `[n, co, oh, ow]`.
fn direct(k: &Case, x: &[f32], wt: &[f32], bias: Option<&[f32]>) -> Vec<f64> {
    let (oh, ow) = k.out();
    let mut y = vec![0.0f64; k.n * k.co * oh * ow];
    for n in 0..k.n {
        for o in 0..k.co {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut s = bias.map_or(0.0, |b| b[o] as f64);
                    for c in 0..k.c {
                        for ky in 0..3 {
                            for kx in 0..3 {
                                let iy = (oy + ky) as isize - k.pad[0] as isize;
                                let ix = (ox + kx) as isize - k.pad[1] as isize;
                                if iy < 0 || ix < 0 || iy >= k.h as isize || ix >= k.w as isize {
                                    continue;
                                }
                                let xv = x[((n * k.c + c) * k.h + iy as usize) * k.w + ix as usize];
                                let wv = wt[((o * k.c + c) * 3 + ky) * 3 + kx];
                                s += xv as f64 * wv as f64;
                            }
                        }
                    }
                    y[((n * k.co + o) * oh + oy) * ow + ox] = s;
                }
            }
        }
    }
    y
}

/// `M[t] = U[t] V[t]` for every point, accumulated in f64 and rounded once.
fn products(m: usize, k: &Case, u: &[f32], v: &[f32]) -> Vec<f32> {
    let (t_n, p_n) = (points(m), k.p(m));
    let mut out = vec![0.0f32; t_n * k.co * p_n];
    for t in 0..t_n {
        for o in 0..k.co {
            for p in 0..p_n {
                let mut s = 0.0f64;
                for c in 0..k.c {
                    s += u[(t * k.co + o) * k.c + c] as f64 * v[(t * k.c + c) * p_n + p] as f64;
                }
                out[(t * k.co + o) * p_n + p] = s as f32;
            }
        }
    }
    out
}

fn act_ref(a: Activation<'_>, v: f64) -> f64 {
    match a {
        Activation::None => v,
        Activation::Relu => v.max(0.0),
        Activation::LeakyRelu(s) => {
            if v >= 0.0 {
                v
            } else {
                s as f64 * v
            }
        }
        Activation::Sigmoid => 1.0 / (1.0 + (-v).exp()),
        Activation::Tanh => v.tanh(),
        _ => unreachable!(),
    }
}

const ACTS: [Activation<'static>; 5] = [
    Activation::None,
    Activation::Relu,
    Activation::LeakyRelu(0.1),
    Activation::Sigmoid,
    Activation::Tanh,
];

/// The measured error bound relative to `max |y|` (see the module docs).
fn tolerance(m: usize) -> f64 {
    if m == 2 { 5e-7 } else { 1e-5 }
}

/// The whole pipeline through the safe API on the detected path.
#[allow(clippy::too_many_arguments)]
fn pipeline(
    m: usize,
    k: &Case,
    x: &[f32],
    wt: &[f32],
    bias: Option<&[f32]>,
    act: Activation<'_>,
    threads: usize,
) -> Vec<f32> {
    let (oh, ow) = k.out();
    let t_n = points(m);
    let mut u = vec![f32::NAN; t_n * k.co * k.c];
    filter_transform(m, wt, k.co, k.c, &mut u, threads).unwrap();
    let mut v = vec![f32::NAN; t_n * k.c * k.p(m)];
    input_transform(m, x, k.n, k.c, k.h, k.w, k.pad, &mut v, threads).unwrap();
    let mm = products(m, k, &u, &v);
    let mut y = vec![f32::NAN; k.n * k.co * oh * ow];
    output_transform(m, &mm, k.n, k.co, oh, ow, bias, act, &mut y, threads).unwrap();
    y
}

fn random_case(r: &mut Rng) -> Case {
    loop {
        let k = Case {
            n: 1 + r.below(3),
            c: 1 + r.below(19),
            co: 1 + r.below(19),
            h: 1 + r.below(20),
            w: 1 + r.below(20),
            pad: [r.below(3), r.below(3), r.below(3), r.below(3)],
        };
        if output_extent(k.h, k.w, k.pad).is_some() {
            return k;
        }
    }
}

#[test]
fn pipeline_matches_direct_convolution() {
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    let mut worst = [0.0f64; 2];
    let mut cases: Vec<Case> = (0..120).map(|_| random_case(&mut r)).collect();
    // Edges: 1x1 images (padding makes the output), a single-row output, exact tile fits.
    cases.extend([
        Case {
            n: 1,
            c: 1,
            co: 1,
            h: 1,
            w: 1,
            pad: [1, 1, 1, 1],
        },
        Case {
            n: 2,
            c: 3,
            co: 2,
            h: 1,
            w: 1,
            pad: [2, 2, 2, 2],
        },
        Case {
            n: 1,
            c: 9,
            co: 17,
            h: 1,
            w: 20,
            pad: [1, 0, 1, 0],
        },
        Case {
            n: 1,
            c: 2,
            co: 3,
            h: 6,
            w: 6,
            pad: [0, 0, 0, 0],
        },
        Case {
            n: 1,
            c: 2,
            co: 3,
            h: 18,
            w: 18,
            pad: [1, 1, 1, 1],
        },
        Case {
            n: 3,
            c: 1,
            co: 1,
            h: 3,
            w: 3,
            pad: [0, 0, 0, 0],
        },
    ]);
    for (idx, k) in cases.iter().enumerate() {
        let x = r.vec(k.n * k.c * k.h * k.w);
        let wt = r.vec(k.co * k.c * 9);
        let b = r.vec(k.co);
        let bias = (idx % 2 == 1).then_some(b.as_slice());
        let act = ACTS[idx % ACTS.len()];
        let threads = 1 + idx % 3;
        let y_ref = direct(k, &x, &wt, bias);
        let scale = y_ref.iter().fold(0.0f64, |s, v| s.max(v.abs())).max(1e-30);
        for (mi, m) in [2, 4].into_iter().enumerate() {
            let y = pipeline(m, k, &x, &wt, bias, act, threads);
            let err = y
                .iter()
                .zip(&y_ref)
                .map(|(&g, &e)| (g as f64 - act_ref(act, e)).abs())
                .fold(0.0f64, f64::max)
                / scale;
            if matches!(act, Activation::None) {
                worst[mi] = worst[mi].max(err);
            }
            assert!(
                err <= tolerance(m),
                "m={m} {k:?} bias={} act={act:?}: relative error {err:e}",
                bias.is_some()
            );
        }
    }
    eprintln!(
        "max relative error (no activation): m=2 {:.2e}, m=4 {:.2e}",
        worst[0], worst[1]
    );
}

/// Row-major `a x b` times `b x c` in f64.
fn matmul(a: &[f64], b: &[f64], rows: usize, inner: usize, cols: usize) -> Vec<f64> {
    let mut out = vec![0.0; rows * cols];
    for i in 0..rows {
        for j in 0..cols {
            out[i * cols + j] = (0..inner).map(|p| a[i * inner + p] * b[p * cols + j]).sum();
        }
    }
    out
}

fn transpose(a: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    let mut out = vec![0.0; rows * cols];
    for i in 0..rows {
        for j in 0..cols {
            out[j * rows + i] = a[i * cols + j];
        }
    }
    out
}

/// The contract's matrices `(BT, G, AT)`, row-major.
fn matrices(m: usize) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    if m == 2 {
        (
            vec![
                1., 0., -1., 0., 0., 1., 1., 0., 0., -1., 1., 0., 0., 1., 0., -1.,
            ],
            vec![1., 0., 0., 0.5, 0.5, 0.5, 0.5, -0.5, 0.5, 0., 0., 1.],
            vec![1., 1., 1., 0., 0., 1., -1., -1.],
        )
    } else {
        (
            vec![
                4., 0., -5., 0., 1., 0., //
                0., -4., -4., 1., 1., 0., //
                0., 4., -4., -1., 1., 0., //
                0., -2., -1., 2., 1., 0., //
                0., 2., -1., -2., 1., 0., //
                0., 4., 0., -5., 0., 1.,
            ],
            vec![
                1. / 4.,
                0.,
                0.,
                -1. / 6.,
                -1. / 6.,
                -1. / 6.,
                -1. / 6.,
                1. / 6.,
                -1. / 6.,
                1. / 24.,
                1. / 12.,
                1. / 6.,
                1. / 24.,
                -1. / 12.,
                1. / 6.,
                0.,
                0.,
                1.,
            ],
            vec![
                1., 1., 1., 1., 1., 0., //
                0., 1., -1., 2., -2., 0., //
                0., 1., 1., 4., 4., 0., //
                0., 1., -1., 8., -8., 1.,
            ],
        )
    }
}

/// Each transform against its definition with the contract's matrices, element by element
/// in the contract's layouts (U[t, co, ci], V[t, c, p], y[n, co, oy, ox]).
#[test]
fn transforms_match_matrix_definitions() {
    let mut r = Rng(42);
    for m in [2, 4] {
        let a = m + 2;
        let (bt, g, at) = matrices(m);
        let (b_m, g_t, a_t) = (
            transpose(&bt, a, a),
            transpose(&g, a, 3),
            transpose(&at, m, a),
        );
        let k = Case {
            n: 2,
            c: 3,
            co: 5,
            h: 9,
            w: 11,
            pad: [1, 2, 0, 1],
        };
        let (oh, ow) = k.out();
        let (th, tw, p_n) = (tiles(oh, m), tiles(ow, m), k.p(m));
        let x = r.vec(k.n * k.c * k.h * k.w);
        let wt = r.vec(k.co * k.c * 9);
        let close = |got: f32, want: f64, what: &str| {
            assert!(
                (got as f64 - want).abs() <= 1e-5 * (1.0 + want.abs()),
                "m={m} {what}: {got} vs {want}"
            );
        };

        let mut u = vec![0.0; points(m) * k.co * k.c];
        filter_transform(m, &wt, k.co, k.c, &mut u, 1).unwrap();
        for o in 0..k.co {
            for c in 0..k.c {
                let gf: Vec<f64> = wt[(o * k.c + c) * 9..][..9]
                    .iter()
                    .map(|&v| v as f64)
                    .collect();
                let want = matmul(&matmul(&g, &gf, a, 3, 3), &g_t, a, 3, a);
                for t in 0..a * a {
                    close(u[(t * k.co + o) * k.c + c], want[t], "U");
                }
            }
        }

        let mut v = vec![0.0; points(m) * k.c * p_n];
        input_transform(m, &x, k.n, k.c, k.h, k.w, k.pad, &mut v, 1).unwrap();
        for n in 0..k.n {
            for c in 0..k.c {
                for ti in 0..th {
                    for tj in 0..tw {
                        let p = (n * th + ti) * tw + tj;
                        let d: Vec<f64> = (0..a * a)
                            .map(|e| {
                                let iy = (ti * m + e / a) as isize - k.pad[0] as isize;
                                let ix = (tj * m + e % a) as isize - k.pad[1] as isize;
                                if iy < 0 || ix < 0 || iy >= k.h as isize || ix >= k.w as isize {
                                    0.0
                                } else {
                                    x[((n * k.c + c) * k.h + iy as usize) * k.w + ix as usize]
                                        as f64
                                }
                            })
                            .collect();
                        let want = matmul(&matmul(&bt, &d, a, a, a), &b_m, a, a, a);
                        for t in 0..a * a {
                            close(v[(t * k.c + c) * p_n + p], want[t], "V");
                        }
                    }
                }
            }
        }

        let mm = r.vec(points(m) * k.co * p_n);
        let mut y = vec![0.0; k.n * k.co * oh * ow];
        output_transform(m, &mm, k.n, k.co, oh, ow, None, Activation::None, &mut y, 1).unwrap();
        for n in 0..k.n {
            for o in 0..k.co {
                for ti in 0..th {
                    for tj in 0..tw {
                        let p = (n * th + ti) * tw + tj;
                        let mt: Vec<f64> = (0..a * a)
                            .map(|t| mm[(t * k.co + o) * p_n + p] as f64)
                            .collect();
                        let want = matmul(&matmul(&at, &mt, m, a, a), &a_t, m, a, m);
                        for rr in 0..m {
                            for s in 0..m {
                                let (oy, ox) = (ti * m + rr, tj * m + s);
                                if oy < oh && ox < ow {
                                    close(
                                        y[((n * k.co + o) * oh + oy) * ow + ox],
                                        want[rr * m + s],
                                        "y",
                                    );
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// All three transforms on `isa` with `threads`: (U, V, y).
#[allow(clippy::too_many_arguments)]
fn run_all(
    isa: Isa,
    m: usize,
    k: &Case,
    x: &[f32],
    wt: &[f32],
    mm: &[f32],
    bias: &[f32],
    threads: usize,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (oh, ow) = k.out();
    let mut u = vec![f32::NAN; points(m) * k.co * k.c];
    filter_transform_with_isa(isa, m, wt, k.co, k.c, &mut u, threads).unwrap();
    let mut v = vec![f32::NAN; points(m) * k.c * k.p(m)];
    input_transform_with_isa(isa, m, x, k.n, k.c, k.h, k.w, k.pad, &mut v, threads).unwrap();
    let mut y = vec![f32::NAN; k.n * k.co * oh * ow];
    output_transform_with_isa(
        isa,
        m,
        mm,
        k.n,
        k.co,
        oh,
        ow,
        Some(bias),
        Activation::LeakyRelu(0.25),
        &mut y,
        threads,
    )
    .unwrap();
    (u, v, y)
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Every available path and thread count gives the portable single-thread bits. The shapes
/// are large enough that 2 and 3 threads really split the work, and include ragged tile
/// rows, channel counts that are not multiples of 8, one-tile-wide images, and many small
/// planes (whose staged tile rows span planes and whose shares start mid-image).
#[test]
fn isa_paths_and_thread_counts_are_bit_identical() {
    let mut r = Rng(7);
    let cases = [
        Case {
            n: 2,
            c: 16,
            co: 64,
            h: 37,
            w: 41,
            pad: [1, 1, 1, 1],
        },
        Case {
            n: 3,
            c: 13,
            co: 21,
            h: 5,
            w: 70,
            pad: [2, 0, 1, 2],
        },
        Case {
            n: 1,
            c: 11,
            co: 9,
            h: 23,
            w: 1,
            pad: [0, 1, 2, 1],
        },
        Case {
            n: 2,
            c: 300,
            co: 33,
            h: 9,
            w: 9,
            pad: [1, 1, 1, 1],
        },
    ];
    for k in &cases {
        let x = r.vec(k.n * k.c * k.h * k.w);
        let wt = r.vec(k.co * k.c * 9);
        let bias = r.vec(k.co);
        for m in [2, 4] {
            let mm = r.vec(points(m) * k.co * k.p(m));
            let base = run_all(Isa::Portable, m, k, &x, &wt, &mm, &bias, 1);
            assert!(
                base.0
                    .iter()
                    .chain(&base.1)
                    .chain(&base.2)
                    .all(|v| v.is_finite())
            );
            for isa in Isa::available() {
                for threads in [1, 2, 3] {
                    let got = run_all(isa, m, k, &x, &wt, &mm, &bias, threads);
                    let what = format!("m={m} {k:?} {isa:?} threads={threads}");
                    assert_eq!(bits(&got.0), bits(&base.0), "U, {what}");
                    assert_eq!(bits(&got.1), bits(&base.1), "V, {what}");
                    assert_eq!(bits(&got.2), bits(&base.2), "y, {what}");
                }
            }
        }
    }
}

/// The C-ABI entries compute what the safe API computes, and are registered.
#[test]
fn c_abi_entries_match_the_safe_api() {
    let mut r = Rng(99);
    let k = Case {
        n: 2,
        c: 5,
        co: 7,
        h: 13,
        w: 10,
        pad: [1, 2, 1, 0],
    };
    let (oh, ow) = k.out();
    let x = r.vec(k.n * k.c * k.h * k.w);
    let wt = r.vec(k.co * k.c * 9);
    let bias = r.vec(k.co);
    for m in [2, 4] {
        let mm = r.vec(points(m) * k.co * k.p(m));
        for (code, act) in [
            (0u8, Activation::None),
            (1, Activation::Relu),
            (2, Activation::LeakyRelu(0.3)),
            (3, Activation::Sigmoid),
            (4, Activation::Tanh),
        ] {
            let mut u = vec![0.0; points(m) * k.co * k.c];
            let mut v = vec![0.0; points(m) * k.c * k.p(m)];
            let mut y = vec![0.0; k.n * k.co * oh * ow];
            // SAFETY: every buffer has the length the entries' contracts require.
            unsafe {
                ffi::sinter_winograd_filter(m, wt.as_ptr(), k.co, k.c, u.as_mut_ptr(), 2, 0);
                ffi::sinter_winograd_input(
                    m,
                    x.as_ptr(),
                    k.n,
                    k.c,
                    k.h,
                    k.w,
                    k.pad[0],
                    k.pad[1],
                    k.pad[2],
                    k.pad[3],
                    v.as_mut_ptr(),
                    2,
                );
                ffi::sinter_winograd_output(
                    m,
                    mm.as_ptr(),
                    k.n,
                    k.co,
                    oh,
                    ow,
                    bias.as_ptr(),
                    code,
                    0.3,
                    y.as_mut_ptr(),
                    2,
                );
            }
            let mut u2 = vec![0.0; u.len()];
            filter_transform(m, &wt, k.co, k.c, &mut u2, 1).unwrap();
            let mut v2 = vec![0.0; v.len()];
            input_transform(m, &x, k.n, k.c, k.h, k.w, k.pad, &mut v2, 1).unwrap();
            let mut y2 = vec![0.0; y.len()];
            output_transform(m, &mm, k.n, k.co, oh, ow, Some(&bias), act, &mut y2, 1).unwrap();
            assert_eq!(bits(&u), bits(&u2));
            assert_eq!(bits(&v), bits(&v2));
            assert_eq!(bits(&y), bits(&y2), "m={m} act={act:?}");
        }
        // Unsupported activation codes apply none (the bias is still added); a null bias
        // adds nothing; a bad m writes nothing.
        let mut y = vec![0.0; k.n * k.co * oh * ow];
        let mut y2 = vec![0.0; y.len()];
        output_transform(
            m,
            &mm,
            k.n,
            k.co,
            oh,
            ow,
            None,
            Activation::None,
            &mut y2,
            1,
        )
        .unwrap();
        for code in [5u8, 6, 200] {
            // SAFETY: as above; a null bias is allowed.
            unsafe {
                ffi::sinter_winograd_output(
                    m,
                    mm.as_ptr(),
                    k.n,
                    k.co,
                    oh,
                    ow,
                    std::ptr::null(),
                    code,
                    0.3,
                    y.as_mut_ptr(),
                    1,
                );
            }
            assert_eq!(bits(&y), bits(&y2), "code {code}");
        }
    }
    let mut y = vec![1.0f32; 4];
    // SAFETY: m = 3 is rejected before any pointer is used.
    unsafe {
        ffi::sinter_winograd_output(
            3,
            [0.0f32; 1].as_ptr(),
            1,
            1,
            2,
            2,
            std::ptr::null(),
            0,
            0.0,
            y.as_mut_ptr(),
            1,
        );
    }
    assert_eq!(y, [1.0; 4]);
    let names: Vec<&str> = ffi::symbols().iter().map(|(n, _)| *n).collect();
    for name in [
        "sinter_winograd_filter",
        "sinter_winograd_input",
        "sinter_winograd_output",
    ] {
        assert!(names.contains(&name), "{name}");
    }
}

#[test]
fn bad_arguments_are_errors() {
    let x = vec![0.0f32; 2 * 3 * 5 * 6];
    let wt = vec![0.0f32; 4 * 3 * 9];
    let mut big = vec![0.0f32; 10_000];
    // Wrong m.
    for m in [0, 1, 3, 6] {
        assert_eq!(
            filter_transform(m, &wt, 4, 3, &mut big, 1),
            Err(WinogradError::TileSize(m))
        );
        assert_eq!(
            input_transform(m, &x, 2, 3, 5, 6, [1; 4], &mut big, 1),
            Err(WinogradError::TileSize(m))
        );
        assert_eq!(
            output_transform(
                m,
                &big.clone(),
                2,
                4,
                5,
                6,
                None,
                Activation::None,
                &mut big,
                1
            ),
            Err(WinogradError::TileSize(m))
        );
    }
    // Short slices.
    assert_eq!(
        filter_transform(4, &wt[1..], 4, 3, &mut big, 1),
        Err(WinogradError::SliceTooShort {
            operand: "w",
            needed: 108,
            len: 107
        })
    );
    assert_eq!(
        filter_transform(2, &wt, 4, 3, &mut big[..191], 1),
        Err(WinogradError::SliceTooShort {
            operand: "u",
            needed: 192,
            len: 191
        })
    );
    assert_eq!(
        input_transform(2, &x[..179], 2, 3, 5, 6, [1; 4], &mut big, 1),
        Err(WinogradError::SliceTooShort {
            operand: "x",
            needed: 180,
            len: 179
        })
    );
    // 5x6 padded by 1: 5x6 output, 3x3 tiles of 2 per image, 18 in all; V is 16 * 3 * 18.
    assert_eq!(
        input_transform(2, &x, 2, 3, 5, 6, [1; 4], &mut big[..863], 1),
        Err(WinogradError::SliceTooShort {
            operand: "v",
            needed: 864,
            len: 863
        })
    );
    let mm = vec![0.0f32; 16 * 4 * 18];
    let mut y = vec![0.0f32; 2 * 4 * 5 * 6];
    assert_eq!(
        output_transform(2, &mm[1..], 2, 4, 5, 6, None, Activation::None, &mut y, 1),
        Err(WinogradError::SliceTooShort {
            operand: "m",
            needed: 1152,
            len: 1151
        })
    );
    assert_eq!(
        output_transform(2, &mm, 2, 4, 5, 6, None, Activation::None, &mut y[1..], 1),
        Err(WinogradError::SliceTooShort {
            operand: "y",
            needed: 240,
            len: 239
        })
    );
    assert_eq!(
        output_transform(
            2,
            &mm,
            2,
            4,
            5,
            6,
            Some(&[1.0; 3]),
            Activation::None,
            &mut y,
            1
        ),
        Err(WinogradError::SliceTooShort {
            operand: "bias",
            needed: 4,
            len: 3
        })
    );
    // Empty outputs.
    assert_eq!(
        input_transform(2, &x, 2, 3, 1, 6, [0, 1, 1, 1], &mut big, 1),
        Err(WinogradError::NoOutput {
            padded_h: 2,
            padded_w: 8
        })
    );
    assert_eq!(
        input_transform(4, &x, 1, 1, 3, 2, [0; 4], &mut big, 1),
        Err(WinogradError::NoOutput {
            padded_h: 3,
            padded_w: 2
        })
    );
    assert_eq!(
        output_transform(2, &mm, 2, 4, 0, 6, None, Activation::None, &mut y, 1),
        Err(WinogradError::EmptyOutput { oh: 0, ow: 6 })
    );
    // Activations that need per-element data.
    let slope = [0.5f32; 4];
    assert_eq!(
        output_transform(
            2,
            &mm,
            2,
            4,
            5,
            6,
            None,
            Activation::Prelu(Bias::PerRow(&slope)),
            &mut y,
            1
        ),
        Err(WinogradError::UnsupportedActivation("prelu"))
    );
    assert_eq!(
        output_transform(
            2,
            &mm,
            2,
            4,
            5,
            6,
            None,
            Activation::ReluMask(&y.clone()),
            &mut y,
            1
        ),
        Err(WinogradError::UnsupportedActivation("relu_mask"))
    );
    // Overflowing shapes.
    assert_eq!(
        filter_transform(2, &wt, usize::MAX, 2, &mut big, 1),
        Err(WinogradError::Overflow("w"))
    );
    assert_eq!(
        input_transform(2, &x, usize::MAX / 2, 3, 5, 6, [1; 4], &mut big, 1),
        Err(WinogradError::Overflow("v"))
    );
    assert_eq!(
        input_transform(2, &x, 2, 3, 5, 6, [usize::MAX; 4], &mut big, 1),
        Err(WinogradError::Overflow("x"))
    );
    assert!(output_extent(usize::MAX, 1, [1; 4]).is_none());
    // Unavailable instruction sets.
    for isa in Isa::ALL.into_iter().filter(|i| !i.is_available()) {
        assert_eq!(
            filter_transform_with_isa(isa, 2, &wt, 4, 3, &mut big, 1),
            Err(WinogradError::IsaUnavailable(isa))
        );
    }
    // Empty batches are fine (nothing to do).
    input_transform(4, &[], 0, 3, 5, 6, [1; 4], &mut [], 1).unwrap();
    output_transform(4, &[], 2, 0, 5, 6, None, Activation::Relu, &mut [], 1).unwrap();
    filter_transform(2, &[], 0, 0, &mut [], 1).unwrap();
}

/// Timing of the transforms next to the GEMMs between them, for two layers of VGG/ResNet
/// shape. `cargo test -p sinter-microkernels --release --test winograd -- --ignored
/// --nocapture timing`.
#[test]
#[ignore]
fn timing() {
    use std::time::Instant;
    // The fastest of `reps` runs, in microseconds: the machine is shared, and interference
    // only ever adds time.
    fn best(mut f: impl FnMut(), reps: usize) -> f64 {
        f();
        (0..reps)
            .map(|_| {
                let t0 = Instant::now();
                f();
                t0.elapsed().as_secs_f64() * 1e6
            })
            .fold(f64::INFINITY, f64::min)
    }
    let mut r = Rng(5);
    let threads: usize = std::env::var("WINOGRAD_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    for (c, co, hw) in [(64, 64, 56), (512, 512, 14)] {
        let k = Case {
            n: 1,
            c,
            co,
            h: hw,
            w: hw,
            pad: [1; 4],
        };
        let (oh, ow) = k.out();
        let x = r.vec(c * hw * hw);
        let wt = r.vec(co * c * 9);
        let bias = r.vec(co);
        for m in [2, 4] {
            let (t_n, p_n) = (points(m), k.p(m));
            let mut u = vec![0.0; t_n * co * c];
            let mut v = vec![0.0; t_n * c * p_n];
            let mut mm = r.vec(t_n * co * p_n);
            let mut y = vec![0.0; co * oh * ow];
            let tf = best(
                || filter_transform(m, &wt, co, c, &mut u, threads).unwrap(),
                11,
            );
            let ti = best(
                || input_transform(m, &x, 1, c, hw, hw, k.pad, &mut v, threads).unwrap(),
                201,
            );
            let to = best(
                || {
                    output_transform(
                        m,
                        &mm,
                        1,
                        co,
                        oh,
                        ow,
                        Some(&bias),
                        Activation::Relu,
                        &mut y,
                        threads,
                    )
                    .unwrap()
                },
                201,
            );
            let tg = best(
                || {
                    for t in 0..t_n {
                        sinter_microkernels::sgemm_threaded(
                            co,
                            p_n,
                            c,
                            1.0,
                            &u[t * co * c..][..co * c],
                            c as isize,
                            1,
                            &v[t * c * p_n..][..c * p_n],
                            p_n as isize,
                            1,
                            0.0,
                            &mut mm[t * co * p_n..][..co * p_n],
                            p_n as isize,
                            1,
                            threads,
                        )
                        .unwrap();
                    }
                },
                21,
            );
            let gflops = 2.0 * (t_n * co * c * p_n) as f64 / tg / 1e3;
            eprintln!(
                "{c}->{co} {hw}x{hw} m={m} threads={threads}: filter {tf:.0} us, input {ti:.0} us ({:.1}%), output {to:.0} us ({:.1}%), {t_n} GEMMs {tg:.0} us ({gflops:.1} GFLOP/s)",
                100.0 * ti / tg,
                100.0 * to / tg
            );
        }
    }
}

/// The transposed filter transform (a transposed convolution's weight `[ci, co, 3, 3]`, each
/// filter read rotated by 180 degrees) is exactly the plain transform of the rotated weight,
/// through the safe API (threads 1 and 3) and the C-ABI entry; channel counts that are not
/// multiples of the eight lanes.
#[test]
fn transposed_filter_transform_is_the_rotated_weights_transform() {
    let mut r = Rng(0x0DDB_1A5E_5BAD_5EED);
    for m in [2, 4] {
        for (co, ci) in [(5, 11), (1, 1), (9, 8)] {
            let wt = r.vec(ci * co * 9);
            // w'[o, c, p, q] = w[c, o, 2 - p, 2 - q].
            let rotated: Vec<f32> = (0..co * ci * 9)
                .map(|i| {
                    let (o, c, k) = (i / (ci * 9), i / 9 % ci, i % 9);
                    wt[(c * co + o) * 9 + 8 - k]
                })
                .collect();
            let n = points(m) * co * ci;
            let mut want = vec![0.0f32; n];
            filter_transform(m, &rotated, co, ci, &mut want, 1).unwrap();
            for threads in [1, 3] {
                let mut got = vec![f32::NAN; n];
                sinter_microkernels::filter_transform_transposed(m, &wt, co, ci, &mut got, threads)
                    .unwrap();
                assert_eq!(got, want, "F({m},3) co {co} ci {ci} threads {threads}");
            }
            let mut got = vec![f32::NAN; n];
            // SAFETY: `wt` holds co*ci*9 floats, `got` points(m)*co*ci; distinct buffers.
            unsafe { ffi::sinter_winograd_filter(m, wt.as_ptr(), co, ci, got.as_mut_ptr(), 2, 1) };
            assert_eq!(got, want, "C ABI F({m},3) co {co} ci {ci}");
        }
    }
}
