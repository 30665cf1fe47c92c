//! GAN training on the 8x8 digits through the compiled path, and the PNG grids its samples
//! are written to.

use sinter_ir::Tensor;
use sinter_models::{Cell, RnnConfig, rnn};
use sinter_runtime::{CompileOptions, Compiled};
use sinter_train::{
    Gan, GanConfig, GanStep, GridLayout, PixelRange, SequenceConfig, train_gan, train_sequence,
    write_grid,
};
use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

/// Decodes an 8-bit grayscale PNG: `(width, height, pixels)`.
fn decode(path: &std::path::Path) -> (u32, u32, Vec<u8>) {
    let file = std::io::BufReader::new(std::fs::File::open(path).unwrap());
    let mut reader = png::Decoder::new(file).read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Grayscale);
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

#[test]
fn grid_round_trips_through_the_png_decoder() {
    // Five 2x3 images, image k's pixel (y, x) = (k * 6 + y * 3 + x) / 29, in 2 columns at
    // scale 2: 3 rows of cells 7 wide and 5 high, plus the outer border.
    let images: Vec<f32> = (0..30).map(|i| i as f32 / 29.0).collect();
    let layout = GridLayout {
        scale: 2,
        ..GridLayout::new(2, 3, 2)
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("grid.png");
    write_grid(&path, &images, &layout).unwrap();
    let (w, h, px) = decode(&path);
    assert_eq!((w, h), (2 * 7 + 1, 3 * 5 + 1));
    let at = |x: usize, y: usize| px[y * w as usize + x];
    // Image 3 is in row 1, column 1: its cell starts at (1 + 7, 1 + 5). Its pixel (1, 2)
    // covers grid pixels x 8 + 4..8 + 6, y 6 + 2..6 + 4.
    let want = PixelRange::Unit.gray((3 * 6 + 3 + 2) as f32 / 29.0);
    for (x, y) in [(12, 8), (13, 9)] {
        assert_eq!(at(x, y), want, "({x}, {y})");
    }
    assert_eq!(at(0, 0), 128, "border");
    assert_eq!(at(7, 3), 128, "border between columns");
    assert_eq!(at(1, 1), 0, "image 0's first pixel");
    // The sixth cell is empty.
    assert_eq!(at(10, 13), 128);
}

#[test]
fn data_that_does_not_fit_the_networks_is_an_error() {
    let (train, _) = sinter_data::digits_split().unwrap();
    let mut cfg = GanConfig::digits();
    cfg.model.batch = 4;
    cfg.model.size = 16;
    let mut gan = Gan::new(&cfg).unwrap();
    let e = gan.train(&train, 1, |_| {}).unwrap_err().to_string();
    assert!(e.contains("[1, 8, 8]") && e.contains("[1, 16, 16]"), "{e}");
    assert_eq!(gan.steps(), 0);
    let small = train.subset(&[0, 1, 2]);
    cfg.model.size = 8;
    let mut gan = Gan::new(&cfg).unwrap();
    let e = gan.train(&small, 1, |_| {}).unwrap_err().to_string();
    assert!(e.contains("3 samples"), "{e}");
}

#[test]
fn grid_errors_name_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-such-dir").join("grid.png");
    let e = write_grid(&path, &[0.0; 4], &GridLayout::new(2, 2, 1)).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("no-such-dir"), "{msg}");
}

/// Mean over images of the squared distance to the nearest of `real` (all `[n, 64]` flat).
fn nearest_distance(images: &[f32], real: &[f32], len: usize) -> f32 {
    let per: Vec<f32> = images
        .chunks_exact(len)
        .map(|img| {
            real.chunks_exact(len)
                .map(|r| {
                    r.iter()
                        .zip(img)
                        .map(|(a, b)| (a - b) * (a - b))
                        .sum::<f32>()
                })
                .fold(f32::INFINITY, f32::min)
        })
        .collect();
    per.iter().sum::<f32>() / per.len() as f32
}

/// The root-mean-square distance between the per-pixel means of two image sets.
fn mean_image_distance(a: &[f32], b: &[f32], len: usize) -> f32 {
    let mean = |v: &[f32]| {
        let n = (v.len() / len) as f32;
        let mut m = vec![0.0; len];
        for img in v.chunks_exact(len) {
            for (mi, x) in m.iter_mut().zip(img) {
                *mi += x / n;
            }
        }
        m
    };
    let (ma, mb) = (mean(a), mean(b));
    let ss: f32 = ma.iter().zip(&mb).map(|(x, y)| (x - y) * (x - y)).sum();
    (ss / len as f32).sqrt()
}

/// The mean over pixels of the per-pixel standard deviation across images: how much the
/// images differ from one another (0 when they are all the same).
fn spread(images: &[f32], len: usize) -> f32 {
    let n = (images.len() / len) as f32;
    let mut mean = vec![0.0; len];
    for img in images.chunks_exact(len) {
        for (m, x) in mean.iter_mut().zip(img) {
            *m += x / n;
        }
    }
    let mut var = vec![0.0f32; len];
    for img in images.chunks_exact(len) {
        for ((v, x), m) in var.iter_mut().zip(img).zip(&mean) {
            *v += (x - m) * (x - m) / n;
        }
    }
    var.iter().map(|v| v.sqrt()).sum::<f32>() / len as f32
}

/// The class probabilities a digit classifier (the row-by-row RNN of [`train_sequence`],
/// parameters `model`) gives `images` (`[n, 64]` flat, in `[-1, 1]`).
fn classify(model: &BTreeMap<String, Tensor>, images: &[f32]) -> Vec<Vec<f32>> {
    let n = images.len() / 64;
    let cfg = SequenceConfig::digits(Cell::Rnn);
    let net = RnnConfig {
        cell: Cell::Rnn,
        batch: n,
        seq: 8,
        inputs: 8,
        hidden: cfg.hidden,
        classes: 10,
    };
    let c = Compiled::new(&rnn(&net).unwrap(), CompileOptions::default()).unwrap();
    let mut feed: HashMap<String, Tensor> =
        model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let unit = images.iter().map(|v| (v + 1.0) / 2.0).collect();
    feed.insert("x".into(), Tensor::from_f32(&[n, 8, 8], unit));
    feed.insert("labels".into(), Tensor::from_i64(&[n], vec![0; n]));
    let out = c.run(&feed).unwrap();
    let (_, logits) = out.iter().find(|(k, _)| k == "logits").unwrap();
    let softmax = |r: &[f32]| {
        let m = r.iter().copied().fold(f32::MIN, f32::max);
        let e: Vec<f32> = r.iter().map(|x| (x - m).exp()).collect();
        let s: f32 = e.iter().sum();
        e.iter().map(|x| x / s).collect()
    };
    logits
        .as_f32()
        .unwrap()
        .chunks_exact(10)
        .map(softmax)
        .collect()
}

/// `(inception score, classes predicted)` of class probabilities: the score is
/// `exp(mean KL(p(y|x) || p(y)))`, 1 when every image gets the same distribution, 10 when
/// each is one confident class and the classes are equally common (Salimans et al., 2016).
fn inception_score(p: &[Vec<f32>]) -> (f32, usize) {
    let n = p.len() as f32;
    let mut marginal = [0.0f32; 10];
    for r in p {
        for (m, x) in marginal.iter_mut().zip(r) {
            *m += x / n;
        }
    }
    let kl = |r: &Vec<f32>| -> f32 {
        r.iter()
            .zip(&marginal)
            .filter(|(a, _)| **a > 0.0)
            .map(|(a, b)| a * (a / b).ln())
            .sum()
    };
    let mean_kl = p.iter().map(kl).sum::<f32>() / n;
    let mut classes: Vec<usize> = p
        .iter()
        .map(|r| (0..10).max_by(|&a, &b| r[a].total_cmp(&r[b])).unwrap())
        .collect();
    classes.sort_unstable();
    classes.dedup();
    (mean_kl.exp(), classes.len())
}

#[test]
fn dcgan_learns_the_digits_without_diverging() {
    let (train, _) = sinter_data::digits_split().unwrap();
    let mut cfg = GanConfig::digits();
    cfg.steps = 400;
    let real: Vec<f32> = train.x.iter().map(|v| 2.0 * v - 1.0).collect();
    let fresh = Gan::new(&cfg).unwrap();
    let z = fresh.noise(u64::MAX);
    let before = fresh.generate(&z).unwrap();
    let t0 = Instant::now();
    let mut calls = 0;
    let (gan, log) = train_gan(&cfg, &train, |s| {
        assert_eq!(s.step, calls);
        calls += 1;
    })
    .unwrap();
    let secs = t0.elapsed().as_secs_f64();
    let after = gan.generate(&z).unwrap();
    let (b, a) = (before.as_f32().unwrap(), after.as_f32().unwrap());
    let summary = |s: &[GanStep]| {
        let n = s.len() as f32;
        let d = s.iter().map(|s| s.d_loss).sum::<f32>() / n;
        let g = s.iter().map(|s| s.g_loss).sum::<f32>() / n;
        (d, g)
    };
    for (i, w) in log.chunks(50).enumerate() {
        let (d, g) = summary(w);
        eprintln!("steps {}..: mean D loss {d:.3}, mean G loss {g:.3}", i * 50);
    }
    let md = (
        mean_image_distance(b, &real, 64),
        mean_image_distance(a, &real, 64),
    );
    let nn = (
        nearest_distance(b, &real, 64),
        nearest_distance(a, &real, 64),
    );
    let sp = (spread(&real, 64), spread(b, 64), spread(a, 64));
    eprintln!(
        "spread (mean per-pixel std): data {:.3}, samples {:.3} -> {:.3}",
        sp.0, sp.1, sp.2
    );
    eprintln!(
        "{} steps in {secs:.1} s; mean-image RMS distance {:.3} -> {:.3}; nearest real digit \
         (squared, 64 pixels) {:.2} -> {:.2}",
        log.len(),
        md.0,
        md.1,
        nn.0,
        nn.1
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dcgan-samples.png");
    // 32 samples in 8 columns at 4x: 4 rows of cells 8 * 4 + 1 = 33 pixels.
    gan.write_samples(&path, &z, 8, 4).unwrap();
    let (w, h, _) = decode(&path);
    assert_eq!((w, h), (8 * 33 + 1, 4 * 33 + 1));

    assert_eq!(log.len(), cfg.steps);
    assert!(
        log.iter()
            .all(|s| s.d_loss.is_finite() && s.g_loss.is_finite()),
        "a loss is not finite"
    );
    let (d_tail, g_tail) = summary(&log[log.len() - 50..]);
    // Collapse: a discriminator that wins outright drives its loss to ~0 and the generator's
    // up without bound (its gradient vanishes). ln 2 = 0.69 is a draw; 0.05 means it tells
    // real from fake with ~95% confidence on average.
    assert!(d_tail > 0.05, "the discriminator won: mean D loss {d_tail}");
    // -ln sigmoid(l) > 5 means D gives the fakes probability < 0.7% of being real.
    assert!(g_tail < 5.0, "the generator lost: mean G loss {g_tail}");
    // Learning: the fixed-z samples move towards the data, in the mean image and sample by
    // sample towards the nearest real digit.
    assert!(
        md.1 < 0.5 * md.0,
        "mean image did not approach the data's: {md:?}"
    );
    assert!(
        nn.1 < 0.7 * nn.0,
        "samples did not approach real digits: {nn:?}"
    );
    let path = dir.path().join("dcgan-model.safetensors");
    gan.save(&path).unwrap();
    let saved = sinter_autodiff::trainer::load_tensors(&path).unwrap();
    assert_eq!(saved, gan.model());
    assert!(saved.contains_key("g.convt1.w") && saved.contains_key("d.conv1.w"));
    // Digits, as a digit classifier sees them: the row-by-row RNN (97.5% held out) finds
    // the untrained generator's gray noise all alike (score 1.14-1.27 and 2-3 classes over
    // seeds 0-4), the trained generator's samples confidently different digits (3.6-5.1, 8-9
    // classes; 32 real held-out digits score 6.9).
    let (train_c, test_c) = sinter_data::digits_split().unwrap();
    let classifier = train_sequence(
        &SequenceConfig::digits(Cell::Rnn),
        &train_c,
        &test_c,
        |_| {},
    )
    .unwrap();
    let is = (
        inception_score(&classify(&classifier.model, b)),
        inception_score(&classify(&classifier.model, a)),
    );
    eprintln!("inception score (classes) with the RNN classifier: {is:?}");
    assert!(
        is.1.0 >= 2.5 && is.1.0 >= 2.0 * is.0.0 && is.1.1 >= 6,
        "samples are not varied digits to a classifier: {is:?}"
    );
    // Same seed, same initial generator: the run is reproducible.
    assert_eq!(Gan::new(&cfg).unwrap().generate(&z).unwrap(), before);
}
