//! The catalogue: every model by name, with its presets, for `sinter zoo` and `sinter train`.

use crate::*;
use sinter_ir::{Graph, InputKind, NodeKind, Op, Tensor, TensorType};
use std::collections::HashMap;

/// Which sizes to build a zoo model at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preset {
    /// A few channels and small inputs: seconds to train a step on the interpreter.
    Small,
    /// The published sizes.
    Full,
}

/// One model of the zoo.
#[derive(Clone, Copy, Debug)]
pub struct ZooEntry {
    /// The name `sinter` commands take (`resnet18`).
    pub name: &'static str,
    /// One line for `sinter zoo`.
    pub description: &'static str,
    /// Builds the model at a preset (batch norm in training form).
    pub build: fn(Preset) -> Result<Graph, BuildError>,
}

fn pick<T>(p: Preset, small: fn() -> T, full: fn() -> T) -> T {
    match p {
        Preset::Small => small(),
        Preset::Full => full(),
    }
}

fn resnet_at(p: Preset, depth: usize) -> Result<Graph, BuildError> {
    resnet(&match p {
        Preset::Small => ResNetConfig::small(depth)?,
        Preset::Full => ResNetConfig::full(depth)?,
    })
}

fn rnn_at(p: Preset, cell: Cell) -> Result<Graph, BuildError> {
    rnn(&match p {
        Preset::Small => RnnConfig::small(cell),
        Preset::Full => RnnConfig::full(cell),
    })
}

/// `cfg` with stochastic pooling (seed 0) in place of max pooling.
pub(crate) fn lenet_stochastic(cfg: LeNetConfig) -> LeNetConfig {
    LeNetConfig {
        pool: Pooling::Stochastic { seed: 0 },
        ..cfg
    }
}

/// Every model, in the order `sinter zoo` lists them.
pub fn zoo() -> Vec<ZooEntry> {
    vec![
        ZooEntry {
            name: "mlp",
            description: "multi-layer perceptron: linear + relu layers, softmax classifier",
            build: |p| mlp(&pick(p, MlpConfig::small, MlpConfig::full)),
        },
        ZooEntry {
            name: "lenet5",
            description: "LeNet-5: two 5x5 convs with max pools, three linear layers",
            build: |p| lenet(&pick(p, LeNetConfig::small, LeNetConfig::full)),
        },
        ZooEntry {
            name: "lenet5-stochastic",
            description: "LeNet-5 with stochastic pooling (sampled in training, averaged at inference)",
            build: |p| {
                lenet(&lenet_stochastic(pick(
                    p,
                    LeNetConfig::small,
                    LeNetConfig::full,
                )))
            },
        },
        ZooEntry {
            name: "alexnet",
            description: "AlexNet: five convs (11x11/4 first), three linear layers",
            build: |p| alexnet(&pick(p, AlexNetConfig::small, AlexNetConfig::full)),
        },
        ZooEntry {
            name: "vgg16",
            description: "VGG-16: thirteen 3x3 convs in five pooled stages, three linear layers",
            build: |p| vgg(&pick(p, VggConfig::small, VggConfig::full)),
        },
        ZooEntry {
            name: "resnet18",
            description: "ResNet-18: basic residual blocks [2,2,2,2] with batch norm",
            build: |p| resnet_at(p, 18),
        },
        ZooEntry {
            name: "resnet34",
            description: "ResNet-34: basic residual blocks [3,4,6,3] with batch norm",
            build: |p| resnet_at(p, 34),
        },
        ZooEntry {
            name: "resnet50",
            description: "ResNet-50: 1x1-3x3-1x1 bottleneck blocks [3,4,6,3] with batch norm",
            build: |p| resnet_at(p, 50),
        },
        ZooEntry {
            name: "googlenet",
            description: "GoogLeNet / Inception-v1: inception modules with 1x1 bottlenecks",
            build: |p| googlenet(&pick(p, GoogLeNetConfig::small, GoogLeNetConfig::full)),
        },
        ZooEntry {
            name: "rnn",
            description: "plain tanh RNN unrolled over the sequence, classifier on the last state",
            build: |p| rnn_at(p, Cell::Rnn),
        },
        ZooEntry {
            name: "lstm",
            description: "LSTM unrolled over the sequence, classifier on the last state",
            build: |p| rnn_at(p, Cell::Lstm),
        },
        ZooEntry {
            name: "sae",
            description: "stacked autoencoder: sigmoid encoder and mirrored decoder, MSE",
            build: |p| autoencoder(&pick(p, AutoencoderConfig::small, AutoencoderConfig::full)),
        },
        ZooEntry {
            name: "rbm",
            description: "restricted Boltzmann machine: mean-field reconstruction, MSE",
            build: |p| rbm(&pick(p, RbmConfig::small, RbmConfig::full)),
        },
        ZooEntry {
            name: "dbn",
            description: "deep belief net as fine-tuned: stacked RBM sigmoid layers, softmax",
            build: |p| dbn(&pick(p, DbnConfig::small, DbnConfig::full)),
        },
        ZooEntry {
            name: "dcgan-g",
            description: "DCGAN generator: transposed convs + batch norm + relu, tanh image",
            build: |p| dcgan_generator(&pick(p, DcganConfig::small, DcganConfig::full)),
        },
        ZooEntry {
            name: "dcgan-d",
            description: "DCGAN discriminator: strided convs + leaky relu, real/fake logit",
            build: |p| dcgan_discriminator(&pick(p, DcganConfig::small, DcganConfig::full)),
        },
        ZooEntry {
            name: "dcgan-g-step",
            description: "DCGAN generator step: generator into the fed discriminator, its loss",
            build: |p| dcgan_generator_step(&pick(p, DcganConfig::small, DcganConfig::full)),
        },
        ZooEntry {
            name: "perceptron",
            description: "Rosenblatt perceptron: one threshold unit, step(x w + b)",
            build: |p| perceptron(&pick(p, PerceptronConfig::small, PerceptronConfig::full)),
        },
        ZooEntry {
            name: "hopfield",
            description: "Hopfield network: one synchronous sign(s W) recall step and its energy",
            build: |p| hopfield(&pick(p, HopfieldConfig::small, HopfieldConfig::full)),
        },
        ZooEntry {
            name: "som",
            description: "Kohonen self-organising map: best-matching unit, quantisation error",
            build: |p| som(&pick(p, SomConfig::small, SomConfig::full)),
        },
        ZooEntry {
            name: "art1",
            description: "ART-1: category choice, vigilance test and reset as one argmax",
            build: |p| art1(&pick(p, Art1Config::small, Art1Config::full)),
        },
    ]
}

/// Builds the zoo model `name` at `preset`.
pub fn build(name: &str, preset: Preset) -> Result<Graph, BuildError> {
    let e = zoo().into_iter().find(|e| e.name == name);
    match e {
        Some(e) => (e.build)(preset),
        None => Err(BuildError::Unknown(name.to_string())),
    }
}

/// The number of trainable scalars: the elements of every `param` input.
pub fn param_count(g: &Graph) -> usize {
    g.inputs()
        .filter(|(_, k)| *k == InputKind::Param)
        .map(|(v, _)| g.ty(v).shape.iter().product::<usize>())
        .sum()
}

/// The initial running statistics an inference-form graph reads: for every `batch_norm`
/// whose statistics are graph inputs, `<mean input>` zeros and `<var input>` ones (the
/// values `sinter_autodiff::training_graph` starts them at).
pub fn running_stats(g: &Graph) -> HashMap<String, Tensor> {
    let mut out = HashMap::new();
    for node in g.nodes() {
        if let NodeKind::Op(Op::BatchNorm { .. }) = node.kind {
            for (k, fill) in [(3, 0.0), (4, 1.0)] {
                let v = node.inputs[k];
                if let NodeKind::Input(_) = g.node(v.node).kind {
                    let ty: &TensorType = g.ty(v);
                    out.insert(g.value_name(v).to_string(), Tensor::full(&ty.shape, fill));
                }
            }
        }
    }
    out
}
