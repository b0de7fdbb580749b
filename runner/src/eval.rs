//! Evaluation figures: mean reward, unbiased pass@k, component means.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::trajectory::Trajectory;

/// The unbiased pass@k estimator of Chen et al. (2021) for one task with `n`
/// samples of which `c` passed: `1 - C(n-c, k) / C(n, k)`, computed as a
/// stable product. `None` when `k > n` or `k == 0`.
pub fn pass_at_k(n: u64, c: u64, k: u64) -> Option<f64> {
    if k == 0 || k > n || c > n {
        return None;
    }
    if n - c < k {
        return Some(1.0);
    }
    // C(n-c, k) / C(n, k) = prod_{i=n-c+1}^{n} (1 - k / i)
    let mut ratio = 1.0;
    for i in (n - c + 1)..=n {
        ratio *= 1.0 - k as f64 / i as f64;
    }
    Some(1.0 - ratio)
}

/// Summary of an evaluation.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct EvalSummary {
    /// Tasks evaluated.
    pub tasks: usize,
    /// Samples in all.
    pub samples: usize,
    /// Samples that failed (policy or environment error).
    pub errors: usize,
    /// Mean final reward over all samples (failures count 0).
    pub mean_reward: f64,
    /// pass@k for each reported k, averaged over tasks.
    pub pass_at_k: BTreeMap<u64, f64>,
    /// Mean of each reward component over scored samples.
    pub components: BTreeMap<String, f64>,
    /// The reward at or above which a sample passes.
    pub pass_threshold: f64,
}

/// Summarises trajectories grouped by task (one group per task): a sample
/// passes when its reward is at least `threshold`. Reports k = 1, 2, 4, ...
/// up to the smallest group size, and that size itself.
pub fn summarise(groups: &[Vec<Trajectory>], threshold: f64) -> EvalSummary {
    let mut s = EvalSummary { pass_threshold: threshold, ..Default::default() };
    let min_n = groups.iter().map(Vec::len).min().unwrap_or(0) as u64;
    let mut ks: Vec<u64> = std::iter::successors(Some(1u64), |k| Some(k * 2)).take_while(|k| *k <= min_n).collect();
    if min_n > 0 && !ks.contains(&min_n) {
        ks.push(min_n);
    }
    let mut reward_sum = 0.0;
    let mut comp_sum: BTreeMap<String, (f64, usize)> = BTreeMap::new();
    let mut pass_sum: BTreeMap<u64, f64> = BTreeMap::new();
    for g in groups {
        s.tasks += 1;
        let mut c = 0;
        for t in g {
            s.samples += 1;
            if !t.errors.is_empty() {
                s.errors += 1;
            }
            if let Some(r) = &t.reward {
                reward_sum += r.total;
                if r.total >= threshold {
                    c += 1;
                }
                for (k, v) in &r.components {
                    let e = comp_sum.entry(k.clone()).or_default();
                    e.0 += v;
                    e.1 += 1;
                }
            }
        }
        for &k in &ks {
            *pass_sum.entry(k).or_default() += pass_at_k(g.len() as u64, c, k).unwrap_or(0.0);
        }
    }
    if s.samples > 0 {
        s.mean_reward = reward_sum / s.samples as f64;
    }
    if s.tasks > 0 {
        s.pass_at_k = pass_sum.into_iter().map(|(k, v)| (k, v / s.tasks as f64)).collect();
    }
    s.components = comp_sum.into_iter().map(|(k, (sum, n))| (k, sum / n as f64)).collect();
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pass_at_k_matches_the_binomial_formula() {
        fn choose(n: u64, k: u64) -> f64 {
            (0..k).map(|i| (n - i) as f64 / (i + 1) as f64).product()
        }
        for n in 1..=10 {
            for c in 0..=n {
                for k in 1..=n {
                    let want = 1.0 - if n - c < k { 0.0 } else { choose(n - c, k) / choose(n, k) };
                    let got = pass_at_k(n, c, k).unwrap();
                    assert!((got - want).abs() < 1e-12, "n={n} c={c} k={k}: {got} vs {want}");
                }
            }
        }
        assert_eq!(pass_at_k(4, 1, 1), Some(0.25));
        assert_eq!(pass_at_k(2, 0, 3), None);
    }
}
