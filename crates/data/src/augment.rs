//! Per-sample transforms for data augmentation, and [`Augment`], the configuration that
//! chains them.
//!
//! Every transform is a pure function of one sample (`[C, H, W]`, or `[H, W]` as one
//! channel); the random ones take their choices from a key of the counter-based generator in
//! [`sinter_ir::rng`], so a sample's augmentation is a function of its key alone. The
//! [`Pipeline`](crate::Pipeline) derives each key from `(seed, epoch, sample index)`, which is
//! what makes its batches independent of threads and timing.
//!
//! Pixels moved in from outside the image are zero (the background of MNIST and of inputs
//! normalised to zero mean).

use sinter_ir::rng;

/// The channel, height and width of an image sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chw {
    /// Channels.
    pub c: usize,
    /// Height.
    pub h: usize,
    /// Width.
    pub w: usize,
}

impl Chw {
    /// The image dimensions of a sample shape `[C, H, W]` or `[H, W]` (one channel).
    pub fn of(shape: &[usize]) -> Option<Chw> {
        match *shape {
            [h, w] => Some(Chw { c: 1, h, w }),
            [c, h, w] => Some(Chw { c, h, w }),
            _ => None,
        }
    }

    /// Values per sample.
    pub fn len(&self) -> usize {
        self.c * self.h * self.w
    }

    /// Whether the image has no pixels.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Pads with `padding` zeros on every side, then takes the `out_h` x `out_w` window whose
/// top-left corner is `(top, left)` in the padded image.
///
/// `top + out_h` and `left + out_w` may exceed the padded size; the excess is zero too.
pub fn crop(
    sample: &[f32],
    dims: Chw,
    padding: usize,
    (top, left): (usize, usize),
    (out_h, out_w): (usize, usize),
) -> Vec<f32> {
    let mut out = vec![0.0; dims.c * out_h * out_w];
    for c in 0..dims.c {
        for y in 0..out_h {
            // Row `y` of the window is row `top + y - padding` of the image.
            let Some(sy) = (top + y).checked_sub(padding).filter(|&sy| sy < dims.h) else {
                continue;
            };
            for x in 0..out_w {
                if let Some(sx) = (left + x).checked_sub(padding).filter(|&sx| sx < dims.w) {
                    out[(c * out_h + y) * out_w + x] = sample[(c * dims.h + sy) * dims.w + sx];
                }
            }
        }
    }
    out
}

/// Translates by `dy` rows down and `dx` columns right; pixels leaving the image are lost,
/// those entering are zero.
pub fn shift(sample: &[f32], dims: Chw, dy: isize, dx: isize) -> Vec<f32> {
    // A shift by (dy, dx) is the window at (p - dy, p - dx) of the image padded by p.
    let p = dy.unsigned_abs().max(dx.unsigned_abs());
    let at = |d: isize| (p as isize - d) as usize;
    crop(sample, dims, p, (at(dy), at(dx)), (dims.h, dims.w))
}

/// Mirrors left to right.
pub fn flip_horizontal(sample: &[f32], dims: Chw) -> Vec<f32> {
    let mut out = sample.to_vec();
    for row in out.chunks_exact_mut(dims.w.max(1)) {
        row.reverse();
    }
    out
}

/// Adds `std` times the standard normal values of the stream `key` (element `i` gets
/// `normal(key, i)`).
pub fn add_noise(sample: &[f32], std: f32, key: u64) -> Vec<f32> {
    sample
        .iter()
        .enumerate()
        .map(|(i, &v)| v + std * rng::normal(key, i as u64))
        .collect()
}

/// Bilinear resize of every channel to `out_h` x `out_w`, with half-pixel centres (output
/// pixel `d` samples input coordinate `(d + 0.5) * in / out - 0.5`, clamped to the image):
/// the convention of PyTorch's `align_corners=False` and ONNX's `half_pixel`. Shrinking
/// does not low-pass first, so use it to enlarge (the demo's 8x8 digits to LeNet-5's 32x32).
pub fn resize_bilinear(sample: &[f32], dims: Chw, (out_h, out_w): (usize, usize)) -> Vec<f32> {
    // For each output coordinate: the two input coordinates and the second one's weight.
    let taps = |n_in: usize, n_out: usize| -> Vec<(usize, usize, f32)> {
        (0..n_out)
            .map(|d| {
                let s = ((d as f32 + 0.5) * n_in as f32 / n_out as f32 - 0.5)
                    .clamp(0.0, (n_in.max(1) - 1) as f32);
                let i0 = s.floor() as usize;
                let i1 = (i0 + 1).min(n_in.max(1) - 1);
                (i0, i1, s - i0 as f32)
            })
            .collect()
    };
    if dims.is_empty() {
        return vec![0.0; dims.c * out_h * out_w];
    }
    let (ty, tx) = (taps(dims.h, out_h), taps(dims.w, out_w));
    let mut out = Vec::with_capacity(dims.c * out_h * out_w);
    for c in 0..dims.c {
        let plane = &sample[c * dims.h * dims.w..(c + 1) * dims.h * dims.w];
        let at = |y: usize, x: usize| plane[y * dims.w + x];
        for &(y0, y1, wy) in &ty {
            for &(x0, x1, wx) in &tx {
                let top = at(y0, x0) + (at(y0, x1) - at(y0, x0)) * wx;
                let bottom = at(y1, x0) + (at(y1, x1) - at(y1, x0)) * wx;
                out.push(top + (bottom - top) * wy);
            }
        }
    }
    out
}

/// Random crop after zero padding: the window's corner is uniform over all placements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Crop {
    /// Zeros added on every side before cropping.
    pub padding: usize,
    /// The window's height and width (at most the padded size).
    pub size: [usize; 2],
}

/// Which transforms a pipeline applies to each sample, in this order: resize, crop, shift,
/// flip, noise. The default applies none.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Augment {
    /// Bilinear resize to `[height, width]` (deterministic).
    pub resize: Option<[usize; 2]>,
    /// Random crop after padding.
    pub crop: Option<Crop>,
    /// Random translation by up to this many pixels on each axis, uniform in `-k..=k`.
    pub shift: usize,
    /// Mirror left to right with probability 1/2.
    pub flip: bool,
    /// Standard deviation of additive Gaussian noise (0: none).
    pub noise: f32,
}

/// Indices of the choices drawn from a sample's key.
const DRAW_SHIFT_Y: u64 = 0;
const DRAW_SHIFT_X: u64 = 1;
const DRAW_CROP_Y: u64 = 2;
const DRAW_CROP_X: u64 = 3;
const DRAW_FLIP: u64 = 4;
const DRAW_NOISE_KEY: u64 = 5;

/// A uniform integer in `0..=max` from draw `i` of `key`.
fn uniform_int(key: u64, i: u64, max: usize) -> usize {
    ((rng::uniform(key, i) * (max + 1) as f32) as usize).min(max)
}

impl Augment {
    /// Whether no transform is configured.
    pub fn is_identity(&self) -> bool {
        *self == Augment::default()
    }

    /// The shape of a transformed sample of shape `shape`, or why these transforms do not
    /// apply to it.
    pub fn output_shape(&self, shape: &[usize]) -> Result<Vec<usize>, String> {
        if self.is_identity() {
            return Ok(shape.to_vec());
        }
        if self.noise.is_nan() || self.noise < 0.0 {
            return Err(format!(
                "noise standard deviation {} is not >= 0",
                self.noise
            ));
        }
        let spatial = self.resize.is_some() || self.crop.is_some() || self.shift > 0 || self.flip;
        let Some(mut dims) = Chw::of(shape) else {
            if spatial {
                return Err(format!(
                    "resize, crop, shift and flip need samples of shape [C, H, W] or [H, W], \
                     not {shape:?}"
                ));
            }
            return Ok(shape.to_vec());
        };
        if let Some([h, w]) = self.resize {
            dims = Chw { h, w, ..dims };
        }
        if let Some(Crop {
            padding,
            size: [h, w],
        }) = self.crop
        {
            if h > dims.h + 2 * padding || w > dims.w + 2 * padding {
                return Err(format!(
                    "crop window {h}x{w} exceeds the {}x{} image padded by {padding}",
                    dims.h, dims.w
                ));
            }
            dims = Chw { h, w, ..dims };
        }
        Ok(match shape.len() {
            2 => vec![dims.h, dims.w],
            _ => vec![dims.c, dims.h, dims.w],
        })
    }

    /// Transforms one sample of shape `shape` (which [`Augment::output_shape`] accepts),
    /// drawing every random choice from `key`.
    pub fn apply(&self, sample: &[f32], shape: &[usize], key: u64) -> Vec<f32> {
        let Some(mut dims) = Chw::of(shape) else {
            return self.noisy(sample.to_vec(), key);
        };
        let mut x = sample.to_vec();
        if let Some([h, w]) = self.resize {
            x = resize_bilinear(&x, dims, (h, w));
            dims = Chw { h, w, ..dims };
        }
        if let Some(Crop {
            padding,
            size: [h, w],
        }) = self.crop
        {
            let top = uniform_int(key, DRAW_CROP_Y, dims.h + 2 * padding - h);
            let left = uniform_int(key, DRAW_CROP_X, dims.w + 2 * padding - w);
            x = crop(&x, dims, padding, (top, left), (h, w));
            dims = Chw { h, w, ..dims };
        }
        if self.shift > 0 {
            let k = self.shift;
            let draw = |i| uniform_int(key, i, 2 * k) as isize - k as isize;
            x = shift(&x, dims, draw(DRAW_SHIFT_Y), draw(DRAW_SHIFT_X));
        }
        if self.flip && rng::uniform(key, DRAW_FLIP) < 0.5 {
            x = flip_horizontal(&x, dims);
        }
        self.noisy(x, key)
    }

    fn noisy(&self, x: Vec<f32>, key: u64) -> Vec<f32> {
        if self.noise > 0.0 {
            add_noise(&x, self.noise, rng::bits(key, DRAW_NOISE_KEY))
        } else {
            x
        }
    }
}

/// Parses `HxW`.
fn parse_hw(s: &str) -> Result<[usize; 2], String> {
    let (h, w) = s
        .split_once('x')
        .ok_or_else(|| format!("`{s}` is not HEIGHTxWIDTH"))?;
    let num = |v: &str| {
        v.trim()
            .parse::<usize>()
            .map_err(|_| format!("`{v}` in `{s}` is not a size"))
    };
    Ok([num(h)?, num(w)?])
}

impl std::str::FromStr for Augment {
    type Err = String;

    /// Parses a comma-separated list, as a command line gives it: `resize=HxW`,
    /// `crop=PADDING:HxW`, `shift=K`, `flip`, `noise=STD`; `none` or nothing for no
    /// augmentation. Example: `resize=32x32,shift=2,noise=0.05`.
    fn from_str(s: &str) -> Result<Augment, String> {
        let mut a = Augment::default();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (name, value) = match item.split_once('=') {
                Some((n, v)) => (n.trim(), Some(v.trim())),
                None => (item, None),
            };
            let need = || value.ok_or_else(|| format!("`{name}` needs a value (`{name}=...`)"));
            match name {
                "none" if value.is_none() => {}
                "flip" if value.is_none() => a.flip = true,
                "resize" => a.resize = Some(parse_hw(need()?)?),
                "crop" => {
                    let v = need()?;
                    let (p, hw) = v
                        .split_once(':')
                        .ok_or_else(|| format!("crop `{v}` is not PADDING:HxW"))?;
                    let padding = p
                        .trim()
                        .parse()
                        .map_err(|_| format!("crop padding `{p}` is not a number"))?;
                    a.crop = Some(Crop {
                        padding,
                        size: parse_hw(hw)?,
                    });
                }
                "shift" => {
                    let v = need()?;
                    a.shift = v
                        .parse()
                        .map_err(|_| format!("shift `{v}` is not a number"))?;
                }
                "noise" => {
                    let v = need()?;
                    a.noise = v
                        .parse::<f32>()
                        .ok()
                        .filter(|n| *n >= 0.0)
                        .ok_or_else(|| format!("noise `{v}` is not a number >= 0"))?;
                }
                _ => {
                    return Err(format!(
                        "unknown augmentation `{item}` (expected resize=HxW, crop=PADDING:HxW, \
                         shift=K, flip, noise=STD or none)"
                    ));
                }
            }
        }
        Ok(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An image whose pixel values encode their position (all distinct, none zero).
    fn ramp(dims: Chw) -> Vec<f32> {
        (0..dims.len()).map(|i| i as f32 + 1.0).collect()
    }

    const D: Chw = Chw { c: 2, h: 4, w: 5 };

    #[test]
    fn shift_moves_pixels_and_fills_zeros() {
        let img = ramp(D);
        for (dy, dx) in [(0, 0), (1, -2), (-3, 4), (2, 0), (0, -1), (5, 0)] {
            let out = shift(&img, D, dy, dx);
            for c in 0..D.c {
                for y in 0..D.h as isize {
                    for x in 0..D.w as isize {
                        let (sy, sx) = (y - dy, x - dx);
                        let inside =
                            (0..D.h as isize).contains(&sy) && (0..D.w as isize).contains(&sx);
                        let want = if inside {
                            img[(c * D.h + sy as usize) * D.w + sx as usize]
                        } else {
                            0.0
                        };
                        let got = out[(c * D.h + y as usize) * D.w + x as usize];
                        assert_eq!(got, want, "shift ({dy}, {dx}) at c{c} y{y} x{x}");
                    }
                }
            }
        }
    }

    #[test]
    fn crop_with_padding_is_a_window_of_the_padded_image() {
        let img = ramp(D);
        // The full-size window at the corner of an image padded by 1 is a shift by (1, 1).
        assert_eq!(crop(&img, D, 1, (0, 0), (D.h, D.w)), shift(&img, D, 1, 1));
        assert_eq!(crop(&img, D, 2, (2, 2), (D.h, D.w)), img);
        // A smaller window without padding is a plain sub-image.
        let out = crop(&img, D, 0, (1, 2), (2, 3));
        assert_eq!(out.len(), D.c * 6);
        assert_eq!(out[0], img[D.w + 2]);
        assert_eq!(out[5], img[2 * D.w + 4]);
        assert_eq!(out[6], img[D.h * D.w + D.w + 2]);
    }

    #[test]
    fn flip_reverses_rows_and_is_an_involution() {
        let img = ramp(D);
        let f = flip_horizontal(&img, D);
        assert_eq!(&f[..D.w], &[5.0, 4.0, 3.0, 2.0, 1.0]);
        assert_ne!(f, img);
        assert_eq!(flip_horizontal(&f, D), img);
    }

    #[test]
    fn resize_interpolates_with_half_pixel_centres() {
        let one = Chw { c: 1, h: 1, w: 2 };
        let (a, b) = (2.0f32, 10.0f32);
        // Input x = 1 spans output x = 2, 3 when doubling: sources -0.25, 0.25, 0.75, 1.25.
        let out = resize_bilinear(&[a, b], one, (1, 4));
        let want = [a, 0.75 * a + 0.25 * b, 0.25 * a + 0.75 * b, b];
        assert_eq!(out, want);
        let img = ramp(D);
        assert_eq!(resize_bilinear(&img, D, (D.h, D.w)), img);
        let flat = vec![0.5; D.len()];
        assert!(
            resize_bilinear(&flat, D, (9, 7))
                .iter()
                .all(|&v| (v - 0.5).abs() < 1e-6)
        );
        // The digits demo: 8x8 to 32x32 keeps every value inside the input's range.
        let d8 = Chw { c: 1, h: 8, w: 8 };
        let digit: Vec<f32> = (0..64).map(|i| ((i * 7) % 17) as f32 / 16.0).collect();
        let up = resize_bilinear(&digit, d8, (32, 32));
        assert_eq!(up.len(), 1024);
        assert!(up.iter().all(|v| (0.0..=1.0).contains(v)));
    }

    #[test]
    fn noise_is_reproducible_with_the_requested_spread() {
        let x = vec![1.0; 4096];
        let a = add_noise(&x, 0.5, rng::key(1, 2));
        assert_eq!(a, add_noise(&x, 0.5, rng::key(1, 2)));
        assert_ne!(a, add_noise(&x, 0.5, rng::key(1, 3)));
        let n = a.len() as f32;
        let mean = a.iter().sum::<f32>() / n;
        let sd = (a.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n).sqrt();
        assert!((mean - 1.0).abs() < 0.05, "mean {mean}");
        assert!((sd - 0.5).abs() < 0.05, "sd {sd}");
    }

    #[test]
    fn augment_default_is_identity_and_random_choices_stay_in_range() {
        let img = ramp(D);
        let shape = [D.c, D.h, D.w];
        assert_eq!(Augment::default().apply(&img, &shape, 9), img);
        let aug = Augment {
            shift: 2,
            ..Augment::default()
        };
        let mut seen = std::collections::BTreeSet::new();
        for k in 0..200 {
            let key = rng::key(7, k);
            let out = aug.apply(&img, &shape, key);
            assert_eq!(out, aug.apply(&img, &shape, key));
            let found = (-2..=2)
                .flat_map(|dy| (-2..=2).map(move |dx| (dy, dx)))
                .find(|&(dy, dx)| shift(&img, D, dy, dx) == out);
            seen.insert(found.expect("a shift by at most 2"));
        }
        assert_eq!(
            seen.len(),
            25,
            "every shift in -2..=2 squared occurs: {seen:?}"
        );

        let flip = Augment {
            flip: true,
            ..Augment::default()
        };
        let flipped = (0..200)
            .filter(|&k| flip.apply(&img, &shape, rng::key(3, k)) != img)
            .count();
        assert!((60..=140).contains(&flipped), "{flipped} of 200 flipped");
    }

    #[test]
    fn augment_chains_and_checks_shapes() {
        let aug = Augment {
            resize: Some([8, 10]),
            crop: Some(Crop {
                padding: 2,
                size: [6, 6],
            }),
            shift: 1,
            flip: true,
            noise: 0.1,
        };
        assert_eq!(aug.output_shape(&[2, 4, 5]).unwrap(), vec![2, 6, 6]);
        assert_eq!(aug.output_shape(&[4, 5]).unwrap(), vec![6, 6]);
        let img = ramp(D);
        let out = aug.apply(&img, &[2, 4, 5], rng::key(0, 0));
        assert_eq!(out.len(), 2 * 36);
        assert_ne!(out, aug.apply(&img, &[2, 4, 5], rng::key(0, 1)));
        let e = aug.output_shape(&[64]).unwrap_err();
        assert!(e.contains("[64]"), "{e}");
        let noise_only = Augment {
            noise: 0.1,
            ..Augment::default()
        };
        assert_eq!(noise_only.output_shape(&[64]).unwrap(), vec![64]);
        let big = Augment {
            crop: Some(Crop {
                padding: 1,
                size: [7, 3],
            }),
            ..Augment::default()
        };
        let e = big.output_shape(&[1, 4, 5]).unwrap_err();
        assert!(e.contains("7x3") && e.contains("4x5"), "{e}");
    }

    #[test]
    fn parses_the_command_line_form() {
        let a: Augment = "resize=32x32, crop=4:28x30,shift=2,flip,noise=0.05"
            .parse()
            .unwrap();
        assert_eq!(
            a,
            Augment {
                resize: Some([32, 32]),
                crop: Some(Crop {
                    padding: 4,
                    size: [28, 30],
                }),
                shift: 2,
                flip: true,
                noise: 0.05,
            }
        );
        assert!("none".parse::<Augment>().unwrap().is_identity());
        assert!("".parse::<Augment>().unwrap().is_identity());
        for (bad, says) in [
            ("spin=3", "unknown augmentation `spin=3`"),
            ("resize=32", "not HEIGHTxWIDTH"),
            ("crop=28x28", "not PADDING:HxW"),
            ("shift", "needs a value"),
            ("noise=-1", "not a number >= 0"),
            ("flip=yes", "unknown augmentation"),
        ] {
            let e = bad.parse::<Augment>().unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
