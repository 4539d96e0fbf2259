//! Weights on disk as safetensors, with the run's configuration and data hashes beside them.
//!
//! The file holds one f32 tensor per parameter (named as in the architecture's layout) and a
//! string metadata map; `tensor_order` in that map keeps the layout's order, which safetensors
//! itself does not.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::io::write_atomic;
use crate::models::{NamedTensor, Weights};
use crate::{Error, Result};

const ORDER_KEY: &str = "tensor_order";
const ARCH_KEY: &str = "arch";

/// Several weight sets in one file, each under a prefix (`""` for a plain model file;
/// `"adam_m/"`, `"best/"`... in a training checkpoint).
pub fn save_safetensors(
    path: &Path,
    sets: &[(&str, &Weights)],
    metadata: &BTreeMap<String, String>,
) -> Result<()> {
    let mut bytes_of: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    let mut order = BTreeMap::new();
    for (prefix, w) in sets {
        let names: Vec<String> = w
            .tensors
            .iter()
            .map(|t| format!("{prefix}{}", t.name))
            .collect();
        order.insert(prefix.to_string(), (w.arch.clone(), names.clone()));
        for (t, name) in w.tensors.iter().zip(names) {
            let raw: Vec<u8> = t.data.iter().flat_map(|v| v.to_le_bytes()).collect();
            bytes_of.push((name, t.shape.clone(), raw));
        }
    }
    let mut info: HashMap<String, String> = metadata.clone().into_iter().collect();
    info.insert(
        ORDER_KEY.into(),
        serde_json::to_string(&order).expect("order serialises"),
    );
    info.insert(
        ARCH_KEY.into(),
        sets.first()
            .map(|(_, w)| w.arch.clone())
            .unwrap_or_default(),
    );
    let views: Vec<(String, TensorView)> = bytes_of
        .iter()
        .map(|(name, shape, raw)| {
            let view = TensorView::new(Dtype::F32, shape.clone(), raw).expect("shape matches data");
            (name.clone(), view)
        })
        .collect();
    let bytes = safetensors::tensor::serialize(views, &Some(info)).map_err(|e| {
        Error::invalid(format!(
            "{}: cannot serialise weights: {e:?}",
            path.display()
        ))
    })?;
    write_atomic(path, &bytes)
}

/// What [`load_safetensors`] returns: each weight set by prefix, and the metadata map.
pub struct Loaded {
    pub sets: BTreeMap<String, Weights>,
    pub metadata: BTreeMap<String, String>,
}

pub fn load_safetensors(path: &Path) -> Result<Loaded> {
    let bytes = std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::Missing {
            path: path.into(),
            hint: "train a model first (`digits train ...`) or pass the folder of an existing run"
                .into(),
        },
        _ => Error::io(path, e),
    })?;
    let corrupt = |what: String| {
        Error::format(
            path,
            format!("not a readable digits weights file ({what}); train again or restore the file"),
        )
    };
    let (_, meta) = SafeTensors::read_metadata(&bytes).map_err(|e| corrupt(format!("{e:?}")))?;
    let metadata: BTreeMap<String, String> = meta
        .metadata()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let tensors = SafeTensors::deserialize(&bytes).map_err(|e| corrupt(format!("{e:?}")))?;
    let order: BTreeMap<String, (String, Vec<String>)> = metadata
        .get(ORDER_KEY)
        .and_then(|s| serde_json::from_str(s).ok())
        .ok_or_else(|| corrupt(format!("no `{ORDER_KEY}` metadata")))?;
    let mut sets = BTreeMap::new();
    for (prefix, (arch, names)) in order {
        let mut list = Vec::with_capacity(names.len());
        for name in names {
            let view = tensors
                .tensor(&name)
                .map_err(|e| corrupt(format!("tensor `{name}`: {e:?}")))?;
            if view.dtype() != Dtype::F32 {
                return Err(corrupt(format!(
                    "tensor `{name}` is {:?}, not F32",
                    view.dtype()
                )));
            }
            let data = view
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            let stored = name
                .strip_prefix(prefix.as_str())
                .unwrap_or(&name)
                .to_string();
            list.push(NamedTensor {
                name: stored,
                shape: view.shape().to_vec(),
                data,
            });
        }
        sets.insert(
            prefix,
            Weights {
                arch,
                tensors: list,
            },
        );
    }
    Ok(Loaded { sets, metadata })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::Arch;

    #[test]
    fn weights_round_trip_with_metadata_and_order() {
        let w = Arch::Mlp.init(3);
        let m = Arch::Mlp.init(4);
        let path =
            std::env::temp_dir().join(format!("digits-ckpt-{}.safetensors", std::process::id()));
        let meta = BTreeMap::from([("seed".to_string(), "3".to_string())]);
        save_safetensors(&path, &[("", &w), ("adam_m/", &m)], &meta).unwrap();
        let loaded = load_safetensors(&path).unwrap();
        assert_eq!(loaded.sets[""], w);
        assert_eq!(loaded.sets["adam_m/"], m);
        assert_eq!(loaded.metadata["seed"], "3");
        std::fs::write(&path, b"not safetensors").unwrap();
        let err = load_safetensors(&path).err().unwrap().to_string();
        assert!(err.contains("not a readable digits weights file"), "{err}");
        std::fs::remove_file(&path).unwrap();
    }
}
