//! Convolutions: `conv2d` in its direct (gather) form and `conv_transpose2d` in its scatter form.
//!
//! Both are written straight from the definitions in the op table, one output (or input) pixel
//! at a time, so that they are easy to check by eye; the tests also check that the two are
//! adjoint to each other.

use crate::index::{at4, dims4, f32s};
use sinter_ir::{Tensor, TensorType};

/// Window geometry shared by the convolution ops, as non-negative extents.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Window {
    /// `[height, width]` strides.
    pub stride: [usize; 2],
    /// `[top, left, bottom, right]` padding.
    pub pad: [usize; 4],
    /// `[height, width]` dilations.
    pub dilation: [usize; 2],
}

impl Window {
    /// From the attributes (checked non-negative by shape inference).
    pub(crate) fn new(stride: [i64; 2], pad: [i64; 4], dilation: [i64; 2]) -> Window {
        Window {
            stride: stride.map(|v| v as usize),
            pad: pad.map(|v| v as usize),
            dilation: dilation.map(|v| v as usize),
        }
    }
}

/// Position `o * stride - pad_before + k * dilation` along one axis, or `None` when it falls
/// outside `0..extent` (in the padding).
pub(crate) fn tap(o: usize, k: usize, axis: usize, win: &Window, extent: usize) -> Option<usize> {
    (o * win.stride[axis] + k * win.dilation[axis])
        .checked_sub(win.pad[axis])
        .filter(|&p| p < extent)
}

/// Cross-correlation of NCHW `x` with `w: [C_out, C_in/groups, kH, kW]`, plus optional bias.
pub(crate) fn conv2d(
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    out: &TensorType,
    win: &Window,
    groups: usize,
) -> Result<Vec<f32>, String> {
    let (xv, wv) = (f32s(x)?, f32s(w)?);
    let bias = bias.map(f32s).transpose()?;
    let xd = dims4(x.shape())?;
    let wd = dims4(w.shape())?;
    let [n, _, h, wid] = xd;
    let [c_out, c_in_group, kh, kw] = wd;
    let [_, _, oh, ow] = dims4(&out.shape)?;
    let c_out_group = c_out / groups;
    let mut y = Vec::with_capacity(out.numel());
    for b in 0..n {
        for co in 0..c_out {
            let group = co / c_out_group;
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = 0.0f32;
                    for cl in 0..c_in_group {
                        let ci = group * c_in_group + cl;
                        for ky in 0..kh {
                            let Some(iy) = tap(oy, ky, 0, win, h) else {
                                continue;
                            };
                            for kx in 0..kw {
                                let Some(ix) = tap(ox, kx, 1, win, wid) else {
                                    continue;
                                };
                                acc += xv[at4(xd, [b, ci, iy, ix])] * wv[at4(wd, [co, cl, ky, kx])];
                            }
                        }
                    }
                    if let Some(bias) = bias {
                        acc += bias[co];
                    }
                    y.push(acc);
                }
            }
        }
    }
    Ok(y)
}

/// Weight gradient of `conv2d`: `dw[co, c, ky, kx]` sums `dy[n, co, oy, ox]` times the input
/// element that weight tap multiplied in the forward pass (none in the padding).
pub(crate) fn conv2d_weight_grad(
    x: &Tensor,
    dy: &Tensor,
    out: &TensorType,
    win: &Window,
    groups: usize,
) -> Result<Vec<f32>, String> {
    let (xv, dyv) = (f32s(x)?, f32s(dy)?);
    let xd = dims4(x.shape())?;
    let od = dims4(dy.shape())?;
    let wd = dims4(&out.shape)?;
    let [n, _, h, wid] = xd;
    let [_, _, oh, ow] = od;
    let [c_out, c_in_group, kh, kw] = wd;
    let c_out_group = c_out / groups;
    let mut dw = Vec::with_capacity(out.numel());
    for co in 0..c_out {
        let group = co / c_out_group;
        for cl in 0..c_in_group {
            let ci = group * c_in_group + cl;
            for ky in 0..kh {
                for kx in 0..kw {
                    let mut acc = 0.0f32;
                    for b in 0..n {
                        for oy in 0..oh {
                            let Some(iy) = tap(oy, ky, 0, win, h) else {
                                continue;
                            };
                            for ox in 0..ow {
                                let Some(ix) = tap(ox, kx, 1, win, wid) else {
                                    continue;
                                };
                                acc += dyv[at4(od, [b, co, oy, ox])] * xv[at4(xd, [b, ci, iy, ix])];
                            }
                        }
                    }
                    dw.push(acc);
                }
            }
        }
    }
    Ok(dw)
}

/// Transposed convolution of NCHW `x` with `w: [C_in, C_out/groups, kH, kW]`, plus optional
/// bias, as a scatter: input pixel `(iy, ix)` of channel `ci` adds `x * w[ci, co, ky, kx]` to
/// output pixel `(iy*stride - pad_top + ky*dilation, ...)` of each channel `co` of its group,
/// skipping positions outside the output. The bias is added last.
pub(crate) fn conv_transpose2d(
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    out: &TensorType,
    win: &Window,
    groups: usize,
) -> Result<Vec<f32>, String> {
    let (xv, wv) = (f32s(x)?, f32s(w)?);
    let bias = bias.map(f32s).transpose()?;
    let xd = dims4(x.shape())?;
    let wd = dims4(w.shape())?;
    let od = dims4(&out.shape)?;
    let [n, c_in, h, wid] = xd;
    let [_, c_out_group, kh, kw] = wd;
    let [_, c_out, oh, ow] = od;
    let c_in_group = c_in / groups;
    let mut y = vec![0.0f32; out.numel()];
    for b in 0..n {
        for ci in 0..c_in {
            let group = ci / c_in_group;
            for iy in 0..h {
                for ix in 0..wid {
                    let v = xv[at4(xd, [b, ci, iy, ix])];
                    for cl in 0..c_out_group {
                        let co = group * c_out_group + cl;
                        for ky in 0..kh {
                            let Some(oy) = tap(iy, ky, 0, win, oh) else {
                                continue;
                            };
                            for kx in 0..kw {
                                let Some(ox) = tap(ix, kx, 1, win, ow) else {
                                    continue;
                                };
                                y[at4(od, [b, co, oy, ox])] += v * wv[at4(wd, [ci, cl, ky, kx])];
                            }
                        }
                    }
                }
            }
        }
    }
    if let Some(bias) = bias {
        for b in 0..n {
            for co in 0..c_out {
                for oy in 0..oh {
                    for ox in 0..ow {
                        y[at4(od, [b, co, oy, ox])] += bias[co];
                    }
                }
            }
        }
    }
    Ok(y)
}
