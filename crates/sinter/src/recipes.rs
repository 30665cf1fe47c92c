//! `sinter train` for the zoo models whose training is not plain backpropagation of a loss:
//! the RBM (contrastive divergence), the deep belief network (greedy CD pretraining, then
//! fine-tuning; or up-down wake-sleep fine-tuning), the stacked autoencoder (greedy
//! reconstruction pretraining, then fine-tuning), the DCGAN (alternating discriminator and
//! generator steps), and the classic learning rules: the perceptron, Hopfield storage and
//! recall, the Kohonen map, ART-1, and the weight-initialisation study. The procedures live
//! in `sinter-train` and compile every step with the JIT; this module gives them the command
//! line's options, a progress bar and a printed summary.

use crate::train::{Data, TrainOptions};
use sinter_train::{
    CdConfig, DbnTrainConfig, GanConfig, SaeTrainConfig, StackReport, StageEpoch, train_dbn,
    train_gan, train_rbm, train_sae,
};
use std::path::Path;
use std::time::Instant;

/// The zoo names trained by a procedure of their own.
pub const RECIPES: [&str; 10] = [
    "rbm",
    "dbn",
    "sae",
    "dcgan",
    "wake-sleep",
    "perceptron",
    "hopfield",
    "som",
    "art1",
    "init-study",
];

/// Whether `name` is trained by a procedure of its own (see [`RECIPES`]).
pub fn is_recipe(name: &str) -> bool {
    RECIPES.contains(&name)
}

fn bar(len: u64, progress: bool, unit: &str) -> Result<indicatif::ProgressBar, String> {
    let bar = if progress {
        indicatif::ProgressBar::new(len)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{{prefix}} [{{bar:30}}] {{pos}}/{{len}} {unit}, {{msg}}"
        ))
        .map_err(|e| e.to_string())?
        .progress_chars("=> "),
    );
    Ok(bar)
}

/// A progress callback for the layer-wise procedures: one bar tick per epoch, one printed
/// line per epoch above the bar.
fn epochs_bar(bar: &indicatif::ProgressBar) -> impl FnMut(&StageEpoch) + '_ {
    move |e: &StageEpoch| {
        let what = if e.stage == "fine-tune" {
            "cross-entropy"
        } else {
            "reconstruction error"
        };
        bar.set_prefix(e.stage.clone());
        bar.set_message(format!("{what} {:.4}", e.loss));
        bar.println(format!(
            "{} epoch {}: {what} {:.4} ({:.2} s)",
            e.stage,
            e.epoch + 1,
            e.loss,
            e.seconds
        ));
        bar.inc(1);
    }
}

fn stack_summary(name: &str, r: &StackReport, seconds: f64) -> String {
    let mut s = String::new();
    for layer in &r.pretrain {
        if let (Some(first), Some(last)) = (layer.first(), layer.last()) {
            s += &format!(
                "{}: reconstruction error {:.4} -> {:.4} over {} epochs\n",
                first.stage,
                first.loss,
                last.loss,
                layer.len()
            );
        }
    }
    if let (Some(first), Some(last)) = (r.fine_tune.first(), r.fine_tune.last()) {
        s += &format!(
            "fine-tuning: cross-entropy {:.4} -> {:.4} over {} epochs\n",
            first.loss,
            last.loss,
            r.fine_tune.len()
        );
    }
    s += &format!(
        "{name}: test accuracy {:.1}% after pretraining and fine-tuning ({seconds:.2} s, JIT)\n",
        100.0 * r.accuracy
    );
    s
}

/// Trains zoo model `name` (one of [`RECIPES`]) on `data`. `opts.epochs` is the number of
/// pretraining epochs per layer (the RBM's; for the DCGAN, passes over the data; for
/// wake-sleep and the map, their epochs); `png` is where the DCGAN, wake-sleep and the map
/// write their images.
pub fn run(name: &str, data: &Data, opts: &TrainOptions, png: &Path) -> Result<String, String> {
    let train = &data.train;
    let test = || {
        data.test.as_ref().ok_or_else(|| {
            format!(
                "{}: `{name}` is scored on a held-out set, and the data has none",
                data.name
            )
        })
    };
    let start = Instant::now();
    let mut out = String::new();
    match name {
        "rbm" => {
            let cfg = CdConfig {
                epochs: opts.epochs,
                seed: opts.seed,
                ..CdConfig::default()
            };
            let b = bar(cfg.epochs as u64, opts.progress, "epochs")?;
            let mut cb = epochs_bar(&b);
            let (rbm, stats) =
                train_rbm("rbm", train, 64, &cfg, &mut cb).map_err(|e| e.to_string())?;
            b.finish_and_clear();
            if let (Some(f), Some(l)) = (stats.first(), stats.last()) {
                out += &format!(
                    "rbm ({} visible, 64 hidden, CD-{}): reconstruction error {:.4} -> {:.4} \
                     over {} epochs ({:.2} s, JIT)\n",
                    train.sample_len(),
                    cfg.k,
                    f.loss,
                    l.loss,
                    stats.len(),
                    start.elapsed().as_secs_f64()
                );
            }
            if let Some(path) = &opts.save {
                let t = rbm.params.into_iter().collect();
                sinter_autodiff::save_tensors(path, &t).map_err(|e| e.to_string())?;
            }
        }
        "dbn" => {
            let mut cfg = DbnTrainConfig::default();
            cfg.cd.epochs = opts.epochs;
            cfg.cd.seed = opts.seed;
            cfg.fine_tune.seed = opts.seed;
            let total = cfg.hidden.len() * cfg.cd.epochs + cfg.fine_tune.epochs;
            let b = bar(total as u64, opts.progress, "epochs")?;
            let mut cb = epochs_bar(&b);
            let r = train_dbn(train, test()?, &cfg, &mut cb).map_err(|e| e.to_string())?;
            b.finish_and_clear();
            out += &stack_summary("dbn", &r, start.elapsed().as_secs_f64());
            if let Some(path) = &opts.save {
                sinter_autodiff::save_tensors(path, &r.model).map_err(|e| e.to_string())?;
            }
        }
        "sae" => {
            let mut cfg = SaeTrainConfig::default();
            cfg.pretrain.epochs = opts.epochs;
            cfg.pretrain.seed = opts.seed;
            cfg.fine_tune.seed = opts.seed;
            let total = cfg.hidden.len() * cfg.pretrain.epochs + cfg.fine_tune.epochs;
            let b = bar(total as u64, opts.progress, "epochs")?;
            let mut cb = epochs_bar(&b);
            let r = train_sae(train, test()?, &cfg, &mut cb).map_err(|e| e.to_string())?;
            b.finish_and_clear();
            out += &stack_summary("sae", &r, start.elapsed().as_secs_f64());
            if let Some(path) = &opts.save {
                sinter_autodiff::save_tensors(path, &r.model).map_err(|e| e.to_string())?;
            }
        }
        "dcgan" => {
            let mut cfg = GanConfig::digits();
            cfg.seed = opts.seed;
            let m = &cfg.model;
            if train.sample_shape != [m.channels, m.size, m.size] {
                return Err(format!(
                    "{}: the DCGAN here generates [{}, {}, {}] images; the data's samples are \
                     {:?}",
                    data.name, m.channels, m.size, m.size, train.sample_shape
                ));
            }
            cfg.steps = opts.epochs.max(1) * (train.len() / m.batch).max(1);
            let b = bar(cfg.steps as u64, opts.progress, "steps")?;
            b.set_prefix("dcgan");
            let (gan, log) = train_gan(&cfg, train, |s| {
                b.set_message(format!("D loss {:.3}, G loss {:.3}", s.d_loss, s.g_loss));
                b.inc(1);
            })
            .map_err(|e| e.to_string())?;
            b.finish_and_clear();
            let mean = |w: &[sinter_train::GanStep], f: fn(&sinter_train::GanStep) -> f32| {
                w.iter().map(f).sum::<f32>() / w.len().max(1) as f32
            };
            let tail = &log[log.len().saturating_sub(50)..];
            out += &format!(
                "dcgan: {} alternating steps ({:.2} s, JIT); last {} steps: mean D loss {:.3}, \
                 mean G loss {:.3} (ln 2 = 0.693 when D cannot tell)\n",
                log.len(),
                start.elapsed().as_secs_f64(),
                tail.len(),
                mean(tail, |s| s.d_loss),
                mean(tail, |s| s.g_loss)
            );
            gan.write_samples(png, &gan.noise(0), 8, 4)
                .map_err(|e| e.to_string())?;
            out += &format!("generated digits written to {}\n", png.display());
            if let Some(path) = &opts.save {
                gan.save(path).map_err(|e| e.to_string())?;
            }
        }
        "wake-sleep" => out += &wake_sleep(data, opts, png)?,
        "perceptron" => out += &perceptron(opts)?,
        "hopfield" => out += &hopfield(data, opts)?,
        "som" => out += &som(data, opts, png)?,
        "art1" => out += &art1(data, opts)?,
        "init-study" => {
            let cfg = sinter_train::init_study::InitStudyConfig {
                seed: opts.seed,
                ..Default::default()
            };
            let r = sinter_train::init_study::init_study(&data.train, &cfg)
                .map_err(|e| e.to_string())?;
            out += &r.render();
        }
        _ => return Err(format!("`{name}` is not one of {RECIPES:?}")),
    }
    Ok(out)
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// DBN pretraining (CD-1), then up-down fine-tuning; samples of the top RBM to `png`.
fn wake_sleep(data: &Data, opts: &TrainOptions, png: &Path) -> Result<String, String> {
    use sinter_train::wake_sleep::{WakeSleepConfig, train_wake_sleep};
    let mut dbn = DbnTrainConfig::default();
    dbn.cd.seed = opts.seed;
    let cfg = WakeSleepConfig {
        epochs: opts.epochs,
        seed: opts.seed,
        ..Default::default()
    };
    let total = dbn.hidden.len() * dbn.cd.epochs + cfg.epochs;
    let b = bar(total as u64, opts.progress, "epochs")?;
    let mut cb = epochs_bar(&b);
    let (layers, _) = sinter_train::pretrain_dbn(&data.train, &dbn, &mut cb).map_err(err)?;
    let (net, initial, stats) = train_wake_sleep(&data.train, &layers, &cfg, &mut |e| {
        b.set_prefix("wake-sleep");
        b.set_message(format!("reconstruction error {:.5}", e.recon));
        b.inc(1);
    })
    .map_err(err)?;
    b.finish_and_clear();
    let last = stats.last().map_or(initial, |e| e.recon);
    let mut s = format!(
        "wake-sleep: reconstruction error {initial:.5} (pretrained, weights untied) -> {last:.5} \
         after {} epochs of up-down fine-tuning\n",
        stats.len()
    );
    let samples = net.sample(16, 500, opts.seed).map_err(err)?;
    let [h, w] = match data.train.sample_shape[..] {
        [1, h, w] | [h, w] => [h, w],
        _ => [1, data.train.sample_len()],
    };
    let layout = sinter_train::GridLayout {
        scale: 4,
        ..sinter_train::GridLayout::new(h, w, 4)
    };
    sinter_train::write_grid(png, &samples, &layout).map_err(err)?;
    s += &format!(
        "16 samples of the top RBM (500 Gibbs steps) written to {}\n",
        png.display()
    );
    Ok(s)
}

/// The perceptron rule on AND, OR, NOT and XOR, then XOR by a two-layer network.
fn perceptron(opts: &TrainOptions) -> Result<String, String> {
    use sinter_train::perceptron::XorConfig;
    use sinter_train::{Gate, PerceptronTrainConfig, train_perceptron, train_xor_mlp};
    let mut s = String::new();
    let cfg = PerceptronTrainConfig {
        epochs: opts.epochs.max(1) * 10,
        ..Default::default()
    };
    for (name, gate) in [
        ("AND", Gate::And),
        ("OR", Gate::Or),
        ("NOT", Gate::Not),
        ("XOR", Gate::Xor),
    ] {
        let (n, x, t) = gate.table();
        let p = train_perceptron(n, &x, &t, &cfg, &mut |_, _| {}).map_err(err)?;
        s += &format!(
            "perceptron {name}: mistakes per epoch {:?}{}\n",
            &p.errors[..p.errors.len().min(12)],
            if p.converged {
                format!(", learned exactly in {} epochs", p.errors.len())
            } else {
                format!(
                    "... still wrong after {} epochs (not linearly separable)",
                    p.errors.len()
                )
            }
        );
    }
    let r = train_xor_mlp(&XorConfig {
        seed: opts.seed,
        ..Default::default()
    })
    .map_err(err)?;
    let right = r
        .predictions
        .iter()
        .zip(&r.targets)
        .filter(|(a, b)| a == b)
        .count();
    s += &format!(
        "2-layer tanh network by backprop on XOR: {right}/4 rows right, loss {:.4} -> {:.5}\n",
        r.losses.first().copied().unwrap_or(f32::NAN),
        r.losses.last().copied().unwrap_or(f32::NAN)
    );
    Ok(s)
}

/// Stores three binarised digits, recalls them from noisy copies; the capacity experiment.
fn hopfield(data: &Data, opts: &TrainOptions) -> Result<String, String> {
    use sinter_train::hopfield::{binarise, capacity, corrupt, overlap, store};
    let d = &data.train;
    let n = d.sample_len();
    let bits = binarise(d, 0.5);
    let mut pats = Vec::new();
    for class in [0, 1, 7] {
        let i = d
            .labels
            .iter()
            .position(|&l| l == class)
            .ok_or_else(|| format!("{}: no sample of class {class} to store", data.name))?;
        pats.extend_from_slice(&bits[i * n..(i + 1) * n]);
    }
    let net = store(&pats, n).map_err(err)?;
    let flips = n / 10;
    let noisy = corrupt(&pats, n, flips, opts.seed);
    let r = net.recall_async(&noisy, 10, opts.seed).map_err(err)?;
    let overlaps: Vec<String> = r
        .states
        .chunks(n)
        .zip(pats.chunks(n))
        .map(|(a, b)| format!("{:.2}", overlap(a, b)))
        .collect();
    let e0: f32 = r.energies.first().map_or(0.0, |e| e.iter().sum());
    let e1: f32 = r.energies.last().map_or(0.0, |e| e.iter().sum());
    let mut s = format!(
        "hopfield ({n} units): digits 0, 1, 7 stored by the Hebb rule; recalled from {flips} \
         flipped pixels each with overlaps [{}] (1 = exact); total energy {e0:.1} -> {e1:.1}\n",
        overlaps.join(", ")
    );
    s += "capacity, 100 units, random patterns, 5 flipped (about 0.14 N = 14 patterns):\n";
    for p in capacity(100, &[5, 10, 14, 20, 30], 5, opts.seed).map_err(err)? {
        s += &format!(
            "  P = {:>2} (load {:.2}): mean overlap {:.3}, recalled {:.0}%\n",
            p.patterns,
            p.load,
            p.overlap,
            100.0 * p.recalled
        );
    }
    Ok(s)
}

/// A 10x10 Kohonen map of the data; its units as images to `png`.
fn som(data: &Data, opts: &TrainOptions, png: &Path) -> Result<String, String> {
    use sinter_train::som::{SomTrainConfig, train_som};
    let cfg = SomTrainConfig {
        epochs: opts.epochs,
        seed: opts.seed,
        ..Default::default()
    };
    let b = bar(cfg.epochs as u64, opts.progress, "epochs")?;
    b.set_prefix("som");
    let (map, stats) = train_som(&data.train, &cfg, &mut |e| {
        b.set_message(format!("quantisation error {:.4}", e.qe));
        b.inc(1);
    })
    .map_err(err)?;
    b.finish_and_clear();
    let first = stats.first().map_or(f32::NAN, |e| e.qe);
    let last = stats.last().map_or(f32::NAN, |e| e.qe);
    let mut s = format!(
        "som ({}x{} units): quantisation error {first:.4} -> {last:.4} over {} epochs\n",
        cfg.rows,
        cfg.cols,
        stats.len()
    );
    if let [1, h, w] | [h, w] = data.train.sample_shape[..] {
        map.write_png(png, h, w, 4).map_err(err)?;
        s += &format!("the map's units written to {}\n", png.display());
    }
    Ok(s)
}

/// ART-1 on the first 300 binarised samples at four vigilance levels.
fn art1(data: &Data, opts: &TrainOptions) -> Result<String, String> {
    use sinter_train::art::{ArtConfig, binary_inputs, train_art1};
    let d = &data.train;
    let dim = d.sample_len();
    let n = d.len().min(300);
    let inputs = &binary_inputs(d, 0.5)[..n * dim];
    let mut s = format!("art1 on {n} binarised samples of {dim} bits:\n");
    for rho in [0.3, 0.5, 0.7, 0.9] {
        let cfg = ArtConfig {
            vigilance: rho,
            epochs: opts.epochs.max(1) * 3,
            ..Default::default()
        };
        let (net, passes) = train_art1(inputs, dim, &cfg, &mut |_| {}).map_err(err)?;
        s += &format!(
            "  vigilance {rho}: {} categories after {} passes\n",
            net.categories,
            passes.len()
        );
    }
    Ok(s)
}
