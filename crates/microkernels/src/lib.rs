//! SIMD microkernels (AVX-512, AVX2+FMA, portable) and the GEMM driver that the JIT calls for
//! compute-bound tiles.
//!
//! Cranelift 0.135 only lowers 128-bit vectors, which caps JIT-generated compute at about half of
//! this machine's FMA peak (see `shared/CODEGEN-NOTES.md`). So matmul, gemm and convolutions (as
//! implicit GEMM / im2col) call into the hand-written kernels in this crate (BENCHMARKS.md
//! has their measured share of peak). The design is BLIS-style:
//!
//! - a register-tiled **microkernel** computes one [`MR`]`x`[`NR`] tile of C from a packed
//!   panel of A (`k x MR`, see [`layout`]) and a packed panel of B (`k x NR`);
//! - **packing** copies blocks of A and B (any strides: row-major, column-major, transposed)
//!   into those panel layouts, zero-padding the edges, so the kernel never sees a partial tile
//!   in its inner loop and any `m`, `n`, `k` works;
//! - the **driver** ([`sgemm`]) blocks the loops by `MC`/`KC`/`NC` for the caches, handles
//!   edge tiles, `alpha`/`beta`, and splits work across threads ([`sgemm_threaded`]).
//!
//! The instruction set is picked once at run time ([`Isa::detect`]); every path can be forced
//! ([`sgemm_with_isa`]) so every path the CPU supports is tested, not only the fastest. The
//! project VM exposes AVX2+FMA but not AVX-512 (whatever `/proc/cpuinfo` of other Zen 4 hosts
//! shows), so there the AVX2 kernel is the one that runs; the AVX-512 kernel is compiled and
//! selected only where `avx512f` is detected, and is tested only on such a machine.
//! All ISAs share one tile geometry and one packed layout, so packed data ([`PackedB`]) and the
//! C-ABI entries ([`ffi`]) do not depend on the machine.
//!
//! When C has few columns (`n <= 4 * NR`: a convolution's late layers, 7x7 = 49 pixels) and A
//! is row-major, the AVX2 path reads A in place instead of packing it: each element of A is
//! then used for only `2n` FLOPs, and packing it would cost as much as the multiply. The
//! kernel prefetches the next panel's rows, which are too short a stream for the hardware
//! prefetcher.
//!
//! Three more operand forms serve the compiler's convolutions and linear layers:
//! - B may be the im2col matrix of an image, or its transpose, never built: the driver packs
//!   its blocks straight from the image ([`im2col`]);
//! - A may be packed whole ahead of time ([`pack_a_whole`]: constant weights, once);
//! - C with at most four rows against a B contiguous along k (a batch-1 linear layer's
//!   transposed weight) is computed as dot products, the weight streamed once (`skinny`).
//!
//! A 3x3 stride-1 convolution may instead run as a Winograd convolution: the filter, input
//! and output transforms of F(2x2, 3x3) and F(4x4, 3x3) are in [`winograd`], with the
//! per-point products left to the GEMM driver.
//!
//! # Addressing convention
//! Strides are in elements and may be any value, negative included. In the safe API, element
//! `(i, j)` of a `rows x cols` operand is at index `base + i*rs + j*cs` of its slice, where
//! `base` is the smallest offset that keeps every accessed index non-negative: `0` for
//! non-negative strides; for a negative stride the slice starts at the last row (or column),
//! so a reversed view is a slice of exactly the elements it covers. Row-major `m x k` A is
//! `(rsa, csa) = (k, 1)`, a transposed (column-major) one `(1, m)`.
//!
//! The safe API validates every index it will touch and returns [`GemmError`] instead of
//! panicking. The raw C-ABI entries in [`ffi`] are for JIT-generated code, which has already
//! checked its shapes.

// This crate is the one place where the workspace's `unsafe_code = "deny"` is lifted: SIMD
// kernels need `std::arch` intrinsics (raw pointer loads/stores under `#[target_feature]`), the
// JIT needs `extern "C"` entries taking raw pointers, and threads write disjoint tiles of one C
// through raw pointers. Every unsafe block is small and carries a `// SAFETY:` comment; the safe
// API checks bounds before entering any of them.
#![allow(unsafe_code)]

mod driver;
pub mod ffi;
pub mod im2col;
mod isa;
mod kernels;
pub mod layout;
mod pack;
mod packed_b;
mod pool;
mod skinny;
pub mod winograd;

pub use driver::{
    Activation, Bias, Epilogue, sgemm, sgemm_conv_with_isa, sgemm_epilogue_with_isa,
    sgemm_packed_b, sgemm_packed_b_threaded, sgemm_packed_b_with_isa, sgemm_threaded,
    sgemm_with_isa,
};
pub use ffi::symbols;

/// Runs `f(0)`, ..., `f(shares - 1)` on the process-wide worker pool that threaded GEMM calls
/// use (the calling thread takes part; see the pool's notes for why not a crate), returning
/// when all have finished: how the runtime runs a kernel's parallel loop in pieces.
pub fn parallel_for<F: Fn(usize) + Sync>(shares: usize, f: F) {
    pool::run(shares, f)
}
pub use im2col::ConvGeom;
pub use isa::Isa;
pub use layout::{KC, MC, MR, NC, NR};
pub use packed_b::PackedB;
pub use winograd::{
    WinogradError, filter_transform, filter_transform_transposed, filter_transform_with_isa,
    input_transform, input_transform_with_isa, output_transform, output_transform_with_isa,
};

/// Packs a whole row-major-or-strided `m x k` A once (constant weights), in the layout of
/// [`layout::packed_a_whole_len`], for [`ffi::sinter_sgemm_conv`] with `a_packed`.
///
/// # Errors
/// [`GemmError::SliceTooShort`] or [`GemmError::Overflow`] if `a` does not hold the matrix.
pub fn pack_a_whole(
    m: usize,
    k: usize,
    a: &[f32],
    rsa: isize,
    csa: isize,
) -> Result<Vec<f32>, GemmError> {
    let a0 = driver::locate("A", m, k, rsa, csa, a.len())?;
    let m_pad = m.div_ceil(MR) * MR;
    let mut out = vec![0.0f32; layout::packed_a_whole_len(m, k)];
    let isa = Isa::detect();
    for pc in (0..k).step_by(KC) {
        let kc = KC.min(k - pc);
        let src = a
            .as_ptr()
            .wrapping_add(a0)
            .wrapping_offset(pc as isize * csa);
        // SAFETY: `locate` proved every element (i < m, p < k) of A is inside `a`; the slice's
        // panels take m_pad * kc floats at pc * m_pad, inside `out`; `isa` is available.
        unsafe { pack::pack_a(isa, m, kc, src, rsa, csa, out.as_mut_ptr().add(pc * m_pad)) };
    }
    Ok(out)
}

/// Why a GEMM call was rejected. Returned by the safe API before any element is touched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GemmError {
    /// An operand's slice is shorter than its shape and strides require.
    #[error(
        "operand {operand}: a {rows}x{cols} matrix with strides ({rs}, {cs}) spans {needed} elements, but the slice has {len}"
    )]
    SliceTooShort {
        /// `"A"`, `"B"` or `"C"`.
        operand: &'static str,
        /// Rows of the operand as the call sees it.
        rows: usize,
        /// Columns of the operand.
        cols: usize,
        /// Row stride.
        rs: isize,
        /// Column stride.
        cs: isize,
        /// Elements the shape and strides span.
        needed: usize,
        /// Length of the slice given.
        len: usize,
    },
    /// The extent of an operand does not fit in `isize` (the shape or strides are absurd).
    #[error("operand {operand}: a {rows}x{cols} matrix with strides ({rs}, {cs}) overflows isize")]
    Overflow {
        /// `"A"`, `"B"` or `"C"`.
        operand: &'static str,
        /// Rows.
        rows: usize,
        /// Columns.
        cols: usize,
        /// Row stride.
        rs: isize,
        /// Column stride.
        cs: isize,
    },
    /// The strides of C map two different `(i, j)` to the same element (for example a zero
    /// stride), so the result would depend on the order of writes (and race across threads).
    #[error("operand C: a {rows}x{cols} matrix with strides ({rs}, {cs}) has overlapping elements")]
    OverlappingOutput {
        /// Rows of C.
        rows: usize,
        /// Columns of C.
        cols: usize,
        /// Row stride of C.
        rs: isize,
        /// Column stride of C.
        cs: isize,
    },
    /// The requested instruction set is not supported by this CPU.
    #[error("instruction set {0:?} is not available on this CPU")]
    IsaUnavailable(Isa),
}
