//! Rust math functions that generated code calls by address.
//!
//! Calling the same `f32` functions as the interpreter makes `exp`, `log`, `tanh`, `pow` and the
//! Box-Muller `cos`/`ln` of `random_normal` bit-exact against the oracle, at ~2 ns a call
//! (`shared/CODEGEN-NOTES.md`). The fast path is the inline polynomial in [`crate::approx`].

use cranelift_codegen::ir::{Type, types};

/// An imported function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Extern {
    /// `f32::exp`.
    Exp,
    /// `f32::ln`.
    Ln,
    /// `f32::tanh`.
    Tanh,
    /// `f32::cos`.
    Cos,
    /// `f32::powf`.
    Pow,
    /// `sinter_microkernels::ffi::sinter_sgemm_threaded`: the GEMM driver.
    Sgemm,
    /// `sinter_microkernels::ffi::sinter_sgemm_epilogue`: the GEMM driver with a bias and
    /// an activation applied per tile.
    SgemmEpilogue,
    /// `sinter_microkernels::ffi::sinter_sgemm_conv`: a convolution of one image as GEMM with
    /// implicit im2col, with the epilogue.
    SgemmConv,
    /// `sinter_microkernels::ffi::sinter_sgemm_prepacked`: the GEMM driver with A or B
    /// packed at compile time, with the epilogue.
    SgemmPrepacked,
    /// `sinter_microkernels::ffi::sinter_winograd_filter`: a Winograd filter transform.
    WinogradFilter,
    /// `sinter_microkernels::ffi::sinter_winograd_input`: a Winograd input transform.
    WinogradInput,
    /// `sinter_microkernels::ffi::sinter_winograd_output`: a Winograd output transform with
    /// bias and activation.
    WinogradOutput,
}

impl Extern {
    /// Every import.
    pub const ALL: [Extern; 12] = [
        Extern::Exp,
        Extern::Ln,
        Extern::Tanh,
        Extern::Cos,
        Extern::Pow,
        Extern::Sgemm,
        Extern::SgemmEpilogue,
        Extern::SgemmConv,
        Extern::SgemmPrepacked,
        Extern::WinogradFilter,
        Extern::WinogradInput,
        Extern::WinogradOutput,
    ];

    /// Symbol name.
    pub fn symbol(self) -> &'static str {
        match self {
            Extern::Exp => "sinter_expf",
            Extern::Ln => "sinter_lnf",
            Extern::Tanh => "sinter_tanhf",
            Extern::Cos => "sinter_cosf",
            Extern::Pow => "sinter_powf",
            Extern::Sgemm => "sinter_sgemm_threaded",
            Extern::SgemmEpilogue => "sinter_sgemm_epilogue",
            Extern::SgemmConv => "sinter_sgemm_conv",
            Extern::SgemmPrepacked => "sinter_sgemm_prepacked",
            Extern::WinogradFilter => "sinter_winograd_filter",
            Extern::WinogradInput => "sinter_winograd_input",
            Extern::WinogradOutput => "sinter_winograd_output",
        }
    }

    /// Parameter and result types.
    pub fn signature(self) -> (Vec<Type>, Vec<Type>) {
        use types::{F32, I8, I64};
        // m, n, k, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc, threads
        const GEMM: [Type; 15] = [
            I64, I64, I64, F32, I64, I64, I64, I64, I64, I64, F32, I64, I64, I64, I64,
        ];
        // bias, bias_rs, bias_cs, act, act_alpha, slope, slope_rs, slope_cs
        const EPILOGUE: [Type; 8] = [I64, I64, I64, I8, F32, I64, I64, I64];
        // m, alpha, a, rsa, csa, flags, x, geom, beta, c, rsc, csc, threads
        const CONV: [Type; 13] = [
            I64, F32, I64, I64, I64, I8, I64, I64, F32, I64, I64, I64, I64,
        ];
        match self {
            Extern::Pow => (vec![F32, F32], vec![F32]),
            Extern::Sgemm => (GEMM.to_vec(), vec![]),
            Extern::SgemmEpilogue => ([&GEMM[..], &EPILOGUE].concat(), vec![]),
            Extern::SgemmConv => ([&CONV[..], &EPILOGUE].concat(), vec![]),
            // m, n, k, alpha, a, rsa, csa, b, rsb, csb, flags, beta, c, rsc, csc, threads
            // + epilogue
            Extern::SgemmPrepacked => (
                [&GEMM[..10], &[I8], &GEMM[10..], &EPILOGUE].concat(),
                vec![],
            ),
            // m, w, co, ci, u, threads, transposed
            Extern::WinogradFilter => (vec![I64; 7], vec![]),
            // m, x, n, c, h, w, pad_top, pad_left, pad_bottom, pad_right, v, threads
            Extern::WinogradInput => (vec![I64; 12], vec![]),
            // m, mm, n, co, oh, ow, bias, act, act_alpha, y, threads
            Extern::WinogradOutput => (
                vec![I64, I64, I64, I64, I64, I64, I64, I8, F32, I64, I64],
                vec![],
            ),
            _ => (vec![F32], vec![F32]),
        }
    }

    /// The function's address.
    pub fn address(self) -> *const u8 {
        match self {
            Extern::Exp => sinter_expf as *const u8,
            Extern::Ln => sinter_lnf as *const u8,
            Extern::Tanh => sinter_tanhf as *const u8,
            Extern::Cos => sinter_cosf as *const u8,
            Extern::Pow => sinter_powf as *const u8,
            Extern::Sgemm => sinter_microkernels::ffi::sinter_sgemm_threaded as *const u8,
            Extern::SgemmEpilogue => sinter_microkernels::ffi::sinter_sgemm_epilogue as *const u8,
            Extern::SgemmConv => sinter_microkernels::ffi::sinter_sgemm_conv as *const u8,
            Extern::SgemmPrepacked => sinter_microkernels::ffi::sinter_sgemm_prepacked as *const u8,
            Extern::WinogradFilter => sinter_microkernels::ffi::sinter_winograd_filter as *const u8,
            Extern::WinogradInput => sinter_microkernels::ffi::sinter_winograd_input as *const u8,
            Extern::WinogradOutput => sinter_microkernels::ffi::sinter_winograd_output as *const u8,
        }
    }
}

extern "C" fn sinter_expf(x: f32) -> f32 {
    x.exp()
}

extern "C" fn sinter_lnf(x: f32) -> f32 {
    x.ln()
}

extern "C" fn sinter_tanhf(x: f32) -> f32 {
    x.tanh()
}

extern "C" fn sinter_cosf(x: f32) -> f32 {
    x.cos()
}

extern "C" fn sinter_powf(x: f32, y: f32) -> f32 {
    x.powf(y)
}
