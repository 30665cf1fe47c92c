//! `sinter train` for the zoo models whose training is not plain backpropagation of a loss:
//! the RBM (contrastive divergence), the deep belief network (greedy CD pretraining, then
//! fine-tuning), the stacked autoencoder (greedy reconstruction pretraining, then
//! fine-tuning) and the DCGAN (alternating discriminator and generator steps). The procedures
//! live in `sinter-train` and compile every step with the JIT; this module gives them the
//! command line's options, a progress bar and a printed summary.

use crate::train::{Data, TrainOptions};
use sinter_train::{
    CdConfig, DbnTrainConfig, GanConfig, SaeTrainConfig, StackReport, StageEpoch, train_dbn,
    train_gan, train_rbm, train_sae,
};
use std::path::Path;
use std::time::Instant;

/// The zoo names trained by a procedure of their own.
pub const RECIPES: [&str; 4] = ["rbm", "dbn", "sae", "dcgan"];

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
/// pretraining epochs per layer (the RBM's epochs; for the DCGAN, passes over the data);
/// `samples` is where the DCGAN writes its generated digits.
pub fn run(name: &str, data: &Data, opts: &TrainOptions, samples: &Path) -> Result<String, String> {
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
            gan.write_samples(samples, &gan.noise(0), 8, 4)
                .map_err(|e| e.to_string())?;
            out += &format!("generated digits written to {}\n", samples.display());
            if let Some(path) = &opts.save {
                gan.save(path).map_err(|e| e.to_string())?;
            }
        }
        _ => return Err(format!("`{name}` is not one of {RECIPES:?}")),
    }
    Ok(out)
}
