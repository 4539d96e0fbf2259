//! The two published architectures as typed-shape dfdx models, and what they share.
//!
//! Layer tables ([`Arch::layers`]) are the single source for each architecture's parameter
//! layout, its initialisation and its Keras-style summary; the dfdx structs ([`Mlp`], [`Cnn`])
//! carry the same layers with their shapes checked by the compiler.

pub mod gemm;
pub mod kernels;
pub mod layers;
pub mod params;

mod cnn;
mod mlp;

use std::fmt;
use std::str::FromStr;

use dfdx::prelude::*;
use dfdx::tensor::Cpu;
use serde::{Deserialize, Serialize};

pub use cnn::Cnn;
pub use mlp::Mlp;
pub use params::{init_weights, Init, NamedTensor, Param, ParamSpec, Weights};

use crate::{Error, Result};

/// Logits for a batch without a tape (inference).
pub type Logits = Tensor<(usize, Const<10>), f32, Cpu>;
/// Logits for a batch with the tape that carries the training step's gradients.
pub type TrainLogits = Tensor<(usize, Const<10>), f32, Cpu, OwnedTape<f32, Cpu>>;

/// What the training and evaluation code needs from a model, whatever its static shapes.
pub trait Classifier {
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
}

/// A 64-bit mix of a seed and a salt (SplitMix64's finaliser), so that each epoch, batch and
/// layer draws from its own stream while staying a pure function of the run's seed.
pub fn mix_seed(seed: u64, salt: u64) -> u64 {
    let mut z = seed ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The published architectures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    /// 784 → 224 → 288 → 10.
    Mlp,
    /// Conv 32 → pool → conv 192 → pool → dense 128 → 10.
    Cnn,
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Arch::Mlp => "mlp",
            Arch::Cnn => "cnn",
        })
    }
}

impl FromStr for Arch {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "mlp" => Ok(Arch::Mlp),
            "cnn" => Ok(Arch::Cnn),
            other => Err(Error::invalid(format!(
                "unknown model `{other}`; choose `mlp` or `cnn`"
            ))),
        }
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

impl Arch {
    pub const ALL: [Arch; 2] = [Arch::Mlp, Arch::Cnn];

    /// The dropout rate the original study's tuning chose (0.3 for the MLP in the seed
    /// notebook; its final run used 0.4).
    pub fn default_dropout(self) -> f32 {
        match self {
            Arch::Mlp => 0.3,
            Arch::Cnn => 0.2,
        }
    }

    /// The layers, named as in the original Keras models.
    pub fn layers(self) -> Vec<Layer> {
        match self {
            Arch::Mlp => vec![
                layer("dense_1", "Dense", &[224], dense("dense_1", 784, 224)),
                layer("activation", "ReLU", &[224], vec![]),
                layer("dropout", "Dropout", &[224], vec![]),
                layer("dense_2", "Dense", &[288], dense("dense_2", 224, 288)),
                layer("activation_1", "ReLU", &[288], vec![]),
                layer("dropout_1", "Dropout", &[288], vec![]),
                layer("output", "Dense", &[10], dense("output", 288, 10)),
                layer("activation_2", "Softmax", &[10], vec![]),
            ],
            Arch::Cnn => vec![
                layer(
                    "conv2d",
                    "Conv2D (ReLU)",
                    &[28, 28, 32],
                    conv("conv2d", 1, 32),
                ),
                layer("max_pooling2d", "MaxPooling2D", &[14, 14, 32], vec![]),
                layer(
                    "conv2d_1",
                    "Conv2D (ReLU)",
                    &[14, 14, 192],
                    conv("conv2d_1", 32, 192),
                ),
                layer("max_pooling2d_1", "MaxPooling2D", &[7, 7, 192], vec![]),
                layer("flatten", "Flatten", &[9408], vec![]),
                layer("dense", "Dense (ReLU)", &[128], dense("dense", 9408, 128)),
                layer("dropout", "Dropout", &[128], vec![]),
                layer(
                    "dense_1",
                    "Dense (Softmax)",
                    &[10],
                    dense("dense_1", 128, 10),
                ),
            ],
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

    /// Build the typed dfdx model from `weights` (checked against the layout first).
    pub fn build(self, dev: &Cpu, weights: &Weights, dropout: f32) -> Result<Box<dyn Classifier>> {
        weights.check_layout(&self.to_string(), &self.layout())?;
        if !(0.0..1.0).contains(&dropout) {
            return Err(Error::invalid(format!(
                "dropout must be in [0, 1), got {dropout}"
            )));
        }
        Ok(match self {
            Arch::Mlp => Box::new(Mlp::<224, 288>::from_weights(dev, weights, dropout)),
            Arch::Cnn => Box::new(Cnn::from_weights(dev, weights, dropout)),
        })
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

    fn counts(arch: Arch) -> Vec<(String, usize)> {
        arch.layers()
            .into_iter()
            .map(|l| (l.name.clone(), l.num_params()))
            .collect()
    }

    #[test]
    fn parameter_counts_match_the_original_keras_tables() {
        let mlp = counts(Arch::Mlp);
        let with_params: Vec<_> = mlp.iter().filter(|(_, n)| *n > 0).cloned().collect();
        assert_eq!(
            with_params,
            vec![
                ("dense_1".into(), 175_840),
                ("dense_2".into(), 64_800),
                ("output".into(), 2_890)
            ]
        );
        assert_eq!(Arch::Mlp.num_params(), 243_530);
        let cnn = counts(Arch::Cnn);
        let with_params: Vec<_> = cnn.iter().filter(|(_, n)| *n > 0).cloned().collect();
        assert_eq!(
            with_params,
            vec![
                ("conv2d".into(), 320),
                ("conv2d_1".into(), 55_488),
                ("dense".into(), 1_204_352),
                ("dense_1".into(), 1_290)
            ]
        );
        assert_eq!(Arch::Cnn.num_params(), 1_261_450);
    }

    #[test]
    fn built_models_hold_exactly_the_layout_and_export_it_back() {
        let dev = Cpu::default();
        for arch in Arch::ALL {
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
