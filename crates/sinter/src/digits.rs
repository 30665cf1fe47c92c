//! The embedded UCI optical-digits data set (1,797 8x8 images, labels 0-9).
//!
//! The gzipped CSV ships inside the binary so the demo needs nothing from the network or the
//! file system. Provenance and licence: `data/README.md`.

use sinter_ir::Tensor;
use std::io::Read;

/// The gzipped CSV, as scikit-learn ships it: 64 pixels (0..16) then the label, per row.
pub const DIGITS_CSV_GZ: &[u8] = include_bytes!("../../../data/digits.csv.gz");

/// One image: 64 pixel intensities in `0..=16`, row-major, and its label.
#[derive(Clone, Debug, PartialEq)]
pub struct Digit {
    /// Pixels, row-major 8x8, values 0..=16.
    pub pixels: [u8; 64],
    /// The digit shown, 0..=9.
    pub label: u8,
}

/// Decodes the embedded data set.
pub fn load() -> Result<Vec<Digit>, String> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(DIGITS_CSV_GZ)
        .read_to_string(&mut text)
        .map_err(|e| format!("digits.csv.gz: {e}"))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, line)| {
            let vals: Vec<u8> = line
                .split(',')
                .map(|v| v.trim().parse::<f32>().map(|f| f as u8))
                .collect::<Result<_, _>>()
                .map_err(|e| format!("digits.csv.gz line {}: {e}", i + 1))?;
            if vals.len() != 65 || vals[64] > 9 || vals[..64].iter().any(|&p| p > 16) {
                return Err(format!(
                    "digits.csv.gz line {}: expected 64 pixels in 0..=16 and a label",
                    i + 1
                ));
            }
            let mut pixels = [0u8; 64];
            pixels.copy_from_slice(&vals[..64]);
            Ok(Digit {
                pixels,
                label: vals[64],
            })
        })
        .collect()
}

/// A batch as tensors: images `f32[n,1,8,8]` scaled to `[0, 1]` and labels `i64[n]`.
pub fn batch(digits: &[Digit]) -> (Tensor, Tensor) {
    let x = digits
        .iter()
        .flat_map(|d| d.pixels.iter().map(|&p| p as f32 / 16.0))
        .collect();
    let y = digits.iter().map(|d| d.label as i64).collect();
    let n = digits.len();
    (
        Tensor::from_f32(&[n, 1, 8, 8], x),
        Tensor::from_i64(&[n], y),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn loads_all_rows() {
        let d = super::load().unwrap();
        assert_eq!(d.len(), 1797);
        let mut counts = [0usize; 10];
        for x in &d {
            counts[x.label as usize] += 1;
        }
        // Every class is present with roughly 180 examples.
        assert!(
            counts.iter().all(|&c| (170..=190).contains(&c)),
            "{counts:?}"
        );
    }
}
