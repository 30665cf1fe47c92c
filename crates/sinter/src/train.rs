//! Training a graph on the embedded digits: the engine of `sinter train` and `sinter demo`.
//!
//! Any graph with data inputs `x` (`f32[B,1,8,8]` or `f32[B,64]`) and `labels` (`i64[B]`), a
//! scalar output `loss` and an output of shape `[B,10]` (probabilities or logits) can be
//! trained here: autodiff turns it into one training-step graph, which a [`Engine`] runs step
//! after step: compiled once by the JIT (the default), or evaluated by the reference
//! interpreter. The held-out images are scored by the inference graph on the same engine.
//! Image `i` of the 1,797 is held out for testing when `i % 5 == 0` (360 images); the rest
//! train in a fixed shuffled order.

use crate::digits::{self, Digit};
use sinter_autodiff::{
    Backend, Init, Interpret, Optimizer, Schedule, TrainConfig, Trainer, TrainingGraph,
    inference_graph, init_params, training_graph,
};
use sinter_ir::{Graph, Tensor, rng};
use sinter_runtime::{CompileOptions, Compiled, Jit};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

/// What runs the training steps and the evaluation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Engine {
    /// Native code: the step graph is compiled once by the JIT (`sinter_runtime::Jit`).
    #[default]
    Jit,
    /// The reference interpreter (slow; the oracle).
    Interp,
}

impl std::fmt::Display for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Engine::Jit => "JIT",
            Engine::Interp => "reference interpreter",
        })
    }
}

/// How to train.
#[derive(Clone, Debug)]
pub struct TrainOptions {
    /// Passes over the training images.
    pub epochs: usize,
    /// Peak learning rate (cosine decay to 1% of it).
    pub lr: f32,
    /// `adam` or `sgd` (momentum 0.9).
    pub optimizer: String,
    /// Seed of the initialisation and the shuffle.
    pub seed: i64,
    /// Where to save the trained parameters (safetensors), if anywhere.
    pub save: Option<PathBuf>,
    /// Show a progress bar on stderr (hidden anyway when stderr is not a terminal).
    pub progress: bool,
    /// What runs the steps.
    pub engine: Engine,
}

impl Default for TrainOptions {
    fn default() -> TrainOptions {
        TrainOptions {
            epochs: 3,
            lr: 1e-2,
            optimizer: "adam".into(),
            seed: 0,
            save: None,
            progress: true,
            engine: Engine::Jit,
        }
    }
}

/// What training measured.
#[derive(Clone, Debug)]
pub struct TrainReport {
    /// Mean training loss of each epoch.
    pub epoch_loss: Vec<f32>,
    /// Correct predictions on the held-out images evaluated.
    pub correct: usize,
    /// Held-out images evaluated (whole batches only).
    pub evaluated: usize,
    /// Wall-clock seconds of the training steps.
    pub seconds: f64,
    /// Wall-clock seconds spent compiling the step (0 for the interpreter).
    pub compile_seconds: f64,
    /// What ran the steps.
    pub engine: Engine,
    /// Training steps run.
    pub steps: usize,
}

impl TrainReport {
    /// Test accuracy in `[0, 1]`.
    pub fn accuracy(&self) -> f32 {
        self.correct as f32 / self.evaluated.max(1) as f32
    }
}

/// The graph's batch size and whether `x` is an image (`[B,1,8,8]`) or flat (`[B,64]`).
fn layout(g: &Graph) -> Result<(usize, bool), String> {
    let x = g
        .find("x")
        .ok_or("the graph needs a data input `%x` (f32[B,1,8,8] or f32[B,64])")?;
    let labels = g
        .find("labels")
        .ok_or("the graph needs a data input `%labels` (i64[B])")?;
    let (tx, tl) = (g.ty(x), g.ty(labels));
    let b = tx.shape.first().copied().unwrap_or(0);
    let image = match tx.shape.as_slice() {
        [_, 1, 8, 8] => true,
        [_, 64] => false,
        _ => return Err(format!("`%x` is {tx}: expected f32[B,1,8,8] or f32[B,64]")),
    };
    if tl.to_string() != format!("i64[{b}]") {
        return Err(format!("`%labels` is {tl}: expected i64[{b}]"));
    }
    if b == 0 {
        return Err("the batch size is 0".into());
    }
    Ok((b, image))
}

fn feeds(rows: &[&Digit], image: bool) -> HashMap<String, Tensor> {
    let owned: Vec<Digit> = rows.iter().map(|d| (*d).clone()).collect();
    let (x, labels) = digits::batch(&owned);
    let x = if image {
        x
    } else {
        x.reshaped(&[rows.len(), 64]).expect("64 pixels")
    };
    HashMap::from([("x".to_string(), x), ("labels".to_string(), labels)])
}

/// The name of the `[B,10]` output used for accuracy (`probs`, `logits`, or the first such).
fn score_output(g: &Graph, b: usize) -> Result<String, String> {
    let want = format!("f32[{b},10]");
    let outs: Vec<&str> = g
        .outputs()
        .iter()
        .filter(|&&v| g.ty(v).to_string() == want)
        .map(|&v| g.value_name(v))
        .collect();
    ["probs", "logits"]
        .iter()
        .find(|n| outs.contains(n))
        .copied()
        .or(outs.first().copied())
        .map(str::to_string)
        .ok_or_else(|| {
            format!("the graph needs an output of type {want} (probabilities or logits)")
        })
}

/// Trains `g` on the digits and evaluates it on the held-out images.
pub fn train_digits(g: &Graph, opts: &TrainOptions) -> Result<TrainReport, String> {
    let (b, image) = layout(g)?;
    let loss = g
        .find("loss")
        .ok_or("the graph needs a scalar output `%loss`")?;
    if !g.outputs().contains(&loss) || g.ty(loss).rank() != 0 {
        return Err("`%loss` must be a scalar graph output".into());
    }
    let score = score_output(g, b)?;
    let data = digits::load()?;
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for (i, d) in data.iter().enumerate() {
        if i % 5 == 0 {
            test.push(d)
        } else {
            train.push(d)
        }
    }
    let key = rng::key(opts.seed, 1);
    for i in (1..train.len()).rev() {
        let j = ((rng::uniform(key, i as u64) * (i + 1) as f32) as usize).min(i);
        train.swap(i, j);
    }
    let optimizer = match opts.optimizer.as_str() {
        "adam" => Optimizer::adam(),
        "sgd" => Optimizer::sgd(0.9),
        o => return Err(format!("unknown optimizer `{o}` (use adam or sgd)")),
    };
    let tg = training_graph(g, loss, &TrainConfig::new(optimizer)).map_err(|e| e.to_string())?;
    let per_epoch = train.len() / b;
    let total = (opts.epochs * per_epoch) as u64;
    let schedule = Schedule::Cosine {
        base: opts.lr,
        min: opts.lr * 0.01,
        steps: total.max(1),
    };
    let params = init_params(g, Init::HeUniform, opts.seed);
    let inf = inference_graph(g).map_err(|e| e.to_string())?;
    let run = Run {
        opts,
        train: &train,
        test: &test,
        b,
        image,
        score: &score,
        total,
    };
    match opts.engine {
        Engine::Jit => {
            let c = Compiled::new(&inf, CompileOptions::default()).map_err(|e| e.to_string())?;
            run.go(Jit::default(), tg, params, schedule, |f| {
                c.run(f).map_err(|e| e.to_string())
            })
        }
        Engine::Interp => run.go(Interpret(sinter_interp::run), tg, params, schedule, |f| {
            sinter_interp::run(&inf, f).map_err(|e| e.to_string())
        }),
    }
}

/// One training run's data and settings, independent of the engine.
struct Run<'a> {
    opts: &'a TrainOptions,
    train: &'a [&'a Digit],
    test: &'a [&'a Digit],
    b: usize,
    image: bool,
    score: &'a str,
    total: u64,
}

impl Run<'_> {
    /// Trains on `backend` and scores the held-out images with `infer` (the inference graph).
    fn go<B: Backend>(
        &self,
        backend: B,
        tg: TrainingGraph,
        params: HashMap<String, Tensor>,
        schedule: Schedule,
        infer: impl Fn(&HashMap<String, Tensor>) -> Result<Vec<(String, Tensor)>, String>,
    ) -> Result<TrainReport, String> {
        let (opts, b, image) = (self.opts, self.b, self.image);
        let t0 = Instant::now();
        let mut tr = Trainer::new(backend, tg, params, schedule).map_err(|e| e.to_string())?;
        let compile_seconds = match opts.engine {
            Engine::Jit => t0.elapsed().as_secs_f64(),
            Engine::Interp => 0.0,
        };
        let bar = if opts.progress {
            indicatif::ProgressBar::new(self.total)
        } else {
            indicatif::ProgressBar::hidden()
        };
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{prefix} [{bar:30}] {pos}/{len} steps, loss {msg} ({eta})",
            )
            .map_err(|e| e.to_string())?
            .progress_chars("=> "),
        );
        let per_epoch = self.train.len() / b;
        let start = Instant::now();
        let mut epoch_loss = Vec::new();
        for epoch in 0..opts.epochs {
            bar.set_prefix(format!("epoch {}/{}", epoch + 1, opts.epochs));
            let mut sum = 0.0;
            for s in 0..per_epoch {
                let l = tr
                    .step(&feeds(&self.train[s * b..(s + 1) * b], image))
                    .map_err(|e| e.to_string())?;
                sum += l;
                bar.set_message(format!("{l:.4}"));
                bar.inc(1);
            }
            epoch_loss.push(sum / per_epoch.max(1) as f32);
        }
        bar.finish_and_clear();
        let seconds = start.elapsed().as_secs_f64();
        if let Some(path) = &opts.save {
            tr.save(path).map_err(|e| e.to_string())?;
        }
        let (mut correct, mut evaluated) = (0, 0);
        for chunk in self.test.chunks_exact(b) {
            let mut f = feeds(chunk, image);
            f.extend(tr.model());
            let outs = infer(&f)?;
            let p = outs
                .iter()
                .find(|(n, _)| n == self.score)
                .and_then(|(_, t)| t.as_f32())
                .ok_or("no scores")?;
            for (d, row) in chunk.iter().zip(p.chunks(10)) {
                let best = (0..10).fold(0, |m, k| if row[k] > row[m] { k } else { m });
                correct += usize::from(best == d.label as usize);
                evaluated += 1;
            }
        }
        Ok(TrainReport {
            epoch_loss,
            correct,
            evaluated,
            seconds,
            compile_seconds,
            engine: opts.engine,
            steps: self.total as usize,
        })
    }
}

impl TrainReport {
    /// A human-readable summary.
    pub fn render(&self) -> String {
        let mut s = String::new();
        for (i, l) in self.epoch_loss.iter().enumerate() {
            s += &format!("epoch {}: mean training loss {l:.4}\n", i + 1);
        }
        let compiled = match self.engine {
            Engine::Jit => format!(", compiled in {:.2} s", self.compile_seconds),
            Engine::Interp => String::new(),
        };
        s += &format!(
            "{} training steps in {:.2} s ({}{compiled}); test accuracy {:.1}% ({}/{} held-out digits)\n",
            self.steps,
            self.seconds,
            self.engine,
            100.0 * self.accuracy(),
            self.correct,
            self.evaluated
        );
        s
    }
}
