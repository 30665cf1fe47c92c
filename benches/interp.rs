#![allow(missing_docs)]
//! Reference-interpreter throughput on the LeNet example: the baseline the JIT is measured
//! against (the interpreter is the oracle, not a fast path; this bench shows by how much).

use criterion::{Criterion, criterion_group, criterion_main};

fn lenet(c: &mut Criterion) {
    let g = sinter::ir::parse(sinter::demo::LENET_SIR).expect("lenet parses");
    let mut inputs = sinter::demo::init_params(&g, 0);
    let data = sinter::digits::load().expect("digits");
    let (x, labels) = sinter::digits::batch(&data[..16]);
    inputs.insert("x".into(), x);
    inputs.insert("labels".into(), labels);
    c.bench_function("interp/lenet_batch16", |b| {
        b.iter(|| sinter::interp::run(&g, &inputs).expect("runs"))
    });
}

criterion_group!(benches, lenet);
criterion_main!(benches);
