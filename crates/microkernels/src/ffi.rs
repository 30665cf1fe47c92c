//! C-ABI entries for JIT-generated code, and [`symbols`] to register them.
//!
//! The Cranelift JIT calls these through `JITBuilder::symbol` + `Linkage::Import` (about 2 ns
//! per call, see `shared/CODEGEN-NOTES.md`). They take raw pointers and do no checking: the
//! JIT has verified shapes at compile time. Two levels are offered:
//!
//! - whole GEMMs ([`sinter_sgemm`], [`sinter_sgemm_threaded`], [`sinter_sgemm_prepacked`]),
//!   for matmul, gemm and im2col convolutions, and [`sinter_sgemm_epilogue`], which also adds
//!   a bias and applies ReLU per tile (a layer's bias and activation without a pass over C);
//! - the building blocks ([`sinter_pack_a`], [`sinter_pack_b`], [`sinter_ukernel`]), so a later
//!   JIT can generate its own loop nests (fused im2col packing, epilogues) around the kernel.
//!   Their layouts are the constants of [`crate::layout`] ([`MR`] x [`NR`] tiles);
//! - the Winograd convolution transforms ([`sinter_winograd_filter`],
//!   [`sinter_winograd_input`], [`sinter_winograd_output`]; see [`crate::winograd`]).
//!
//! All entries use the instruction set detected once by [`crate::Isa::detect`].
//!
//! Pointers name element `(0, 0)`; strides are in elements and may be negative. Every function
//! is `unsafe`: the caller must uphold the contract written on it, or the behaviour is
//! undefined.

use crate::driver::{ASrc, Act, BSrc, Epi, MatMut, MatRef, gemm_parallel, gemm_strided};
use crate::isa::Isa;
use crate::kernels::{half_tile_fn, tile_fn, tile_partial};
use crate::layout::{MR, NR};
use crate::pack::{pack_a, pack_b};
use crate::winograd;

/// `C = alpha * A * B + beta * C` on the calling thread (see [`crate::sgemm`] for the
/// semantics: `beta == 0` does not read C; `alpha == 0` or `k == 0` does not read A or B).
///
/// # Safety
/// For `i < m`, `p < k`, `j < n`: `a + i*rsa + p*csa` and `b + p*rsb + j*csb` must be
/// readable, `c + i*rsc + j*csc` readable and writable, the C elements pairwise distinct, and
/// no C element may overlap an element of A or B. Nothing else may access C during the call.
#[allow(clippy::too_many_arguments)] // the BLAS argument list
pub unsafe extern "C" fn sinter_sgemm(
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: *const f32,
    rsa: isize,
    csa: isize,
    b: *const f32,
    rsb: isize,
    csb: isize,
    beta: f32,
    c: *mut f32,
    rsc: isize,
    csc: isize,
) {
    // SAFETY: the caller's contract is `sinter_sgemm_threaded`'s.
    unsafe {
        sinter_sgemm_threaded(
            m, n, k, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc, 1,
        )
    }
}

/// [`sinter_sgemm`] on up to `threads` threads (see [`crate::sgemm_threaded`]).
///
/// # Safety
/// As for [`sinter_sgemm`].
#[allow(clippy::too_many_arguments)] // the BLAS argument list
pub unsafe extern "C" fn sinter_sgemm_threaded(
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: *const f32,
    rsa: isize,
    csa: isize,
    b: *const f32,
    rsb: isize,
    csb: isize,
    beta: f32,
    c: *mut f32,
    rsc: isize,
    csc: isize,
    threads: usize,
) {
    // SAFETY: the caller's contract is `sinter_sgemm_epilogue`'s, with no bias.
    unsafe {
        sinter_sgemm_epilogue(
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
            std::ptr::null(),
            0,
            0,
            0,
            0.0,
            std::ptr::null(),
            0,
            0,
        )
    }
}

/// [`sinter_sgemm_threaded`] followed by an epilogue (see [`crate::Epilogue`]): after the
/// product, `c(i, j) += bias[i*bias_rs + j*bias_cs]` if `bias` is not null, then the
/// activation `act`: 0 none, 1 relu, 2 leaky relu with slope `act_alpha`, 3 sigmoid, 4 tanh,
/// 5 prelu with slope `slope[i*slope_rs + j*slope_cs]`, 6 a relu's backward (`c` where
/// `slope[i*slope_rs + j*slope_cs] > 0`, else 0: `slope` is then the relu's output), each as
/// the IR defines it. An unknown code applies no activation.
///
/// # Safety
/// As for [`sinter_sgemm`]; if `bias` is not null, `bias + i*bias_rs + j*bias_cs` must be
/// readable for `i < m`, `j < n` and not overlap C; for `act` 5 and 6 the same of `slope`.
#[allow(clippy::too_many_arguments)] // the BLAS argument list
pub unsafe extern "C" fn sinter_sgemm_epilogue(
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: *const f32,
    rsa: isize,
    csa: isize,
    b: *const f32,
    rsb: isize,
    csb: isize,
    beta: f32,
    c: *mut f32,
    rsc: isize,
    csc: isize,
    threads: usize,
    bias: *const f32,
    bias_rs: isize,
    bias_cs: isize,
    act: u8,
    act_alpha: f32,
    slope: *const f32,
    slope_rs: isize,
    slope_cs: isize,
) {
    let a = MatRef {
        ptr: a,
        rs: rsa,
        cs: csa,
    };
    let b = MatRef {
        ptr: b,
        rs: rsb,
        cs: csb,
    };
    let c = MatMut {
        ptr: c,
        rs: rsc,
        cs: csc,
    };
    let epi = epilogue(
        bias, bias_rs, bias_cs, act, act_alpha, slope, slope_rs, slope_cs,
    );
    // SAFETY: the caller's contract is the driver's; the detected ISA is available.
    unsafe { gemm_strided(Isa::detect(), m, n, k, alpha, a, b, beta, c, epi, threads) }
}

/// A convolution of one image (and group) as GEMM with implicit im2col
/// ([`crate::im2col`]): [`sinter_sgemm_epilogue`] with B the im2col matrix of the image `x`
/// under `*geom` (`n = geom.n()`, `k = geom.k()`), which is never built: the driver packs its
/// blocks straight from the image.
///
/// `flags` bit 0: `a` is the weights packed whole ([`crate::pack_a_whole`] of an
/// `m x geom.k()` matrix) and `rsa`, `csa` are unused: constant weights packed once, when the
/// graph was compiled. Bit 1: B is the *transposed* im2col matrix (`n = geom.k()`,
/// `k = geom.n()`): a weight gradient `dw = dy * col^T`, A being `dy` (`m x geom.n()`).
///
/// # Safety
/// As for [`sinter_sgemm_epilogue`] with that B; `geom` must point to a readable
/// [`crate::ConvGeom`] and `x` be readable for `geom.image_len()` floats, not overlapping C;
/// a packed `a` must hold [`crate::layout::packed_a_whole_len`]`(m, geom.k())` floats.
#[allow(clippy::too_many_arguments)] // the BLAS argument list
pub unsafe extern "C" fn sinter_sgemm_conv(
    m: usize,
    alpha: f32,
    a: *const f32,
    rsa: isize,
    csa: isize,
    flags: u8,
    x: *const f32,
    geom: *const crate::ConvGeom,
    beta: f32,
    c: *mut f32,
    rsc: isize,
    csc: isize,
    threads: usize,
    bias: *const f32,
    bias_rs: isize,
    bias_cs: isize,
    act: u8,
    act_alpha: f32,
    slope: *const f32,
    slope_rs: isize,
    slope_cs: isize,
) {
    // SAFETY: the caller's contract.
    let geom = unsafe { *geom };
    let a = a_source(flags & 1 != 0, m, a, rsa, csa);
    let c = MatMut {
        ptr: c,
        rs: rsc,
        cs: csc,
    };
    let epi = epilogue(
        bias, bias_rs, bias_cs, act, act_alpha, slope, slope_rs, slope_cs,
    );
    let transposed = flags & 2 != 0;
    let (n, k) = if transposed {
        (geom.k(), geom.n())
    } else {
        (geom.n(), geom.k())
    };
    let b = BSrc::Conv {
        x,
        geom,
        transposed,
        col0: 0,
    };
    // SAFETY: the caller's contract is the driver's; the detected ISA is available.
    unsafe { gemm_parallel(Isa::detect(), m, n, k, alpha, a, b, beta, c, epi, threads) }
}

/// The A operand as the C-ABI entries take it: [`crate::pack_a_whole`] of an `m`-row matrix
/// if `packed` (the strides unused), else strided.
fn a_source(packed: bool, m: usize, a: *const f32, rsa: isize, csa: isize) -> ASrc {
    if packed {
        ASrc::Packed {
            data: a,
            m_pad: m.div_ceil(MR) * MR,
            row0: 0,
        }
    } else {
        ASrc::Strided(MatRef {
            ptr: a,
            rs: rsa,
            cs: csa,
        })
    }
}

/// The epilogue as the C-ABI entries take it (see [`sinter_sgemm_epilogue`]); an unknown
/// activation code applies none.
#[allow(clippy::too_many_arguments)] // the C ABI's flattened epilogue
fn epilogue(
    bias: *const f32,
    bias_rs: isize,
    bias_cs: isize,
    act: u8,
    act_alpha: f32,
    slope: *const f32,
    slope_rs: isize,
    slope_cs: isize,
) -> Epi {
    Epi {
        bias,
        rs: bias_rs,
        cs: bias_cs,
        act: Act::from_code(act, act_alpha, slope, slope_rs, slope_cs).unwrap_or(Act::None),
    }
}

/// [`sinter_sgemm_epilogue`] with operands packed ahead of time: constant weights packed
/// once, when the graph was compiled. `flags` bit 0: `a` is [`crate::pack_a_whole`] of the
/// `m x k` A (`rsa`, `csa` unused); bit 1: `b` is the data of a [`crate::PackedB`] built with
/// the same `k` and `n` (`rsb`, `csb` unused). An operand whose bit is clear is strided.
///
/// # Safety
/// As for [`sinter_sgemm_epilogue`] for strided operands, C and the epilogue; a packed `a`
/// must hold [`crate::layout::packed_a_whole_len`]`(m, k)` floats, a packed `b`
/// `k * ceil(n / NR) * NR`.
#[allow(clippy::too_many_arguments)] // the BLAS argument list
pub unsafe extern "C" fn sinter_sgemm_prepacked(
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: *const f32,
    rsa: isize,
    csa: isize,
    b: *const f32,
    rsb: isize,
    csb: isize,
    flags: u8,
    beta: f32,
    c: *mut f32,
    rsc: isize,
    csc: isize,
    threads: usize,
    bias: *const f32,
    bias_rs: isize,
    bias_cs: isize,
    act: u8,
    act_alpha: f32,
    slope: *const f32,
    slope_rs: isize,
    slope_cs: isize,
) {
    let a = a_source(flags & 1 != 0, m, a, rsa, csa);
    let b = if flags & 2 != 0 {
        BSrc::Packed {
            data: b,
            n_pad: n.div_ceil(NR) * NR,
            col0: 0,
        }
    } else {
        BSrc::Strided(MatRef {
            ptr: b,
            rs: rsb,
            cs: csb,
        })
    };
    let c = MatMut {
        ptr: c,
        rs: rsc,
        cs: csc,
    };
    let epi = epilogue(
        bias, bias_rs, bias_cs, act, act_alpha, slope, slope_rs, slope_cs,
    );
    // SAFETY: the caller's contract is the driver's; the detected ISA is available.
    unsafe { gemm_parallel(Isa::detect(), m, n, k, alpha, a, b, beta, c, epi, threads) }
}

/// Computes one tile of C from packed panels:
/// `C[i, j] = alpha * sum_{p<k} a[p*MR + i] * b[p*NR + j] + beta * C[i, j]` for `i < mr`,
/// `j < nr`, with `C[i, j]` at `c + i*rsc + j*csc` ([`MR`] = 6, [`NR`] = 32; `mr <= MR`,
/// `nr <= NR`). `beta == 0` does not read C. A full tile (`mr == MR`, `nr == NR`) with
/// `csc == 1` is the fast path; others go through a scratch tile.
///
/// # Safety
/// `a` must hold `k * MR` readable floats (a packed A panel), `b` `k * NR` (a packed B panel);
/// `c + i*rsc + j*csc` must be readable and writable for `i < mr`, `j < nr`; `mr <= MR`,
/// `nr <= NR`.
#[allow(clippy::too_many_arguments)] // the kernel's argument list
pub unsafe extern "C" fn sinter_ukernel(
    mr: usize,
    nr: usize,
    k: usize,
    alpha: f32,
    a: *const f32,
    b: *const f32,
    beta: f32,
    c: *mut f32,
    rsc: isize,
    csc: isize,
) {
    let kernel = tile_fn(Isa::detect());
    // SAFETY: the caller's contract; the detected ISA is available.
    unsafe {
        tile_partial(
            kernel,
            half_tile_fn(Isa::detect()),
            mr.min(MR),
            nr.min(NR),
            k,
            alpha,
            a,
            b,
            beta,
            c,
            rsc,
            csc,
        )
    }
}

/// Packs the `mc x kc` block of A with element `(i, p)` at `a + i*rsa + p*csa` into
/// `ceil(mc / MR)` panels of `kc x MR` at `dst` (layout in [`crate::layout`]; rows past `mc`
/// are zero).
///
/// # Safety
/// Every `a + i*rsa + p*csa` (`i < mc`, `p < kc`) must be readable, and `dst` writable for
/// [`crate::layout::packed_a_len`]`(mc, kc)` floats, not overlapping A.
pub unsafe extern "C" fn sinter_pack_a(
    mc: usize,
    kc: usize,
    a: *const f32,
    rsa: isize,
    csa: isize,
    dst: *mut f32,
) {
    // SAFETY: the caller's contract; the detected ISA is available.
    unsafe { pack_a(Isa::detect(), mc, kc, a, rsa, csa, dst) }
}

/// Packs the `kc x nc` block of B with element `(p, j)` at `b + p*rsb + j*csb` into
/// `ceil(nc / NR)` panels of `kc x NR` at `dst` (layout in [`crate::layout`]; columns past
/// `nc` are zero).
///
/// # Safety
/// Every `b + p*rsb + j*csb` (`p < kc`, `j < nc`) must be readable, and `dst` writable for
/// [`crate::layout::packed_b_len`]`(kc, nc)` floats, not overlapping B.
pub unsafe extern "C" fn sinter_pack_b(
    kc: usize,
    nc: usize,
    b: *const f32,
    rsb: isize,
    csb: isize,
    dst: *mut f32,
) {
    // SAFETY: the caller's contract; the detected ISA is available.
    unsafe { pack_b(Isa::detect(), kc, nc, b, rsb, csb, dst) }
}

/// The Winograd filter transform ([`crate::winograd::filter_transform`]): `w` of shape
/// `[co, ci, 3, 3]` to `u` of shape `[T, co, ci]`, `T = (m + 2)^2`, on up to `threads`
/// threads; with `transposed` nonzero `w` is a transposed convolution's weight of shape
/// `[ci, co, 3, 3]` ([`crate::winograd::filter_transform_transposed`]). An `m` other than 2
/// or 4 is a caller bug: the call then does nothing.
///
/// # Safety
/// `w` readable for `co * ci * 9` floats; `u` writable for `T * co * ci` floats, not
/// overlapping `w`; nothing else may access `u` during the call.
pub unsafe extern "C" fn sinter_winograd_filter(
    m: usize,
    w: *const f32,
    co: usize,
    ci: usize,
    u: *mut f32,
    threads: usize,
    transposed: usize,
) {
    if m != 2 && m != 4 {
        return;
    }
    let path = winograd::Path::detect();
    // SAFETY: the caller's contract; `m` is 2 or 4; the detected path is available.
    unsafe { winograd::filter_raw(path, m, w, co, ci, u, threads, transposed != 0) }
}

/// The Winograd input transform ([`crate::winograd::input_transform`]): `x` of shape
/// `[n, c, h, w]` with zero padding `pad_top`, `pad_left`, `pad_bottom`, `pad_right` to `v`
/// of shape `[T, c, P]`, `T = (m + 2)^2`, `P = n * ceil(OH / m) * ceil(OW / m)`,
/// `OH = h + pad_top + pad_bottom - 2`, `OW = w + pad_left + pad_right - 2`, on up to
/// `threads` threads. An `m` other than 2 or 4, or an empty output (`OH` or `OW` < 1), is a
/// caller bug: the call then does nothing.
///
/// # Safety
/// `x` readable for `n * c * h * w` floats; `v` writable for `T * c * P` floats, not
/// overlapping `x`; nothing else may access `v` during the call.
#[allow(clippy::too_many_arguments)] // the shape, written out
pub unsafe extern "C" fn sinter_winograd_input(
    m: usize,
    x: *const f32,
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    pad_top: usize,
    pad_left: usize,
    pad_bottom: usize,
    pad_right: usize,
    v: *mut f32,
    threads: usize,
) {
    if m != 2 && m != 4 {
        return;
    }
    let Some((oh, ow)) = winograd::output_extent(h, w, [pad_top, pad_left, pad_bottom, pad_right])
    else {
        return;
    };
    let Some(g) = winograd::Geom::new(m, n, c, oh, ow) else {
        return;
    };
    let img = winograd::Image {
        h,
        w,
        top: pad_top,
        left: pad_left,
    };
    // SAFETY: the caller's contract; `m` is 2 or 4 and `g` the tiling of that image; the
    // detected path is available.
    unsafe { winograd::input_raw(winograd::Path::detect(), &g, &img, x, v, threads) }
}

/// The Winograd output transform ([`crate::winograd::output_transform`]): `mm` of shape
/// `[T, co, P]` (`P = n * ceil(oh / m) * ceil(ow / m)`) to `y` of shape `[n, co, oh, ow]`,
/// then `y += bias[co]` if `bias` is not null, then the activation `act` with the codes of
/// [`sinter_sgemm_epilogue`] (0 none, 1 relu, 2 leaky relu with slope `act_alpha`,
/// 3 sigmoid, 4 tanh), on up to `threads` threads. Codes 5 (prelu), 6 (relu backward) and
/// unknown codes are caller bugs: they apply no activation (the bias is still added). An `m`
/// other than 2 or 4, or `oh` or `ow` of 0, is a caller bug: the call then does nothing.
///
/// # Safety
/// `mm` readable for `T * co * P` floats; `bias` null or readable for `co` floats; `y`
/// writable for `n * co * oh * ow` floats, not overlapping `mm` or `bias`; nothing else may
/// access `y` during the call.
#[allow(clippy::too_many_arguments)] // the shape and epilogue, written out
pub unsafe extern "C" fn sinter_winograd_output(
    m: usize,
    mm: *const f32,
    n: usize,
    co: usize,
    oh: usize,
    ow: usize,
    bias: *const f32,
    act: u8,
    act_alpha: f32,
    y: *mut f32,
    threads: usize,
) {
    if (m != 2 && m != 4) || oh == 0 || ow == 0 {
        return;
    }
    let Some(g) = winograd::Geom::new(m, n, co, oh, ow) else {
        return;
    };
    let act = match act {
        1 => Act::Relu,
        2 => Act::LeakyRelu(act_alpha),
        3 => Act::Sigmoid,
        4 => Act::Tanh,
        _ => Act::None,
    };
    // SAFETY: the caller's contract; `m` is 2 or 4, `g` the tiling of that output, `act`
    // reads no data; the detected path is available.
    unsafe { winograd::output_raw(winograd::Path::detect(), &g, mm, bias, act, y, threads) }
}

/// The C-ABI entries by name, for `cranelift_jit::JITBuilder::symbol(name, ptr)`.
///
/// Names and signatures (`usize`/`isize` are pointer-sized integers, `f32` is `F32`):
/// `sinter_sgemm`, `sinter_sgemm_threaded`, `sinter_sgemm_epilogue`, `sinter_sgemm_conv`,
/// `sinter_sgemm_prepacked`, `sinter_ukernel`,
/// `sinter_pack_a`, `sinter_pack_b`, `sinter_winograd_filter`, `sinter_winograd_input`,
/// `sinter_winograd_output`, as declared in this module.
pub fn symbols() -> Vec<(&'static str, *const u8)> {
    vec![
        ("sinter_sgemm", sinter_sgemm as *const u8),
        ("sinter_sgemm_threaded", sinter_sgemm_threaded as *const u8),
        ("sinter_sgemm_epilogue", sinter_sgemm_epilogue as *const u8),
        ("sinter_sgemm_conv", sinter_sgemm_conv as *const u8),
        (
            "sinter_sgemm_prepacked",
            sinter_sgemm_prepacked as *const u8,
        ),
        ("sinter_ukernel", sinter_ukernel as *const u8),
        ("sinter_pack_a", sinter_pack_a as *const u8),
        ("sinter_pack_b", sinter_pack_b as *const u8),
        (
            "sinter_winograd_filter",
            sinter_winograd_filter as *const u8,
        ),
        ("sinter_winograd_input", sinter_winograd_input as *const u8),
        (
            "sinter_winograd_output",
            sinter_winograd_output as *const u8,
        ),
    ]
}
