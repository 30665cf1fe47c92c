//! Run-time choice of the instruction set, detected once and cached.
//!
//! `is_x86_feature_detected!` costs a little on each call; a GEMM is called per layer, and the
//! C-ABI entries per JIT call, so the choice is stored in an atomic after the first detection.

use std::sync::atomic::{AtomicU8, Ordering};

/// An instruction-set path for the microkernels and packing routines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Isa {
    /// AVX-512F: the native `6 x 32` kernel (12 zmm accumulators).
    Avx512,
    /// AVX2 + FMA: the `6 x 32` tile as two `6 x 16` passes (12 ymm accumulators each).
    Avx2,
    /// Plain Rust loops that the compiler auto-vectorises for the baseline target.
    Portable,
}

const UNKNOWN: u8 = 0;
static DETECTED: AtomicU8 = AtomicU8::new(UNKNOWN);

impl Isa {
    /// Every path, fastest first.
    pub const ALL: [Isa; 3] = [Isa::Avx512, Isa::Avx2, Isa::Portable];

    /// The fastest path this CPU supports (detected on the first call, then cached).
    pub fn detect() -> Isa {
        match DETECTED.load(Ordering::Relaxed) {
            1 => Isa::Avx512,
            2 => Isa::Avx2,
            3 => Isa::Portable,
            _ => {
                let isa = Isa::ALL
                    .into_iter()
                    .find(|isa| isa.is_available())
                    .unwrap_or(Isa::Portable);
                DETECTED.store(isa.code(), Ordering::Relaxed);
                isa
            }
        }
    }

    /// Whether this CPU can run the path.
    pub fn is_available(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(not(target_arch = "x86_64"))]
            Isa::Avx512 | Isa::Avx2 => false,
            Isa::Portable => true,
        }
    }

    /// The paths available on this CPU, fastest first.
    pub fn available() -> Vec<Isa> {
        Isa::ALL.into_iter().filter(|i| i.is_available()).collect()
    }

    fn code(self) -> u8 {
        match self {
            Isa::Avx512 => 1,
            Isa::Avx2 => 2,
            Isa::Portable => 3,
        }
    }
}
