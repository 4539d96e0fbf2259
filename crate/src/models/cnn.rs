//! The published convolutional network:
//! 28×28×1 → Conv 3×3 32 (ReLU) → MaxPool 2 → Conv 3×3 192 (ReLU) → MaxPool 2 → Flatten 9408
//! → Dense 128 (ReLU) → Dropout → Dense 10.

use dfdx::prelude::*;
use dfdx::tensor::{Cpu, CpuError};

use super::{Classifier, Logits, TrainLogits};
use crate::engine::layers::{dropout, Conv2D, ConvAlgo, Dense, Flatten2D};
use crate::engine::mix_seed;
use crate::engine::params::{Param, Weights};

/// Field names are the layer names of the original Keras model.
#[derive(Clone, Debug)]
pub struct Cnn {
    pub conv2d: Conv2D<1, 32>,
    pub conv2d_1: Conv2D<32, 192>,
    pub dense: Dense<9408, 128>,
    pub dense_1: Dense<128, 10>,
    /// Dropout rate after the dense layer, used in training only.
    pub dropout: f32,
}

impl Cnn {
    /// Build from weights already checked against the architecture's layout.
    pub fn from_weights(dev: &Cpu, w: &Weights, dropout: f32) -> Self {
        let t = &w.tensors;
        Cnn {
            // The images need no gradient: skip the first layer's input gradient.
            conv2d: Conv2D::from_named(dev, &t[0], &t[1], false),
            conv2d_1: Conv2D::from_named(dev, &t[2], &t[3], true),
            dense: Dense::from_named(dev, &t[4], &t[5], true, true),
            dense_1: Dense::from_named(dev, &t[6], &t[7], false, true),
            dropout,
        }
    }

    /// Logits for a batch; dropout masks come from `seed` when `T` records a tape (training).
    pub fn forward_seeded<B: Dim, T: Tape<f32, Cpu>>(
        &self,
        x: Tensor<(B, Const<1>, Const<28>, Const<28>), f32, Cpu, T>,
        seed: u64,
    ) -> Tensor<(B, Const<10>), f32, Cpu, T> {
        // Each convolution (ReLU fused) and its pooling run as one op: the same numbers as
        // `MaxPool2D.forward(self.conv2d.forward(x))`, without the full-size intermediate.
        let x = self.conv2d.forward_pooled(x);
        let x = self.conv2d_1.forward_pooled(x);
        let x = Flatten2D::<9408>.forward(x);
        let x = dropout(self.dense.forward(x), self.dropout, mix_seed(seed, 1));
        self.dense_1.forward(x)
    }
}

impl<B: Dim> Module<Tensor<(B, Const<1>, Const<28>, Const<28>), f32, Cpu>> for Cnn {
    type Output = Tensor<(B, Const<10>), f32, Cpu>;
    type Error = CpuError;

    fn try_forward(
        &self,
        x: Tensor<(B, Const<1>, Const<28>, Const<28>), f32, Cpu>,
    ) -> Result<Self::Output, CpuError> {
        Ok(self.forward_seeded(x, 0))
    }
}

impl Classifier for Cnn {
    weights_and_biases_of!(conv2d, conv2d_1, dense, dense_1);
    logits_through_forward_seeded!(|n| (n, Const::<1>, Const::<28>, Const::<28>));

    fn set_conv(&mut self, algo: ConvAlgo) {
        self.conv2d.opts.algo = algo;
        self.conv2d_1.opts.algo = algo;
    }
}
