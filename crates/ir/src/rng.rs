//! Counter-based random numbers: the definition of every random op.
//!
//! Element `i` of a random tensor is a pure function of `(seed, counter, i)`, so any kernel can
//! compute any element independently, in any order or thread, and get the interpreter's exact
//! bits. `seed` is the op's attribute; `counter` is the op's optional i64 scalar input (0 when
//! absent), meant to be the training step so masks change per step while staying reproducible.
//!
//! The mixer is SplitMix64's finaliser (Steele, Lea and Flood, 2014), a bijection on 64-bit
//! words with good avalanche; it is not cryptographic and need not be.

/// By convention, the `i64[]` data input that counts training steps for a graph's random ops
/// (their counter operand): `sinter_autodiff::training_graph` carries it (0 on the first step,
/// then +1), so each step draws anew, reproducibly; `inference_graph` drops it with the
/// random ops that read it. Model builders name it so.
pub const STEP_INPUT: &str = "rng.step";

/// SplitMix64's finaliser.
pub fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The stream key of `(seed, counter)`.
pub fn key(seed: i64, counter: i64) -> u64 {
    mix64(mix64(seed as u64) ^ (counter as u64).wrapping_mul(0xD1B5_4A32_D192_ED03))
}

/// 64 random bits for element `i` of the stream `key`.
pub fn bits(key: u64, i: u64) -> u64 {
    mix64(key ^ mix64(i))
}

/// Uniform in `[0, 1)` with 24 bits of resolution (exactly representable in f32).
pub fn uniform(key: u64, i: u64) -> f32 {
    (bits(key, i) >> 40) as f32 * (1.0 / 16_777_216.0)
}

/// Standard normal by Box-Muller from the two uniforms `2i` and `2i+1` of the stream.
pub fn normal(key: u64, i: u64) -> f32 {
    let u1 = uniform(key, 2 * i);
    let u2 = uniform(key, 2 * i + 1);
    // 1 - u1 is in (0, 1], so the log is finite.
    let r = (-2.0 * (1.0 - u1).ln()).sqrt();
    r * (std::f32::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_moments() {
        let k = key(7, 0);
        let n = 100_000;
        let xs: Vec<f32> = (0..n).map(|i| uniform(k, i)).collect();
        let mean = xs.iter().sum::<f32>() / n as f32;
        assert!((mean - 0.5).abs() < 0.01, "mean {mean}");
        assert!(xs.iter().all(|&x| (0.0..1.0).contains(&x)));
        assert_ne!(key(7, 0), key(7, 1));
        assert_ne!(key(7, 0), key(8, 0));
    }

    #[test]
    fn normal_moments() {
        let k = key(3, 5);
        let n = 100_000;
        let xs: Vec<f32> = (0..n).map(|i| normal(k, i)).collect();
        let mean = xs.iter().sum::<f32>() / n as f32;
        let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f32>() / n as f32;
        assert!(mean.abs() < 0.02, "mean {mean}");
        assert!((var - 1.0).abs() < 0.03, "var {var}");
    }
}
