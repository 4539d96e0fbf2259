//! The forward pass alone, on plain slices: what evaluation and prediction run.
//!
//! The taped ops of [`super::layers`] serve training: each copies its input and weights out of
//! dfdx tensors, allocates its output as a new tensor and (under a tape) keeps what its
//! backward pass needs. A forward-only pass needs none of that. Here a network is a list of
//! stages holding their weights as plain vectors, prepared once (Winograd's transformed
//! weights included) and run over large batches, each stage one fused kernel call:
//!
//! - a 3×3 convolution with its bias, ReLU and 2×2 max pooling fused, by the same kernel the
//!   taped op picks for the same [`ConvAlgo`] and channel count (the direct stencil for few
//!   input channels, Winograd for more, or im2col then pooling);
//! - a dense layer as one GEMM over the whole batch, its bias and ReLU added in one pass.
//!
//! Flattening is free (the pooled output already is the row-major `(B, C·H·W)` matrix) and
//! dropout is the identity at inference.
//!
//! **Tolerance.** The stages call the taped ops' own kernels with the same arguments, so for the
//! same batch the logits are the taped forward's bit for bit; the only freedom left is the batch
//! split ([`INFER_BATCH`] images here), which a kernel may round differently. The promise, which
//! `crate/tests/inference.rs` checks on the published CNN and MLP, is that every logit is within
//! [`LOGIT_TOLERANCE`]` × (1 + |logit|)` of the taped forward's.

use super::gemm::{matmul, Layout};
use super::kernels::{self, ConvDims};
use super::layers::{ConvAlgo, ConvKernel};
use super::{direct, winograd};

/// Images per forward call: the products are this many images tall (a 1024-row GEMM for each
/// dense layer), while the CNN's largest intermediate, the second convolution's transformed
/// input, stays a few hundred MB.
pub const INFER_BATCH: usize = 1024;

/// How far the forward-only logits may be from the taped forward's, relative to `1 + |logit|`.
pub const LOGIT_TOLERANCE: f32 = 1e-5;

impl ConvKernel {
    fn describe(self) -> String {
        match self {
            ConvKernel::Direct => "direct 3x3 stencil, bias+ReLU+pool fused".into(),
            ConvKernel::Winograd => format!(
                "Winograd F(2x2,3x3), bias+ReLU+pool fused, {}",
                winograd::pooled_products()
            ),
            ConvKernel::Im2col => "im2col GEMM, bias+ReLU fused, then 2x2 max pool".into(),
        }
    }
}

/// One stage of a forward-only network.
#[derive(Clone, Debug)]
enum Stage {
    /// 3×3 'same' convolution + bias + ReLU + 2×2 max pooling on `side × side` planes.
    ConvPool {
        name: String,
        /// `(O, C, 3, 3)`, or Winograd's transformed weights when `kernel` is Winograd.
        weight: Vec<f32>,
        bias: Vec<f32>,
        c_in: usize,
        c_out: usize,
        side: usize,
        kernel: ConvKernel,
    },
    /// `y = x·Wᵀ + b` (ReLU when `relu`), `weight` `units × inputs`.
    Dense {
        name: String,
        weight: Vec<f32>,
        bias: Vec<f32>,
        inputs: usize,
        units: usize,
        relu: bool,
    },
}

/// A network's forward pass on plain slices, built stage by stage from its weights.
#[derive(Clone, Debug)]
pub struct Net {
    /// Values per input image.
    inputs: usize,
    stages: Vec<Stage>,
}

impl Net {
    /// An empty network on images of `inputs` values each (as `1 × side × side` planes when a
    /// convolution comes first).
    pub fn new(inputs: usize) -> Net {
        Net {
            inputs,
            stages: Vec::new(),
        }
    }

    /// Values each image has at the current end of the network.
    pub fn width(&self) -> usize {
        match self.stages.last() {
            None => self.inputs,
            Some(Stage::ConvPool { c_out, side, .. }) => c_out * (side / 2) * (side / 2),
            Some(Stage::Dense { units, .. }) => *units,
        }
    }

    /// Append a 3×3 convolution (ReLU, 2×2 max pooling) from `c_in` to `c_out` channels on
    /// `side × side` planes. `weight` is `(c_out, c_in, 3, 3)` row-major.
    #[allow(clippy::too_many_arguments)]
    pub fn conv_pool(
        mut self,
        name: &str,
        weight: &[f32],
        bias: &[f32],
        c_in: usize,
        c_out: usize,
        side: usize,
        algo: ConvAlgo,
    ) -> Net {
        assert_eq!(weight.len(), c_out * c_in * 9, "{name}: weight size");
        assert_eq!(bias.len(), c_out, "{name}: bias size");
        assert_eq!(self.width(), c_in * side * side, "{name}: input size");
        assert!(side.is_multiple_of(2), "{name}: pooling needs an even side");
        let kernel = ConvKernel::choose(algo, c_in);
        let weight = match kernel {
            ConvKernel::Winograd => winograd::transform_weights(weight, c_out, c_in),
            ConvKernel::Direct | ConvKernel::Im2col => weight.to_vec(),
        };
        self.stages.push(Stage::ConvPool {
            name: name.into(),
            weight,
            bias: bias.to_vec(),
            c_in,
            c_out,
            side,
            kernel,
        });
        self
    }

    /// Append a dense layer to `units` outputs (ReLU when `relu`); `weight` is `units × inputs`
    /// row-major, `inputs` being the current [`Net::width`].
    pub fn dense(
        mut self,
        name: &str,
        weight: &[f32],
        bias: &[f32],
        units: usize,
        relu: bool,
    ) -> Net {
        let inputs = self.width();
        assert_eq!(weight.len(), units * inputs, "{name}: weight size");
        assert_eq!(bias.len(), units, "{name}: bias size");
        self.stages.push(Stage::Dense {
            name: name.into(),
            weight: weight.to_vec(),
            bias: bias.to_vec(),
            inputs,
            units,
            relu,
        });
        self
    }

    /// One line per stage: its name and the kernel that computes it.
    pub fn kernels(&self) -> Vec<String> {
        self.stages
            .iter()
            .map(|s| match s {
                Stage::ConvPool { name, kernel, .. } => format!("{name}: {}", kernel.describe()),
                Stage::Dense { name, relu, .. } => format!(
                    "{name}: one GEMM a batch, bias{} fused",
                    if *relu { "+ReLU" } else { "" }
                ),
            })
            .collect()
    }

    /// Logits (the last stage's outputs, `n × width`) of `n` images stored one after another,
    /// computed [`INFER_BATCH`] images at a time.
    pub fn logits(&self, images: &[f32], n: usize) -> Vec<f32> {
        assert_eq!(images.len(), n * self.inputs, "image buffer size");
        let mut out = Vec::with_capacity(n * self.width());
        for start in (0..n).step_by(INFER_BATCH) {
            let b = INFER_BATCH.min(n - start);
            out.extend(self.batch_logits(&images[start * self.inputs..][..b * self.inputs], b));
        }
        out
    }

    /// The forward pass of one batch of `b` images.
    fn batch_logits(&self, images: &[f32], b: usize) -> Vec<f32> {
        let mut x = images.to_vec();
        for stage in &self.stages {
            x = stage.forward(&x, b);
        }
        x
    }
}

impl Stage {
    /// This stage's output for a batch of `b` inputs.
    fn forward(&self, x: &[f32], b: usize) -> Vec<f32> {
        match self {
            Stage::ConvPool {
                weight,
                bias,
                c_in,
                c_out,
                side,
                kernel,
                ..
            } => {
                let d = ConvDims::new(b, *c_in, *c_out, *side, *side);
                conv_pool(x, weight, bias, d, *kernel)
            }
            Stage::Dense {
                weight,
                bias,
                inputs,
                units,
                relu,
                ..
            } => dense(x, weight, bias, b, *inputs, *units, *relu),
        }
    }
}

/// Convolution, bias, ReLU and 2×2 max pooling of a batch, by `kernel`: the pooled values only
/// (the winners, which the backward pass needs, are never written here).
fn conv_pool(x: &[f32], weight: &[f32], bias: &[f32], d: ConvDims, kernel: ConvKernel) -> Vec<f32> {
    match kernel {
        ConvKernel::Direct => direct::conv_forward_pooled_values(x, weight, bias, d, true),
        ConvKernel::Winograd => winograd::conv_forward_pooled_values(x, weight, bias, d, true),
        ConvKernel::Im2col => {
            let mut col = vec![0.0f32; d.col_len()];
            kernels::im2col(x, d, &mut col);
            let full = kernels::conv_forward(&col, weight, bias, d, true);
            drop(col);
            kernels::maxpool_forward(&full, d.batch * d.c_out, d.h, d.w).0
        }
    }
}

/// `y (b × units) = x (b × inputs) · Wᵀ + bias`, ReLU when `relu`: one GEMM and one pass, the
/// same arithmetic as the taped [`super::layers::dense`].
#[allow(clippy::too_many_arguments)]
fn dense(
    x: &[f32],
    weight: &[f32],
    bias: &[f32],
    b: usize,
    inputs: usize,
    units: usize,
    relu: bool,
) -> Vec<f32> {
    let mut y = vec![0.0f32; b * units];
    matmul(
        b,
        units,
        inputs,
        x,
        Layout::Normal,
        weight,
        Layout::Transposed,
        &mut y,
        false,
    );
    for row in y.chunks_mut(units) {
        for (v, bo) in row.iter_mut().zip(bias) {
            *v += bo;
            if relu && *v < 0.0 {
                *v = 0.0;
            }
        }
    }
    y
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(n: usize, scale: f32) -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 37 % 101) as f32 / 50.0 - 1.0) * scale)
            .collect()
    }

    /// A dense layer by hand: `y = relu(x·Wᵀ + b)`.
    #[test]
    fn a_dense_stage_is_the_affine_map_and_its_relu() {
        let (b, i, o) = (3, 5, 4);
        let (x, w, bias) = (ramp(b * i, 1.0), ramp(o * i, 0.5), ramp(o, 0.2));
        let net = Net::new(i).dense("d", &w, &bias, o, true);
        let y = net.logits(&x, b);
        for r in 0..b {
            for u in 0..o {
                let s: f32 = (0..i).map(|k| x[r * i + k] * w[u * i + k]).sum::<f32>() + bias[u];
                assert!((y[r * o + u] - s.max(0.0)).abs() < 1e-5, "{r},{u}");
            }
        }
    }

    /// Every convolution kernel computes the same function (up to rounding), and batches split
    /// at [`INFER_BATCH`] give the numbers of the images taken alone (here the last batch is one
    /// image, so both run the same products).
    #[test]
    fn the_three_convolution_kernels_agree_and_batches_split_cleanly() {
        let (c_in, c_out, side) = (4, 6, 8);
        let (w, bias) = (ramp(c_out * c_in * 9, 0.3), ramp(c_out, 0.1));
        let n = INFER_BATCH + 1;
        let x = ramp(n * c_in * side * side, 1.0);
        let net =
            |algo, c| Net::new(c_in * side * side).conv_pool("c", &w, &bias, c, c_out, side, algo);
        let wino = net(ConvAlgo::Winograd, c_in);
        let im2col = net(ConvAlgo::Im2col, c_in);
        assert_eq!(
            wino.kernels(),
            vec![format!(
                "c: Winograd F(2x2,3x3), bias+ReLU+pool fused, {}",
                winograd::pooled_products()
            )]
        );
        let (a, b) = (wino.logits(&x, n), im2col.logits(&x, n));
        assert_eq!(a.len(), n * c_out * (side / 2) * (side / 2));
        assert!(a.iter().zip(&b).all(|(p, q)| (p - q).abs() < 1e-5));
        assert!(a.iter().all(|v| *v >= 0.0) && a.iter().any(|v| *v > 0.0));
        let per = c_in * side * side;
        let last = wino.logits(&x[(n - 1) * per..], 1);
        assert_eq!(&a[(n - 1) * last.len()..], &last[..]);
        assert_eq!(
            ConvKernel::choose(ConvAlgo::Winograd, 1),
            ConvKernel::Direct
        );
        assert_eq!(ConvKernel::choose(ConvAlgo::Im2col, 1), ConvKernel::Im2col);
    }
}
