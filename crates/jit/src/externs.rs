//! Rust math functions that generated code calls by address.
//!
//! Calling the same `f32` functions as the interpreter makes `exp`, `log`, `tanh`, `pow` and the
//! Box-Muller `cos`/`ln` of `random_normal` bit-exact against the oracle, at ~2 ns a call
//! (`shared/CODEGEN-NOTES.md`). The fast path is the inline polynomial in [`crate::approx`].

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
}

impl Extern {
    /// Every import.
    pub const ALL: [Extern; 5] = [
        Extern::Exp,
        Extern::Ln,
        Extern::Tanh,
        Extern::Cos,
        Extern::Pow,
    ];

    /// Symbol name.
    pub fn symbol(self) -> &'static str {
        match self {
            Extern::Exp => "sinter_expf",
            Extern::Ln => "sinter_lnf",
            Extern::Tanh => "sinter_tanhf",
            Extern::Cos => "sinter_cosf",
            Extern::Pow => "sinter_powf",
        }
    }

    /// Number of f32 arguments.
    pub fn arity(self) -> usize {
        match self {
            Extern::Pow => 2,
            _ => 1,
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
