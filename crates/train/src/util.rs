//! What the layer-wise procedures share: errors, per-epoch statistics, batching, the
//! compiled graphs that move data up a stack, and supervised fine-tuning.
//!
//! Every number these procedures compute comes out of a compiled graph: a layer's outputs for
//! the next layer ([`sigmoid_layer`]), the fine-tuning steps (autodiff's training graph on the
//! JIT) and the held-out accuracy ([`count_correct`] adds `argmax`, `equal` and a sum to the
//! classifier). The host only picks which samples form a batch.

use sinter_autodiff::{
    AutodiffError, Optimizer, Schedule, TrainConfig, Trainer, inference_graph, training_graph,
};
use sinter_data::Dataset;
use sinter_ir::{DType, Graph, InputKind, IrError, Op, Tensor, TensorData, TensorType, rng};
use sinter_models::BuildError;
use sinter_runtime::{CompileError, CompileOptions, Compiled, Jit, RunError};
use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

/// Why a training procedure failed.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A model graph could not be built.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// A graph the procedure writes itself is ill-typed.
    #[error(transparent)]
    Ir(#[from] IrError),
    /// Building or running a training graph failed.
    #[error(transparent)]
    Autodiff(#[from] AutodiffError),
    /// The JIT could not compile a graph.
    #[error(transparent)]
    Compile(#[from] CompileError),
    /// A compiled graph failed at run time.
    #[error(transparent)]
    Run(#[from] RunError),
    /// An image grid could not be written.
    #[error(transparent)]
    Grid(#[from] crate::grid::GridError),
    /// The configuration does not fit the data.
    #[error("{0}")]
    Config(String),
}

/// One finished epoch of one stage of a procedure: what a progress display shows.
#[derive(Clone, Debug, PartialEq)]
pub struct StageEpoch {
    /// The stage: a layer being pretrained (`rbm1`, `enc2`) or `fine-tune`.
    pub stage: String,
    /// The epoch within the stage, from 0.
    pub epoch: usize,
    /// The mean over the epoch's batches of the step's loss: the reconstruction error while
    /// pretraining, the cross-entropy while fine-tuning.
    pub loss: f32,
    /// Wall-clock seconds the epoch took.
    pub seconds: f64,
}

/// What a layer-wise procedure (DBN, stacked autoencoder) measured and learned.
#[derive(Clone, Debug)]
pub struct StackReport {
    /// Per pretrained layer, lowest first: its epochs.
    pub pretrain: Vec<Vec<StageEpoch>>,
    /// The fine-tuning epochs.
    pub fine_tune: Vec<StageEpoch>,
    /// Held-out accuracy of the fine-tuned classifier, in `[0, 1]`.
    pub accuracy: f32,
    /// The fine-tuned classifier's parameters, by name.
    pub model: BTreeMap<String, Tensor>,
}

/// Supervised fine-tuning of a pretrained stack with a classifier on top.
#[derive(Clone, Debug, PartialEq)]
pub struct FineTuneConfig {
    /// Passes over the training set.
    pub epochs: usize,
    /// Batch size.
    pub batch: usize,
    /// Adam's learning rate (constant).
    pub lr: f32,
    /// Seed of the classifier's initialisation and of the batch order.
    pub seed: i64,
}

impl Default for FineTuneConfig {
    /// Settings that fine-tune the digits' stacks in well under a second: 20 epochs of Adam
    /// at 3e-3, batch 32.
    fn default() -> FineTuneConfig {
        FineTuneConfig {
            epochs: 20,
            batch: 32,
            lr: 3e-3,
            seed: 0,
        }
    }
}

/// Parameters (or any tensors) by name.
pub type Params = HashMap<String, Tensor>;

/// The progress callback of the procedures: called after every epoch of every stage.
pub type Progress<'a> = &'a mut dyn FnMut(&StageEpoch);

/// What a derived seed is for ([`derive_seed`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// The batch order.
    Shuffle = 1,
    /// The samples of contrastive divergence.
    Gibbs = 2,
}

/// A seed for `purpose` derived from the user's `seed`, so that the batch order, the samples
/// and the initialisation (which takes `seed` itself) draw from unrelated streams.
pub(crate) fn derive_seed(seed: i64, purpose: Purpose) -> i64 {
    rng::mix64(rng::mix64(seed as u64) ^ purpose as u64) as i64
}

/// The batches of one epoch: `len / batch` full batches of a shuffled order (the remainder
/// waits for a later epoch's shuffle). The order is a pure function of `(seed, epoch)`.
pub fn epoch_batches(len: usize, batch: usize, seed: i64, epoch: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..len).collect();
    let key = rng::key(derive_seed(seed, Purpose::Shuffle), epoch as i64);
    for i in (1..len).rev() {
        let j = ((rng::uniform(key, i as u64) * (i + 1) as f32) as usize).min(i);
        order.swap(i, j);
    }
    order
        .chunks_exact(batch.max(1))
        .map(<[usize]>::to_vec)
        .collect()
}

/// The samples at `indices` flattened to `f32[n, sample_len]`, with their labels.
pub fn flat_batch(data: &Dataset, indices: &[usize]) -> (Tensor, Tensor) {
    let (x, labels) = data.batch(indices);
    let x = x
        .reshaped(&[indices.len(), data.sample_len()])
        .expect("a batch holds `sample_len` values per sample");
    (x, labels)
}

/// Checks that `data` has at least one batch of `batch` samples.
pub(crate) fn check_batch(data: &Dataset, batch: usize, what: &str) -> Result<(), TrainError> {
    if batch == 0 || data.len() < batch {
        return Err(TrainError::Config(format!(
            "{what}: batch size {batch} does not fit {} samples",
            data.len()
        )));
    }
    Ok(())
}

/// `x -> sigmoid(x @ <name>.w + <name>.b)` for `x: f32[batch, inputs]`, the weights as data
/// inputs, the result called `hidden`: a trained layer's up-pass, to feed the next layer.
pub fn sigmoid_layer(
    name: &str,
    batch: usize,
    inputs: usize,
    outputs: usize,
) -> Result<Graph, TrainError> {
    let mut g = Graph::new(name);
    let f = |s: &[usize]| TensorType::f32(s);
    let x = g.add_input("x", f(&[batch, inputs]), InputKind::Data)?;
    let w = g.add_input(&format!("{name}.w"), f(&[inputs, outputs]), InputKind::Data)?;
    let b = g.add_input(&format!("{name}.b"), f(&[outputs]), InputKind::Data)?;
    let z = g.add_op(&["z"], gemm(false, false), &[x, w, b])?[0];
    let h = g.add_op(&["hidden"], Op::Sigmoid {}, &[z])?[0];
    g.set_outputs(&[h])?;
    g.verify()?;
    Ok(g)
}

/// The most samples one compiled run over a whole data set takes ([`up_pass`], scoring): the
/// arena holds one chunk's activations, not the set's.
pub const CHUNK: usize = 512;

/// The outputs of `build(n)` run over all of `data` in consecutive chunks of at most
/// [`CHUNK`] samples, each fed as `x` (flattened) and, where the graph takes it, `labels`;
/// every other input comes from `extra` by name. At most two graphs are compiled (the full
/// chunk and the remainder).
pub(crate) fn over_chunks(
    data: &Dataset,
    build: &dyn Fn(usize) -> Result<Graph, TrainError>,
    extra: &Params,
) -> Result<Vec<Vec<(String, Tensor)>>, TrainError> {
    let mut compiled: Vec<(usize, Compiled)> = Vec::new();
    let mut outs = Vec::new();
    let mut start = 0;
    while start < data.len() {
        let n = CHUNK.min(data.len() - start);
        let k = match compiled.iter().position(|(m, _)| *m == n) {
            Some(k) => k,
            None => {
                compiled.push((n, Compiled::new(&build(n)?, CompileOptions::default())?));
                compiled.len() - 1
            }
        };
        let c = &compiled[k].1;
        let idx: Vec<usize> = (start..start + n).collect();
        let (x, labels) = flat_batch(data, &idx);
        let mut feeds = Params::new();
        for (name, _) in c.inputs() {
            let t = match name.as_str() {
                "x" => x.clone(),
                "labels" => labels.clone(),
                _ => extra
                    .get(name)
                    .ok_or_else(|| TrainError::Config(format!("no value for `%{name}`")))?
                    .clone(),
            };
            feeds.insert(name.clone(), t);
        }
        outs.push(c.run(&feeds)?);
        start += n;
    }
    Ok(outs)
}

/// `data` pushed through the layer `name` (see [`sigmoid_layer`]) with the weights in
/// `params`: a data set of the hidden probabilities with the same labels, computed by the
/// compiled layer in chunks of [`CHUNK`] samples.
pub fn up_pass(data: &Dataset, name: &str, params: &Params) -> Result<Dataset, TrainError> {
    let wname = format!("{name}.w");
    let w = params
        .get(&wname)
        .ok_or_else(|| TrainError::Config(format!("no parameter `{wname}`")))?;
    let (inputs, outputs) = match w.shape() {
        [i, o] => (*i, *o),
        s => return Err(TrainError::Config(format!("`{wname}` has shape {s:?}"))),
    };
    let build = |n| sigmoid_layer(name, n, inputs, outputs);
    let mut x = Vec::with_capacity(data.len() * outputs);
    for outs in over_chunks(data, &build, params)? {
        match outs.into_iter().next().map(|(_, t)| t.into_data()) {
            Some(TensorData::F32(v)) => x.extend(v),
            _ => return Err(TrainError::Config("the up-pass gave no f32 output".into())),
        }
    }
    Ok(Dataset {
        x,
        sample_shape: vec![outputs],
        labels: data.labels.clone(),
        classes: data.classes,
    })
}

/// `op(a) @ op(b) + c` as a `gemm`.
pub(crate) fn gemm(trans_a: bool, trans_b: bool) -> Op {
    Op::Gemm {
        trans_a,
        trans_b,
        alpha: 1.0.into(),
        beta: 1.0.into(),
    }
}

/// The classifier `forward` (inputs `x`, `labels`, output `logits`) in inference form,
/// outputting instead the number of correct predictions `correct: f32[]`: `argmax` of the
/// logits, `equal` to the labels, summed.
pub fn count_correct(forward: &Graph) -> Result<Graph, TrainError> {
    let mut g = inference_graph(forward)?;
    let missing = |n: &str| TrainError::Config(format!("the classifier has no `%{n}`"));
    let logits = g.find("logits").ok_or_else(|| missing("logits"))?;
    let labels = g.find("labels").ok_or_else(|| missing("labels"))?;
    let argmax = Op::Argmax {
        axis: 1,
        keepdims: false,
    };
    let pred = g.add_op(&["correct.pred"], argmax, &[logits])?[0];
    let hit = g.add_op(&["correct.hit"], Op::Equal {}, &[pred, labels])?[0];
    let cast = Op::Cast { to: DType::F32 };
    let hit = g.add_op(&["correct.f32"], cast, &[hit])?[0];
    let sum = Op::ReduceSum {
        axes: vec![],
        keepdims: false,
    };
    let correct = g.add_op(&["correct"], sum, &[hit])?[0];
    g.set_outputs(&[correct])?;
    g.verify()?;
    Ok(g)
}

/// Trains the classifier `build(batch)` (inputs `x`, `labels`; outputs `loss`, `logits`) with
/// Adam on the JIT, starting from `init` where it names a parameter and from
/// [`sinter_autodiff::init_params`] (Xavier) elsewhere; then scores `test` with
/// `build` in chunks ([`CHUNK`]). Returns the report with no pretraining epochs.
pub(crate) fn fine_tune(
    build: &dyn Fn(usize) -> Result<Graph, BuildError>,
    init: &Params,
    train: &Dataset,
    test: &Dataset,
    cfg: &FineTuneConfig,
    progress: Progress<'_>,
) -> Result<StackReport, TrainError> {
    check_batch(train, cfg.batch, "fine-tuning")?;
    let forward = build(cfg.batch)?;
    let loss = forward
        .find("loss")
        .ok_or_else(|| TrainError::Config("the classifier has no `%loss`".into()))?;
    let tg = training_graph(&forward, loss, &TrainConfig::new(Optimizer::adam()))?;
    let mut params =
        sinter_autodiff::init_params(&forward, sinter_autodiff::Init::XavierUniform, cfg.seed);
    for (name, t) in params.iter_mut() {
        if let Some(v) = init.get(name) {
            *t = v.clone();
        }
    }
    let mut tr = Trainer::new(Jit::default(), tg, params, Schedule::Constant(cfg.lr))?;
    let mut stats = Vec::new();
    for epoch in 0..cfg.epochs {
        let t0 = Instant::now();
        let batches = epoch_batches(train.len(), cfg.batch, cfg.seed, epoch);
        let mut sum = 0.0;
        for idx in &batches {
            let (x, labels) = flat_batch(train, idx);
            let feeds = HashMap::from([("x".to_string(), x), ("labels".to_string(), labels)]);
            sum += tr.step(&feeds)?;
        }
        let s = StageEpoch {
            stage: "fine-tune".into(),
            epoch,
            loss: sum / batches.len() as f32,
            seconds: t0.elapsed().as_secs_f64(),
        };
        progress(&s);
        stats.push(s);
    }
    let model = tr.model();
    let eval = |n| -> Result<Graph, TrainError> { count_correct(&build(n)?) };
    let params: Params = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let mut correct = 0.0;
    for outs in over_chunks(test, &eval, &params)? {
        correct += outs[0].1.as_f32().map_or(0.0, |v| v[0]);
    }
    Ok(StackReport {
        pretrain: Vec::new(),
        fine_tune: stats,
        accuracy: correct / test.len().max(1) as f32,
        model,
    })
}
