//! Plain convolutional classifiers: LeNet-5, AlexNet and VGG-16.

use crate::net::Net;
use crate::{BuildError, Mode, Pooling, classify, scale};
use sinter_ir::{Graph, TensorType, Value};

/// The image input `x: f32[batch, channels, size, size]` and `labels: i64[batch]`.
fn image_inputs(
    n: &mut Net,
    batch: usize,
    channels: usize,
    size: usize,
) -> Result<(Value, Value), BuildError> {
    let x = n.input("x", TensorType::f32(&[batch, channels, size, size]))?;
    let labels = n.input("labels", TensorType::i64(&[batch]))?;
    Ok((x, labels))
}

/// LeNet-5: `conv1` 5x5 -> relu -> pool 2 -> `conv2` 5x5 -> relu -> pool 2 -> `fc1` -> relu
/// -> `fc2` -> relu -> `logits` (ReLU and max pooling in place of the original's scaled tanh
/// and trainable subsampling; the parameter count is the same). The pools are max pooling or,
/// with [`Pooling::Stochastic`], stochastic pooling (Zeiler and Fergus's regulariser).
#[derive(Clone, Debug, PartialEq)]
pub struct LeNetConfig {
    /// Batch size.
    pub batch: usize,
    /// Input channels.
    pub channels: usize,
    /// Input height and width (32 in the original; at least 16).
    pub size: usize,
    /// Channels of `conv1` and `conv2`.
    pub conv: [usize; 2],
    /// Widths of `fc1` and `fc2`.
    pub fc: [usize; 2],
    /// Classes.
    pub classes: usize,
    /// The two pooling layers (2x2, stride 2).
    pub pool: Pooling,
    /// Training or inference form (matters for stochastic pooling only).
    pub mode: Mode,
}

impl LeNetConfig {
    /// 1x16x16 input, channels 4 and 8, fc 32 and 16, batch 8.
    pub fn small() -> LeNetConfig {
        LeNetConfig {
            batch: 8,
            channels: 1,
            size: 16,
            conv: [4, 8],
            fc: [32, 16],
            classes: 10,
            pool: Pooling::Max,
            mode: Mode::Train,
        }
    }

    /// The original: 1x32x32 input, channels 6 and 16, fc 120 and 84 (61,706 parameters).
    pub fn full() -> LeNetConfig {
        LeNetConfig {
            batch: 32,
            channels: 1,
            size: 32,
            conv: [6, 16],
            fc: [120, 84],
            classes: 10,
            pool: Pooling::Max,
            mode: Mode::Train,
        }
    }
}

/// The LeNet-5 of `cfg`: outputs `loss` and `logits`.
pub fn lenet(cfg: &LeNetConfig) -> Result<Graph, BuildError> {
    let mut n = Net::new("lenet5", cfg.mode);
    let (x, labels) = image_inputs(&mut n, cfg.batch, cfg.channels, cfg.size)?;
    let mut h = x;
    for (i, &c) in cfg.conv.iter().enumerate() {
        let z = n.conv(&format!("conv{}", i + 1), h, c, 5, 1, 0, true, false)?;
        let a = n.relu(z)?;
        if cfg.pool != Pooling::Max && n.shape(a)[2..].iter().any(|d| !d.is_multiple_of(2)) {
            return Err(BuildError::Config(format!(
                "stochastic pooling needs even feature maps; conv{} gives {:?} (input size {})",
                i + 1,
                n.shape(a),
                cfg.size
            )));
        }
        h = n.pool(cfg.pool, a, 2)?;
    }
    h = n.flatten(h)?;
    for (i, &w) in cfg.fc.iter().enumerate() {
        let z = n.linear(&format!("fc{}", i + 1), h, w)?;
        h = n.relu(z)?;
    }
    classify(n, h, labels, cfg.classes)
}

/// AlexNet in torchvision's single-tower layout: `conv1` 11x11/4 (64) -> pool -> `conv2`
/// 5x5 (192) -> pool -> `conv3`, `conv4`, `conv5` 3x3 (384, 256, 256) -> pool -> `fc6`,
/// `fc7` (4096) -> `logits`, ReLU after every layer but the last, max pools 3x3/2. Without
/// dropout and the adaptive average pool (the identity at 224x224: other sizes flatten
/// whatever the last pool leaves).
#[derive(Clone, Debug, PartialEq)]
pub struct AlexNetConfig {
    /// Batch size.
    pub batch: usize,
    /// Input height and width (224; at least 63).
    pub size: usize,
    /// Channel multiplier on 64, 192, 384, 256, 256.
    pub width: f32,
    /// Width of `fc6` and `fc7`.
    pub fc: usize,
    /// Classes.
    pub classes: usize,
}

impl AlexNetConfig {
    /// 3x64x64 input, width 1/16 (4 to 24 channels), fc 32, batch 2.
    pub fn small() -> AlexNetConfig {
        AlexNetConfig {
            batch: 2,
            size: 64,
            width: 1.0 / 16.0,
            fc: 32,
            classes: 10,
        }
    }

    /// ImageNet: 3x224x224, width 1, fc 4096, 1000 classes (61,100,840 parameters).
    pub fn full() -> AlexNetConfig {
        AlexNetConfig {
            batch: 8,
            size: 224,
            width: 1.0,
            fc: 4096,
            classes: 1000,
        }
    }
}

/// The AlexNet of `cfg`: outputs `loss` and `logits`.
pub fn alexnet(cfg: &AlexNetConfig) -> Result<Graph, BuildError> {
    let mut n = Net::new("alexnet", Mode::Train);
    let (x, labels) = image_inputs(&mut n, cfg.batch, 3, cfg.size)?;
    let c = |b| scale(b, cfg.width);
    // (channels, kernel, stride, pad, pool after)
    let convs = [
        (c(64), 11, 4, 2, true),
        (c(192), 5, 1, 2, true),
        (c(384), 3, 1, 1, false),
        (c(256), 3, 1, 1, false),
        (c(256), 3, 1, 1, true),
    ];
    let mut h = x;
    for (i, &(ch, k, s, p, pool)) in convs.iter().enumerate() {
        let z = n.conv(&format!("conv{}", i + 1), h, ch, k, s, p, true, false)?;
        h = n.relu(z)?;
        if pool {
            h = n.max_pool(h, 3, 2, [0; 4])?;
        }
    }
    h = n.flatten(h)?;
    for name in ["fc6", "fc7"] {
        let z = n.linear(name, h, cfg.fc)?;
        h = n.relu(z)?;
    }
    classify(n, h, labels, cfg.classes)
}

/// VGG-16 (configuration D): thirteen 3x3 convolutions `conv1_1` ... `conv5_3` in five
/// stages of 64, 128, 256, 512, 512 channels, each stage ended by a 2x2 max pool, then
/// `fc6`, `fc7` and `logits`; ReLU after every layer but the last; no dropout.
#[derive(Clone, Debug, PartialEq)]
pub struct VggConfig {
    /// Batch size.
    pub batch: usize,
    /// Input height and width (224; a multiple of 32).
    pub size: usize,
    /// Channel multiplier.
    pub width: f32,
    /// Width of `fc6` and `fc7`.
    pub fc: usize,
    /// Classes.
    pub classes: usize,
    /// The five pooling layers (2x2, stride 2).
    pub pool: Pooling,
    /// Training or inference form (matters for stochastic pooling only).
    pub mode: Mode,
}

impl VggConfig {
    /// 3x32x32 input, width 1/16 (4 to 32 channels), fc 32, batch 2.
    pub fn small() -> VggConfig {
        VggConfig {
            batch: 2,
            size: 32,
            width: 1.0 / 16.0,
            fc: 32,
            classes: 10,
            pool: Pooling::Max,
            mode: Mode::Train,
        }
    }

    /// ImageNet: 3x224x224, width 1, fc 4096, 1000 classes (138,357,544 parameters).
    pub fn full() -> VggConfig {
        VggConfig {
            batch: 8,
            size: 224,
            width: 1.0,
            fc: 4096,
            classes: 1000,
            pool: Pooling::Max,
            mode: Mode::Train,
        }
    }
}

/// The VGG-16 of `cfg`: outputs `loss` and `logits`.
pub fn vgg(cfg: &VggConfig) -> Result<Graph, BuildError> {
    if cfg.size == 0 || !cfg.size.is_multiple_of(32) {
        return Err(BuildError::Config(format!(
            "VGG-16's input size must be a positive multiple of 32 (five 2x2 pools), got {}",
            cfg.size
        )));
    }
    let mut n = Net::new("vgg16", cfg.mode);
    let (x, labels) = image_inputs(&mut n, cfg.batch, 3, cfg.size)?;
    let mut h = x;
    for (stage, (base, convs)) in [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)]
        .into_iter()
        .enumerate()
    {
        for i in 0..convs {
            let name = format!("conv{}_{}", stage + 1, i + 1);
            let z = n.conv(&name, h, scale(base, cfg.width), 3, 1, 1, true, false)?;
            h = n.relu(z)?;
        }
        h = n.pool(cfg.pool, h, 2)?;
    }
    h = n.flatten(h)?;
    for name in ["fc6", "fc7"] {
        let z = n.linear(name, h, cfg.fc)?;
        h = n.relu(z)?;
    }
    classify(n, h, labels, cfg.classes)
}
