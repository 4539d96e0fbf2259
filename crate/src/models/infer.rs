//! A model's weights as plain slices, and its forward-only pass ([`Net`]): what evaluation,
//! prediction and the study's predictions run, without dfdx tensors or a tape.
//!
//! The network is read off the architecture's layer table, the same single source as the
//! parameter layout: each convolution (ReLU, then 2×2 pooling, in every CNN here) becomes one
//! fused convolution stage, each dense layer one GEMM stage, with ReLU on every dense layer but
//! the last (whose outputs are the logits). Dropout is the identity at inference and leaves
//! no stage. It covers every architecture [`Arch`] names: the published MLP, CNN and wide MLP,
//! and the sized variants the search trains.

use super::{export_weights, Arch, Classifier, ConvAlgo, Weights};
use crate::engine::infer::Net;
use crate::Result;

/// Side of the square images every model takes.
const SIDE: usize = 28;

impl Arch {
    /// The forward-only network of `weights` (checked against this architecture's layout
    /// first), its convolutions computed with `conv`.
    pub fn inference_net(self, weights: &Weights, conv: ConvAlgo) -> Result<Net> {
        self.check_weights(weights)?;
        let layers: Vec<_> = self
            .layers()
            .into_iter()
            .filter(|l| !l.params.is_empty())
            .collect();
        let mut tensors = weights.tensors.chunks_exact(2);
        let mut net = Net::new(SIDE * SIDE);
        let mut side = SIDE;
        for (i, layer) in layers.iter().enumerate() {
            let [w, b] = tensors.next().expect("a weight and a bias per layer") else {
                unreachable!("chunks of two")
            };
            net = match *w.shape.as_slice() {
                [c_out, c_in, 3, 3] => {
                    let net = net.conv_pool(&layer.name, &w.data, &b.data, c_in, c_out, side, conv);
                    side /= 2;
                    net
                }
                [units, _] => {
                    let hidden = i + 1 < layers.len();
                    net.dense(&layer.name, &w.data, &b.data, units, hidden)
                }
                _ => unreachable!("the layout holds only dense and 3x3 convolution weights"),
            };
        }
        Ok(net)
    }
}

/// The forward-only network of a built model of architecture `arch`, its convolutions
/// computed with `conv`: what a model being trained is evaluated with.
pub fn model_net(arch: Arch, model: &dyn Classifier, conv: ConvAlgo) -> Result<Net> {
    arch.inference_net(&export_weights(arch, model), conv)
}
