#![allow(missing_docs)]
//! Optimiser time: saturation + DAG-aware extraction + write-back on a ResNet-50-shaped graph
//! (inference: batch-norm statistics constant, weights trainable parameters) and on an
//! Inception-v1 stack (the nine GoogLeNet modules, convolutions with bias and relu). Target:
//! under 200 ms each on one core. Figures go to BENCHMARKS.md, section "Rewrite".

use criterion::{Criterion, criterion_group, criterion_main};
use sinter::ir::{Builder, Graph, IrError, Op, Tensor, TensorType, Value};

fn conv_op(stride: i64, pad: i64) -> Op {
    Op::Conv2d {
        stride: [stride; 2],
        pad: [pad; 4],
        dilation: [1, 1],
        groups: 1,
    }
}

struct Net {
    b: Builder,
    n: usize,
}

impl Net {
    fn param(&mut self, shape: &[usize]) -> Result<Value, IrError> {
        self.n += 1;
        self.b
            .param(&format!("p{}", self.n), TensorType::f32(shape))
    }

    /// conv (no bias) + batch norm with constant statistics, optionally relu.
    fn conv_bn(
        &mut self,
        x: Value,
        c_out: usize,
        k: usize,
        stride: i64,
        relu: bool,
    ) -> Result<Value, IrError> {
        let c_in = self.b.shape(x)[1];
        let w = self.param(&[c_out, c_in, k, k])?;
        let y = self.b.op(conv_op(stride, (k / 2) as i64), &[x, w])?;
        let g = self.b.constant(Tensor::full(&[c_out], 1.0))?;
        let beta = self.b.constant(Tensor::full(&[c_out], 0.1))?;
        let m = self.b.constant(Tensor::full(&[c_out], 0.05))?;
        let v = self.b.constant(Tensor::full(&[c_out], 0.9))?;
        let y = self.b.batch_norm(y, g, beta, m, v, 1e-5)?;
        if relu { self.b.relu(y) } else { Ok(y) }
    }

    /// conv with bias + relu.
    fn conv_relu(&mut self, x: Value, c_out: usize, k: usize) -> Result<Value, IrError> {
        let c_in = self.b.shape(x)[1];
        let w = self.param(&[c_out, c_in, k, k])?;
        let bias = self.param(&[c_out])?;
        let y = self.b.op(conv_op(1, (k / 2) as i64), &[x, w, bias])?;
        self.b.relu(y)
    }
}

fn resnet50() -> Result<Graph, IrError> {
    let mut n = Net {
        b: Builder::new("resnet50"),
        n: 0,
    };
    let x = n.b.input("x", TensorType::f32(&[1, 3, 224, 224]))?;
    let mut h = n.conv_bn(x, 64, 7, 2, true)?;
    h = n.b.max_pool2d(h, 2, 2)?;
    let mut c_in = 64;
    for (stage, (&blocks, &mid)) in [3, 4, 6, 3].iter().zip(&[64, 128, 256, 512]).enumerate() {
        for i in 0..blocks {
            let stride = if i == 0 && stage > 0 { 2 } else { 1 };
            let out = mid * 4;
            let a = n.conv_bn(h, mid, 1, stride, true)?;
            let a = n.conv_bn(a, mid, 3, 1, true)?;
            let a = n.conv_bn(a, out, 1, 1, false)?;
            let short = if i == 0 {
                n.conv_bn(h, out, 1, stride, false)?
            } else {
                h
            };
            let s = n.b.add(a, short)?;
            h = n.b.relu(s)?;
            c_in = out;
        }
    }
    let _ = c_in;
    let p = n.b.global_avg_pool(h)?;
    let f = n.b.flatten(p, 1)?;
    let w = n.param(&[2048, 1000])?;
    let bias = n.param(&[1000])?;
    let y = n.b.linear(f, w, Some(bias))?;
    n.b.finish(&[y])
}

fn inception_v1() -> Result<Graph, IrError> {
    let mut n = Net {
        b: Builder::new("inception_v1"),
        n: 0,
    };
    let mut h = n.b.input("x", TensorType::f32(&[1, 192, 28, 28]))?;
    // (1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj) per module, GoogLeNet table 1.
    let modules: [[usize; 6]; 9] = [
        [64, 96, 128, 16, 32, 32],
        [128, 128, 192, 32, 96, 64],
        [192, 96, 208, 16, 48, 64],
        [160, 112, 224, 24, 64, 64],
        [128, 128, 256, 24, 64, 64],
        [112, 144, 288, 32, 64, 64],
        [256, 160, 320, 32, 128, 128],
        [256, 160, 320, 32, 128, 128],
        [384, 192, 384, 48, 128, 128],
    ];
    for (i, m) in modules.iter().enumerate() {
        if i == 2 || i == 7 {
            h = n.b.max_pool2d(h, 2, 2)?;
        }
        let a = n.conv_relu(h, m[0], 1)?;
        let r3 = n.conv_relu(h, m[1], 1)?;
        let c3 = n.conv_relu(r3, m[2], 3)?;
        let r5 = n.conv_relu(h, m[3], 1)?;
        let c5 = n.conv_relu(r5, m[4], 5)?;
        let pool = n.b.op(
            Op::MaxPool2d {
                kernel: [3, 3],
                stride: [1, 1],
                pad: [1; 4],
            },
            &[h],
        )?;
        let pp = n.conv_relu(pool, m[5], 1)?;
        h = n.b.concat(&[a, c3, c5, pp], 1)?;
    }
    n.b.finish(&[h])
}

fn bench(c: &mut Criterion) {
    let opts = sinter_rewrite::Options::default();
    for (name, g) in [
        ("rewrite/resnet50", resnet50().expect("resnet50 builds")),
        (
            "rewrite/inception_v1",
            inception_v1().expect("inception builds"),
        ),
    ] {
        let (_, report) = sinter_rewrite::optimize(&g, &opts).expect("optimises");
        eprintln!("{name}: {} nodes\n{report}", g.nodes().len());
        c.bench_function(name, |b| {
            b.iter(|| sinter_rewrite::optimize(&g, &opts).expect("optimises"))
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = bench
}
criterion_main!(benches);
