//! The zoo end to end: every model's small preset builds, verifies and runs forward on the
//! reference interpreter with finite outputs of the right shapes; every full preset builds
//! (shape inference only) and the published parameter counts come out exactly; one SGD
//! training step of every model agrees between the interpreter and the JIT; and the loss of
//! the MLP and LeNet falls over a few steps on a fixed batch.
//!
//! JIT-versus-interpreter tolerance, as in `crates/runtime/tests/train.rs`: an f32 element
//! `a_i` of the JIT agrees with the interpreter's `b_i` when
//! `|a_i - b_i| <= 1e-4 * max(|b_i|, 1e-2 * max_j |b_j|)`.

use sinter_autodiff::{
    Init, Interpret, Optimizer, Schedule, TrainConfig, Trainer, inference_graph, init_params,
    training_graph,
};
use sinter_ir::{Graph, InputKind, Tensor, TensorData, rng};
use sinter_models::*;
use sinter_runtime::{Compiled, Jit};
use std::collections::HashMap;

type Map = HashMap<String, Tensor>;

/// Deterministic uniform numbers.
struct Rand {
    key: u64,
    i: u64,
}

impl Rand {
    fn new(seed: i64) -> Rand {
        Rand {
            key: rng::key(seed, 4242),
            i: 0,
        }
    }
    fn u(&mut self) -> f32 {
        self.i += 1;
        rng::uniform(self.key, self.i)
    }
    fn tensor(&mut self, shape: &[usize], lo: f32, hi: f32) -> Tensor {
        let n = shape.iter().product();
        Tensor::from_f32(shape, (0..n).map(|_| lo + (hi - lo) * self.u()).collect())
    }
}

/// The classes of a classifier (the width of `logits`), if it is one.
fn classes(g: &Graph) -> Option<usize> {
    g.find("labels")?;
    g.find("logits").map(|v| g.ty(v).shape[1])
}

/// Parameters (He-uniform weights) and a random batch for every data input of `g`:
/// `labels` in range, `target` in `[0, 1]`, running statistics at their initial values,
/// the discriminator weights `d.*` a generator step reads from an initialised discriminator,
/// and anything else (`x`, `z`) uniform in `[-1, 1]`.
fn feeds(g: &Graph, seed: i64) -> (Map, Map) {
    let params = init_params(g, Init::HeUniform, seed);
    let mut batch = running_stats(g);
    let mut r = Rand::new(seed);
    let disc = dcgan_discriminator(&DcganConfig::small()).unwrap();
    let disc_params = init_params(&disc, Init::HeUniform, seed + 1);
    for (v, kind) in g.inputs() {
        let name = g.value_name(v).to_string();
        if kind != InputKind::Data || batch.contains_key(&name) {
            continue;
        }
        let shape = g.ty(v).shape.clone();
        let t = match name.as_str() {
            "labels" => {
                let c = classes(g).unwrap() as f32;
                let l = (0..shape[0]).map(|_| ((r.u() * c) as i64).min(c as i64 - 1));
                Tensor::from_i64(&shape, l.collect())
            }
            "target" => r.tensor(&shape, 0.0, 1.0),
            n if n == rng::STEP_INPUT => Tensor::from_i64(&[], vec![seed]),
            n if n.starts_with("d.") => disc_params[n].clone(),
            _ => r.tensor(&shape, -1.0, 1.0),
        };
        batch.insert(name, t);
    }
    (params, batch)
}

fn all_finite(name: &str, t: &Tensor) {
    if let Some(xs) = t.as_f32() {
        assert!(xs.iter().all(|x| x.is_finite()), "{name} is not finite");
    }
}

/// Runs `g` forward on the interpreter and checks the outputs' shapes and finiteness.
fn forward(g: &Graph, seed: i64) {
    let (mut inputs, batch) = feeds(g, seed);
    inputs.extend(batch);
    let outs = sinter_interp::run(g, &inputs).unwrap();
    assert_eq!(outs.len(), g.outputs().len());
    for (name, t) in &outs {
        all_finite(&format!("@{} %{name}", g.name()), t);
        let want = g.ty(g.find(name).unwrap());
        assert_eq!(&t.ty(), want, "@{} %{name}", g.name());
    }
    let names: Vec<&str> = outs.iter().map(|(n, _)| n.as_str()).collect();
    if let Some(c) = classes(g) {
        let b = g.ty(g.find("labels").unwrap()).shape[0];
        assert_eq!(g.ty(g.find("logits").unwrap()).shape.as_slice(), [b, c]);
        assert!(names.contains(&"logits"), "@{}: {names:?}", g.name());
    }
    if names.contains(&"loss") {
        assert_eq!(g.ty(g.find("loss").unwrap()).rank(), 0);
    }
}

#[test]
fn every_small_model_builds_and_runs_forward() {
    for (i, e) in zoo().iter().enumerate() {
        let g = (e.build)(Preset::Small).unwrap_or_else(|err| panic!("{}: {err}", e.name));
        g.verify().unwrap();
        forward(&g, i as i64);
    }
}

#[test]
fn inference_forms_are_the_training_forms_rewritten() {
    let mut r = ResNetConfig::small(18).unwrap();
    let mut d = DcganConfig::small();
    let mut l = LeNetConfig {
        pool: Pooling::Stochastic { seed: 3 },
        ..LeNetConfig::small()
    };
    let mut v = VggConfig {
        pool: Pooling::Stochastic { seed: 4 },
        ..VggConfig::small()
    };
    let train = [
        resnet(&r).unwrap(),
        dcgan_generator(&d).unwrap(),
        lenet(&l).unwrap(),
        vgg(&v).unwrap(),
    ];
    r.mode = Mode::Inference;
    d.mode = Mode::Inference;
    l.mode = Mode::Inference;
    v.mode = Mode::Inference;
    let infer = [
        resnet(&r).unwrap(),
        dcgan_generator(&d).unwrap(),
        lenet(&l).unwrap(),
        vgg(&v).unwrap(),
    ];
    assert_eq!(train[3].to_string().matches("stochastic_pool2d").count(), 5);
    // Stochastic pooling: the op and its counter in training, neither at inference.
    let has = |g: &sinter_ir::Graph, what: &str| g.to_string().contains(what);
    assert!(has(&train[2], "stochastic_pool2d") && has(&train[2], "%rng.step"));
    assert!(!has(&infer[2], "stochastic_pool2d") && !has(&infer[2], "rng.step"));
    for (t, i) in train.iter().zip(&infer) {
        assert_eq!(&inference_graph(t).unwrap(), i, "@{}", t.name());
        assert!(!running_stats(i).is_empty() || ["lenet5", "vgg16"].contains(&t.name()));
        forward(i, 7);
    }
}

#[test]
fn full_presets_build_with_the_published_parameter_counts() {
    let mut counts = Vec::new();
    for e in zoo() {
        let g = (e.build)(Preset::Full).unwrap_or_else(|err| panic!("{}: {err}", e.name));
        g.verify().unwrap();
        counts.push((e.name, param_count(&g)));
    }
    let count = |n: &str| counts.iter().find(|(m, _)| *m == n).unwrap().1;
    // torchvision's figures (batch-norm scales and shifts are parameters, running
    // statistics are not).
    assert_eq!(count("lenet5"), 61_706);
    assert_eq!(count("alexnet"), 61_100_840);
    assert_eq!(count("vgg16"), 138_357_544);
    assert_eq!(count("resnet18"), 11_689_512);
    assert_eq!(count("resnet34"), 21_797_672);
    assert_eq!(count("resnet50"), 25_557_032);
    // The PyTorch DCGAN tutorial's generator (its discriminator has batch norm and no conv
    // biases; ours has biases and no batch norm: 2,765,568 - 2*(128+256+512) + (64+128+256
    // +512+1)).
    assert_eq!(count("dcgan-g"), 3_576_704);
    assert_eq!(
        count("dcgan-d"),
        2_765_568 - 2 * (128 + 256 + 512) + (64 + 128 + 256 + 512 + 1)
    );
    // GoogLeNet as in the paper's table 1 (5x5 branches, conv biases, no batch norm, no
    // auxiliary heads), counted by hand: torchvision's variant (3x3 branches, batch norm)
    // has 6,624,904.
    assert_eq!(count("googlenet"), 6_998_552);
    // Inference-form batch norm reads its statistics as data, so the count is the same.
    let mut cfg = ResNetConfig::full(50).unwrap();
    cfg.mode = Mode::Inference;
    assert_eq!(param_count(&resnet(&cfg).unwrap()), 25_557_032);
}

#[test]
fn zoo_names_are_unique_and_described_in_one_line() {
    let z = zoo();
    for (i, e) in z.iter().enumerate() {
        assert!(z[..i].iter().all(|f| f.name != e.name), "{} twice", e.name);
        assert!(!e.description.is_empty() && !e.description.contains('\n'));
        assert!(
            e.description.len() <= 80,
            "{}: description too long",
            e.name
        );
    }
}

#[test]
fn unknown_names_and_bad_configs_are_errors() {
    let e = build("resnet19", Preset::Small).unwrap_err().to_string();
    assert!(e.contains("resnet19"), "{e}");
    assert!(ResNetConfig::full(20).is_err());
    let mut d = DcganConfig::small();
    d.size = 24;
    assert!(dcgan_generator(&d).is_err());
    let mut v = VggConfig::small();
    v.size = 16;
    let e = vgg(&v).unwrap_err().to_string();
    assert!(e.contains("multiple of 32") && e.contains("got 16"), "{e}");
}

/// Asserts the JIT's tensor `a` matches the interpreter's `b` (see the module docs).
fn assert_close(what: &str, a: &Tensor, b: &Tensor) {
    assert_eq!(a.ty(), b.ty(), "{what}: types differ");
    let (TensorData::F32(x), TensorData::F32(y)) = (a.data(), b.data()) else {
        assert_eq!(a.data(), b.data(), "{what}");
        return;
    };
    let scale = y.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    for (i, (p, q)) in x.iter().zip(y).enumerate() {
        let tol = 1e-4 * q.abs().max(1e-2 * scale);
        assert!(
            (p - q).abs() <= tol,
            "{what}[{i}]: JIT {p}, interpreter {q} (|diff| {} > {tol})",
            (p - q).abs()
        );
    }
}

/// The largest `|a_i - b_i|` over two f32 tensors.
fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    match (a.as_f32(), b.as_f32()) {
        (Some(x), Some(y)) => x.iter().zip(y).fold(0.0, |m, (p, q)| m.max((p - q).abs())),
        _ => 0.0,
    }
}

/// Whether `a` meets the tolerance of the module docs against `b`.
fn within_tolerance(a: &Tensor, b: &Tensor) -> bool {
    let (Some(x), Some(y)) = (a.as_f32(), b.as_f32()) else {
        return a == b;
    };
    let scale = y.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    x.iter()
        .zip(y)
        .all(|(p, q)| (p - q).abs() <= 1e-4 * q.abs().max(1e-2 * scale))
}

/// One SGD (momentum 0.9) training step of the small `name`: every output of the training
/// graph (loss, next parameters, momentum buffers, running statistics) from the JIT against
/// the interpreter. The loss must meet the tolerance of the module docs. So must every
/// other tensor, except where the step itself is ill-conditioned in
/// f32: deep stacks of batch norm over few elements (the small ResNets) amplify rounding so
/// much that the interpreter, fed an input scaled by `1 + 1.2e-7` (one ulp), moves some
/// logits and gradients by more than that tolerance. There a tensor may instead differ by at most four
/// times that one-ulp movement of the interpreter's own result. Returns the names of the
/// tensors that needed it.
fn step_agrees(name: &str, seed: i64) -> Vec<String> {
    let g = build(name, Preset::Small).unwrap();
    let loss = g.find("loss").unwrap();
    let tg = training_graph(&g, loss, &TrainConfig::new(Optimizer::sgd(0.9))).unwrap();
    let (params, batch) = feeds(&g, seed);
    let mut inputs = tg.initial_state();
    inputs.extend(params);
    inputs.extend(batch);
    inputs.insert(tg.lr.clone(), Tensor::scalar(0.05));
    let want = sinter_interp::run(&tg.graph, &inputs).unwrap();
    let c = Compiled::new(&tg.graph, Default::default()).unwrap();
    let got = c.run(&inputs).unwrap();
    assert_eq!(got.len(), want.len());
    let data = ["x", "z"]
        .into_iter()
        .find(|n| inputs.contains_key(*n))
        .unwrap();
    let mut nudged = inputs.clone();
    let t = &inputs[data];
    let xs = t.as_f32().unwrap().iter().map(|v| v * (1.0 + 1.2e-7));
    nudged.insert(data.into(), Tensor::from_f32(t.shape(), xs.collect()));
    let noise = sinter_interp::run(&tg.graph, &nudged).unwrap();
    let mut loose = Vec::new();
    for (((n, a), (m, b)), (_, p)) in got.iter().zip(&want).zip(&noise) {
        assert_eq!(n, m);
        let what = format!("{name}: {n}");
        all_finite(&what, b);
        if *n == tg.loss || within_tolerance(a, b) {
            assert_close(&what, a, b);
        } else {
            let (d, floor) = (max_diff(a, b), max_diff(p, b));
            assert!(
                d <= 4.0 * floor,
                "{what}: JIT off by {d}, over 4x the interpreter's one-ulp noise {floor}"
            );
            loose.push(n.clone());
        }
    }
    loose
}

#[test]
fn training_steps_agree_mlp_cnn() {
    for (i, name) in ["mlp", "lenet5", "alexnet", "vgg16"].iter().enumerate() {
        assert_eq!(step_agrees(name, 10 + i as i64), Vec::<String>::new());
    }
}

#[test]
fn training_steps_agree_resnet() {
    for (i, name) in ["resnet18", "resnet50"].iter().enumerate() {
        let loose = step_agrees(name, 20 + i as i64);
        eprintln!(
            "{name}: {} tensors within the one-ulp noise bound: {loose:?}",
            loose.len()
        );
    }
}

#[test]
fn training_steps_agree_inception_rnn() {
    for (i, name) in ["googlenet", "rnn", "lstm"].iter().enumerate() {
        assert_eq!(step_agrees(name, 30 + i as i64), Vec::<String>::new());
    }
}

#[test]
fn training_steps_agree_stacks_dcgan() {
    for (i, name) in ["sae", "rbm", "dbn", "dcgan-d", "dcgan-g-step"]
        .iter()
        .enumerate()
    {
        assert_eq!(step_agrees(name, 40 + i as i64), Vec::<String>::new());
    }
}

/// The generator step trains only the generator: the discriminator's weights are fed.
#[test]
fn the_generator_step_trains_only_the_generator() {
    let g = dcgan_generator_step(&DcganConfig::small()).unwrap();
    let tg = training_graph(
        &g,
        g.find("loss").unwrap(),
        &TrainConfig::new(Optimizer::sgd(0.0)),
    )
    .unwrap();
    assert!(
        tg.params.iter().all(|p| p.starts_with("g.")),
        "{:?}",
        tg.params
    );
    let d = dcgan_discriminator(&DcganConfig::small()).unwrap();
    let fed: Vec<&String> = tg.data.iter().filter(|n| n.starts_with("d.")).collect();
    let dparams: Vec<String> = init_params(&d, Init::Zeros, 0).into_keys().collect();
    assert_eq!(fed.len(), dparams.len());
    assert!(fed.iter().all(|n| dparams.contains(n)));
}

/// Five SGD steps on one fixed batch: the loss falls at each step on the JIT, and the
/// interpreter's first losses agree.
fn loss_falls(name: &str, seed: i64, lr: f32) {
    let g = build(name, Preset::Small).unwrap();
    let tg = training_graph(
        &g,
        g.find("loss").unwrap(),
        &TrainConfig::new(Optimizer::sgd(0.9)),
    )
    .unwrap();
    let (params, batch) = feeds(&g, seed);
    let sched = Schedule::Constant(lr);
    let mut jit = Trainer::new(Jit::default(), tg.clone(), params.clone(), sched.clone()).unwrap();
    let mut interp = Trainer::new(Interpret(sinter_interp::run), tg, params, sched).unwrap();
    let losses: Vec<f32> = (0..5).map(|_| jit.step(&batch).unwrap()).collect();
    for w in losses.windows(2) {
        assert!(w[1] < w[0], "{name}: losses {losses:?}");
    }
    assert!(losses[4] < 0.9 * losses[0], "{name}: losses {losses:?}");
    for &l in &losses[..2] {
        let want = interp.step(&batch).unwrap();
        assert_close(
            &format!("{name} loss"),
            &Tensor::scalar(l),
            &Tensor::scalar(want),
        );
    }
}

#[test]
fn the_mlp_loss_falls() {
    loss_falls("mlp", 50, 0.05);
}

#[test]
fn the_lenet_loss_falls() {
    loss_falls("lenet5", 51, 0.05);
}
