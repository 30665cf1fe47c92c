//! Zoo models sized for a data set: what `sinter train MODEL --data PATH` builds.
//!
//! A preset fixes an architecture's widths; the data fixes what the input and head must
//! accept. [`build_fit`] keeps the preset's widths and takes the batch size, the number of
//! classes and, where the architecture allows, the input size from the data: the flat
//! networks (MLP, DBN) take any number of features, LeNet-5 any number of channels, the
//! recurrent networks read an `H x W` image as `H` steps of `W` features. The image networks
//! keep their preset input size; the caller resizes the images to it (bilinear), because
//! their strides and pools are designed for it.

use crate::*;

/// What a data set asks of a model.
#[derive(Clone, Debug, PartialEq)]
pub struct Fit {
    /// Batch size (`None`: the preset's).
    pub batch: Option<usize>,
    /// The shape of one sample, say `[1, 8, 8]`.
    pub sample_shape: Vec<usize>,
    /// Classes of the labels.
    pub classes: usize,
}

/// Builds zoo model `name` at `preset`, sized for `fit` as the module docs say. Models that
/// are not classifiers (the autoencoder, RBM, DCGAN parts) are built at the preset with only
/// the batch size changed where their config has one.
///
/// # Errors
/// [`BuildError::Unknown`] for a name not in the zoo; [`BuildError::Config`] when the data
/// cannot feed the model (naming both shapes).
pub fn build_fit(name: &str, preset: Preset, fit: &Fit) -> Result<Graph, BuildError> {
    let numel: usize = fit.sample_shape.iter().product();
    fn at<T>(preset: Preset, small: T, full: T) -> T {
        match preset {
            Preset::Small => small,
            Preset::Full => full,
        }
    }
    macro_rules! sized {
        ($cfg:expr, $build:expr, |$c:ident| $adapt:block) => {{
            let mut $c = $cfg;
            if let Some(b) = fit.batch {
                $c.batch = b;
            }
            $adapt
            $build(&$c)
        }};
    }
    let classes = fit.classes;
    match name {
        "mlp" => sized!(
            at(preset, MlpConfig::small(), MlpConfig::full()),
            mlp,
            |c| {
                c.inputs = numel;
                c.classes = classes;
            }
        ),
        "dbn" => sized!(
            at(preset, DbnConfig::small(), DbnConfig::full()),
            dbn,
            |c| {
                c.inputs = numel;
                c.classes = classes;
            }
        ),
        "lenet5" | "lenet5-stochastic" => sized!(
            {
                let c = at(preset, LeNetConfig::small(), LeNetConfig::full());
                if name == "lenet5" {
                    c
                } else {
                    zoo::lenet_stochastic(c)
                }
            },
            lenet,
            |c| {
                if let [ch, _, _] = fit.sample_shape[..] {
                    c.channels = ch;
                }
                c.classes = classes;
            }
        ),
        "alexnet" => sized!(
            at(preset, AlexNetConfig::small(), AlexNetConfig::full()),
            alexnet,
            |c| {
                c.classes = classes;
            }
        ),
        "vgg16" => sized!(
            at(preset, VggConfig::small(), VggConfig::full()),
            vgg,
            |c| {
                c.classes = classes;
            }
        ),
        "googlenet" => sized!(
            at(preset, GoogLeNetConfig::small(), GoogLeNetConfig::full()),
            googlenet,
            |c| {
                c.classes = classes;
            }
        ),
        "resnet18" | "resnet34" | "resnet50" => {
            let depth = name["resnet".len()..].parse().unwrap_or(18);
            let cfg = match preset {
                Preset::Small => ResNetConfig::small(depth)?,
                Preset::Full => ResNetConfig::full(depth)?,
            };
            sized!(cfg, resnet, |c| {
                c.classes = classes;
            })
        }
        "rnn" | "lstm" => {
            let cell = if name == "rnn" { Cell::Rnn } else { Cell::Lstm };
            let (seq, inputs) = match fit.sample_shape[..] {
                [1, h, w] | [h, w] => (h, w),
                _ => {
                    return Err(BuildError::Config(format!(
                        "`{name}` reads a sample as rows of features (shape [H,W] or [1,H,W]); \
                         the data's samples are {:?}",
                        fit.sample_shape
                    )));
                }
            };
            sized!(
                at(preset, RnnConfig::small(cell), RnnConfig::full(cell)),
                rnn,
                |c| {
                    c.seq = seq;
                    c.inputs = inputs;
                    c.classes = classes;
                }
            )
        }
        _ => build(name, preset),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_take_the_data_shape() {
        let digits = Fit {
            batch: Some(16),
            sample_shape: vec![1, 8, 8],
            classes: 7,
        };
        let ty = |g: &Graph, n: &str| g.ty(g.find(n).unwrap()).to_string();
        let g = build_fit("mlp", Preset::Full, &digits).unwrap();
        assert_eq!(ty(&g, "x"), "f32[16,64]");
        assert_eq!(ty(&g, "logits"), "f32[16,7]");
        let g = build_fit("lstm", Preset::Small, &digits).unwrap();
        assert_eq!(ty(&g, "x"), "f32[16,8,8]");
        let g = build_fit("lenet5", Preset::Full, &digits).unwrap();
        assert_eq!(ty(&g, "x"), "f32[16,1,32,32]");
        assert_eq!(ty(&g, "logits"), "f32[16,7]");
        let flat = Fit {
            batch: None,
            sample_shape: vec![64],
            classes: 10,
        };
        let e = build_fit("rnn", Preset::Small, &flat).unwrap_err();
        assert!(e.to_string().contains("[64]"), "{e}");
        assert!(matches!(
            build_fit("nope", Preset::Small, &flat),
            Err(BuildError::Unknown(_))
        ));
    }
}
