//! A run folder's figures: what `digits figures` writes, from a real (small) training run.

use digits::data::synthetic::blocks;
use digits::models::Arch;
use digits::plot::run::export_run_figures;
use digits::train::run::train_run;
use digits::train::{Progress, TrainConfig};

#[test]
fn a_run_exports_curves_and_first_layer_and_skips_absent_domains() {
    if digits::plot::font::ensure().is_err() {
        digits::runtime::skip_unless_required(
            "font",
            "no font for figures (install fonts-dejavu-core)",
        );
        return;
    }
    let root = std::env::temp_dir().join(format!("digits-figures-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let run = root.join("mlp-seed3");
    let cfg = TrainConfig {
        epochs: 2,
        seed: 3,
        batch_size: 32,
        ..TrainConfig::new(Arch::Mlp)
    };
    train_run(
        &cfg,
        &blocks(200, 1, false),
        &blocks(50, 2, false),
        0.1,
        &run,
        false,
        Progress::Quiet,
    )
    .unwrap();
    let out = root.join("img");
    let written = export_run_figures(&run, &root.join("no-data"), &out).unwrap();
    let names: Vec<String> = written
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().to_string())
        .collect();
    // The original study's names for the curves; no data, so no confusion matrices.
    assert_eq!(
        names,
        [
            "mlp_model_accuracy.png",
            "mlp_model_loss.png",
            "mlp_first_layer.png"
        ]
    );
    for path in &written {
        let decoder = png::Decoder::new(std::fs::File::open(path).unwrap());
        let reader = decoder.read_info().unwrap();
        assert!(reader.info().width >= 600, "{}", path.display());
    }
    std::fs::remove_dir_all(&root).unwrap();
}
