//! The `sinter` command: check, print, optimise, compile, run, benchmark and train graphs given
//! in the `.sir` text format or as `.onnx` models.

mod jit_cli;

use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "sinter",
    version,
    about = "Sinter: a compiled graph IR and kernel generator for neural networks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// ONNX only: fix an input's shape, e.g. `--shape x=1x3x224x224` (repeatable; a scalar
    /// is `name=`). Needed when the model has a dynamic dimension.
    #[arg(long, global = true, value_name = "NAME=DIMS", value_parser = sinter_import_onnx::parse_shape_option)]
    shape: Vec<(String, Vec<usize>)>,
    /// ONNX only: float initializers become trainable parameters (inputs fed by name)
    /// instead of constants.
    #[arg(long, global = true)]
    trainable: bool,
}

/// How `.onnx` files are imported (the global `--shape` and `--trainable` options).
#[derive(Clone, Debug, Default)]
struct LoadOptions {
    shapes: Vec<(String, Vec<usize>)>,
    trainable: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Parse and verify a graph; prints nothing and exits 0 when it is well-formed.
    Check {
        /// The `.sir` file.
        file: PathBuf,
    },
    /// Print a graph in canonical form.
    Print {
        /// The `.sir` file.
        file: PathBuf,
    },
    /// Run a graph: JIT-compiled by default, or on the reference interpreter with `--interp`.
    Run {
        /// The `.sir` file.
        file: PathBuf,
        /// An `.npz` archive with one array per graph input (data and parameters), by name.
        #[arg(long)]
        inputs: Option<PathBuf>,
        /// Where to write the outputs, an `.npz` archive keyed by output name. Without it,
        /// each output's type and first values are printed.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Run on the reference interpreter (the oracle) instead of the JIT.
        #[arg(long)]
        interp: bool,
        /// Rewrite the graph by equality saturation first, as `sinter opt` does.
        #[arg(long)]
        optimize: bool,
        /// Inline polynomial exp, sigmoid and tanh (as `sinter bench --fast-math`).
        #[arg(long, conflicts_with = "interp")]
        fast_math: bool,
    },
    /// JIT-compile a graph and show what was generated.
    Compile {
        /// The `.sir` file.
        file: PathBuf,
        /// Print the loop-nest IR (`loops`), Cranelift IR (`clif`) or machine code (`asm`) of
        /// every kernel.
        #[arg(long, value_enum)]
        emit: Option<jit_cli::Emit>,
        /// Print compile times per kernel and the memory plan.
        #[arg(long)]
        timings: bool,
        /// Threads the kernels are lowered for (parallel loops, threaded GEMM calls).
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// Rewrite the graph by equality saturation first, as `sinter opt` does.
        #[arg(long)]
        optimize: bool,
    },
    /// Time a JIT-compiled graph (or, with `--train`, one training step of it): median of
    /// repeated runs after warm-up, per-kernel times.
    Bench {
        /// The `.sir` file.
        file: PathBuf,
        /// Inputs (`.npz`); inputs not given are filled deterministically.
        #[arg(long)]
        inputs: Option<PathBuf>,
        /// Threads for the GEMM driver.
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// Timed runs.
        #[arg(long, default_value_t = 20)]
        runs: usize,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
        /// Time one training step instead: forward, backward and optimiser update of the
        /// graph's scalar output `loss`, built by autodiff and compiled as one graph.
        #[arg(long)]
        train: bool,
        /// The optimiser of `--train`: `adam` or `sgd` (momentum 0.9).
        #[arg(long, default_value = "adam", requires = "train")]
        optimizer: String,
        /// Rewrite the graph (the training step, with `--train`) by equality saturation
        /// first, as `sinter opt` does (BN folding, fusion, Winograd convolutions, ...); its
        /// time counts as compile time.
        #[arg(long)]
        optimize: bool,
        /// Compute exp, sigmoid and tanh by inline polynomials that vectorise (at most a few
        /// ULP from the exact functions; see BENCHMARKS.md) instead of calling them.
        #[arg(long)]
        fast_math: bool,
    },
    /// Optimise a graph by equality saturation and print the result in canonical form.
    Opt {
        /// The `.sir` file.
        file: PathBuf,
        /// Also print the optimiser's report, as `#` comment lines after the graph.
        #[arg(long)]
        report: bool,
        /// Stop saturating at this many e-nodes.
        #[arg(long)]
        node_limit: Option<usize>,
        /// Stop saturating after this many milliseconds.
        #[arg(long)]
        time_limit: Option<u64>,
    },
    /// Print which rewrites the optimiser keeps for a graph and what each saves.
    Explain {
        /// The `.sir` file.
        file: PathBuf,
        /// Also compile the optimised graph, time it, and print each kernel's measured median
        /// next to the cost model's estimate of the ops it runs.
        #[arg(long)]
        measure: bool,
        /// Timed runs for `--measure`.
        #[arg(long, default_value_t = 20)]
        runs: usize,
        /// Threads for `--measure`.
        #[arg(long, default_value_t = 1)]
        threads: usize,
    },
    /// List the model zoo, or print one model's graph (`sinter zoo resnet18 > r18.sir`).
    Zoo {
        /// A model name: print its graph in the text format (training form).
        name: Option<String>,
        /// The published sizes instead of the small test preset.
        #[arg(long)]
        full: bool,
    },
    /// The end-to-end demo: LeNet-5 optimised, compiled and trained on the embedded digits.
    Demo {
        /// Seed of the initialisation, the shuffle and the augmentation.
        #[arg(long, default_value_t = 0)]
        seed: i64,
        /// Passes over the training digits.
        #[arg(long, default_value_t = 12)]
        epochs: usize,
        /// What runs the training steps: compiled code or the reference interpreter.
        #[arg(long, value_enum, default_value_t = sinter::train::Engine::Jit)]
        backend: sinter::train::Engine,
        /// Where to write the loss curve (PNG).
        #[arg(long, default_value = "lenet5-loss.png")]
        plot: PathBuf,
    },
    /// Train a model: a zoo name (`sinter zoo`) or a graph file with inputs `x`, `labels` and
    /// a scalar output `loss`, on the embedded digits or on `--data`. `rbm` (contrastive
    /// divergence), `dbn` and `sae` (layer-wise pretraining, then fine-tuning), `dcgan`
    /// (generator and discriminator, alternating), `wake-sleep` (a DBN fine-tuned up-down),
    /// `perceptron`, `hopfield`, `som`, `art1` and `init-study` run their own procedures.
    Train {
        /// A zoo model (`lenet5`, `mlp`, `lstm`, ...) or a `.sir` / `.onnx` file.
        model: String,
        /// Training data: an `.npz`, a `.npy` pair's directory, MNIST idx or CIFAR-10 binary
        /// files (their test part is held out). Default: the embedded UCI digits.
        #[arg(long)]
        data: Option<PathBuf>,
        /// Passes over the training data.
        #[arg(long, default_value_t = 3)]
        epochs: usize,
        /// Batch size of a zoo model (default: its preset's).
        #[arg(long)]
        batch: Option<usize>,
        /// Build a zoo model at its small test preset instead of the published sizes.
        #[arg(long)]
        small: bool,
        /// Peak learning rate (cosine decay).
        #[arg(long, default_value_t = 1e-2)]
        lr: f32,
        /// `adam` or `sgd`.
        #[arg(long, default_value = "adam")]
        optimizer: String,
        /// Seed of the initialisation, the shuffle and the augmentation.
        #[arg(long, default_value_t = 0)]
        seed: i64,
        /// Threads of the GEMM driver.
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// Training-time augmentation, e.g. `shift=1,noise=0.05` (also `flip`,
        /// `crop=P:HxW`, `resize=HxW`).
        #[arg(long, default_value = "")]
        augment: String,
        /// Optimise the training step by equality saturation before compiling it.
        #[arg(long)]
        optimize: bool,
        /// Save the trained parameters to this safetensors file.
        #[arg(long)]
        save: Option<PathBuf>,
        /// What runs the training steps: compiled code or the reference interpreter.
        #[arg(long, value_enum, default_value_t = sinter::train::Engine::Jit)]
        backend: sinter::train::Engine,
        /// `dcgan`, `wake-sleep`, `som`: where to write their image grid (PNG; default
        /// `MODEL.png`).
        #[arg(long)]
        png: Option<PathBuf>,
    },
}

fn load(file: &Path, lo: &LoadOptions) -> Result<sinter::ir::Graph, String> {
    if file
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("onnx"))
    {
        let options = sinter_import_onnx::ImportOptions {
            shapes: lo.shapes.iter().cloned().collect(),
            trainable: lo.trainable,
        };
        return sinter_import_onnx::import_file(file, &options)
            .map_err(|e| format!("{}: {e}", file.display()));
    }
    if !lo.shapes.is_empty() || lo.trainable {
        return Err(format!(
            "{}: --shape and --trainable apply to .onnx models only (a .sir file states its types)",
            file.display()
        ));
    }
    let src = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    sinter::ir::parse(&src).map_err(|e| format!("{}:{e}", file.display()))
}

fn run(cli: Cli) -> Result<(), String> {
    let lo = LoadOptions {
        shapes: cli.shape,
        trainable: cli.trainable,
    };
    let load = |file: &Path| load(file, &lo);
    match cli.command {
        Command::Check { file } => load(&file).map(|_| ()),
        Command::Print { file } => {
            print!("{}", sinter::ir::print(&load(&file)?));
            Ok(())
        }
        Command::Run {
            file,
            inputs,
            out,
            interp,
            optimize,
            fast_math,
        } => {
            let g = load(&file)?;
            let g = if optimize {
                sinter_rewrite::optimize(&g, &sinter_rewrite::Options::default())
                    .map_err(|e| format!("{}: optimiser: {e}", file.display()))?
                    .0
            } else {
                g
            };
            let feeds = match inputs {
                Some(p) => sinter::npz::read_npz(&p)
                    .map_err(|e| e.to_string())?
                    .into_iter()
                    .collect(),
                None => Default::default(),
            };
            let outs = if interp {
                sinter::interp::run(&g, &feeds).map_err(|e| e.to_string())
            } else {
                jit_cli::run(&g, &feeds, fast_math)
            }
            .map_err(|e| format!("{}: {e}", file.display()))?;
            match out {
                Some(p) => sinter::npz::write_npz(&p, outs.iter().map(|(n, t)| (n.as_str(), t)))
                    .map_err(|e| e.to_string()),
                None => {
                    for (name, t) in &outs {
                        println!("%{name}: {} = {}", t.ty(), preview(t));
                    }
                    Ok(())
                }
            }
        }
        Command::Opt {
            file,
            report,
            node_limit,
            time_limit,
        } => {
            let g = load(&file)?;
            let mut opts = sinter_rewrite::Options::default();
            if let Some(n) = node_limit {
                opts.node_limit = n;
            }
            if let Some(ms) = time_limit {
                opts.time_limit = std::time::Duration::from_millis(ms);
            }
            let (opt, r) = sinter_rewrite::optimize(&g, &opts)
                .map_err(|e| format!("{}: {e}", file.display()))?;
            print!("{}", sinter::ir::print(&opt));
            if report {
                for line in r.to_string().lines() {
                    println!("# {line}");
                }
            }
            Ok(())
        }
        Command::Explain {
            file,
            measure,
            runs,
            threads,
        } => {
            let g = load(&file)?;
            let (text, optimized) =
                sinter_rewrite::explain(&g, &sinter_rewrite::Options::default())
                    .map_err(|e| format!("{}: {e}", file.display()))?;
            print!("{text}");
            if measure {
                let s = jit_cli::measure(&optimized, runs, threads)
                    .map_err(|e| format!("{}: {e}", file.display()))?;
                print!("{s}");
            }
            Ok(())
        }
        Command::Compile {
            file,
            emit,
            timings,
            threads,
            optimize,
        } => {
            let g = load(&file)?;
            let g = if optimize {
                sinter_rewrite::optimize(&g, &sinter_rewrite::Options::default())
                    .map_err(|e| format!("{}: optimiser: {e}", file.display()))?
                    .0
            } else {
                g
            };
            let s = jit_cli::compile(&g, emit, timings, threads)
                .map_err(|e| format!("{}: {e}", file.display()))?;
            print!("{s}");
            Ok(())
        }
        Command::Bench {
            file,
            inputs,
            threads,
            runs,
            json,
            train,
            optimizer,
            optimize,
            fast_math,
        } => {
            let g = load(&file)?;
            let feeds = match inputs {
                Some(p) => sinter::npz::read_npz(&p)
                    .map_err(|e| e.to_string())?
                    .into_iter()
                    .collect(),
                None => Default::default(),
            };
            let mode = if train {
                jit_cli::BenchMode::Train(optimizer)
            } else {
                jit_cli::BenchMode::Forward
            };
            let s = jit_cli::bench(
                &g,
                feeds,
                threads,
                runs,
                json,
                &mode,
                jit_cli::Flags {
                    optimize,
                    fast_math,
                },
            )
            .map_err(|e| format!("{}: {e}", file.display()))?;
            print!("{s}");
            Ok(())
        }
        Command::Zoo { name, full } => {
            let preset = if full {
                sinter_models::Preset::Full
            } else {
                sinter_models::Preset::Small
            };
            match name {
                Some(n) => {
                    let g = sinter_models::build(&n, preset).map_err(|e| e.to_string())?;
                    print!("{}", sinter::ir::print(&g));
                }
                None => {
                    let zoo = sinter_models::zoo();
                    let w = zoo.iter().map(|e| e.name.len()).max().unwrap_or(5);
                    println!("{:<w$} {:>12}  description", "model", "parameters");
                    for e in zoo {
                        let g = (e.build)(preset).map_err(|err| format!("{}: {err}", e.name))?;
                        let n = sinter_models::param_count(&g);
                        println!("{:<w$} {n:>12}  {}", e.name, e.description);
                    }
                }
            }
            Ok(())
        }
        Command::Demo {
            seed,
            epochs,
            backend,
            plot,
        } => {
            let mut opts = sinter::demo::DemoOptions::default();
            opts.train.seed = seed;
            opts.train.epochs = epochs;
            opts.train.engine = backend;
            opts.plot = Some(plot);
            print!("{}", sinter::demo::run(&opts)?.0);
            Ok(())
        }
        Command::Train {
            model,
            data,
            epochs,
            batch,
            small,
            lr,
            optimizer,
            seed,
            threads,
            augment,
            optimize,
            save,
            backend,
            png,
        } => {
            let data = match &data {
                Some(p) => sinter::train::Data::load(p)?,
                None => sinter::train::Data::digits()?,
            };
            if sinter::recipes::is_recipe(&model) && !Path::new(&model).exists() {
                if backend != sinter::train::Engine::Jit || batch.is_some() || small || optimize {
                    return Err(format!(
                        "`{model}` trains by its own procedure on the JIT: --backend, --batch, \
                         --small and --optimize do not apply"
                    ));
                }
                let opts = sinter::train::TrainOptions {
                    epochs,
                    seed,
                    save,
                    ..Default::default()
                };
                let png = png.unwrap_or_else(|| PathBuf::from(format!("{model}.png")));
                print!("{}", sinter::recipes::run(&model, &data, &opts, &png)?);
                return Ok(());
            }
            let path = Path::new(&model);
            let g = if path.exists() || model.ends_with(".sir") || model.ends_with(".onnx") {
                if batch.is_some() || small {
                    return Err(format!(
                        "{model}: --batch and --small apply to zoo models (a file states its \
                         types)"
                    ));
                }
                load(path)?
            } else {
                let fit = sinter_models::Fit {
                    batch,
                    sample_shape: data.train.sample_shape.clone(),
                    classes: data.train.classes,
                };
                let preset = if small {
                    sinter_models::Preset::Small
                } else {
                    sinter_models::Preset::Full
                };
                sinter_models::build_fit(&model, preset, &fit).map_err(|e| e.to_string())?
            };
            let augment = augment
                .parse::<sinter::data::Augment>()
                .map_err(|e| format!("--augment: {e}"))?;
            let opts = sinter::train::TrainOptions {
                epochs,
                lr,
                optimizer,
                seed,
                save,
                progress: true,
                engine: backend,
                threads,
                augment,
                optimize,
            };
            eprintln!(
                "training {model} on {} ({} samples of {:?}, {} classes{})",
                data.name,
                data.train.len(),
                data.train.sample_shape,
                data.train.classes,
                match &data.test {
                    Some(t) => format!(", {} held out", t.len()),
                    None => String::new(),
                }
            );
            let report = sinter::train::train(&g, &data, &opts)?;
            if let Some(r) = &report.rewrite {
                print!("optimiser on the training step:\n{}", r.render(false));
            }
            print!("{}", report.render());
            Ok(())
        }
    }
}

/// The first few elements of a tensor, for the terminal.
fn preview(t: &sinter::ir::Tensor) -> String {
    let lit = sinter::ir::text::print_tensor_literal(t);
    if lit.len() > 200 {
        format!("{}...", &lit[..lit.floor_char_boundary(200)])
    } else {
        lit
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
