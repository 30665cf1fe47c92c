//! The end-to-end demo run by the README's first command.
//!
//! It builds LeNet-5 from the model zoo (1x32x32 input, 61,706 parameters), turns it into a
//! training graph with autodiff (forward, loss, backward and the Adam update as one graph),
//! optimises that graph by equality saturation and prints what the optimiser did, compiles it
//! with the JIT, and trains it on the embedded digits, upsampled from 8x8 to 32x32 and
//! shifted by up to a pixel on the data pipeline's thread while the compiled step runs. It
//! reports the held-out accuracy after each epoch and writes the loss curve as a PNG.

use crate::train::{Data, TrainOptions, TrainReport, train};
use sinter_data::Augment;
use sinter_ir::InputKind;
use std::path::PathBuf;

/// What the demo does beyond the training options.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// Training settings (epochs, learning rate, seed, engine).
    pub train: TrainOptions,
    /// Where to write the loss curve (`None`: no plot).
    pub plot: Option<PathBuf>,
}

impl Default for DemoOptions {
    fn default() -> DemoOptions {
        DemoOptions {
            train: TrainOptions {
                epochs: 12,
                lr: 2e-3,
                optimizer: "adam".into(),
                augment: Augment {
                    shift: 1,
                    ..Augment::default()
                },
                optimize: true,
                ..TrainOptions::default()
            },
            plot: Some(PathBuf::from("lenet5-loss.png")),
        }
    }
}

/// Trains LeNet-5 on the embedded digits; returns the summary to print and the training
/// report.
pub fn run(opts: &DemoOptions) -> Result<(String, TrainReport), String> {
    let data = Data::digits()?;
    let fit = sinter_models::Fit {
        batch: Some(32),
        sample_shape: data.train.sample_shape.clone(),
        classes: data.train.classes,
    };
    let g = sinter_models::build_fit("lenet5", sinter_models::Preset::Full, &fit)
        .map_err(|e| e.to_string())?;
    let params: usize = g
        .inputs()
        .filter(|(_, k)| *k == InputKind::Param)
        .map(|(v, _)| g.ty(v).numel())
        .sum();
    let t = &opts.train;
    let x = g.ty(g.find("x").ok_or("LeNet-5 without `x`")?);
    eprintln!(
        "LeNet-5 (sinter zoo lenet5): {} nodes, {params} parameters, input {x}\n\
         training on the {} (1,437 train / 360 held out, 8x8 upsampled to 32x32, random \
         shifts of a pixel) with {}, lr {}, {} epochs, {}",
        g.nodes().len(),
        data.name,
        t.optimizer,
        t.lr,
        t.epochs,
        t.engine
    );
    let report = train(&g, &data, t)?;
    let mut s = String::new();
    if let Some(r) = &report.rewrite {
        s += "optimiser on the training step (forward + backward + Adam):\n";
        for line in r.render(true).lines() {
            s += &format!("  {line}\n");
        }
    }
    s += &report.render();
    if let Some(path) = &opts.plot {
        crate::plot::loss_curve(
            path,
            "LeNet-5 on the UCI digits: training loss",
            &report.step_loss,
            20,
            (720, 420),
        )?;
        s += &format!("loss curve written to {}\n", path.display());
    }
    Ok((s, report))
}
