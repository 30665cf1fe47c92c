//! Winograd convolution transforms F(2x2, 3x3) and F(4x4, 3x3) (Lavin & Gray, 2016).
//!
//! A 3x3, stride-1, dilation-1, ungrouped conv2d (cross-correlation, as in PyTorch) becomes
//!
//! 1. `U = filter_transform(w)`: `w [Co, Ci, 3, 3]` to `U [T, Co, Ci]`;
//! 2. `V = input_transform(x)`: `x [N, C, H, W]` to `V [T, C, P]`;
//! 3. `M[t] = U[t] * V[t]` for each of the `T` transform points: `T` GEMMs
//!    `[Co x Ci] x [Ci x P]`, done by the GEMM driver;
//! 4. `y = output_transform(M)`: `M [T, Co, P]` to `y [N, Co, OH, OW]`, with the bias and
//!    activation of the GEMM epilogue.
//!
//! Here `m` (2 or 4) is the output tile size, `a = m + 2` the input tile size, `T = a * a`,
//! point `t = i * a + j`. With `pad = [top, left, bottom, right]`,
//! `OH = H + top + bottom - 2`, `OW = W + left + right - 2`; the output is cut into
//! `th = ceil(OH / m)` by `tw = ceil(OW / m)` tiles per image, `P = N * th * tw`, tile
//! `p = (n * th + ti) * tw + tj`. Tile `p` reads the `a x a` input window starting at image row
//! `ti * m - top`, column `tj * m - left`, zero outside the image (padding and ragged last
//! tiles alike), and writes the `m x m` output block at `(ti * m, tj * m)`, clipped to
//! `OH x OW`.
//!
//! The matrices are Lavin's (`BT`, `G`, `AT`), applied in factored form (about 20 additions
//! and multiplications per 6-point 1-D transform instead of 36); each entry below is the
//! matrix's product written out.
//!
//! # Vectorisation
//! The input and output transforms work on image planes in channel-major order
//! (`channel * N + image`, the order of `V`'s and `M`'s columns), eight consecutive tiles of
//! a tile row per vector (so their lanes are contiguous in `p`).
//!
//! Input: each image row is copied into a zero-padded row buffer (padding then costs nothing;
//! the copy runs two rows ahead of its use, or the loads would stall on store forwarding),
//! deinterleaved by phase (`row[tj * m + j]` for eight `tj`: register shuffles on AVX2),
//! transformed horizontally into a ring of the last `a` rows (each row once, though tile rows
//! overlap), and each tile row's `a` rows are transformed vertically into a staging buffer
//! (`Stage`), which is copied to `V` in long contiguous runs.
//!
//! Output: the reverse. Runs of `M` are copied into a stage (the next runs prefetched), both
//! passes run in registers, the bias and a relu or leaky relu are applied there with the GEMM
//! driver's formulas, and the phases are interleaved back into contiguous output rows;
//! sigmoid and tanh go through the driver's own epilogue code on each finished tile row
//! while it is in L1. Only a tile row's last vector (when `ow` is not a multiple of `8 * m`)
//! is stored through a scratch copy; there are no per-element bounds checks.
//!
//! The filter transform vectorises over eight consecutive input channels, also through a
//! stage.
//!
//! Every instruction-set path runs the same sequence of `f32` additions, subtractions and
//! multiplications in each lane (no fused multiply-add, which would round differently), so
//! the AVX2 and portable paths give bit-identical results, and so do any thread counts (a
//! plane is always computed by one thread, in one order). There is no AVX-512 variant (the
//! project VM has none); an AVX-512 CPU runs the AVX2 code.
//!
//! # Performance
//! Measured on the project VM (one thread, best of many runs on a shared machine; the test
//! `timing` in `tests/winograd.rs`), with N = 1 and padding 1, next to the `T` GEMMs between
//! the transforms (`sgemm_threaded`, which ran at 55-70 GFLOP/s there):
//!
//! | layer | m | filter | input | output | `T` GEMMs |
//! |---|---|---|---|---|---|
//! | 64 -> 64, 56x56 | 2 | 25-40 us | 210-310 us | 165 us | 1.5 ms |
//! | 64 -> 64, 56x56 | 4 | 40 us | 170 us | 145 us | 0.92 ms |
//! | 512 -> 512, 14x14 | 2 | 3.5-4 ms | 200-320 us | 120 us | 7.1 ms |
//! | 512 -> 512, 14x14 | 4 | 9-10 ms | 210 us | 150 us | 9 ms |
//!
//! (The ranges of the m = 2 input transform are 4K aliasing, see `input_planes`: which end
//! a run gets depends on where the buffers and the thread's stack lie.)
//!
//! The input and output transforms are bound by memory traffic (V or M is 2.25x (m = 4) to
//! 4x (m = 2) the image) and by the shuffles of the tile layout about equally; the filter
//! transform of a 512 x 512 layer writes 16 MB (m = 2) or 38 MB (m = 4) of U, at memory
//! speed, which is why constant weights are transformed once, when a graph is compiled.
//!
//! The safe functions check every length and return [`WinogradError`] instead of panicking;
//! the C-ABI entries in [`crate::ffi`] (`sinter_winograd_*`) take raw pointers.

use std::ops::Range;

use crate::driver::{Act, Epi, MatMut};
use crate::isa::Isa;
use crate::{Activation, pool};

/// Floats per vector: the transforms process eight tiles (or input channels) at a time on
/// every path.
const LANES: usize = 8;

/// The most shares a call splits into is `threads`, and each gets at least this many floats
/// of transformed data to write (below that, waking a worker costs more than it saves).
const MIN_SHARE_FLOATS: usize = 1 << 15;

/// Why a transform was rejected. Returned by the safe API before any element is touched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WinogradError {
    /// The output tile size is not 2 (F(2x2, 3x3)) or 4 (F(4x4, 3x3)).
    #[error("Winograd output tile size must be 2 or 4, got {0}")]
    TileSize(usize),
    /// A slice is shorter than the shapes require.
    #[error("operand {operand}: the shapes need {needed} floats, but the slice has {len}")]
    SliceTooShort {
        /// `"w"`, `"u"`, `"x"`, `"v"`, `"m"`, `"y"` or `"bias"`.
        operand: &'static str,
        /// Floats the shapes require.
        needed: usize,
        /// Length of the slice given.
        len: usize,
    },
    /// The sizes of an operand overflow `usize`.
    #[error("operand {0}: its size overflows usize")]
    Overflow(&'static str),
    /// The padded input is smaller than the 3x3 kernel in some dimension: no output.
    #[error(
        "the padded input is {padded_h}x{padded_w}, smaller than the 3x3 kernel: the output would be empty"
    )]
    NoOutput {
        /// `H + top + bottom`.
        padded_h: usize,
        /// `W + left + right`.
        padded_w: usize,
    },
    /// The output transform was given an output extent of zero.
    #[error("output extent {oh}x{ow} is empty")]
    EmptyOutput {
        /// Output height.
        oh: usize,
        /// Output width.
        ow: usize,
    },
    /// The activation needs per-element data the transform does not take (prelu, relu mask).
    #[error(
        "activation {0} is not supported by the Winograd output transform (none, relu, leaky_relu, sigmoid and tanh are)"
    )]
    UnsupportedActivation(&'static str),
    /// The requested instruction set is not supported by this CPU.
    #[error("instruction set {0:?} is not available on this CPU")]
    IsaUnavailable(Isa),
}

/// Tiles of size `m` covering `out` outputs: `ceil(out / m)` (0 if `m` is 0).
pub fn tiles(out: usize, m: usize) -> usize {
    if m == 0 { 0 } else { out.div_ceil(m) }
}

/// Transform points `T = (m + 2)^2` of F(m x m, 3x3): 16 for `m = 2`, 36 for `m = 4`.
pub fn points(m: usize) -> usize {
    (m + 2) * (m + 2)
}

/// The output extent `(OH, OW) = (H + top + bottom - 2, W + left + right - 2)` of a 3x3
/// convolution with padding `[top, left, bottom, right]`, or `None` if it is empty (or the
/// sizes overflow).
pub fn output_extent(h: usize, w: usize, pad: [usize; 4]) -> Option<(usize, usize)> {
    let ph = h.checked_add(pad[0])?.checked_add(pad[2])?;
    let pw = w.checked_add(pad[1])?.checked_add(pad[3])?;
    (ph >= 3 && pw >= 3).then(|| (ph - 2, pw - 2))
}

/// Tiles `P = n * ceil(oh / m) * ceil(ow / m)` of a batch of `n` outputs of `oh x ow`, or
/// `None` on overflow. `V` holds `points(m) * C * P` floats, `M` `points(m) * Co * P`.
pub fn tile_count(m: usize, n: usize, oh: usize, ow: usize) -> Option<usize> {
    n.checked_mul(tiles(oh, m))?.checked_mul(tiles(ow, m))
}

// ---------------------------------------------------------------------------------------
// The safe API.

/// The filter transform: `U[t, co, ci] = (G w[co, ci] G^T)[i][j]`, `t = i * (m + 2) + j`, for
/// `w` of shape `[co, ci, 3, 3]` and `U` of shape `[T, co, ci]` (both row-major), on up to
/// `threads` threads (split over `co`), with the instruction set detected at run time.
///
/// # Errors
/// [`WinogradError::TileSize`] unless `m` is 2 or 4; [`WinogradError::SliceTooShort`] if `w`
/// has fewer than `co * ci * 9` floats or `u` fewer than `points(m) * co * ci`;
/// [`WinogradError::Overflow`].
pub fn filter_transform(
    m: usize,
    w: &[f32],
    co: usize,
    ci: usize,
    u: &mut [f32],
    threads: usize,
) -> Result<(), WinogradError> {
    filter_transform_with_isa(Isa::detect(), m, w, co, ci, u, threads)
}

/// [`filter_transform`] on the instruction-set path `isa` (for tests and benchmarks).
///
/// # Errors
/// As for [`filter_transform`], plus [`WinogradError::IsaUnavailable`].
pub fn filter_transform_with_isa(
    isa: Isa,
    m: usize,
    w: &[f32],
    co: usize,
    ci: usize,
    u: &mut [f32],
    threads: usize,
) -> Result<(), WinogradError> {
    filter_checked(isa, m, w, co, ci, u, threads, false)
}

/// [`filter_transform_with_isa`], or its transposed form.
#[allow(clippy::too_many_arguments)] // the shape, written out
fn filter_checked(
    isa: Isa,
    m: usize,
    w: &[f32],
    co: usize,
    ci: usize,
    u: &mut [f32],
    threads: usize,
    transposed: bool,
) -> Result<(), WinogradError> {
    let path = Path::of(isa)?;
    check_m(m)?;
    let filters = co.checked_mul(ci).ok_or(WinogradError::Overflow("w"))?;
    check_len("w", filters.checked_mul(9), w.len())?;
    check_len("u", filters.checked_mul(points(m)), u.len())?;
    // SAFETY: `w` holds `co * ci * 9` floats and `u` `points(m) * co * ci` (checked above);
    // they are distinct slices; `path` is available on this CPU.
    unsafe {
        filter_raw(
            path,
            m,
            w.as_ptr(),
            co,
            ci,
            u.as_mut_ptr(),
            threads,
            transposed,
        )
    };
    Ok(())
}

/// The filter transform of a transposed convolution's weight `w` of shape `[ci, co, 3, 3]`:
/// the stride-1 `conv_transpose2d` is the convolution whose filter `(o, c)` is `w[c, o]`
/// rotated by 180 degrees, and `U` (shape `[T, co, ci]`) is that filter's transform, as
/// [`filter_transform`] would give for the rotated weight (an input gradient in training).
///
/// # Errors
/// As for [`filter_transform`].
pub fn filter_transform_transposed(
    m: usize,
    w: &[f32],
    co: usize,
    ci: usize,
    u: &mut [f32],
    threads: usize,
) -> Result<(), WinogradError> {
    filter_checked(Isa::detect(), m, w, co, ci, u, threads, true)
}

/// The input transform: `V[t, c, p] = (BT d BT^T)[i][j]` with `d` the `(m+2) x (m+2)` input
/// window of tile `p` in channel `c` (see the [module docs](self)), for `x` of shape
/// `[n, c, h, w]` padded by `pad = [top, left, bottom, right]` zeros, and `V` of shape
/// `[T, c, P]`, `P = tile_count(m, n, OH, OW)`. Runs on up to `threads` threads (split over
/// the `n * c` image planes) with the instruction set detected at run time.
///
/// # Errors
/// [`WinogradError::TileSize`] unless `m` is 2 or 4; [`WinogradError::NoOutput`] if the
/// padded image is smaller than 3x3; [`WinogradError::SliceTooShort`] if `x` has fewer than
/// `n * c * h * w` floats or `v` fewer than `points(m) * c * P`; [`WinogradError::Overflow`].
#[allow(clippy::too_many_arguments)] // the shape, written out
pub fn input_transform(
    m: usize,
    x: &[f32],
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    pad: [usize; 4],
    v: &mut [f32],
    threads: usize,
) -> Result<(), WinogradError> {
    input_transform_with_isa(Isa::detect(), m, x, n, c, h, w, pad, v, threads)
}

/// [`input_transform`] on the instruction-set path `isa` (for tests and benchmarks).
///
/// # Errors
/// As for [`input_transform`], plus [`WinogradError::IsaUnavailable`].
#[allow(clippy::too_many_arguments)] // the shape, written out
pub fn input_transform_with_isa(
    isa: Isa,
    m: usize,
    x: &[f32],
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    pad: [usize; 4],
    v: &mut [f32],
    threads: usize,
) -> Result<(), WinogradError> {
    let path = Path::of(isa)?;
    check_m(m)?;
    let padded = |e: usize, p0: usize, p1: usize| e.checked_add(p0)?.checked_add(p1);
    let (Some(padded_h), Some(padded_w)) = (padded(h, pad[0], pad[2]), padded(w, pad[1], pad[3]))
    else {
        return Err(WinogradError::Overflow("x"));
    };
    let (oh, ow) =
        output_extent(h, w, pad).ok_or(WinogradError::NoOutput { padded_h, padded_w })?;
    let g = Geom::new(m, n, c, oh, ow).ok_or(WinogradError::Overflow("v"))?;
    let x_len = n
        .checked_mul(c)
        .and_then(|q| q.checked_mul(h))
        .and_then(|q| q.checked_mul(w));
    check_len("x", x_len, x.len())?;
    check_len("v", g.transformed_len(), v.len())?;
    let img = Image {
        h,
        w,
        top: pad[0],
        left: pad[1],
    };
    // SAFETY: `x` holds the `n * c` planes of `h * w` floats, `v` the `T * c * P` floats of V
    // (checked above); they are distinct slices; `path` is available on this CPU.
    unsafe { input_raw(path, &g, &img, x.as_ptr(), v.as_mut_ptr(), threads) };
    Ok(())
}

/// The output transform: for tile `p` of image `n` at tile row `ti`, column `tj`, and output
/// channel `co`, `Y = AT * Mt * AT^T` with `Mt[i][j] = M[i*(m+2) + j, co, p]`, and
/// `y[n, co, ti*m + r, tj*m + s] = act(Y[r][s] + bias[co])` where inside `oh x ow` (the rest
/// of a ragged tile is discarded). `M` has shape `[T, co, P]` with
/// `P = tile_count(m, n, oh, ow)`, `y` shape `[n, co, oh, ow]`; `bias` (if any) one value per
/// output channel. The activation is the GEMM epilogue's, with its exact formulas; runs on up
/// to `threads` threads (split over the `n * co` output planes) with the instruction set
/// detected at run time.
///
/// # Errors
/// [`WinogradError::TileSize`] unless `m` is 2 or 4; [`WinogradError::EmptyOutput`] if `oh`
/// or `ow` is 0; [`WinogradError::UnsupportedActivation`] for [`Activation::Prelu`] and
/// [`Activation::ReluMask`]; [`WinogradError::SliceTooShort`] if `mm` has fewer than
/// `points(m) * co * P` floats, `y` fewer than `n * co * oh * ow` or `bias` fewer than `co`;
/// [`WinogradError::Overflow`].
#[allow(clippy::too_many_arguments)] // the shape and epilogue, written out
pub fn output_transform(
    m: usize,
    mm: &[f32],
    n: usize,
    co: usize,
    oh: usize,
    ow: usize,
    bias: Option<&[f32]>,
    activation: Activation<'_>,
    y: &mut [f32],
    threads: usize,
) -> Result<(), WinogradError> {
    output_transform_with_isa(
        Isa::detect(),
        m,
        mm,
        n,
        co,
        oh,
        ow,
        bias,
        activation,
        y,
        threads,
    )
}

/// [`output_transform`] on the instruction-set path `isa` (for tests and benchmarks).
///
/// # Errors
/// As for [`output_transform`], plus [`WinogradError::IsaUnavailable`].
#[allow(clippy::too_many_arguments)] // the shape and epilogue, written out
pub fn output_transform_with_isa(
    isa: Isa,
    m: usize,
    mm: &[f32],
    n: usize,
    co: usize,
    oh: usize,
    ow: usize,
    bias: Option<&[f32]>,
    activation: Activation<'_>,
    y: &mut [f32],
    threads: usize,
) -> Result<(), WinogradError> {
    let path = Path::of(isa)?;
    check_m(m)?;
    if oh == 0 || ow == 0 {
        return Err(WinogradError::EmptyOutput { oh, ow });
    }
    let act = match activation {
        Activation::None => Act::None,
        Activation::Relu => Act::Relu,
        Activation::LeakyRelu(a) => Act::LeakyRelu(a),
        Activation::Sigmoid => Act::Sigmoid,
        Activation::Tanh => Act::Tanh,
        Activation::Prelu(_) => return Err(WinogradError::UnsupportedActivation("prelu")),
        Activation::ReluMask(_) => {
            return Err(WinogradError::UnsupportedActivation("relu_mask"));
        }
    };
    let g = Geom::new(m, n, co, oh, ow).ok_or(WinogradError::Overflow("m"))?;
    check_len("m", g.transformed_len(), mm.len())?;
    let y_len = n
        .checked_mul(co)
        .and_then(|q| q.checked_mul(oh))
        .and_then(|q| q.checked_mul(ow));
    check_len("y", y_len, y.len())?;
    let bias = match bias {
        Some(b) => {
            check_len("bias", Some(co), b.len())?;
            b.as_ptr()
        }
        None => std::ptr::null(),
    };
    // SAFETY: `mm` holds the `T * co * P` floats of M, `y` the `n * co` planes of `oh * ow`
    // floats, `bias` (if not null) `co` floats (checked above); `y` is distinct from both;
    // `path` is available on this CPU.
    unsafe { output_raw(path, &g, mm.as_ptr(), bias, act, y.as_mut_ptr(), threads) };
    Ok(())
}

fn check_m(m: usize) -> Result<(), WinogradError> {
    match m {
        2 | 4 => Ok(()),
        _ => Err(WinogradError::TileSize(m)),
    }
}

/// `needed` (`None`: it overflowed) against the slice length `len`.
fn check_len(
    operand: &'static str,
    needed: Option<usize>,
    len: usize,
) -> Result<(), WinogradError> {
    match needed {
        None => Err(WinogradError::Overflow(operand)),
        Some(needed) if len < needed => Err(WinogradError::SliceTooShort {
            operand,
            needed,
            len,
        }),
        Some(_) => Ok(()),
    }
}

// ---------------------------------------------------------------------------------------
// Entries without checks (the safe API above and the C ABI in `ffi`).

/// The code path: which [`Lanes`] implementation runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Path {
    /// 256-bit AVX registers and shuffles (compiled with `avx2,fma` enabled).
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// Arrays of eight floats, vectorised by the compiler for the baseline target.
    Portable,
}

impl Path {
    /// The path that runs for `isa`, if `isa` is available (AVX-512 runs the AVX2 code).
    fn of(isa: Isa) -> Result<Path, WinogradError> {
        if !isa.is_available() {
            return Err(WinogradError::IsaUnavailable(isa));
        }
        Ok(match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 | Isa::Avx2 if Isa::Avx2.is_available() => Path::Avx2,
            _ => Path::Portable,
        })
    }

    /// The path for the detected instruction set (the C-ABI entries).
    pub(crate) fn detect() -> Path {
        Path::of(Isa::detect()).unwrap_or(Path::Portable)
    }
}

/// The tiling of a batch of `n` planes (`c` channels) with output `oh x ow`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Geom {
    /// Output tile size, 2 or 4.
    m: usize,
    /// Images.
    n: usize,
    /// Channels (of the input transform's input, or the output transform's output).
    c: usize,
    /// Output height.
    oh: usize,
    /// Output width.
    ow: usize,
    /// Tile rows per image.
    th: usize,
    /// Tiles per tile row.
    tw: usize,
    /// Tiles in the batch: `n * th * tw`.
    p: usize,
}

impl Geom {
    /// The tiling, or `None` if `points(m) * c * P` overflows.
    pub(crate) fn new(m: usize, n: usize, c: usize, oh: usize, ow: usize) -> Option<Geom> {
        let g = Geom {
            m,
            n,
            c,
            oh,
            ow,
            th: tiles(oh, m),
            tw: tiles(ow, m),
            p: tile_count(m, n, oh, ow)?,
        };
        g.transformed_len()?;
        Some(g)
    }

    /// Floats of V (or M): `points(m) * c * P`.
    fn transformed_len(&self) -> Option<usize> {
        points(self.m).checked_mul(self.c)?.checked_mul(self.p)
    }

    /// Stride of V (or M) between transform points: `c * P`.
    fn point_stride(&self) -> usize {
        self.c * self.p
    }

    /// Tiles per image: `th * tw`.
    fn tiles_per_image(&self) -> usize {
        self.th * self.tw
    }

    /// Eight-tile vectors per tile row.
    fn chunks(&self) -> usize {
        self.tw.div_ceil(LANES)
    }

    /// Shares for `threads` threads over the `n * c` planes.
    fn shares(&self, threads: usize) -> usize {
        let planes = self.n * self.c;
        let work = points(self.m) * planes * self.tiles_per_image();
        threads
            .max(1)
            .min(planes)
            .min(work / MIN_SHARE_FLOATS)
            .max(1)
    }
}

/// The input image's extent and leading padding (the trailing padding is implied by the
/// output extent).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Image {
    /// Height.
    pub(crate) h: usize,
    /// Width.
    pub(crate) w: usize,
    /// Zero rows above.
    pub(crate) top: usize,
    /// Zero columns left.
    pub(crate) left: usize,
}

impl Image {
    /// The image row of padded row `y`, if it is inside the image.
    fn row(&self, y: usize) -> Option<usize> {
        y.checked_sub(self.top).filter(|&iy| iy < self.h)
    }
}

/// Planes `share * planes / shares ..` of share `share`.
fn share_range(share: usize, shares: usize, planes: usize) -> Range<usize> {
    share * planes / shares..(share + 1) * planes / shares
}

/// Floats of a [`Stage`] (16 KiB: it stays in L1 with the other scratch).
const STAGE_FLOATS: usize = 4096;

/// Row buffers of the input transform (see `input_planes`).
const ROW_BUFS: usize = 3;

/// Input channels per block of the filter transform's staging buffer.
const FILTER_BLOCK: usize = 256;

/// A staging buffer between the transforms and the `[T, C, P]` layout of V (or M).
///
/// The `T` values of a tile go to `T` places `C * P` floats apart (often a multiple of 4 KiB
/// apart, so they all fall in one L1 set): written (or read) eight tiles at a time, each cache
/// line would be evicted between its two halves. So the transforms work on a stage of `T`
/// rows, one per point, holding `bands` consecutive tile rows, and copy whole contiguous runs
/// of `bands * tw` floats between it and V (M).
///
/// Tile rows are consecutive in V (M) across planes too when the planes are taken
/// channel-major (`q = channel * n + image`): tile row `ti` of plane `q` is *flat tile row*
/// `r = q * th + ti`, its tiles at `t * C * P + r * tw` of point `t`. So a stage may span
/// planes, and small images (a 14x14 plane has 4 tile rows of 4 tiles) still get long runs.
/// The 8 floats of slack per row let every vector load and store be whole: a tile row's last
/// vector spills into the next tile row's place (written later) or into the slack.
struct Stage {
    buf: Vec<f32>,
    /// Floats per row: `bands * tw + 8`.
    width: usize,
    /// Tile rows staged at a time.
    bands: usize,
}

impl Stage {
    /// A stage for `rows` flat tile rows (at most).
    fn new(g: &Geom, rows: usize) -> Stage {
        let t = points(g.m);
        let bands = (STAGE_FLOATS / (t * g.tw).max(1)).clamp(1, rows.max(1));
        let width = bands * g.tw + LANES;
        Stage {
            buf: vec![0.0; t * width],
            width,
            bands,
        }
    }
}

/// A call's operands, shared by its pieces on the pool's threads.
#[derive(Clone, Copy)]
struct Job {
    path: Path,
    src: *const f32,
    dst: *mut f32,
    /// The output transform's bias (null: none).
    bias: *const f32,
    act: Act,
}

// SAFETY: a job holds the pointers of one call, which outlives every piece (`pool::run`
// returns after all have finished); each piece writes only its own planes of `dst` (disjoint
// ranges) and reads `src` and `bias`, which nothing writes during the call.
unsafe impl Sync for Job {}

/// The filter transform without checks; `transposed`: `w` is a transposed convolution's
/// weight (see [`filter_transform_transposed`]).
///
/// # Safety
/// `m` is 2 or 4; `w` readable for `co * ci * 9` floats; `u` writable for
/// `points(m) * co * ci` floats, not overlapping `w`; `path` available on this CPU.
#[allow(clippy::too_many_arguments)] // the shape, written out
pub(crate) unsafe fn filter_raw(
    path: Path,
    m: usize,
    w: *const f32,
    co: usize,
    ci: usize,
    u: *mut f32,
    threads: usize,
    transposed: bool,
) {
    let work = points(m) * co * ci;
    let shares = threads.max(1).min(co).min(work / MIN_SHARE_FLOATS).max(1);
    let job = Job {
        path,
        src: w,
        dst: u,
        bias: std::ptr::null(),
        act: Act::None,
    };
    let piece = |s: usize| {
        let cos = share_range(s, shares, co);
        // SAFETY: the caller's contract; each share writes the `U[t, co, ..]` rows of its own
        // output channels.
        unsafe { job.filter(m, co, ci, cos, transposed) }
    };
    pool::run(shares, piece);
}

/// The input transform without checks.
///
/// # Safety
/// `g.m` is 2 or 4 and `g` is [`Geom::new`] of `(m, n, c, OH, OW)` for the padded image `img`;
/// `x` readable for `n * c * h * w` floats; `v` writable for `points(m) * c * P` floats, not
/// overlapping `x`; `path` available on this CPU.
pub(crate) unsafe fn input_raw(
    path: Path,
    g: &Geom,
    img: &Image,
    x: *const f32,
    v: *mut f32,
    threads: usize,
) {
    let shares = g.shares(threads);
    let job = Job {
        path,
        src: x,
        dst: v,
        bias: std::ptr::null(),
        act: Act::None,
    };
    let planes = g.n * g.c;
    let piece = |s: usize| {
        // SAFETY: the caller's contract; each share writes the V elements of its own planes.
        unsafe { job.input(g, img, share_range(s, shares, planes)) }
    };
    pool::run(shares, piece);
}

/// The output transform without checks.
///
/// # Safety
/// `g.m` is 2 or 4, `g` is [`Geom::new`] of `(m, n, co, oh, ow)` with `oh, ow >= 1`; `mm`
/// readable for `points(m) * co * P` floats; `bias` null or readable for `co` floats; `y`
/// writable for `n * co * oh * ow` floats, not overlapping `mm` or `bias`; `act` is not
/// `Prelu` or `ReluMask`; `path` available on this CPU.
pub(crate) unsafe fn output_raw(
    path: Path,
    g: &Geom,
    mm: *const f32,
    bias: *const f32,
    act: Act,
    y: *mut f32,
    threads: usize,
) {
    let shares = g.shares(threads);
    let job = Job {
        path,
        src: mm,
        dst: y,
        bias,
        act,
    };
    let planes = g.n * g.c;
    let piece = |s: usize| {
        // SAFETY: the caller's contract; each share writes its own planes of y.
        unsafe { job.output(g, share_range(s, shares, planes)) }
    };
    pool::run(shares, piece);
}

impl Job {
    /// Filters of output channels `cos`.
    ///
    /// # Safety
    /// As for [`filter_raw`], with `cos` inside `0..co`.
    unsafe fn filter(&self, m: usize, co: usize, ci: usize, cos: Range<usize>, tr: bool) {
        let (w, u) = (self.src, self.dst);
        // SAFETY (each arm): forwarded; the path is available.
        unsafe {
            match (self.path, m) {
                #[cfg(target_arch = "x86_64")]
                (Path::Avx2, 2) => x86::filter::<2>(w, co, ci, u, cos, tr),
                #[cfg(target_arch = "x86_64")]
                (Path::Avx2, _) => x86::filter::<4>(w, co, ci, u, cos, tr),
                (Path::Portable, 2) => filter_channels::<Portable8, 2>(w, co, ci, u, cos, tr),
                (Path::Portable, _) => filter_channels::<Portable8, 4>(w, co, ci, u, cos, tr),
            }
        }
    }

    /// Planes `planes` (channel-major: index `channel * n + image`) of the input transform.
    ///
    /// # Safety
    /// As for [`input_raw`], with `planes` inside `0..n * c`.
    unsafe fn input(&self, g: &Geom, img: &Image, planes: Range<usize>) {
        let (x, v) = (self.src, self.dst);
        // SAFETY (each arm): forwarded; the path is available.
        unsafe {
            match (self.path, g.m) {
                #[cfg(target_arch = "x86_64")]
                (Path::Avx2, 2) => x86::input::<2>(g, img, x, v, planes),
                #[cfg(target_arch = "x86_64")]
                (Path::Avx2, _) => x86::input::<4>(g, img, x, v, planes),
                (Path::Portable, 2) => input_planes::<Portable8, 2>(g, img, x, v, planes),
                (Path::Portable, _) => input_planes::<Portable8, 4>(g, img, x, v, planes),
            }
        }
    }

    /// Planes `planes` (channel-major: index `channel * n + image`) of the output transform.
    ///
    /// # Safety
    /// As for [`output_raw`], with `planes` inside `0..n * co`.
    unsafe fn output(&self, g: &Geom, planes: Range<usize>) {
        let (mm, y, b, act) = (self.src, self.dst, self.bias, self.act);
        // SAFETY (each arm): forwarded; the path is available.
        unsafe {
            match (self.path, g.m) {
                #[cfg(target_arch = "x86_64")]
                (Path::Avx2, 2) => x86::output::<2>(g, mm, b, act, y, planes),
                #[cfg(target_arch = "x86_64")]
                (Path::Avx2, _) => x86::output::<4>(g, mm, b, act, y, planes),
                (Path::Portable, 2) => output_planes::<Portable8, 2>(g, mm, b, act, y, planes),
                (Path::Portable, _) => output_planes::<Portable8, 4>(g, mm, b, act, y, planes),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Vectors.

/// Eight `f32` lanes and the few operations the transforms use. Every implementation rounds
/// each operation exactly as scalar `f32` arithmetic does, so all paths agree bit for bit.
trait Lanes: Copy {
    fn zero() -> Self;
    fn splat(v: f32) -> Self;
    fn add(self, o: Self) -> Self;
    fn sub(self, o: Self) -> Self;
    fn mul(self, o: Self) -> Self;
    /// The driver's relu per lane: `0` where `< 0`, else the lane (NaN and -0.0 pass).
    fn relu(self) -> Self;
    /// The driver's leaky relu per lane: the lane where `>= 0`, else `alpha * lane`.
    fn leaky_relu(self, alpha: Self) -> Self;
    /// Lane `l` = `p[l]`.
    ///
    /// # Safety
    /// `p` readable for 8 floats.
    unsafe fn load(p: *const f32) -> Self;
    /// `p[l]` = lane `l`.
    ///
    /// # Safety
    /// `p` writable for 8 floats.
    unsafe fn store(self, p: *mut f32);
    /// Vector `j < M`, lane `l` = `p[M * l + j]` (`M` is 2 or 4).
    ///
    /// # Safety
    /// `p` readable for `8 * M` floats.
    unsafe fn deinterleave<const M: usize>(p: *const f32) -> [Self; M];
    /// `p[M * l + j]` = vector `j`, lane `l` (`M` is 2 or 4).
    ///
    /// # Safety
    /// `p` writable for `8 * M` floats.
    unsafe fn interleave<const M: usize>(v: [Self; M], p: *mut f32);
    /// Hints that the cache line at `p` will be read soon (any address: never faults).
    fn prefetch(p: *const f32);
}

/// Prefetches the `runs` runs of `len` floats at `base + r * stride`: the next tile rows of M,
/// `T` short runs far apart, which the hardware prefetcher would not see coming.
#[inline(always)]
fn prefetch_runs<L: Lanes>(base: *const f32, stride: usize, runs: usize, len: usize) {
    for r in 0..runs {
        let run = base.wrapping_add(r * stride);
        for off in (0..len).step_by(16) {
            L::prefetch(run.wrapping_add(off));
        }
        L::prefetch(run.wrapping_add(len.saturating_sub(1)));
    }
}

/// Runs shorter than this are copied by [`copy_run`], longer ones by `memcpy` (measured
/// faster for the long runs into V, slower for short ones by its call).
const SHORT_RUN: usize = 64;

/// Copies `len` floats from `src` to `dst`, eight at a time (for short runs: a call of
/// `memcpy` would cost as much as the copy).
///
/// # Safety
/// `src` readable and `dst` writable for `len` floats; they do not overlap; `L`'s path is
/// available.
#[inline(always)]
unsafe fn copy_run<L: Lanes>(src: *const f32, dst: *mut f32, len: usize) {
    let mut i = 0;
    while i + LANES <= len {
        // SAFETY: i + 8 <= len.
        unsafe { L::load(src.add(i)).store(dst.add(i)) };
        i += LANES;
    }
    while i < len {
        // SAFETY: i < len.
        unsafe { *dst.add(i) = *src.add(i) };
        i += 1;
    }
}

/// The portable vector: eight floats that the compiler vectorises for the baseline target.
#[derive(Clone, Copy)]
struct Portable8([f32; LANES]);

impl Lanes for Portable8 {
    #[inline(always)]
    fn zero() -> Self {
        Portable8([0.0; LANES])
    }
    #[inline(always)]
    fn splat(v: f32) -> Self {
        Portable8([v; LANES])
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        let mut r = self.0;
        for (x, y) in r.iter_mut().zip(o.0) {
            *x += y;
        }
        Portable8(r)
    }
    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        let mut r = self.0;
        for (x, y) in r.iter_mut().zip(o.0) {
            *x -= y;
        }
        Portable8(r)
    }
    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        let mut r = self.0;
        for (x, y) in r.iter_mut().zip(o.0) {
            *x *= y;
        }
        Portable8(r)
    }
    #[inline(always)]
    fn relu(self) -> Self {
        let mut r = self.0;
        for x in &mut r {
            *x = if *x < 0.0 { 0.0 } else { *x };
        }
        Portable8(r)
    }
    #[inline(always)]
    fn leaky_relu(self, alpha: Self) -> Self {
        let mut r = self.0;
        for (x, a) in r.iter_mut().zip(alpha.0) {
            *x = if *x >= 0.0 { *x } else { a * *x };
        }
        Portable8(r)
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: 8 floats readable (contract); `read_unaligned` needs no alignment.
        Portable8(unsafe { p.cast::<[f32; LANES]>().read_unaligned() })
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: 8 floats writable (contract).
        unsafe { p.cast::<[f32; LANES]>().write_unaligned(self.0) }
    }
    #[inline(always)]
    unsafe fn deinterleave<const M: usize>(p: *const f32) -> [Self; M] {
        let mut out = [Portable8::zero(); M];
        for (j, o) in out.iter_mut().enumerate() {
            for l in 0..LANES {
                // SAFETY: M * l + j < 8 * M floats, readable (contract).
                o.0[l] = unsafe { *p.add(M * l + j) };
            }
        }
        out
    }
    #[inline(always)]
    fn prefetch(_: *const f32) {}
    #[inline(always)]
    unsafe fn interleave<const M: usize>(v: [Self; M], p: *mut f32) {
        for l in 0..LANES {
            for (j, vj) in v.iter().enumerate() {
                // SAFETY: M * l + j < 8 * M floats, writable (contract).
                unsafe { *p.add(M * l + j) = vj.0[l] };
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// The 1-D transforms, in factored form. `M` is the output tile size; arrays hold `M + 2`
// (input tile) or `M` (output tile) values, the rest unused (zero).

/// `BT d` of one column `d` of an input tile.
///
/// F(2,3): `BT = [[1,0,-1,0],[0,1,1,0],[0,-1,1,0],[0,1,0,-1]]`.
/// F(4,3): `BT = [[4,0,-5,0,1,0],[0,-4,-4,1,1,0],[0,4,-4,-1,1,0],[0,-2,-1,2,1,0],
/// [0,2,-1,-2,1,0],[0,4,0,-5,0,1]]`.
#[inline(always)]
fn bt<L: Lanes, const M: usize>(d: &[L; 6]) -> [L; 6] {
    if M == 2 {
        let z = L::zero();
        return [
            d[0].sub(d[2]),
            d[1].add(d[2]),
            d[2].sub(d[1]),
            d[1].sub(d[3]),
            z,
            z,
        ];
    }
    let (two, four) = (L::splat(2.0), L::splat(4.0));
    let d42 = d[4].sub(d[2]);
    let d13 = d[1].sub(d[3]);
    let d13x2 = d13.mul(two);
    [
        // 4 d0 - 5 d2 + d4
        d42.add(d[0].sub(d[2]).mul(four)),
        // -4 d1 - 4 d2 + d3 + d4
        d[3].add(d[4]).sub(d[1].add(d[2]).mul(four)),
        // 4 d1 - 4 d2 - d3 + d4
        d[4].sub(d[3]).add(d[1].sub(d[2]).mul(four)),
        // -2 d1 - d2 + 2 d3 + d4
        d42.sub(d13x2),
        // 2 d1 - d2 - 2 d3 + d4
        d42.add(d13x2),
        // 4 d1 - 5 d3 + d5
        d[5].sub(d[3]).add(d13.mul(four)),
    ]
}

/// `AT v` of one column `v` of a transformed tile.
///
/// F(2,3): `AT = [[1,1,1,0],[0,1,-1,-1]]`.
/// F(4,3): `AT = [[1,1,1,1,1,0],[0,1,-1,2,-2,0],[0,1,1,4,4,0],[0,1,-1,8,-8,1]]`.
#[inline(always)]
fn at<L: Lanes, const M: usize>(v: &[L; 6]) -> [L; 4] {
    if M == 2 {
        let z = L::zero();
        return [v[0].add(v[1]).add(v[2]), v[1].sub(v[2]).sub(v[3]), z, z];
    }
    let a = v[1].add(v[2]);
    let b = v[1].sub(v[2]);
    let c = v[3].add(v[4]);
    let d = v[3].sub(v[4]);
    [
        v[0].add(a).add(c),
        b.add(d.mul(L::splat(2.0))),
        a.add(c.mul(L::splat(4.0))),
        b.add(d.mul(L::splat(8.0))).add(v[5]),
    ]
}

/// `G g` of one column `g` of a 3x3 filter.
///
/// F(2,3): `G = [[1,0,0],[1/2,1/2,1/2],[1/2,-1/2,1/2],[0,0,1]]`.
/// F(4,3): `G = [[1/4,0,0],[-1/6,-1/6,-1/6],[-1/6,1/6,-1/6],[1/24,1/12,1/6],
/// [1/24,-1/12,1/6],[0,0,1]]`.
#[inline(always)]
fn gt<L: Lanes, const M: usize>(g0: L, g1: L, g2: L) -> [L; 6] {
    let s = g0.add(g2);
    if M == 2 {
        let z = L::zero();
        let half = L::splat(0.5);
        return [g0, s.add(g1).mul(half), s.sub(g1).mul(half), g2, z, z];
    }
    let sixth = L::splat(-1.0 / 6.0);
    let p = g0
        .mul(L::splat(1.0 / 24.0))
        .add(g2.mul(L::splat(1.0 / 6.0)));
    let q = g1.mul(L::splat(1.0 / 12.0));
    [
        g0.mul(L::splat(0.25)),
        s.add(g1).mul(sixth),
        s.sub(g1).mul(sixth),
        p.add(q),
        p.sub(q),
        g2,
    ]
}

// ---------------------------------------------------------------------------------------
// The transforms, generic over the vector type. `#[inline(always)]` all the way down, so each
// is compiled inside the `#[target_feature]` function of its path.

/// Filter transform of output channels `cos`, eight input channels per vector.
///
/// # Safety
/// As for [`filter_raw`], with `cos` inside `0..co`.
#[inline(always)]
unsafe fn filter_channels<L: Lanes, const M: usize>(
    w: *const f32,
    co: usize,
    ci: usize,
    u: *mut f32,
    cos: Range<usize>,
    transposed: bool,
) {
    let a = M + 2;
    let ts = co * ci;
    let block = ci.min(FILTER_BLOCK);
    // As a `Stage`: U[t, o, ..] rows are `co * ci` floats apart; stage a block of input
    // channels, then copy whole runs.
    let sw = block.div_ceil(LANES) * LANES;
    let mut stage = vec![0.0f32; a * a * sw];
    for o in cos {
        for cb in (0..ci).step_by(FILTER_BLOCK) {
            let nc = FILTER_BLOCK.min(ci - cb);
            for c0 in (0..nc).step_by(LANES) {
                let len = LANES.min(nc - c0);
                // The nine taps of `len` filters, transposed to one vector per tap.
                let mut taps = [[0.0f32; LANES]; 9];
                for l in 0..len {
                    let c = cb + c0 + l;
                    // A transposed weight `[ci, co, 3, 3]` holds filter (o, c) rotated by
                    // 180 degrees at `(c, o)`.
                    let (at, step) = if transposed {
                        (((c * co + o) * 9 + 8) as isize, -1)
                    } else {
                        (((o * ci + c) * 9) as isize, 1)
                    };
                    for (k, tap) in taps.iter_mut().enumerate() {
                        // SAFETY: filter (o, c) is inside `w`: 9 floats from its base.
                        tap[l] = unsafe { *w.offset(at + step * k as isize) };
                    }
                }
                let mut g = [L::zero(); 9];
                for (gk, tap) in g.iter_mut().zip(&taps) {
                    // SAFETY: each tap holds 8 floats.
                    *gk = unsafe { L::load(tap.as_ptr()) };
                }
                // G g: column kx of the filter to column kx of the a x 3 product.
                let mut cols = [[L::zero(); 6]; 3];
                for (kx, col) in cols.iter_mut().enumerate() {
                    *col = gt::<L, M>(g[kx], g[3 + kx], g[6 + kx]);
                }
                let [c0s, c1s, c2s] = cols;
                for (i, ((&g0, &g1), &g2)) in c0s.iter().zip(&c1s).zip(&c2s).take(a).enumerate() {
                    // Row i of (G g) G^T.
                    let row = gt::<L, M>(g0, g1, g2);
                    for (j, r) in row.iter().enumerate().take(a) {
                        // SAFETY: c0 + 8 <= sw: inside stage row i*a + j.
                        unsafe { r.store(stage.as_mut_ptr().add((i * a + j) * sw + c0)) };
                    }
                }
            }
            for t in 0..a * a {
                // SAFETY: U[t, o, cb ..][..nc] is inside `u` (o < co, cb + nc <= ci); the
                // stage row holds `sw >= nc` floats.
                unsafe {
                    copy_run::<L>(stage.as_ptr().add(t * sw), u.add(t * ts + o * ci + cb), nc)
                };
            }
        }
    }
}

/// Input transform of planes `planes` (channel-major: index `channel * n + image`).
///
/// # Safety
/// As for [`input_raw`], with `planes` inside `0..n * c`.
#[inline(always)]
unsafe fn input_planes<L: Lanes, const M: usize>(
    g: &Geom,
    img: &Image,
    x: *const f32,
    v: *mut f32,
    planes: Range<usize>,
) {
    let a = M + 2;
    let t_n = a * a;
    let chunks = g.chunks();
    let rw = chunks * LANES;
    // Zero-padded image rows: image column `x` at `left + x`; the last vector reads up to
    // `(rw - 8) * M + 9 * M`. Only `left .. left + w` is ever written, so the rest stays 0.
    // (`left + w <= tw * M + 2 <= rw * M + M`, as `OW = w + left + right - 2 <= tw * M`.)
    // Padded row `y` goes to buffer `y % ROW_BUFS`, copied `ROW_BUFS - 1` rows before it is
    // transformed: read at once, the vector loads (at other offsets than the copy's stores)
    // would stall on store forwarding (measured: a third of the input transform's time).
    let row_len = rw * M + M;
    let mut rows = vec![0.0f32; ROW_BUFS * row_len];
    // The padded rows that are transformed: those of the `th` tile rows.
    let padded_rows = g.th * M + 2;
    // The horizontal transforms of the last `a` padded rows: padded row `y` in slot `y % a`,
    // slot `s`, output `l`, tile `tj` at `(s * a + l) * rw + tj`.
    let mut ring = vec![0.0f32; a * a * rw];
    // The flat tile rows of these planes (see `Stage`).
    let (first, last) = (planes.start * g.th, planes.end * g.th);
    let mut stage = Stage::new(g, last - first);
    let sw = stage.width;
    let plane_len = img.h * img.w;
    let ts = g.point_stride();
    let mut xq = x; // the current plane
    let mut next = 0; // its next padded row to transform horizontally
    for r0 in (first..last).step_by(stage.bands) {
        let nb = stage.bands.min(last - r0);
        for r in r0..r0 + nb {
            let ti = r % g.th;
            if ti == 0 {
                let q = r / g.th;
                let (c, n) = (q / g.n, q % g.n);
                // SAFETY: plane (n, c) is inside x.
                xq = unsafe { x.add((n * g.c + c) * plane_len) };
                next = 0;
                for y in 0..(ROW_BUFS - 1).min(padded_rows) {
                    let buf = &mut rows[y % ROW_BUFS * row_len..][..row_len];
                    // SAFETY: `xq` is a plane of x; the buffer holds `row_len >= left + w`.
                    unsafe { copy_row::<L>(img, xq, y, buf) };
                }
            }
            while next < ti * M + a {
                let ahead = next + ROW_BUFS - 1;
                if ahead < padded_rows {
                    let buf = &mut rows[ahead % ROW_BUFS * row_len..][..row_len];
                    // SAFETY: as above.
                    unsafe { copy_row::<L>(img, xq, ahead, buf) };
                }
                let buf = &rows[next % ROW_BUFS * row_len..][..row_len];
                // SAFETY: `buf` and `ring` are sized as above.
                unsafe { input_row::<L, M>(g, img, next, buf, &mut ring) };
                next += 1;
            }
            let mut slots = [0usize; 6];
            for (i, slot) in slots.iter_mut().enumerate() {
                *slot = (ti * M + i) % a;
            }
            let at_row = (r - r0) * g.tw;
            for ch in 0..chunks {
                for l in 0..a {
                    let mut h = [L::zero(); 6];
                    for (hi, slot) in h.iter_mut().zip(slots).take(a) {
                        // SAFETY: slot < a, l < a, ch * 8 + 8 <= rw: inside `ring`.
                        *hi =
                            unsafe { L::load(ring.as_ptr().add((slot * a + l) * rw + ch * LANES)) };
                    }
                    let out = bt::<L, M>(&h);
                    for (k, o) in out.iter().enumerate().take(a) {
                        // SAFETY: at_row + ch * 8 + 8 <= (nb - 1) * tw + tw + 7 < sw: inside
                        // row k*a + l of the stage.
                        unsafe {
                            o.store(
                                stage
                                    .buf
                                    .as_mut_ptr()
                                    .add((k * a + l) * sw + at_row + ch * LANES),
                            )
                        };
                    }
                }
            }
        }
        // Known cost: when V's point stride is a multiple of 4 KiB (64 channels of 56x56 at
        // m = 2: 49 * 4 KiB), these `T` runs all fall in one window of page offsets, and loads
        // soon after with an offset in that window (spilled locals, row buffers) are delayed
        // as if they depended on the stores (4K aliasing): measured up to 1.5x on the whole
        // transform, depending on where x, V and the thread's stack happen to lie. Neither a
        // fence after the copy nor inline copies removed it reliably.
        let run = nb * g.tw;
        for t in 0..t_n {
            // SAFETY: V[t] at flat tile rows r0 .. r0 + nb: `run` floats at
            // `t * ts + r0 * tw`, inside V (r0 + nb <= n * c * th); the stage row holds
            // `sw > run` floats; they do not overlap.
            unsafe {
                let (src, dst) = (stage.buf.as_ptr().add(t * sw), v.add(t * ts + r0 * g.tw));
                if run < SHORT_RUN {
                    copy_run::<L>(src, dst, run);
                } else {
                    std::ptr::copy_nonoverlapping(src, dst, run);
                }
            };
        }
    }
}

/// The image row of padded row `y` (if it is one) into the zero-padded row buffer `buf`.
///
/// # Safety
/// `xq` readable for the plane's `h * w` floats; `buf` holds at least `left + w` floats; `L`'s
/// path is available.
#[inline(always)]
unsafe fn copy_row<L: Lanes>(img: &Image, xq: *const f32, y: usize, buf: &mut [f32]) {
    if let Some(iy) = img.row(y) {
        let dst = &mut buf[img.left..img.left + img.w];
        // SAFETY: row iy < h of the plane at `xq`; `dst` holds `w` floats.
        unsafe { copy_run::<L>(xq.add(iy * img.w), dst.as_mut_ptr(), img.w) };
    }
}

/// The horizontal transform of padded row `y` of a plane, from its row buffer `row` (filled
/// by [`copy_row`]), into its ring slot.
///
/// # Safety
/// `row` and `ring` sized as in [`input_planes`].
#[inline(always)]
unsafe fn input_row<L: Lanes, const M: usize>(
    g: &Geom,
    img: &Image,
    y: usize,
    row: &[f32],
    ring: &mut [f32],
) {
    let a = M + 2;
    let rw = g.chunks() * LANES;
    let slot = &mut ring[y % a * a * rw..][..a * rw];
    if img.row(y).is_none() {
        // A padding row, or past the image: its transform is zero.
        slot.fill(0.0);
        return;
    }
    for ch in 0..g.chunks() {
        let base = ch * LANES * M;
        // SAFETY: `row` holds `rw * M + M >= base + M + 8 * M` floats.
        let (lo, hi) = unsafe {
            let p = row.as_ptr().add(base);
            (L::deinterleave::<M>(p), L::deinterleave::<M>(p.add(M)))
        };
        // Tile tj reads columns tj*M .. tj*M + M + 2: phases 0..M of its own M columns, then
        // phases 0 and 1 of the next tile's.
        let mut d = [L::zero(); 6];
        d[..M].copy_from_slice(&lo);
        d[M..M + 2].copy_from_slice(&hi[..2]);
        let out = bt::<L, M>(&d);
        for (l, o) in out.iter().enumerate().take(a) {
            // SAFETY: l * rw + ch * 8 + 8 <= a * rw: inside the slot.
            unsafe { o.store(slot.as_mut_ptr().add(l * rw + ch * LANES)) };
        }
    }
}

/// The GEMM driver's epilogue (`Epi::apply`) for no activation, relu and leaky relu, in
/// registers: no addition without a bias (it would turn -0.0 into 0.0), then the activation's
/// formula. Other activations pass through (the caller applies them with `Epi::apply`).
#[inline(always)]
fn epilogue_in_regs<L: Lanes>(v: L, bias: Option<L>, act: Act) -> L {
    let v = match bias {
        Some(b) => v.add(b),
        None => v,
    };
    match act {
        Act::Relu => v.relu(),
        Act::LeakyRelu(alpha) => v.leaky_relu(L::splat(alpha)),
        _ => v,
    }
}

/// Output transform of planes `planes` (channel-major: index `channel * n + image`).
///
/// # Safety
/// As for [`output_raw`], with `planes` inside `0..n * co`.
#[inline(always)]
unsafe fn output_planes<L: Lanes, const M: usize>(
    g: &Geom,
    mm: *const f32,
    bias: *const f32,
    act: Act,
    y: *mut f32,
    planes: Range<usize>,
) {
    let a = M + 2;
    let t_n = a * a;
    let ts = g.point_stride();
    let plane_len = g.oh * g.ow;
    // The flat tile rows of these planes (see `Stage`).
    let (first, last) = (planes.start * g.th, planes.end * g.th);
    let mut stage = Stage::new(g, last - first);
    let sw = stage.width;
    // Bias, relu and leaky relu are applied in registers before the store; sigmoid and tanh
    // (scalar `exp`, `tanh` per element anyway) by the GEMM driver's epilogue on each
    // finished tile row.
    let in_regs = matches!(act, Act::None | Act::Relu | Act::LeakyRelu(_));
    for r0 in (first..last).step_by(stage.bands) {
        let nb = stage.bands.min(last - r0);
        for t in 0..t_n {
            // SAFETY: M[t] at flat tile rows r0 .. r0 + nb: `nb * tw` floats at
            // `t * ts + r0 * tw`, inside M; the stage row holds `sw > nb * tw` floats.
            unsafe {
                copy_run::<L>(
                    mm.add(t * ts + r0 * g.tw),
                    stage.buf.as_mut_ptr().add(t * sw),
                    nb * g.tw,
                )
            };
        }
        // The next group's runs: `T` short runs far apart, which the hardware prefetcher
        // would not see coming, fetched while this group is computed.
        let ahead = stage.bands.min(last - r0 - nb);
        prefetch_runs::<L>(mm.wrapping_add((r0 + nb) * g.tw), ts, t_n, ahead * g.tw);
        for r in r0..r0 + nb {
            let (q, ti) = (r / g.th, r % g.th);
            let (co, n) = (q / g.n, q % g.n);
            // SAFETY: plane (n, co) is inside y.
            let yq = unsafe { y.add((n * g.c + co) * plane_len) };
            let b = if bias.is_null() {
                None
            } else {
                // SAFETY: a non-null `bias` holds `co` floats.
                Some(L::splat(unsafe { *bias.add(co) }))
            };
            let at_row = (r - r0) * g.tw;
            for ch in 0..g.chunks() {
                // Vertical pass: column j of AT Mt, from the `a` values of column j. Lanes
                // past this tile row hold other tiles or stale values: discarded.
                let mut cols = [[L::zero(); 4]; 6];
                for (j, col) in cols.iter_mut().enumerate().take(a) {
                    let mut mt = [L::zero(); 6];
                    for (i, v) in mt.iter_mut().enumerate().take(a) {
                        // SAFETY: at_row + ch * 8 + 8 < sw: inside stage row i*a + j.
                        *v = unsafe {
                            L::load(
                                stage
                                    .buf
                                    .as_ptr()
                                    .add((i * a + j) * sw + at_row + ch * LANES),
                            )
                        };
                    }
                    *col = at::<L, M>(&mt);
                }
                let col0 = ch * LANES * M;
                let cols_here = (LANES * M).min(g.ow - col0);
                for rr in 0..M.min(g.oh - ti * M) {
                    // Horizontal pass: row rr of (AT Mt) AT^T, phase s in vector s.
                    let mut row = [L::zero(); 6];
                    for (v, col) in row.iter_mut().zip(&cols) {
                        *v = col[rr];
                    }
                    let yr4 = at::<L, M>(&row);
                    let mut yr = [L::zero(); M];
                    yr.copy_from_slice(&yr4[..M]);
                    if in_regs {
                        for v in &mut yr {
                            *v = epilogue_in_regs(*v, b, act);
                        }
                    }
                    // SAFETY: row ti*M + rr < oh, columns col0 .. col0 + cols_here <= ow of
                    // plane (n, co).
                    unsafe {
                        let dst = yq.add((ti * M + rr) * g.ow + col0);
                        if cols_here == LANES * M {
                            L::interleave::<M>(yr, dst);
                        } else {
                            let mut t = [0.0f32; 4 * LANES];
                            L::interleave::<M>(yr, t.as_mut_ptr());
                            copy_run::<L>(t.as_ptr(), dst, cols_here);
                        }
                    }
                }
            }
            if !in_regs {
                let epi = Epi {
                    bias: if bias.is_null() {
                        bias
                    } else {
                        bias.wrapping_add(co)
                    },
                    rs: 0,
                    cs: 0,
                    act,
                };
                let c = MatMut {
                    // SAFETY: row ti*M < oh of plane (n, co).
                    ptr: unsafe { yq.add(ti * M * g.ow) },
                    rs: g.ow as isize,
                    cs: 1,
                };
                // SAFETY: the block is rows ti*M .. ti*M + rows of the plane, all columns;
                // the bias element (stride 0) is readable; `act` reads no other data.
                unsafe { epi.apply(M.min(g.oh - ti * M), g.ow, c, 0, 0) };
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// AVX2.

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;
    use std::ops::Range;

    use super::{Act, Geom, Image, LANES, Lanes};

    /// Eight lanes in a `ymm` register. Values of this type are only created inside the
    /// `#[target_feature(enable = "avx2,fma")]` functions below, which are entered only
    /// on a CPU with AVX2 and FMA (`Path::Avx2`); its methods are inlined into them.
    #[derive(Clone, Copy)]
    pub(super) struct Avx8(__m256);

    // SAFETY (every method): an `Avx8` exists only inside a function running on a CPU with
    // AVX2 (see the type), so the AVX instructions are available; pointer contracts are the
    // trait's.
    impl Lanes for Avx8 {
        #[inline(always)]
        fn zero() -> Self {
            // SAFETY: see the impl.
            Avx8(unsafe { _mm256_setzero_ps() })
        }
        #[inline(always)]
        fn splat(v: f32) -> Self {
            // SAFETY: see the impl.
            Avx8(unsafe { _mm256_set1_ps(v) })
        }
        #[inline(always)]
        fn add(self, o: Self) -> Self {
            // SAFETY: see the impl.
            Avx8(unsafe { _mm256_add_ps(self.0, o.0) })
        }
        #[inline(always)]
        fn sub(self, o: Self) -> Self {
            // SAFETY: see the impl.
            Avx8(unsafe { _mm256_sub_ps(self.0, o.0) })
        }
        #[inline(always)]
        fn mul(self, o: Self) -> Self {
            // SAFETY: see the impl.
            Avx8(unsafe { _mm256_mul_ps(self.0, o.0) })
        }
        #[inline(always)]
        fn relu(self) -> Self {
            // SAFETY: see the impl. `v < 0` is false for NaN and -0.0, which pass.
            Avx8(unsafe {
                let neg = _mm256_cmp_ps::<_CMP_LT_OQ>(self.0, _mm256_setzero_ps());
                _mm256_andnot_ps(neg, self.0)
            })
        }
        #[inline(always)]
        fn leaky_relu(self, alpha: Self) -> Self {
            // SAFETY: see the impl. `v >= 0` is false for NaN, which takes `alpha * v`.
            Avx8(unsafe {
                let keep = _mm256_cmp_ps::<_CMP_GE_OQ>(self.0, _mm256_setzero_ps());
                _mm256_blendv_ps(_mm256_mul_ps(alpha.0, self.0), self.0, keep)
            })
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            // SAFETY: see the impl; 8 floats readable.
            Avx8(unsafe { _mm256_loadu_ps(p) })
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            // SAFETY: see the impl; 8 floats writable.
            unsafe { _mm256_storeu_ps(p, self.0) }
        }
        #[inline(always)]
        unsafe fn deinterleave<const M: usize>(p: *const f32) -> [Self; M] {
            let mut out = [Avx8::zero(); M];
            // SAFETY: see the impl; 8 * M floats readable.
            unsafe {
                if M == 2 {
                    // r0 = tiles [0 1 | 2 3], r1 = [4 5 | 6 7], two floats per tile.
                    let r0 = _mm256_loadu_ps(p);
                    let r1 = _mm256_loadu_ps(p.add(8));
                    let lo = _mm256_permute2f128_ps::<0x20>(r0, r1); // [0 1 | 4 5]
                    let hi = _mm256_permute2f128_ps::<0x31>(r0, r1); // [2 3 | 6 7]
                    out[0] = Avx8(_mm256_shuffle_ps::<0b10_00_10_00>(lo, hi));
                    out[1] = Avx8(_mm256_shuffle_ps::<0b11_01_11_01>(lo, hi));
                } else if M == 4 {
                    // r_k = tiles [2k | 2k+1], four floats per tile.
                    let r0 = _mm256_loadu_ps(p);
                    let r1 = _mm256_loadu_ps(p.add(8));
                    let r2 = _mm256_loadu_ps(p.add(16));
                    let r3 = _mm256_loadu_ps(p.add(24));
                    let s0 = _mm256_permute2f128_ps::<0x20>(r0, r2); // [0 | 4]
                    let s1 = _mm256_permute2f128_ps::<0x31>(r0, r2); // [1 | 5]
                    let s2 = _mm256_permute2f128_ps::<0x20>(r1, r3); // [2 | 6]
                    let s3 = _mm256_permute2f128_ps::<0x31>(r1, r3); // [3 | 7]
                    // A 4x4 transpose in each 128-bit half.
                    let u0 = _mm256_castps_pd(_mm256_unpacklo_ps(s0, s1));
                    let u1 = _mm256_castps_pd(_mm256_unpackhi_ps(s0, s1));
                    let u2 = _mm256_castps_pd(_mm256_unpacklo_ps(s2, s3));
                    let u3 = _mm256_castps_pd(_mm256_unpackhi_ps(s2, s3));
                    out[0] = Avx8(_mm256_castpd_ps(_mm256_unpacklo_pd(u0, u2)));
                    out[1] = Avx8(_mm256_castpd_ps(_mm256_unpackhi_pd(u0, u2)));
                    out[2] = Avx8(_mm256_castpd_ps(_mm256_unpacklo_pd(u1, u3)));
                    out[3] = Avx8(_mm256_castpd_ps(_mm256_unpackhi_pd(u1, u3)));
                } else {
                    for (j, o) in out.iter_mut().enumerate() {
                        let mut lanes = [0.0f32; LANES];
                        for (l, x) in lanes.iter_mut().enumerate() {
                            *x = *p.add(M * l + j);
                        }
                        *o = Avx8::load(lanes.as_ptr());
                    }
                }
            }
            out
        }
        #[inline(always)]
        fn prefetch(p: *const f32) {
            // SAFETY: see the impl; a prefetch never faults.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast()) }
        }
        #[inline(always)]
        unsafe fn interleave<const M: usize>(v: [Self; M], p: *mut f32) {
            // SAFETY: see the impl; 8 * M floats writable.
            unsafe {
                if M == 2 {
                    let lo = _mm256_unpacklo_ps(v[0].0, v[1].0); // tiles [0 1 | 4 5]
                    let hi = _mm256_unpackhi_ps(v[0].0, v[1].0); // tiles [2 3 | 6 7]
                    _mm256_storeu_ps(p, _mm256_permute2f128_ps::<0x20>(lo, hi));
                    _mm256_storeu_ps(p.add(8), _mm256_permute2f128_ps::<0x31>(lo, hi));
                } else if M == 4 {
                    let u0 = _mm256_castps_pd(_mm256_unpacklo_ps(v[0].0, v[1].0));
                    let u1 = _mm256_castps_pd(_mm256_unpackhi_ps(v[0].0, v[1].0));
                    let u2 = _mm256_castps_pd(_mm256_unpacklo_ps(v[2].0, v[3].0));
                    let u3 = _mm256_castps_pd(_mm256_unpackhi_ps(v[2].0, v[3].0));
                    let s0 = _mm256_castpd_ps(_mm256_unpacklo_pd(u0, u2)); // tiles [0 | 4]
                    let s1 = _mm256_castpd_ps(_mm256_unpackhi_pd(u0, u2)); // [1 | 5]
                    let s2 = _mm256_castpd_ps(_mm256_unpacklo_pd(u1, u3)); // [2 | 6]
                    let s3 = _mm256_castpd_ps(_mm256_unpackhi_pd(u1, u3)); // [3 | 7]
                    _mm256_storeu_ps(p, _mm256_permute2f128_ps::<0x20>(s0, s1));
                    _mm256_storeu_ps(p.add(8), _mm256_permute2f128_ps::<0x20>(s2, s3));
                    _mm256_storeu_ps(p.add(16), _mm256_permute2f128_ps::<0x31>(s0, s1));
                    _mm256_storeu_ps(p.add(24), _mm256_permute2f128_ps::<0x31>(s2, s3));
                } else {
                    for (j, vj) in v.iter().enumerate() {
                        let mut lanes = [0.0f32; LANES];
                        vj.store(lanes.as_mut_ptr());
                        for (l, x) in lanes.iter().enumerate() {
                            *p.add(M * l + j) = *x;
                        }
                    }
                }
            }
        }
    }

    /// [`super::epilogue_in_regs`] with AVX2 on eight values (for the unit tests).
    ///
    /// # Safety
    /// AVX2 and FMA available.
    #[cfg(test)]
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn epilogue(v: &mut [f32; LANES], bias: Option<f32>, act: Act) {
        // SAFETY: `v` holds 8 floats.
        unsafe {
            let r = super::epilogue_in_regs(Avx8::load(v.as_ptr()), bias.map(Avx8::splat), act);
            r.store(v.as_mut_ptr());
        }
    }

    /// [`super::filter_channels`] with AVX2.
    ///
    /// # Safety
    /// As for [`super::filter_channels`]; AVX2 and FMA available.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn filter<const M: usize>(
        w: *const f32,
        co: usize,
        ci: usize,
        u: *mut f32,
        cos: Range<usize>,
        transposed: bool,
    ) {
        // SAFETY: forwarded.
        unsafe { super::filter_channels::<Avx8, M>(w, co, ci, u, cos, transposed) }
    }

    /// [`super::input_planes`] with AVX2.
    ///
    /// # Safety
    /// As for [`super::input_planes`]; AVX2 and FMA available.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn input<const M: usize>(
        g: &Geom,
        img: &Image,
        x: *const f32,
        v: *mut f32,
        planes: Range<usize>,
    ) {
        // SAFETY: forwarded.
        unsafe { super::input_planes::<Avx8, M>(g, img, x, v, planes) }
    }

    /// [`super::output_planes`] with AVX2.
    ///
    /// # Safety
    /// As for [`super::output_planes`]; AVX2 and FMA available.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn output<const M: usize>(
        g: &Geom,
        mm: *const f32,
        bias: *const f32,
        act: Act,
        y: *mut f32,
        planes: Range<usize>,
    ) {
        // SAFETY: forwarded.
        unsafe { super::output_planes::<Avx8, M>(g, mm, bias, act, y, planes) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The in-register epilogue gives the driver epilogue's bits on every path (NaN for NaN),
    /// for the values where formulas could differ: signed zeros, NaN, infinities, subnormals.
    #[test]
    fn register_epilogue_matches_the_driver() {
        let vals: [f32; 16] = [
            0.0,
            -0.0,
            1.5,
            -2.25,
            f32::NAN,
            -f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            1e-40,
            -1e-40,
            3.0,
            -7.0,
            f32::MIN_POSITIVE,
            -0.5,
            f32::MAX,
            -f32::MAX,
        ];
        let acts = [
            Act::None,
            Act::Relu,
            Act::LeakyRelu(0.1),
            Act::LeakyRelu(-2.0),
        ];
        for act in acts {
            for bias in [None, Some(0.75f32), Some(-0.0), Some(f32::NAN)] {
                let mut want = vals;
                let epi = Epi {
                    bias: bias.as_ref().map_or(std::ptr::null(), |b| b as *const f32),
                    rs: 0,
                    cs: 0,
                    act,
                };
                let c = MatMut {
                    ptr: want.as_mut_ptr(),
                    rs: 16,
                    cs: 1,
                };
                // SAFETY: a 1 x 16 block of `want`; the bias (stride 0) is one readable float.
                unsafe { epi.apply(1, 16, c, 0, 0) };
                for half in vals.chunks_exact(LANES) {
                    let lanes: [f32; LANES] = half.try_into().unwrap();
                    let got = epilogue_in_regs(Portable8(lanes), bias.map(Portable8::splat), act);
                    let mut paths = vec![got.0];
                    #[cfg(target_arch = "x86_64")]
                    if Isa::Avx2.is_available() {
                        let mut v = lanes;
                        // SAFETY: AVX2 and FMA are available.
                        unsafe { x86::epilogue(&mut v, bias, act) };
                        paths.push(v);
                    }
                    let off = if half.as_ptr() == vals.as_ptr() {
                        0
                    } else {
                        LANES
                    };
                    for p in paths {
                        // Bits, all NaNs as one: Rust leaves the sign and payload of a NaN
                        // result unspecified (the compiler may commute an addition).
                        let bits = |v: &[f32]| {
                            v.iter()
                                .map(|x| if x.is_nan() { u32::MAX } else { x.to_bits() })
                                .collect::<Vec<_>>()
                        };
                        assert_eq!(bits(&p), bits(&want[off..off + LANES]), "{act:?} {bias:?}");
                    }
                }
            }
        }
    }
}
