//! Off-policy control: rollout production paced by the trainer's step, so
//! no trajectory is trained on more than a bound of steps after it was
//! sampled (prime-rl's `async_level`; a synchronous mode as in on-policy
//! trainers).
//!
//! The trainer's step and queue are read from the trajectory API
//! (`GET /status`: `current_step`, `queue_size` in groups; `GET /info`:
//! `batch_size` in sequences). A group started at step `s` is sampled with
//! the policy the trainer had at `s`, and is recorded so
//! ([`crate::trajectory::Trajectory::policy_step`]). With a maximum
//! staleness `K`, a group is started only when every sequence queued or in
//! flight ahead of it, and its own, fit in the next `K + 1` batches: it is
//! then consumed by step `s + K` at the latest. In synchronous mode, each
//! step gets one batch of new groups, then production waits for the next
//! step.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;

use crate::error::RunnerError;

/// How production keeps pace with the trainer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pace {
    /// At most this many trainer steps between sampling and training.
    MaxStaleness(u64),
    /// One batch per policy version: wait for a new step after each batch.
    Sync,
}

/// What the trajectory API says of the trainer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrainerStatus {
    /// Batches the trainer has taken.
    pub step: u64,
    /// Groups waiting in the queue.
    pub queued_groups: u64,
    /// Sequences per batch.
    pub batch_size: u64,
}

/// Reads the trainer's progress from a trajectory API and admits groups.
#[derive(Debug)]
pub struct Pacer {
    base_url: String,
    client: reqwest::Client,
    pace: Pace,
    poll: Duration,
    /// The most consecutive failed reads before giving up.
    patience: u32,
    /// Consecutive failed reads.
    failures: AtomicU32,
    /// Sequences this run started, less those that never reach the queue.
    started: AtomicU64,
    /// Sequences started at a step, in sync mode.
    started_at_step: std::sync::Mutex<(u64, u64)>,
}

impl Pacer {
    /// A pacer reading the trajectory API at `base_url`, polling every `poll`.
    pub fn new(base_url: &str, pace: Pace, poll: Duration) -> Result<Pacer, RunnerError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| RunnerError::Sink(format!("HTTP client: {e}")))?;
        Ok(Pacer {
            base_url: base_url.trim_end_matches('/').to_owned(),
            client,
            pace,
            poll,
            patience: 60,
            failures: AtomicU32::new(0),
            started: AtomicU64::new(0),
            started_at_step: std::sync::Mutex::new((0, 0)),
        })
    }

    async fn get(&self, path: &str) -> Result<Value, String> {
        let resp = self.client.get(format!("{}{path}", self.base_url)).send().await.map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("{path} answered {}", resp.status()));
        }
        resp.json().await.map_err(|e| format!("{path}: {e}"))
    }

    /// The trainer's step, queue and batch size; `None` for the batch size
    /// while no trainer has registered.
    pub async fn status(&self) -> Result<(u64, u64, Option<u64>), String> {
        let status = self.get("/status").await?;
        let info = self.get("/info").await?;
        let number = |v: &Value, key: &str| v.get(key).and_then(Value::as_u64);
        let step = number(&status, "current_step").ok_or("/status has no `current_step`")?;
        let queued = number(&status, "queue_size").ok_or("/status has no `queue_size`")?;
        Ok((step, queued, number(&info, "batch_size").filter(|b| *b > 0)))
    }

    /// Whether a group of `group_size` may start now, with `in_flight`
    /// sequences of this run started and not yet finished: `Some(step)`,
    /// the trainer's step it starts at (the policy version it samples
    /// with), or `None` to ask again after [`Pacer::poll`]. Fails after
    /// [`Pacer::patience`] reads in a row fail.
    pub async fn try_admit(&self, group_size: u64, in_flight: u64) -> Result<Option<u64>, RunnerError> {
        match self.status().await {
            Ok((step, queued, Some(batch_size))) => {
                self.failures.store(0, Ordering::Relaxed);
                let status = TrainerStatus { step, queued_groups: queued, batch_size };
                Ok(self.room(status, group_size, in_flight).then_some(step))
            }
            Ok((_, _, None)) => {
                self.failures.store(0, Ordering::Relaxed);
                Ok(None)
            }
            Err(e) => {
                let failures = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
                if failures >= self.patience {
                    return Err(RunnerError::Sink(format!(
                        "cannot read the trainer's progress from {}: {e} ({failures} tries)",
                        self.base_url
                    )));
                }
                Ok(None)
            }
        }
    }

    /// How long to wait before asking [`Pacer::try_admit`] again.
    pub fn poll(&self) -> Duration {
        self.poll
    }

    /// Counts `sequences` of started groups that will never reach the queue
    /// (filtered groups, members without token ids), so they do not hold
    /// production back.
    pub fn forget(&self, sequences: u64) {
        let _ = self.started.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| Some(s.saturating_sub(sequences)));
    }

    /// Whether a group may start now (counting it as started if so). What
    /// is ahead of it is the larger of what the queue and this run's
    /// groups in flight hold, and what this run started less what the
    /// trainer has taken (which also counts groups finished but not yet
    /// pushed, when this run is the queue's only producer).
    fn room(&self, status: TrainerStatus, group_size: u64, in_flight: u64) -> bool {
        let consumed = status.step.saturating_mul(status.batch_size);
        let by_queue = status.queued_groups.saturating_mul(group_size).saturating_add(in_flight);
        let by_count = self.started.load(Ordering::Relaxed).saturating_sub(consumed);
        let ahead = by_queue.max(by_count);
        let admit = match self.pace {
            Pace::MaxStaleness(k) => {
                ahead.saturating_add(group_size) <= k.saturating_add(1).saturating_mul(status.batch_size)
            }
            Pace::Sync => {
                let Ok(mut at_step) = self.started_at_step.lock() else { return false };
                if at_step.0 != status.step {
                    *at_step = (status.step, 0);
                }
                let fits = at_step.1 + group_size <= status.batch_size.max(group_size);
                if fits {
                    at_step.1 += group_size;
                }
                fits
            }
        };
        if admit {
            self.started.fetch_add(group_size, Ordering::Relaxed);
        }
        admit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pacer(pace: Pace) -> Pacer {
        Pacer::new("http://127.0.0.1:9", pace, Duration::from_millis(1)).expect("pacer")
    }

    #[test]
    fn staleness_admits_only_what_the_next_batches_take() {
        let at = |queued_groups, in_flight| {
            pacer(Pace::MaxStaleness(1)).room(TrainerStatus { step: 3, queued_groups, batch_size: 8 }, 4, in_flight)
        };
        // Two batches of 8 may be ahead: 3 groups of 4 queued + this one = 16.
        assert!(at(3, 0));
        assert!(!at(4, 0));
        assert!(!at(3, 4), "sequences in flight count");
        // What this run started and the trainer has not taken counts too
        // (groups finished but not pushed yet), until forgotten.
        let p = pacer(Pace::MaxStaleness(0));
        let s = |step| TrainerStatus { step, queued_groups: 0, batch_size: 8 };
        assert!(p.room(s(0), 4, 0));
        assert!(p.room(s(0), 4, 0));
        assert!(!p.room(s(0), 4, 0), "8 started, none taken");
        assert!(p.room(s(1), 4, 0), "the trainer took them");
        // 4 ahead now; a filtered group's 4 forgotten makes room for two more.
        p.forget(4);
        assert!(p.room(s(1), 4, 0));
        assert!(p.room(s(1), 4, 0));
        assert!(!p.room(s(1), 4, 0));
    }

    #[test]
    fn sync_gives_each_step_one_batch() {
        let p = pacer(Pace::Sync);
        let s = |step| TrainerStatus { step, queued_groups: 0, batch_size: 8 };
        assert!(p.room(s(0), 4, 0));
        assert!(p.room(s(0), 4, 0));
        assert!(!p.room(s(0), 4, 0), "a batch's worth started at step 0");
        assert!(p.room(s(1), 4, 0), "a new step, a new batch");
    }
}
