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
//! # Why 6x32
//! One geometry must serve both vector widths, because packed data and the C-ABI entries must
//! not depend on the CPU. `6 x 32` is the AVX2 classic `6 x 16` (12 ymm accumulators + 2 B
//! vectors + 1 broadcast = 15 of 16 registers) done in two column passes, and for AVX-512 a
//! `6 x 32` tile of 12 zmm accumulators: more independent FMA chains than latency x
//! throughput needs (4 x 1 zmm/cycle on Zen 4, 4 x 2 on Intel), with per-k traffic of two B
//! vector loads and six broadcasts for 12 FMAs, under the load ports' limit. The deployment
//! VM turned out to expose AVX2+FMA only (no AVX-512, whatever `shared/CODEGEN-NOTES.md`
//! says), so the AVX2 shape decided it. The portable kernel is plain loops on the same layout.

/// Rows of the register tile (and of a packed A panel).
pub const MR: usize = 6;
/// Columns of the register tile (and of a packed B panel).
pub const NR: usize = 32;
/// Depth of a cache block: a packed B panel (`KC x NR`, 24 KiB) plus an A panel (`KC x MR`,
/// 4.5 KiB) fit the 32 KiB L1 of Zen 4 while the `MR x NR` accumulators stay in registers.
pub const KC: usize = 192;
/// Rows of A packed per block (`MC x KC`, 108 KiB): sized to stay in L2; a multiple of `MR`.
pub const MC: usize = 144;
/// Columns of B packed per block (`KC x NC`, 1.5 MiB): sized for L2/L3.
pub const NC: usize = 2048;

/// Floats needed for a packed block of A with `mc` rows and `kc` columns.
pub const fn packed_a_len(mc: usize, kc: usize) -> usize {
    mc.div_ceil(MR) * MR * kc
}

/// Floats of a whole `m x k` A packed ahead of time ([`crate::pack_a_whole`]): for each
/// slice of `KC` columns (the last may be narrower), the panels of all `ceil(m / MR)` row
/// groups, one after another. The slice starting at column `pc` (with `kc` columns) starts at
/// `pc * m_pad` (`m_pad = ceil(m / MR) * MR`), its panel `q` at `pc * m_pad + q * MR * kc`:
/// so any range of rows that starts at a multiple of `MR` (a thread's share) is addressable.
pub const fn packed_a_whole_len(m: usize, k: usize) -> usize {
    m.div_ceil(MR) * MR * k
}

/// Floats needed for a packed block of B with `kc` rows and `nc` columns.
pub const fn packed_b_len(kc: usize, nc: usize) -> usize {
    nc.div_ceil(NR) * NR * kc
}
