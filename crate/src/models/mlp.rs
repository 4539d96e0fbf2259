//! The published multilayer perceptron, 784 → 224 (ReLU, dropout) → 288 (ReLU, dropout) → 10,
//! and the one-hidden-layer MLP with the CNN's parameter budget, 784 → 1,586 (ReLU, dropout) → 10.

use dfdx::prelude::*;
use dfdx::tensor::{Cpu, CpuError};

use super::{Classifier, Logits, TrainLogits};
use crate::engine::layers::{dropout, Dense};
use crate::engine::mix_seed;
use crate::engine::params::{Param, Weights};

/// A batch of flattened 28×28 images, and the batch's ten logits, carrying tape `T`.
type Flat<B, T> = Tensor<(B, Const<784>), f32, Cpu, T>;
type Out<B, T> = Tensor<(B, Const<10>), f32, Cpu, T>;

/// An MLP with two hidden layers of `H1` and `H2` units; the published one is `Mlp<224, 288>`.
/// Field names are the layer names of the original Keras model.
#[derive(Clone, Debug)]
pub struct Mlp<const H1: usize, const H2: usize> {
    pub dense_1: Dense<784, H1>,
    pub dense_2: Dense<H1, H2>,
    pub output: Dense<H2, 10>,
    /// Dropout rate after each hidden layer, used in training only.
    pub dropout: f32,
}

impl<const H1: usize, const H2: usize> Mlp<H1, H2> {
    /// Build from weights already checked against the architecture's layout.
    pub fn from_weights(dev: &Cpu, w: &Weights, dropout: f32) -> Self {
        let t = &w.tensors;
        Mlp {
            dense_1: Dense::from_named(dev, &t[0], &t[1], true, false),
            dense_2: Dense::from_named(dev, &t[2], &t[3], true, true),
            output: Dense::from_named(dev, &t[4], &t[5], false, true),
            dropout,
        }
    }

    /// Logits for a batch; dropout masks are drawn from `seed` when `T` records a tape
    /// (training), and dropout is the identity otherwise.
    pub fn forward_seeded<B: Dim, T: Tape<f32, Cpu>>(&self, x: Flat<B, T>, seed: u64) -> Out<B, T> {
        let x = dropout(self.dense_1.forward(x), self.dropout, mix_seed(seed, 1));
        let x = dropout(self.dense_2.forward(x), self.dropout, mix_seed(seed, 2));
        self.output.forward(x)
    }
}

impl<const H1: usize, const H2: usize, B: Dim> Module<Tensor<(B, Const<784>), f32, Cpu>>
    for Mlp<H1, H2>
{
    type Output = Tensor<(B, Const<10>), f32, Cpu>;
    type Error = CpuError;

    fn try_forward(&self, x: Tensor<(B, Const<784>), f32, Cpu>) -> Result<Self::Output, CpuError> {
        Ok(self.forward_seeded(x, 0))
    }
}

impl<const H1: usize, const H2: usize> Classifier for Mlp<H1, H2> {
    weights_and_biases_of!(dense_1, dense_2, output);
    logits_through_forward_seeded!(|n| (n, Const::<784>));
}

/// An MLP with one hidden layer of `H` units; the study's is `MlpOne<1586>`, as many parameters
/// as the CNN. Its layers are named like the published MLP's first and last.
#[derive(Clone, Debug)]
pub struct MlpOne<const H: usize> {
    pub dense_1: Dense<784, H>,
    pub output: Dense<H, 10>,
    /// Dropout rate after the hidden layer, used in training only.
    pub dropout: f32,
}

impl<const H: usize> MlpOne<H> {
    /// Build from weights already checked against the architecture's layout.
    pub fn from_weights(dev: &Cpu, w: &Weights, dropout: f32) -> Self {
        let t = &w.tensors;
        MlpOne {
            dense_1: Dense::from_named(dev, &t[0], &t[1], true, false),
            output: Dense::from_named(dev, &t[2], &t[3], false, true),
            dropout,
        }
    }

    /// Logits for a batch; dropout as in [`Mlp::forward_seeded`], salted as its first layer's.
    pub fn forward_seeded<B: Dim, T: Tape<f32, Cpu>>(&self, x: Flat<B, T>, seed: u64) -> Out<B, T> {
        let x = dropout(self.dense_1.forward(x), self.dropout, mix_seed(seed, 1));
        self.output.forward(x)
    }
}

impl<const H: usize> Classifier for MlpOne<H> {
    weights_and_biases_of!(dense_1, output);
    logits_through_forward_seeded!(|n| (n, Const::<784>));
}
