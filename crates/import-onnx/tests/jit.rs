//! Every committed fixture through the whole compiler: import, optimise with the rewrite
//! engine's default options, JIT-compile and run, then compare with onnxruntime's outputs
//! within `ATOL + RTOL * |expected|` (1e-5 + 1e-4 relative), the same tolerance as the
//! interpreter test (`fixtures.rs`). Each optimised graph is also compiled and run in
//! bounds-checked mode, where any out-of-bounds access is an error instead of a wrong answer.
//!
//! Also: `--trainable` imports whose parameters are fed by name through the JIT, a dynamic
//! batch fixed with `--shape`, and (ignored, `--ignored`) ResNet-50 and VGG-16 when
//! `tests/onnx/setup.sh --large` has written them, printing each stage's time.

mod common;

use common::{compare, fixture_names, fixtures, import_options, read_npz};
use prost::Message;
use sinter_import_onnx::proto::ModelProto;
use sinter_import_onnx::{ImportOptions, import_file, ir_name};
use sinter_ir::{Graph, InputKind, Tensor};
use sinter_runtime::{CompileOptions, Compiled, RunError};
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// Reads a model's `.inputs.npz`, keyed by Sinter value name.
fn inputs_of(dir: &Path, name: &str) -> HashMap<String, Tensor> {
    read_npz(&dir.join(format!("{name}.inputs.npz")))
        .into_iter()
        .map(|(k, v)| (ir_name(&k), v))
        .collect()
}

/// Compares every output of a run with the reference outputs (keyed by ONNX name); `Ok`
/// carries the largest absolute error over all float outputs.
fn compare_all(got: &[(String, Tensor)], want: &HashMap<String, Tensor>) -> Result<f32, String> {
    if got.len() != want.len() {
        return Err(format!("{} outputs, want {}", got.len(), want.len()));
    }
    let mut max_err = 0.0f32;
    for (out_name, t) in got {
        let w = want
            .iter()
            .find(|(k, _)| ir_name(k) == *out_name)
            .ok_or_else(|| format!("output `{out_name}` is not in the reference"))?
            .1;
        compare(t, w).map_err(|e| format!("output `{out_name}`: {e}"))?;
        if let (Some(g), Some(w)) = (t.as_f32(), w.as_f32()) {
            for (a, b) in g.iter().zip(w) {
                max_err = max_err.max((a - b).abs());
            }
        }
    }
    Ok(max_err)
}

/// Compiles `g` with `opts`, runs it on `inputs` and compares with `want`.
fn jit_run(
    g: &Graph,
    opts: CompileOptions,
    inputs: &HashMap<String, Tensor>,
    want: &HashMap<String, Tensor>,
) -> Result<f32, String> {
    let compiled = Compiled::new(g, opts).map_err(|e| format!("compile: {e}"))?;
    let got = compiled.run(inputs).map_err(|e| format!("run: {e}"))?;
    compare_all(&got, want)
}

/// One fixture through import, optimisation and the JIT (default and bounds-checked).
fn check(name: &str) -> Result<(), String> {
    let dir = fixtures();
    let g = import_file(&dir.join(format!("{name}.onnx")), &import_options(name))
        .map_err(|e| format!("import: {e}"))?;
    let (opt, _) = sinter_rewrite::optimize(&g, &sinter_rewrite::Options::default())
        .map_err(|e| format!("optimize: {e}"))?;
    opt.verify()
        .map_err(|e| format!("optimised graph: verify: {e}"))?;
    let inputs = inputs_of(&dir, name);
    let want = read_npz(&dir.join(format!("{name}.outputs.npz")));
    jit_run(&opt, CompileOptions::default(), &inputs, &want).map_err(|e| {
        // Say whether the optimiser or the code generator is at fault.
        let unopt = match jit_run(&g, CompileOptions::default(), &inputs, &want) {
            Ok(_) => "the unoptimised graph matches through the JIT".to_string(),
            Err(e) => format!("the unoptimised graph also fails through the JIT: {e}"),
        };
        format!("optimised, JIT: {e} ({unopt})")
    })?;
    jit_run(&opt, CompileOptions::checked(), &inputs, &want)
        .map_err(|e| format!("optimised, JIT, bounds-checked: {e}"))?;
    Ok(())
}

#[test]
fn every_fixture_matches_onnxruntime_through_the_jit() {
    let names = fixture_names();
    assert!(names.len() >= 40, "only {} fixtures found", names.len());
    let mut failures = Vec::new();
    for name in &names {
        let t0 = Instant::now();
        match check(name) {
            Ok(()) => eprintln!("ok   {name} ({:.0?})", t0.elapsed()),
            Err(e) => {
                eprintln!("FAIL {name}: {e}");
                failures.push(format!("{name}: {e}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} fixtures failed:\n{}",
        failures.len(),
        names.len(),
        failures.join("\n")
    );
}

/// The float initializers of fixture `name`, keyed by Sinter value name.
fn initializers(name: &str) -> HashMap<String, Tensor> {
    let bytes = std::fs::read(fixtures().join(format!("{name}.onnx"))).unwrap();
    let m = ModelProto::decode(bytes.as_slice()).unwrap();
    m.graph
        .unwrap()
        .initializer
        .iter()
        .map(|init| {
            let t = sinter_import_onnx::tensor::to_tensor(init).unwrap();
            (ir_name(init.name()), t)
        })
        .filter(|(_, t)| t.as_f32().is_some())
        .collect()
}

#[test]
fn trainable_parameters_are_fed_by_name_through_the_jit() {
    let name = "net_lenet5";
    let opts = ImportOptions {
        trainable: true,
        ..ImportOptions::default()
    };
    let g = import_file(&fixtures().join(format!("{name}.onnx")), &opts).unwrap();
    let params: Vec<String> = g
        .inputs()
        .filter(|(_, k)| *k == InputKind::Param)
        .map(|(v, _)| g.value_name(v).to_string())
        .collect();
    let inits = initializers(name);
    // Every float initializer (5 weights, 5 biases) is a parameter, and nothing else is.
    assert_eq!(params.len(), 10, "{params:?}");
    let mut sorted = params.clone();
    sorted.sort();
    let mut want_names: Vec<&String> = inits.keys().collect();
    want_names.sort();
    assert_eq!(sorted.iter().collect::<Vec<_>>(), want_names);

    // Optimised (parameters are not constants, so nothing folds them) and compiled, the
    // graph takes the data input and every parameter by name.
    let (opt, _) = sinter_rewrite::optimize(&g, &sinter_rewrite::Options::default()).unwrap();
    let compiled = Compiled::new(&opt, CompileOptions::default()).unwrap();
    let mut fed: Vec<&str> = compiled.inputs().iter().map(|(n, _)| n.as_str()).collect();
    fed.sort();
    let mut expect: Vec<&str> = params.iter().map(String::as_str).collect();
    expect.push("x");
    expect.sort();
    assert_eq!(fed, expect);

    // Fed their initial values, the parameters give onnxruntime's result.
    let mut feeds = inputs_of(&fixtures(), name);
    feeds.extend(inits.clone());
    let want = read_npz(&fixtures().join(format!("{name}.outputs.npz")));
    let got = compiled.run(&feeds).unwrap();
    compare_all(&got, &want).unwrap();

    // They are really read at run time: another value for the last bias changes the answer.
    let bias = params
        .iter()
        .find(|p| inits[*p].shape() == [10])
        .expect("the last layer's bias has 10 elements");
    let mut changed = feeds.clone();
    changed.insert(
        bias.clone(),
        Tensor::from_f32(&[10], (0..10).map(|i| i as f32).collect()),
    );
    let other = compiled.run(&changed).unwrap();
    assert!(compare_all(&other, &want).is_err());

    // And a parameter left out is reported by name.
    let mut missing = feeds.clone();
    missing.remove(bias);
    match compiled.run(&missing) {
        Err(RunError::MissingInput { name, .. }) => assert_eq!(&name, bias),
        other => panic!("expected a missing input error, got {other:?}"),
    }
}

#[test]
fn a_dynamic_batch_is_fixed_by_the_shape_option() {
    let name = "dyn_lenet5";
    let path = fixtures().join(format!("{name}.onnx"));
    // Without the option the dynamic batch is an error that says what to do.
    let e = import_file(&path, &ImportOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("dynamic dimension `batch`") && e.contains("--shape x="),
        "{e}"
    );
    let x = &inputs_of(&fixtures(), name)["x"];
    let want = &read_npz(&fixtures().join(format!("{name}.outputs.npz")))["y"];
    let batch = x.shape()[0];
    assert!(batch > 1);
    // At batch 1 (the exporter's Shape/Gather/Concat/Reshape chain folds to the new batch),
    // each sample of the reference input gives its row of the reference output.
    let (key, shape) = sinter_import_onnx::parse_shape_option("x=1x1x28x28").unwrap();
    let opts = ImportOptions {
        shapes: HashMap::from([(key, shape)]),
        ..ImportOptions::default()
    };
    let g = import_file(&path, &opts).unwrap();
    let (opt, _) = sinter_rewrite::optimize(&g, &sinter_rewrite::Options::default()).unwrap();
    let compiled = Compiled::new(&opt, CompileOptions::default()).unwrap();
    assert_eq!(compiled.inputs()[0].1.shape.to_vec(), [1, 1, 28, 28]);
    let xs = x.as_f32().unwrap();
    let ws = want.as_f32().unwrap();
    let (per_x, per_y) = (xs.len() / batch, ws.len() / batch);
    for b in 0..batch {
        let xb = Tensor::from_f32(&[1, 1, 28, 28], xs[b * per_x..(b + 1) * per_x].to_vec());
        let wb = Tensor::from_f32(&[1, per_y], ws[b * per_y..(b + 1) * per_y].to_vec());
        let got = compiled
            .run(&HashMap::from([("x".to_string(), xb)]))
            .unwrap();
        compare(&got[0].1, &wb).unwrap_or_else(|e| panic!("sample {b}: {e}"));
    }
    // The reference batch itself goes through `every_fixture_matches_onnxruntime_through_the_jit`.
}

/// Figures for one large model.
struct Figures {
    import: Duration,
    optimize: Duration,
    compile: Duration,
    lower: Duration,
    first_run: Duration,
    best_run: Duration,
    max_err: f32,
    /// Compile plus one run with every access bounds-checked.
    checked: Duration,
}

/// Milliseconds, for printing.
fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Runs `tests/onnx/large/NAME` through the compiler (three runs, each compared with
/// onnxruntime, then one bounds-checked compile and run); `None` when the files are not there.
fn large(name: &str) -> Option<Result<Figures, String>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/onnx/large");
    let model = dir.join(format!("{name}.onnx"));
    if !model.exists() || !dir.join(format!("{name}.outputs.npz")).exists() {
        return None;
    }
    Some((|| {
        let t = Instant::now();
        let g =
            import_file(&model, &ImportOptions::default()).map_err(|e| format!("import: {e}"))?;
        let import = t.elapsed();
        let t = Instant::now();
        let (opt, report) = sinter_rewrite::optimize(&g, &sinter_rewrite::Options::default())
            .map_err(|e| format!("optimize: {e}"))?;
        let optimize = t.elapsed();
        eprintln!(
            "{name}: {} nodes imported, {} after optimisation\n{}",
            g.nodes().len(),
            opt.nodes().len(),
            report
                .render(false)
                .lines()
                .filter(|l| !l.starts_with("fused:"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        let t = Instant::now();
        let compiled =
            Compiled::new(&opt, CompileOptions::default()).map_err(|e| format!("compile: {e}"))?;
        let compile = t.elapsed();
        let lower = compiled.timings.lower;
        let inputs = inputs_of(&dir, name);
        let want = read_npz(&dir.join(format!("{name}.outputs.npz")));
        let mut runs = Vec::new();
        let mut max_err = 0.0f32;
        for _ in 0..3 {
            let t = Instant::now();
            let got = compiled.run(&inputs).map_err(|e| format!("run: {e}"))?;
            runs.push(t.elapsed());
            max_err = max_err.max(compare_all(&got, &want)?);
        }
        drop(compiled);
        let t = Instant::now();
        let got = Compiled::new(&opt, CompileOptions::checked())
            .map_err(|e| format!("compile, bounds-checked: {e}"))?
            .run(&inputs)
            .map_err(|e| format!("run, bounds-checked: {e}"))?;
        let checked = t.elapsed();
        max_err =
            max_err.max(compare_all(&got, &want).map_err(|e| format!("bounds-checked: {e}"))?);
        Ok(Figures {
            checked,
            import,
            optimize,
            compile,
            lower,
            first_run: runs[0],
            best_run: runs.iter().copied().min().unwrap_or_default(),
            max_err,
        })
    })())
}

/// ResNet-50 and VGG-16 (batch 1, random weights) through import, optimisation and the JIT.
/// `cargo test -p sinter-import-onnx --release --test jit -- --ignored --nocapture`.
#[test]
#[ignore = "needs tests/onnx/setup.sh --large; about a minute in release"]
fn large_models_through_the_jit() {
    let mut ran = 0;
    for name in ["resnet50", "vgg16"] {
        match large(name) {
            None => eprintln!("{name}: skipped: run tests/onnx/setup.sh --large"),
            Some(Ok(f)) => {
                ran += 1;
                eprintln!(
                    "{name}: import {:.0} ms, optimise {:.0} ms, JIT compile {:.0} ms (lowering \
                     {:.0} ms), run {:.0} ms (first) / {:.0} ms (best of 3), largest error {:.2e}; bounds-checked compile + run {:.0} ms",
                    ms(f.import),
                    ms(f.optimize),
                    ms(f.compile),
                    ms(f.lower),
                    ms(f.first_run),
                    ms(f.best_run),
                    f.max_err,
                    ms(f.checked)
                );
            }
            Some(Err(e)) => panic!("{name}: {e}"),
        }
    }
    if ran == 0 {
        eprintln!("skipped: run tests/onnx/setup.sh --large");
    }
}
