//! DCGAN (Radford et al.): a generator of transposed convolutions with batch norm and ReLU
//! ending in tanh, and a discriminator of strided convolutions with leaky ReLU.
//!
//! The generator's parameters are named `g.*` and the discriminator's `d.*`, so the two
//! alternating steps of GAN training can share them by name: [`dcgan_discriminator`] trains
//! `d.*` on real or generated images against `target`; [`dcgan_generator_step`] runs the
//! discriminator on the generator's images with `d.*` as *data* inputs (fed from the
//! discriminator, not trained), so its training graph updates only `g.*`.

use crate::net::Net;
use crate::{BuildError, Mode};
use sinter_ir::{Graph, Op, Tensor, TensorType, Value};

/// Sizes of a DCGAN pair.
#[derive(Clone, Debug, PartialEq)]
pub struct DcganConfig {
    /// Batch size.
    pub batch: usize,
    /// Latent width (`z: f32[batch, latent]`).
    pub latent: usize,
    /// Image height and width, a power of two >= 8 (64 in the paper).
    pub size: usize,
    /// Image channels.
    pub channels: usize,
    /// Generator width: its last hidden layer has this many channels, doubling inwards.
    pub ngf: usize,
    /// Discriminator width: its first layer has this many channels, doubling inwards.
    pub ndf: usize,
    /// The generator's batch norm in training or inference form.
    pub mode: Mode,
}

impl DcganConfig {
    /// 1x16x16 images, latent 8, widths 4, batch 4.
    pub fn small() -> DcganConfig {
        DcganConfig {
            batch: 4,
            latent: 8,
            size: 16,
            channels: 1,
            ngf: 4,
            ndf: 4,
            mode: Mode::Train,
        }
    }

    /// The paper's: 3x64x64 images, latent 100, widths 64, batch 128.
    pub fn full() -> DcganConfig {
        DcganConfig {
            batch: 128,
            latent: 100,
            size: 64,
            channels: 3,
            ngf: 64,
            ndf: 64,
            mode: Mode::Train,
        }
    }

    /// The number of stride-2 layers after the first 4x4 one: `log2(size) - 2`.
    fn doublings(&self) -> Result<usize, BuildError> {
        if !self.size.is_power_of_two() || self.size < 8 {
            return Err(BuildError::Config(format!(
                "DCGAN image size {} must be a power of two >= 8",
                self.size
            )));
        }
        Ok(self.size.trailing_zeros() as usize - 2)
    }
}

/// The generator body: `z` -> `image`.
fn generator_body(n: &mut Net, cfg: &DcganConfig, z: Value) -> Result<Value, BuildError> {
    let l = cfg.doublings()?;
    let mut h = n.reshape(z, &[cfg.batch as i64, cfg.latent as i64, 1, 1])?;
    for j in 1..=l {
        let ch = cfg.ngf << (l - j);
        let (stride, pad) = if j == 1 { (1, 0) } else { (2, 1) };
        let y = n.conv_transpose(&format!("g.convt{j}"), h, ch, 4, stride, pad)?;
        let y = n.batch_norm(&format!("g.bn{j}"), y)?;
        h = n.relu(y)?;
    }
    let y = n.conv_transpose(&format!("g.convt{}", l + 1), h, cfg.channels, 4, 2, 1)?;
    n.named("image", Op::Tanh {}, &[y])
}

/// The discriminator body: images -> `logits: f32[batch, 1]`, its weights trained or fed.
fn discriminator_body(
    n: &mut Net,
    cfg: &DcganConfig,
    x: Value,
    frozen: bool,
) -> Result<Value, BuildError> {
    let l = cfg.doublings()?;
    let mut h = x;
    for j in 1..=l {
        let y = n.conv(
            &format!("d.conv{j}"),
            h,
            cfg.ndf << (j - 1),
            4,
            2,
            1,
            true,
            frozen,
        )?;
        h = n.leaky_relu(y, 0.2)?;
    }
    let y = n.conv(&format!("d.conv{}", l + 1), h, 1, 4, 1, 0, true, frozen)?;
    n.named(
        "logits",
        Op::Reshape {
            shape: vec![cfg.batch as i64, 1],
        },
        &[y],
    )
}

fn latent(n: &mut Net, cfg: &DcganConfig) -> Result<Value, BuildError> {
    n.input("z", TensorType::f32(&[cfg.batch, cfg.latent]))
}

/// The generator alone: `z: f32[batch, latent]` -> `image: f32[batch, channels, size, size]`
/// in `(-1, 1)`; the only output is `image`.
pub fn dcgan_generator(cfg: &DcganConfig) -> Result<Graph, BuildError> {
    let mut n = Net::new("dcgan_g", cfg.mode);
    let z = latent(&mut n, cfg)?;
    let image = generator_body(&mut n, cfg, z)?;
    n.finish(&[image])
}

/// The discriminator step: images `x` and `target: f32[batch, 1]` (1 real, 0 generated);
/// outputs `loss` (binary cross-entropy with logits) and `logits`. No batch norm, so the
/// discriminator holds no running statistics and the generator step can feed its weights.
pub fn dcgan_discriminator(cfg: &DcganConfig) -> Result<Graph, BuildError> {
    let mut n = Net::new("dcgan_d", Mode::Train);
    let s = cfg.size;
    let x = n.input("x", TensorType::f32(&[cfg.batch, cfg.channels, s, s]))?;
    let target = n.input("target", TensorType::f32(&[cfg.batch, 1]))?;
    let logits = discriminator_body(&mut n, cfg, x, false)?;
    let loss = n.bce_with_logits(logits, target)?;
    n.finish(&[loss, logits])
}

/// The generator step: `z` -> generator -> discriminator (weights `d.*` as data inputs) ->
/// `loss`, the non-saturating generator loss `bce_with_logits(logits, 1)`; outputs `loss`
/// and `image`.
pub fn dcgan_generator_step(cfg: &DcganConfig) -> Result<Graph, BuildError> {
    let mut n = Net::new("dcgan_g_step", cfg.mode);
    let z = latent(&mut n, cfg)?;
    let image = generator_body(&mut n, cfg, z)?;
    let logits = discriminator_body(&mut n, cfg, image, true)?;
    let ones = n.constant(Tensor::full(&[cfg.batch, 1], 1.0))?;
    let loss = n.bce_with_logits(logits, ones)?;
    n.finish(&[loss, image])
}
