//! Test helpers: writing files into a `tempfile::TempDir`, and gzip.

use std::path::PathBuf;
use tempfile::TempDir;

/// Writes files into a scratch directory.
pub trait WriteFile {
    /// Writes `bytes` to `name` inside the directory and returns the path.
    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf;
}

impl WriteFile for TempDir {
    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }
}

/// Gzips `bytes`.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}
