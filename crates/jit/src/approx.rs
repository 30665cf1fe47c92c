//! Inline polynomial approximations, generated as Cranelift instructions.
//!
//! `exp` is the Cephes scheme: `n = round(x / ln 2)`, `r = x - n ln 2` (in two parts for
//! accuracy), a degree-6 polynomial for `e^r` on `[-ln2/2, ln2/2]`, and a scale by `2^n` done as
//! two exponent-field multiplications (`2^(n/2) * 2^(n - n/2)`), so results that over- or
//! underflow (into subnormals) round like a product instead of wrapping the exponent. Works on
//! `f32` and `f32x4`. Its max error against `f32::exp` is measured in this crate's tests.

use cranelift_codegen::ir::{InstBuilder, MemFlagsData, Type, Value, types};
use cranelift_frontend::FunctionBuilder;

fn fconst(b: &mut FunctionBuilder<'_>, ty: Type, v: f32) -> Value {
    let s = b.ins().f32const(v);
    if ty == types::F32 {
        s
    } else {
        b.ins().splat(ty, s)
    }
}

fn iconst(b: &mut FunctionBuilder<'_>, ty: Type, v: i64) -> Value {
    if ty == types::I32 {
        b.ins().iconst(types::I32, v)
    } else {
        let s = b.ins().iconst(types::I32, v);
        b.ins().splat(ty, s)
    }
}

/// `2^n` for an integer-valued float `n` in `[-126, 127]`.
fn pow2(b: &mut FunctionBuilder<'_>, fty: Type, ity: Type, n: Value) -> Value {
    let ni = b.ins().fcvt_to_sint_sat(ity, n);
    let bias = iconst(b, ity, 127);
    let e = b.ins().iadd(ni, bias);
    let bits = b.ins().ishl_imm_s(e, 23);
    let mut flags = MemFlagsData::new();
    if fty != types::F32 {
        flags.set_endianness(cranelift_codegen::ir::Endianness::Little);
    }
    b.ins().bitcast(fty, flags, bits)
}

/// Select by a float comparison (lowers to one compare + blend; `fmin`/`fmax` are slower).
fn clamp(b: &mut FunctionBuilder<'_>, ty: Type, x: Value, lo: f32, hi: f32) -> Value {
    use cranelift_codegen::ir::condcodes::FloatCC;
    let h = fconst(b, ty, hi);
    let l = fconst(b, ty, lo);
    let over = b.ins().fcmp(FloatCC::GreaterThan, x, h);
    let x = if ty == types::F32 {
        b.ins().select(over, h, x)
    } else {
        b.ins().bitselect(over, h, x)
    };
    let under = b.ins().fcmp(FloatCC::LessThan, x, l);
    if ty == types::F32 {
        b.ins().select(under, l, x)
    } else {
        b.ins().bitselect(under, l, x)
    }
}

/// `e^x` for an `f32` or `f32x4` value. NaN gives NaN, large inputs `inf`, very negative
/// inputs 0.
pub fn exp(b: &mut FunctionBuilder<'_>, x: Value) -> Value {
    let fty = b.func.dfg.value_type(x);
    let ity = if fty == types::F32 {
        types::I32
    } else {
        types::I32X4
    };
    let x = clamp(b, fty, x, -104.0, 89.0);
    let log2e = fconst(b, fty, std::f32::consts::LOG2_E);
    let t = b.ins().fmul(x, log2e);
    let n = b.ins().nearest(t);
    let c1 = fconst(b, fty, 0.693_359_4);
    let c2 = fconst(b, fty, -2.121_944_4e-4);
    let t1 = b.ins().fmul(n, c1);
    let r = b.ins().fsub(x, t1);
    let t2 = b.ins().fmul(n, c2);
    let r = b.ins().fsub(r, t2);
    let coeffs = [
        1.987_569_1e-4,
        1.398_199_9e-3,
        8.333_452e-3,
        4.166_579_6e-2,
        1.666_666_5e-1,
        0.5,
    ];
    let mut p = fconst(b, fty, coeffs[0]);
    for &cf in &coeffs[1..] {
        let m = b.ins().fmul(p, r);
        let cv = fconst(b, fty, cf);
        p = b.ins().fadd(m, cv);
    }
    let rr = b.ins().fmul(r, r);
    let pr = b.ins().fmul(p, rr);
    let y = b.ins().fadd(pr, r);
    let one = fconst(b, fty, 1.0);
    let y = b.ins().fadd(y, one);
    // 2^n as 2^(n/2) * 2^(n - n/2): each factor stays a normal float.
    let half = fconst(b, fty, 0.5);
    let nh = b.ins().fmul(n, half);
    let n1 = b.ins().floor(nh);
    let n2 = b.ins().fsub(n, n1);
    let s1 = pow2(b, fty, ity, n1);
    let s2 = pow2(b, fty, ity, n2);
    let y = b.ins().fmul(y, s1);
    b.ins().fmul(y, s2)
}
