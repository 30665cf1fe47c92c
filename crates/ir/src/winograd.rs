//! The Winograd minimal-filtering algorithms F(2x2, 3x3) and F(4x4, 3x3) that the
//! `winograd_*` ops are defined by (Lavin & Gray, "Fast Algorithms for Convolutional Neural
//! Networks", 2016).
//!
//! A 3x3 stride-1 convolution computes each `m x m` tile of its output from an
//! `(m + 2) x (m + 2)` window `d` of its input as `A^T [(G g G^T) ⊙ (B^T d B)] A`: the filter
//! `g` and the window are moved to `T = (m + 2)^2` "transform points" where the convolution is
//! an elementwise product, so over many channels it becomes `T` independent matrix products
//! (`[C_out x C_in] x [C_in x tiles]`) of `2.25 / 9` (m = 4) or `4 / 9` (m = 2) of the direct
//! convolution's multiplications. The price is rounding: the matrices for m = 4 hold entries up
//! to 8 and 1/24, so results drift further from the direct sum than for m = 2 (the measured
//! errors are in `ir-spec/ops.md`).
//!
//! These tables are the normative definition; the reference interpreter applies them as plain
//! matrix products. The JIT's microkernels hold their own copy, tested against the interpreter.

/// The matrices of F(m x m, 3 x 3), row-major: `bt` is `B^T` (`a x a`), `g` is `G` (`a x 3`),
/// `at` is `A^T` (`m x a`), with `a = m + 2`.
#[derive(Clone, Copy, Debug)]
pub struct Matrices {
    /// Output tile size `m`.
    pub m: usize,
    /// `B^T`, `(m + 2) x (m + 2)`.
    pub bt: &'static [f32],
    /// `G`, `(m + 2) x 3`.
    pub g: &'static [f32],
    /// `A^T`, `m x (m + 2)`.
    pub at: &'static [f32],
}

impl Matrices {
    /// Input tile size `m + 2`.
    pub fn a(&self) -> usize {
        self.m + 2
    }

    /// Transform points `(m + 2)^2`.
    pub fn points(&self) -> usize {
        self.a() * self.a()
    }
}

#[rustfmt::skip]
const F2: Matrices = Matrices {
    m: 2,
    bt: &[
        1.0, 0.0, -1.0, 0.0,
        0.0, 1.0, 1.0, 0.0,
        0.0, -1.0, 1.0, 0.0,
        0.0, 1.0, 0.0, -1.0,
    ],
    g: &[
        1.0, 0.0, 0.0,
        0.5, 0.5, 0.5,
        0.5, -0.5, 0.5,
        0.0, 0.0, 1.0,
    ],
    at: &[
        1.0, 1.0, 1.0, 0.0,
        0.0, 1.0, -1.0, -1.0,
    ],
};

#[rustfmt::skip]
const F4: Matrices = Matrices {
    m: 4,
    bt: &[
        4.0, 0.0, -5.0, 0.0, 1.0, 0.0,
        0.0, -4.0, -4.0, 1.0, 1.0, 0.0,
        0.0, 4.0, -4.0, -1.0, 1.0, 0.0,
        0.0, -2.0, -1.0, 2.0, 1.0, 0.0,
        0.0, 2.0, -1.0, -2.0, 1.0, 0.0,
        0.0, 4.0, 0.0, -5.0, 0.0, 1.0,
    ],
    g: &[
        1.0 / 4.0, 0.0, 0.0,
        -1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0,
        -1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0,
        1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0,
        1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0,
        0.0, 0.0, 1.0,
    ],
    at: &[
        1.0, 1.0, 1.0, 1.0, 1.0, 0.0,
        0.0, 1.0, -1.0, 2.0, -2.0, 0.0,
        0.0, 1.0, 1.0, 4.0, 4.0, 0.0,
        0.0, 1.0, -1.0, 8.0, -8.0, 1.0,
    ],
};

/// The output tile sizes the ops accept.
pub const TILES: [i64; 2] = [2, 4];

/// The matrices for output tile size `m` (2 or 4).
pub fn matrices(m: i64) -> Option<Matrices> {
    match m {
        2 => Some(F2),
        4 => Some(F4),
        _ => None,
    }
}

/// Tiles of size `m` covering `extent` output rows (or columns).
pub fn tiles(extent: usize, m: usize) -> usize {
    extent.div_ceil(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each algorithm reproduces a 1-D correlation on small integers (the 2-D case is the
    /// nesting of two 1-D ones): `A^T [(G g) ⊙ (B^T d)] = correlate(d, g)`, exactly but for
    /// the rounding of `G`'s entries (1/6, 1/12, 1/24) to f32.
    #[test]
    fn one_dimensional_identity() {
        for m in TILES {
            let f = matrices(m).unwrap();
            let a = f.a();
            let d: Vec<f64> = (0..a).map(|i| (i as f64 * 3.0 + 1.0) % 7.0 - 3.0).collect();
            let g = [2.0, -1.0, 3.0];
            let gg: Vec<f64> = (0..a)
                .map(|i| (0..3).map(|k| f.g[i * 3 + k] as f64 * g[k]).sum())
                .collect();
            let bd: Vec<f64> = (0..a)
                .map(|i| (0..a).map(|k| f.bt[i * a + k] as f64 * d[k]).sum())
                .collect();
            for r in 0..f.m {
                let y: f64 = (0..a).map(|i| f.at[r * a + i] as f64 * gg[i] * bd[i]).sum();
                let want: f64 = (0..3).map(|k| d[r + k] * g[k]).sum();
                assert!(
                    (y - want).abs() < 1e-6 * (1.0 + want.abs()),
                    "m={m} r={r}: {y} vs {want}"
                );
            }
        }
    }
}
