//! A few optimisation steps with their gradients laid bare, for checking that training gives
//! the same numbers however it is split up: in one process, or across notebook cells.
//!
//! evcxr gives every cell its own copy of dfdx's tensor-id counter, so tensors made in two
//! cells can share an id and their gradients alias. The crate avoids that by keeping only
//! plain data between calls (weights, Adam's moments) and building each dfdx model inside the
//! call that uses it. `notebooks/tests/cross-cell.ipynb` runs these steps split over three
//! cells and `notebooks/tests/check_cross_cell.py` compares them with the same steps run in
//! one process (`cargo run --example cross_cell_reference`).

use dfdx::prelude::*;
use dfdx::tensor::Cpu;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::data::checksums::hex;
use crate::data::Dataset;
use crate::engine::mix_seed;
use crate::models::{Arch, Weights};
use crate::train::optim::{Adam, AdamConfig};
use crate::train::{adam_step, gather_batch};
use crate::{Error, Result};

/// One step: the batch's loss before the update, and its gradient.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProbeStep {
    pub step: usize,
    pub loss: f32,
    /// Sum of squares of every parameter's gradient.
    pub grad_sq_sum: f64,
    /// sha256 of all gradients' little-endian bytes, parameter after parameter: equal only if
    /// every gradient is equal to the bit.
    pub grad_sha256: String,
}

impl ProbeStep {
    /// One line of JSON (what the notebook test prints and compares).
    pub fn json(&self) -> String {
        serde_json::to_string(self).expect("a step serialises")
    }
}

/// Where a sequence of probed steps stands: plain data, safe to keep between notebook cells.
#[derive(Clone, Debug)]
pub struct ProbeState {
    pub arch: Arch,
    pub weights: Weights,
    pub adam: Adam,
    /// Steps taken so far (numbers the dropout seeds, so a split run draws the same masks).
    pub steps_done: usize,
}

impl ProbeState {
    /// Fresh weights of `arch` from `seed` and a Keras Adam at `lr`.
    pub fn new(arch: Arch, seed: u64, lr: f32) -> Self {
        let weights = arch.init(seed);
        let adam = Adam::new(AdamConfig::keras(lr), &weights);
        ProbeState {
            arch,
            weights,
            adam,
            steps_done: 0,
        }
    }
}

/// Take `steps` Adam steps on the first `batch` images of `ds` (dropout at the architecture's
/// default rate, seeded by `seed` and the step number), building the dfdx model inside this
/// call. Returns each step's loss and gradient fingerprint; `state` moves on.
pub fn probe_steps(
    state: &mut ProbeState,
    ds: &Dataset,
    batch: usize,
    steps: usize,
    seed: u64,
) -> Result<Vec<ProbeStep>> {
    let m = batch.min(ds.len());
    if m == 0 {
        return Err(Error::invalid("probe steps need at least one image"));
    }
    let dev = Cpu::default();
    let mut model = state
        .arch
        .build(&dev, &state.weights, state.arch.default_dropout())?;
    let idx: Vec<usize> = (0..m).collect();
    let mut images = vec![0.0f32; m * ds.pixels()];
    let onehot = gather_batch(ds, &idx, &mut images);
    let mut out = Vec::with_capacity(steps);
    for _ in 0..steps {
        let step = state.steps_done;
        let mut grads = Gradients::leaky();
        for p in model.params() {
            p.alloc_grad(&mut grads);
        }
        let logits = model.train_logits(&dev, &images, m, mix_seed(seed, step as u64), grads);
        let loss = cross_entropy_with_logits_loss(
            logits,
            dev.tensor_from_vec(onehot.clone(), (m, Const::<10>)),
        );
        let loss_value = loss.array();
        if !loss_value.is_finite() {
            return Err(Error::invalid(format!(
                "probe step {step}: the loss is {loss_value}; lower the learning rate"
            )));
        }
        let mut grads = loss.backward();
        let mut hasher = Sha256::new();
        let mut sq = 0.0f64;
        for p in model.params() {
            let g = p.grad(&mut grads);
            for v in g {
                hasher.update(v.to_le_bytes());
                sq += (*v as f64) * (*v as f64);
            }
        }
        adam_step(model.as_mut(), &mut state.adam, &mut grads);
        state.steps_done += 1;
        out.push(ProbeStep {
            step,
            loss: loss_value,
            grad_sq_sum: sq,
            grad_sha256: hex(&hasher.finalize()),
        });
    }
    state.weights = crate::models::export_weights(state.arch, model.as_ref());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::synthetic::blocks;

    #[test]
    fn split_steps_equal_unsplit_steps_and_the_loss_falls() {
        let ds = blocks(64, 3, false);
        let mut whole = ProbeState::new(Arch::Mlp, 5, 1e-3);
        let all = probe_steps(&mut whole, &ds, 32, 6, 9).unwrap();
        let mut split = ProbeState::new(Arch::Mlp, 5, 1e-3);
        let mut parts = probe_steps(&mut split, &ds, 32, 2, 9).unwrap();
        parts.extend(probe_steps(&mut split, &ds, 32, 4, 9).unwrap());
        assert_eq!(all, parts);
        assert_eq!(whole.weights, split.weights);
        assert!(all[5].loss < all[0].loss, "{all:?}");
        // A different dropout seed gives different gradients.
        let mut other = ProbeState::new(Arch::Mlp, 5, 1e-3);
        let o = probe_steps(&mut other, &ds, 32, 1, 10).unwrap();
        assert_ne!(o[0].grad_sha256, all[0].grad_sha256);
    }
}
