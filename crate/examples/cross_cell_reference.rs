//! The reference for the cross-cell notebook test: the same probed steps as
//! `notebooks/tests/cross-cell.ipynb`, all in one process, one JSON line per step.
//!
//! `cargo run --example cross_cell_reference`
use digits::data::synthetic::blocks;
use digits::models::Arch;
use digits::train::probe::{probe_steps, ProbeState};

fn main() -> digits::Result<()> {
    let ds = blocks(64, 3, false);
    for arch in [Arch::Mlp, Arch::Cnn] {
        let mut state = ProbeState::new(arch, 5, 1e-3);
        for step in probe_steps(&mut state, &ds, 32, 6, 9)? {
            println!("PROBE {} {}", arch, step.json());
        }
    }
    Ok(())
}
