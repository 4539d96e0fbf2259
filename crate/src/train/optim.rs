//! Adam on plain parameter vectors, with the state a checkpoint can hold.
//!
//! dfdx's own `Adam` keeps its moments private, so an interrupted run could not resume to the
//! same weights; this one is Keras's Adam (the original study's optimiser, including its
//! epsilon of 1e-7), and its whole state is three [`Weights`]-shaped arrays and a step count.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::models::Weights;

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdamConfig {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
}

impl AdamConfig {
    /// Keras's defaults with the given learning rate.
    pub fn keras(lr: f32) -> Self {
        AdamConfig {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-7,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Adam {
    pub cfg: AdamConfig,
    /// Steps taken so far.
    pub t: u64,
    /// First and second moment estimates, shaped like the weights.
    pub m: Weights,
    pub v: Weights,
}

impl Adam {
    pub fn new(cfg: AdamConfig, like: &Weights) -> Self {
        let zeros = |w: &Weights| {
            let mut z = w.clone();
            z.tensors.iter_mut().for_each(|t| t.data.fill(0.0));
            z
        };
        Adam {
            cfg,
            t: 0,
            m: zeros(like),
            v: zeros(like),
        }
    }

    /// Start a step: advance the step count and return the learning rate with both bias
    /// corrections folded in, as Keras computes it.
    pub fn begin_step(&mut self) -> f32 {
        self.t += 1;
        let t = self.t as i32;
        let (b1, b2) = (self.cfg.beta1 as f64, self.cfg.beta2 as f64);
        (self.cfg.lr as f64 * (1.0 - b2.powi(t)).sqrt() / (1.0 - b1.powi(t))) as f32
    }

    /// Update parameter tensor `i` in place from its gradient, with the rate from [`Self::begin_step`].
    /// Each weight's update reads only its own values, so a large tensor is cut into pieces
    /// updated on several threads, at the widest vectors: the same numbers on any thread count
    /// and vector width (no multiply is fused into an addition, and `sqrt` and division are
    /// exact at every width).
    pub fn update(&mut self, i: usize, alpha: f32, param: &mut [f32], grad: &[f32]) {
        /// Weights a thread updates at a time; a smaller tensor is updated on this thread.
        const PIECE: usize = 1 << 16;
        let cfg = self.cfg;
        let m = &mut self.m.tensors[i].data;
        let v = &mut self.v.tensors[i].data;
        let piece = |p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]| {
            crate::engine::simd::wide(
                #[inline(always)]
                || adam_piece(cfg, alpha, p, g, m, v),
            )
        };
        if param.len() <= PIECE {
            return piece(param, grad, m, v);
        }
        param
            .par_chunks_mut(PIECE)
            .zip(grad.par_chunks(PIECE))
            .zip(m.par_chunks_mut(PIECE))
            .zip(v.par_chunks_mut(PIECE))
            .for_each(|(((p, g), m), v)| piece(p, g, m, v));
    }
}

/// Adam's update of one piece of a tensor: its weights `param`, gradient and moments.
#[inline(always)]
fn adam_piece(
    cfg: AdamConfig,
    alpha: f32,
    param: &mut [f32],
    grad: &[f32],
    m: &mut [f32],
    v: &mut [f32],
) {
    let AdamConfig {
        beta1, beta2, eps, ..
    } = cfg;
    for (((p, g), m), v) in param
        .iter_mut()
        .zip(grad)
        .zip(m.iter_mut())
        .zip(v.iter_mut())
    {
        *m += (g - *m) * (1.0 - beta1);
        *v += (g * g - *v) * (1.0 - beta2);
        *p -= alpha * *m / (v.sqrt() + eps);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::NamedTensor;

    /// Adam at learning rate `lr` over one tensor holding `data`, and a copy of `data` to step.
    fn one_tensor(data: &[f32], lr: f32) -> (Adam, Vec<f32>) {
        let w = Weights {
            arch: "t".into(),
            tensors: vec![NamedTensor {
                name: "x".into(),
                shape: vec![data.len()],
                data: data.to_vec(),
            }],
        };
        (Adam::new(AdamConfig::keras(lr), &w), data.to_vec())
    }

    #[test]
    fn first_step_moves_each_weight_by_the_learning_rate_against_its_gradient() {
        // With bias correction, Adam's first step is lr · g/|g| (up to epsilon).
        let (mut adam, mut p) = one_tensor(&[1.0, 2.0, 3.0], 0.01);
        let alpha = adam.begin_step();
        adam.update(0, alpha, &mut p, &[0.5, -2.0, 0.0]);
        assert!(
            (p[0] - 0.99).abs() < 1e-5 && (p[1] - 2.01).abs() < 1e-5 && p[2] == 3.0,
            "{p:?}"
        );
    }

    /// A tensor of several pieces, updated on 3 threads at the widest vectors, gets the bits of
    /// the same update written out one weight at a time at the baseline.
    #[test]
    fn a_tensor_in_pieces_on_threads_updates_as_one_weight_at_a_time() {
        let n = 3 * (1 << 16) + 1234;
        let value = |i: usize, s: f32| ((i * 2654435761) % 1000) as f32 / 997.0 * s - 0.3;
        let (mut adam, mut p) =
            one_tensor(&(0..n).map(|i| value(i, 2.0)).collect::<Vec<_>>(), 0.01);
        let mut want = (p.clone(), vec![0.0f32; n], vec![0.0f32; n]);
        for step in 0..3 {
            let g: Vec<f32> = (0..n).map(|i| value(i + 7 * step, 0.5)).collect();
            let alpha = adam.begin_step();
            crate::runtime::with_threads(3, || adam.update(0, alpha, &mut p, &g));
            let (w, m, v) = &mut want;
            for i in 0..n {
                adam_piece(
                    adam.cfg,
                    alpha,
                    &mut w[i..=i],
                    &g[i..=i],
                    &mut m[i..=i],
                    &mut v[i..=i],
                );
            }
        }
        let bits = |x: &[f32]| x.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        assert!(bits(&p) == bits(&want.0), "weights");
        assert!(
            bits(&adam.m.tensors[0].data) == bits(&want.1),
            "first moments"
        );
        assert!(
            bits(&adam.v.tensors[0].data) == bits(&want.2),
            "second moments"
        );
    }

    #[test]
    fn minimises_a_quadratic() {
        let (mut adam, mut p) = one_tensor(&[3.0, -4.0], 0.05);
        for _ in 0..2000 {
            let g: Vec<f32> = p.iter().map(|x| 2.0 * x).collect();
            let alpha = adam.begin_step();
            adam.update(0, alpha, &mut p, &g);
        }
        assert!(p.iter().all(|x| x.abs() < 1e-2), "{p:?}");
    }
}
