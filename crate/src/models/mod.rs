//! The two published architectures as typed-shape dfdx models, the runtime-sized variants the
//! hyperparameter search builds, and what they share.
//!
//! Layer tables ([`Arch::layers`]) are the single source for each architecture's parameter
//! layout, its initialisation and its Keras-style summary; the dfdx structs ([`Mlp`], [`Cnn`])
//! carry the same layers with their shapes checked by the compiler. A search candidate's sizes
//! are only known at run time, so [`MlpDyn`] and [`CnnDyn`] run the same ops over `usize` sizes.

/// `Classifier::logits` and `train_logits` of a model whose `forward_seeded(x, seed)` takes the
/// images shaped as `$shape`, an expression of the batch size `$n`: without a tape and seed 0
/// for inference, on the training step's tape with its dropout seed for training.
macro_rules! logits_through_forward_seeded {
    (|$n:ident| $shape:expr) => {
        fn logits(&self, dev: &Cpu, images: &[f32], $n: usize) -> Logits {
            self.forward_seeded(dev.tensor_from_vec(images.to_vec(), $shape), 0)
        }

        fn train_logits(
            &self,
            dev: &Cpu,
            images: &[f32],
            $n: usize,
            seed: u64,
            grads: Gradients<f32, Cpu>,
        ) -> TrainLogits {
            let x = dev.tensor_from_vec(images.to_vec(), $shape).traced(grads);
            self.forward_seeded(x, seed)
        }
    };
}

/// `Classifier::params` and `params_mut` of a model whose trainable tensors are the `weight`
/// and `bias` of the named layer fields, in the architecture's layout order.
macro_rules! weights_and_biases_of {
    ($($layer:ident),+) => {
        fn params(&self) -> Vec<&dyn Param> {
            vec![$(&self.$layer.weight as &dyn Param, &self.$layer.bias as &dyn Param),+]
        }

        fn params_mut(&mut self) -> Vec<&mut dyn Param> {
            vec![$(&mut self.$layer.weight as &mut dyn Param, &mut self.$layer.bias as &mut dyn Param),+]
        }
    };
}

mod cnn;
mod dynamic;
mod infer;
mod mlp;

use std::fmt;
use std::str::FromStr;

use dfdx::prelude::*;
use dfdx::tensor::Cpu;
use serde::{Deserialize, Serialize};

pub use crate::engine::layers::ConvAlgo;
pub use crate::engine::params::{init_weights, Init, NamedTensor, Param, ParamSpec, Weights};
pub use cnn::Cnn;
pub use dynamic::{CnnDyn, MlpDyn};
pub use infer::model_net;
pub use mlp::{Mlp, MlpOne};

use crate::{Error, Result};

/// Logits for a batch without a tape (inference).
pub type Logits = Tensor<(usize, Const<10>), f32, Cpu>;
/// Logits for a batch with the tape that carries the training step's gradients.
pub type TrainLogits = Tensor<(usize, Const<10>), f32, Cpu, OwnedTape<f32, Cpu>>;

/// What the training and evaluation code needs from a model, whatever its static shapes.
pub trait Classifier: Send {
    /// The trainable tensors, in the order of the architecture's layout.
    fn params(&self) -> Vec<&dyn Param>;
    fn params_mut(&mut self) -> Vec<&mut dyn Param>;
    /// Inference logits for `n` 28×28 images stored one after another.
    fn logits(&self, dev: &Cpu, images: &[f32], n: usize) -> Logits;
    /// Training logits with dropout drawn from `seed`, recording onto `grads`' tape.
    fn train_logits(
        &self,
        dev: &Cpu,
        images: &[f32],
        n: usize,
        seed: u64,
        grads: Gradients<f32, Cpu>,
    ) -> TrainLogits;
    /// Compute the convolutions (if any) with `algo` from now on.
    fn set_conv(&mut self, _algo: ConvAlgo) {}
}

/// A model architecture: one of the two published ones, or a runtime-sized variant of either
/// (what the hyperparameter search trains).
///
/// Written as `mlp`, `cnn`, `mlp-1586`, `mlp-H1-H2`, `cnn-C1-C2-DENSE` or `cnn-C1-none-DENSE`; that string is
/// also its serialised form, so run records written before the variants existed still read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Arch {
    /// 784 → 224 → 288 → 10.
    Mlp,
    /// 784 → 1,586 → 10: one hidden layer with the CNN's parameter budget (1,260,880 against
    /// 1,261,450), the universal-approximator MLP the original study's premise names.
    MlpWide,
    /// Conv 32 → pool → conv 192 → pool → dense 128 → 10.
    Cnn,
    /// 784 → `h1` → `h2` → 10, laid out and named like [`Arch::Mlp`].
    MlpOf { h1: u16, h2: u16 },
    /// Conv `c1` → pool → (conv `c2` → pool, when present) → dense `dense` → 10, laid out and
    /// named like [`Arch::Cnn`].
    CnnOf {
        c1: u16,
        c2: Option<u16>,
        dense: u16,
    },
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Arch::Mlp => f.write_str("mlp"),
            Arch::MlpWide => write!(f, "mlp-{WIDE_UNITS}"),
            Arch::Cnn => f.write_str("cnn"),
            Arch::MlpOf { h1, h2 } => write!(f, "mlp-{h1}-{h2}"),
            Arch::CnnOf { c1, c2, dense } => match c2 {
                Some(c2) => write!(f, "cnn-{c1}-{c2}-{dense}"),
                None => write!(f, "cnn-{c1}-none-{dense}"),
            },
        }
    }
}

impl FromStr for Arch {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let unknown = || {
            Error::invalid(format!(
                "unknown model `{s}`; choose `mlp`, `cnn`, `mlp-{WIDE_UNITS}`, `mlp-H1-H2` or `cnn-C1-C2-DENSE` (sizes 1-65535, C2 may be `none`)"
            ))
        };
        let size = |p: &str| match p.parse::<u16>() {
            Ok(n) if n > 0 && p.chars().all(|c| c.is_ascii_digit()) => Ok(n),
            _ => Err(unknown()),
        };
        let parts: Vec<&str> = s.split('-').collect();
        match parts.as_slice() {
            ["mlp"] => Ok(Arch::Mlp),
            ["cnn"] => Ok(Arch::Cnn),
            ["mlp", h] if *h == WIDE_UNITS.to_string() => Ok(Arch::MlpWide),
            ["mlp", h1, h2] => Ok(Arch::MlpOf {
                h1: size(h1)?,
                h2: size(h2)?,
            }),
            ["cnn", c1, c2, dense] => Ok(Arch::CnnOf {
                c1: size(c1)?,
                c2: if *c2 == "none" { None } else { Some(size(c2)?) },
                dense: size(dense)?,
            }),
            _ => Err(unknown()),
        }
    }
}

impl From<Arch> for String {
    fn from(a: Arch) -> String {
        a.to_string()
    }
}

impl TryFrom<String> for Arch {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

/// One row of a model summary: a layer, the shape of one image's output, and its parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct Layer {
    /// The layer's name in the original Keras model.
    pub name: String,
    pub kind: String,
    /// Output shape per image in Keras's order (height, width, channels).
    pub output: Vec<usize>,
    pub params: Vec<ParamSpec>,
}

impl Layer {
    pub fn num_params(&self) -> usize {
        self.params.iter().map(ParamSpec::len).sum()
    }
}

fn layer(name: &str, kind: &str, output: &[usize], params: Vec<ParamSpec>) -> Layer {
    Layer {
        name: name.into(),
        kind: kind.into(),
        output: output.to_vec(),
        params,
    }
}

/// Weight and bias of a dense layer (dfdx stores the weight as `out × in`).
fn dense(name: &str, inputs: usize, units: usize) -> Vec<ParamSpec> {
    vec![
        ParamSpec {
            name: format!("{name}.weight"),
            shape: vec![units, inputs],
            init: Init::GlorotUniform {
                fan_in: inputs,
                fan_out: units,
            },
        },
        ParamSpec {
            name: format!("{name}.bias"),
            shape: vec![units],
            init: Init::Zeros,
        },
    ]
}

/// Weight and bias of a 3×3 convolution (`out × in × 3 × 3`).
fn conv(name: &str, c_in: usize, c_out: usize) -> Vec<ParamSpec> {
    vec![
        ParamSpec {
            name: format!("{name}.weight"),
            shape: vec![c_out, c_in, 3, 3],
            init: Init::GlorotUniform {
                fan_in: c_in * 9,
                fan_out: c_out * 9,
            },
        },
        ParamSpec {
            name: format!("{name}.bias"),
            shape: vec![c_out],
            init: Init::Zeros,
        },
    ]
}

/// The MLP's layers with hidden sizes `h1` and `h2`, named as in the original Keras model.
fn mlp_layers(h1: usize, h2: usize) -> Vec<Layer> {
    vec![
        layer("dense_1", "Dense", &[h1], dense("dense_1", 784, h1)),
        layer("activation", "ReLU", &[h1], vec![]),
        layer("dropout", "Dropout", &[h1], vec![]),
        layer("dense_2", "Dense", &[h2], dense("dense_2", h1, h2)),
        layer("activation_1", "ReLU", &[h2], vec![]),
        layer("dropout_1", "Dropout", &[h2], vec![]),
        layer("output", "Dense", &[10], dense("output", h2, 10)),
        layer("activation_2", "Softmax", &[10], vec![]),
    ]
}

/// Hidden units of [`Arch::MlpWide`]: the most that keep one hidden layer within the CNN's
/// 1,261,450 parameters (795 per unit, plus 10 output biases).
pub const WIDE_UNITS: usize = 1586;

/// One hidden layer of `h` units, named like the published MLP's first and last layers.
fn mlp_one_layers(h: usize) -> Vec<Layer> {
    vec![
        layer("dense_1", "Dense", &[h], dense("dense_1", 784, h)),
        layer("activation", "ReLU", &[h], vec![]),
        layer("dropout", "Dropout", &[h], vec![]),
        layer("output", "Dense", &[10], dense("output", h, 10)),
        layer("activation_1", "Softmax", &[10], vec![]),
    ]
}

/// The CNN's layers, named as in the original Keras model; without `c2` the second convolution
/// and its pooling are left out and the first pooling's output is flattened.
fn cnn_layers(c1: usize, c2: Option<usize>, units: usize) -> Vec<Layer> {
    let mut layers = vec![
        layer(
            "conv2d",
            "Conv2D (ReLU)",
            &[28, 28, c1],
            conv("conv2d", 1, c1),
        ),
        layer("max_pooling2d", "MaxPooling2D", &[14, 14, c1], vec![]),
    ];
    let flat = match c2 {
        Some(c2) => {
            layers.push(layer(
                "conv2d_1",
                "Conv2D (ReLU)",
                &[14, 14, c2],
                conv("conv2d_1", c1, c2),
            ));
            layers.push(layer(
                "max_pooling2d_1",
                "MaxPooling2D",
                &[7, 7, c2],
                vec![],
            ));
            7 * 7 * c2
        }
        None => 14 * 14 * c1,
    };
    layers.extend([
        layer("flatten", "Flatten", &[flat], vec![]),
        layer(
            "dense",
            "Dense (ReLU)",
            &[units],
            dense("dense", flat, units),
        ),
        layer("dropout", "Dropout", &[units], vec![]),
        layer(
            "dense_1",
            "Dense (Softmax)",
            &[10],
            dense("dense_1", units, 10),
        ),
    ]);
    layers
}

impl Arch {
    /// The published architectures.
    pub const ALL: [Arch; 2] = [Arch::Mlp, Arch::Cnn];

    /// The published architecture of the same kind: [`Arch::Mlp`] for every MLP, [`Arch::Cnn`]
    /// for every CNN.
    pub fn family(self) -> Arch {
        match self {
            Arch::Mlp | Arch::MlpWide | Arch::MlpOf { .. } => Arch::Mlp,
            Arch::Cnn | Arch::CnnOf { .. } => Arch::Cnn,
        }
    }

    /// The published name when a sized variant has the published sizes (the two are the same
    /// model: same layout, same initial weights, same numbers); otherwise `self`.
    pub fn canonical(self) -> Arch {
        match self {
            Arch::MlpOf { h1: 224, h2: 288 } => Arch::Mlp,
            Arch::CnnOf {
                c1: 32,
                c2: Some(192),
                dense: 128,
            } => Arch::Cnn,
            other => other,
        }
    }

    /// Whether the model has convolutions (and so a [`ConvAlgo`] to choose).
    pub fn has_convolutions(self) -> bool {
        self.family() == Arch::Cnn
    }

    /// The dropout rate the original study's tuning chose for the kind (0.3 for the MLP in the
    /// seed notebook, whose final run used 0.4; 0.2 for the CNN).
    pub fn default_dropout(self) -> f32 {
        match self.family() {
            Arch::Mlp => 0.3,
            _ => 0.2,
        }
    }

    /// The layers, named as in the original Keras models.
    pub fn layers(self) -> Vec<Layer> {
        match self {
            Arch::Mlp => mlp_layers(224, 288),
            Arch::MlpWide => mlp_one_layers(WIDE_UNITS),
            Arch::MlpOf { h1, h2 } => mlp_layers(h1.into(), h2.into()),
            Arch::Cnn => cnn_layers(32, Some(192), 128),
            Arch::CnnOf { c1, c2, dense } => {
                cnn_layers(c1.into(), c2.map(usize::from), dense.into())
            }
        }
    }

    /// Every parameter in model order.
    pub fn layout(self) -> Vec<ParamSpec> {
        self.layers().into_iter().flat_map(|l| l.params).collect()
    }

    pub fn num_params(self) -> usize {
        self.layout().iter().map(ParamSpec::len).sum()
    }

    /// Fresh Keras-style weights (Glorot-uniform kernels, zero biases) drawn from `seed`.
    pub fn init(self, seed: u64) -> Weights {
        init_weights(&self.to_string(), &self.layout(), seed)
    }

    /// Build the dfdx model from `weights` (checked against the layout first): typed for the
    /// published architectures, runtime-sized for the variants.
    pub fn build(self, dev: &Cpu, weights: &Weights, dropout: f32) -> Result<Box<dyn Classifier>> {
        self.check_weights(weights)?;
        if !(0.0..1.0).contains(&dropout) {
            return Err(Error::invalid(format!(
                "dropout must be in [0, 1), got {dropout}"
            )));
        }
        Ok(match self {
            Arch::Mlp => Box::new(Mlp::<224, 288>::from_weights(dev, weights, dropout)),
            Arch::MlpWide => Box::new(MlpOne::<WIDE_UNITS>::from_weights(dev, weights, dropout)),
            Arch::Cnn => Box::new(Cnn::from_weights(dev, weights, dropout)),
            Arch::MlpOf { .. } => Box::new(MlpDyn::from_weights(dev, weights, dropout)),
            Arch::CnnOf { .. } => Box::new(CnnDyn::from_weights(dev, weights, dropout)),
        })
    }

    /// Check that `weights` fit this architecture, which must have no layer of size 0.
    fn check_weights(self, weights: &Weights) -> Result<()> {
        // Only a hand-built value can hold a zero size (parsing refuses them); a layer of no
        // units has nothing to train.
        if self.layers().iter().any(|l| l.output.contains(&0)) {
            return Err(Error::invalid(format!(
                "architecture `{self}` has a layer of size 0"
            )));
        }
        weights.check_layout(&self.to_string(), &self.layout())
    }

    /// A table like Keras's `model.summary()`.
    pub fn summary(self) -> String {
        let layers = self.layers();
        let shape = |s: &[usize]| {
            let parts: Vec<String> = s.iter().map(|d| d.to_string()).collect();
            if parts.len() == 1 {
                format!("({},)", parts[0])
            } else {
                format!("({})", parts.join(", "))
            }
        };
        let mut out = format!(
            "Model: \"{self}\" (output shapes per image, Keras order: height, width, channels)\n"
        );
        let rule = "─".repeat(72);
        out += &format!(
            "{rule}\n{:<34}{:<24}{:>14}\n{rule}\n",
            "Layer (type)", "Output Shape", "Param #"
        );
        for l in &layers {
            out += &format!(
                "{:<34}{:<24}{:>14}\n",
                format!("{} ({})", l.name, l.kind),
                shape(&l.output),
                group_thousands(l.num_params())
            );
        }
        out += &format!(
            "{rule}\nTotal params: {}\n",
            group_thousands(self.num_params())
        );
        out += &format!(
            "Trainable params: {}\nNon-trainable params: 0\n",
            group_thousands(self.num_params())
        );
        out
    }
}

/// `1261450` → `1,261,450`, as Keras prints parameter counts.
pub fn group_thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Copy a built model's parameters out as plain data.
pub fn export_weights(arch: Arch, model: &dyn Classifier) -> Weights {
    let tensors = arch
        .layout()
        .into_iter()
        .zip(model.params())
        .map(|(spec, p)| NamedTensor {
            name: spec.name,
            shape: spec.shape,
            data: p.values(),
        })
        .collect();
    Weights {
        arch: arch.to_string(),
        tensors,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layers that hold parameters, with their counts.
    fn counts(arch: Arch) -> Vec<(String, usize)> {
        arch.layers()
            .into_iter()
            .map(|l| (l.name.clone(), l.num_params()))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    #[test]
    fn parameter_counts_match_the_original_keras_tables() {
        // Per model: its layers with parameters and their counts, then the total.
        type Table = (Arch, &'static [(&'static str, usize)], usize);
        let tables: [Table; 2] = [
            (
                Arch::Mlp,
                &[("dense_1", 175_840), ("dense_2", 64_800), ("output", 2_890)],
                243_530,
            ),
            (
                Arch::Cnn,
                &[
                    ("conv2d", 320),
                    ("conv2d_1", 55_488),
                    ("dense", 1_204_352),
                    ("dense_1", 1_290),
                ],
                1_261_450,
            ),
        ];
        for (arch, layers, total) in tables {
            let want: Vec<(String, usize)> = layers.iter().map(|&(l, n)| (l.into(), n)).collect();
            assert_eq!(counts(arch), want, "{arch}");
            assert_eq!(arch.num_params(), total, "{arch}");
        }
    }

    #[test]
    fn the_wide_mlp_has_the_cnns_parameter_budget() {
        let (wide, cnn) = (Arch::MlpWide.num_params(), Arch::Cnn.num_params());
        assert_eq!(wide, 1_260_880);
        assert!(wide <= cnn && (cnn - wide) as f64 / (cnn as f64) < 0.0005);
        // One more unit would cost 795 parameters and pass the CNN's budget.
        assert!(wide + 784 + 1 + 10 > cnn);
        assert_eq!(Arch::MlpWide.family(), Arch::Mlp);
        assert_eq!(Arch::MlpWide.default_dropout(), Arch::Mlp.default_dropout());
    }

    #[test]
    fn built_models_hold_exactly_the_layout_and_export_it_back() {
        let dev = Cpu::default();
        for arch in [Arch::Mlp, Arch::MlpWide, Arch::Cnn] {
            let w = arch.init(5);
            let model = arch.build(&dev, &w, 0.1).unwrap();
            let total: usize = model.params().iter().map(|p| p.num_elements()).sum();
            assert_eq!(total, arch.num_params());
            assert_eq!(export_weights(arch, model.as_ref()), w);
        }
    }

    #[test]
    fn mismatched_weights_are_refused() {
        let dev = Cpu::default();
        let err = Arch::Cnn
            .build(&dev, &Arch::Mlp.init(0), 0.2)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("architecture `mlp`"), "{err}");
        let mut w = Arch::Mlp.init(0);
        w.tensors[2].data[0] = f32::NAN;
        let err = Arch::Mlp.build(&dev, &w, 0.2).err().unwrap().to_string();
        assert!(err.contains("non-finite"), "{err}");
    }

    #[test]
    fn names_round_trip_through_display_fromstr_and_serde() {
        let archs = [
            (Arch::Mlp, "mlp"),
            (Arch::Cnn, "cnn"),
            (Arch::MlpOf { h1: 96, h2: 160 }, "mlp-96-160"),
            (Arch::MlpWide, "mlp-1586"),
            (
                Arch::CnnOf {
                    c1: 32,
                    c2: Some(64),
                    dense: 128,
                },
                "cnn-32-64-128",
            ),
            (
                Arch::CnnOf {
                    c1: 32,
                    c2: None,
                    dense: 128,
                },
                "cnn-32-none-128",
            ),
        ];
        for (arch, name) in archs {
            assert_eq!(arch.to_string(), name);
            assert_eq!(name.parse::<Arch>().unwrap(), arch);
            let json = serde_json::to_string(&arch).unwrap();
            assert_eq!(json, format!("\"{name}\""));
            assert_eq!(serde_json::from_str::<Arch>(&json).unwrap(), arch);
        }
        for bad in [
            "",
            "mlp-",
            "mlp-0-3",
            "mlp-3",
            "mlp-+3-4",
            "mlp-3-70000",
            "cnn-1-2",
            "cnn-none-2-3",
            "cnn-1-2-3-4",
            "MLP",
            "rnn",
        ] {
            let err = bad.parse::<Arch>().unwrap_err().to_string();
            assert!(
                err.contains("unknown model") && !err.contains('\n'),
                "{bad}: {err}"
            );
        }
        assert!(serde_json::from_str::<Arch>("\"mlp-0-1\"").is_err());
    }

    #[test]
    fn sized_variants_describe_their_layers() {
        let a = Arch::MlpOf { h1: 96, h2: 160 };
        assert_eq!(a.num_params(), 785 * 96 + 97 * 160 + 161 * 10);
        assert_eq!(a.family(), Arch::Mlp);
        assert_eq!(a.default_dropout(), Arch::Mlp.default_dropout());
        let no_second = Arch::CnnOf {
            c1: 16,
            c2: None,
            dense: 64,
        };
        assert_eq!(
            no_second.num_params(),
            (9 + 1) * 16 + (14 * 14 * 16 + 1) * 64 + 65 * 10
        );
        let s = no_second.summary();
        assert!(s.contains("(3136,)") && !s.contains("conv2d_1"), "{s}");
        assert_eq!(no_second.family(), Arch::Cnn);
        assert_eq!(Arch::MlpOf { h1: 224, h2: 288 }.canonical(), Arch::Mlp);
        assert_eq!(a.canonical(), a);
        let published = Arch::CnnOf {
            c1: 32,
            c2: Some(192),
            dense: 128,
        };
        assert_eq!(published.canonical(), Arch::Cnn);
        assert_eq!(published.num_params(), Arch::Cnn.num_params());
        let zero = Arch::MlpOf { h1: 0, h2: 4 };
        let err = zero
            .build(&Cpu::default(), &zero.init(0), 0.0)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("size 0"), "{err}");
    }

    #[test]
    fn glorot_init_respects_its_limit_and_zero_biases() {
        let w = Arch::Mlp.init(1);
        let limit = (6.0f32 / (784.0 + 224.0)).sqrt();
        let k = &w.tensors[0].data;
        assert!(k.iter().all(|v| v.abs() <= limit));
        assert!(
            k.iter().any(|v| v.abs() > 0.9 * limit),
            "draws span the range"
        );
        assert!(w.tensors[1].data.iter().all(|&v| v == 0.0));
        assert_ne!(Arch::Mlp.init(2), w);
    }
}
