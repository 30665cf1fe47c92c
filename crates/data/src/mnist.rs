//! MNIST in its idx files (`train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, ...).
//!
//! An idx file is a 4-byte magic (`0, 0`, the element type, the number of dimensions), one
//! big-endian `u32` per dimension, then the elements. Images are `u8` `[n, rows, cols]`,
//! labels `u8` `[n]`. Files may be gzipped (as distributed); gzip is recognised by its magic,
//! not by the name. Fashion-MNIST and KMNIST use the same format and names.
//!
//! The dimensions are checked against the file's length before reading (for gzipped files,
//! the read stops at the declared size plus one byte), so a lying header costs nothing.

use crate::{DataError, Dataset, checked_product};
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// The idx element type code of `u8`.
const UBYTE: u8 = 0x08;

/// The MNIST training set (`train`) or test set (`t10k`) from `dir` (or its `raw/` or
/// `MNIST/raw/` subdirectory), gzipped or not: samples `[1, 28, 28]` with pixels scaled from
/// `0..=255` to `[0, 1]`, labels `0..=9`.
pub fn mnist(dir: &Path, train: bool) -> Result<Dataset, DataError> {
    match find_mnist(dir, train) {
        Some((images, labels)) => mnist_files(&images, &labels),
        None => Err(DataError::format(
            dir.display(),
            format!(
                "no MNIST files: looked for {:?} (optionally .gz) here and in raw/ and MNIST/raw/",
                file_names(train)
            ),
        )),
    }
}

/// The images and labels files MNIST names, for the training or test set.
fn file_names(train: bool) -> [String; 2] {
    let p = if train { "train" } else { "t10k" };
    [
        format!("{p}-images-idx3-ubyte"),
        format!("{p}-labels-idx1-ubyte"),
    ]
}

/// The images and labels files of MNIST's training or test set under `dir`, if present.
pub(crate) fn find_mnist(dir: &Path, train: bool) -> Option<(PathBuf, PathBuf)> {
    let [images, labels] = file_names(train);
    for sub in [
        dir.to_path_buf(),
        dir.join("raw"),
        dir.join("MNIST").join("raw"),
    ] {
        for suffix in ["", ".gz"] {
            // The names as distributed, and with a dot before `idx` as some mirrors spell them.
            for dot in [false, true] {
                let name = |n: &str| {
                    let n = if dot {
                        n.replacen("-idx", ".idx", 1)
                    } else {
                        n.to_string()
                    };
                    sub.join(format!("{n}{suffix}"))
                };
                let (i, l) = (name(&images), name(&labels));
                if i.is_file() && l.is_file() {
                    return Some((i, l));
                }
            }
        }
    }
    None
}

/// MNIST-format images and labels from two idx files (each optionally gzipped): samples
/// `[1, rows, cols]` with pixels scaled to `[0, 1]`, labels `0..=9`.
pub fn mnist_files(images: &Path, labels: &Path) -> Result<Dataset, DataError> {
    let (dims, pixels) = read_idx(images, 3)?;
    let (ldims, raw_labels) = read_idx(labels, 1)?;
    if dims[0] != ldims[0] {
        return Err(DataError::format(
            format!("{} and {}", images.display(), labels.display()),
            format!("{} images but {} labels", dims[0], ldims[0]),
        ));
    }
    if let Some((i, l)) = raw_labels.iter().enumerate().find(|&(_, &l)| l > 9) {
        return Err(DataError::format(
            labels.display(),
            format!("label {l} of sample {i} is outside 0..10"),
        ));
    }
    Ok(Dataset {
        x: pixels.into_iter().map(|p| f32::from(p) / 255.0).collect(),
        sample_shape: vec![1, dims[1], dims[2]],
        labels: raw_labels.into_iter().map(i64::from).collect(),
        classes: 10,
    })
}

/// Reads a `u8` idx file of `rank` dimensions: its dimensions and its elements.
fn read_idx(path: &Path, rank: u8) -> Result<(Vec<usize>, Vec<u8>), DataError> {
    let io = |e| DataError::io(path, e);
    let bad = |m: String| DataError::format(path.display(), m);
    let mut file = File::open(path).map_err(io)?;
    let file_len = file.metadata().map_err(io)?.len();
    let mut sniff = [0u8; 2];
    let gz = file.read(&mut sniff).map_err(io)? == 2 && sniff == [0x1f, 0x8b];
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    let mut r: Box<dyn Read> = if gz {
        Box::new(flate2::read::GzDecoder::new(BufReader::new(file)))
    } else {
        Box::new(BufReader::new(file))
    };
    let truncated = |what: &str, e: std::io::Error| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            bad(format!("truncated: the file ends inside the {what}"))
        } else {
            bad(e.to_string())
        }
    };
    let mut magic = [0u8; 4];
    r.read_exact(&mut magic)
        .map_err(|e| truncated("4-byte magic", e))?;
    let want = [0, 0, UBYTE, rank];
    if magic != want {
        return Err(bad(format!(
            "wrong magic {:#010x}, expected {:#010x} (u8 elements, {rank} dimensions)",
            u32::from_be_bytes(magic),
            u32::from_be_bytes(want)
        )));
    }
    let mut dims = Vec::with_capacity(rank as usize);
    for _ in 0..rank {
        let mut d = [0u8; 4];
        r.read_exact(&mut d)
            .map_err(|e| truncated("dimensions", e))?;
        dims.push(u32::from_be_bytes(d) as usize);
    }
    let header = 4 + 4 * u64::from(rank);
    let count = checked_product(&dims)
        .ok_or_else(|| bad(format!("dimensions {dims:?} overflow the address space")))?;
    if !gz && file_len - header != count as u64 {
        return Err(bad(format!(
            "dimensions {dims:?} need {count} bytes after the {header}-byte header, the file has {}",
            file_len - header
        )));
    }
    let mut data = Vec::new();
    r.take(count as u64 + 1)
        .read_to_end(&mut data)
        .map_err(|e| bad(e.to_string()))?;
    if data.len() != count {
        let got = if data.len() > count {
            "more".to_string()
        } else {
            data.len().to_string()
        };
        return Err(bad(format!(
            "dimensions {dims:?} need {count} bytes after the {header}-byte header, \
             the decompressed file has {got}"
        )));
    }
    Ok((dims, data))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::testutil::{WriteFile, gzip};

    /// An idx file of `u8` elements.
    pub(crate) fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut out = vec![0, 0, UBYTE, dims.len() as u8];
        for d in dims {
            out.extend_from_slice(&d.to_be_bytes());
        }
        out.extend_from_slice(data);
        out
    }

    pub(crate) fn pixels(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 37 % 256) as u8).collect()
    }

    #[test]
    fn round_trips_plain_and_gzipped() {
        let dir = tempfile::tempdir().unwrap();
        let px = pixels(5 * 28 * 28);
        let labels = [3u8, 0, 9, 1, 3];
        dir.write("train-images-idx3-ubyte", &idx(&[5, 28, 28], &px));
        dir.write("train-labels-idx1-ubyte", &idx(&[5], &labels));
        let raw = dir.path().join("raw");
        std::fs::create_dir(&raw).unwrap();
        std::fs::write(
            raw.join("t10k-images-idx3-ubyte.gz"),
            gzip(&idx(&[2, 28, 28], &px[..1568])),
        )
        .unwrap();
        std::fs::write(
            raw.join("t10k-labels-idx1-ubyte.gz"),
            gzip(&idx(&[2], &[7, 8])),
        )
        .unwrap();

        let d = mnist(dir.path(), true).unwrap();
        assert_eq!(d.sample_shape, vec![1, 28, 28]);
        assert_eq!(
            d.labels,
            labels.iter().map(|&l| i64::from(l)).collect::<Vec<_>>()
        );
        let want: Vec<f32> = px.iter().map(|&p| f32::from(p) / 255.0).collect();
        assert_eq!(d.x, want);
        let t = mnist(dir.path(), false).unwrap();
        assert_eq!((t.len(), t.labels.clone()), (2, vec![7, 8]));
        assert_eq!(t.x, want[..1568].to_vec());
    }

    #[test]
    fn errors_name_the_file_and_sizes() {
        let dir = tempfile::tempdir().unwrap();
        let px = pixels(3 * 4 * 4);
        let img = dir.write("i", &idx(&[3, 4, 4], &px));
        let lab = dir.write("l", &idx(&[3], &[1, 2, 3]));
        assert_eq!(mnist_files(&img, &lab).unwrap().sample_shape, vec![1, 4, 4]);

        let short = dir.write("short", &idx(&[3, 4, 4], &px[..40]));
        let e = mnist_files(&short, &lab).unwrap_err().to_string();
        assert!(
            e.contains("short") && e.contains("need 48 bytes") && e.contains("has 40"),
            "{e}"
        );
        let lying = dir.write("lying", &idx(&[4_000_000, 4000, 4000], &px));
        let e = mnist_files(&lying, &lab).unwrap_err().to_string();
        assert!(e.contains("need 64000000000000 bytes"), "{e}");
        let gz_short = dir.write("gz", &gzip(&idx(&[9, 4, 4], &px)));
        let e = mnist_files(&gz_short, &lab).unwrap_err().to_string();
        assert!(e.contains("decompressed file has 48"), "{e}");
        let e = mnist_files(&lab, &lab).unwrap_err().to_string();
        assert!(
            e.contains("wrong magic 0x00000801") && e.contains("0x00000803"),
            "{e}"
        );
        let tiny = dir.write("tiny", &[0, 0]);
        let e = mnist_files(&tiny, &lab).unwrap_err().to_string();
        assert!(e.contains("truncated"), "{e}");
        let two = dir.write("two", &idx(&[2], &[1, 2]));
        let e = mnist_files(&img, &two).unwrap_err().to_string();
        assert!(e.contains("3 images but 2 labels"), "{e}");
        let ten = dir.write("ten", &idx(&[3], &[1, 10, 3]));
        let e = mnist_files(&img, &ten).unwrap_err().to_string();
        assert!(e.contains("label 10 of sample 1"), "{e}");
        let e = mnist(dir.path(), true).unwrap_err().to_string();
        assert!(e.contains("train-images-idx3-ubyte"), "{e}");
        assert!(matches!(
            mnist_files(&dir.path().join("none"), &lab),
            Err(DataError::Io { .. })
        ));
    }
}
