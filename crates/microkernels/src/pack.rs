//! Packing: copies a block of A or B, with any strides, into the panel layouts of
//! [`crate::layout`], zero-padding partial panels.
//!
//! Packing makes the kernel's memory access contiguous and aligned to the tile whatever the
//! caller's strides (row-major, column-major, transposed views), removes L1 aliasing between
//! rows a power of two apart, and turns every edge into a full tile of zeros. Each routine has
//! fast paths for the common contiguous cases (a straight copy, or an 8x8 AVX transpose when
//! the source runs along k) and a general strided loop for everything else.

use crate::isa::Isa;
use crate::layout::{MR, NR};

/// Whether the AVX 8x8 transpose may be used on this path.
pub(crate) fn transpose_ok(isa: Isa) -> bool {
    cfg!(target_arch = "x86_64") && matches!(isa, Isa::Avx512 | Isa::Avx2)
}

/// Transposes an 8-column block of `rows <= 8` rows (see
/// [`crate::kernels::x86::transpose8x8`]).
///
/// # Safety
/// The source rows `src + r*ld .. + 8` (`r < rows`) and destination rows
/// `dst + q*ldd .. + rows` (`q < 8`) must be valid, and `transpose_ok(isa)` must hold for an
/// available `isa`.
#[inline(always)]
pub(crate) unsafe fn transpose8(
    src: *const f32,
    ld: isize,
    rows: usize,
    dst: *mut f32,
    ldd: usize,
) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: forwarded contract; AVX is implied by the AVX2/AVX-512 path being available.
    unsafe {
        crate::kernels::x86::transpose8x8(src, ld, rows, dst, ldd)
    }
    #[cfg(not(target_arch = "x86_64"))]
    for r in 0..rows {
        for q in 0..8 {
            // SAFETY: forwarded contract.
            unsafe { *dst.add(q * ldd + r) = *src.offset(r as isize * ld + q as isize) };
        }
    }
}

/// Packs the `mc x kc` block of A whose element `(i, p)` is at `a + i*rsa + p*csa` into
/// `ceil(mc / MR)` panels at `dst` (see [`crate::layout`]).
///
/// # Safety
/// Every `a + i*rsa + p*csa` (`i < mc`, `p < kc`) must be readable, `dst` must be writable for
/// `packed_a_len(mc, kc)` floats, and `isa` must be available.
pub(crate) unsafe fn pack_a(
    isa: Isa,
    mc: usize,
    kc: usize,
    a: *const f32,
    rsa: isize,
    csa: isize,
    dst: *mut f32,
) {
    for ir in (0..mc).step_by(MR) {
        let rows = MR.min(mc - ir);
        let panel = dst.wrapping_add(ir * kc);
        let src = a.wrapping_offset(ir as isize * rsa);
        let at = |i: usize, p: usize| src.wrapping_offset(i as isize * rsa + p as isize * csa);
        let mut p0 = 0;
        if rows == MR && csa == 1 && transpose_ok(isa) {
            while p0 + 8 <= kc {
                // SAFETY: rows i < MR and columns p0..p0+8 <= kc are elements of the block;
                // the destination rows p0..p0+8 of MR floats lie in this panel.
                unsafe { transpose8(at(0, p0), rsa, MR, panel.add(p0 * MR), MR) };
                p0 += 8;
            }
        }
        if rsa == 1 || p0 > 0 {
            for p in p0..kc {
                for i in 0..MR {
                    let v = if i < rows {
                        // SAFETY: i < rows, p < kc: an element of the block.
                        unsafe { *at(i, p) }
                    } else {
                        0.0
                    };
                    // SAFETY: p*MR + i < kc*MR, inside this panel.
                    unsafe { *panel.add(p * MR + i) = v };
                }
            }
        } else {
            for i in 0..MR {
                for p in 0..kc {
                    let v = if i < rows {
                        // SAFETY: i < rows, p < kc: an element of the block.
                        unsafe { *at(i, p) }
                    } else {
                        0.0
                    };
                    // SAFETY: p*MR + i < kc*MR, inside this panel.
                    unsafe { *panel.add(p * MR + i) = v };
                }
            }
        }
    }
}

/// Packs the `kc x nc` block of B whose element `(p, j)` is at `b + p*rsb + j*csb` into
/// `ceil(nc / NR)` panels at `dst` (see [`crate::layout`]).
///
/// # Safety
/// Every `b + p*rsb + j*csb` (`p < kc`, `j < nc`) must be readable, `dst` must be writable for
/// `packed_b_len(kc, nc)` floats, and `isa` must be available.
pub(crate) unsafe fn pack_b(
    isa: Isa,
    kc: usize,
    nc: usize,
    b: *const f32,
    rsb: isize,
    csb: isize,
    dst: *mut f32,
) {
    if csb == 1 {
        // Row by row: each row of the block is read once, in order (a stream the prefetcher
        // follows), and scattered to the panels, which stay in cache. Panel by panel instead,
        // every panel would revisit all `kc` rows of B, `kc` streams at once: with B an im2col
        // matrix far larger than the caches, that made this copy a third of a convolution.
        let full = nc / NR * NR;
        for p in 0..kc {
            let row = b.wrapping_offset(p as isize * rsb);
            for jr in (0..full).step_by(NR) {
                // SAFETY: columns jr .. jr + NR of row p are elements of the block (jr + NR <=
                // nc); the panel row at jr*kc + p*NR holds NR floats inside dst. A fixed-size
                // copy compiles to vector moves (a variable one was a libc call per row).
                unsafe {
                    let v = (row.add(jr) as *const [f32; NR]).read_unaligned();
                    (dst.add(jr * kc + p * NR) as *mut [f32; NR]).write_unaligned(v);
                }
            }
            if full < nc {
                let cols = nc - full;
                let d = dst.wrapping_add(full * kc + p * NR);
                // SAFETY: columns full .. nc of row p are elements of the block; the last
                // panel's row p has NR floats in dst; distinct allocations.
                unsafe {
                    std::ptr::copy_nonoverlapping(row.add(full), d, cols);
                    std::ptr::write_bytes(d.add(cols), 0, NR - cols);
                }
            }
        }
        return;
    }
    for jr in (0..nc).step_by(NR) {
        let cols = NR.min(nc - jr);
        let panel = dst.wrapping_add(jr * kc);
        let src = b.wrapping_offset(jr as isize * csb);
        let at = |p: usize, j: usize| src.wrapping_offset(p as isize * rsb + j as isize * csb);
        let mut p0 = 0;
        if rsb == 1 && cols == NR && transpose_ok(isa) {
            while p0 + 8 <= kc {
                for g in 0..NR / 8 {
                    // SAFETY: columns g*8..g*8+8 < NR = cols and rows p0..p0+8 <= kc are
                    // elements of the block; destination rows p0..p0+8, columns g*8..g*8+8
                    // lie in the panel.
                    unsafe { transpose8(at(p0, g * 8), csb, 8, panel.add(p0 * NR + g * 8), NR) };
                }
                p0 += 8;
            }
        }
        if rsb == 1 && p0 == 0 {
            for j in 0..NR {
                for p in 0..kc {
                    let v = if j < cols {
                        // SAFETY: p < kc, j < cols: an element of the block.
                        unsafe { *at(p, j) }
                    } else {
                        0.0
                    };
                    // SAFETY: p*NR + j < kc*NR, inside the panel.
                    unsafe { *panel.add(p * NR + j) = v };
                }
            }
        } else {
            for p in p0..kc {
                for j in 0..NR {
                    let v = if j < cols {
                        // SAFETY: p < kc, j < cols: an element of the block.
                        unsafe { *at(p, j) }
                    } else {
                        0.0
                    };
                    // SAFETY: p*NR + j < kc*NR, inside the panel.
                    unsafe { *panel.add(p * NR + j) = v };
                }
            }
        }
    }
}
