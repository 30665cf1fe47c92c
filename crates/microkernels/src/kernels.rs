//! The register-tiled microkernels: one `MR x NR` tile of C from packed panels.
//!
//! Each kernel computes `C[i, j] = alpha * sum_p A[p*MR + i] * B[p*NR + j] + beta * C[i, j]`
//! for the full tile, reading C only when `beta != 0` (so `beta == 0` overwrites NaN). The
//! accumulators live in registers for the whole `k` loop; that loop is the program's hot spot,
//! so it contains only loads, broadcasts and FMAs. Partial (edge) tiles go through
//! [`tile_partial`], which runs the full kernel into a scratch tile and copies the valid part.

// Kernels take the BLAS tile argument list (k, alpha, A, B, beta, C, rsc, csc) as is.
#![allow(clippy::too_many_arguments)]

use crate::isa::Isa;
use crate::layout::{MR, NR};

/// The signature every microkernel shares.
///
/// # Safety
/// `a` must be valid for reading `k * MR` floats, `b` for `k * NR` floats, and every
/// `c + i*rsc + j*csc` (`i < MR`, `j < NR`) must be valid for reading and writing.
pub(crate) type TileFn = unsafe fn(usize, f32, *const f32, *const f32, f32, *mut f32, isize, isize);

/// A kernel that reads A unpacked: element `(i, p)` at `a + i*rsa + p` (row-major rows), B
/// packed as for [`TileFn`].
///
/// # Safety
/// As for [`TileFn`], with `a + i*rsa + p` readable for `i < MR`, `p < k`.
pub(crate) type DirectTileFn =
    unsafe fn(usize, f32, *const f32, isize, *const f32, f32, *mut f32, isize, isize);

/// The unpacked-A kernel for `isa`, where there is one (AVX2 only for now).
pub(crate) fn direct_tile_fn(isa: Isa) -> Option<DirectTileFn> {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => Some(x86::tile_avx2_direct),
        _ => None,
    }
}

/// The kernel for `isa`. The caller must only call it if `isa.is_available()`.
pub(crate) fn tile_fn(isa: Isa) -> TileFn {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => x86::tile_avx512,
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => x86::tile_avx2,
        _ => tile_portable,
    }
}

/// A kernel for tiles of at most [`HALF_NR`] columns, where the ISA's full kernel would compute
/// the unused half too: AVX2's runs the `6 x 32` tile as two `6 x 16` passes, and a tile of 16
/// columns or fewer (a Winograd product over 16 tiles, a narrow last panel) needs only the
/// first. It computes columns `0..16` of the tile, as the full kernel would, and writes only
/// those.
pub(crate) fn half_tile_fn(isa: Isa) -> Option<TileFn> {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => Some(x86::tile_avx2_half),
        _ => None,
    }
}

/// The columns [`half_tile_fn`]'s kernels compute.
pub(crate) const HALF_NR: usize = 16;

/// Computes the top-left `mr x nr` part of a tile (`mr <= MR`, `nr <= NR`), with `half` (see
/// [`half_tile_fn`]) when `nr <= HALF_NR` and there is one.
///
/// # Safety
/// As for [`TileFn`], but only `c + i*rsc + j*csc` for `i < mr`, `j < nr` need be valid, and
/// `kernel` must be runnable on this CPU.
#[allow(clippy::too_many_arguments)] // the BLAS argument list, passed straight through
pub(crate) unsafe fn tile_partial(
    kernel: TileFn,
    half: Option<TileFn>,
    mr: usize,
    nr: usize,
    k: usize,
    alpha: f32,
    a: *const f32,
    b: *const f32,
    beta: f32,
    c: *mut f32,
    rsc: isize,
    csc: isize,
) {
    if mr == MR && nr == NR {
        // SAFETY: a full tile; the caller's contract is the kernel's.
        unsafe { kernel(k, alpha, a, b, beta, c, rsc, csc) };
        return;
    }
    let kernel = match half {
        Some(h) if nr <= HALF_NR => h,
        _ => kernel,
    };
    let mut tmp = [0.0f32; MR * NR];
    // SAFETY: `tmp` is a full MR x NR row-major tile; `a`, `b` are valid per the contract.
    unsafe { kernel(k, alpha, a, b, 0.0, tmp.as_mut_ptr(), NR as isize, 1) };
    for i in 0..mr {
        for j in 0..nr {
            // SAFETY: i < mr and j < nr, which the caller guarantees are valid elements of C.
            let cij = unsafe { &mut *c.offset(i as isize * rsc + j as isize * csc) };
            let v = tmp[i * NR + j];
            *cij = if beta == 0.0 { v } else { v + beta * *cij };
        }
    }
}

/// Writes `alpha * acc + beta * C` for the first `cols` columns of a tile held in a row-major
/// scratch array.
///
/// # Safety
/// Every `c + i*rsc + j*csc` (`i < MR`, `j < NR`) must be valid.
#[inline(always)]
unsafe fn store_scalar(
    acc: &[f32; MR * NR],
    cols: usize,
    alpha: f32,
    beta: f32,
    c: *mut f32,
    rsc: isize,
    csc: isize,
) {
    for i in 0..MR {
        for j in 0..cols.min(NR) {
            // SAFETY: i < MR, j < NR, valid per the contract.
            let cij = unsafe { &mut *c.offset(i as isize * rsc + j as isize * csc) };
            let v = alpha * acc[i * NR + j];
            *cij = if beta == 0.0 { v } else { v + beta * *cij };
        }
    }
}

/// The portable kernel: plain loops over a scratch tile, vectorised by the compiler for the
/// baseline target (SSE2 on x86-64). Correct everywhere; roughly a quarter of AVX-512 speed.
///
/// # Safety
/// See [`TileFn`].
pub(crate) unsafe fn tile_portable(
    k: usize,
    alpha: f32,
    a: *const f32,
    b: *const f32,
    beta: f32,
    c: *mut f32,
    rsc: isize,
    csc: isize,
) {
    // SAFETY: the contract says `a` holds k*MR floats and `b` k*NR floats.
    let (a, b) = unsafe {
        (
            std::slice::from_raw_parts(a, k * MR),
            std::slice::from_raw_parts(b, k * NR),
        )
    };
    let mut acc = [0.0f32; MR * NR];
    for (ap, bp) in a.chunks_exact(MR).zip(b.chunks_exact(NR)) {
        for (i, &ai) in ap.iter().enumerate() {
            let row = &mut acc[i * NR..(i + 1) * NR];
            for (r, &bj) in row.iter_mut().zip(bp) {
                *r += ai * bj;
            }
        }
    }
    // SAFETY: forwarded contract on `c`.
    unsafe { store_scalar(&acc, NR, alpha, beta, c, rsc, csc) };
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod x86 {
    //! The x86-64 kernels and the AVX transpose used by packing. Compiled for every x86-64
    //! target, entered only after run-time detection.

    use super::store_scalar;
    use crate::layout::{MR, NR};
    use std::arch::x86_64::*;

    /// AVX-512 `6 x 32` kernel: 12 zmm accumulators, per k two B loads and six broadcasts
    /// (folded into the FMAs as `{1to16}` memory operands).
    ///
    /// # Safety
    /// See [`super::TileFn`]; the CPU must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub(crate) unsafe fn tile_avx512(
        k: usize,
        alpha: f32,
        a: *const f32,
        b: *const f32,
        beta: f32,
        c: *mut f32,
        rsc: isize,
        csc: isize,
    ) {
        let mut acc = [[_mm512_setzero_ps(); 2]; MR];
        for p in 0..k {
            // SAFETY: p < k, so p*NR + 32 <= k*NR floats of the B panel.
            let (b0, b1) = unsafe {
                let bp = b.add(p * NR);
                (_mm512_loadu_ps(bp), _mm512_loadu_ps(bp.add(16)))
            };
            // SAFETY: p < k, so p*MR + MR <= k*MR floats of the A panel.
            let ap = unsafe { &*(a.add(p * MR) as *const [f32; MR]) };
            for i in 0..MR {
                let ai = _mm512_set1_ps(ap[i]);
                acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
                acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
            }
        }
        let va = _mm512_set1_ps(alpha);
        if csc == 1 {
            let vb = _mm512_set1_ps(beta);
            for (i, acc) in acc.iter().enumerate() {
                let row = c.wrapping_offset(i as isize * rsc);
                let mut r0 = _mm512_mul_ps(acc[0], va);
                let mut r1 = _mm512_mul_ps(acc[1], va);
                // SAFETY: row i, columns 0..32 of the tile are valid by the contract (csc == 1).
                unsafe {
                    if beta != 0.0 {
                        r0 = _mm512_fmadd_ps(_mm512_loadu_ps(row), vb, r0);
                        r1 = _mm512_fmadd_ps(_mm512_loadu_ps(row.add(16)), vb, r1);
                    }
                    _mm512_storeu_ps(row, r0);
                    _mm512_storeu_ps(row.add(16), r1);
                }
            }
        } else {
            let mut tmp = [0.0f32; MR * NR];
            for (i, acc) in acc.iter().enumerate() {
                // SAFETY: tmp has MR*NR floats; row i spans i*NR .. i*NR + 32.
                unsafe {
                    _mm512_storeu_ps(tmp.as_mut_ptr().add(i * NR), acc[0]);
                    _mm512_storeu_ps(tmp.as_mut_ptr().add(i * NR + 16), acc[1]);
                }
            }
            // SAFETY: forwarded contract on `c`.
            unsafe { store_scalar(&tmp, NR, alpha, beta, c, rsc, csc) };
        }
    }

    /// AVX2+FMA kernel: the `6 x 32` tile as two `6 x 16` passes over k (12 ymm accumulators,
    /// two B loads and six broadcasts per k: 15 of the 16 ymm registers), since 16 ymm
    /// registers cannot hold the whole tile.
    ///
    /// # Safety
    /// See [`super::TileFn`]; the CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(crate) unsafe fn tile_avx2(
        k: usize,
        alpha: f32,
        a: *const f32,
        b: *const f32,
        beta: f32,
        c: *mut f32,
        rsc: isize,
        csc: isize,
    ) {
        // SAFETY: forwarded contract.
        unsafe { tile_avx2_impl::<false, 2>(k, alpha, a, 0, b, beta, c, rsc, csc) }
    }

    /// [`tile_avx2`]'s first `6 x 16` pass only (see [`super::half_tile_fn`]).
    ///
    /// # Safety
    /// See [`super::TileFn`] (only columns `0..16` of C are written); the CPU must support
    /// AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(crate) unsafe fn tile_avx2_half(
        k: usize,
        alpha: f32,
        a: *const f32,
        b: *const f32,
        beta: f32,
        c: *mut f32,
        rsc: isize,
        csc: isize,
    ) {
        // SAFETY: forwarded contract.
        unsafe { tile_avx2_impl::<false, 1>(k, alpha, a, 0, b, beta, c, rsc, csc) }
    }

    /// [`tile_avx2`] reading A unpacked from `MR` row-major rows `rsa` apart: for a small N
    /// packing A costs as much as the kernel (each element of A is used only `n` times).
    ///
    /// # Safety
    /// See [`super::DirectTileFn`]; the CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(crate) unsafe fn tile_avx2_direct(
        k: usize,
        alpha: f32,
        a: *const f32,
        rsa: isize,
        b: *const f32,
        beta: f32,
        c: *mut f32,
        rsc: isize,
        csc: isize,
    ) {
        // SAFETY: forwarded contract.
        unsafe { tile_avx2_impl::<true, 2>(k, alpha, a, rsa, b, beta, c, rsc, csc) }
    }

    /// The AVX2 kernel body, A packed (`DIRECT = false`, `rsa` unused) or unpacked, over the
    /// first `PASSES` 16-column halves of the tile (2: the whole tile).
    ///
    /// # Safety
    /// See [`tile_avx2`] and [`tile_avx2_direct`].
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn tile_avx2_impl<const DIRECT: bool, const PASSES: usize>(
        k: usize,
        alpha: f32,
        a: *const f32,
        rsa: isize,
        b: *const f32,
        beta: f32,
        c: *mut f32,
        rsc: isize,
        csc: isize,
    ) {
        let va = _mm256_set1_ps(alpha);
        let vb = _mm256_set1_ps(beta);
        let mut tmp = [0.0f32; MR * NR];
        for ch in 0..PASSES {
            let mut acc = [[_mm256_setzero_ps(); 2]; MR];
            for p in 0..k {
                if DIRECT && ch == 0 && p % 16 == 0 {
                    // Unpacked A rows are short streams (kc floats each) that the hardware
                    // prefetcher picks up too late: fetch the next panel's rows (the next MR
                    // rows) one cache line per row every 16 k. Prefetches never fault, so the
                    // address may lie past the matrix.
                    for i in MR..2 * MR {
                        let next = a.wrapping_offset(i as isize * rsa + p as isize);
                        _mm_prefetch::<_MM_HINT_T0>(next as *const i8);
                    }
                }
                // SAFETY: p < k and ch*16 + 16 <= NR: inside the k*NR B panel.
                let (b0, b1) = unsafe {
                    let bp = b.add(p * NR + ch * 16);
                    (_mm256_loadu_ps(bp), _mm256_loadu_ps(bp.add(8)))
                };
                let ap: [f32; MR] = if DIRECT {
                    // SAFETY: p < k, i < MR: element (i, p) of the unpacked A rows.
                    std::array::from_fn(|i| unsafe { *a.offset(i as isize * rsa + p as isize) })
                } else {
                    // SAFETY: p < k: p*MR + MR <= k*MR floats of the A panel.
                    unsafe { *(a.add(p * MR) as *const [f32; MR]) }
                };
                for i in 0..MR {
                    let ai = _mm256_set1_ps(ap[i]);
                    acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
                    acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
                }
            }
            for (i, acc) in acc.iter().enumerate() {
                if csc == 1 {
                    let row = c.wrapping_offset(i as isize * rsc + (ch * 16) as isize);
                    let mut r0 = _mm256_mul_ps(acc[0], va);
                    let mut r1 = _mm256_mul_ps(acc[1], va);
                    // SAFETY: row i, columns ch*16 .. ch*16 + 16 are in the tile (csc == 1).
                    unsafe {
                        if beta != 0.0 {
                            r0 = _mm256_fmadd_ps(_mm256_loadu_ps(row), vb, r0);
                            r1 = _mm256_fmadd_ps(_mm256_loadu_ps(row.add(8)), vb, r1);
                        }
                        _mm256_storeu_ps(row, r0);
                        _mm256_storeu_ps(row.add(8), r1);
                    }
                } else {
                    // SAFETY: i*NR + ch*16 + 16 <= MR*NR floats of tmp.
                    unsafe {
                        let t = tmp.as_mut_ptr().add(i * NR + ch * 16);
                        _mm256_storeu_ps(t, acc[0]);
                        _mm256_storeu_ps(t.add(8), acc[1]);
                    }
                }
            }
        }
        if csc != 1 {
            // SAFETY: forwarded contract on `c`.
            unsafe { store_scalar(&tmp, PASSES * 16, alpha, beta, c, rsc, csc) };
        }
    }

    /// Transposes an 8x8 block: reads `src[r*ld + q]` for `r < rows` (`rows <= 8`; missing rows
    /// read as row 0 and are discarded) and writes `dst[q*ldd + r]` for `q < 8`, `r < rows`.
    /// Packing uses it where the source is contiguous along k but the panel interleaves along
    /// the other dimension (row-major A, transposed B).
    ///
    /// # Safety
    /// `rows >= 1`; the source rows `r < rows` (8 floats each) and destination rows `q < 8`
    /// (`rows` floats each) must be valid; the CPU must support AVX.
    #[target_feature(enable = "avx")]
    pub(crate) unsafe fn transpose8x8(
        src: *const f32,
        ld: isize,
        rows: usize,
        dst: *mut f32,
        ldd: usize,
    ) {
        let row = |r: usize| src.wrapping_offset(if r < rows { r as isize * ld } else { 0 });
        // SAFETY: rows r < rows are valid by the contract, the others alias row 0.
        let r = unsafe {
            [
                _mm256_loadu_ps(row(0)),
                _mm256_loadu_ps(row(1)),
                _mm256_loadu_ps(row(2)),
                _mm256_loadu_ps(row(3)),
                _mm256_loadu_ps(row(4)),
                _mm256_loadu_ps(row(5)),
                _mm256_loadu_ps(row(6)),
                _mm256_loadu_ps(row(7)),
            ]
        };
        let t0 = _mm256_unpacklo_ps(r[0], r[1]);
        let t1 = _mm256_unpackhi_ps(r[0], r[1]);
        let t2 = _mm256_unpacklo_ps(r[2], r[3]);
        let t3 = _mm256_unpackhi_ps(r[2], r[3]);
        let t4 = _mm256_unpacklo_ps(r[4], r[5]);
        let t5 = _mm256_unpackhi_ps(r[4], r[5]);
        let t6 = _mm256_unpacklo_ps(r[6], r[7]);
        let t7 = _mm256_unpackhi_ps(r[6], r[7]);
        let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
        let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
        let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
        let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
        let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
        let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
        let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
        let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
        let o = [
            _mm256_permute2f128_ps::<0x20>(u0, u4),
            _mm256_permute2f128_ps::<0x20>(u1, u5),
            _mm256_permute2f128_ps::<0x20>(u2, u6),
            _mm256_permute2f128_ps::<0x20>(u3, u7),
            _mm256_permute2f128_ps::<0x31>(u0, u4),
            _mm256_permute2f128_ps::<0x31>(u1, u5),
            _mm256_permute2f128_ps::<0x31>(u2, u6),
            _mm256_permute2f128_ps::<0x31>(u3, u7),
        ];
        for (q, v) in o.into_iter().enumerate() {
            if rows == 8 {
                // SAFETY: destination row q < 8 of 8 floats is valid by the contract.
                unsafe { _mm256_storeu_ps(dst.add(q * ldd), v) };
            } else {
                let mut t = [0.0f32; 8];
                // SAFETY: `t` holds 8 floats; destination row q has `rows <= 8` valid floats.
                unsafe {
                    _mm256_storeu_ps(t.as_mut_ptr(), v);
                    std::ptr::copy_nonoverlapping(t.as_ptr(), dst.add(q * ldd), rows);
                }
            }
        }
    }
}
