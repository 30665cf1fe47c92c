//! The embedded UCI optical-digits data set (1,797 8x8 images, labels 0-9).
//!
//! The gzipped CSV ships inside the binary so the demo needs nothing from the network or the
//! file system. Provenance and licence: `data/README.md`.

use crate::{DataError, Dataset};
use std::io::Read;

/// The gzipped CSV, as scikit-learn ships it: 64 pixels (0..16) then the label, per row.
pub const DIGITS_CSV_GZ: &[u8] = include_bytes!("../../../data/digits.csv.gz");

fn bad(message: String) -> DataError {
    DataError::Format {
        source_name: "digits.csv.gz".into(),
        message,
    }
}

/// All 1,797 digits: samples `[1, 8, 8]` with pixels scaled from `0..=16` to `[0, 1]`,
/// labels `0..=9`, in the file's order.
pub fn digits() -> Result<Dataset, DataError> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(DIGITS_CSV_GZ)
        .read_to_string(&mut text)
        .map_err(|e| bad(e.to_string()))?;
    let mut x = Vec::new();
    let mut labels = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let vals: Vec<f32> = line
            .split(',')
            .map(|v| v.trim().parse::<f32>())
            .collect::<Result<_, _>>()
            .map_err(|e| bad(format!("line {}: {e}", i + 1)))?;
        let ok_pixel = |p: &f32| (0.0..=16.0).contains(p) && p.fract() == 0.0;
        if vals.len() != 65 || !vals.iter().all(ok_pixel) || vals[64] > 9.0 {
            return Err(bad(format!(
                "line {}: expected 64 integer pixels in 0..=16 and a label in 0..=9, got {} values",
                i + 1,
                vals.len()
            )));
        }
        x.extend(vals[..64].iter().map(|p| p / 16.0));
        labels.push(vals[64] as i64);
    }
    Ok(Dataset {
        x,
        sample_shape: vec![1, 8, 8],
        labels,
        classes: 10,
    })
}

/// The fixed split every Sinter test and the demo use: image `i` is held out for testing when
/// `i % 5 == 0` (360 images); the other 1,437 train. Returns `(train, test)`.
pub fn digits_split() -> Result<(Dataset, Dataset), DataError> {
    let all = digits()?;
    let (test, train): (Vec<usize>, Vec<usize>) = (0..all.len()).partition(|i| i % 5 == 0);
    Ok((all.subset(&train), all.subset(&test)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn loads_all_rows_and_splits() {
        let d = super::digits().unwrap();
        assert_eq!(d.len(), 1797);
        assert_eq!(d.x.len(), 1797 * 64);
        let mut counts = [0usize; 10];
        for &l in &d.labels {
            counts[l as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (170..=190).contains(&c)),
            "{counts:?}"
        );
        assert!(d.x.iter().all(|p| (0.0..=1.0).contains(p)));
        let (train, test) = super::digits_split().unwrap();
        assert_eq!((train.len(), test.len()), (1437, 360));
        assert_eq!(test.sample(1), d.sample(5));
        let (x, y) = test.batch(&[0, 1]);
        assert_eq!(x.shape(), &[2, 1, 8, 8]);
        assert_eq!(y.shape(), &[2]);
    }
}
