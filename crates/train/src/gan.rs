//! Adversarial training of the zoo's DCGAN pair, every step compiled by the JIT.
//!
//! A GAN step is two optimisation problems over two parameter sets, which a single training
//! graph cannot express: a training graph updates *every* parameter it differentiates. So
//! there are two training graphs and two [`Trainer`]s, tied together by parameter names
//! (`g.*` for the generator, `d.*` for the discriminator; see
//! [`sinter_models::dcgan_generator_step`]):
//!
//! 1. **Discriminator step.** The generator (compiled alone, batch norm on batch statistics as
//!    in training) turns noise `z` into a fake batch; the discriminator's training graph,
//!    built for `2B` images, sees the `B` real images labelled 1 followed by the `B` fakes
//!    labelled 0 and takes one Adam step on the mean binary cross-entropy with logits. One
//!    step on the concatenated batch is the PyTorch DCGAN tutorial's two backward passes
//!    and one update, up to a factor of 2 in the gradient, which Adam's normalisation all but
//!    removes.
//! 2. **Generator step.** The generator-step graph runs `D(G(z))` with the discriminator's
//!    weights as *data* inputs, so its training graph updates only `g.*`; its loss is the
//!    non-saturating `bce_with_logits(D(G(z)), 1)`. The discriminator's freshly updated
//!    weights are fed in with `z` (the same `z` as step 1), read from the discriminator's
//!    trainer: nothing is copied back, because this trainer never owns them.
//!
//! The generator's parameters live in the generator-step trainer; the stand-alone generator
//! reads them from there at each call. Its batch-norm running statistics are kept by that
//! trainer too, but sampling uses batch statistics, as the tutorial does (its generator is
//! never put in eval mode), so a fixed `z` batch gives a fixed picture.
//!
//! The defaults are the DCGAN paper's: Adam with lr 2e-4 and beta1 0.5 (the paper found
//! that the usual 0.9 made training oscillate), weights drawn from N(0, 0.02), batch-norm
//! scales 1. Real images come from a [`Dataset`] of `[channels, size, size]` samples in
//! `[0, 1]`, mapped to the generator's `tanh` range `[-1, 1]`; they are drawn in a seeded
//! shuffled order, epoch after epoch (the last partial batch of an epoch is dropped). The
//! noise is standard normal from [`sinter_ir::rng`], keyed by the seed and the step, so a run
//! is reproducible.
//!
//! The networks take any size the zoo's DCGAN does (a power of two >= 8).
//! [`GanConfig::digits`] is sized for the 8x8 digits as they are: upsampled to 16x16
//! (`sinter_data::augment::resize_bilinear`, then `model.size = 16`), 400 steps took 7 times
//! as long on a 2-core machine and gave no better samples.
//!
//! Progress is reported through a callback per step ([`GanStep`]); nothing is printed.

use crate::TrainError;
use crate::grid::{GridLayout, PixelRange, write_grid};
use sinter_autodiff::trainer::save_tensors;
use sinter_autodiff::{
    Init, Optimizer, Schedule, TrainConfig, Trainer, init_params, training_graph,
};
use sinter_data::Dataset;
use sinter_ir::{Graph, Tensor, rng};
use sinter_models::{
    DcganConfig, Mode, dcgan_discriminator, dcgan_generator, dcgan_generator_step,
};
use sinter_runtime::{CompileOptions, Compiled, Jit};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// How to train a GAN; see the [module docs](self).
#[derive(Clone, Debug, PartialEq)]
pub struct GanConfig {
    /// The networks' sizes and the batch size `B` (its `mode` is ignored: training uses
    /// batch statistics).
    pub model: DcganConfig,
    /// Adam's learning rate, both players.
    pub lr: f32,
    /// Adam's first-moment decay, both players.
    pub beta1: f32,
    /// Standard deviation of the initial weights (mean 0).
    pub init_std: f32,
    /// Seed of the initialisation, the noise and the order of the real images.
    pub seed: i64,
    /// Steps [`train_gan`] takes.
    pub steps: usize,
}

impl GanConfig {
    /// The paper's optimiser and initialisation for `model`; seed 0, 1,000 steps.
    pub fn new(model: DcganConfig) -> GanConfig {
        GanConfig {
            model,
            lr: 2e-4,
            beta1: 0.5,
            init_std: 0.02,
            seed: 0,
            steps: 1000,
        }
    }

    /// A DCGAN for the 8x8 digits: latent 32, widths 32 and 64, batch 32.
    pub fn digits() -> GanConfig {
        GanConfig::new(DcganConfig {
            batch: 32,
            latent: 32,
            size: 8,
            channels: 1,
            ngf: 32,
            ndf: 64,
            mode: Mode::Train,
        })
    }
}

/// A [`TrainError::Config`] saying what of the GAN's data or arguments does not fit.
fn shape(message: impl std::fmt::Display) -> TrainError {
    TrainError::Config(format!("GAN: {message}"))
}

/// What one step measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GanStep {
    /// The step number, from 0.
    pub step: u64,
    /// The discriminator's loss on real (target 1) and fake (target 0) images, before its
    /// update: `ln 2 = 0.693` when it cannot tell them apart.
    pub d_loss: f32,
    /// The generator's loss `-mean(ln sigmoid(D(G(z))))` against the updated discriminator.
    pub g_loss: f32,
}

/// Stream counters of the noise and the shuffles (the initialisation uses the seeds `seed`
/// and `seed + 1` with small counters).
const NOISE: i64 = 1 << 40;
const SHUFFLE: i64 = 1 << 41;

/// A DCGAN in training: the two trainers and the compiled generator.
pub struct Gan {
    cfg: GanConfig,
    generator: Compiled,
    g_names: Vec<String>,
    d: Trainer<Jit>,
    d_names: Vec<String>,
    g: Trainer<Jit>,
    steps: u64,
}

impl Gan {
    /// Builds and compiles both training graphs and the generator, and initialises the
    /// parameters from `cfg.seed` (generator) and `cfg.seed + 1` (discriminator).
    pub fn new(cfg: &GanConfig) -> Result<Gan, TrainError> {
        let mut m = cfg.model.clone();
        m.mode = Mode::Train;
        if m.batch == 0 {
            return Err(shape("the batch size must be >= 1"));
        }
        let d_model = DcganConfig {
            batch: 2 * m.batch,
            ..m.clone()
        };
        let optimizer = Optimizer::Adam {
            beta1: cfg.beta1,
            beta2: 0.999,
            eps: 1e-8,
        };
        let train = TrainConfig::new(optimizer);
        let init = Init::Normal {
            mean: 0.0,
            std: cfg.init_std,
        };

        let d_fwd = dcgan_discriminator(&d_model)?;
        let d_loss = output(&d_fwd, "loss")?;
        let d_params = init_params(&d_fwd, init, cfg.seed.wrapping_add(1));
        let d_tg = training_graph(&d_fwd, d_loss, &train)?;
        let d_names = d_tg.params.clone();
        let d = Trainer::new(Jit::default(), d_tg, d_params, Schedule::Constant(cfg.lr))?;

        let g_fwd = dcgan_generator_step(&m)?;
        let g_loss = output(&g_fwd, "loss")?;
        let g_params = init_params(&g_fwd, init, cfg.seed);
        let g_tg = training_graph(&g_fwd, g_loss, &train)?;
        let g_names = g_tg.params.clone();
        let g = Trainer::new(Jit::default(), g_tg, g_params, Schedule::Constant(cfg.lr))?;

        let generator = Compiled::new(&dcgan_generator(&m)?, CompileOptions::default())?;
        Ok(Gan {
            cfg: GanConfig {
                model: m,
                ..cfg.clone()
            },
            generator,
            g_names,
            d,
            d_names,
            g,
            steps: 0,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &GanConfig {
        &self.cfg
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Standard-normal noise `f32[batch, latent]` of stream `counter` (the training steps use
    /// their step number; pick counters of your own for fixed samples, say `u64::MAX`).
    pub fn noise(&self, counter: u64) -> Tensor {
        let m = &self.cfg.model;
        let key = rng::key(self.cfg.seed, NOISE.wrapping_add(counter as i64));
        let z = (0..(m.batch * m.latent) as u64)
            .map(|i| rng::normal(key, i))
            .collect();
        Tensor::from_f32(&[m.batch, m.latent], z)
    }

    /// The generator's images `f32[batch, channels, size, size]` in `(-1, 1)` for `z`.
    pub fn generate(&self, z: &Tensor) -> Result<Tensor, TrainError> {
        let mut feed = self.params(&self.g, &self.g_names)?;
        feed.insert("z".into(), z.clone());
        let out = self.generator.run(&feed)?;
        out.into_iter()
            .find(|(n, _)| n == "image")
            .map(|(_, t)| t)
            .ok_or_else(|| shape("the generator returned no `image`"))
    }

    /// Writes the generator's images for `z` as a PNG grid with `columns` columns, each pixel
    /// a `scale x scale` block.
    pub fn write_samples(
        &self,
        path: &Path,
        z: &Tensor,
        columns: usize,
        scale: usize,
    ) -> Result<(), TrainError> {
        let m = &self.cfg.model;
        if m.channels != 1 {
            return Err(shape(format!(
                "sample grids are grayscale; the images have {} channels",
                m.channels
            )));
        }
        let images = self.generate(z)?;
        let layout = GridLayout {
            height: m.size,
            width: m.size,
            columns,
            scale,
            range: PixelRange::Signed,
        };
        let values = images.as_f32().unwrap_or(&[]);
        Ok(write_grid(path, values, &layout)?)
    }

    /// One alternating step on `real: f32[batch, channels, size, size]` in `[-1, 1]`, with
    /// noise `z` (see the [module docs](self)).
    pub fn step(&mut self, real: &Tensor, z: &Tensor) -> Result<GanStep, TrainError> {
        let m = &self.cfg.model;
        let want = [m.batch, m.channels, m.size, m.size];
        if real.shape() != want {
            return Err(shape(format!(
                "real batch is {:?}, expected {want:?}",
                real.shape()
            )));
        }
        let fake = self.generate(z)?;
        let mut x = real.as_f32().unwrap_or(&[]).to_vec();
        x.extend_from_slice(fake.as_f32().unwrap_or(&[]));
        let b = m.batch;
        let mut target = vec![1.0; b];
        target.resize(2 * b, 0.0);
        let d_batch = HashMap::from([
            (
                "x".to_string(),
                Tensor::from_f32(&[2 * b, m.channels, m.size, m.size], x),
            ),
            ("target".to_string(), Tensor::from_f32(&[2 * b, 1], target)),
        ]);
        let d_loss = self.d.step(&d_batch)?;
        let mut g_batch = self.params(&self.d, &self.d_names)?;
        g_batch.insert("z".into(), z.clone());
        let g_loss = self.g.step(&g_batch)?;
        let s = GanStep {
            step: self.steps,
            d_loss,
            g_loss,
        };
        self.steps += 1;
        Ok(s)
    }

    /// Trains for `steps` more steps on `data` (samples `[channels, size, size]` in
    /// `[0, 1]`), calling `progress` after each; returns their losses.
    pub fn train(
        &mut self,
        data: &Dataset,
        steps: usize,
        mut progress: impl FnMut(&GanStep),
    ) -> Result<Vec<GanStep>, TrainError> {
        let m = self.cfg.model.clone();
        let want = [m.channels, m.size, m.size];
        if data.sample_shape != want {
            return Err(shape(format!(
                "samples are {:?}, the networks take {want:?}",
                data.sample_shape
            )));
        }
        let per_epoch = (data.len() / m.batch) as u64;
        if per_epoch == 0 {
            return Err(shape(format!(
                "{} samples do not make one batch of {}",
                data.len(),
                m.batch
            )));
        }
        let mut order = Vec::new();
        let mut log = Vec::with_capacity(steps);
        for _ in 0..steps {
            let k = (self.steps % per_epoch) as usize;
            if k == 0 || order.is_empty() {
                order = shuffled(data.len(), self.cfg.seed, self.steps / per_epoch);
            }
            let (x, _) = data.batch(&order[k * m.batch..(k + 1) * m.batch]);
            let signed = x.as_f32().unwrap_or(&[]).iter().map(|v| 2.0 * v - 1.0);
            let real = Tensor::from_f32(x.shape(), signed.collect());
            let z = self.noise(self.steps);
            let s = self.step(&real, &z)?;
            progress(&s);
            log.push(s);
        }
        Ok(log)
    }

    /// The trained parameters of both networks (`g.*`, `d.*`) and the generator's batch-norm
    /// running statistics.
    pub fn model(&self) -> BTreeMap<String, Tensor> {
        let mut all = self.g.model();
        all.extend(self.d.model());
        all
    }

    /// Saves [`Gan::model`] to a safetensors file.
    pub fn save(&self, path: &Path) -> Result<(), TrainError> {
        Ok(save_tensors(path, &self.model())?)
    }

    fn params(
        &self,
        tr: &Trainer<Jit>,
        names: &[String],
    ) -> Result<HashMap<String, Tensor>, TrainError> {
        names
            .iter()
            .map(|n| {
                let t = tr
                    .get(n)
                    .ok_or_else(|| shape(format!("no parameter `%{n}`")))?;
                Ok((n.clone(), t.clone()))
            })
            .collect()
    }
}

fn output(g: &Graph, name: &str) -> Result<sinter_ir::Value, TrainError> {
    g.find(name)
        .ok_or_else(|| shape(format!("@{} has no `%{name}`", g.name())))
}

/// Builds a [`Gan`] from `cfg` and trains it for `cfg.steps` steps on `data` (samples
/// `[channels, size, size]` in `[0, 1]`), calling `progress` after each step. Returns the
/// trained GAN and every step's losses.
pub fn train_gan(
    cfg: &GanConfig,
    data: &Dataset,
    progress: impl FnMut(&GanStep),
) -> Result<(Gan, Vec<GanStep>), TrainError> {
    let mut gan = Gan::new(cfg)?;
    let log = gan.train(data, cfg.steps, progress)?;
    Ok((gan, log))
}

/// `0..n` in the Fisher-Yates order of stream `(seed, SHUFFLE + epoch)`.
fn shuffled(n: usize, seed: i64, epoch: u64) -> Vec<usize> {
    let key = rng::key(seed, SHUFFLE.wrapping_add(epoch as i64));
    let mut v: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = ((rng::uniform(key, i as u64) * (i + 1) as f32) as usize).min(i);
        v.swap(i, j);
    }
    v
}
