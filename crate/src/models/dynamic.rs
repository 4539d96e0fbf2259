//! The MLP and CNN with sizes chosen at run time, for the hyperparameter search.
//!
//! A search candidate's layer sizes are data, so they cannot be type parameters. These models
//! run the very ops of the typed ones (`dense`, `conv2d_3x3`, `maxpool2x2`, `reshape`,
//! `dropout`, all generic over [`Dim`]) with `usize` sizes, in the same order and with the same
//! dropout salts, so for the published sizes they compute bit for bit what [`super::Mlp`] and
//! [`super::Cnn`] compute. Only the class count stays a type (`Const<10>`): it is what
//! [`Classifier`] hands to the loss.

use dfdx::prelude::*;
use dfdx::tensor::Cpu;

use super::{Classifier, Logits, TrainLogits};
use crate::engine::layers::{
    conv2d_3x3_pooled, dense, dropout, reshape, ConvAlgo, ConvOpts, DenseOpts,
};
use crate::engine::mix_seed;
use crate::engine::params::{NamedTensor, Param, Weights};

/// A fully connected layer with a runtime input size and `O` outputs (`usize` or `Const<10>`).
#[derive(Clone, Debug)]
struct DenseN<O: Dim> {
    weight: Tensor<(O, usize), f32, Cpu>,
    bias: Tensor<(O,), f32, Cpu>,
    opts: DenseOpts,
}

impl<O: Dim> DenseN<O> {
    /// `out` turns the stored output size into the layer's `O`; the weights were checked
    /// against the architecture's layout before, so the sizes agree.
    fn new(
        dev: &Cpu,
        w: &NamedTensor,
        b: &NamedTensor,
        out: O,
        relu: bool,
        input_grad: bool,
    ) -> Self {
        debug_assert_eq!(out.size(), w.shape[0], "{}", w.name);
        DenseN {
            weight: dev.tensor_from_vec(w.data.clone(), (out, w.shape[1])),
            bias: dev.tensor_from_vec(b.data.clone(), (out,)),
            opts: DenseOpts { relu, input_grad },
        }
    }

    fn forward<T: Tape<f32, Cpu>>(
        &self,
        x: Tensor<(usize, usize), f32, Cpu, T>,
    ) -> Tensor<(usize, O), f32, Cpu, T> {
        dense(x, &self.weight, &self.bias, self.opts)
    }

    fn params(&self) -> [&dyn Param; 2] {
        [&self.weight, &self.bias]
    }

    fn params_mut(&mut self) -> [&mut dyn Param; 2] {
        [&mut self.weight, &mut self.bias]
    }
}

/// A 3×3 'same' convolution with runtime channel counts, ReLU fused.
#[derive(Clone, Debug)]
struct ConvN {
    weight: Tensor<(usize, usize, Const<3>, Const<3>), f32, Cpu>,
    bias: Tensor<(usize,), f32, Cpu>,
    opts: ConvOpts,
}

impl ConvN {
    fn new(dev: &Cpu, w: &NamedTensor, b: &NamedTensor, input_grad: bool) -> Self {
        ConvN {
            weight: dev.tensor_from_vec(w.data.clone(), (w.shape[0], w.shape[1], Const, Const)),
            bias: dev.tensor_from_vec(b.data.clone(), (b.shape[0],)),
            opts: ConvOpts {
                relu: true,
                input_grad,
                algo: ConvAlgo::default(),
            },
        }
    }

    /// Convolution then 2×2 max pooling, as every convolution of these models is followed.
    fn forward_pooled<T: Tape<f32, Cpu>>(
        &self,
        x: Tensor<(usize, usize, usize, usize), f32, Cpu, T>,
    ) -> Tensor<(usize, usize, usize, usize), f32, Cpu, T> {
        let (_, _, h, w) = *x.shape();
        conv2d_3x3_pooled(x, &self.weight, &self.bias, self.opts, h / 2, w / 2)
    }

    fn params(&self) -> [&dyn Param; 2] {
        [&self.weight, &self.bias]
    }

    fn params_mut(&mut self) -> [&mut dyn Param; 2] {
        [&mut self.weight, &mut self.bias]
    }
}

/// 784 → `h1` (ReLU, dropout) → `h2` (ReLU, dropout) → 10, sizes taken from the weights.
#[derive(Clone, Debug)]
pub struct MlpDyn {
    dense_1: DenseN<usize>,
    dense_2: DenseN<usize>,
    output: DenseN<Const<10>>,
    dropout: f32,
}

impl MlpDyn {
    /// Build from weights already checked against an `Arch::MlpOf` layout.
    pub fn from_weights(dev: &Cpu, w: &Weights, dropout: f32) -> Self {
        let t = &w.tensors;
        MlpDyn {
            dense_1: DenseN::new(dev, &t[0], &t[1], t[0].shape[0], true, false),
            dense_2: DenseN::new(dev, &t[2], &t[3], t[2].shape[0], true, true),
            output: DenseN::new(dev, &t[4], &t[5], Const, false, true),
            dropout,
        }
    }

    fn forward_seeded<T: Tape<f32, Cpu>>(
        &self,
        x: Tensor<(usize, usize), f32, Cpu, T>,
        seed: u64,
    ) -> Tensor<(usize, Const<10>), f32, Cpu, T> {
        let x = dropout(self.dense_1.forward(x), self.dropout, mix_seed(seed, 1));
        let x = dropout(self.dense_2.forward(x), self.dropout, mix_seed(seed, 2));
        self.output.forward(x)
    }
}

impl Classifier for MlpDyn {
    fn params(&self) -> Vec<&dyn Param> {
        [
            self.dense_1.params(),
            self.dense_2.params(),
            self.output.params(),
        ]
        .concat()
    }

    fn params_mut(&mut self) -> Vec<&mut dyn Param> {
        let mut out = Vec::with_capacity(6);
        out.extend(self.dense_1.params_mut());
        out.extend(self.dense_2.params_mut());
        out.extend(self.output.params_mut());
        out
    }

    logits_through_forward_seeded!(|n| (n, 784));
}

/// Conv `c1` → pool → (conv `c2` → pool) → flatten → dense (ReLU, dropout) → 10, sizes and the
/// presence of the second convolution taken from the weights.
#[derive(Clone, Debug)]
pub struct CnnDyn {
    conv2d: ConvN,
    conv2d_1: Option<ConvN>,
    dense: DenseN<usize>,
    dense_1: DenseN<Const<10>>,
    dropout: f32,
}

impl CnnDyn {
    /// Build from weights already checked against an `Arch::CnnOf` layout (6 tensors without
    /// the second convolution, 8 with it).
    pub fn from_weights(dev: &Cpu, w: &Weights, dropout: f32) -> Self {
        let t = &w.tensors;
        let (conv2d_1, rest) = if t.len() == 8 {
            (Some(ConvN::new(dev, &t[2], &t[3], true)), &t[4..])
        } else {
            (None, &t[2..])
        };
        CnnDyn {
            // The images need no gradient: skip the first layer's input gradient.
            conv2d: ConvN::new(dev, &t[0], &t[1], false),
            conv2d_1,
            dense: DenseN::new(dev, &rest[0], &rest[1], rest[0].shape[0], true, true),
            dense_1: DenseN::new(dev, &rest[2], &rest[3], Const, false, true),
            dropout,
        }
    }

    fn forward_seeded<T: Tape<f32, Cpu>>(
        &self,
        x: Tensor<(usize, usize, usize, usize), f32, Cpu, T>,
        seed: u64,
    ) -> Tensor<(usize, Const<10>), f32, Cpu, T> {
        let mut x = self.conv2d.forward_pooled(x);
        if let Some(conv) = &self.conv2d_1 {
            x = conv.forward_pooled(x);
        }
        let (b, c, h, w) = *x.shape();
        let x = reshape(x, (b, c * h * w));
        let x = dropout(self.dense.forward(x), self.dropout, mix_seed(seed, 1));
        self.dense_1.forward(x)
    }
}

impl Classifier for CnnDyn {
    fn params(&self) -> Vec<&dyn Param> {
        let mut out: Vec<&dyn Param> = self.conv2d.params().to_vec();
        if let Some(c) = &self.conv2d_1 {
            out.extend(c.params());
        }
        out.extend(self.dense.params());
        out.extend(self.dense_1.params());
        out
    }

    fn params_mut(&mut self) -> Vec<&mut dyn Param> {
        let mut out = Vec::with_capacity(8);
        out.extend(self.conv2d.params_mut());
        if let Some(c) = &mut self.conv2d_1 {
            out.extend(c.params_mut());
        }
        out.extend(self.dense.params_mut());
        out.extend(self.dense_1.params_mut());
        out
    }

    logits_through_forward_seeded!(|n| (n, 1, 28, 28));

    fn set_conv(&mut self, algo: ConvAlgo) {
        self.conv2d.opts.algo = algo;
        if let Some(conv) = &mut self.conv2d_1 {
            conv.opts.algo = algo;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Arch;
    use super::*;
    use rand::{rngs::StdRng, Rng, SeedableRng};

    /// Training logits and every parameter's gradient for one batch with dropout on.
    fn step(
        model: &dyn Classifier,
        dev: &Cpu,
        images: &[f32],
        n: usize,
    ) -> (Vec<f32>, Vec<Vec<f32>>) {
        let mut grads = Gradients::leaky();
        for p in model.params() {
            p.alloc_grad(&mut grads);
        }
        let logits = model.train_logits(dev, images, n, 99, grads);
        let values = logits.as_vec();
        let mut onehot = vec![0.0f32; n * 10];
        for i in 0..n {
            onehot[i * 10 + (i * 7) % 10] = 1.0;
        }
        let target = dev.tensor_from_vec(onehot, (n, Const::<10>));
        let mut grads = cross_entropy_with_logits_loss(logits, target).backward();
        (
            values,
            model
                .params()
                .iter()
                .map(|p| p.grad(&mut grads).to_vec())
                .collect(),
        )
    }

    /// The sized variant with the published sizes gives exactly the typed model's logits
    /// (inference and training) and gradients for the same weights.
    fn same_as_typed(typed: Arch, sized: Arch, dropout: f32) {
        assert_eq!(
            sized.layout(),
            typed.layout(),
            "same names, shapes and order"
        );
        let dev = Cpu::default();
        let w = typed.init(11);
        let sized_w = Weights {
            arch: sized.to_string(),
            ..w.clone()
        };
        assert_eq!(sized.init(11), sized_w, "same initial weights");
        let a = typed.build(&dev, &w, dropout).unwrap();
        let b = sized.build(&dev, &sized_w, dropout).unwrap();
        let n = 5;
        let mut rng = StdRng::seed_from_u64(3);
        let images: Vec<f32> = (0..n * 784).map(|_| rng.gen_range(0.0..1.0)).collect();
        assert_eq!(
            a.logits(&dev, &images, n).as_vec(),
            b.logits(&dev, &images, n).as_vec()
        );
        let (la, ga) = step(a.as_ref(), &dev, &images, n);
        let (lb, gb) = step(b.as_ref(), &dev, &images, n);
        assert_eq!(la, lb, "{sized}: training logits");
        assert_eq!(ga.len(), gb.len());
        for (spec, (x, y)) in typed.layout().iter().zip(ga.iter().zip(&gb)) {
            assert!(x.iter().any(|v| *v != 0.0), "{}: no gradient", spec.name);
            assert_eq!(x, y, "{sized}: gradient of {}", spec.name);
        }
    }

    #[test]
    fn sized_mlp_with_published_sizes_is_the_typed_mlp() {
        same_as_typed(Arch::Mlp, Arch::MlpOf { h1: 224, h2: 288 }, 0.3);
    }

    #[test]
    fn sized_cnn_with_published_sizes_is_the_typed_cnn() {
        let sized = Arch::CnnOf {
            c1: 32,
            c2: Some(192),
            dense: 128,
        };
        same_as_typed(Arch::Cnn, sized, 0.2);
    }

    #[test]
    fn other_sizes_build_hold_their_layout_and_export_it_back() {
        let dev = Cpu::default();
        for arch in [
            Arch::MlpOf { h1: 32, h2: 480 },
            Arch::CnnOf {
                c1: 16,
                c2: Some(64),
                dense: 64,
            },
            Arch::CnnOf {
                c1: 8,
                c2: None,
                dense: 24,
            },
        ] {
            let w = arch.init(2);
            let model = arch.build(&dev, &w, 0.25).unwrap();
            let total: usize = model.params().iter().map(|p| p.num_elements()).sum();
            assert_eq!(total, arch.num_params(), "{arch}");
            assert_eq!(super::super::export_weights(arch, model.as_ref()), w);
            let images = vec![0.5f32; 2 * 784];
            let (logits, grads) = step(model.as_ref(), &dev, &images, 2);
            assert_eq!(logits.len(), 20);
            assert!(logits.iter().all(|v| v.is_finite()));
            assert_eq!(grads.len(), arch.layout().len());
        }
    }
}
