//! The tile geometry, cache blocking and packed-panel layouts, as constants.
//!
//! These are the contract between the packing routines, the microkernels, [`crate::PackedB`]
//! and any JIT-generated loop nest that calls [`crate::ffi::sinter_ukernel`] directly. They are
//! the same for every instruction set, so packed data never depends on the CPU.
//!
//! # Packed A (`k x MR` panels)
//! A block of `mc` rows and `kc` columns of A is stored as `ceil(mc / MR)` panels, one after
//! another. Panel `q` holds rows `q*MR .. q*MR + MR`; inside a panel, element `(i, p)` (row
//! `q*MR + i`, column `p`) is at `p * MR + i`. Rows past `mc` are zero. The packed block takes
//! [`packed_a_len`]`(mc, kc)` floats.
//!
//! # Packed B (`k x NR` panels)
//! A block of `kc` rows and `nc` columns of B is stored as `ceil(nc / NR)` panels. Panel `q`
//! holds columns `q*NR .. q*NR + NR`; element `(p, j)` is at `p * NR + j` inside the panel.
//! Columns past `nc` are zero. The block takes [`packed_b_len`]`(kc, nc)` floats.
//!
//! # Why 8x32
//! On Zen 4 (and other AVX-512 cores) an `8 x 32` tile is 16 zmm accumulators: enough
//! independent FMA chains to cover the FMA latency, with per-k traffic of two 64-byte B loads
//! and eight broadcasts, well under the load ports' limit. The notes measured 85-97% of the
//! FMA peak for this shape. The AVX2 kernel computes the same tile as four `4 x 16` passes
//! (8 ymm accumulators each) and the portable kernel as plain loops, so all three share the
//! layout.

/// Rows of the register tile (and of a packed A panel).
pub const MR: usize = 8;
/// Columns of the register tile (and of a packed B panel).
pub const NR: usize = 32;
/// Depth of a cache block: a packed B panel (`KC x NR`, 32 KiB) streams through L1 while the
/// `MR x NR` accumulators stay in registers.
pub const KC: usize = 256;
/// Rows of A packed per block (`MC x KC`, 144 KiB of floats): sized to stay in L2.
pub const MC: usize = 144;
/// Columns of B packed per block (`KC x NC`, 2 MiB): sized for L2/L3.
pub const NC: usize = 2048;

/// Floats needed for a packed block of A with `mc` rows and `kc` columns.
pub const fn packed_a_len(mc: usize, kc: usize) -> usize {
    mc.div_ceil(MR) * MR * kc
}

/// Floats needed for a packed block of B with `kc` rows and `nc` columns.
pub const fn packed_b_len(kc: usize, nc: usize) -> usize {
    nc.div_ceil(NR) * NR * kc
}
