//! The GEMM driver: argument checking, BLIS loop nest, edge tiles, threads, and the safe API.
//!
//! The loop nest is Goto/BLIS's: for each `NC`-wide column block of B and `KC`-deep slice of
//! k, pack that block of B once; for each `MC`-tall block of A, pack it; then sweep the
//! `MR x NR` tiles with the microkernel (B panel resident in L1, A block in L2). `alpha` is
//! applied per k slice and the caller's `beta` only on the first slice (later slices
//! accumulate with `beta = 1`), so `beta == 0` never reads C.
//!
//! Threads split M or N (the policy is [`split`]) into contiguous ranges of whole tiles; each
//! thread runs the serial nest on its part, so threads write disjoint tiles of C and share
//! nothing mutable. The threads are the caller and workers of a persistent pool
//! ([`crate::pool`]), so a threaded call costs microseconds, not a thread spawn. Packing
//! buffers come from a small global pool and are reused across calls.
//!
//! The addressing convention of the safe API (where element `(0, 0)` is for negative strides)
//! is in the crate docs.

use std::sync::Mutex;

use crate::GemmError;
use crate::im2col::{ConvGeom, pack_b_conv, pack_b_conv_t};
use crate::isa::Isa;
use crate::kernels::{DirectTileFn, TileFn, direct_tile_fn, half_tile_fn, tile_fn, tile_partial};
use crate::layout::{KC, MC, MR, NC, NR, packed_a_len, packed_b_len};
use crate::pack::{pack_a, pack_b};
use crate::packed_b::PackedB;
use crate::skinny;

/// Up to this many columns of C (per `NC` block), a row-major A is read unpacked by the kernels
/// that can: each element of A is then used only `2 * n` FLOPs' worth, so packing it would
/// cost about as much as the multiply (the im2col shape `3136 x 576 x 64`).
const DIRECT_A_MAX_N: usize = 4 * NR;

/// A read-only strided matrix: element `(i, j)` at `ptr + i*rs + j*cs`.
#[derive(Clone, Copy)]
pub(crate) struct MatRef {
    pub(crate) ptr: *const f32,
    pub(crate) rs: isize,
    pub(crate) cs: isize,
}

impl MatRef {
    pub(crate) fn at(self, i: usize, j: usize) -> *const f32 {
        self.ptr
            .wrapping_offset(i as isize * self.rs + j as isize * self.cs)
    }
    fn t(self) -> MatRef {
        MatRef {
            ptr: self.ptr,
            rs: self.cs,
            cs: self.rs,
        }
    }
}

/// A writable strided matrix: element `(i, j)` at `ptr + i*rs + j*cs`.
#[derive(Clone, Copy)]
pub(crate) struct MatMut {
    pub(crate) ptr: *mut f32,
    pub(crate) rs: isize,
    pub(crate) cs: isize,
}

impl MatMut {
    pub(crate) fn at(self, i: usize, j: usize) -> *mut f32 {
        self.ptr
            .wrapping_offset(i as isize * self.rs + j as isize * self.cs)
    }
}

/// What is applied to each element of C after its last `k` slice, while the tile is in L1:
/// `c(i, j) += bias[i*rs + j*cs]` (one of the strides is 0: a bias per row or per column),
/// then the activation [`Act`]. This is how a convolution's or linear layer's bias and
/// activation cost no extra pass over C.
#[derive(Clone, Copy)]
pub(crate) struct Epi {
    /// The bias element of `(0, 0)`, or null for no bias.
    pub(crate) bias: *const f32,
    /// Bias stride per row of C.
    pub(crate) rs: isize,
    /// Bias stride per column of C.
    pub(crate) cs: isize,
    /// Applied after the bias.
    pub(crate) act: Act,
}

/// The activation of an epilogue, each with the IR op's exact formula (so fused results are
/// bit-identical to the reference interpreter's).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Act {
    /// Nothing.
    None,
    /// `c = 0` where `c < 0` (NaN and -0.0 pass).
    Relu,
    /// `c` where `c >= 0`, else `alpha * c`.
    LeakyRelu(f32),
    /// `1 / (1 + exp(-c))` with `f32::exp`.
    Sigmoid,
    /// `f32::tanh`.
    Tanh,
    /// `c` where `c >= 0`, else `slope[i*rs + j*cs] * c`.
    Prelu {
        /// The slope element of `(0, 0)`.
        slope: *const f32,
        /// Slope stride per row of C.
        rs: isize,
        /// Slope stride per column of C.
        cs: isize,
    },
    /// A relu's backward: `c` where `mask[i*rs + j*cs] > 0`, else `0` (the IR's
    /// `select(greater(mask, 0), c, 0)`; a NaN mask gives 0).
    ReluMask {
        /// The mask element of `(0, 0)`.
        mask: *const f32,
        /// Mask stride per row of C.
        rs: isize,
        /// Mask stride per column of C.
        cs: isize,
    },
}

impl Act {
    /// The activation with C-ABI code `code` (see `ffi::sinter_sgemm_epilogue`), `None` for an
    /// unknown code.
    pub(crate) fn from_code(
        code: u8,
        alpha: f32,
        slope: *const f32,
        rs: isize,
        cs: isize,
    ) -> Option<Act> {
        Some(match code {
            0 => Act::None,
            1 => Act::Relu,
            2 => Act::LeakyRelu(alpha),
            3 => Act::Sigmoid,
            4 => Act::Tanh,
            5 => Act::Prelu { slope, rs, cs },
            6 => Act::ReluMask {
                mask: slope,
                rs,
                cs,
            },
            _ => return None,
        })
    }

    fn shifted(self, i: usize, j: usize) -> Act {
        match self {
            Act::Prelu { slope, rs, cs } => Act::Prelu {
                slope: slope.wrapping_offset(i as isize * rs + j as isize * cs),
                rs,
                cs,
            },
            Act::ReluMask { mask, rs, cs } => Act::ReluMask {
                mask: mask.wrapping_offset(i as isize * rs + j as isize * cs),
                rs,
                cs,
            },
            a => a,
        }
    }

    fn t(self) -> Act {
        match self {
            Act::Prelu { slope, rs, cs } => Act::Prelu {
                slope,
                rs: cs,
                cs: rs,
            },
            Act::ReluMask { mask, rs, cs } => Act::ReluMask {
                mask,
                rs: cs,
                cs: rs,
            },
            a => a,
        }
    }
}

impl Epi {
    /// No epilogue.
    pub(crate) const NONE: Epi = Epi {
        bias: std::ptr::null(),
        rs: 0,
        cs: 0,
        act: Act::None,
    };

    pub(crate) fn is_none(self) -> bool {
        self.bias.is_null() && self.act == Act::None
    }

    /// The epilogue of the sub-matrix starting at row `i`, column `j`.
    fn shifted(self, i: usize, j: usize) -> Epi {
        Epi {
            bias: if self.bias.is_null() {
                self.bias
            } else {
                self.bias
                    .wrapping_offset(i as isize * self.rs + j as isize * self.cs)
            },
            act: self.act.shifted(i, j),
            ..self
        }
    }

    /// The epilogue of the transposed problem.
    fn t(self) -> Epi {
        Epi {
            rs: self.cs,
            cs: self.rs,
            act: self.act.t(),
            ..self
        }
    }

    /// Applies the epilogue to the `rows x cols` block of C at `c`, whose element `(0, 0)` is
    /// element `(i0, j0)` of the whole C.
    ///
    /// # Safety
    /// The block's elements must be valid for reading and writing, and the bias and slope
    /// elements of its rows and columns readable.
    pub(crate) unsafe fn apply(self, rows: usize, cols: usize, c: MatMut, i0: usize, j0: usize) {
        let e = self.shifted(i0, j0);
        // One loop per activation, so the element loop carries no loop-invariant branch.
        // SAFETY (each arm): forwarded contract.
        unsafe {
            match e.act {
                Act::None => e.each(rows, cols, c, |v, _, _| v),
                // As the IR's relu: NaN and -0.0 pass through.
                Act::Relu => e.each(rows, cols, c, |v, _, _| if v < 0.0 { 0.0 } else { v }),
                Act::LeakyRelu(a) => {
                    e.each(rows, cols, c, |v, _, _| if v >= 0.0 { v } else { a * v })
                }
                Act::Sigmoid => e.each(rows, cols, c, |v, _, _| 1.0 / (1.0 + (-v).exp())),
                Act::Tanh => e.each(rows, cols, c, |v, _, _| v.tanh()),
                Act::Prelu { slope, rs, cs } => e.each(rows, cols, c, |v, i, j| {
                    if v >= 0.0 {
                        v
                    } else {
                        // SAFETY: (i, j) is in the block; its slope element is readable.
                        *slope.wrapping_offset(i as isize * rs + j as isize * cs) * v
                    }
                }),
                Act::ReluMask { mask, rs, cs } => e.each(rows, cols, c, |v, i, j| {
                    // SAFETY: (i, j) is in the block; its mask element is readable.
                    if *mask.wrapping_offset(i as isize * rs + j as isize * cs) > 0.0 {
                        v
                    } else {
                        0.0
                    }
                }),
            }
        }
    }

    /// `c(i, j) = f(c(i, j) + bias(i, j), i, j)` over the block.
    ///
    /// # Safety
    /// As for [`Epi::apply`] (with `self` already shifted to the block).
    #[inline(always)]
    unsafe fn each(
        self,
        rows: usize,
        cols: usize,
        c: MatMut,
        f: impl Fn(f32, usize, usize) -> f32,
    ) {
        if c.cs == 1 && (self.bias.is_null() || self.cs == 0) {
            // Contiguous rows of C and at most one bias value per row (a convolution's or a
            // transposed linear layer's): plain slices, which the compiler vectorises.
            for i in 0..rows {
                let b = if self.bias.is_null() {
                    0.0
                } else {
                    // SAFETY: row i's bias element is readable (contract).
                    unsafe { *self.bias.wrapping_offset(i as isize * self.rs) }
                };
                // SAFETY: row i, columns 0 .. cols of the block, contiguous (cs == 1).
                let row = unsafe { std::slice::from_raw_parts_mut(c.at(i, 0), cols) };
                for (j, v) in row.iter_mut().enumerate() {
                    // Adding 0.0 when there is no bias would turn -0.0 into 0.0.
                    let x = if self.bias.is_null() { *v } else { *v + b };
                    *v = f(x, i, j);
                }
            }
            return;
        }
        for i in 0..rows {
            for j in 0..cols {
                // SAFETY: (i, j) is in the block; its bias element is readable (contract).
                unsafe {
                    let p = c.at(i, j);
                    let mut v = *p;
                    if !self.bias.is_null() {
                        v += *self
                            .bias
                            .wrapping_offset(i as isize * self.rs + j as isize * self.cs);
                    }
                    *p = f(v, i, j);
                }
            }
        }
    }
}

/// Where A comes from: a strided matrix packed on the fly, or packed whole ahead of time
/// ([`crate::pack_a_whole`]: constant weights, packed once when a graph is compiled).
#[derive(Clone, Copy)]
pub(crate) enum ASrc {
    /// Pack blocks of this matrix as the loop nest needs them.
    Strided(MatRef),
    /// Already packed (the layout of [`crate::layout::packed_a_whole_len`]): `k` slices of
    /// `KC` columns, each `m_pad` rows of `MR`-row panels; this (sub-)problem starts at row
    /// `row0` (a multiple of `MR`).
    Packed {
        data: *const f32,
        m_pad: usize,
        row0: usize,
    },
}

impl ASrc {
    /// The sub-problem starting at row `lo` (a multiple of `MR` when packed).
    fn rows_from(self, lo: usize) -> ASrc {
        match self {
            ASrc::Strided(a) => ASrc::Strided(MatRef {
                ptr: a.at(lo, 0),
                ..a
            }),
            ASrc::Packed { data, m_pad, row0 } => ASrc::Packed {
                data,
                m_pad,
                row0: row0 + lo,
            },
        }
    }
}

/// Where B comes from: a strided matrix packed on the fly, or a [`PackedB`].
#[derive(Clone, Copy)]
pub(crate) enum BSrc {
    /// Pack blocks of this matrix as the loop nest needs them.
    Strided(MatRef),
    /// Already packed: the whole B, `k` blocks of `KC` rows, each `n_pad` wide; this
    /// (sub-)problem starts at column `col0` (a multiple of `NR`).
    Packed {
        data: *const f32,
        n_pad: usize,
        col0: usize,
    },
    /// The implicit im2col matrix of the image at `x` ([`crate::im2col`]), or its transpose
    /// (`geom.n() x geom.k()`: a weight gradient's B); this (sub-)problem starts at column
    /// `col0`.
    Conv {
        x: *const f32,
        geom: ConvGeom,
        transposed: bool,
        col0: usize,
    },
}

/// A growable 64-byte-aligned scratch buffer.
#[derive(Default)]
struct Scratch {
    v: Vec<f32>,
}

impl Scratch {
    /// A pointer to at least `len` writable floats, 64-byte aligned.
    fn get(&mut self, len: usize) -> *mut f32 {
        let need = len + 16;
        if self.v.len() < need {
            self.v = vec![0.0; need];
        }
        let p = self.v.as_mut_ptr();
        p.wrapping_add(p.align_offset(64).min(16))
    }
}

/// Packing buffers (A, B), shared by all threads: a call takes a pair and gives it back.
/// Thread-local buffers would be allocated (and page-faulted) afresh by every scoped worker
/// thread of `sgemm_threaded`; a pool keeps them warm across calls.
static WORK: Mutex<Vec<(Scratch, Scratch)>> = Mutex::new(Vec::new());

/// Checks that a `rows x cols` operand with strides `(rs, cs)` fits in `len` elements and
/// returns the index of element `(0, 0)` (see the crate docs' addressing convention).
pub(crate) fn locate(
    operand: &'static str,
    rows: usize,
    cols: usize,
    rs: isize,
    cs: isize,
    len: usize,
) -> Result<usize, GemmError> {
    if rows == 0 || cols == 0 {
        return Ok(0);
    }
    let overflow = || GemmError::Overflow {
        operand,
        rows,
        cols,
        rs,
        cs,
    };
    let ext = |d: usize, s: isize| -> Option<i128> { (d as i128 - 1).checked_mul(s as i128) };
    let (er, ec) = (
        ext(rows, rs).ok_or_else(overflow)?,
        ext(cols, cs).ok_or_else(overflow)?,
    );
    let lo = er.min(0) + ec.min(0);
    let hi = er.max(0) + ec.max(0);
    let needed = hi - lo + 1;
    if needed > isize::MAX as i128 {
        return Err(overflow());
    }
    if needed > len as i128 {
        return Err(GemmError::SliceTooShort {
            operand,
            rows,
            cols,
            rs,
            cs,
            needed: needed as usize,
            len,
        });
    }
    Ok((-lo) as usize)
}

/// Rejects strides of C under which two elements `(i, j)` share an address.
pub(crate) fn check_c_distinct(m: usize, n: usize, rs: isize, cs: isize) -> Result<(), GemmError> {
    if m == 0 || n == 0 {
        return Ok(());
    }
    let err = GemmError::OverlappingOutput {
        rows: m,
        cols: n,
        rs,
        cs,
    };
    let mut dims: Vec<(usize, usize)> = [(m, rs.unsigned_abs()), (n, cs.unsigned_abs())]
        .into_iter()
        .filter(|&(d, _)| d > 1)
        .collect();
    if dims.iter().any(|&(_, s)| s == 0) {
        return Err(err);
    }
    dims.sort_by_key(|&(_, s)| s);
    if let [(d0, s0), (_, s1)] = dims[..] {
        // The inner dimension's whole extent must stay below one step of the outer one.
        if (d0 as u128 - 1) * s0 as u128 >= s1 as u128 {
            return Err(err);
        }
    }
    Ok(())
}

/// `C = beta * C` (`beta == 0` writes zeros without reading).
///
/// # Safety
/// Every element `(i < m, j < n)` of `c` must be valid for reading and writing.
unsafe fn scale_c(m: usize, n: usize, beta: f32, c: MatMut) {
    for i in 0..m {
        for j in 0..n {
            let p = c.at(i, j);
            // SAFETY: (i, j) is an element of C.
            unsafe { *p = if beta == 0.0 { 0.0 } else { beta * *p } };
        }
    }
}

/// The serial loop nest on the calling thread.
///
/// # Safety
/// Every element of A (`m x k`), B (`k x n`, or the packed data) and C (`m x n`) must be
/// valid, C's elements distinct and not aliasing A or B, and `isa` available.
#[allow(clippy::too_many_arguments)] // the BLAS argument list
pub(crate) unsafe fn gemm_serial(
    isa: Isa,
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: ASrc,
    b: BSrc,
    beta: f32,
    c: MatMut,
    epi: Epi,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 || alpha == 0.0 {
        // SAFETY: forwarded contract on C (and on the epilogue's bias).
        unsafe {
            scale_c(m, n, beta, c);
            if !epi.is_none() {
                epi.apply(m, n, c, 0, 0);
            }
        }
        return;
    }
    let kernel = tile_fn(isa);
    let run = |work: &mut (Scratch, Scratch)| {
        let kc_max = k.min(KC);
        let abuf = work.0.get(packed_a_len(m.min(MC), kc_max));
        let bbuf = match b {
            BSrc::Strided(_) | BSrc::Conv { .. } => work.1.get(packed_b_len(kc_max, n.min(NC))),
            BSrc::Packed { .. } => std::ptr::null_mut(),
        };
        // SAFETY: the buffers are sized for the largest block; the caller's contract covers
        // the operands.
        unsafe { nest(isa, kernel, m, n, k, alpha, a, b, beta, c, epi, abuf, bbuf) };
    };
    let take = || {
        WORK.lock()
            .ok()
            .and_then(|mut v| v.pop())
            .unwrap_or_default()
    };
    let mut work = take();
    run(&mut work);
    if let Ok(mut pool) = WORK.lock() {
        pool.push(work);
    }
}

/// The five loops around the microkernel.
///
/// # Safety
/// As for [`gemm_serial`], plus `abuf` holds `packed_a_len(min(m, MC), min(k, KC))` floats and
/// `bbuf` (if B is strided) `packed_b_len(min(k, KC), min(n, NC))`.
#[allow(clippy::too_many_arguments)] // the BLAS argument list plus buffers
unsafe fn nest(
    isa: Isa,
    kernel: TileFn,
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: ASrc,
    b: BSrc,
    beta: f32,
    c: MatMut,
    epi: Epi,
    abuf: *mut f32,
    bbuf: *mut f32,
) {
    let epi = (!epi.is_none()).then_some(epi);
    let half = half_tile_fn(isa);
    // A read in place (small N, row-major A): only from a strided A.
    let strided = match a {
        ASrc::Strided(a) => Some(a),
        ASrc::Packed { .. } => None,
    };
    let direct =
        strided.and_then(|a| direct_tile_fn(isa).filter(|_| a.cs == 1 && n <= DIRECT_A_MAX_N));
    for jc in (0..n).step_by(NC) {
        let nc = NC.min(n - jc);
        for pc in (0..k).step_by(KC) {
            let kc = KC.min(k - pc);
            let beta_k = if pc == 0 { beta } else { 1.0 };
            let last_k = pc + kc == k;
            let bblock: *const f32 = match b {
                BSrc::Strided(b) => {
                    // SAFETY: the block (pc.., jc..) of kc x nc is inside B; bbuf is large
                    // enough for it.
                    unsafe { pack_b(isa, kc, nc, b.at(pc, jc), b.rs, b.cs, bbuf) };
                    bbuf
                }
                BSrc::Packed { data, n_pad, col0 } => {
                    data.wrapping_add(pc * n_pad + (col0 + jc) * kc)
                }
                BSrc::Conv {
                    x,
                    geom,
                    transposed,
                    col0,
                } => {
                    // SAFETY: rows pc .. pc + kc and columns col0 + jc .. + nc are inside the
                    // implicit matrix or its transpose (the caller's contract: k and n are the
                    // geometry's, less col0); bbuf is large enough for the block.
                    unsafe {
                        if transposed {
                            pack_b_conv_t(isa, &geom, x, pc, kc, col0 + jc, nc, bbuf)
                        } else {
                            pack_b_conv(&geom, x, pc, kc, col0 + jc, nc, bbuf)
                        }
                    };
                    bbuf
                }
            };
            for ic in (0..m).step_by(MC) {
                let mc = MC.min(m - ic);
                let full = mc / MR * MR;
                let ablock: *const f32 = match (a, strided) {
                    (ASrc::Packed { data, m_pad, row0 }, _) => {
                        data.wrapping_add(pc * m_pad + (row0 + ic) * kc)
                    }
                    (ASrc::Strided(_), Some(a)) if direct.is_some() => {
                        // Only the partial last panel is packed (zero rows); full panels are
                        // read in place.
                        // SAFETY: rows ic+full .. ic+mc, columns pc.. of A; abuf is large
                        // enough.
                        let edge = abuf.wrapping_add(full * kc);
                        unsafe {
                            pack_a(isa, mc - full, kc, a.at(ic + full, pc), a.rs, a.cs, edge)
                        };
                        abuf
                    }
                    (ASrc::Strided(a), _) => {
                        // SAFETY: the block (ic.., pc..) of mc x kc is inside A; abuf is large
                        // enough.
                        unsafe { pack_a(isa, mc, kc, a.at(ic, pc), a.rs, a.cs, abuf) };
                        abuf
                    }
                };
                let tile = |ir: usize, jr: usize| {
                    let (mr, nr) = (MR.min(mc - ir), NR.min(nc - jr));
                    let bp = bblock.wrapping_add(jr * kc);
                    let ap = ablock.wrapping_add(ir * kc);
                    let cp = c.at(ic + ir, jc + jr);
                    if let (Some(direct), Some(a), true) = (direct, strided, ir < full) {
                        let ad = a.at(ic + ir, pc);
                        // SAFETY: rows ic+ir .. +MR and columns pc .. pc+kc of A exist (a full
                        // panel, unit column stride); bp is a packed B panel; the mr x nr
                        // tile at cp is inside C.
                        unsafe {
                            if nr == NR {
                                direct(kc, alpha, ad, a.rs, bp, beta_k, cp, c.rs, c.cs);
                            } else {
                                direct_partial(
                                    direct, nr, kc, alpha, ad, a.rs, bp, beta_k, cp, c.rs, c.cs,
                                );
                            }
                        }
                    } else {
                        // SAFETY: ap/bp are packed panels of kc*MR / kc*NR floats; the
                        // mr x nr tile at cp is inside C.
                        unsafe {
                            tile_partial(
                                kernel, half, mr, nr, kc, alpha, ap, bp, beta_k, cp, c.rs, c.cs,
                            )
                        };
                    }
                    if let (Some(e), true) = (epi, last_k) {
                        let t = MatMut { ptr: cp, ..c };
                        // SAFETY: the mr x nr tile at cp is inside C; the bias covers C's
                        // rows and columns (caller's contract).
                        unsafe { e.apply(mr, nr, t, ic + ir, jc + jr) };
                    }
                };
                if direct.is_some() {
                    // Unpacked A: keep each A panel in L1 across the few B panels (N is small,
                    // so the whole KC x nc block of B stays in L2).
                    for ir in (0..mc).step_by(MR) {
                        for jr in (0..nc).step_by(NR) {
                            tile(ir, jr);
                        }
                    }
                } else {
                    // Packed: each B panel stays in L1 while the A block streams from L2.
                    for jr in (0..nc).step_by(NR) {
                        for ir in (0..mc).step_by(MR) {
                            tile(ir, jr);
                        }
                    }
                }
            }
        }
    }
}

/// A tile of `MR x nr` (`nr < NR`) through the unpacked-A kernel and a scratch tile.
///
/// # Safety
/// As for the direct kernel, but only the `MR x nr` part of C need be valid.
#[allow(clippy::too_many_arguments)] // the kernel's argument list
unsafe fn direct_partial(
    direct: DirectTileFn,
    nr: usize,
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
    let mut tmp = [0.0f32; MR * NR];
    // SAFETY: `tmp` is a full row-major tile; A and B per the contract.
    unsafe { direct(k, alpha, a, rsa, b, 0.0, tmp.as_mut_ptr(), NR as isize, 1) };
    for i in 0..MR {
        for j in 0..nr {
            // SAFETY: i < MR, j < nr: inside the tile of C.
            let cij = unsafe { &mut *c.offset(i as isize * rsc + j as isize * csc) };
            let v = tmp[i * NR + j];
            *cij = if beta == 0.0 { v } else { v + beta * *cij };
        }
    }
}

/// One thread's share of a threaded GEMM.
struct Job {
    isa: Isa,
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: ASrc,
    b: BSrc,
    beta: f32,
    c: MatMut,
    epi: Epi,
}

// SAFETY: a Job only reads A and B (shared, read-only for the call) and writes its own range
// of C's rows or columns, disjoint from every other job's (C's elements are distinct, checked
// or promised by the caller); the pool runs all jobs before the call that made them returns.
unsafe impl Send for Job {}

impl Job {
    /// # Safety
    /// As for [`gemm_serial`] on this job's part.
    unsafe fn run(self) {
        // SAFETY: forwarded.
        unsafe {
            gemm_serial(
                self.isa, self.m, self.n, self.k, self.alpha, self.a, self.b, self.beta, self.c,
                self.epi,
            )
        }
    }
}

/// How a threaded call divides its work: `shares` contiguous ranges of whole tiles of M (or of
/// N), one per thread. Every element of C is then computed by the same kernel with the same
/// summation order as on one thread (k is never split), so the result does not depend on the
/// thread count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Split {
    /// Number of ranges (1: run on the calling thread).
    pub(crate) shares: usize,
    /// Split the rows of C (else its columns).
    pub(crate) rows: bool,
}

/// The least work (`2*m*n*k` FLOPs) worth giving one more thread: 2^22, about 50 us of one
/// core at 80 GFLOP/s. A split saves half of that only if a second core is free: the pool's
/// own cost per call is 0.1-0.3 us, but a parked worker takes a futex wake-up and a scheduler
/// slot to join, and each thread packs its own copy of the operand that is not split. The break-even on free cores could not be
/// measured (the VM ran at load 11-17 on 2 vCPUs; there a forced 2-way split never beat one
/// thread up to 14 MFLOP, since no second core was free), so this is an estimate to revisit on
/// a quiet machine.
pub(crate) const PAR_MIN_FLOPS: usize = 1 << 22;

/// The split policy. Splits only with at least [`PAR_MIN_FLOPS`] per share; along M when
/// `m >= n`, so that the smaller operand (B, `k x n`) is the one each thread packs again,
/// else along N; on the other axis if the preferred one has fewer whole tiles than threads
/// would use (LeNet's convolutions have 6 or 16 rows). Never more shares than tiles.
pub(crate) fn split(m: usize, n: usize, k: usize, threads: usize) -> Split {
    let flops = m.saturating_mul(n).saturating_mul(k).saturating_mul(2);
    let t = threads.max(1).min((flops / PAR_MIN_FLOPS).max(1));
    let (um, un) = (m.div_ceil(MR), n.div_ceil(NR));
    let rows = if m >= n {
        um >= t || um >= un
    } else {
        un < t && um > un
    };
    let units = if rows { um } else { un };
    Split {
        shares: t.min(units).max(1),
        rows,
    }
}

/// Splits M or N (see [`split`]) across up to `threads` threads: the calling thread and
/// workers of the process-wide pool ([`crate::pool`]).
///
/// # Safety
/// As for [`gemm_serial`].
#[allow(clippy::too_many_arguments)] // the BLAS argument list
pub(crate) unsafe fn gemm_parallel(
    isa: Isa,
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: ASrc,
    b: BSrc,
    beta: f32,
    c: MatMut,
    epi: Epi,
    threads: usize,
) {
    let s = split(m, n, k, threads);
    // SAFETY: forwarded.
    unsafe { gemm_split(isa, m, n, k, alpha, a, b, beta, c, epi, s) }
}

/// [`gemm_parallel`] with the split given (tests force splits that the policy would not make).
///
/// # Safety
/// As for [`gemm_serial`].
#[allow(clippy::too_many_arguments)] // the BLAS argument list
pub(crate) unsafe fn gemm_split(
    isa: Isa,
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: ASrc,
    b: BSrc,
    beta: f32,
    c: MatMut,
    epi: Epi,
    Split { shares: t, rows }: Split,
) {
    if let (ASrc::Strided(a), BSrc::Strided(bm)) = (a, b)
        && skinny::applies(m, k, alpha, bm)
    {
        // Decided on the whole problem's m, so every share takes the same path; the shares
        // are ranges of columns (a row split would leave nothing to share).
        let t = t.clamp(1, n.div_ceil(NR));
        let job = |q: usize| {
            let lo = (n.div_ceil(NR) * q / t * NR).min(n);
            let hi = (n.div_ceil(NR) * (q + 1) / t * NR).min(n);
            let (bq, cq) = (
                MatRef {
                    ptr: bm.at(0, lo),
                    ..bm
                },
                MatMut {
                    ptr: c.at(0, lo),
                    ..c
                },
            );
            // SAFETY: columns lo..hi of B and C are this share's, disjoint from the others';
            // the caller's contract covers the operands.
            unsafe {
                skinny::gemm_skinny(
                    isa,
                    m,
                    hi - lo,
                    k,
                    alpha,
                    a,
                    bq,
                    beta,
                    cq,
                    epi.shifted(0, lo),
                )
            };
        };
        if t == 1 {
            job(0);
        } else {
            let job = SyncFn(job);
            crate::pool::run(t, |q| job.call(q));
        }
        return;
    }
    if t <= 1 {
        // SAFETY: forwarded.
        unsafe { gemm_serial(isa, m, n, k, alpha, a, b, beta, c, epi) };
        return;
    }
    let (len, unit) = if rows { (m, MR) } else { (n, NR) };
    let units = len.div_ceil(unit);
    let job = |q: usize| {
        let lo = (units * q / t * unit).min(len);
        let hi = (units * (q + 1) / t * unit).min(len);
        if rows {
            Job {
                isa,
                m: hi - lo,
                n,
                k,
                alpha,
                a: a.rows_from(lo),
                b,
                beta,
                c: MatMut {
                    ptr: c.at(lo, 0),
                    ..c
                },
                epi: epi.shifted(lo, 0),
            }
        } else {
            let b = match b {
                BSrc::Strided(b) => BSrc::Strided(MatRef {
                    ptr: b.at(0, lo),
                    ..b
                }),
                BSrc::Packed { data, n_pad, col0 } => BSrc::Packed {
                    data,
                    n_pad,
                    col0: col0 + lo,
                },
                BSrc::Conv {
                    x,
                    geom,
                    transposed,
                    col0,
                } => BSrc::Conv {
                    x,
                    geom,
                    transposed,
                    col0: col0 + lo,
                },
            };
            Job {
                isa,
                m,
                n: hi - lo,
                k,
                alpha,
                a,
                b,
                beta,
                c: MatMut {
                    ptr: c.at(0, lo),
                    ..c
                },
                epi: epi.shifted(0, lo),
            }
        }
    };
    let job = SyncJobs(job);
    // SAFETY: share q's rows/columns of C are disjoint from every other share's; `pool::run`
    // runs each share once and returns only after all have finished, so the operands outlive
    // every share; the caller's contract covers the operands.
    crate::pool::run(t, |q| unsafe { job.get(q).run() });
}

/// The share-maker of [`gemm_parallel`], shareable across the pool's threads.
struct SyncJobs<F>(F);

impl<F: Fn(usize) -> Job> SyncJobs<F> {
    /// Share `q`.
    fn get(&self, q: usize) -> Job {
        (self.0)(q)
    }
}

/// A share closure of the skinny path, shareable across the pool's threads.
struct SyncFn<F>(F);

impl<F: Fn(usize)> SyncFn<F> {
    /// Runs share `q`.
    fn call(&self, q: usize) {
        (self.0)(q)
    }
}

// SAFETY: the closure captures raw pointers and scalars only; each share writes its own
// columns of C (see `gemm_split`), and the pool returns only after every share has finished.
unsafe impl<F> Sync for SyncFn<F> {}

// SAFETY: the closure only copies raw pointers and scalars into a new `Job` (it reads no
// memory through them); what the jobs then do is covered by `unsafe impl Send for Job`.
unsafe impl<F> Sync for SyncJobs<F> {}

/// The strided GEMM with every optimisation that needs no checking: a column-major C is
/// computed as `C^T = B^T A^T` so the kernel's contiguous-row store applies, and so is a C
/// of at most [`skinny::SKINNY_M`] columns whose A is contiguous along `k` (the per-point
/// products of a Winograd convolution on a 7x7 image: `[512 x 512] x [512 x 4]`), which then
/// runs as skinny dot products that stream A once instead of packing it.
///
/// # Safety
/// As for [`gemm_serial`] with a strided B.
#[allow(clippy::too_many_arguments)] // the BLAS argument list
pub(crate) unsafe fn gemm_strided(
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
    threads: usize,
) {
    // SAFETY (both arms): forwarded; transposing all three operands names the same elements.
    let skinny_t = n <= skinny::SKINNY_M && m > skinny::SKINNY_M && a.cs == 1;
    if (c.cs != 1 && c.rs == 1) || skinny_t {
        let ct = MatMut {
            ptr: c.ptr,
            rs: c.cs,
            cs: c.rs,
        };
        unsafe {
            gemm_parallel(
                isa,
                n,
                m,
                k,
                alpha,
                ASrc::Strided(b.t()),
                BSrc::Strided(a.t()),
                beta,
                ct,
                epi.t(),
                threads,
            )
        }
    } else {
        unsafe {
            gemm_parallel(
                isa,
                m,
                n,
                k,
                alpha,
                ASrc::Strided(a),
                BSrc::Strided(b),
                beta,
                c,
                epi,
                threads,
            )
        }
    }
}

/// `C = alpha * A * B + beta * C` (A is `m x k`, B `k x n`, C `m x n`) on one thread, with the
/// fastest instruction set of this CPU.
///
/// Strides are in elements and may be any value, including negative (see the crate docs'
/// addressing convention for where element `(0, 0)` is then): row-major A has `(rsa, csa) = (k, 1)`, a
/// transposed (column-major) A `(1, m)`. `beta == 0` overwrites C without reading it (NaN in C
/// does not propagate); `alpha == 0` or `k == 0` only scales C by `beta` without reading A or
/// B. Every index is checked before anything is touched.
///
/// # Errors
/// [`GemmError::SliceTooShort`] if a slice is shorter than its shape and strides span,
/// [`GemmError::Overflow`] for extents beyond `isize`, [`GemmError::OverlappingOutput`] if
/// C's strides alias two elements.
#[allow(clippy::too_many_arguments)] // the BLAS argument list
pub fn sgemm(
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: &[f32],
    rsa: isize,
    csa: isize,
    b: &[f32],
    rsb: isize,
    csb: isize,
    beta: f32,
    c: &mut [f32],
    rsc: isize,
    csc: isize,
) -> Result<(), GemmError> {
    sgemm_with_isa(
        Isa::detect(),
        m,
        n,
        k,
        alpha,
        a,
        rsa,
        csa,
        b,
        rsb,
        csb,
        beta,
        c,
        rsc,
        csc,
        1,
    )
}

/// [`sgemm`] on up to `threads` threads (the calling thread included; `0` means `1`), taken
/// from a process-wide pool of persistent workers. M (or N, when it is the larger or M has too
/// few tiles) is split into ranges of whole tiles, each with at least about 4 MFLOP of work
/// (`2*m*n*k >= 2^22` per thread), so small problems stay on the calling thread. Safe to call
/// from several threads at once. The result is bitwise equal to [`sgemm`]'s: each element of C is
/// computed by the same kernel with the same summation order.
///
/// # Errors
/// As for [`sgemm`].
#[allow(clippy::too_many_arguments)] // the BLAS argument list
pub fn sgemm_threaded(
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: &[f32],
    rsa: isize,
    csa: isize,
    b: &[f32],
    rsb: isize,
    csb: isize,
    beta: f32,
    c: &mut [f32],
    rsc: isize,
    csc: isize,
    threads: usize,
) -> Result<(), GemmError> {
    sgemm_with_isa(
        Isa::detect(),
        m,
        n,
        k,
        alpha,
        a,
        rsa,
        csa,
        b,
        rsb,
        csb,
        beta,
        c,
        rsc,
        csc,
        threads,
    )
}

/// [`sgemm_threaded`] on a chosen instruction-set path, so that tests and benchmarks can run
/// the AVX2 and portable kernels on an AVX-512 machine.
///
/// # Errors
/// As for [`sgemm`], plus [`GemmError::IsaUnavailable`] if this CPU cannot run `isa`.
#[allow(clippy::too_many_arguments)] // the BLAS argument list
pub fn sgemm_with_isa(
    isa: Isa,
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: &[f32],
    rsa: isize,
    csa: isize,
    b: &[f32],
    rsb: isize,
    csb: isize,
    beta: f32,
    c: &mut [f32],
    rsc: isize,
    csc: isize,
    threads: usize,
) -> Result<(), GemmError> {
    sgemm_epilogue_with_isa(
        isa,
        m,
        n,
        k,
        alpha,
        a,
        rsa,
        csa,
        b,
        rsb,
        csb,
        beta,
        c,
        rsc,
        csc,
        threads,
        &Epilogue::default(),
    )
}

/// A bias added to C after the product, one value per row or per column.
#[derive(Clone, Copy, Debug, Default)]
pub enum Bias<'a> {
    /// No bias.
    #[default]
    None,
    /// `c(i, j) += bias[i]` (a convolution's bias when C is `C_out x pixels`); at least `m`
    /// values.
    PerRow(&'a [f32]),
    /// `c(i, j) += bias[j]` (a linear layer's bias when C is `batch x features`); at least `n`
    /// values.
    PerCol(&'a [f32]),
}

/// The activation an [`Epilogue`] applies after the bias, each with the IR op's formula.
#[derive(Clone, Copy, Debug, Default)]
pub enum Activation<'a> {
    /// None.
    #[default]
    None,
    /// `c = 0` where `c < 0` (NaN passes).
    Relu,
    /// `c` where `c >= 0`, else `alpha * c`.
    LeakyRelu(f32),
    /// `1 / (1 + exp(-c))`.
    Sigmoid,
    /// `tanh(c)`.
    Tanh,
    /// `c` where `c >= 0`, else `slope * c`, one slope per row or per column (as a [`Bias`]).
    Prelu(Bias<'a>),
    /// A relu's backward: `c` where `mask > 0`, else 0, with `mask` an `m x n` row-major
    /// matrix (the relu's output).
    ReluMask(&'a [f32]),
}

/// What [`sgemm_epilogue_with_isa`] applies to C after `alpha * A * B + beta * C`: the bias,
/// then the activation. Applied per tile after its last `k` slice, while the tile is in L1,
/// so it costs no pass over C.
#[derive(Clone, Copy, Debug, Default)]
pub struct Epilogue<'a> {
    /// The bias.
    pub bias: Bias<'a>,
    /// Then this.
    pub activation: Activation<'a>,
}

/// [`sgemm_with_isa`] followed by an [`Epilogue`]: `C = act(alpha * A * B + beta * C + bias)`.
///
/// # Errors
/// As for [`sgemm_with_isa`], plus [`GemmError::SliceTooShort`] (operand `"bias"` or
/// `"slope"`) if the bias or a PReLU slope has fewer values than rows (or columns) of C.
#[allow(clippy::too_many_arguments)] // the BLAS argument list
pub fn sgemm_epilogue_with_isa(
    isa: Isa,
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: &[f32],
    rsa: isize,
    csa: isize,
    b: &[f32],
    rsb: isize,
    csb: isize,
    beta: f32,
    c: &mut [f32],
    rsc: isize,
    csc: isize,
    threads: usize,
    epilogue: &Epilogue<'_>,
) -> Result<(), GemmError> {
    let epi = epi_of(m, n, epilogue)?;
    let (a, c) = checked_a_c(isa, (m, n, k), a, rsa, csa, c, rsc, csc)?;
    let b0 = locate("B", k, n, rsb, csb, b.len())?;
    let b = MatRef {
        ptr: b.as_ptr().wrapping_add(b0),
        rs: rsb,
        cs: csb,
    };
    // SAFETY: `locate` proved every accessed element of A, B, C and the bias is inside its
    // slice, `check_c_distinct` that C's elements are distinct; `&mut c` excludes aliasing with
    // A, B and the bias; `isa` is available.
    unsafe { gemm_strided(isa, m, n, k, alpha, a, b, beta, c, epi, threads) };
    Ok(())
}

/// A convolution of one image as GEMM with implicit im2col ([`crate::im2col`]):
/// `C = act(alpha * A * col + beta * C + bias)`, where `col` (`geom.k() x geom.n()`) is the
/// im2col matrix of the image `x` and A is `m x geom.k()` (the weights). Bit-identical to
/// [`sgemm_epilogue_with_isa`] on the explicit `col` (row-major, `csb == 1`), without building
/// it. Same conventions otherwise.
///
/// # Errors
/// As for [`sgemm_epilogue_with_isa`] (operand `"x"` if the image is shorter than
/// `geom.image_len()`).
#[allow(clippy::too_many_arguments)] // the BLAS argument list
pub fn sgemm_conv_with_isa(
    isa: Isa,
    m: usize,
    alpha: f32,
    a: &[f32],
    rsa: isize,
    csa: isize,
    x: &[f32],
    geom: &ConvGeom,
    beta: f32,
    c: &mut [f32],
    rsc: isize,
    csc: isize,
    threads: usize,
    epilogue: &Epilogue<'_>,
) -> Result<(), GemmError> {
    let (n, k) = (geom.n(), geom.k());
    let epi = epi_of(m, n, epilogue)?;
    let (a, c) = checked_a_c(isa, (m, n, k), a, rsa, csa, c, rsc, csc)?;
    locate("x", 1, geom.image_len(), 0, 1, x.len())?;
    let b = BSrc::Conv {
        x: x.as_ptr(),
        geom: *geom,
        transposed: false,
        col0: 0,
    };
    // SAFETY: `locate` proved A, the image and C (and the epilogue's vectors) are inside their
    // slices, `check_c_distinct` that C's elements are distinct; `&mut c` excludes aliasing;
    // `isa` is available.
    unsafe {
        gemm_parallel(
            isa,
            m,
            n,
            k,
            alpha,
            ASrc::Strided(a),
            b,
            beta,
            c,
            epi,
            threads,
        )
    };
    Ok(())
}

/// The safe API's common checks: `isa` available, A (`m x k`) and C (`m x n`) inside their
/// slices, C's elements distinct. Returns A and C as the driver takes them.
#[allow(clippy::too_many_arguments)] // two strided operands
fn checked_a_c(
    isa: Isa,
    (m, n, k): (usize, usize, usize),
    a: &[f32],
    rsa: isize,
    csa: isize,
    c: &mut [f32],
    rsc: isize,
    csc: isize,
) -> Result<(MatRef, MatMut), GemmError> {
    if !isa.is_available() {
        return Err(GemmError::IsaUnavailable(isa));
    }
    let a0 = locate("A", m, k, rsa, csa, a.len())?;
    let c0 = locate("C", m, n, rsc, csc, c.len())?;
    check_c_distinct(m, n, rsc, csc)?;
    Ok((
        MatRef {
            ptr: a.as_ptr().wrapping_add(a0),
            rs: rsa,
            cs: csa,
        },
        MatMut {
            ptr: c.as_mut_ptr().wrapping_add(c0),
            rs: rsc,
            cs: csc,
        },
    ))
}

/// The driver's epilogue of a safe-API [`Epilogue`] on an `m x n` C, its vectors checked.
fn epi_of(m: usize, n: usize, epilogue: &Epilogue<'_>) -> Result<Epi, GemmError> {
    let per = |name, b: Bias<'_>| -> Result<(*const f32, isize, isize), GemmError> {
        Ok(match b {
            Bias::None => (std::ptr::null(), 0, 0),
            Bias::PerRow(v) => {
                locate(name, m, 1, 1, 0, v.len())?;
                (v.as_ptr(), 1, 0)
            }
            Bias::PerCol(v) => {
                locate(name, 1, n, 0, 1, v.len())?;
                (v.as_ptr(), 0, 1)
            }
        })
    };
    let (bias, rs, cs) = per("bias", epilogue.bias)?;
    let act = match epilogue.activation {
        Activation::None => Act::None,
        Activation::Relu => Act::Relu,
        Activation::LeakyRelu(a) => Act::LeakyRelu(a),
        Activation::Sigmoid => Act::Sigmoid,
        Activation::Tanh => Act::Tanh,
        Activation::Prelu(slope) => {
            let (slope, rs, cs) = per("slope", slope)?;
            if slope.is_null() {
                Act::None
            } else {
                Act::Prelu { slope, rs, cs }
            }
        }
        Activation::ReluMask(mask) => {
            locate("mask", m, n, n as isize, 1, mask.len())?;
            Act::ReluMask {
                mask: mask.as_ptr(),
                rs: n as isize,
                cs: 1,
            }
        }
    };
    Ok(Epi { bias, rs, cs, act })
}

/// `C = alpha * A * B + beta * C` with B pre-packed ([`PackedB`]; its `k` and `n` are the
/// problem's). For constant weights: the packing cost is paid once, not per call. Same
/// conventions as [`sgemm`].
///
/// # Errors
/// As for [`sgemm`].
#[allow(clippy::too_many_arguments)] // the BLAS argument list
pub fn sgemm_packed_b(
    m: usize,
    alpha: f32,
    a: &[f32],
    rsa: isize,
    csa: isize,
    b: &PackedB,
    beta: f32,
    c: &mut [f32],
    rsc: isize,
    csc: isize,
) -> Result<(), GemmError> {
    sgemm_packed_b_with_isa(
        Isa::detect(),
        m,
        alpha,
        a,
        rsa,
        csa,
        b,
        beta,
        c,
        rsc,
        csc,
        1,
    )
}

/// [`sgemm_packed_b`] on up to `threads` threads (see [`sgemm_threaded`]).
///
/// # Errors
/// As for [`sgemm`].
#[allow(clippy::too_many_arguments)] // the BLAS argument list
pub fn sgemm_packed_b_threaded(
    m: usize,
    alpha: f32,
    a: &[f32],
    rsa: isize,
    csa: isize,
    b: &PackedB,
    beta: f32,
    c: &mut [f32],
    rsc: isize,
    csc: isize,
    threads: usize,
) -> Result<(), GemmError> {
    sgemm_packed_b_with_isa(
        Isa::detect(),
        m,
        alpha,
        a,
        rsa,
        csa,
        b,
        beta,
        c,
        rsc,
        csc,
        threads,
    )
}

/// [`sgemm_packed_b_threaded`] on a chosen instruction-set path (for tests).
///
/// # Errors
/// As for [`sgemm_with_isa`].
#[allow(clippy::too_many_arguments)] // the BLAS argument list
pub fn sgemm_packed_b_with_isa(
    isa: Isa,
    m: usize,
    alpha: f32,
    a: &[f32],
    rsa: isize,
    csa: isize,
    b: &PackedB,
    beta: f32,
    c: &mut [f32],
    rsc: isize,
    csc: isize,
    threads: usize,
) -> Result<(), GemmError> {
    let (k, n) = (b.k(), b.n());
    let (a, c) = checked_a_c(isa, (m, n, k), a, rsa, csa, c, rsc, csc)?;
    let b = BSrc::Packed {
        data: b.as_ptr(),
        n_pad: b.n_padded(),
        col0: 0,
    };
    // SAFETY: as in `sgemm_with_isa`; the packed data holds k blocks of n_pad columns, as
    // `PackedB` guarantees.
    unsafe {
        gemm_parallel(
            isa,
            m,
            n,
            k,
            alpha,
            ASrc::Strided(a),
            b,
            beta,
            c,
            Epi::NONE,
            threads,
        )
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(len: usize, seed: u64) -> Vec<f32> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                ((x >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// Row-major `C = 1.5 * A * B - 0.5 * C` then `epi`, split as given.
    #[allow(clippy::too_many_arguments)]
    fn run_split(
        isa: Isa,
        (m, n, k): (usize, usize, usize),
        a: &[f32],
        b: &[f32],
        c0: &[f32],
        epi: Epi,
        s: Split,
    ) -> Vec<u32> {
        let mut c = c0.to_vec();
        let (a, b, cm) = (
            MatRef {
                ptr: a.as_ptr(),
                rs: k as isize,
                cs: 1,
            },
            BSrc::Strided(MatRef {
                ptr: b.as_ptr(),
                rs: n as isize,
                cs: 1,
            }),
            MatMut {
                ptr: c.as_mut_ptr(),
                rs: n as isize,
                cs: 1,
            },
        );
        // SAFETY: row-major operands of exactly their shapes; the epilogue's vectors (built by
        // the caller) cover C's rows, columns or elements; `isa` is available.
        unsafe { gemm_split(isa, m, n, k, 1.5, ASrc::Strided(a), b, -0.5, cm, epi, s) };
        c.iter().map(|v| v.to_bits()).collect()
    }

    #[test]
    fn split_policy() {
        // LeNet's per-image convolutions: far below the break-even work.
        assert_eq!(split(6, 784, 25, 2).shares, 1);
        assert_eq!(split(16, 100, 150, 2).shares, 1);
        assert_eq!(split(1024, 1024, 1024, 1).shares, 1);
        assert_eq!(split(1024, 1024, 1024, 0).shares, 1);
        // ResNet-18's 3x3 convolutions at batch 1 (m = pixels, n = channels out).
        let rows = |shares| Split { shares, rows: true };
        let cols = |shares| Split {
            shares,
            rows: false,
        };
        assert_eq!(split(3136, 64, 576, 2), rows(2));
        assert_eq!(split(196, 256, 2304, 2), cols(2));
        assert_eq!(split(49, 512, 4608, 2), cols(2));
        // The shapes of the public bit-identity test split 2 and 3 ways.
        for (m, n, k, r) in [
            (301, 97, 700, true),
            (53, 389, 1000, false),
            (7, 1000, 3000, false),
            (1000, 7, 3000, true),
        ] {
            for t in [2, 3] {
                assert_eq!(
                    split(m, n, k, t),
                    Split { shares: t, rows: r },
                    "{m}x{n}x{k}"
                );
            }
        }
        // Never more shares than tiles, nor than work allows.
        assert_eq!(split(6, 30, 1 << 20, 4).shares, 1);
        assert_eq!(split(12, 20, 1 << 20, 4), rows(2));
        let (m, n, k) = (128, 128, 128);
        assert_eq!(split(m, n, k, 8).shares, 2 * m * n * k / PAR_MIN_FLOPS);
    }

    /// Every forced split (2 to 4 shares, rows or columns, more shares than tiles included)
    /// gives C bit for bit as one thread does, with every epilogue.
    #[test]
    fn forced_splits_are_bit_identical() {
        for isa in Isa::available() {
            for (m, n, k) in [
                (7, 13, 17),
                (31, 70, 65),
                (13, 70, 300),
                (150, 40, 9),
                (3, 2, 5),
            ] {
                let seed = (m * 1000 + n) as u64;
                let (a, b, c0) = (
                    data(m * k, seed),
                    data(k * n, seed + 1),
                    data(m * n, seed + 2),
                );
                let (row, col, mask) = (data(m, seed + 3), data(n, seed + 4), data(m * n, 7));
                let acts = [
                    Act::None,
                    Act::Relu,
                    Act::LeakyRelu(0.1),
                    Act::Sigmoid,
                    Act::Tanh,
                    Act::Prelu {
                        slope: col.as_ptr(),
                        rs: 0,
                        cs: 1,
                    },
                    Act::ReluMask {
                        mask: mask.as_ptr(),
                        rs: n as isize,
                        cs: 1,
                    },
                ];
                for (bias, rs, cs) in [
                    (std::ptr::null(), 0, 0),
                    (row.as_ptr(), 1, 0),
                    (col.as_ptr(), 0, 1),
                ] {
                    for act in acts {
                        let epi = Epi { bias, rs, cs, act };
                        let one = Split {
                            shares: 1,
                            rows: true,
                        };
                        let want = run_split(isa, (m, n, k), &a, &b, &c0, epi, one);
                        for shares in 2..=4 {
                            for rows in [true, false] {
                                let s = Split { shares, rows };
                                let got = run_split(isa, (m, n, k), &a, &b, &c0, epi, s);
                                assert!(got == want, "{isa:?} {m}x{n}x{k} {act:?} {s:?}");
                            }
                        }
                    }
                }
            }
        }
    }

    /// Implicit-im2col convolutions and weight gradients split 2 and 3 ways along rows or
    /// columns (each column share starts its packing at its own column of the implicit
    /// matrix) equal one thread.
    #[test]
    fn forced_conv_splits_are_bit_identical() {
        let g = ConvGeom {
            channels: 5,
            h: 13,
            w: 11,
            kh: 3,
            kw: 3,
            stride: [1, 2],
            pad: [1, 1],
            dilation: [1, 1],
            oh: 13,
            ow: 6,
        };
        let x = data(g.image_len(), 6);
        for transposed in [false, true] {
            // The convolution (m x n(pixels)) or the weight gradient (m x k(taps)).
            let (m, n, k) = if transposed {
                (20, g.k(), g.n())
            } else {
                (20, g.n(), g.k())
            };
            let a = data(m * k, 5);
            for isa in Isa::available() {
                let run = |s: Split| {
                    let mut c = vec![f32::NAN; m * n];
                    let (am, b, cm) = (
                        ASrc::Strided(MatRef {
                            ptr: a.as_ptr(),
                            rs: k as isize,
                            cs: 1,
                        }),
                        BSrc::Conv {
                            x: x.as_ptr(),
                            geom: g,
                            transposed,
                            col0: 0,
                        },
                        MatMut {
                            ptr: c.as_mut_ptr(),
                            rs: n as isize,
                            cs: 1,
                        },
                    );
                    // SAFETY: A and C are row-major of exactly their shapes, the image holds
                    // g.image_len() floats; `isa` is available.
                    unsafe { gemm_split(isa, m, n, k, 1.0, am, b, 0.0, cm, Epi::NONE, s) };
                    c.iter().map(|v| v.to_bits()).collect::<Vec<u32>>()
                };
                let want = run(Split {
                    shares: 1,
                    rows: true,
                });
                for shares in [2, 3] {
                    for rows in [true, false] {
                        let s = Split { shares, rows };
                        assert!(run(s) == want, "{isa:?} {s:?} transposed {transposed}");
                    }
                }
            }
        }
    }

    /// Threaded GEMMs called from inside pool pieces (nested) and from several threads at once
    /// complete and match one thread.
    #[test]
    fn nested_and_concurrent_calls() {
        let (m, n, k) = (200, 96, 600);
        assert!(split(m, n, k, 2).shares == 2);
        let (a, b, c0) = (data(m * k, 1), data(k * n, 2), data(m * n, 3));
        let isa = Isa::detect();
        let one = Split {
            shares: 1,
            rows: true,
        };
        let want = run_split(isa, (m, n, k), &a, &b, &c0, Epi::NONE, one);
        let two = split(m, n, k, 2);
        let bad = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| {
                    for _ in 0..10 {
                        crate::pool::run(2, |_| {
                            let got = run_split(isa, (m, n, k), &a, &b, &c0, Epi::NONE, two);
                            if got != want {
                                bad.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            }
                        });
                    }
                });
            }
        });
        assert_eq!(bad.into_inner(), 0);
    }
}
