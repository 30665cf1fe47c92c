//! Inline polynomial approximations, generated as Cranelift instructions.
//!
//! `exp` is the Cephes scheme: `n = round(x / ln 2)`, `r = x - n ln 2` (in two parts for
//! accuracy), a degree-6 polynomial for `e^r` on `[-ln2/2, ln2/2]`, and a scale by `2^n` done as
//! two exponent-field multiplications (`2^(n/2) * 2^(n - n/2)`), so results that over- or
//! underflow (into subnormals) round like a product instead of wrapping the exponent. Works on
//! `f32` and `f32x4`. Its max error against `f32::exp` is measured in this crate's tests.

use cranelift_codegen::ir::{Endianness, InstBuilder, MemFlagsData, Type, Value, types};
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
        flags.set_endianness(Endianness::Little);
    }
    b.ins().bitcast(fty, flags, bits)
}

/// Select by a float comparison (lowers to one compare + blend; `fmin`/`fmax` are slower).
fn clamp(b: &mut FunctionBuilder<'_>, ty: Type, x: Value, lo: f32, hi: f32) -> Value {
    use cranelift_codegen::ir::condcodes::FloatCC;
    let h = fconst(b, ty, hi);
    let l = fconst(b, ty, lo);
    let pick = |b: &mut FunctionBuilder<'_>, cc, bound: Value, x: Value| {
        let m = b.ins().fcmp(cc, x, bound);
        if ty == types::F32 {
            b.ins().select(m, bound, x)
        } else {
            let flags = MemFlagsData::new().with_endianness(Endianness::Little);
            let m = b.ins().bitcast(ty, flags, m);
            b.ins().bitselect(m, bound, x)
        }
    };
    let x = pick(b, FloatCC::GreaterThan, h, x);
    pick(b, FloatCC::LessThan, l, x)
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

#[cfg(test)]
mod tests {
    use crate::{Options, compile};
    use sinter_lower::loops::{Expr, Kernel, Stmt, Ty, UnOp, load, un};

    /// Distance in units in the last place between two positive finite floats.
    fn ulps(a: f32, b: f32) -> u32 {
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs() as u32
    }

    /// Runs `y = fastexp(x)` through generated code (vector lanes and scalar remainder).
    fn fast_exp(xs: &[f32]) -> Vec<f32> {
        let mut k = Kernel::new("exp");
        let x = k.buf("x", Ty::F32, xs.len(), false);
        let y = k.buf("y", Ty::F32, xs.len(), true);
        let i = k.var("i", Ty::I64);
        k.body.push(Stmt::For {
            var: i,
            extent: xs.len() as i64,
            body: vec![Stmt::Store(
                y,
                Expr::v(i),
                un(UnOp::FastExp, load(x, Expr::v(i))),
            )],
        });
        let m = compile(&[k], Options::default(), false).unwrap();
        let mut input = xs.to_vec();
        let mut out = vec![0.0f32; xs.len()];
        let table = [
            input.as_mut_ptr().cast::<u8>(),
            out.as_mut_ptr().cast::<u8>(),
        ];
        // SAFETY: two buffers of `xs.len()` f32 each, as the kernel declares; `out` is the
        // only one written and does not overlap `input`.
        let r = unsafe { m.call(0, &table) };
        assert_eq!(r, 0);
        out
    }

    /// The documented accuracy of the inline `exp`: at most 2 ULP from `f32::exp` wherever the
    /// result is a normal float (x in [-87.3, 88.7]), and the right limits outside.
    #[test]
    fn exp_max_ulp_error() {
        let n = 200_003; // not a multiple of 4: the scalar remainder runs too
        let xs: Vec<f32> = (0..n)
            .map(|i| -87.3 + (88.7 + 87.3) * i as f32 / (n - 1) as f32)
            .collect();
        let ys = fast_exp(&xs);
        let mut worst = (0u32, 0.0f32);
        for (&x, &y) in xs.iter().zip(&ys) {
            let e = ulps(y, x.exp());
            if e > worst.0 {
                worst = (e, x);
            }
        }
        eprintln!("fast exp: max error {} ULP at x = {}", worst.0, worst.1);
        assert!(worst.0 <= 2, "max error {} ULP at x = {}", worst.0, worst.1);
        let special = fast_exp(&[
            f32::NAN,
            100.0,
            f32::INFINITY,
            -200.0,
            f32::NEG_INFINITY,
            0.0,
            1.0,
            -1.0,
        ]);
        assert!(special[0].is_nan());
        assert_eq!(special[1], f32::INFINITY);
        assert_eq!(special[2], f32::INFINITY);
        assert_eq!(special[3], 0.0);
        assert_eq!(special[4], 0.0);
        assert_eq!(special[5], 1.0);
    }
}
