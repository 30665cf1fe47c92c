#![allow(missing_docs)]
//! Reference-interpreter throughput on the LeNet example: the baseline the JIT is measured
//! against (the interpreter is the oracle, not a fast path; this bench shows by how much).

use criterion::{Criterion, criterion_group, criterion_main};

fn lenet(c: &mut Criterion) {
    let src = include_str!("../ir-spec/examples/lenet.sir");
    let g = sinter::ir::parse(src).expect("lenet parses");
    let mut inputs: std::collections::HashMap<_, _> =
        sinter::autodiff::init_params(&g, sinter::autodiff::Init::HeUniform, 0);
    let data = sinter::data::digits().expect("digits");
    let (x, labels) = data.batch(&(0..16).collect::<Vec<_>>());
    inputs.insert("x".into(), x);
    inputs.insert("labels".into(), labels);
    c.bench_function("interp/lenet_batch16", |b| {
        b.iter(|| sinter::interp::run(&g, &inputs).expect("runs"))
    });
}

criterion_group!(benches, lenet);
criterion_main!(benches);
