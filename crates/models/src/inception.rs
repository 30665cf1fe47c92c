//! GoogLeNet (Inception-v1) as in the paper's table 1: a stem, then stages of Inception
//! modules separated by max pools. Each module runs four branches on its input and joins
//! them along the channels: a 1x1 convolution; a 1x1 bottleneck then 3x3; a 1x1 bottleneck
//! then 5x5; a 3x3 max pool then a 1x1 projection. Every convolution has a bias and a ReLU
//! (no batch norm, no local response normalisation, no auxiliary classifiers, no dropout).

use crate::net::Net;
use crate::{BuildError, Mode, classify, scale};
use sinter_ir::{Graph, Op, TensorType, Value};

/// The output channels of one Inception module's branches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InceptionSpec {
    /// The 1x1 branch.
    pub b1: usize,
    /// The 3x3 branch's 1x1 bottleneck.
    pub b3_reduce: usize,
    /// The 3x3 branch.
    pub b3: usize,
    /// The 5x5 branch's 1x1 bottleneck.
    pub b5_reduce: usize,
    /// The 5x5 branch.
    pub b5: usize,
    /// The 1x1 projection after the pool branch's max pool.
    pub pool_proj: usize,
}

const fn spec(b1: usize, r3: usize, b3: usize, r5: usize, b5: usize, pp: usize) -> InceptionSpec {
    InceptionSpec {
        b1,
        b3_reduce: r3,
        b3,
        b5_reduce: r5,
        b5,
        pool_proj: pp,
    }
}

/// GoogLeNet: stem `conv1` 7x7/2 (64) -> max pool -> `conv2_reduce` 1x1 (64) -> `conv2` 3x3
/// (192) -> max pool, then the stages (modules `inception3a`, `inception3b`, then
/// `inception4a`, ...), a 3x3/2 max pool between stages, global average pool, `logits`.
/// Max pools are 3x3/2 with padding 1 (the paper's "same" pooling: 112 -> 56 -> 28 ...).
#[derive(Clone, Debug, PartialEq)]
pub struct GoogLeNetConfig {
    /// Batch size.
    pub batch: usize,
    /// Input height and width (224).
    pub size: usize,
    /// Channel multiplier on every convolution.
    pub width: f32,
    /// Stages of modules, the first named `inception3*`.
    pub stages: Vec<Vec<InceptionSpec>>,
    /// Classes.
    pub classes: usize,
}

/// The paper's nine modules in three stages (3a-3b, 4a-4e, 5a-5b).
pub fn googlenet_stages() -> Vec<Vec<InceptionSpec>> {
    vec![
        vec![
            spec(64, 96, 128, 16, 32, 32),
            spec(128, 128, 192, 32, 96, 64),
        ],
        vec![
            spec(192, 96, 208, 16, 48, 64),
            spec(160, 112, 224, 24, 64, 64),
            spec(128, 128, 256, 24, 64, 64),
            spec(112, 144, 288, 32, 64, 64),
            spec(256, 160, 320, 32, 128, 128),
        ],
        vec![
            spec(256, 160, 320, 32, 128, 128),
            spec(384, 192, 384, 48, 128, 128),
        ],
    ]
}

impl GoogLeNetConfig {
    /// 3x32x32 input, width 1/16, three modules (3a, 3b | 4a), batch 2.
    pub fn small() -> GoogLeNetConfig {
        let s = googlenet_stages();
        GoogLeNetConfig {
            batch: 2,
            size: 32,
            width: 1.0 / 16.0,
            stages: vec![s[0].clone(), vec![s[1][0]]],
            classes: 10,
        }
    }

    /// ImageNet: 3x224x224, the nine modules, 1000 classes, batch 8.
    pub fn full() -> GoogLeNetConfig {
        GoogLeNetConfig {
            batch: 8,
            size: 224,
            width: 1.0,
            stages: googlenet_stages(),
            classes: 1000,
        }
    }
}

fn conv_relu(
    n: &mut Net,
    name: &str,
    x: Value,
    out: usize,
    k: usize,
    stride: usize,
) -> Result<Value, BuildError> {
    let z = n.conv(name, x, out, k, stride, k / 2, true, false)?;
    n.relu(z)
}

/// One Inception module called `p`.
fn module(
    n: &mut Net,
    p: &str,
    x: Value,
    s: &InceptionSpec,
    width: f32,
) -> Result<Value, BuildError> {
    let c = |b| scale(b, width);
    let b1 = conv_relu(n, &format!("{p}.b1"), x, c(s.b1), 1, 1)?;
    let r3 = conv_relu(n, &format!("{p}.b3_reduce"), x, c(s.b3_reduce), 1, 1)?;
    let b3 = conv_relu(n, &format!("{p}.b3"), r3, c(s.b3), 3, 1)?;
    let r5 = conv_relu(n, &format!("{p}.b5_reduce"), x, c(s.b5_reduce), 1, 1)?;
    let b5 = conv_relu(n, &format!("{p}.b5"), r5, c(s.b5), 5, 1)?;
    let pool = n.max_pool(x, 3, 1, [1; 4])?;
    let pp = conv_relu(n, &format!("{p}.pool_proj"), pool, c(s.pool_proj), 1, 1)?;
    n.named(p, Op::Concat { axis: 1 }, &[b1, b3, b5, pp])
}

/// The GoogLeNet of `cfg`: outputs `loss` and `logits`.
pub fn googlenet(cfg: &GoogLeNetConfig) -> Result<Graph, BuildError> {
    let mut n = Net::new("googlenet", Mode::Train);
    let x = n.input("x", TensorType::f32(&[cfg.batch, 3, cfg.size, cfg.size]))?;
    let labels = n.input("labels", TensorType::i64(&[cfg.batch]))?;
    let c = |b| scale(b, cfg.width);
    let h = conv_relu(&mut n, "conv1", x, c(64), 7, 2)?;
    let h = n.max_pool(h, 3, 2, [1; 4])?;
    let h = conv_relu(&mut n, "conv2_reduce", h, c(64), 1, 1)?;
    let h = conv_relu(&mut n, "conv2", h, c(192), 3, 1)?;
    let mut h = n.max_pool(h, 3, 2, [1; 4])?;
    for (i, stage) in cfg.stages.iter().enumerate() {
        if i > 0 {
            h = n.max_pool(h, 3, 2, [1; 4])?;
        }
        for (j, s) in stage.iter().enumerate() {
            let name = format!("inception{}{}", i + 3, (b'a' + j as u8) as char);
            h = module(&mut n, &name, h, s, cfg.width)?;
        }
    }
    let f = n.global_avg_pool(h)?;
    classify(n, f, labels, cfg.classes)
}
