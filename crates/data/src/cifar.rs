//! CIFAR-10 in its binary batches (`data_batch_1.bin` .. `data_batch_5.bin`, `test_batch.bin`).
//!
//! Each batch is a run of 3,073-byte records: one label byte (0..=9), then a 32x32 image as
//! 1,024 red, 1,024 green and 1,024 blue bytes, row-major: already the `[3, 32, 32]` (CHW)
//! layout convolutions take, so a sample is its bytes scaled to `[0, 1]`.

use crate::{DataError, Dataset};
use std::path::{Path, PathBuf};

/// Bytes per image.
const PIXELS: usize = 3 * 32 * 32;
/// Bytes per record: the label and the image.
const RECORD: usize = 1 + PIXELS;

/// CIFAR-10's training batches (`data_batch_*.bin`, in batch order) or its test batch
/// (`test_batch.bin`) from `dir` or its `cifar-10-batches-bin/` subdirectory.
pub fn cifar10(dir: &Path, train: bool) -> Result<Dataset, DataError> {
    match find_cifar10(dir, train) {
        Some(files) => cifar10_files(&files),
        None => Err(DataError::format(
            dir.display(),
            format!(
                "no CIFAR-10 batches: looked for {} here and in cifar-10-batches-bin/",
                if train {
                    "data_batch_N.bin"
                } else {
                    "test_batch.bin"
                }
            ),
        )),
    }
}

/// The batch files of the training or test set under `dir`, if any.
pub(crate) fn find_cifar10(dir: &Path, train: bool) -> Option<Vec<PathBuf>> {
    for sub in [dir.to_path_buf(), dir.join("cifar-10-batches-bin")] {
        let files = if train {
            let Ok(entries) = std::fs::read_dir(&sub) else {
                continue;
            };
            let mut numbered: Vec<(u32, PathBuf)> = entries
                .filter_map(Result::ok)
                .filter_map(|e| {
                    let name = e.file_name().into_string().ok()?;
                    let n = name.strip_prefix("data_batch_")?.strip_suffix(".bin")?;
                    Some((n.parse().ok()?, e.path()))
                })
                .collect();
            numbered.sort();
            numbered.into_iter().map(|(_, p)| p).collect()
        } else {
            let p = sub.join("test_batch.bin");
            if p.is_file() { vec![p] } else { vec![] }
        };
        if !files.is_empty() {
            return Some(files);
        }
    }
    None
}

/// The records of one or more CIFAR-10 batch files, in order: samples `[3, 32, 32]` scaled
/// to `[0, 1]`, labels `0..=9`.
pub fn cifar10_files(paths: &[impl AsRef<Path>]) -> Result<Dataset, DataError> {
    if paths.is_empty() {
        return Err(DataError::format("CIFAR-10", "no batch files given"));
    }
    let mut x = Vec::new();
    let mut labels = Vec::new();
    for path in paths {
        let path = path.as_ref();
        let io = |e| DataError::io(path, e);
        let len = std::fs::metadata(path).map_err(io)?.len();
        if len == 0 || len % RECORD as u64 != 0 {
            return Err(DataError::format(
                path.display(),
                format!(
                    "{len} bytes is not a whole number of {RECORD}-byte records \
                     (1 label byte + {PIXELS} pixel bytes)"
                ),
            ));
        }
        let bytes = std::fs::read(path).map_err(io)?;
        if bytes.len() as u64 != len {
            return Err(DataError::format(
                path.display(),
                format!(
                    "the file changed while reading: {len} then {} bytes",
                    bytes.len()
                ),
            ));
        }
        x.reserve(bytes.len() / RECORD * PIXELS);
        for (i, record) in bytes.chunks_exact(RECORD).enumerate() {
            if record[0] > 9 {
                return Err(DataError::format(
                    path.display(),
                    format!("label {} of record {i} is outside 0..10", record[0]),
                ));
            }
            labels.push(i64::from(record[0]));
            x.extend(record[1..].iter().map(|&p| f32::from(p) / 255.0));
        }
    }
    Ok(Dataset {
        x,
        sample_shape: vec![3, 32, 32],
        labels,
        classes: 10,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::testutil::WriteFile;

    /// A batch file of records whose labels are `labels` and whose pixels depend on `seed`.
    pub(crate) fn batch(labels: &[u8], seed: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for (r, &l) in labels.iter().enumerate() {
            out.push(l);
            out.extend((0..PIXELS).map(|i| ((i * 7 + r * 13 + seed) % 256) as u8));
        }
        out
    }

    #[test]
    fn reads_batches_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("cifar-10-batches-bin");
        std::fs::create_dir(&sub).unwrap();
        // Batch 10 sorts after batch 2 by number, not by name.
        std::fs::write(sub.join("data_batch_10.bin"), batch(&[9], 3)).unwrap();
        std::fs::write(sub.join("data_batch_2.bin"), batch(&[4, 5], 2)).unwrap();
        std::fs::write(sub.join("data_batch_1.bin"), batch(&[0, 1, 2], 1)).unwrap();
        std::fs::write(sub.join("test_batch.bin"), batch(&[7], 0)).unwrap();
        let d = cifar10(dir.path(), true).unwrap();
        assert_eq!(d.labels, vec![0, 1, 2, 4, 5, 9]);
        assert_eq!(d.sample_shape, vec![3, 32, 32]);
        let b1 = batch(&[0, 1, 2], 1);
        let want: Vec<f32> = b1[1..RECORD]
            .iter()
            .map(|&p| f32::from(p) / 255.0)
            .collect();
        assert_eq!(d.sample(0), &want[..]);
        // The green plane of record 1 starts 1 + 1024 bytes into that record.
        assert_eq!(d.sample(1)[1024], f32::from(b1[RECORD + 1 + 1024]) / 255.0);
        let t = cifar10(dir.path(), false).unwrap();
        assert_eq!(t.labels, vec![7]);
    }

    #[test]
    fn bad_batches_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let good = batch(&[1, 2], 0);
        let cut = dir.write("cut.bin", &good[..good.len() - 1]);
        let e = cifar10_files(&[&cut]).unwrap_err().to_string();
        assert!(
            e.contains("cut.bin") && e.contains("6145 bytes") && e.contains("3073-byte"),
            "{e}"
        );
        let none: &[&Path] = &[];
        assert!(cifar10_files(none).is_err());
        let empty = dir.write("empty.bin", &[]);
        assert!(cifar10_files(&[&empty]).is_err());
        let label = dir.write("label.bin", &batch(&[3, 12], 0));
        let e = cifar10_files(&[label]).unwrap_err().to_string();
        assert!(e.contains("label 12 of record 1"), "{e}");
        let e = cifar10(dir.path(), true).unwrap_err().to_string();
        assert!(e.contains("data_batch_N.bin"), "{e}");
        assert!(matches!(
            cifar10_files(&[dir.path().join("missing.bin")]),
            Err(DataError::Io { .. })
        ));
    }
}
