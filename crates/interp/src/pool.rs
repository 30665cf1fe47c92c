//! Pooling: `max_pool2d`, `avg_pool2d` and `global_avg_pool` over NCHW tensors.
//!
//! Windows are placed like a dilation-1 convolution's ([`tap`]); padded positions are skipped,
//! so they never win a max and only count in an average's divisor when asked to.

use crate::conv::{Window, tap};
use crate::elementwise::max_nan;
use crate::index::{at4, dims4, f32s};
use sinter_ir::{Tensor, TensorType};

/// Which pooling reduction.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Pool {
    /// Maximum of the real elements (NaN if any is NaN).
    Max,
    /// Sum of the real elements divided by their count, or by the window's area inside the
    /// padded input when `count_include_pad` (the `bool`).
    Avg(bool),
}

/// Pools each `kernel` window of NCHW `x` into `out`.
pub(crate) fn pool2d(
    x: &Tensor,
    out: &TensorType,
    kernel: [usize; 2],
    win: &Window,
    pool: Pool,
) -> Result<Vec<f32>, String> {
    let xv = f32s(x)?;
    let xd = dims4(x.shape())?;
    let [n, c, h, w] = xd;
    let [_, _, oh, ow] = dims4(&out.shape)?;
    let mut y = Vec::with_capacity(out.numel());
    for b in 0..n {
        for ch in 0..c {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut max = f32::NEG_INFINITY;
                    let mut sum = 0.0f32;
                    let mut real = 0usize;
                    for ky in 0..kernel[0] {
                        let Some(iy) = tap(oy, ky, 0, win, h) else {
                            continue;
                        };
                        for kx in 0..kernel[1] {
                            let Some(ix) = tap(ox, kx, 1, win, w) else {
                                continue;
                            };
                            let v = xv[at4(xd, [b, ch, iy, ix])];
                            max = max_nan(max, v);
                            sum += v;
                            real += 1;
                        }
                    }
                    y.push(match pool {
                        Pool::Max => max,
                        Pool::Avg(false) => sum / real as f32,
                        Pool::Avg(true) => {
                            let area = padded_count(oy, kernel[0], 0, win, h)
                                * padded_count(ox, kernel[1], 1, win, w);
                            sum / area as f32
                        }
                    });
                }
            }
        }
    }
    Ok(y)
}

/// Gradient of a pooling: routes each window's `dy` back to `x`'s shape. Max pooling sends it
/// to the window's first maximal real element (row-major; NaN counts as maximal, as in
/// the forward op); average pooling spreads `dy / divisor` over the window's real elements.
pub(crate) fn pool2d_grad(
    x: &Tensor,
    dy: &Tensor,
    kernel: [usize; 2],
    win: &Window,
    pool: Pool,
) -> Result<Vec<f32>, String> {
    let (xv, dyv) = (f32s(x)?, f32s(dy)?);
    let xd = dims4(x.shape())?;
    let od = dims4(dy.shape())?;
    let [n, c, h, w] = xd;
    let [_, _, oh, ow] = od;
    let mut dx = vec![0.0f32; xv.len()];
    for b in 0..n {
        for ch in 0..c {
            for oy in 0..oh {
                for ox in 0..ow {
                    let g = dyv[at4(od, [b, ch, oy, ox])];
                    let mut real = Vec::new();
                    for ky in 0..kernel[0] {
                        let Some(iy) = tap(oy, ky, 0, win, h) else {
                            continue;
                        };
                        for kx in 0..kernel[1] {
                            if let Some(ix) = tap(ox, kx, 1, win, w) {
                                real.push(at4(xd, [b, ch, iy, ix]));
                            }
                        }
                    }
                    match pool {
                        Pool::Max => {
                            // The first element that the forward max would return.
                            let mut best = real[0];
                            for &i in &real[1..] {
                                let (v, m) = (xv[i], xv[best]);
                                if !m.is_nan() && (v.is_nan() || v > m) {
                                    best = i;
                                }
                            }
                            dx[best] += g;
                        }
                        Pool::Avg(include_pad) => {
                            let div = if include_pad {
                                padded_count(oy, kernel[0], 0, win, h)
                                    * padded_count(ox, kernel[1], 1, win, w)
                            } else {
                                real.len()
                            };
                            for &i in &real {
                                dx[i] += g / div as f32;
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(dx)
}

/// How many of the `k` window positions along `axis` lie inside the padded input
/// `-pad_before..extent + pad_after` (all of them for the windows shape inference allows).
fn padded_count(o: usize, k: usize, axis: usize, win: &Window, extent: usize) -> usize {
    let (before, after) = (win.pad[axis], win.pad[axis + 2]);
    (0..k)
        .filter(|&kk| o * win.stride[axis] + kk < extent + before + after)
        .count()
}

/// Mean over the spatial axes: `[N, C, H, W] -> [N, C, 1, 1]`.
pub(crate) fn global_avg_pool(x: &Tensor) -> Result<Vec<f32>, String> {
    let xv = f32s(x)?;
    let [n, c, h, w] = dims4(x.shape())?;
    let area = h * w;
    let mut y = Vec::with_capacity(n * c);
    for p in 0..n * c {
        let plane = &xv[p * area..(p + 1) * area];
        let mut sum = 0.0f32;
        for &v in plane {
            sum += v;
        }
        y.push(sum / area as f32);
    }
    Ok(y)
}
