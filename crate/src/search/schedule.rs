//! Which trials a search runs, with how many epochs each: Hyperband's brackets of successive
//! halving (Li et al., 2018) or random search, laid out as one numbered sequence of trials.
//!
//! A trial is one training of one configuration to one epoch budget (a row of the trial
//! table). Trial ids follow from the arithmetic alone, never from results: bracket after
//! bracket, rung after rung, slot after slot. Which configuration fills a slot of a later rung
//! does depend on the results (the best of the rung before), but its id does not; that is what
//! lets shards, interruptions and reruns agree on what trial `k` is.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// How the search spends its trials.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    /// Every trial a fresh configuration trained for the full epoch budget (as the original
    /// study's KerasTuner `RandomSearch`).
    Random,
    /// Brackets of successive halving: many configurations for a few epochs, the best third
    /// (with `eta = 3`) continued for three times as many, and so on up to the full budget.
    Hyperband,
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Algorithm::Random => "random",
            Algorithm::Hyperband => "hyperband",
        })
    }
}

impl std::str::FromStr for Algorithm {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "random" => Ok(Algorithm::Random),
            "hyperband" => Ok(Algorithm::Hyperband),
            other => Err(Error::invalid(format!(
                "unknown search algorithm `{other}`; choose `hyperband` or `random`"
            ))),
        }
    }
}

/// One round of successive halving: `configs` configurations each trained to `epochs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Rung {
    pub configs: usize,
    pub epochs: usize,
}

/// One bracket of one Hyperband iteration: `s` halvings after the first rung.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Bracket {
    pub s: usize,
    pub rungs: Vec<Rung>,
}

impl Bracket {
    pub fn trials(&self) -> usize {
        self.rungs.iter().map(|r| r.configs).sum()
    }
}

/// The largest `s` with `eta^s <= max_epochs`: how many times a bracket can divide the budget.
pub fn s_max(max_epochs: usize, eta: usize) -> usize {
    let mut s = 0;
    let mut p = eta;
    while p <= max_epochs {
        s += 1;
        p = p.saturating_mul(eta);
    }
    s
}

/// The brackets of one Hyperband iteration for a budget of `max_epochs` (the paper's `R`) and
/// halving factor `eta`, most exploratory first (`s = s_max` down to 0).
///
/// Bracket `s` starts `n = ceil((s_max + 1) / (s + 1) · eta^s)` configurations at `R·eta^-s`
/// epochs; rung `i` keeps `floor(n · eta^-i)` of them at `R·eta^(i-s)` epochs, rounded to whole
/// epochs (at least one) when `R` is not a power of `eta`.
pub fn hyperband(max_epochs: usize, eta: usize) -> Vec<Bracket> {
    let top = s_max(max_epochs, eta);
    (0..=top)
        .rev()
        .map(|s| {
            let eta_s = eta.pow(s as u32);
            let n = ((top + 1) * eta_s).div_ceil(s + 1);
            let rungs = (0..=s)
                .map(|i| {
                    let eta_i = eta.pow(i as u32);
                    let epochs = (max_epochs as f64 * eta_i as f64 / eta_s as f64).round() as usize;
                    Rung {
                        configs: n / eta_i,
                        epochs: epochs.max(1),
                    }
                })
                .collect();
            Bracket { s, rungs }
        })
        .collect()
}

/// A rung as scheduled: its trials are ids `first_trial ..first_trial + configs` (those below
/// the search's trial count run).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct PlannedRung {
    pub rung: usize,
    pub first_trial: usize,
    pub configs: usize,
    pub epochs: usize,
}

/// A bracket as scheduled. `index` counts brackets from the start of the search, across
/// Hyperband iterations (random search: one bracket per trial).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PlannedBracket {
    pub index: usize,
    pub rungs: Vec<PlannedRung>,
}

impl PlannedBracket {
    pub fn first_trial(&self) -> usize {
        self.rungs[0].first_trial
    }
}

/// Every bracket that holds at least one of the first `trials` trials.
///
/// Hyperband repeats its iteration (all brackets, `s_max` down to 0) until `trials` trials are
/// laid out; the last bracket may be cut short, its later rungs then running fewer
/// configurations or none. Random search is Hyperband with brackets of a single configuration
/// at the full budget.
pub fn plan(
    algorithm: Algorithm,
    max_epochs: usize,
    eta: usize,
    trials: usize,
) -> Vec<PlannedBracket> {
    let iteration = match algorithm {
        Algorithm::Hyperband => hyperband(max_epochs, eta),
        Algorithm::Random => vec![Bracket {
            s: 0,
            rungs: vec![Rung {
                configs: 1,
                epochs: max_epochs,
            }],
        }],
    };
    let mut out = Vec::new();
    let mut next = 0;
    for (index, bracket) in iteration.iter().cycle().enumerate() {
        if next >= trials {
            break;
        }
        let rungs = bracket
            .rungs
            .iter()
            .enumerate()
            .map(|(rung, r)| {
                let planned = PlannedRung {
                    rung,
                    first_trial: next,
                    configs: r.configs,
                    epochs: r.epochs,
                };
                next += r.configs;
                planned
            })
            .collect();
        out.push(PlannedBracket { index, rungs });
    }
    out
}

/// The part of a search one process runs: brackets whose index is `index` modulo `count`.
///
/// Hyperband's rungs need the results of the rung before, within one bracket only; whole
/// brackets are therefore independent, and sharding by bracket needs no coordination between
/// processes. (Hyperband gives its brackets about equal budgets, so shards are about equally
/// busy over whole iterations.) For random search a bracket is a trial, so shard `i` of `n`
/// runs the trials whose id is `i` modulo `n`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// The whole search in one process.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    pub fn owns(self, bracket: &PlannedBracket) -> bool {
        bracket.index % self.count == self.index
    }
}

impl Default for Shard {
    fn default() -> Self {
        Shard::ALL
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl std::str::FromStr for Shard {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::invalid(format!(
                "bad shard `{s}`; write i/n with 0 <= i < n, e.g. --shard 0/2"
            ))
        };
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            i.trim().parse::<usize>().map_err(|_| bad())?,
            n.trim().parse::<usize>().map_err(|_| bad())?,
        );
        if index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(brackets: &[Bracket]) -> Vec<Vec<(usize, usize)>> {
        brackets
            .iter()
            .map(|b| b.rungs.iter().map(|r| (r.configs, r.epochs)).collect())
            .collect()
    }

    #[test]
    fn hyperband_brackets_for_r9_eta3() {
        assert_eq!(s_max(9, 3), 2);
        let b = hyperband(9, 3);
        assert_eq!(
            table(&b),
            vec![
                vec![(9, 1), (3, 3), (1, 9)],
                vec![(5, 3), (1, 9)],
                vec![(3, 9)],
            ]
        );
        assert_eq!(b.iter().map(Bracket::trials).sum::<usize>(), 22);
        assert_eq!(b.iter().map(|b| b.s).collect::<Vec<_>>(), vec![2, 1, 0]);
    }

    #[test]
    fn hyperband_brackets_match_the_papers_table_for_r81_eta3() {
        // Li et al. (2018), Table 1.
        assert_eq!(
            table(&hyperband(81, 3)),
            vec![
                vec![(81, 1), (27, 3), (9, 9), (3, 27), (1, 81)],
                vec![(34, 3), (11, 9), (3, 27), (1, 81)],
                vec![(15, 9), (5, 27), (1, 81)],
                vec![(8, 27), (2, 81)],
                vec![(5, 81)],
            ]
        );
    }

    #[test]
    fn hyperband_with_small_or_uneven_budgets() {
        assert_eq!(table(&hyperband(1, 3)), vec![vec![(1, 1)]]);
        assert_eq!(table(&hyperband(2, 3)), vec![vec![(1, 2)]]);
        assert_eq!(
            table(&hyperband(3, 3)),
            vec![vec![(3, 1), (1, 3)], vec![(2, 3)]]
        );
        // R = 4, eta = 2: s_max = 2.
        assert_eq!(
            table(&hyperband(4, 2)),
            vec![
                vec![(4, 1), (2, 2), (1, 4)],
                vec![(3, 2), (1, 4)],
                vec![(3, 4)],
            ]
        );
        // R = 5 is no power of 3: budgets round to whole epochs.
        assert_eq!(
            table(&hyperband(5, 3)),
            vec![vec![(3, 2), (1, 5)], vec![(2, 5)]]
        );
    }

    #[test]
    fn plan_numbers_trials_bracket_by_bracket_and_cuts_the_last() {
        let p = plan(Algorithm::Hyperband, 9, 3, 30);
        // One iteration is 22 trials; the next begins with its 9-configuration bracket.
        assert_eq!(p.len(), 4);
        assert_eq!(
            p.iter().map(|b| b.first_trial()).collect::<Vec<_>>(),
            vec![0, 13, 19, 22]
        );
        assert_eq!(
            p[0].rungs
                .iter()
                .map(|r| (r.first_trial, r.configs, r.epochs))
                .collect::<Vec<_>>(),
            vec![(0, 9, 1), (9, 3, 3), (12, 1, 9)]
        );
        assert_eq!(p[3].index, 3);
        assert_eq!(p[3].rungs[0].configs, 9);
        let r = plan(Algorithm::Random, 7, 3, 4);
        assert_eq!(r.len(), 4);
        assert!(r.iter().enumerate().all(|(i, b)| b.index == i
            && b.rungs
                == vec![PlannedRung {
                    rung: 0,
                    first_trial: i,
                    configs: 1,
                    epochs: 7
                }]));
        assert!(plan(Algorithm::Hyperband, 9, 3, 0).is_empty());
    }

    #[test]
    fn shards_split_the_brackets_without_overlap() {
        assert_eq!(
            "1/3".parse::<Shard>().unwrap(),
            Shard { index: 1, count: 3 }
        );
        for bad in ["3/3", "1", "a/2", "1/0", "-1/2"] {
            let err = bad.parse::<Shard>().unwrap_err().to_string();
            assert!(err.contains("--shard"), "{err}");
        }
        let p = plan(Algorithm::Hyperband, 9, 3, 60);
        for b in &p {
            let owners: Vec<usize> = (0..3)
                .filter(|&i| Shard { index: i, count: 3 }.owns(b))
                .collect();
            assert_eq!(owners.len(), 1);
            assert!(Shard::ALL.owns(b));
        }
    }
}
