//! Batches for training: shuffled each epoch, augmented, and prepared on a worker thread
//! while the compiled step runs.
//!
//! # Determinism
//!
//! A batch is a function of the data set, the configuration and its position, never of
//! threads or timing: epoch `e`'s order is [`epoch_order`]`(n, seed, e)` (a Fisher-Yates
//! shuffle driven by the counter-based generator of [`sinter_ir::rng`], so it depends only on
//! `(seed, e)`), and sample `i`'s augmentation in epoch `e` draws from
//! [`sample_key`]`(seed, e, i)` alone. One worker produces the batches in order, so the
//! prefetch depth changes when a batch is made, not what it holds. A run can therefore be
//! reproduced, or resumed at any epoch (`first_epoch`), bit for bit.
//!
//! # Why a bounded prefetch
//!
//! The worker runs ahead of the consumer by at most `prefetch` finished batches in the
//! channel plus the one it is handing over (`std::sync::mpsc::sync_channel`). Some lead hides
//! the cost of gathering and augmenting behind the step; an unbounded lead would only hold
//! memory (a whole epoch of augmented images, if the step is slow) and do work that is
//! thrown away when training stops early. When the channel is full the worker blocks; when
//! the [`Pipeline`] is dropped, the closed channel wakes it and it exits, and the drop joins
//! it, so no thread outlives the pipeline.

use crate::{Augment, DataError, Dataset};
use sinter_ir::{Tensor, rng};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::{JoinHandle, ThreadId};

/// The deepest prefetch [`Pipeline::new`] accepts.
pub const MAX_PREFETCH: usize = 1024;

/// How a [`Pipeline`] batches a data set.
#[derive(Clone, Debug, PartialEq)]
pub struct PipelineConfig {
    /// Samples per batch.
    pub batch_size: usize,
    /// The seed of every shuffle and augmentation.
    pub seed: i64,
    /// Shuffle each epoch (otherwise samples come in data set order, as for evaluation).
    pub shuffle: bool,
    /// Per-sample transforms (default: none).
    pub augment: Augment,
    /// Leave out each epoch's last batch when it is smaller than `batch_size`.
    pub drop_last: bool,
    /// Finished batches the worker may hold ahead of the consumer (default 2, at most
    /// [`MAX_PREFETCH`]).
    pub prefetch: usize,
    /// The first epoch's number (to resume a run: orders and keys depend on it).
    pub first_epoch: usize,
    /// How many epochs to produce (default 1; `usize::MAX` for an endless stream).
    pub epochs: usize,
}

impl PipelineConfig {
    /// Batches of `batch_size` with the defaults: seed 0, shuffled, no augmentation, the
    /// last partial batch kept, prefetch 2, one epoch starting at epoch 0.
    pub fn new(batch_size: usize) -> PipelineConfig {
        PipelineConfig {
            batch_size,
            seed: 0,
            shuffle: true,
            augment: Augment::default(),
            drop_last: false,
            prefetch: 2,
            first_epoch: 0,
            epochs: 1,
        }
    }
}

/// One batch and where it comes from.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    /// The samples, `f32[n, ..sample_shape]` (after augmentation).
    pub x: Tensor,
    /// Their labels, `i64[n]`.
    pub labels: Tensor,
    /// The epoch.
    pub epoch: usize,
    /// The batch's position in its epoch.
    pub index: usize,
    /// Batches in each epoch.
    pub batches_per_epoch: usize,
    /// The data set indices of the samples, in batch order.
    pub indices: Vec<usize>,
    /// The thread that prepared the batch.
    pub worker: ThreadId,
}

/// The order of `n` samples in epoch `epoch`: a permutation that depends only on
/// `(seed, epoch)`.
pub fn epoch_order(n: usize, seed: i64, epoch: usize) -> Vec<usize> {
    let key = rng::key(seed, epoch as i64);
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (rng::bits(key, i as u64) % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    order
}

/// The key sample `index`'s augmentation draws from in epoch `epoch`.
pub fn sample_key(seed: i64, epoch: usize, index: usize) -> u64 {
    // Draw u64::MAX of the epoch's shuffle stream is never a shuffle draw (those are < n).
    let epoch_key = rng::bits(rng::key(seed, epoch as i64), u64::MAX);
    rng::bits(epoch_key, index as u64)
}

/// A stream of batches prepared on a worker thread; see the module docs.
///
/// Iterating yields `Ok(batch)` in order, epoch after epoch; an error in the worker (an
/// inconsistent data set, a panic) comes back as one `Err`, after which the stream ends.
/// Dropping the pipeline stops and joins the worker.
pub struct Pipeline {
    rx: Option<Receiver<Result<Batch, DataError>>>,
    worker: Option<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    produced: Arc<AtomicUsize>,
    sample_shape: Vec<usize>,
    batches_per_epoch: usize,
}

impl Pipeline {
    /// Starts the worker. Fails where the configuration cannot apply to the data (batch size
    /// 0, transforms that do not fit the sample shape); problems in the data themselves are
    /// found by the worker and come back through the iterator.
    pub fn new(
        data: impl Into<Arc<Dataset>>,
        config: PipelineConfig,
    ) -> Result<Pipeline, DataError> {
        let data = data.into();
        let bad = |m: String| DataError::format("data pipeline", m);
        if config.batch_size == 0 {
            return Err(bad("batch size 0".into()));
        }
        // The channel allocates its slots up front.
        if config.prefetch > MAX_PREFETCH {
            return Err(bad(format!(
                "prefetch {} exceeds {MAX_PREFETCH} batches",
                config.prefetch
            )));
        }
        let sample_shape = config
            .augment
            .output_shape(&data.sample_shape)
            .map_err(bad)?;
        let n = data.len();
        let batches_per_epoch = if config.drop_last {
            n / config.batch_size
        } else {
            n.div_ceil(config.batch_size)
        };
        let (tx, rx) = sync_channel(config.prefetch);
        let stop = Arc::new(AtomicBool::new(false));
        let produced = Arc::new(AtomicUsize::new(0));
        let worker = Worker {
            data,
            config,
            sample_shape: sample_shape.clone(),
            batches_per_epoch,
            stop: stop.clone(),
            produced: produced.clone(),
        };
        let handle = std::thread::Builder::new()
            .name("sinter-data".into())
            .spawn(move || worker.run(&tx))
            .map_err(|e| bad(format!("cannot start the worker thread: {e}")))?;
        Ok(Pipeline {
            rx: Some(rx),
            worker: Some(handle),
            stop,
            produced,
            sample_shape,
            batches_per_epoch,
        })
    }

    /// The shape of one sample in the batches (after augmentation).
    pub fn sample_shape(&self) -> &[usize] {
        &self.sample_shape
    }

    /// Batches in each epoch.
    pub fn batches_per_epoch(&self) -> usize {
        self.batches_per_epoch
    }

    /// How many batches the worker has finished so far, handed over or not.
    pub fn produced(&self) -> usize {
        self.produced.load(Ordering::SeqCst)
    }
}

impl Iterator for Pipeline {
    type Item = Result<Batch, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        let rx = self.rx.as_ref()?;
        if let Ok(item) = rx.recv() {
            return Some(item);
        }
        // The worker has finished (or died): report a panic once, then end.
        self.rx = None;
        match self.worker.take()?.join() {
            Ok(()) => None,
            Err(payload) => {
                let message = payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "panicked".into());
                Some(Err(DataError::Worker { message }))
            }
        }
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Closing the channel wakes a worker blocked in `send`.
        self.rx = None;
        if let Some(handle) = self.worker.take() {
            // A panic was the worker's to report through the iterator; nothing is left to do.
            let _ = handle.join();
        }
    }
}

/// What the worker thread owns.
struct Worker {
    data: Arc<Dataset>,
    config: PipelineConfig,
    sample_shape: Vec<usize>,
    batches_per_epoch: usize,
    stop: Arc<AtomicBool>,
    produced: Arc<AtomicUsize>,
}

impl Worker {
    fn run(self, tx: &SyncSender<Result<Batch, DataError>>) {
        if let Err(e) = self.data.check("data set") {
            let _ = tx.send(Err(e));
            return;
        }
        if self.batches_per_epoch == 0 {
            return;
        }
        let last = self.config.first_epoch.saturating_add(self.config.epochs);
        for epoch in self.config.first_epoch..last {
            let order = if self.config.shuffle {
                epoch_order(self.data.len(), self.config.seed, epoch)
            } else {
                (0..self.data.len()).collect()
            };
            for (index, indices) in order
                .chunks(self.config.batch_size)
                .take(self.batches_per_epoch)
                .enumerate()
            {
                if self.stop.load(Ordering::SeqCst) {
                    return;
                }
                let batch = self.batch(epoch, index, indices);
                self.produced.fetch_add(1, Ordering::SeqCst);
                if tx.send(Ok(batch)).is_err() {
                    return;
                }
            }
        }
    }

    fn batch(&self, epoch: usize, index: usize, indices: &[usize]) -> Batch {
        let (x, labels) = if self.config.augment.is_identity() {
            self.data.batch(indices)
        } else {
            let mut x =
                Vec::with_capacity(indices.len() * self.sample_shape.iter().product::<usize>());
            for &i in indices {
                let key = sample_key(self.config.seed, epoch, i);
                x.extend(self.config.augment.apply(
                    self.data.sample(i),
                    &self.data.sample_shape,
                    key,
                ));
            }
            let mut shape = vec![indices.len()];
            shape.extend_from_slice(&self.sample_shape);
            let labels = indices.iter().map(|&i| self.data.labels[i]).collect();
            (
                Tensor::from_f32(&shape, x),
                Tensor::from_i64(&[indices.len()], labels),
            )
        };
        Batch {
            x,
            labels,
            epoch,
            index,
            batches_per_epoch: self.batches_per_epoch,
            indices: indices.to_vec(),
            worker: std::thread::current().id(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Crop;
    use std::time::{Duration, Instant};

    /// `n` samples `[1, 4, 4]` whose pixels encode the sample, labels `i % classes`.
    fn data(n: usize) -> Dataset {
        Dataset {
            x: (0..n * 16).map(|v| (v % 97) as f32 / 97.0 + 0.01).collect(),
            sample_shape: vec![1, 4, 4],
            labels: (0..n as i64).map(|i| i % 3).collect(),
            classes: 3,
        }
    }

    fn augmented(prefetch: usize) -> PipelineConfig {
        PipelineConfig {
            seed: 11,
            augment: Augment {
                resize: Some([6, 6]),
                crop: Some(Crop {
                    padding: 1,
                    size: [5, 5],
                }),
                shift: 1,
                flip: true,
                noise: 0.05,
            },
            prefetch,
            epochs: 2,
            ..PipelineConfig::new(4)
        }
    }

    fn collect(p: Pipeline) -> Vec<Batch> {
        p.map(Result::unwrap).collect()
    }

    fn bits(t: &Tensor) -> Vec<u32> {
        t.as_f32().unwrap().iter().map(|v| v.to_bits()).collect()
    }

    #[test]
    fn batches_are_identical_for_every_prefetch_depth() {
        let d = Arc::new(data(10));
        let runs: Vec<Vec<Batch>> = [0, 1, 4]
            .iter()
            .map(|&k| collect(Pipeline::new(d.clone(), augmented(k)).unwrap()))
            .collect();
        assert_eq!(runs[0].len(), 2 * 3);
        for run in &runs[1..] {
            assert_eq!(run.len(), runs[0].len());
            for (a, b) in run.iter().zip(&runs[0]) {
                assert_eq!(bits(&a.x), bits(&b.x));
                assert_eq!((&a.labels, &a.indices), (&b.labels, &b.indices));
                assert_eq!((a.epoch, a.index), (b.epoch, b.index));
            }
        }
        // And each sample is its transform under the documented key.
        let cfg = augmented(2);
        for b in &runs[0] {
            let x = b.x.as_f32().unwrap();
            assert_eq!(b.x.shape()[1..], [1, 5, 5]);
            for (k, &i) in b.indices.iter().enumerate() {
                let want =
                    cfg.augment
                        .apply(d.sample(i), &d.sample_shape, sample_key(11, b.epoch, i));
                assert_eq!(&x[k * 25..(k + 1) * 25], &want[..]);
            }
        }
    }

    #[test]
    fn every_sample_once_per_epoch_in_a_new_order() {
        let d = data(10);
        let cfg = PipelineConfig {
            epochs: 3,
            seed: 5,
            ..PipelineConfig::new(4)
        };
        let batches = collect(Pipeline::new(d.clone(), cfg).unwrap());
        assert_eq!(batches.len(), 9);
        let mut orders = Vec::new();
        for e in 0..3 {
            let epoch: Vec<&Batch> = batches.iter().filter(|b| b.epoch == e).collect();
            let sizes: Vec<usize> = epoch.iter().map(|b| b.indices.len()).collect();
            assert_eq!(sizes, vec![4, 4, 2]);
            let order: Vec<usize> = epoch.iter().flat_map(|b| b.indices.clone()).collect();
            let mut sorted = order.clone();
            sorted.sort();
            assert_eq!(sorted, (0..10).collect::<Vec<_>>());
            for b in &epoch {
                let (x, y) = d.batch(&b.indices);
                assert_eq!((&b.x, &b.labels), (&x, &y));
            }
            assert_eq!(order, epoch_order(10, 5, e));
            orders.push(order);
        }
        assert_ne!(orders[0], orders[1]);
        assert_ne!(orders[1], orders[2]);
        assert_ne!(epoch_order(10, 5, 0), epoch_order(10, 6, 0));
    }

    #[test]
    fn drop_last_and_no_shuffle() {
        let cfg = PipelineConfig {
            drop_last: true,
            shuffle: false,
            ..PipelineConfig::new(4)
        };
        let p = Pipeline::new(data(10), cfg).unwrap();
        assert_eq!(p.batches_per_epoch(), 2);
        let batches = collect(p);
        let indices: Vec<Vec<usize>> = batches.iter().map(|b| b.indices.clone()).collect();
        assert_eq!(indices, vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7]]);
        let cfg = PipelineConfig {
            drop_last: true,
            epochs: usize::MAX,
            ..PipelineConfig::new(11)
        };
        // No full batch: the stream is empty, not endless.
        assert_eq!(Pipeline::new(data(10), cfg).unwrap().count(), 0);
    }

    /// Waits until `cond` holds; fails after 10 s (the condition is not about timing: it
    /// becomes true once the worker gets to run at all).
    fn wait_for(cond: impl Fn() -> bool, what: &str) {
        let start = Instant::now();
        while !cond() {
            assert!(start.elapsed() < Duration::from_secs(10), "never: {what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn worker_runs_ahead_on_another_thread_by_at_most_the_depth() {
        for depth in [0, 1, 3] {
            let cfg = PipelineConfig {
                prefetch: depth,
                epochs: usize::MAX,
                ..PipelineConfig::new(2)
            };
            let mut p = Pipeline::new(data(40), cfg).unwrap();
            for received in 1..=3 {
                let b = p.next().unwrap().unwrap();
                assert_ne!(b.worker, std::thread::current().id());
                // While this thread only waits, the worker fills the channel and blocks
                // holding one more batch.
                let bound = received + depth + 1;
                wait_for(
                    || p.produced() >= bound,
                    "the worker prepares batches ahead",
                );
                std::thread::sleep(Duration::from_millis(5));
                assert_eq!(p.produced(), bound, "depth {depth}");
            }
        }
    }

    #[test]
    fn dropping_stops_and_joins_the_worker() {
        let d = Arc::new(data(40));
        let cfg = PipelineConfig {
            epochs: usize::MAX,
            ..PipelineConfig::new(3)
        };
        let mut p = Pipeline::new(d.clone(), cfg).unwrap();
        assert!(p.next().unwrap().is_ok());
        assert_eq!(Arc::strong_count(&d), 2, "the worker holds the data");
        drop(p);
        assert_eq!(Arc::strong_count(&d), 1, "the worker has exited");
    }

    #[test]
    fn errors_come_back_through_the_iterator() {
        let mut bad = data(6);
        bad.labels[4] = 7;
        let mut p = Pipeline::new(bad, PipelineConfig::new(2)).unwrap();
        let e = p.next().unwrap().unwrap_err().to_string();
        assert!(
            e.contains("label 7 of sample 4") && e.contains("0..3"),
            "{e}"
        );
        assert!(p.next().is_none());

        let e = Pipeline::new(data(6), PipelineConfig::new(0))
            .err()
            .unwrap();
        assert!(e.to_string().contains("batch size 0"), "{e}");
        let deep = PipelineConfig {
            prefetch: usize::MAX,
            ..PipelineConfig::new(2)
        };
        let e = Pipeline::new(data(6), deep).err().unwrap();
        assert!(e.to_string().contains("exceeds 1024"), "{e}");
        let flat = Dataset {
            x: vec![0.0; 12],
            sample_shape: vec![6],
            labels: vec![0, 1],
            classes: 2,
        };
        let cfg = PipelineConfig {
            augment: Augment {
                flip: true,
                ..Augment::default()
            },
            ..PipelineConfig::new(2)
        };
        let e = Pipeline::new(flat, cfg).err().unwrap();
        assert!(e.to_string().contains("[6]"), "{e}");
    }
}
