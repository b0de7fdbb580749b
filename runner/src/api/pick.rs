//! Filling a batch of exactly `target` sequences from whole groups.

use std::collections::HashMap;

/// Picks whole groups whose sizes add up to exactly `target`: the oldest
/// groups first (greedily), falling back to an exact fill that prefers the
/// group sizes seen first and, within a size, the oldest groups. Returns
/// queue positions in order, or `None` when no set of groups fits exactly.
///
/// Cost: one pass over the queue, plus, when the greedy pass misses, a fill
/// over `target` sums for each distinct group size, which does not grow
/// with the queue. Memory is O(`target`), allocated only when the queue
/// holds at least `target` sequences.
pub fn pick_exact(sizes: &[usize], target: usize) -> Option<Vec<usize>> {
    pick_counting(sizes, target, &mut 0)
}

/// [`pick_exact`], adding its steps to `work`.
fn pick_counting(sizes: &[usize], target: usize, work: &mut u64) -> Option<Vec<usize>> {
    if target == 0 {
        return None;
    }
    if let Some(picked) = greedy(sizes, target, work) {
        return Some(picked);
    }
    let buckets = buckets(sizes, target, work);
    let available: usize = buckets.iter().map(|(s, pos)| s * pos.len()).sum();
    if available < target {
        return None;
    }
    let counts = fill(&buckets, target, work)?;
    let mut out = Vec::new();
    for ((_, positions), count) in buckets.iter().zip(counts) {
        out.extend_from_slice(positions.get(..count)?);
    }
    out.sort_unstable();
    Some(out)
}

/// Oldest first: takes every group that still fits.
fn greedy(sizes: &[usize], target: usize, work: &mut u64) -> Option<Vec<usize>> {
    let mut picked = Vec::new();
    let mut sum = 0;
    for (i, &s) in sizes.iter().enumerate() {
        *work += 1;
        if s > 0 && s <= target - sum {
            picked.push(i);
            sum += s;
            if sum == target {
                return Some(picked);
            }
        }
    }
    None
}

/// Queue positions by group size, sizes in order of first appearance; a
/// size keeps only as many (oldest) groups as could ever fit in `target`.
fn buckets(sizes: &[usize], target: usize, work: &mut u64) -> Vec<(usize, Vec<usize>)> {
    let mut index: HashMap<usize, usize> = HashMap::new();
    let mut out: Vec<(usize, Vec<usize>)> = Vec::new();
    for (i, &s) in sizes.iter().enumerate() {
        *work += 1;
        if s == 0 || s > target {
            continue;
        }
        let b = *index.entry(s).or_insert_with(|| {
            out.push((s, Vec::new()));
            out.len() - 1
        });
        let positions = &mut out[b].1;
        if positions.len() < target / s {
            positions.push(i);
        }
    }
    out
}

const UNREACHED: u32 = u32::MAX;
const START: u32 = u32::MAX - 1;

/// Subset sum with bounded copies per size: how many groups of each bucket
/// make exactly `target`, or `None`. `from[v]` is the bucket whose size
/// first reached the sum `v`; `used[v]` how many of that bucket's groups
/// the sum uses.
fn fill(buckets: &[(usize, Vec<usize>)], target: usize, work: &mut u64) -> Option<Vec<usize>> {
    let mut from = vec![UNREACHED; target + 1];
    let mut used = vec![0usize; target + 1];
    from[0] = START;
    for (b, (s, positions)) in buckets.iter().enumerate() {
        let b = u32::try_from(b).ok()?;
        for v in *s..=target {
            *work += 1;
            if from[v] != UNREACHED || from[v - s] == UNREACHED {
                continue;
            }
            let before = if from[v - s] == b { used[v - s] } else { 0 };
            if before < positions.len() {
                from[v] = b;
                used[v] = before + 1;
            }
        }
        if from[target] != UNREACHED {
            break;
        }
    }
    if from[target] == UNREACHED {
        return None;
    }
    let mut counts = vec![0usize; buckets.len()];
    let mut v = target;
    while v > 0 {
        let b = usize::try_from(from[v]).ok()?;
        counts[b] += 1;
        v -= buckets.get(b)?.0;
    }
    Some(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_batches_from_whole_groups() {
        assert_eq!(pick_exact(&[4, 4, 4], 8), Some(vec![0, 1]));
        assert_eq!(pick_exact(&[3, 4, 5], 8), Some(vec![0, 2]));
        assert_eq!(pick_exact(&[4, 3, 2, 6], 5), Some(vec![1, 2]));
        assert_eq!(pick_exact(&[4, 4], 6), None);
        assert_eq!(pick_exact(&[], 4), None);
        assert_eq!(pick_exact(&[2, 2, 2], 6), Some(vec![0, 1, 2]));
        assert_eq!(pick_exact(&[0, 9, 5, 2, 2, 2], 6), Some(vec![3, 4, 5]));
        assert_eq!(pick_exact(&[5, 3, 3, 3, 1], 9), Some(vec![0, 1, 4]));
        assert_eq!(pick_exact(&[5, 3, 3, 3], 9), Some(vec![1, 2, 3]));
        assert_eq!(pick_exact(&[3, 3], 0), None);
    }

    #[test]
    fn every_pick_is_exact_and_whole() {
        let mut rng = envhub_sdk::Rng::new(7);
        for _ in 0..2000 {
            let n = (rng.next_u64() % 12) as usize;
            let sizes: Vec<usize> = (0..n).map(|_| (rng.next_u64() % 9) as usize).collect();
            let target = 1 + (rng.next_u64() % 20) as usize;
            let brute =
                (0u32..1 << n).any(|m| (0..n).filter(|i| (m >> i) & 1 == 1).map(|i| sizes[i]).sum::<usize>() == target);
            match pick_exact(&sizes, target) {
                Some(p) => {
                    assert!(p.windows(2).all(|w| w[0] < w[1]), "{sizes:?} {target} {p:?}");
                    assert_eq!(p.iter().map(|&i| sizes[i]).sum::<usize>(), target, "{sizes:?} {p:?}");
                }
                None => assert!(!brute, "{sizes:?} {target}: a fill exists"),
            }
        }
    }

    /// The work of a pick that the greedy pass misses grows with the queue
    /// only by the one pass over it, however long the queue.
    #[test]
    fn a_long_queue_costs_one_pass() {
        let target = 4096;
        let queue = |n: usize| -> Vec<usize> { std::iter::once(5).chain(std::iter::repeat_n(2, n)).collect() };
        let (mut short, mut long) = (0u64, 0u64);
        let a = pick_counting(&queue(10_000), target, &mut short).unwrap();
        let b = pick_counting(&queue(1_000_000), target, &mut long).unwrap();
        assert_eq!(a.len(), target / 2);
        assert_eq!(a, b);
        // Greedy and bucketing passes: 2 steps per queued group; the fill is
        // the same for both queues.
        assert_eq!(long - short, 2 * (1_000_000 - 10_000));
    }
}
