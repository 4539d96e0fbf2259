//! Which shard trains which run when the study is spread over machines (`digits study
//! --shard i/n`), balanced by each run's expected cost.
//!
//! Why by cost: a CNN run on MNIST costs about fifty MLP runs' arithmetic, so taking runs
//! in turn (run `k` to shard `k mod n`) leaves one shard with most of the work. Here each run's
//! cost is estimated as epochs × training images × the model's multiply-adds per image (early
//! stopping ends runs sooner, but alike for every seed of a variant), and the runs are dealt,
//! the most expensive first, to the least loaded shard (longest processing time first, within
//! 4/3 of the best possible balance). An adapted run goes with its source run, whose folder it
//! reads, so no shard waits on another: the units dealt are a source run with its adaptations.
//!
//! The plan depends on the configuration alone, so every task of an array computes the same
//! one without talking to the others.

use super::{Source, StudyConfig, Variant};
use crate::models::Arch;
use crate::search::Shard;

/// MNIST's training digits, and USPS's, before the validation split.
const MNIST_TRAIN: usize = 60_000;
const USPS_TRAIN_IMAGES: usize = 7_291;

/// Multiply-adds of one image's forward pass through `arch` (training costs about three
/// times as much for every model, so the ratio is what matters).
pub fn forward_macs(arch: Arch) -> f64 {
    let dense = |sizes: &[usize]| -> f64 { sizes.windows(2).map(|w| (w[0] * w[1]) as f64).sum() };
    match arch {
        Arch::Mlp => dense(&[784, 224, 288, 10]),
        Arch::MlpWide => dense(&[784, 1586, 10]),
        Arch::MlpOf { h1, h2 } => dense(&[784, h1 as usize, h2 as usize, 10]),
        Arch::Cnn => cnn_macs(32, Some(192), 128),
        Arch::CnnOf { c1, c2, dense } => cnn_macs(c1 as usize, c2.map(usize::from), dense as usize),
    }
}

/// A CNN's multiply-adds: 3×3 'same' convolutions at 28×28 and 14×14, each followed by 2×2
/// pooling, then two dense layers.
fn cnn_macs(c1: usize, c2: Option<usize>, dense: usize) -> f64 {
    let conv1 = 28 * 28 * c1 * 9;
    let (conv2, flat) = match c2 {
        Some(c2) => (14 * 14 * c1 * c2 * 9, c2 * 7 * 7),
        None => (0, c1 * 14 * 14),
    };
    (conv1 + conv2 + flat * dense + dense * 10) as f64
}

/// The expected cost of training `variant`'s run (adaptation included), in multiply-adds.
pub fn run_cost(cfg: &StudyConfig, variant: &Variant) -> f64 {
    let images = |all: usize| {
        let kept = (all as f64 * (1.0 - cfg.val_split)).round() as usize;
        cfg.train_images.map_or(kept, |n| n.min(kept)) as f64
    };
    let per_image = forward_macs(variant.arch);
    match variant.source {
        Source::Mnist => cfg.epochs as f64 * images(MNIST_TRAIN) * per_image,
        Source::Adapted { .. } => {
            // Each round trains on the pseudo-labelled target digits plus as many source
            // digits again (the source ratio), for its epochs.
            let target = cfg
                .target_images
                .map_or(USPS_TRAIN_IMAGES, |n| n.min(USPS_TRAIN_IMAGES));
            let per_round = target as f64 * (1.0 + cfg.adaptation.source_ratio);
            let rounds = cfg.adaptation.portions.len() * cfg.adaptation.epochs_per_round;
            rounds as f64 * per_round * per_image
        }
        _ => cfg.epochs as f64 * images(USPS_TRAIN_IMAGES) * per_image,
    }
}

/// Run `k`'s unit: the index of the run it goes with (its source run, when the list has it),
/// or its own.
pub fn unit_of(cfg: &StudyConfig, k: usize) -> usize {
    let seeds = cfg.seeds.len();
    let variant = &cfg.variants[k / seeds];
    variant
        .adapted_from()
        .and_then(|from| cfg.variants.iter().position(|v| v.name == from.name))
        .map_or(k, |j| j * seeds + k % seeds)
}

/// What run `k` of the study's list costs its shard: its own run's cost, plus its source run's
/// when it is an adapted run whose source is not in the list (it trains that source itself).
fn expected_cost(cfg: &StudyConfig, k: usize) -> f64 {
    let variant = &cfg.variants[k / cfg.seeds.len()];
    let source = match variant.adapted_from() {
        Some(from) if unit_of(cfg, k) == k => run_cost(cfg, &from),
        _ => 0.0,
    };
    run_cost(cfg, variant) + source
}

/// For each shard of `count`, the indices of its runs in the study's list (models in order,
/// each with every seed in order), in list order.
pub fn plan(cfg: &StudyConfig, count: usize) -> Vec<Vec<usize>> {
    let total = cfg.variants.len() * cfg.seeds.len();
    // Each unit's cost: its own run's plus its adaptations'.
    let mut unit_cost = vec![0.0f64; total];
    for k in 0..total {
        unit_cost[unit_of(cfg, k)] += expected_cost(cfg, k);
    }
    let mut units: Vec<usize> = (0..total).filter(|&k| unit_of(cfg, k) == k).collect();
    // Most expensive first; equal costs in list order, so the plan is the same everywhere.
    units.sort_by(|&a, &b| unit_cost[b].total_cmp(&unit_cost[a]).then(a.cmp(&b)));
    let mut load = vec![0.0f64; count];
    let mut shard_of_unit = vec![0usize; total];
    for u in units {
        let lightest = (0..count)
            .min_by(|&a, &b| load[a].total_cmp(&load[b]).then(a.cmp(&b)))
            .expect("at least one shard");
        load[lightest] += unit_cost[u];
        shard_of_unit[u] = lightest;
    }
    let mut shards = vec![Vec::new(); count];
    for k in 0..total {
        shards[shard_of_unit[unit_of(cfg, k)]].push(k);
    }
    shards
}

/// Whether run `k` of the study's list is `shard`'s.
pub fn owns(cfg: &StudyConfig, shard: Shard, k: usize) -> bool {
    plan(cfg, shard.count)[shard.index].contains(&k)
}

/// The plan as text: for each shard, its runs (`variant seed`) and its share of the expected
/// cost.
pub fn describe(cfg: &StudyConfig, count: usize) -> String {
    let seeds = cfg.seeds.len();
    let shards = plan(cfg, count);
    let cost = |k: usize| expected_cost(cfg, k);
    let all: f64 = shards.iter().flatten().map(|&k| cost(k)).sum();
    let mut out = String::new();
    for (i, runs) in shards.iter().enumerate() {
        let share: f64 = runs.iter().map(|&k| cost(k)).sum::<f64>() / all.max(f64::MIN_POSITIVE);
        let names: Vec<String> = runs
            .iter()
            .map(|&k| format!("{} {}", cfg.variants[k / seeds].name, cfg.seeds[k % seeds]))
            .collect();
        out.push_str(&format!(
            "shard {i}/{count}: {} runs, {:.1}% of the expected cost: {}\n",
            runs.len(),
            100.0 * share,
            names.join(", ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_run_has_exactly_one_shard_and_adaptations_follow_their_source() {
        let cfg = StudyConfig::full();
        let total = cfg.variants.len() * cfg.seeds.len();
        for count in 1..=7 {
            let shards = plan(&cfg, count);
            let mut seen: Vec<usize> = shards.iter().flatten().copied().collect();
            seen.sort();
            assert_eq!(seen, (0..total).collect::<Vec<_>>(), "{count} shards");
            for k in 0..total {
                let home = |r: usize| shards.iter().position(|s| s.contains(&r)).unwrap();
                assert_eq!(home(k), home(unit_of(&cfg, k)), "run {k}, {count} shards");
            }
        }
    }

    #[test]
    fn shards_are_balanced_by_cost_not_by_position() {
        let cfg = StudyConfig::full();
        let seeds = cfg.seeds.len();
        let cost = |k: usize| run_cost(&cfg, &cfg.variants[k / seeds]);
        let total = cfg.variants.len() * seeds;
        let loads = |shards: &[Vec<usize>]| -> Vec<f64> {
            shards
                .iter()
                .map(|s| s.iter().map(|&k| cost(k)).sum())
                .collect()
        };
        let spread = |l: &[f64]| {
            l.iter().cloned().fold(f64::MIN, f64::max) / l.iter().cloned().fold(f64::MAX, f64::min)
        };
        for count in [2, 3, 4] {
            let balanced = loads(&plan(&cfg, count));
            let in_turn: Vec<Vec<usize>> = (0..count)
                .map(|i| {
                    (0..total)
                        .filter(|k| unit_of(&cfg, *k) % count == i)
                        .collect()
                })
                .collect();
            let in_turn = loads(&in_turn);
            // Longest-first dealing is within 4/3 of the optimum; the heaviest unit (a CNN
            // run with its adaptations) bounds how even any plan can be.
            assert!(
                spread(&balanced) <= spread(&in_turn) + 1e-9,
                "{count} shards: {balanced:?} vs {in_turn:?}"
            );
            assert!(spread(&balanced) < 1.35, "{count} shards: {balanced:?}");
        }
    }

    #[test]
    fn a_cnn_costs_far_more_per_image_than_the_mlp() {
        let ratio = forward_macs(Arch::Cnn) / forward_macs(Arch::Mlp);
        assert!(ratio > 20.0 && ratio < 200.0, "{ratio}");
        // The wide MLP has the CNN's parameter budget, so the CNN's cost lies in its
        // convolutions, not its weights.
        assert!(forward_macs(Arch::MlpWide) < forward_macs(Arch::Cnn) / 5.0);
    }

    #[test]
    fn the_plan_lists_every_shard_with_its_share() {
        let text = describe(&StudyConfig::full(), 3);
        assert_eq!(text.lines().count(), 3);
        let shares: f64 = text
            .lines()
            .map(|l| {
                let before = l.split("% of the expected cost").next().unwrap();
                before.rsplit(' ').next().unwrap().parse::<f64>().unwrap()
            })
            .sum();
        assert!((shares - 100.0).abs() < 0.2, "{text}");
    }
}
