//! Robustness on the stable toolchain: every fuzz corpus file replayed through the fuzz
//! targets' own code (`fuzz/src/lib.rs`, included below), the CLI on malformed files, absurd
//! attributes and shapes rejected by the verifier, the memory budget, and determinism.
//!
//! `catch_unwind` only turns a panic into a listed test failure (with the file that caused
//! it); it never makes a panic acceptable.

#[path = "../fuzz/src/lib.rs"]
#[allow(dead_code)]
mod harness;

use sinter_ir::{Tensor, TensorData, parse};
use sinter_runtime::{CompileError, CompileOptions, Compiled, DEFAULT_MEMORY_BUDGET};
use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::Command;
use tempfile::TempDir;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs `target` on every file of `fuzz/corpus/<name>/` and lists the files that panicked.
fn replay(name: &str, target: fn(&[u8])) {
    let dir = root().join("fuzz/corpus").join(name);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{}: empty corpus", dir.display());
    let mut failures = Vec::new();
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        if let Err(p) = catch_unwind(AssertUnwindSafe(|| target(&bytes))) {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(format!("{}: {msg}", f.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} files panicked:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

#[test]
fn corpus_ir_text() {
    replay("ir_text", harness::ir_text);
}

#[test]
fn corpus_onnx_import() {
    replay("onnx_import", harness::onnx_import);
}

#[test]
fn corpus_optimize() {
    replay("optimize", harness::optimize);
}

#[test]
fn corpus_jit_diff() {
    replay("jit_diff", harness::jit_diff);
}

#[test]
fn jit_diff_corpus_builds_real_graphs() {
    // The decoder must not collapse to the bare input: most seeds give at least one op.
    let dir = root().join("fuzz/corpus/jit_diff");
    let mut with_ops = 0;
    let mut total = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let bytes = std::fs::read(e.unwrap().path()).unwrap();
        if let Some((g, _)) = harness::decode_graph(&bytes) {
            total += 1;
            with_ops += usize::from(g.nodes().iter().any(|n| n.op().is_some()));
        }
    }
    assert!(with_ops * 2 > total, "{with_ops} of {total} seeds have ops");
}

// ---- The CLI on malformed files ----------------------------------------------------------

/// Writes `contents` to `name` in `dir` and returns the path.
fn tmp(dir: &TempDir, name: &str, contents: &[u8]) -> PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, contents).unwrap();
    p
}

#[test]
fn cli_rejects_malformed_files() {
    let files: [(&str, &[u8]); 5] = [
        ("empty.sir", b""),
        ("binary.sir", &[0xff, 0xfe, 0x00, 0x7b, 0x80]),
        ("unclosed.sir", b"graph @g {\n  input %x: f32[2]\n  %y = relu(%x"),
        (
            "zero_stride.sir",
            b"graph @g { input %x: f32[1,1,4,4] %y = max_pool2d(%x) {kernel=[2, 2], stride=[0, 1]} output %y }",
        ),
        (
            "huge.sir",
            b"graph @g { input %x: f32[1099511627776] output %x }",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (name, contents) in files {
        let path = tmp(&dir, name, contents);
        for cmd in ["check", "run", "opt"] {
            let out = Command::new(env!("CARGO_BIN_EXE_sinter"))
                .args([cmd, path.to_str().unwrap()])
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "sinter {cmd} {name}: {stderr}");
            assert!(
                stderr.lines().any(|l| l.starts_with("error:")),
                "sinter {cmd} {name}: no `error:` line in {stderr:?}"
            );
            assert!(
                !stderr.contains("panicked"),
                "sinter {cmd} {name}: {stderr}"
            );
        }
    }
}

// ---- Absurd attributes and shapes: verifier errors ---------------------------------------

/// Parses `body` inside a graph with input `%x: f32[1,2,5,5]`; returns the error text.
fn rejected(body: &str) -> String {
    let src = format!("graph @g {{\n  input %x: f32[1,2,5,5]\n  {body}\n  output %y\n}}");
    match parse(&src) {
        Ok(_) => panic!("accepted: {body}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn absurd_attributes_are_verifier_errors() {
    let cases = [
        // Kernel larger than the padded input (5 + 1 + 1 < 8).
        (
            "%y = max_pool2d(%x) {kernel=[8, 8], stride=[1, 1], pad=[1, 1, 1, 1]}",
            "max_pool2d",
        ),
        (
            "%y = avg_pool2d(%x) {kernel=[6, 1], stride=[1, 1]}",
            "avg_pool2d",
        ),
        // Zero and negative strides.
        (
            "%y = max_pool2d(%x) {kernel=[2, 2], stride=[0, 1]}",
            "stride",
        ),
        (
            "%y = avg_pool2d(%x) {kernel=[2, 2], stride=[1, -2]}",
            "stride",
        ),
        // Negative pads.
        (
            "%y = max_pool2d(%x) {kernel=[2, 2], stride=[1, 1], pad=[-1, 0, 0, 0]}",
            "pad",
        ),
        // Zero kernel.
        (
            "%y = max_pool2d(%x) {kernel=[0, 2], stride=[1, 1]}",
            "kernel",
        ),
        // Zero dilation, zero groups.
        (
            "%w = random_normal() {shape=[2, 2, 3, 3]}\n  %y = conv2d(%x, %w) {dilation=[0, 1]}",
            "dilation",
        ),
        (
            "%w = random_normal() {shape=[2, 2, 3, 3]}\n  %y = conv2d(%x, %w) {groups=0}",
            "groups",
        ),
        // A conv kernel larger than the padded input.
        (
            "%w = random_normal() {shape=[2, 2, 9, 9]}\n  %y = conv2d(%x, %w) {pad=[1, 1, 1, 1]}",
            "conv2d",
        ),
        // 2^40-element shapes, directly and through attributes.
        ("%y = random_normal() {shape=[1048576, 1048576]}", "2^32"),
        ("%y = broadcast(%x) {shape=[1024, 1024, 1024, 2, 5, 5]}", ""),
        ("%y = reshape(%x) {shape=[-1, 0]}", "reshape"),
        (
            "%y = pad(%x) {pads=[0, 0, 0, 0, 1099511627776, 0, 0, 0]}",
            "pad",
        ),
    ];
    for (body, needle) in cases {
        let e = rejected(body);
        assert!(
            e.contains(needle),
            "{body}: error {e:?} does not mention {needle:?}"
        );
    }
    // A 2^40-element input type.
    let e = parse("graph @g { input %x: f32[1048576,1048576] output %x }")
        .unwrap_err()
        .to_string();
    assert!(e.contains("2^32"), "{e}");
}

// ---- Memory budget -----------------------------------------------------------------------

#[test]
fn memory_budget_refuses_large_plans_before_allocating() {
    // 2^32 f32 elements (the verifier's limit): `relu` and `neg` fuse into one kernel whose
    // 16 GiB output is planned in the arena (the input is fed, not planned).
    let g =
        parse("graph @big { input %x: f32[65536,65536]  %y = relu(%x)  %z = neg(%y)  output %z }")
            .unwrap();
    let e = Compiled::new(&g, CompileOptions::checked()).unwrap_err();
    let CompileError::Memory { needed, budget, .. } = &e else {
        panic!("expected a memory error, got {e}");
    };
    assert_eq!(*budget, DEFAULT_MEMORY_BUDGET);
    assert_eq!(*needed, 16 << 30);
    let msg = e.to_string();
    assert!(
        msg.contains(&needed.to_string()) && msg.contains(&budget.to_string()),
        "{msg}"
    );

    // A small budget refuses a small graph, naming both numbers.
    let g =
        parse("graph @m { input %x: f32[64,64]  %y = relu(%x)  %z = neg(%y)  output %z }").unwrap();
    let opts = CompileOptions {
        memory_budget: 1000,
        ..CompileOptions::checked()
    };
    let msg = Compiled::new(&g, opts).unwrap_err().to_string();
    assert!(
        msg.contains("16384 bytes") && msg.contains("1000 bytes"),
        "{msg}"
    );
    // Constants count too: 1200 bytes of constant plus a 1216-byte arena.
    let mut b = sinter_ir::Builder::new("c");
    let x = b.input("x", sinter_ir::TensorType::f32(&[300])).unwrap();
    let k = b.constant(Tensor::full(&[300], 0.5)).unwrap();
    let y = b.add(x, k).unwrap();
    let g = b.finish(&[y]).unwrap();
    let with = |memory_budget| CompileOptions {
        memory_budget,
        ..CompileOptions::checked()
    };
    assert!(Compiled::new(&g, with(4096)).is_ok());
    let msg = Compiled::new(&g, with(2000)).unwrap_err().to_string();
    assert!(msg.contains("2416 bytes"), "{msg}");
}

#[test]
fn interpreter_refuses_huge_outputs_before_allocating() {
    // 2^32 elements (allowed by the verifier): 16 GiB, over the interpreter's 8 GiB.
    let g =
        parse("graph @big { %u = random_uniform() {shape=[65536, 65536]}  output %u }").unwrap();
    let e = sinter_interp::run(&g, &HashMap::new())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("17179869184 bytes") && e.contains(&sinter_interp::MEMORY_BUDGET.to_string()),
        "{e}"
    );
}

// ---- Determinism -------------------------------------------------------------------------

fn bits(outs: &[(String, Tensor)]) -> Vec<(String, Vec<u64>)> {
    outs.iter()
        .map(|(n, t)| {
            let v = match t.data() {
                TensorData::F32(v) => v.iter().map(|x| u64::from(x.to_bits())).collect(),
                TensorData::I64(v) => v.iter().map(|&x| x as u64).collect(),
                TensorData::Bool(v) => v.iter().map(|&x| u64::from(x)).collect(),
            };
            (n.clone(), v)
        })
        .collect()
}

/// Big enough for the GEMM driver to split over two threads (at least 2^22 FLOPs a share):
/// 2 x 256 x 193 x 161 FLOPs for the matmul, 2 x 32 x 144 x 576 per image for the conv.
const GEMM_NET: &str = "graph @net {
  input %x: f32[256,193]  input %w: f32[193,161]  input %b: f32[161]
  input %i: f32[2,16,24,24]  input %k: f32[32,16,3,3]
  %h = matmul(%x, %w)  %hb = add(%h, %b)  %r = relu(%hb)
  %c = conv2d(%i, %k) {stride=[1, 2], pad=[1, 1, 1, 1]}
  output %r, %c
}";

#[test]
fn gemm_is_bit_identical_across_runs_and_thread_counts() {
    let g = parse(GEMM_NET).unwrap();
    let inputs = harness::inputs_for(&g, 11);
    let mut results = Vec::new();
    for threads in [1, 2, 1, 2] {
        let mut opts = CompileOptions::default();
        opts.lower.threads = threads;
        let c = Compiled::new(&g, opts).unwrap();
        for _ in 0..2 {
            results.push((threads, bits(&c.run(&inputs).unwrap())));
        }
    }
    for (t, r) in &results[1..] {
        assert!(*r == results[0].1, "threads={t} differs from threads=1");
    }
}

const RANDOM_NET: &str = "graph @rand {
  input %step: i64[]  input %p: f32[13,7]
  %u = random_uniform(%step) {shape=[5,9], low=-1, high=3, seed=42}
  %n = random_normal(%step) {shape=[33], mean=1, std=0.5, seed=7}
  %s = sigmoid(%p)
  %h = bernoulli(%s, %step) {seed=3}
  %d = dropout(%p, %step) {p=0.3, seed=9}
  output %u, %n, %h, %d
}";

#[test]
fn random_ops_are_bit_identical_given_the_seed() {
    let g = parse(RANDOM_NET).unwrap();
    let mut inputs = harness::inputs_for(&g, 5);
    inputs.insert("step".into(), Tensor::from_i64(&[], vec![3]));
    let interp = bits(&sinter_interp::run(&g, &inputs).unwrap());
    assert_eq!(interp, bits(&sinter_interp::run(&g, &inputs).unwrap()));
    for opts in [CompileOptions::default(), CompileOptions::checked()] {
        for threads in [1, 2] {
            let mut opts = opts;
            opts.lower.threads = threads;
            let c = Compiled::new(&g, opts).unwrap();
            assert_eq!(bits(&c.run(&inputs).unwrap()), interp, "JIT vs interpreter");
            assert_eq!(bits(&c.run(&inputs).unwrap()), interp, "second run");
        }
    }
    // Another step (counter) draws other numbers; the same step draws the same again.
    let mut other = inputs.clone();
    other.insert("step".into(), Tensor::from_i64(&[], vec![4]));
    let again: HashMap<_, _> = bits(&sinter_interp::run(&g, &other).unwrap())
        .into_iter()
        .collect();
    let first: HashMap<_, _> = interp.into_iter().collect();
    assert_ne!(again["n"], first["n"]);
}
