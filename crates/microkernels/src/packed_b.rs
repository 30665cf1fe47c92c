//! [`PackedB`]: a B matrix packed once into the kernel's panel layout, for constant weights.
//!
//! A layer's weights do not change between calls, so packing them on every GEMM is wasted
//! traffic (it matters most when M is small, as in batch-1 inference). `PackedB` stores the
//! whole `k x n` matrix as the driver would pack it: `ceil(k / KC)` slices of `KC` rows (the
//! last one shorter), each slice `n_padded` columns wide as `ceil(n / NR)` panels of the
//! [`crate::layout`] B format. Slice `s` starts at `s * KC * n_padded`; within a slice of `kc`
//! rows, panel `q` starts at `q * NR * kc`.

use crate::GemmError;
use crate::driver::locate;
use crate::isa::Isa;
use crate::layout::{KC, NR, packed_b_len};
use crate::pack::pack_b;

/// A `k x n` B matrix packed for [`crate::sgemm_packed_b`].
///
/// Layout: `ceil(k / KC)` slices of [`KC`] rows (the last one shorter), each `n_padded()`
/// columns wide as `ceil(n / NR)` panels of the [`crate::layout`] B format. Slice `s` starts at
/// `s * KC * n_padded()`; within a slice of `kc` rows, panel `q` starts at `q * NR * kc`.
#[derive(Clone)]
pub struct PackedB {
    k: usize,
    n: usize,
    n_pad: usize,
    data: Vec<f32>,
    offset: usize,
}

impl std::fmt::Debug for PackedB {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackedB")
            .field("k", &self.k)
            .field("n", &self.n)
            .finish()
    }
}

impl PackedB {
    /// Packs B (`k x n`, element `(p, j)` at `b[base + p*rsb + j*csb]`, with the addressing
    /// convention of [`crate::sgemm`]).
    ///
    /// # Errors
    /// [`GemmError::SliceTooShort`] or [`GemmError::Overflow`] if `b` does not hold the shape.
    pub fn new(
        k: usize,
        n: usize,
        b: &[f32],
        rsb: isize,
        csb: isize,
    ) -> Result<PackedB, GemmError> {
        let b0 = locate("B", k, n, rsb, csb, b.len())?;
        let n_pad = n.div_ceil(NR) * NR;
        let len = k * n_pad;
        // 16 spare floats to start the panels on a 64-byte boundary.
        let mut data = vec![0.0f32; len + 16];
        let offset = data.as_ptr().align_offset(64).min(16);
        let isa = Isa::detect();
        let base = b.as_ptr().wrapping_add(b0);
        for pc in (0..k).step_by(KC) {
            let kc = KC.min(k - pc);
            let dst = data[offset + pc * n_pad..].as_mut_ptr();
            debug_assert!(packed_b_len(kc, n) <= len - pc * n_pad);
            let src = base.wrapping_offset(pc as isize * rsb);
            // SAFETY: `locate` proved every element (p < k, j < n) is inside `b`, so rows
            // pc..pc+kc are; `dst` has `packed_b_len(kc, n) = kc * n_pad` floats left; the
            // detected ISA is available.
            unsafe { pack_b(isa, kc, n, src, rsb, csb, dst) };
        }
        Ok(PackedB {
            k,
            n,
            n_pad,
            data,
            offset,
        })
    }

    /// Rows of B (the GEMM's `k`).
    pub fn k(&self) -> usize {
        self.k
    }

    /// Columns of B (the GEMM's `n`).
    pub fn n(&self) -> usize {
        self.n
    }

    /// `n` rounded up to a multiple of [`NR`]: the width of each packed slice.
    pub fn n_padded(&self) -> usize {
        self.n_pad
    }

    /// The packed floats (`k * n_padded()` of them), in the layout described on [`PackedB`].
    pub fn as_slice(&self) -> &[f32] {
        &self.data[self.offset..self.offset + self.k * self.n_pad]
    }

    /// Pointer to the packed data (64-byte aligned).
    pub fn as_ptr(&self) -> *const f32 {
        self.as_slice().as_ptr()
    }
}
