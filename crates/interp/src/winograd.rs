//! The `winograd_*` ops, straight from their definition: each transform is two small matrix
//! products with the tables of [`sinter_ir::winograd`], one tile at a time, accumulating in
//! f32 in natural order. Slow and obvious, like the rest of the interpreter; the JIT's
//! vectorised transforms are tested against these.

use crate::index::{dims4, f32s};
use sinter_ir::winograd::{Matrices, matrices, tiles};
use sinter_ir::{Tensor, TensorType};

fn table(tile: i64) -> Result<Matrices, String> {
    matrices(tile).ok_or_else(|| format!("no Winograd tables for tile={tile}"))
}

/// `L X R` for row-major `L: p x q`, `X: q x s`, and `R: s x p2` given as `R^T` (`p2 x s`),
/// summing in natural order: `(L X)[i, j] = sum_k L[i, k] X[k, j]`, then
/// `out[i, j] = sum_k (L X)[i, k] R^T[j, k]`.
fn sandwich(l: &[f32], p: usize, x: &[f32], s: usize, rt: &[f32], p2: usize) -> Vec<f32> {
    let q = x.len() / s;
    let mut lx = vec![0.0f32; p * s];
    for i in 0..p {
        for j in 0..s {
            let mut acc = 0.0f32;
            for k in 0..q {
                acc += l[i * q + k] * x[k * s + j];
            }
            lx[i * s + j] = acc;
        }
    }
    let mut out = vec![0.0f32; p * p2];
    for i in 0..p {
        for j in 0..p2 {
            let mut acc = 0.0f32;
            for k in 0..s {
                acc += lx[i * s + k] * rt[j * s + k];
            }
            out[i * p2 + j] = acc;
        }
    }
    out
}

/// `U[t, co, ci] = (G w[co, ci] G^T)[t]`; with `transposed`, of `w[ci, co]` rotated by 180°.
pub(crate) fn filter(
    w: &Tensor,
    out: &TensorType,
    tile: i64,
    transposed: bool,
) -> Result<Vec<f32>, String> {
    let f = table(tile)?;
    let wv = f32s(w)?;
    let [_, d1, _, _] = dims4(w.shape())?;
    let (co_n, ci_n) = (out.shape[1], out.shape[2]);
    let a = f.a();
    let mut u = vec![0.0f32; out.numel()];
    let mut g = [0.0f32; 9];
    for co in 0..co_n {
        for ci in 0..ci_n {
            for (k, v) in g.iter_mut().enumerate() {
                *v = if transposed {
                    wv[(ci * d1 + co) * 9 + 8 - k]
                } else {
                    wv[(co * d1 + ci) * 9 + k]
                };
            }
            // G (a x 3) g (3 x 3) G^T (3 x a).
            let t = sandwich(f.g, a, &g, 3, f.g, a);
            for (k, &val) in t.iter().enumerate() {
                u[(k * co_n + co) * ci_n + ci] = val;
            }
        }
    }
    Ok(u)
}

/// `V[t, c, p] = (B^T d B)[t]` for every window `d` of every channel.
pub(crate) fn input(
    x: &Tensor,
    out: &TensorType,
    tile: i64,
    pad: [i64; 4],
) -> Result<Vec<f32>, String> {
    let f = table(tile)?;
    let xv = f32s(x)?;
    let [n, c, h, w] = dims4(x.shape())?;
    let pad = pad.map(|p| p as usize);
    let (oh, ow) = (h + pad[0] + pad[2] - 2, w + pad[1] + pad[3] - 2);
    let (th, tw) = (tiles(oh, f.m), tiles(ow, f.m));
    let (a, p_n) = (f.a(), out.shape[2]);
    let mut v = vec![0.0f32; out.numel()];
    let mut d = vec![0.0f32; a * a];
    for img in 0..n {
        for ch in 0..c {
            let plane = &xv[(img * c + ch) * h * w..][..h * w];
            for ti in 0..th {
                for tj in 0..tw {
                    for i in 0..a {
                        for j in 0..a {
                            let y = (ti * f.m + i).checked_sub(pad[0]).filter(|&y| y < h);
                            let xx = (tj * f.m + j).checked_sub(pad[1]).filter(|&x| x < w);
                            d[i * a + j] = match (y, xx) {
                                (Some(y), Some(xx)) => plane[y * w + xx],
                                _ => 0.0,
                            };
                        }
                    }
                    // B^T d B = B^T d (B^T)^T.
                    let t = sandwich(f.bt, a, &d, a, f.bt, a);
                    let p = (img * th + ti) * tw + tj;
                    for (k, &val) in t.iter().enumerate() {
                        v[(k * c + ch) * p_n + p] = val;
                    }
                }
            }
        }
    }
    Ok(v)
}

/// `y[n, c, ti*m + r, tj*m + s] = (A^T M A)[r, s] + bias[c]`, cropped to the output.
pub(crate) fn output(
    mm: &Tensor,
    bias: Option<&Tensor>,
    out: &TensorType,
    tile: i64,
) -> Result<Vec<f32>, String> {
    let f = table(tile)?;
    let mv = f32s(mm)?;
    let bias = bias.map(f32s).transpose()?;
    let [n, c, oh, ow] = dims4(&out.shape)?;
    let (th, tw) = (tiles(oh, f.m), tiles(ow, f.m));
    let (a, m, p_n) = (f.a(), f.m, mm.shape()[2]);
    let mut y = vec![0.0f32; out.numel()];
    let mut tile_m = vec![0.0f32; a * a];
    for img in 0..n {
        for ch in 0..c {
            for ti in 0..th {
                for tj in 0..tw {
                    let p = (img * th + ti) * tw + tj;
                    for (k, v) in tile_m.iter_mut().enumerate() {
                        *v = mv[(k * c + ch) * p_n + p];
                    }
                    // A^T M A = A^T M (A^T)^T.
                    let t = sandwich(f.at, m, &tile_m, a, f.at, m);
                    for r in 0..m {
                        for s in 0..m {
                            let (yy, xx) = (ti * m + r, tj * m + s);
                            if yy < oh && xx < ow {
                                let b = bias.map_or(0.0, |b| b[ch]);
                                y[((img * c + ch) * oh + yy) * ow + xx] = t[r * m + s] + b;
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(y)
}
