//! Grayscale image grids as PNG files: how a generator's samples (or any batch of images)
//! are looked at.
//!
//! A grid is `n` images of `height x width` laid out `columns` to a row, each cell framed by
//! a 1-pixel border shared with its neighbours (so the file is `columns * (width + 1) + 1`
//! pixels wide before scaling). The border is mid-gray (128) because the digits are white
//! strokes on black: a black border would vanish into the background and a white one into
//! the strokes. Cells past the last image are left border-gray. Each image pixel can be
//! blown up to a `scale x scale` block (an 8x8 digit is too small to see at 1:1); the border
//! stays one pixel wide.
//!
//! Values are mapped to bytes by [`PixelRange`] and clamped, so a generator that overshoots
//! its range still gives a picture; NaN becomes 0 (black).

use std::io::BufWriter;
use std::path::Path;

/// How image values map to gray levels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PixelRange {
    /// `[0, 1]` (the data sets' scaling): `v -> round(255 v)`.
    #[default]
    Unit,
    /// `[-1, 1]` (a `tanh` generator's output): `v -> round(255 (v + 1) / 2)`.
    Signed,
}

impl PixelRange {
    /// The gray level of `v`, clamped to `0..=255` (NaN is 0).
    pub fn gray(self, v: f32) -> u8 {
        let unit = match self {
            PixelRange::Unit => v,
            PixelRange::Signed => (v + 1.0) / 2.0,
        };
        // `as u8` saturates and maps NaN to 0.
        (unit * 255.0).round() as u8
    }
}

/// The gray level of borders and empty cells.
pub const BORDER: u8 = 128;

/// How to lay out a grid; see the [module docs](self).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GridLayout {
    /// Image height in pixels.
    pub height: usize,
    /// Image width in pixels.
    pub width: usize,
    /// Images per row of the grid.
    pub columns: usize,
    /// Each image pixel becomes a `scale x scale` block.
    pub scale: usize,
    /// How values map to gray levels.
    pub range: PixelRange,
}

impl GridLayout {
    /// `height x width` images, `columns` to a row, at 1:1 with values in [`PixelRange::Unit`].
    pub fn new(height: usize, width: usize, columns: usize) -> GridLayout {
        GridLayout {
            height,
            width,
            columns,
            scale: 1,
            range: PixelRange::Unit,
        }
    }
}

/// Why a grid could not be written.
#[derive(Debug, thiserror::Error)]
pub enum GridError {
    /// The values do not make whole images of the layout's size, or the layout is empty.
    #[error("image grid: {0}")]
    Layout(String),
    /// The file could not be created or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The PNG encoder failed.
    #[error("{path}: PNG encoding: {source}")]
    Encode {
        /// The file.
        path: String,
        /// The encoder's error.
        source: png::EncodingError,
    },
}

/// The grid's gray levels, row-major: `(width, height, pixels)`. `images` holds the images
/// one after another, `layout.height * layout.width` values each.
pub fn grid_pixels(
    images: &[f32],
    layout: &GridLayout,
) -> Result<(usize, usize, Vec<u8>), GridError> {
    let GridLayout {
        height: h,
        width: w,
        columns,
        scale,
        range,
    } = *layout;
    if h == 0 || w == 0 || columns == 0 || scale == 0 {
        return Err(GridError::Layout(format!(
            "height {h}, width {w}, columns {columns} and scale {scale} must all be >= 1"
        )));
    }
    let per = h * w;
    if images.is_empty() || !images.len().is_multiple_of(per) {
        return Err(GridError::Layout(format!(
            "{} values are not a whole number (>= 1) of {h}x{w} images",
            images.len()
        )));
    }
    let n = images.len() / per;
    let rows = n.div_ceil(columns);
    let (cell_w, cell_h) = (w * scale + 1, h * scale + 1);
    let (gw, gh) = (columns * cell_w + 1, rows * cell_h + 1);
    let mut px = vec![BORDER; gw * gh];
    for (k, img) in images.chunks_exact(per).enumerate() {
        let (x0, y0) = ((k % columns) * cell_w + 1, (k / columns) * cell_h + 1);
        for y in 0..h * scale {
            let row = &img[(y / scale) * w..][..w];
            let out = &mut px[(y0 + y) * gw + x0..][..w * scale];
            for (x, o) in out.iter_mut().enumerate() {
                *o = range.gray(row[x / scale]);
            }
        }
    }
    Ok((gw, gh, px))
}

/// Writes `images` (see [`grid_pixels`]) as an 8-bit grayscale PNG at `path`.
pub fn write_grid(path: &Path, images: &[f32], layout: &GridLayout) -> Result<(), GridError> {
    let (gw, gh, px) = grid_pixels(images, layout)?;
    let shown = || path.display().to_string();
    let file = std::fs::File::create(path).map_err(|source| GridError::Io {
        path: shown(),
        source,
    })?;
    let encode = |source: png::EncodingError| match source {
        png::EncodingError::IoError(source) => GridError::Io {
            path: shown(),
            source,
        },
        source => GridError::Encode {
            path: shown(),
            source,
        },
    };
    let too_big = || GridError::Layout(format!("{gw}x{gh} pixels is too large for a PNG"));
    let (w32, h32) = (
        u32::try_from(gw).map_err(|_| too_big())?,
        u32::try_from(gh).map_err(|_| too_big())?,
    );
    let mut enc = png::Encoder::new(BufWriter::new(file), w32, h32);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header().map_err(encode)?;
    writer.write_image_data(&px).map_err(encode)?;
    writer.finish().map_err(encode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_map_ends_and_clamp() {
        assert_eq!(PixelRange::Unit.gray(0.0), 0);
        assert_eq!(PixelRange::Unit.gray(1.0), 255);
        assert_eq!(PixelRange::Unit.gray(2.0), 255);
        assert_eq!(PixelRange::Signed.gray(-1.0), 0);
        assert_eq!(PixelRange::Signed.gray(0.0), 128);
        assert_eq!(PixelRange::Signed.gray(-3.0), 0);
        assert_eq!(PixelRange::Unit.gray(f32::NAN), 0);
    }

    #[test]
    fn layout_errors_say_what_is_wrong() {
        let e = grid_pixels(&[0.0; 5], &GridLayout::new(2, 2, 1)).unwrap_err();
        assert!(e.to_string().contains("5 values"), "{e}");
        let e = grid_pixels(&[0.0; 4], &GridLayout::new(2, 2, 0)).unwrap_err();
        assert!(e.to_string().contains("columns 0"), "{e}");
    }
}
