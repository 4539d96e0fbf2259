//! Which of the MLP's first-layer weights never learned anything: those on pixels where no
//! MNIST training image has ink get no gradient and keep their random initial values.
//!
//! `cargo run --example untrained_weights -- runs/mlp-seed0` (after `digits train mlp`).
use std::path::PathBuf;

use digits::data::{load_domain, Framing};
use digits::run::{load_model, mnist_train_val};

fn main() -> digits::Result<()> {
    let run = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "runs/mlp-seed0".into()),
    );
    let data = PathBuf::from("data");
    let (arch, trained) = load_model(&run)?;
    let record = digits::run::load_record(&run)?;
    let initial = arch.init(record.config.seed);
    let (train, _) = mnist_train_val(&data, record.val_split, record.config.seed)?;
    let px = train.pixels();
    // How many training images put ink on each pixel.
    let mut inked = vec![0usize; px];
    for i in 0..train.len() {
        for (p, &v) in train.image(i).iter().enumerate() {
            inked[p] += (v > 0.0) as usize;
        }
    }
    let never: Vec<usize> = (0..px).filter(|&p| inked[p] == 0).collect();
    // Pixels inked in under 1% of the training images: the MLP has barely learned them.
    let rare: Vec<usize> = (0..px).filter(|&p| inked[p] * 100 < train.len()).collect();
    let (w0, w1) = (&initial.tensors[0], &trained.tensors[0]);
    let units = w1.shape[0];
    let unchanged = never
        .iter()
        .flat_map(|&p| (0..units).map(move |u| u * px + p))
        .filter(|&i| w0.data[i] == w1.data[i])
        .count();
    println!(
        "{} of {px} pixel positions carry no ink in any of the {} training images;",
        never.len(),
        train.len()
    );
    println!(
        "{unchanged} of the {} first-layer weights on them ({:.1}%) still hold their initial values.",
        never.len() * units,
        100.0 * unchanged as f64 / (never.len() * units).max(1) as f64
    );
    for (spec, framing) in [
        ("mnist-test", Framing::Resize),
        ("usps-test", Framing::Resize),
        ("usps-test", Framing::MnistFrame),
    ] {
        let usps = load_domain(spec, &data, framing)?;
        let share = |set: &[usize], img: &[f32]| {
            let total: f32 = img.iter().sum();
            (set.iter().map(|&p| img[p]).sum::<f32>() / total.max(1e-6)) as f64
        };
        let mean = |set: &[usize]| {
            (0..usps.len())
                .map(|i| share(set, usps.image(i)))
                .sum::<f64>()
                / usps.len() as f64
        };
        println!(
            "{}: {:.1}% of a digit's ink falls on never-inked pixels, {:.1}% on the {} pixels inked in under 1% of training images",
            usps.name,
            100.0 * mean(&never),
            100.0 * mean(&rare),
            rare.len()
        );
    }
    Ok(())
}
