//! Implicit im2col: packing a convolution's B operand straight from the image.
//!
//! A convolution as GEMM multiplies the weights (`C_out x C_in*kH*kW`) by the im2col matrix
//! `col` (`C_in*kH*kW x oH*oW`): row `(ci, ky, kx)`, column `(oy, ox)` holds
//! `x[ci, oy*sy + ky*dy - py, ox*sx + kx*dx - px]`, or 0 in the padding. Building `col` in
//! memory and then packing it writes and reads `kH*kW` times the image: for a 3x3 conv at
//! 56x56 that is a 7 MB matrix, far past L2, streamed twice. Here the driver's B packing
//! (`pack_b_conv`) reads the image (which stays in cache) and writes each `KC x NC` block
//! of `col`, already in panel layout, without `col` ever existing: one pass instead of three.
//!
//! The packed values are exactly those of `col`, so the product is bit-identical to the
//! explicit im2col GEMM (the tests check both).

use crate::isa::Isa;
use crate::layout::NR;
use crate::pack::{transpose_ok, transpose8};

/// The geometry of one image's implicit im2col matrix (the C ABI passes a pointer to it).
///
/// The image has `channels` planes of `h x w` floats, contiguous (NCHW for one image and one
/// group). B has `k = channels * kh * kw` rows and `n = oh * ow` columns.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeom {
    /// Input channels (of this group).
    pub channels: usize,
    /// Image height.
    pub h: usize,
    /// Image width.
    pub w: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Stride (y, x).
    pub stride: [usize; 2],
    /// Padding before the image (y, x); padding after is implied by `oh`, `ow`.
    pub pad: [usize; 2],
    /// Dilation (y, x).
    pub dilation: [usize; 2],
    /// Output height.
    pub oh: usize,
    /// Output width.
    pub ow: usize,
}

impl ConvGeom {
    /// Rows of B: `channels * kh * kw`.
    pub fn k(&self) -> usize {
        self.channels * self.kh * self.kw
    }

    /// Columns of B: `oh * ow`.
    pub fn n(&self) -> usize {
        self.oh * self.ow
    }

    /// Floats of the image: `channels * h * w`.
    pub fn image_len(&self) -> usize {
        self.channels * self.h * self.w
    }

    /// Element `(p, q)` of the im2col matrix, read from `x` (the reference for tests).
    pub fn element(&self, x: &[f32], p: usize, q: usize) -> f32 {
        let (ci, ky, kx) = (p / (self.kh * self.kw), p / self.kw % self.kh, p % self.kw);
        let (oy, ox) = (q / self.ow, q % self.ow);
        let iy = (oy * self.stride[0] + ky * self.dilation[0]) as isize - self.pad[0] as isize;
        let ix = (ox * self.stride[1] + kx * self.dilation[1]) as isize - self.pad[1] as isize;
        if (0..self.h as isize).contains(&iy) && (0..self.w as isize).contains(&ix) {
            x[ci * self.h * self.w + iy as usize * self.w + ix as usize]
        } else {
            0.0
        }
    }
}

/// For a tap at `shift` (input position `o * stride + shift` of output `o`), the outputs
/// `lo..hi` (within `0..outs`) whose input lies in `0..extent`.
fn inside(shift: isize, stride: usize, extent: usize, outs: usize) -> (usize, usize) {
    let s = stride.max(1) as isize;
    // Smallest o with o*s + shift >= 0, and one past the largest with o*s + shift < extent.
    let lo = (-shift).max(0).div_euclid(s) + isize::from((-shift).max(0) % s != 0);
    let hi = if extent as isize - shift <= 0 {
        0
    } else {
        (extent as isize - shift - 1).div_euclid(s) + 1
    };
    let lo = lo.clamp(0, outs as isize) as usize;
    let hi = hi.clamp(lo as isize, outs as isize) as usize;
    (lo, hi)
}

/// A run of consecutive elements of one im2col row: zeros (padding), or values read from
/// the image at `src + t * stride` for the run's `t`-th element.
#[derive(Clone, Copy)]
enum Run {
    Zeros,
    Image { src: *const f32, stride: usize },
}

/// Walks row `r` of the im2col matrix over columns `q0 .. q1`, calling `emit(d, len, run)`
/// for consecutive runs (`d` counts from `q0`): per output row, the padding before, the
/// inside and the padding after, each one run.
#[inline(always)]
fn walk_row(
    g: &ConvGeom,
    x: *const f32,
    r: usize,
    q0: usize,
    q1: usize,
    mut emit: impl FnMut(usize, usize, Run),
) {
    let (ci, ky, kx) = (r / (g.kh * g.kw), r / g.kw % g.kh, r % g.kw);
    let sy = (ky * g.dilation[0]) as isize - g.pad[0] as isize;
    let sx = (kx * g.dilation[1]) as isize - g.pad[1] as isize;
    let (lo, hi) = inside(sx, g.stride[1], g.w, g.ow);
    let chan = x.wrapping_add(ci * g.h * g.w);
    let (mut q, mut oy, mut ox0) = (q0, q0 / g.ow, q0 % g.ow);
    while q < q1 {
        // The part of output row oy in this range: outputs ox0 .. ox0 + len.
        let len = (g.ow - ox0).min(q1 - q);
        let d = q - q0;
        let iy = oy as isize * g.stride[0] as isize + sy;
        if iy < 0 || iy >= g.h as isize {
            emit(d, len, Run::Zeros);
        } else {
            let a = lo.clamp(ox0, ox0 + len);
            let b = hi.clamp(a, ox0 + len);
            emit(d, a - ox0, Run::Zeros);
            // The input column of output a: inside the image for a < b.
            let src = chan
                .wrapping_add(iy as usize * g.w)
                .wrapping_offset(a as isize * g.stride[1] as isize + sx);
            emit(
                d + a - ox0,
                b - a,
                Run::Image {
                    src,
                    stride: g.stride[1],
                },
            );
            emit(d + b - ox0, ox0 + len - b, Run::Zeros);
        }
        q += len;
        oy += 1;
        ox0 = 0;
    }
}

/// Packs the `kc x nc` block of the implicit im2col matrix starting at row `pc`, column `jc`
/// into `ceil(nc / NR)` panels at `dst` (the layout of [`crate::layout`], columns past `nc`
/// zero): the B of a convolution, `y = w * col`.
///
/// # Safety
/// `x` must be readable for `g.image_len()` floats; `pc + kc <= g.k()`, `jc + nc <= g.n()`;
/// `dst` writable for `packed_b_len(kc, nc)` floats, not overlapping the image.
pub(crate) unsafe fn pack_b_conv(
    g: &ConvGeom,
    x: *const f32,
    pc: usize,
    kc: usize,
    jc: usize,
    nc: usize,
    dst: *mut f32,
) {
    // Each row is walked into a contiguous strip (in L1), then copied to its panels a whole
    // panel row (NR floats) at a time: writing the runs straight into the panels split every
    // run at panel boundaries, which cost more than this second pass.
    let mut strip = vec![0.0f32; nc];
    let full = nc / NR * NR;
    for p in 0..kc {
        let row = strip.as_mut_ptr();
        walk_row(g, x, pc + p, jc, jc + nc, |d, len, run| {
            // SAFETY: strip columns d .. d + len <= nc; image reads inside the image.
            unsafe { fill(row.add(d), len, run) }
        });
        for jr in (0..full).step_by(NR) {
            // SAFETY: strip columns jr .. jr + NR <= nc; panel row p of panel jr / NR.
            unsafe {
                let v = (strip.as_ptr().add(jr) as *const [f32; NR]).read_unaligned();
                (dst.add(jr * kc + p * NR) as *mut [f32; NR]).write_unaligned(v);
            }
        }
        if full < nc {
            let d = dst.wrapping_add(full * kc + p * NR);
            // SAFETY: the last panel's row p: nc - full columns from the strip, zeros after.
            unsafe {
                std::ptr::copy_nonoverlapping(strip.as_ptr().add(full), d, nc - full);
                std::ptr::write_bytes(d.add(nc - full), 0, NR - (nc - full));
            }
        }
    }
}

/// Writes the run `run` of `len` elements at `row` (contiguous).
///
/// # Safety
/// `row` writable for `len` floats; an image run readable as [`walk_row`] promises.
#[inline(always)]
unsafe fn fill(row: *mut f32, len: usize, run: Run) {
    if let Run::Image { src, stride: 1 } = run {
        // Stride 1: contiguous source, eight at a time as whole vectors.
        let mut t = 0;
        while t + 8 <= len {
            // SAFETY: t + 8 <= len: inside the run and the row.
            unsafe {
                let v = (src.add(t) as *const [f32; 8]).read_unaligned();
                (row.add(t) as *mut [f32; 8]).write_unaligned(v);
            }
            t += 8;
        }
        while t < len {
            // SAFETY: t < len.
            unsafe { *row.add(t) = *src.add(t) };
            t += 1;
        }
        return;
    }
    let mut t = 0;
    // Eight at a time through a fixed-size array (no libc call per run), then the rest.
    let value = |t: usize| match run {
        Run::Zeros => 0.0,
        // SAFETY: t < len: inside the run.
        Run::Image { src, stride } => unsafe { *src.add(t * stride) },
    };
    while t + 8 <= len {
        let v: [f32; 8] = std::array::from_fn(|l| value(t + l));
        // SAFETY: t + 8 <= len floats of the row.
        unsafe { (row.add(t) as *mut [f32; 8]).write_unaligned(v) };
        t += 8;
    }
    while t < len {
        // SAFETY: t < len.
        unsafe { *row.add(t) = value(t) };
        t += 1;
    }
}

/// Packs the `kc x nc` block starting at row `pc`, column `jc` of the *transposed* im2col
/// matrix (`g.n() x g.k()`: row = output position, column = `(ci, ky, kx)`) into panels at
/// `dst`: the B of a convolution's weight gradient, `dw = dy * col^T`. Eight rows of im2col
/// at a time are walked as in [`pack_b_conv`] into a small strip (contiguous, in L1), then
/// transposed 8x8 into their panel columns (one 8-float store per output position, instead
/// of eight scattered ones).
///
/// # Safety
/// `x` must be readable for `g.image_len()` floats; `pc + kc <= g.n()`, `jc + nc <= g.k()`;
/// `dst` writable for `packed_b_len(kc, nc)` floats, not overlapping the image; `isa`
/// available.
#[allow(clippy::too_many_arguments)] // the block and its source
pub(crate) unsafe fn pack_b_conv_t(
    isa: Isa,
    g: &ConvGeom,
    x: *const f32,
    pc: usize,
    kc: usize,
    jc: usize,
    nc: usize,
    dst: *mut f32,
) {
    let mut strip = vec![0.0f32; 8 * kc];
    for jb in (0..nc).step_by(8) {
        let rows = 8.min(nc - jb);
        for r in 0..rows {
            let row = strip.as_mut_ptr().wrapping_add(r * kc);
            walk_row(g, x, jc + jb + r, pc, pc + kc, |d, len, run| {
                // SAFETY: columns d .. d + len < kc of strip row r; image reads inside it.
                unsafe { fill(row.add(d), len, run) }
            });
        }
        // Columns jb .. jb + rows of the block: lanes jb % NR .. + rows (<= NR: jb and NR are
        // multiples of 8) of panel jb / NR.
        let base = dst.wrapping_add(jb / NR * kc * NR + jb % NR);
        let mut p0 = 0;
        if transpose_ok(isa) {
            while p0 + 8 <= kc {
                // SAFETY: strip rows r < rows, columns p0 .. p0 + 8 <= kc; panel rows
                // p0 .. p0 + 8 (NR apart), lanes + rows, inside the block.
                unsafe {
                    transpose8(
                        strip.as_ptr().add(p0),
                        kc as isize,
                        rows,
                        base.add(p0 * NR),
                        NR,
                    )
                };
                p0 += 8;
            }
        }
        for p in p0..kc {
            for r in 0..rows {
                // SAFETY: as above, one element.
                unsafe { *base.add(p * NR + r) = strip[r * kc + p] };
            }
        }
    }
    // The last panel's columns past nc.
    for j in nc..nc.next_multiple_of(NR) {
        let col = dst.wrapping_add(j / NR * kc * NR + j % NR);
        for p in 0..kc {
            // SAFETY: row p of the last panel, a zero column past nc.
            unsafe { *col.add(p * NR) = 0.0 };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::packed_b_len;

    /// Asserts that `got` holds a `rows x cols` block in panel layout, element `(r, c)` equal
    /// (bit for bit) to `want(r, c)` and the columns past `cols` zero.
    fn check_panels(
        got: &[f32],
        rows: usize,
        cols: usize,
        what: &str,
        want: impl Fn(usize, usize) -> f32,
    ) {
        assert_eq!(got.len(), packed_b_len(rows, cols), "{what}");
        for (i, &v) in got.iter().enumerate() {
            let (panel, rest) = (i / (rows * NR), i % (rows * NR));
            let (r, j) = (rest / NR, rest % NR);
            let c = panel * NR + j;
            let w = if c < cols { want(r, c) } else { 0.0 };
            assert!(
                v.to_bits() == w.to_bits(),
                "{what}: row {r} col {c}: {v} vs {w}"
            );
        }
    }

    #[test]
    fn inside_matches_a_scan() {
        for shift in -7..9 {
            for stride in 1..4 {
                for extent in 0..9 {
                    for outs in 0..9 {
                        let ok: Vec<usize> = (0..outs)
                            .filter(|&o| {
                                let i = o as isize * stride as isize + shift;
                                i >= 0 && i < extent as isize
                            })
                            .collect();
                        let (lo, hi) = inside(shift, stride, extent, outs);
                        if ok.is_empty() {
                            assert_eq!(lo, hi, "{shift} {stride} {extent} {outs}");
                        } else {
                            assert_eq!((lo, hi), (ok[0], ok[ok.len() - 1] + 1));
                        }
                    }
                }
            }
        }
    }

    /// Every block (offsets and sizes that straddle output rows and panels) of several
    /// geometries (padding larger than the kernel, stride > kernel, dilation, 1x1, images
    /// smaller than the kernel) packs to exactly the panels of the explicit matrix.
    #[test]
    fn packed_blocks_equal_the_explicit_matrix() {
        let geoms = [
            (3, 7, 9, 3, 3, [1, 1], [1, 1], [1, 1]),
            (2, 5, 5, 5, 5, [1, 1], [2, 2], [1, 1]),
            (2, 9, 8, 3, 2, [2, 3], [0, 1], [1, 1]),
            (1, 6, 7, 3, 3, [1, 2], [3, 4], [2, 1]),
            (4, 4, 4, 1, 1, [1, 1], [0, 0], [1, 1]),
            (2, 2, 3, 3, 3, [1, 1], [1, 1], [1, 1]),
            (1, 11, 11, 2, 2, [4, 4], [0, 0], [1, 1]),
        ];
        for (channels, h, w, kh, kw, stride, pad, dilation) in geoms {
            let out = |e: usize, k: usize, s: usize, p: usize, d: usize| {
                (e + 2 * p).saturating_sub(d * (k - 1) + 1) / s + 1
            };
            let g = ConvGeom {
                channels,
                h,
                w,
                kh,
                kw,
                stride,
                pad,
                dilation,
                oh: out(h, kh, stride[0], pad[0], dilation[0]),
                ow: out(w, kw, stride[1], pad[1], dilation[1]),
            };
            let x: Vec<f32> = (0..g.image_len()).map(|i| i as f32 + 1.0).collect();
            let (k, n) = (g.k(), g.n());
            for (pc, kc) in [(0, k), (1, k - 1), (k / 2, k - k / 2), (0, 1)] {
                for (jc, nc) in [(0, n), (1, n - 1), (n / 3, n - n / 3), (n - 1, 1)] {
                    if kc == 0 || nc == 0 {
                        continue;
                    }
                    // The transposed matrix: block (jc, pc) of nc x kc.
                    let mut got_t = vec![f32::NAN; packed_b_len(nc, kc)];
                    // SAFETY: as below, with the block inside the transposed matrix.
                    unsafe {
                        pack_b_conv_t(
                            Isa::detect(),
                            &g,
                            x.as_ptr(),
                            jc,
                            nc,
                            pc,
                            kc,
                            got_t.as_mut_ptr(),
                        )
                    };
                    let what = format!("{g:?} transposed block ({jc}, {pc}) {nc}x{kc}");
                    check_panels(&got_t, nc, kc, &what, |q, col| {
                        g.element(&x, pc + col, jc + q)
                    });
                    let mut got = vec![f32::NAN; packed_b_len(kc, nc)];
                    // SAFETY: the image is g.image_len() floats; the block is inside B; got
                    // has packed_b_len(kc, nc) floats.
                    unsafe { pack_b_conv(&g, x.as_ptr(), pc, kc, jc, nc, got.as_mut_ptr()) };
                    let what = format!("{g:?} block ({pc}, {jc}) {kc}x{nc}");
                    check_panels(&got, kc, nc, &what, |p, col| {
                        g.element(&x, pc + p, jc + col)
                    });
                }
            }
        }
    }
}
