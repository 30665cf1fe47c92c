//! Residual networks: ResNet-18/34 (basic blocks) and ResNet-50 (bottleneck blocks), in
//! torchvision's layout (ResNet-50 v1.5: the stride on the 3x3 convolution).

use crate::net::Net;
use crate::{BuildError, Mode, classify, scale};
use sinter_ir::{Graph, TensorType, Value};

/// The residual block of a ResNet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Block {
    /// Two 3x3 convolutions (ResNet-18/34); expansion 1.
    Basic,
    /// 1x1 reduce, 3x3, 1x1 expand (ResNet-50 and deeper); expansion 4.
    Bottleneck,
}

impl Block {
    fn expansion(self) -> usize {
        match self {
            Block::Basic => 1,
            Block::Bottleneck => 4,
        }
    }
}

/// A ResNet: stem `conv1` 7x7/2 -> `bn1` -> relu -> max pool 3x3/2, four stages `layer1` ...
/// `layer4` of residual blocks (`layer2.0.conv1`, `layer2.0.bn1`, `layer2.0.downsample.conv`,
/// ...), global average pool, `logits`. Every convolution is followed by batch norm and has
/// no bias.
#[derive(Clone, Debug, PartialEq)]
pub struct ResNetConfig {
    /// Batch size.
    pub batch: usize,
    /// Input height and width (224).
    pub size: usize,
    /// Channel multiplier on the stage widths 64, 128, 256, 512.
    pub width: f32,
    /// The block.
    pub block: Block,
    /// Blocks per stage.
    pub layers: [usize; 4],
    /// Classes.
    pub classes: usize,
    /// Batch norm in training or inference form.
    pub mode: Mode,
}

impl ResNetConfig {
    /// ResNet-`depth` (18, 34 or 50) on ImageNet: 3x224x224, 1000 classes, batch 8.
    pub fn full(depth: usize) -> Result<ResNetConfig, BuildError> {
        let (block, layers) = match depth {
            18 => (Block::Basic, [2, 2, 2, 2]),
            34 => (Block::Basic, [3, 4, 6, 3]),
            50 => (Block::Bottleneck, [3, 4, 6, 3]),
            _ => {
                return Err(BuildError::Config(format!(
                    "ResNet depth {depth}: expected 18, 34 or 50"
                )));
            }
        };
        Ok(ResNetConfig {
            batch: 8,
            size: 224,
            width: 1.0,
            block,
            layers,
            classes: 1000,
            mode: Mode::Train,
        })
    }

    /// ResNet-`depth` with width 1/16 (stages of 4 to 32 channels) on 3x64x64, batch 8.
    pub fn small(depth: usize) -> Result<ResNetConfig, BuildError> {
        Ok(ResNetConfig {
            batch: 8,
            size: 64,
            width: 1.0 / 16.0,
            classes: 10,
            ..ResNetConfig::full(depth)?
        })
    }
}

/// `conv` (no bias) -> batch norm, with `relu` after when asked.
#[allow(clippy::too_many_arguments)]
fn conv_bn(
    n: &mut Net,
    conv: &str,
    bn: &str,
    x: Value,
    out: usize,
    k: usize,
    stride: usize,
    relu: bool,
) -> Result<Value, BuildError> {
    let z = n.conv(conv, x, out, k, stride, k / 2, false, false)?;
    let y = n.batch_norm(bn, z)?;
    if relu { n.relu(y) } else { Ok(y) }
}

/// One residual block called `p` (`layer1.0`) with `planes` inner channels.
fn block(
    n: &mut Net,
    p: &str,
    x: Value,
    kind: Block,
    planes: usize,
    stride: usize,
) -> Result<Value, BuildError> {
    let c_in = n.shape(x)[1];
    let out = planes * kind.expansion();
    let (conv, bn) = (|i| format!("{p}.conv{i}"), |i| format!("{p}.bn{i}"));
    let y = match kind {
        Block::Basic => {
            let h = conv_bn(n, &conv(1), &bn(1), x, planes, 3, stride, true)?;
            conv_bn(n, &conv(2), &bn(2), h, planes, 3, 1, false)?
        }
        Block::Bottleneck => {
            let h = conv_bn(n, &conv(1), &bn(1), x, planes, 1, 1, true)?;
            let h = conv_bn(n, &conv(2), &bn(2), h, planes, 3, stride, true)?;
            conv_bn(n, &conv(3), &bn(3), h, out, 1, 1, false)?
        }
    };
    let shortcut = if stride != 1 || c_in != out {
        let (c, b) = (format!("{p}.downsample.conv"), format!("{p}.downsample.bn"));
        conv_bn(n, &c, &b, x, out, 1, stride, false)?
    } else {
        x
    };
    let s = n.add(y, shortcut)?;
    n.relu(s)
}

/// The ResNet of `cfg`: outputs `loss` and `logits`.
pub fn resnet(cfg: &ResNetConfig) -> Result<Graph, BuildError> {
    let depth = match (cfg.block, cfg.layers) {
        (Block::Basic, [2, 2, 2, 2]) => "resnet18".to_string(),
        (Block::Basic, [3, 4, 6, 3]) => "resnet34".to_string(),
        (Block::Bottleneck, [3, 4, 6, 3]) => "resnet50".to_string(),
        _ => "resnet".to_string(),
    };
    let mut n = Net::new(&depth, cfg.mode);
    let x = n.input("x", TensorType::f32(&[cfg.batch, 3, cfg.size, cfg.size]))?;
    let labels = n.input("labels", TensorType::i64(&[cfg.batch]))?;
    let stem = scale(64, cfg.width);
    let h = conv_bn(&mut n, "conv1", "bn1", x, stem, 7, 2, true)?;
    let mut h = n.max_pool(h, 3, 2, [1; 4])?;
    for (stage, &blocks) in cfg.layers.iter().enumerate() {
        let planes = scale(64 << stage, cfg.width);
        for i in 0..blocks {
            let stride = if stage > 0 && i == 0 { 2 } else { 1 };
            let p = format!("layer{}.{i}", stage + 1);
            h = block(&mut n, &p, h, cfg.block, planes, stride)?;
        }
    }
    let f = n.global_avg_pool(h)?;
    classify(n, f, labels, cfg.classes)
}
