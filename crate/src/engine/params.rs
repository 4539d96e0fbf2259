//! Model parameters as plain data, and the bridge between plain data and dfdx tensors.
//!
//! Notebook cells and checkpoints keep [`Weights`] (named `f32` arrays), never dfdx tensors:
//! evcxr gives each cell its own copy of dfdx's static tensor-id counter, so tensors made in
//! two cells can share an id and their gradients alias. Every library call builds its dfdx
//! modules afresh from `Weights` inside the call.

use dfdx::prelude::*;
use dfdx::tensor::Cpu;
use rand::{rngs::StdRng, Rng, SeedableRng};

use crate::{Error, Result};

/// One named parameter array, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct NamedTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// All parameters of one model, in the model's fixed order.
#[derive(Clone, Debug, PartialEq)]
pub struct Weights {
    /// The architecture these weights belong to, e.g. `mlp-224-288` or `cnn`.
    pub arch: String,
    pub tensors: Vec<NamedTensor>,
}

impl Weights {
    pub fn num_params(&self) -> usize {
        self.tensors.iter().map(|t| t.data.len()).sum()
    }

    pub fn get(&self, name: &str) -> Option<&NamedTensor> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// Check that these weights fit `layout` (names, shapes and order) and hold finite numbers.
    pub fn check_layout(&self, arch: &str, layout: &[ParamSpec]) -> Result<()> {
        if self.arch != arch {
            return Err(Error::invalid(format!(
                "weights are for architecture `{}`, not `{arch}`",
                self.arch
            )));
        }
        if self.tensors.len() != layout.len() {
            return Err(Error::invalid(format!(
                "weights for `{arch}` hold {} tensors, the architecture has {}",
                self.tensors.len(),
                layout.len()
            )));
        }
        for (t, spec) in self.tensors.iter().zip(layout) {
            if t.name != spec.name || t.shape != spec.shape || t.data.len() != spec.len() {
                return Err(Error::invalid(format!(
                    "weights tensor `{}` {:?} does not match the architecture's `{}` {:?}",
                    t.name, t.shape, spec.name, spec.shape
                )));
            }
            if let Some(i) = t.data.iter().position(|v| !v.is_finite()) {
                return Err(Error::invalid(format!(
                    "weights tensor `{}` holds a non-finite value at {i}",
                    t.name
                )));
            }
        }
        Ok(())
    }
}

/// How a parameter starts: Keras's defaults, which the original study used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Init {
    /// Glorot (Xavier) uniform: U(±sqrt(6 / (fan_in + fan_out))).
    GlorotUniform {
        fan_in: usize,
        fan_out: usize,
    },
    Zeros,
}

/// The name, shape and initialiser of one parameter of an architecture.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamSpec {
    pub name: String,
    pub shape: Vec<usize>,
    pub init: Init,
}

impl ParamSpec {
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Fresh weights for `layout`, drawn from `seed` in layout order.
pub fn init_weights(arch: &str, layout: &[ParamSpec], seed: u64) -> Weights {
    let mut rng = StdRng::seed_from_u64(seed);
    let tensors = layout
        .iter()
        .map(|spec| {
            let data = match spec.init {
                Init::Zeros => vec![0.0; spec.len()],
                Init::GlorotUniform { fan_in, fan_out } => {
                    let limit = (6.0 / (fan_in + fan_out) as f64).sqrt() as f32;
                    (0..spec.len())
                        .map(|_| rng.gen_range(-limit..limit))
                        .collect()
                }
            };
            NamedTensor {
                name: spec.name.clone(),
                shape: spec.shape.clone(),
                data,
            }
        })
        .collect();
    Weights {
        arch: arch.to_string(),
        tensors,
    }
}

/// A tensor's values as a row-major vector, by one memory copy.
///
/// dfdx's `as_vec` walks a strided index per element, which cost this crate's training step
/// more time than its convolutions; our tensors are contiguous, so their buffer already is
/// the row-major order. (`copy_into` panics on a buffer of another length, which a broadcast
/// view would have: the assumption is checked, not trusted.)
pub fn values<S: Shape, T>(t: &Tensor<S, f32, Cpu, T>) -> Vec<f32> {
    let mut out = vec![0.0f32; t.shape().num_elements()];
    t.copy_into(&mut out);
    out
}

/// A trainable dfdx tensor seen without its static shape, so that training, optimiser and
/// checkpoint code can walk any model's parameters in order.
pub trait Param {
    fn values(&self) -> Vec<f32>;
    fn set_values(&mut self, values: &[f32]);
    fn num_elements(&self) -> usize;
    /// Make sure `grads` has a (zero) slot for this parameter.
    fn alloc_grad(&self, grads: &mut Gradients<f32, Cpu>);
    /// This parameter's gradient (zeros if the step gave it none), read in place.
    fn grad<'g>(&self, grads: &'g mut Gradients<f32, Cpu>) -> &'g [f32];
}

impl<S: Shape> Param for Tensor<S, f32, Cpu> {
    fn values(&self) -> Vec<f32> {
        values(self)
    }
    fn set_values(&mut self, values: &[f32]) {
        self.copy_from(values);
    }
    fn num_elements(&self) -> usize {
        self.shape().num_elements()
    }
    fn alloc_grad(&self, grads: &mut Gradients<f32, Cpu>) {
        // Allocation of a zeroed CPU buffer cannot fail short of running out of memory.
        grads
            .try_alloc_for(self)
            .expect("allocating a gradient buffer");
    }
    fn grad<'g>(&self, grads: &'g mut Gradients<f32, Cpu>) -> &'g [f32] {
        grads
            .get_or_alloc_mut(self)
            .expect("allocating a gradient buffer")
    }
}

/// Build a tensor of static shape `S` from a named weight array.
pub fn tensor_from<S: Shape + Default>(dev: &Cpu, t: &NamedTensor) -> Tensor<S, f32, Cpu> {
    let shape = S::default();
    debug_assert_eq!(shape.num_elements(), t.data.len(), "{}", t.name);
    dev.tensor_from_vec(t.data.clone(), shape)
}
