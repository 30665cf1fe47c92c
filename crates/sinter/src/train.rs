//! Training a classifier graph on a data set: the engine of `sinter train` and `sinter demo`.
//!
//! Any graph with a data input `x: f32[B, ..]`, integer `labels: i64[B]`, a scalar output
//! `loss` and an output of shape `[B, classes]` (probabilities or logits) can be trained here:
//! autodiff turns it into one training-step graph (optionally optimised by the rewriter), which
//! an [`Engine`] runs step after step: compiled once by the JIT (the default), or evaluated by
//! the reference interpreter. Batches come from a [`Pipeline`] that shuffles, augments and
//! prefetches on its own thread while the step runs. After each epoch the held-out set (if
//! any) is scored by the inference graph on the same engine, every sample of it (the last
//! partial batch is padded and the padding not counted).
//!
//! The data adapts to the graph's input where that is unambiguous: samples with as many
//! values as `x` wants are reshaped, gray images become three-channel ones by repetition, and
//! images of another size are resized (bilinear) on the pipeline's thread. Anything else is an
//! error naming both shapes.

use sinter_autodiff::{
    Backend, Init, Interpret, Optimizer, Schedule, TrainConfig, Trainer, TrainingGraph,
    inference_graph, init_params, training_graph,
};
use sinter_data::{Augment, Dataset, Pipeline, PipelineConfig};
use sinter_ir::{Graph, Tensor};
use sinter_runtime::{CompileOptions, Compiled, Jit};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
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
    /// Passes over the training set.
    pub epochs: usize,
    /// Peak learning rate (cosine decay to 1% of it).
    pub lr: f32,
    /// `adam` or `sgd` (momentum 0.9).
    pub optimizer: String,
    /// Seed of the initialisation, the shuffle and the augmentation.
    pub seed: i64,
    /// Where to save the trained parameters (safetensors), if anywhere.
    pub save: Option<PathBuf>,
    /// Show a progress bar per epoch on stderr (hidden anyway when stderr is not a terminal).
    pub progress: bool,
    /// What runs the steps.
    pub engine: Engine,
    /// Threads of the GEMM driver (JIT engine).
    pub threads: usize,
    /// Training-time augmentation (after any resize the graph's input needs).
    pub augment: Augment,
    /// Optimise the training-step graph by equality saturation before compiling it.
    pub optimize: bool,
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
            threads: 1,
            augment: Augment::default(),
            optimize: false,
        }
    }
}

/// A training set and, if there is one, a held-out set.
#[derive(Clone, Debug)]
pub struct Data {
    /// Where it came from, for messages (`embedded digits`, a path).
    pub name: String,
    /// The training samples.
    pub train: Dataset,
    /// The held-out samples.
    pub test: Option<Dataset>,
}

impl Data {
    /// The embedded UCI digits with the fixed split (1,437 train, 360 held out).
    pub fn digits() -> Result<Data, String> {
        let (train, test) = sinter_data::digits_split().map_err(|e| e.to_string())?;
        Ok(Data {
            name: "embedded UCI digits".into(),
            train,
            test: Some(test),
        })
    }

    /// A data set a user has (`.npz`, `.npy` pair, MNIST or CIFAR-10 files, by
    /// `sinter_data::load`), with its test part when the files have one.
    pub fn load(path: &std::path::Path) -> Result<Data, String> {
        let train = sinter_data::load(path).map_err(|e| e.to_string())?;
        let test = sinter_data::load_test(path).map_err(|e| e.to_string())?;
        Ok(Data {
            name: path.display().to_string(),
            train,
            test,
        })
    }
}

/// What training measured.
#[derive(Clone, Debug)]
pub struct TrainReport {
    /// Mean training loss of each epoch.
    pub epoch_loss: Vec<f32>,
    /// The loss of every training step.
    pub step_loss: Vec<f32>,
    /// Held-out accuracy after each epoch (empty without a held-out set).
    pub epoch_accuracy: Vec<f32>,
    /// Correct predictions on the held-out samples after the last epoch.
    pub correct: usize,
    /// Held-out samples evaluated.
    pub evaluated: usize,
    /// Wall-clock seconds of the training steps (evaluation excluded).
    pub seconds: f64,
    /// Wall-clock seconds spent compiling the step (0 for the interpreter).
    pub compile_seconds: f64,
    /// What ran the steps.
    pub engine: Engine,
    /// Training steps run.
    pub steps: usize,
    /// Samples per training step.
    pub batch: usize,
    /// The optimiser's report on the training step, when it ran.
    pub rewrite: Option<sinter_rewrite::Report>,
}

impl TrainReport {
    /// Held-out accuracy in `[0, 1]` after the last epoch.
    pub fn accuracy(&self) -> f32 {
        self.correct as f32 / self.evaluated.max(1) as f32
    }
}

/// The graph's batch size, per-sample input shape and number of classes, checked.
fn layout(g: &Graph) -> Result<(usize, Vec<usize>), String> {
    let x = g
        .find("x")
        .ok_or("the graph needs a data input `%x` (f32[B, ..])")?;
    let labels = g
        .find("labels")
        .ok_or("the graph needs a data input `%labels` (i64[B])")?;
    let (tx, tl) = (g.ty(x), g.ty(labels));
    let b = tx.shape.first().copied().unwrap_or(0);
    if tl.to_string() != format!("i64[{b}]") {
        return Err(format!("`%labels` is {tl}: expected i64[{b}]"));
    }
    if b == 0 || tx.rank() < 2 {
        return Err(format!("`%x` is {tx}: expected f32[B, ..] with B > 0"));
    }
    Ok((b, tx.shape[1..].to_vec()))
}

/// The name of the `[B, classes]` output used for accuracy (`probs`, `logits`, or the first).
fn score_output(g: &Graph, b: usize, classes: usize) -> Result<String, String> {
    let want = format!("f32[{b},{classes}]");
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
            format!(
                "the graph needs an output of type {want} (probabilities or logits for the \
                 data's {classes} classes)"
            )
        })
}

/// Makes `d`'s samples fit `want` (the graph's per-sample input shape): returns the data set
/// (reshaped or with channels repeated) and the resize the pipeline must apply, if any.
fn adapt(d: &Dataset, want: &[usize]) -> Result<(Dataset, Option<[usize; 2]>), String> {
    let have = &d.sample_shape;
    let numel: usize = want.iter().product();
    if have.as_slice() == want {
        return Ok((d.clone(), None));
    }
    if d.sample_len() == numel {
        let r = d.clone().reshape_samples(want).map_err(|e| e.to_string())?;
        return Ok((r, None));
    }
    let mismatch = || {
        format!(
            "the model's input `%x` takes samples of shape {want:?}; the data's are {have:?} \
             (they can be reshaped to the same number of values, resized as images with the \
             same channels, or have one gray channel repeated)"
        )
    };
    let (&[c, h, w], &[wc, wh, ww]) = (have.as_slice(), want) else {
        return Err(mismatch());
    };
    let mut d = d.clone();
    if c != wc {
        if c != 1 {
            return Err(mismatch());
        }
        // Gray to `wc` channels: each sample's plane repeated.
        let plane = h * w;
        let mut x = Vec::with_capacity(d.x.len() * wc);
        for s in d.x.chunks(plane) {
            for _ in 0..wc {
                x.extend_from_slice(s);
            }
        }
        d.x = x;
        d.sample_shape = vec![wc, h, w];
    }
    Ok((d, ((h, w) != (wh, ww)).then_some([wh, ww])))
}

/// Trains `g` on the embedded digits and evaluates it on the held-out images.
pub fn train_digits(g: &Graph, opts: &TrainOptions) -> Result<TrainReport, String> {
    train(g, &Data::digits()?, opts)
}

/// Trains `g` on `data` and evaluates it on the held-out part.
pub fn train(g: &Graph, data: &Data, opts: &TrainOptions) -> Result<TrainReport, String> {
    let (b, sample) = layout(g)?;
    let loss = g
        .find("loss")
        .ok_or("the graph needs a scalar output `%loss`")?;
    if !g.outputs().contains(&loss) || g.ty(loss).rank() != 0 {
        return Err("`%loss` must be a scalar graph output".into());
    }
    let classes = data.train.classes;
    let score = score_output(g, b, classes)?;
    if data.train.len() < b {
        return Err(format!(
            "{}: {} training samples, fewer than one batch of {b}",
            data.name,
            data.train.len()
        ));
    }
    let (train_set, resize) = adapt(&data.train, &sample)?;
    let test_set = data
        .test
        .as_ref()
        .map(|t| adapt(t, &sample).map(|(d, _)| d))
        .transpose()?;
    let optimizer = match opts.optimizer.as_str() {
        "adam" => Optimizer::adam(),
        "sgd" => Optimizer::sgd(0.9),
        o => return Err(format!("unknown optimizer `{o}` (use adam or sgd)")),
    };
    let mut tg =
        training_graph(g, loss, &TrainConfig::new(optimizer)).map_err(|e| e.to_string())?;
    let rewrite = if opts.optimize {
        let (opt, report) =
            sinter_rewrite::optimize(&tg.graph, &sinter_rewrite::Options::default())
                .map_err(|e| format!("optimising the training step: {e}"))?;
        tg.graph = opt;
        Some(report)
    } else {
        None
    };
    let per_epoch = train_set.len() / b;
    let total = (opts.epochs * per_epoch) as u64;
    let schedule = Schedule::Cosine {
        base: opts.lr,
        min: opts.lr * 0.01,
        steps: total.max(1),
    };
    let params = init_params(g, Init::HeUniform, opts.seed);
    let inf = inference_graph(g).map_err(|e| e.to_string())?;
    let train_aug = Augment {
        resize,
        ..opts.augment.clone()
    };
    let test_aug = Augment {
        resize,
        ..Augment::default()
    };
    let run = Run {
        opts,
        train: Arc::new(train_set),
        test: test_set.map(Arc::new),
        train_aug,
        test_aug,
        b,
        score: &score,
        total,
        rewrite,
    };
    let mut copts = CompileOptions::default();
    copts.lower.threads = opts.threads.max(1);
    match opts.engine {
        Engine::Jit => {
            let c = Compiled::new(&inf, copts).map_err(|e| e.to_string())?;
            run.go(Jit::new(copts), tg, params, schedule, |f| {
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
    train: Arc<Dataset>,
    test: Option<Arc<Dataset>>,
    train_aug: Augment,
    test_aug: Augment,
    b: usize,
    score: &'a str,
    total: u64,
    rewrite: Option<sinter_rewrite::Report>,
}

type Infer<'f> = dyn Fn(&HashMap<String, Tensor>) -> Result<Vec<(String, Tensor)>, String> + 'f;

impl Run<'_> {
    /// Trains on `backend`, scoring the held-out set with `infer` (the inference graph) after
    /// each epoch.
    fn go<B: Backend>(
        self,
        backend: B,
        tg: TrainingGraph,
        params: HashMap<String, Tensor>,
        schedule: Schedule,
        infer: impl Fn(&HashMap<String, Tensor>) -> Result<Vec<(String, Tensor)>, String>,
    ) -> Result<TrainReport, String> {
        let (opts, b) = (self.opts, self.b);
        let t0 = Instant::now();
        let mut tr = Trainer::new(backend, tg, params, schedule).map_err(|e| e.to_string())?;
        let compile_seconds = match opts.engine {
            Engine::Jit => t0.elapsed().as_secs_f64(),
            Engine::Interp => 0.0,
        };
        let per_epoch = self.train.len() / b;
        let mut cfg = PipelineConfig::new(b);
        cfg.seed = opts.seed;
        cfg.augment = self.train_aug.clone();
        cfg.drop_last = true;
        cfg.epochs = opts.epochs;
        let mut batches = Pipeline::new(self.train.clone(), cfg).map_err(|e| e.to_string())?;
        let style =
            indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} steps, {msg}")
                .map_err(|e| e.to_string())?
                .progress_chars("=> ");
        let mut seconds = 0.0;
        let mut epoch_loss = Vec::new();
        let mut step_loss = Vec::new();
        let mut epoch_accuracy = Vec::new();
        let (mut correct, mut evaluated) = (0, 0);
        for epoch in 0..opts.epochs {
            let bar = if opts.progress {
                indicatif::ProgressBar::new(per_epoch as u64)
            } else {
                indicatif::ProgressBar::hidden()
            };
            bar.set_style(style.clone());
            bar.set_prefix(format!("epoch {}/{}", epoch + 1, opts.epochs));
            let start = Instant::now();
            let mut sum = 0.0;
            for s in 0..per_epoch {
                let batch = batches
                    .next()
                    .ok_or("the data pipeline ended early")?
                    .map_err(|e| e.to_string())?;
                let feeds = HashMap::from([
                    ("x".to_string(), batch.x),
                    ("labels".to_string(), batch.labels),
                ]);
                let l = tr.step(&feeds).map_err(|e| e.to_string())?;
                if !l.is_finite() {
                    return Err(format!(
                        "the training loss became {l} at epoch {}, step {} (try a lower --lr)",
                        epoch + 1,
                        s + 1
                    ));
                }
                sum += l;
                step_loss.push(l);
                let rate = ((s + 1) * b) as f64 / start.elapsed().as_secs_f64().max(1e-9);
                bar.set_message(format!("loss {l:.4}, {rate:.0} samples/s"));
                bar.inc(1);
            }
            let epoch_seconds = start.elapsed().as_secs_f64();
            seconds += epoch_seconds;
            let mean = sum / per_epoch.max(1) as f32;
            epoch_loss.push(mean);
            let rate = (per_epoch * b) as f64 / epoch_seconds.max(1e-9);
            let mut msg = format!("mean loss {mean:.4}, {rate:.0} samples/s");
            if let Some(test) = &self.test {
                (correct, evaluated) = self.evaluate(test, &tr.model(), &infer)?;
                let acc = correct as f32 / evaluated.max(1) as f32;
                epoch_accuracy.push(acc);
                msg += &format!(", held-out accuracy {:.1}%", 100.0 * acc);
            }
            bar.finish_with_message(msg);
        }
        if let Some(path) = &opts.save {
            tr.save(path).map_err(|e| e.to_string())?;
        }
        Ok(TrainReport {
            epoch_loss,
            step_loss,
            epoch_accuracy,
            correct,
            evaluated,
            seconds,
            compile_seconds,
            engine: opts.engine,
            steps: self.total as usize,
            batch: b,
            rewrite: self.rewrite,
        })
    }

    /// Scores every held-out sample: `(correct, evaluated)`.
    fn evaluate(
        &self,
        test: &Arc<Dataset>,
        model: &std::collections::BTreeMap<String, Tensor>,
        infer: &Infer<'_>,
    ) -> Result<(usize, usize), String> {
        let b = self.b;
        let mut cfg = PipelineConfig::new(b);
        cfg.shuffle = false;
        cfg.augment = self.test_aug.clone();
        let (mut correct, mut evaluated) = (0, 0);
        for batch in Pipeline::new(test.clone(), cfg).map_err(|e| e.to_string())? {
            let batch = batch.map_err(|e| e.to_string())?;
            let n = batch.indices.len();
            let (x, labels) = (pad_batch(&batch.x, b)?, pad_batch(&batch.labels, b)?);
            let mut f = HashMap::from([("x".to_string(), x), ("labels".to_string(), labels)]);
            f.extend(model.iter().map(|(k, v)| (k.clone(), v.clone())));
            let outs = infer(&f)?;
            let p = outs
                .iter()
                .find(|(name, _)| name == self.score)
                .and_then(|(_, t)| t.as_f32())
                .ok_or("the inference graph lost its score output")?;
            let classes = p.len() / b;
            let want = batch.labels.as_i64().ok_or("labels are not i64")?;
            for (row, &label) in p.chunks(classes).zip(want).take(n) {
                let best = (0..classes).fold(0, |m, k| if row[k] > row[m] { k } else { m });
                correct += usize::from(best as i64 == label);
                evaluated += 1;
            }
        }
        Ok((correct, evaluated))
    }
}

/// `t` (a batch along axis 0) padded to `b` rows by repeating its last row.
fn pad_batch(t: &Tensor, b: usize) -> Result<Tensor, String> {
    let n = t.shape().first().copied().unwrap_or(0);
    if n == b {
        return Ok(t.clone());
    }
    if n == 0 || n > b {
        return Err(format!(
            "a held-out batch of {n} rows for a model batch of {b}"
        ));
    }
    let mut shape = t.shape().to_vec();
    shape[0] = b;
    let row = t.numel() / n;
    Ok(match (t.as_f32(), t.as_i64()) {
        (Some(v), _) => {
            let mut v = v.to_vec();
            let last = v[(n - 1) * row..].to_vec();
            for _ in n..b {
                v.extend_from_slice(&last);
            }
            Tensor::from_f32(&shape, v)
        }
        (None, Some(v)) => {
            let mut v = v.to_vec();
            let last = v[(n - 1) * row..].to_vec();
            for _ in n..b {
                v.extend_from_slice(&last);
            }
            Tensor::from_i64(&shape, v)
        }
        (None, None) => return Err("a held-out batch of booleans".into()),
    })
}

impl TrainReport {
    /// A human-readable summary.
    pub fn render(&self) -> String {
        let mut s = String::new();
        for (i, l) in self.epoch_loss.iter().enumerate() {
            s += &format!("epoch {}: mean training loss {l:.4}", i + 1);
            if let Some(a) = self.epoch_accuracy.get(i) {
                s += &format!(", held-out accuracy {:.1}%", 100.0 * a);
            }
            s += "\n";
        }
        let compiled = match self.engine {
            Engine::Jit => format!(", compiled in {:.2} s", self.compile_seconds),
            Engine::Interp => String::new(),
        };
        let rate = (self.steps * self.batch) as f64 / self.seconds.max(1e-9);
        s += &format!(
            "{} training steps of {} in {:.2} s ({rate:.0} samples/s, {}{compiled})",
            self.steps, self.batch, self.seconds, self.engine,
        );
        if self.evaluated > 0 {
            s += &format!(
                "; test accuracy {:.1}% ({}/{} held out)",
                100.0 * self.accuracy(),
                self.correct,
                self.evaluated
            );
        }
        s += "\n";
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn images(c: usize, h: usize, w: usize) -> Dataset {
        let n = 3;
        Dataset {
            x: (0..n * c * h * w).map(|i| i as f32).collect(),
            sample_shape: vec![c, h, w],
            labels: vec![0, 1, 0],
            classes: 2,
        }
    }

    #[test]
    fn data_adapts_to_the_input_or_says_why_not() {
        let d = images(1, 8, 8);
        let (same, r) = adapt(&d, &[1, 8, 8]).unwrap();
        assert_eq!((same, r), (d.clone(), None));
        let (flat, r) = adapt(&d, &[64]).unwrap();
        assert_eq!((flat.sample_shape.as_slice(), r), (&[64][..], None));
        assert_eq!(flat.x, d.x);
        let (big, r) = adapt(&d, &[1, 32, 32]).unwrap();
        assert_eq!(
            (big.sample_shape.as_slice(), r),
            (&[1, 8, 8][..], Some([32, 32]))
        );
        // Gray to three channels: sample 1's plane three times over.
        let (rgb, r) = adapt(&d, &[3, 16, 16]).unwrap();
        assert_eq!(r, Some([16, 16]));
        assert_eq!(rgb.sample_shape, [3, 8, 8]);
        assert_eq!(rgb.sample(1)[..64], d.sample(1)[..]);
        assert_eq!(rgb.sample(1)[128..], d.sample(1)[..]);
        let e = adapt(&images(2, 8, 8), &[3, 8, 8]).unwrap_err();
        assert!(e.contains("[3, 8, 8]") && e.contains("[2, 8, 8]"), "{e}");
        let e = adapt(&d, &[10]).unwrap_err();
        assert!(e.contains("[10]") && e.contains("[1, 8, 8]"), "{e}");
    }

    #[test]
    fn held_out_batches_are_padded_with_their_last_row() {
        let t = Tensor::from_i64(&[2], vec![4, 7]);
        assert_eq!(pad_batch(&t, 4).unwrap().as_i64().unwrap(), [4, 7, 7, 7]);
        let t = Tensor::from_f32(&[1, 2], vec![1.0, 2.0]);
        let p = pad_batch(&t, 2).unwrap();
        assert_eq!(
            (p.shape(), p.as_f32().unwrap()),
            (&[2, 2][..], &[1.0, 2.0, 1.0, 2.0][..])
        );
        assert!(pad_batch(&t, 0).is_err());
    }
}
