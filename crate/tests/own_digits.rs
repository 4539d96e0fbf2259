//! The example photos of `notebooks/own-digits/` (notebook 6): they are what
//! `cargo run --example own_digits` makes from MNIST, byte for byte, and they read as a
//! user's folder reads: the folder domain finds their labels, each image's polarity is
//! decided right wherever ink is found (one has light ink on dark paper), and each is framed
//! or refused in one line.

mod common;

use std::path::{Path, PathBuf};

use digits::data::mnist_paper::{example_files, ExampleKind, EXAMPLES};
use digits::data::paper::{ink_stages, Polarity};
use digits::data::raw::read_image;
use digits::data::{load_mnist, load_raw_set, Framing, Split};
use digits::predict::{input_files, predict_framed};

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../notebooks/own-digits")
}

#[test]
fn the_committed_examples_are_what_the_generator_makes() {
    let Some((root, data)) = common::fresh_root_with_data("own-digits") else {
        return;
    };
    let mnist = load_mnist(&data, Split::Test).unwrap();
    let files = example_files(&mnist).unwrap();
    std::fs::remove_dir_all(&root).unwrap();
    assert_eq!(files.len(), EXAMPLES.len());
    for (rel, bytes) in &files {
        let committed = std::fs::read(examples_dir().join(rel))
            .unwrap_or_else(|e| panic!("{}: {e}", rel.display()));
        assert!(
            committed == *bytes,
            "notebooks/own-digits/{} differs from what the generator makes; run `cargo run --example own_digits`",
            rel.display()
        );
    }
    // Nothing else is in the folder.
    let on_disk: Vec<PathBuf> = input_files(&[examples_dir()])
        .into_iter()
        .map(|f| f.unwrap())
        .collect();
    assert_eq!(on_disk.len(), files.len());
}

#[test]
fn the_examples_read_as_a_users_folder() {
    let dir = examples_dir();
    let spec = format!("png:{}", dir.display());
    let set = load_raw_set(&spec, Path::new("no-data-needed")).unwrap();
    assert_eq!(set.labels, vec![0, 1, 2, 3, 4, 5, 7, 9]);
    let files: Vec<PathBuf> = input_files(std::slice::from_ref(&dir))
        .into_iter()
        .map(|f| f.unwrap())
        .collect();
    // The examples are held-out renderings, on which the framer was never tuned: where it
    // finds no ink, `digits predict` says so in one line instead of guessing.
    let mut found = Vec::new();
    for ((file, &(_, kind)), image) in files.iter().zip(&EXAMPLES).zip(&set.images) {
        assert_eq!(&read_image(file).unwrap(), image);
        assert_eq!(
            file.extension().unwrap() == "png",
            kind != ExampleKind::Jpeg,
            "{}",
            file.display()
        );
        let Some(stages) = ink_stages(&image.pixels, image.width, image.height, None) else {
            continue;
        };
        let expected = match kind {
            ExampleKind::InvertedPng => Polarity::Bright,
            _ => Polarity::Dark,
        };
        assert_eq!(stages.polarity, expected, "{}", file.display());
        found.push(file.clone());
    }
    assert!(found.len() * 2 > files.len(), "ink found in {found:?}");
    // Every image with ink is framed, both ways, with no model to answer; the others are
    // refused in one line.
    for framing in Framing::ALL {
        let framed = predict_framed(input_files(std::slice::from_ref(&dir)), &[], framing).unwrap();
        assert_eq!(framed.len(), EXAMPLES.len());
        for (p, file) in framed.into_iter().zip(&files) {
            match p {
                Ok(p) => {
                    assert!(p.answers.is_empty());
                    assert!(p.framed.iter().any(|&v| v > 0.5), "{}", p.file.display());
                }
                Err(e) => {
                    let e = e.to_string();
                    assert!(
                        framing == Framing::MnistFrame && !found.contains(file),
                        "{e}"
                    );
                    assert!(e.contains("no ink found") && !e.contains('\n'), "{e}");
                }
            }
        }
    }
}
