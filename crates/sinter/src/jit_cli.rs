//! The JIT side of the `sinter` command: `run` through compiled kernels, `compile --emit`,
//! and `bench`.
//!
//! Kept apart from `main.rs` so the command table there stays a list of one-line dispatches.

use sinter::ir::{DType, Graph, Tensor, TensorData, TensorType};
use sinter_runtime::{CompileOptions, Compiled};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// What `sinter compile --emit` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Emit {
    /// The loop-nest IR of every kernel.
    Loops,
    /// Cranelift IR of every kernel.
    Clif,
    /// Machine code of every kernel (Cranelift's listing of the final instructions).
    Asm,
}

/// Runs `g` through the JIT.
pub fn run(
    g: &Graph,
    feeds: &HashMap<String, Tensor>,
    fast_math: bool,
) -> Result<Vec<(String, Tensor)>, String> {
    let mut opts = CompileOptions::default();
    opts.lower.fast_math = fast_math;
    let c = Compiled::new(g, opts).map_err(|e| e.to_string())?;
    c.run(feeds).map_err(|e| e.to_string())
}

/// Switches of `sinter bench`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Flags {
    /// Rewrite the graph by equality saturation first.
    pub optimize: bool,
    /// Inline polynomial `exp`, `sigmoid` and `tanh` (vectorised; a few ULP from `f32`'s).
    pub fast_math: bool,
}

/// `sinter compile`: the generated code, and compile times with `timings`.
pub fn compile(
    g: &Graph,
    emit: Option<Emit>,
    timings: bool,
    threads: usize,
) -> Result<String, String> {
    let mut opts = CompileOptions {
        keep_clif: emit == Some(Emit::Clif),
        ..CompileOptions::default()
    };
    opts.lower.threads = threads.max(1);
    opts.jit.keep_asm = emit == Some(Emit::Asm);
    let c = Compiled::new(g, opts).map_err(|e| e.to_string())?;
    let mut s = String::new();
    match emit {
        Some(Emit::Loops) => s += &c.program.to_string(),
        Some(Emit::Clif) => {
            for f in c.clif() {
                s += f;
                s += "\n";
            }
        }
        Some(Emit::Asm) => {
            for f in c.asm() {
                s += f;
                s += "\n";
            }
        }
        None => {}
    }
    if timings {
        let t = &c.timings;
        let _ = writeln!(
            s,
            "# compile: {:.3} ms total, lowering {:.3} ms, {} kernels",
            ms(t.total),
            ms(t.lower),
            t.kernels.len()
        );
        for (name, d) in c.kernel_names().iter().zip(&t.kernels) {
            let _ = writeln!(s, "#   {name}: {:.3} ms", ms(*d));
        }
        let _ = writeln!(
            s,
            "# memory: peak {} bytes for {} bytes of intermediates",
            c.plan.peak_bytes, c.plan.total_bytes
        );
    }
    Ok(s)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

/// Deterministic inputs for benchmarking: f32 in [-1, 1), i64 zeros, bool false.
fn bench_input(ty: &TensorType, seed: u64) -> Tensor {
    let n = ty.numel();
    let data = match ty.dtype {
        DType::F32 => TensorData::F32(
            (0..n as u64)
                .map(|i| {
                    let b = sinter::ir::rng::bits(seed, i);
                    (b >> 40) as f32 / 8_388_608.0 - 1.0
                })
                .collect(),
        ),
        DType::I64 => TensorData::I64(vec![0; n]),
        DType::Bool => TensorData::Bool(vec![false; n]),
    };
    Tensor::new(&ty.shape, data).expect("sizes follow the type")
}

/// What `sinter bench` times: the graph itself, or one training step built from it.
#[derive(Clone, Debug, PartialEq)]
pub enum BenchMode {
    /// Runs of the graph as it is.
    Forward,
    /// Steps of the training graph of the graph's scalar output `loss` (autodiff: forward,
    /// backward and the optimiser update, compiled as one graph), with this optimiser
    /// (`adam` or `sgd`, momentum 0.9).
    Train(String),
}

/// The training-step graph of `g` and the inputs a step needs besides the data: initial
/// parameters (He uniform, seed 0), the optimiser's initial state and `lr = 0.01`.
fn training_step(g: &Graph, optimizer: &str) -> Result<(Graph, HashMap<String, Tensor>), String> {
    use sinter::autodiff::{Init, Optimizer, TrainConfig, init_params, training_graph};
    let loss = g
        .find("loss")
        .filter(|l| g.outputs().contains(l) && g.ty(*l).to_string() == "f32[]")
        .ok_or("--train needs a scalar f32 output `%loss`")?;
    let opt = match optimizer {
        "adam" => Optimizer::adam(),
        "sgd" => Optimizer::sgd(0.9),
        o => return Err(format!("unknown optimizer `{o}` (use adam or sgd)")),
    };
    let tg = training_graph(g, loss, &TrainConfig::new(opt)).map_err(|e| e.to_string())?;
    let mut feeds = init_params(g, Init::HeUniform, 0);
    feeds.extend(tg.initial_state());
    feeds.insert(tg.lr.clone(), Tensor::scalar(0.01));
    Ok((tg.graph, feeds))
}

/// `sinter bench`: median wall time of whole runs after warm-up, and per-kernel medians.
/// With [`BenchMode::Train`] a run is one training step; every step reads the same inputs
/// (the updated parameters are not fed back), which does not change its cost.
pub fn bench(
    g: &Graph,
    feeds: HashMap<String, Tensor>,
    threads: usize,
    runs: usize,
    json: bool,
    mode: &BenchMode,
    Flags {
        optimize,
        fast_math,
    }: Flags,
) -> Result<String, String> {
    let mut opts = CompileOptions::default();
    opts.lower.threads = threads.max(1);
    opts.lower.fast_math = fast_math;
    let mut feeds = feeds;
    let (step, what) = match mode {
        BenchMode::Forward => (None, "run"),
        BenchMode::Train(o) => {
            let (tg, extra) = training_step(g, o)?;
            for (k, v) in extra {
                feeds.entry(k).or_insert(v);
            }
            (Some(tg), "training step")
        }
    };
    let g = step.as_ref().unwrap_or(g);
    // The optimiser's time counts as compile time.
    let t_opt = Instant::now();
    let optimized = if optimize {
        let (o, _) = sinter_rewrite::optimize(g, &sinter_rewrite::Options::default())
            .map_err(|e| format!("optimiser: {e}"))?;
        Some(o)
    } else {
        None
    };
    let opt_time = t_opt.elapsed();
    let g = optimized.as_ref().unwrap_or(g);
    let c = Compiled::new(g, opts).map_err(|e| e.to_string())?;
    let compile_time = opt_time + c.timings.total;
    for (i, (name, ty)) in c.inputs().iter().enumerate() {
        feeds
            .entry(name.clone())
            .or_insert_with(|| bench_input(ty, i as u64));
    }
    for _ in 0..3 {
        c.run(&feeds).map_err(|e| e.to_string())?;
    }
    let names = c.kernel_names();
    let mut totals = Vec::with_capacity(runs);
    let mut per: Vec<Vec<Duration>> = vec![Vec::with_capacity(runs); names.len()];
    for _ in 0..runs.max(1) {
        let mut t = Vec::new();
        let t0 = Instant::now();
        c.run_profiled(&feeds, Some(&mut t))
            .map_err(|e| e.to_string())?;
        totals.push(t0.elapsed());
        for (k, d) in t.into_iter().enumerate() {
            per[k].push(d);
        }
    }
    let total = median(&mut totals);
    let kernels: Vec<(String, Duration)> = names
        .into_iter()
        .zip(per.iter_mut())
        .map(|(n, v)| (n, median(v)))
        .collect();
    let mut s = String::new();
    if json {
        let ks: Vec<String> = kernels
            .iter()
            .map(|(n, d)| format!("{{\"name\":\"{n}\",\"median_ms\":{:.6}}}", ms(*d)))
            .collect();
        let _ = writeln!(
            s,
            "{{\"graph\":\"{}\",\"threads\":{},\"runs\":{},\"mode\":\"{}\",\"median_ms\":{:.6},\"compile_ms\":{:.3},\"peak_bytes\":{},\"intermediate_bytes\":{},\"kernels\":[{}]}}",
            g.name(),
            threads,
            runs,
            match mode {
                BenchMode::Forward => "forward".to_string(),
                BenchMode::Train(o) => format!("train-{o}"),
            },
            ms(total),
            ms(compile_time),
            c.plan.peak_bytes,
            c.plan.total_bytes,
            ks.join(",")
        );
    } else {
        let _ = writeln!(
            s,
            "@{}: median {:.3} ms per {what} over {runs} runs ({threads} thread(s)); {} kernels compiled in {:.1} ms{}",
            g.name(),
            ms(total),
            kernels.len(),
            ms(compile_time),
            if optimize {
                format!(" (optimiser {:.1} ms)", ms(opt_time))
            } else {
                String::new()
            }
        );
        for (n, d) in &kernels {
            let _ = writeln!(s, "  {:>10.3} ms  {n}", ms(*d));
        }
    }
    Ok(s)
}

/// `sinter explain --measure`: the optimised graph `opt` compiled and timed (median of `runs`
/// after warm-up), each kernel's measured median next to the cost model's estimate of the ops
/// it runs: the full estimate (launch, arithmetic or memory) of its costliest op plus the
/// arithmetic alone of the others (fused into it, they neither launch nor move memory).
pub fn measure(opt: &Graph, runs: usize, threads: usize) -> Result<String, String> {
    use sinter_rewrite::cost::{op_cost, op_work, rate_of};
    let mut opts = CompileOptions::default();
    opts.lower.threads = threads.max(1);
    let c = Compiled::new(opt, opts).map_err(|e| e.to_string())?;
    let mut feeds = HashMap::new();
    for (i, (name, ty)) in c.inputs().iter().enumerate() {
        feeds.insert(name.clone(), bench_input(ty, i as u64));
    }
    for _ in 0..3 {
        c.run(&feeds).map_err(|e| e.to_string())?;
    }
    let names = c.kernel_names();
    let mut per: Vec<Vec<Duration>> = vec![Vec::with_capacity(runs); names.len()];
    for _ in 0..runs.max(1) {
        let mut t = Vec::new();
        c.run_profiled(&feeds, Some(&mut t))
            .map_err(|e| e.to_string())?;
        for (k, d) in t.into_iter().enumerate() {
            per[k].push(d);
        }
    }
    // The cost model's estimate of each node of the optimised graph, by its value's name.
    let mut est: HashMap<&str, (f64, f64)> = HashMap::new();
    for n in opt.nodes() {
        let Some(op) = n.op() else { continue };
        let ins: Vec<&TensorType> = n.inputs.iter().map(|&v| opt.ty(v)).collect();
        let outs: Vec<TensorType> = n.outputs.iter().map(|o| o.ty.clone()).collect();
        let full = op_cost(op, &ins, &outs);
        let (class, flops) = op_work(op, &ins, &outs);
        let compute = flops / rate_of(class).flops_per_ns;
        est.insert(n.outputs[0].name.as_str(), (full, compute));
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        "measured: the optimised graph JIT-compiled, median of {runs} runs, {threads} thread(s)\n  {:>12} {:>12} {:>7}  kernel",
        "estimate", "measured", "ratio"
    );
    let (mut total_e, mut total_m) = (0.0, 0.0);
    for ((name, values), times) in names.iter().zip(c.kernel_values()).zip(per.iter_mut()) {
        let parts: Vec<(f64, f64)> = values
            .iter()
            .filter_map(|v| est.get(v.as_str()).copied())
            .collect();
        let base = parts.iter().map(|p| p.0).fold(0.0, f64::max);
        let rest: f64 = parts.iter().map(|p| p.1).sum::<f64>()
            - parts.iter().find(|p| p.0 == base).map_or(0.0, |p| p.1);
        let e = (base + rest) / 1e3;
        let m = ms(median(times)) * 1e3;
        total_e += e;
        total_m += m;
        let _ = writeln!(
            s,
            "  {e:>9.1} us {m:>9.1} us {:>7.2}  {name}",
            if e > 0.0 { m / e } else { f64::NAN }
        );
    }
    let _ = writeln!(
        s,
        "  {total_e:>9.1} us {total_m:>9.1} us {:>7.2}  total",
        if total_e > 0.0 {
            total_m / total_e
        } else {
            f64::NAN
        }
    );
    Ok(s)
}
