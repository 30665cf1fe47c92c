//! Choosing a loader from a path, for `sinter train --data PATH`.
//!
//! A file is recognised by its name: `.npz`; `.npy` (samples, with labels in the sibling
//! whose name swaps a leading `x` for `y` or `images` for `labels`); an MNIST
//! `*-images-idx3-ubyte[.gz]` (labels in the matching `*-labels-idx1-ubyte`); a CIFAR-10
//! `.bin` batch. A directory is recognised by what it holds: MNIST's files, CIFAR-10's
//! batches, or `x.npy` with `y.npy`. The guess is only by name: the loader then checks the
//! contents and says what is wrong.

use crate::cifar::{cifar10_files, find_cifar10};
use crate::mnist::{find_mnist, mnist_files};
use crate::npy::{npy_pair, npz, npz_keys, npz_names};
use crate::{DataError, Dataset};
use std::path::{Path, PathBuf};

/// The training data at `path` (a file or a directory), in the format its name or contents
/// say; see the module docs for the rules.
pub fn load(path: &Path) -> Result<Dataset, DataError> {
    match load_part(path, true)? {
        Some(d) => Ok(d),
        None => Err(DataError::format(
            path.display(),
            "cannot tell the format: expected an .npz, an .npy with its labels beside it, an \
             MNIST *-images-idx3-ubyte[.gz] file, a CIFAR-10 .bin batch, or a directory holding \
             MNIST files, CIFAR-10 batches or x.npy and y.npy",
        )),
    }
}

/// The held-out test data that comes with the data at `path`, where the format has one:
/// MNIST's `t10k` files, CIFAR-10's `test_batch.bin`, `x_test`/`y_test` in an `.npz` or a
/// directory. `None` where there is none.
pub fn load_test(path: &Path) -> Result<Option<Dataset>, DataError> {
    load_part(path, false)
}

fn load_part(path: &Path, train: bool) -> Result<Option<Dataset>, DataError> {
    let meta = std::fs::metadata(path).map_err(|e| DataError::io(path, e))?;
    if meta.is_dir() {
        if let Some((images, labels)) = find_mnist(path, train) {
            return mnist_files(&images, &labels).map(Some);
        }
        if let Some(files) = find_cifar10(path, train) {
            return cifar10_files(&files).map(Some);
        }
        let pairs: &[(&str, &str)] = if train {
            &[("x.npy", "y.npy"), ("x_train.npy", "y_train.npy")]
        } else {
            &[("x_test.npy", "y_test.npy")]
        };
        for (x, y) in pairs {
            let (x, y) = (path.join(x), path.join(y));
            if x.is_file() && y.is_file() {
                return npy_pair(&x, &y).map(Some);
            }
        }
        return Ok(None);
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if name.ends_with(".npz") {
        if train {
            return npz(path).map(Some);
        }
        let names = npz_names(path)?;
        let has = |k: &str| names.iter().any(|n| n == k);
        return if has("x_test") && has("y_test") {
            npz_keys(path, "x_test", "y_test").map(Some)
        } else {
            Ok(None)
        };
    }
    if !train {
        return Ok(None);
    }
    if name.ends_with(".npy") {
        let labels = npy_labels(path, &name)?;
        return npy_pair(path, &labels).map(Some);
    }
    if name.contains("images-idx3-ubyte") || name.contains("images.idx3-ubyte") {
        let labels = name.replacen("images-idx3", "labels-idx1", 1).replacen(
            "images.idx3",
            "labels.idx1",
            1,
        );
        return mnist_files(path, &path.with_file_name(labels)).map(Some);
    }
    if name.ends_with(".bin") {
        return cifar10_files(&[path]).map(Some);
    }
    Ok(None)
}

/// The labels file beside the samples file `path` (named `name`).
fn npy_labels(path: &Path, name: &str) -> Result<PathBuf, DataError> {
    let mut tried = Vec::new();
    if let Some(rest) = name.strip_prefix('x').or_else(|| name.strip_prefix('X')) {
        tried.push(format!("y{rest}"));
    }
    if name.contains("images") {
        tried.push(name.replacen("images", "labels", 1));
    }
    tried
        .iter()
        .map(|n| path.with_file_name(n))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            DataError::format(
                path.display(),
                format!("no labels file beside it: looked for {tried:?}"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{WriteFile, gzip};

    fn npy_f32(shape: &[u64], data: &[f32]) -> Vec<u8> {
        use npyz::WriterBuilder;
        let mut out = Vec::new();
        let mut w = npyz::WriteOptions::new()
            .default_dtype()
            .shape(shape)
            .writer(&mut out)
            .begin_nd()
            .unwrap();
        w.extend(data.iter().copied()).unwrap();
        w.finish().unwrap();
        out
    }

    fn npy_i64(data: &[i64]) -> Vec<u8> {
        use npyz::WriterBuilder;
        let mut out = Vec::new();
        let mut w = npyz::WriteOptions::new()
            .default_dtype()
            .shape(&[data.len() as u64])
            .writer(&mut out)
            .begin_nd()
            .unwrap();
        w.extend(data.iter().copied()).unwrap();
        w.finish().unwrap();
        out
    }

    #[test]
    fn picks_the_format_from_files() {
        let dir = tempfile::tempdir().unwrap();
        let x = dir.write(
            "x_train.npy",
            &npy_f32(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
        );
        dir.write("y_train.npy", &npy_i64(&[1, 0]));
        let d = load(&x).unwrap();
        assert_eq!((d.len(), d.sample_shape.clone()), (2, vec![3]));
        assert_eq!(load_test(&x).unwrap(), None);

        let px = crate::mnist::tests::pixels(2 * 5 * 5);
        let img = dir.write(
            "train-images-idx3-ubyte.gz",
            &gzip(&crate::mnist::tests::idx(&[2, 5, 5], &px)),
        );
        dir.write(
            "train-labels-idx1-ubyte.gz",
            &gzip(&crate::mnist::tests::idx(&[2], &[4, 2])),
        );
        let d = load(&img).unwrap();
        assert_eq!(
            (d.sample_shape.clone(), d.labels.clone()),
            (vec![1, 5, 5], vec![4, 2])
        );

        let bin = dir.write("data_batch_1.bin", &crate::cifar::tests::batch(&[6], 0));
        assert_eq!(load(&bin).unwrap().labels, vec![6]);

        let other = dir.write("notes.txt", b"hello");
        let e = load(&other).unwrap_err().to_string();
        assert!(
            e.contains("notes.txt") && e.contains("cannot tell the format"),
            "{e}"
        );
        let lone = dir.write("features.npy", &npy_f32(&[1, 1], &[0.0]));
        let e = load(&lone).unwrap_err().to_string();
        assert!(e.contains("no labels file"), "{e}");
        assert!(matches!(
            load(&dir.path().join("gone")),
            Err(DataError::Io { .. })
        ));
    }

    #[test]
    fn npz_with_a_test_split_as_keras_saves_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("mnist.npz");
        let mut w = zip::ZipWriter::new(std::fs::File::create(&p).unwrap());
        let px = crate::mnist::tests::pixels(3 * 2 * 2);
        let u8_npy = |shape: &[u64], data: &[u8]| {
            use npyz::WriterBuilder;
            let mut out = Vec::new();
            let mut a = npyz::WriteOptions::new()
                .default_dtype()
                .shape(shape)
                .writer(&mut out)
                .begin_nd()
                .unwrap();
            a.extend(data.iter().copied()).unwrap();
            a.finish().unwrap();
            out
        };
        let arrays = [
            ("x_train.npy", u8_npy(&[2, 2, 2], &px[..8])),
            ("y_train.npy", u8_npy(&[2], &[5, 6])),
            ("x_test.npy", u8_npy(&[1, 2, 2], &px[8..])),
            ("y_test.npy", u8_npy(&[1], &[9])),
        ];
        for (name, bytes) in &arrays {
            w.start_file(*name, Default::default()).unwrap();
            std::io::Write::write_all(&mut w, bytes).unwrap();
        }
        w.finish().unwrap();
        let train = load(&p).unwrap();
        assert_eq!(
            (train.labels.clone(), train.sample_shape.clone()),
            (vec![5, 6], vec![2, 2])
        );
        assert_eq!(train.x[1], f32::from(px[1]) / 255.0);
        let test = load_test(&p).unwrap().unwrap();
        assert_eq!((test.labels.clone(), test.classes), (vec![9], 10));
        assert_eq!(test.x[0], f32::from(px[8]) / 255.0);
    }

    #[test]
    fn picks_the_format_from_directories() {
        let mnist_dir = tempfile::tempdir().unwrap();
        let px = crate::mnist::tests::pixels(3 * 2 * 2);
        mnist_dir.write(
            "train-images-idx3-ubyte",
            &crate::mnist::tests::idx(&[3, 2, 2], &px),
        );
        mnist_dir.write(
            "train-labels-idx1-ubyte",
            &crate::mnist::tests::idx(&[3], &[0, 1, 2]),
        );
        assert_eq!(load(mnist_dir.path()).unwrap().len(), 3);
        assert_eq!(load_test(mnist_dir.path()).unwrap(), None);
        mnist_dir.write(
            "t10k-images-idx3-ubyte",
            &crate::mnist::tests::idx(&[1, 2, 2], &px[..4]),
        );
        mnist_dir.write(
            "t10k-labels-idx1-ubyte",
            &crate::mnist::tests::idx(&[1], &[5]),
        );
        assert_eq!(
            load_test(mnist_dir.path()).unwrap().unwrap().labels,
            vec![5]
        );

        let cifar_dir = tempfile::tempdir().unwrap();
        cifar_dir.write("data_batch_1.bin", &crate::cifar::tests::batch(&[1, 2], 0));
        cifar_dir.write("test_batch.bin", &crate::cifar::tests::batch(&[3], 0));
        assert_eq!(load(cifar_dir.path()).unwrap().labels, vec![1, 2]);
        assert_eq!(
            load_test(cifar_dir.path()).unwrap().unwrap().labels,
            vec![3]
        );

        let npy_dir = tempfile::tempdir().unwrap();
        npy_dir.write("x.npy", &npy_f32(&[1, 2], &[0.5, 0.25]));
        npy_dir.write("y.npy", &npy_i64(&[0]));
        assert_eq!(load(npy_dir.path()).unwrap().x, vec![0.5, 0.25]);

        let empty = tempfile::tempdir().unwrap();
        let e = load(empty.path()).unwrap_err().to_string();
        assert!(e.contains("cannot tell the format"), "{e}");
    }
}
