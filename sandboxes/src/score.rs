//! Scoring without a policy: one completion against one inline task (reset,
//! then a single step), as `envhub score`, the Python package and the reward
//! server all do it, and the worker pool that scores many at once.

use std::sync::atomic::{AtomicUsize, Ordering};

use envhub_sdk::{Message, Metrics, Reward, TaskSource};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{EnvModule, SandboxError};

/// What scoring one completion gave.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scored {
    /// The task's stable id.
    pub task_id: String,
    /// The reward: total and components.
    pub reward: Reward,
    /// The environment's measurements (extracted answer, verdict, ...).
    pub metrics: Metrics,
    /// Whether the episode ended with this step (single-turn environments: always).
    pub done: bool,
}

impl EnvModule {
    /// Scores `action` as the first policy turn on the inline `task`: `reset`
    /// with `seed` and `config`, then one `step`.
    pub fn score_action(
        &self,
        task: Value,
        action: Message,
        seed: u64,
        config: Map<String, Value>,
    ) -> Result<Scored, SandboxError> {
        let reset = self.reset(TaskSource::Inline(task), seed, config)?;
        let step = self.step(reset.state, action)?;
        Ok(Scored { task_id: reset.task_id, reward: step.reward, metrics: step.metrics, done: step.done })
    }

    /// Scores the text `completion` (an assistant message) on the inline `task`.
    pub fn score(
        &self,
        task: Value,
        completion: &str,
        seed: u64,
        config: Map<String, Value>,
    ) -> Result<Scored, SandboxError> {
        self.score_action(task, Message::assistant(completion), seed, config)
    }
}

/// A failure as `envhub score` reports it: `{"error": {"kind", "message"}}`,
/// with an environment's own error kind and message when it refused.
pub fn error_json(e: &SandboxError) -> Value {
    let (kind, message) = match e {
        SandboxError::Guest(g) => (g.kind.as_str(), g.message.clone()),
        other => (other.kind(), other.to_string()),
    };
    serde_json::json!({ "error": { "kind": kind, "message": message } })
}

/// The default number of worker threads: one per core.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Computes `f(0) .. f(n - 1)` on `threads` scoped worker threads (at least
/// one, at most `n`), each taking the next index as it finishes, and returns
/// the results in index order. An item whose `f` panics becomes
/// `on_panic(i)`; its worker carries on with the next one.
pub fn par_map<T: Send>(
    n: usize,
    threads: usize,
    f: impl Fn(usize) -> T + Sync,
    on_panic: impl Fn(usize) -> T + Sync,
) -> Vec<T> {
    let threads = threads.clamp(1, n.max(1));
    let next = AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= n {
                break;
            }
            let value = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(i))).unwrap_or_else(|_| on_panic(i));
            done.push((i, value));
        }
        done
    };
    let mut results: Vec<Option<T>> = (0..n).map(|_| None).collect();
    std::thread::scope(|s| {
        let workers: Vec<_> = (1..threads).map(|_| s.spawn(work)).collect();
        let mut all = work();
        for worker in workers {
            // `work` catches panics of `f`, so a worker only fails to join if
            // `on_panic` itself panicked; its items fall to the check below.
            all.extend(worker.join().unwrap_or_default());
        }
        for (i, v) in all {
            results[i] = Some(v);
        }
    });
    results.into_iter().enumerate().map(|(i, r)| r.unwrap_or_else(|| on_panic(i))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn par_map_keeps_index_order_for_any_thread_count() {
        for threads in [0, 1, 3, 64] {
            let got = par_map(100, threads, |i| i * i, |_| usize::MAX);
            assert_eq!(got, (0..100).map(|i| i * i).collect::<Vec<_>>());
        }
        assert!(par_map(0, 4, |i| i, |_| 0).is_empty());
    }

    #[test]
    fn par_map_turns_a_panicking_item_into_its_fallback_and_goes_on() {
        let got = par_map(4, 1, |i| if i == 2 { panic!("boom") } else { i as i64 }, |_| -1);
        assert_eq!(got, vec![0, 1, -1, 3]);
    }
}
