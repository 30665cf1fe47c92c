//! Skinny GEMM: at most [`SKINNY_M`] rows of C, with B stored contiguously along `k` (B is the
//! transpose of a row-major matrix, as a linear layer's weight `[out, in]` is under ONNX's
//! `Gemm(transB = 1)`).
//!
//! A batch-1 fully connected layer is a matrix-vector product whose weight (AlexNet's first
//! classifier layer: 9216 x 4096, 151 MB) is read once per call and used for 2 FLOPs per
//! element: the time is the time to stream the weight from memory. The packed path would copy
//! every weight into panels first (reading it with stride `k` in the transposed case) and then
//! run a 6-row tile for 1 useful row; here each column of C is `m` dot products over one
//! contiguous row of the weight, so the weight is read once, in order, and never copied.
//!
//! Every element of C is computed by the same fixed sequence (eight-lane partial sums over
//! `k` in steps of 8, a fixed horizontal sum, then the scalar tail), whatever the block of
//! columns it falls in, so the result does not depend on how the columns are split across
//! threads. The path is chosen from the whole problem's `m` (never from one thread's share of
//! it), so the thread count never changes which path computes an element.

use crate::driver::{Epi, MatMut, MatRef};
use crate::isa::Isa;

/// C with at most this many rows (and a B contiguous along k) takes the skinny path.
pub(crate) const SKINNY_M: usize = 4;

/// Whether a problem takes the skinny path: few rows, B contiguous along k, and something to
/// multiply (`k == 0` or `alpha == 0` only scale C, which the general path does).
pub(crate) fn applies(m: usize, k: usize, alpha: f32, b: MatRef) -> bool {
    m <= SKINNY_M && b.rs == 1 && k > 0 && alpha != 0.0
}

/// Columns of C computed together: each loaded vector of A is used this many times.
const NB: usize = 4;

/// `C = alpha * A B + beta * C`, then the epilogue, for `m <= SKINNY_M` and `b.rs == 1`.
///
/// # Safety
/// As for the driver's serial GEMM: every element of A (`m x k`), B (`k x n`) and C (`m x n`)
/// valid, C's elements distinct and not aliasing A or B, `isa` available, and the epilogue's
/// bias/slope/mask elements readable for C's rows and columns.
#[allow(clippy::too_many_arguments)] // the BLAS argument list
pub(crate) unsafe fn gemm_skinny(
    isa: Isa,
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: MatRef,
    b: MatRef,
    beta: f32,
    c: MatMut,
    epi: Epi,
) {
    debug_assert!(applies(m, k, alpha, b));
    if m == 0 || n == 0 {
        return;
    }
    // The rows of A, contiguous (copied if A is not row-major: m * k floats, small).
    let copy: Vec<f32>;
    let (ap, lda) = if a.cs == 1 {
        (a.ptr, a.rs)
    } else {
        // SAFETY: (i, p) is an element of A for i < m, p < k.
        copy = (0..m * k).map(|q| unsafe { *a.at(q / k, q % k) }).collect();
        (copy.as_ptr(), k as isize)
    };
    let mut j = 0;
    while j < n {
        let nb = NB.min(n - j);
        let mut out = [[0.0f32; NB]; SKINNY_M];
        let bj = b.ptr.wrapping_offset(j as isize * b.cs);
        // SAFETY: rows i < m of A (k contiguous floats each, lda apart) and columns
        // j .. j + nb of B (k contiguous floats each, b.cs apart) are valid.
        unsafe { dots(isa, m, nb, k, ap, lda, bj, b.cs, &mut out) };
        for (i, row) in out.iter().enumerate().take(m) {
            for (jj, &v) in row.iter().enumerate().take(nb) {
                let p = c.at(i, j + jj);
                // SAFETY: (i, j + jj) is an element of C.
                unsafe {
                    *p = if beta == 0.0 {
                        alpha * v
                    } else {
                        alpha * v + beta * *p
                    }
                };
            }
        }
        if !epi.is_none() {
            let blk = MatMut {
                ptr: c.at(0, j),
                ..c
            };
            // SAFETY: the m x nb block at column j is inside C; the epilogue covers C.
            unsafe { epi.apply(m, nb, blk, 0, j) };
        }
        j += nb;
    }
}

/// `out[i][jj] = sum_p A[i, p] * B[p, jj]` for `i < m`, `jj < nb`, in the fixed order of the
/// module docs.
///
/// # Safety
/// `a + i*lda + p` readable for `i < m`, `p < k`; `b + jj*ldb + p` for `jj < nb`, `p < k`;
/// `m <= SKINNY_M`, `nb <= NB`; `isa` available.
#[allow(clippy::too_many_arguments)] // the operands and their shapes
unsafe fn dots(
    isa: Isa,
    m: usize,
    nb: usize,
    k: usize,
    a: *const f32,
    lda: isize,
    b: *const f32,
    ldb: isize,
    out: &mut [[f32; NB]; SKINNY_M],
) {
    #[cfg(target_arch = "x86_64")]
    if matches!(isa, Isa::Avx2 | Isa::Avx512) && Isa::Avx2.is_available() {
        // Kernels specialised on (rows, columns): 4 columns at a time for up to 3 rows, two
        // blocks of 2 for 4 rows (at most 12 accumulators of the 16 ymm registers), one
        // column at a time at the edge. Every element's summation order is the same in all.
        macro_rules! rows {
            ($w:literal, $j0:expr) => {
                // SAFETY (each arm): columns $j0 .. $j0 + $w of the block; forwarded contract.
                unsafe {
                    match m {
                        1 => block::<1, $w>(k, a, lda, b, ldb, out, $j0),
                        2 => block::<2, $w>(k, a, lda, b, ldb, out, $j0),
                        3 => block::<3, $w>(k, a, lda, b, ldb, out, $j0),
                        _ => block::<4, $w>(k, a, lda, b, ldb, out, $j0),
                    }
                }
            };
        }
        if nb == NB && m <= 3 {
            rows!(4, 0);
        } else if nb == NB {
            rows!(2, 0);
            rows!(2, 2);
        } else {
            for jj in 0..nb {
                rows!(1, jj);
            }
        }
        return;
    }
    let _ = isa;
    for (i, row) in out.iter_mut().enumerate().take(m) {
        for (jj, o) in row.iter_mut().enumerate().take(nb) {
            // SAFETY: row i of A and column jj of B, k floats each (contract).
            *o = unsafe {
                dot_portable(
                    k,
                    a.wrapping_offset(i as isize * lda),
                    b.wrapping_offset(jj as isize * ldb),
                )
            };
        }
    }
}

/// Columns `j0 .. j0 + W` of `out` for `M` rows, by the AVX2 kernel.
///
/// # Safety
/// As for [`dots`], with `M <= m` rows and `j0 + W <= nb` columns; AVX2 and FMA available.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)] // the operands and their shapes
unsafe fn block<const M: usize, const W: usize>(
    k: usize,
    a: *const f32,
    lda: isize,
    b: *const f32,
    ldb: isize,
    out: &mut [[f32; NB]; SKINNY_M],
    j0: usize,
) {
    let mut o = [[0.0f32; W]; M];
    // SAFETY: forwarded contract.
    unsafe { x86::dots_avx2::<M, W>(k, a, lda, b.wrapping_offset(j0 as isize * ldb), ldb, &mut o) };
    for (dst, src) in out.iter_mut().zip(&o) {
        dst[j0..j0 + W].copy_from_slice(src);
    }
}

/// One dot product in the order of the module docs (eight partial sums, the horizontal sum
/// `((s0+s4) + (s2+s6)) + ((s1+s5) + (s3+s7))`, then the tail), in plain Rust.
///
/// # Safety
/// `a` and `b` readable for `k` floats.
unsafe fn dot_portable(k: usize, a: *const f32, b: *const f32) -> f32 {
    // SAFETY: the contract.
    let (a, b) = unsafe {
        (
            std::slice::from_raw_parts(a, k),
            std::slice::from_raw_parts(b, k),
        )
    };
    let kv = k / 8 * 8;
    let mut s = [0.0f32; 8];
    for (ac, bc) in a[..kv].chunks_exact(8).zip(b[..kv].chunks_exact(8)) {
        for l in 0..8 {
            s[l] = ac[l].mul_add(bc[l], s[l]);
        }
    }
    let mut t = ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]));
    for p in kv..k {
        t = a[p].mul_add(b[p], t);
    }
    t
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// `((s0+s4) + (s2+s6)) + ((s1+s5) + (s3+s7))` of the eight lanes.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn hsum(v: __m256) -> f32 {
        // Lanes (s0+s4, s1+s5, s2+s6, s3+s7).
        let q = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        // Lanes (q0+q2, q1+q3, ..).
        let h = _mm_add_ps(q, _mm_movehl_ps(q, q));
        // (q0+q2) + (q1+q3).
        _mm_cvtss_f32(_mm_add_ss(h, _mm_shuffle_ps::<0b01>(h, h)))
    }

    /// `out[i][j] = sum_p a[i*lda + p] * b[j*ldb + p]`: `M * NB` eight-lane accumulators
    /// over `k` in steps of 8, [`hsum`], then the scalar tail (fused multiply-adds).
    ///
    /// # Safety
    /// `a + i*lda + p` readable for `i < M`, `p < k`; `b + j*ldb + p` for `j < NB`, `p < k`;
    /// AVX2 and FMA available.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn dots_avx2<const M: usize, const NB: usize>(
        k: usize,
        a: *const f32,
        lda: isize,
        b: *const f32,
        ldb: isize,
        out: &mut [[f32; NB]; M],
    ) {
        let ar: [*const f32; M] = std::array::from_fn(|i| a.wrapping_offset(i as isize * lda));
        let br: [*const f32; NB] = std::array::from_fn(|j| b.wrapping_offset(j as isize * ldb));
        let mut acc = [[_mm256_setzero_ps(); NB]; M];
        let kv = k / 8 * 8;
        let mut p = 0;
        while p < kv {
            // SAFETY: p + 8 <= k: inside every row of A and column of B.
            let bv: [__m256; NB] =
                std::array::from_fn(|j| unsafe { _mm256_loadu_ps(br[j].add(p)) });
            for i in 0..M {
                // SAFETY: as above.
                let av = unsafe { _mm256_loadu_ps(ar[i].add(p)) };
                for j in 0..NB {
                    acc[i][j] = _mm256_fmadd_ps(av, bv[j], acc[i][j]);
                }
            }
            p += 8;
        }
        for i in 0..M {
            for j in 0..NB {
                let mut t = hsum(acc[i][j]);
                for q in kv..k {
                    // SAFETY: q < k.
                    t = unsafe { (*ar[i].add(q)).mul_add(*br[j].add(q), t) };
                }
                out[i][j] = t;
            }
        }
    }
}
