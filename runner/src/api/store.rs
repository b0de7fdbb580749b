//! The trajectory API's state: records of the log, the state they build,
//! and the store that appends them durably, dedupes pushes by idempotency
//! key and compacts the log.

use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::log::{self, Log};
use crate::error::RunnerError;

/// Idempotency keys remembered (the most recent ones): a retry arrives
/// seconds after its first attempt, far fewer pushes later than this.
pub const KEPT_KEYS: usize = 1 << 16;

/// One line of the durable log.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(crate) enum Record {
    Register {
        body: Value,
        uuid: String,
    },
    RegisterEnv {
        env_id: i64,
        body: Value,
    },
    DisconnectEnv {
        env_id: i64,
    },
    Push {
        seq: u64,
        group: Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
    },
    Batch {
        seqs: Vec<u64>,
    },
    Reset,
    /// Everything but the queue, as of a compaction; the queue's `Push`
    /// records follow it.
    Snapshot(Box<Snapshot>),
}

/// The state a compacted log starts from.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Snapshot {
    trainer: Option<(Value, String)>,
    envs: Vec<EnvReg>,
    next_seq: u64,
    step: u64,
    latest: Option<Value>,
    keys: Vec<String>,
}

#[derive(Clone, Debug)]
pub(crate) struct Queued {
    pub(crate) seq: u64,
    pub(crate) size: usize,
    pub(crate) group: Value,
    key: Option<String>,
    /// Length of its `Push` line: what it costs the log.
    bytes: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct EnvReg {
    pub(crate) env_id: i64,
    pub(crate) name: String,
    pub(crate) weight: f64,
    pub(crate) group_size: i64,
    pub(crate) connected: bool,
}

impl EnvReg {
    /// The environment `/register-env` registered as `env_id` with `body`.
    pub(crate) fn registered(env_id: i64, body: &Value) -> Self {
        EnvReg {
            env_id,
            name: body.get("desired_name").and_then(Value::as_str).unwrap_or("env").to_owned(),
            weight: body.get("weight").and_then(Value::as_f64).unwrap_or(1.0),
            group_size: body.get("group_size").and_then(Value::as_i64).unwrap_or(-1),
            connected: true,
        }
    }
}

/// The step a trainer's registration starts at, if it names one.
pub(crate) fn starting_step(registration: &Value) -> Option<u64> {
    registration.get("starting_step").and_then(Value::as_u64)
}

/// A registered trainer's batch size.
pub(crate) fn batch_size(registration: &Value) -> Option<usize> {
    let bs = registration.get("batch_size")?.as_u64()?;
    usize::try_from(bs).ok().filter(|b| *b > 0)
}

/// The `env_id` a group names.
pub(crate) fn group_env(group: &Value) -> Option<i64> {
    group.get("env_id").and_then(Value::as_i64)
}

/// The most recent idempotency keys, oldest first.
#[derive(Default)]
struct Keys {
    order: VecDeque<String>,
    set: HashSet<String>,
}

impl Keys {
    fn insert(&mut self, key: &str) {
        if self.set.insert(key.to_owned()) {
            self.order.push_back(key.to_owned());
            while self.order.len() > KEPT_KEYS {
                if let Some(old) = self.order.pop_front() {
                    self.set.remove(&old);
                }
            }
        }
    }
}

/// What the records built.
#[derive(Default)]
pub(crate) struct Inner {
    pub(crate) trainer: Option<(Value, String)>,
    pub(crate) envs: Vec<EnvReg>,
    pub(crate) queue: VecDeque<Queued>,
    next_seq: u64,
    pub(crate) step: u64,
    pub(crate) latest: Option<Value>,
    keys: Keys,
    /// Bytes of the queue's `Push` lines.
    queued_bytes: u64,
    /// Bytes of the last snapshot: about what the rest of the state costs.
    snapshot_bytes: u64,
}

/// Sequences in a group (its `tokens` rows).
pub(crate) fn group_size(group: &Value) -> usize {
    group.get("tokens").and_then(Value::as_array).map_or(0, Vec::len)
}

impl Inner {
    /// Applies `r`, whose log line is `bytes` long.
    fn apply(&mut self, r: Record, bytes: u64) {
        match r {
            Record::Register { body, uuid } => {
                self.step = starting_step(&body).unwrap_or(self.step);
                self.trainer = Some((body, uuid));
            }
            Record::RegisterEnv { env_id, body } => self.envs.push(EnvReg::registered(env_id, &body)),
            Record::DisconnectEnv { env_id } => {
                for e in self.envs.iter_mut().filter(|e| e.env_id == env_id) {
                    e.connected = false;
                }
            }
            Record::Push { seq, group, key } => self.push(seq, group, key, bytes),
            Record::Batch { seqs } => {
                let taken: HashSet<u64> = seqs.into_iter().collect();
                let mut freed = 0;
                self.queue.retain(|q| {
                    let keep = !taken.contains(&q.seq);
                    freed += if keep { 0 } else { q.bytes };
                    keep
                });
                self.queued_bytes -= freed;
                self.step += 1;
            }
            Record::Reset => {
                let (next_seq, snapshot_bytes) = (self.next_seq, self.snapshot_bytes);
                let keys = std::mem::take(&mut self.keys);
                *self = Inner { next_seq, keys, snapshot_bytes, ..Inner::default() };
            }
            Record::Snapshot(s) => {
                self.restore(*s);
                self.snapshot_bytes = bytes;
            }
        }
    }

    fn push(&mut self, seq: u64, group: Value, key: Option<String>, bytes: u64) {
        if let Some(k) = &key {
            self.keys.insert(k);
        }
        self.next_seq = self.next_seq.max(seq + 1);
        self.latest = Some(group.clone());
        self.queued_bytes += bytes;
        self.queue.push_back(Queued { seq, size: group_size(&group), group, key, bytes });
    }

    fn restore(&mut self, s: Snapshot) {
        *self = Inner {
            trainer: s.trainer,
            envs: s.envs,
            next_seq: s.next_seq,
            step: s.step,
            latest: s.latest,
            ..Inner::default()
        };
        for k in &s.keys {
            self.keys.insert(k);
        }
    }

    /// Whether a push with `key` was already accepted.
    pub(crate) fn has_key(&self, key: &str) -> bool {
        self.keys.set.contains(key)
    }

    /// The trainer's batch size, once one registered.
    pub(crate) fn batch_size(&self) -> Option<usize> {
        batch_size(&self.trainer.as_ref()?.0)
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            trainer: self.trainer.clone(),
            envs: self.envs.clone(),
            next_seq: self.next_seq,
            step: self.step,
            latest: self.latest.clone(),
            keys: self.keys.order.iter().cloned().collect(),
        }
    }
}

fn line(r: &Record) -> Result<Vec<u8>, RunnerError> {
    let mut line = serde_json::to_vec(r).map_err(|e| RunnerError::Sink(e.to_string()))?;
    line.push(b'\n');
    Ok(line)
}

/// When to compact: once at least `min_bytes`, and at least half, of the
/// log is dead (consumed groups, replaced state), so the rewrite costs no
/// more than what was appended since the last one.
struct Compaction {
    path: PathBuf,
    min_bytes: u64,
    /// After a failed compaction, wait until the log reaches this length.
    retry_at: u64,
}

/// How the log is doing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogStats {
    /// Bytes of whole records.
    pub bytes: u64,
    /// Compactions done since the server started.
    pub compactions: u64,
    /// Why the last compaction failed, if it did (the log is kept as it was).
    pub compaction_error: Option<String>,
}

/// The state and the log it is kept in.
pub(crate) struct Store {
    pub(crate) inner: Inner,
    log: Log,
    compaction: Option<Compaction>,
    stats: LogStats,
}

impl Store {
    /// Opens (creating) and locks the log at `path`, replays it, and
    /// compacts it once `compact_min_bytes` of it are dead.
    pub(crate) fn open(path: &Path, compact_min_bytes: u64) -> Result<Self, RunnerError> {
        let file = log::open_locked(path)?;
        let mut inner = Inner::default();
        let len = log::replay(&file, path, |bytes, offset| {
            let r = serde_json::from_slice::<Record>(bytes).map_err(|e| RunnerError::LogCorrupt {
                path: path.display().to_string(),
                offset,
                message: e.to_string(),
            })?;
            inner.apply(r, bytes.len() as u64);
            Ok(())
        })?;
        let log = Log::new(Box::new(file), len, path.display().to_string());
        let compaction = Some(Compaction { path: path.to_path_buf(), min_bytes: compact_min_bytes, retry_at: 0 });
        let mut store = Store { inner, log, compaction, stats: LogStats::default() };
        store.maybe_compact();
        Ok(store)
    }

    /// A store over an empty `file` that is never compacted.
    #[cfg(test)]
    pub(crate) fn over(file: Box<dyn log::LogFile>) -> Self {
        Store {
            inner: Inner::default(),
            log: Log::new(file, 0, "test log"),
            compaction: None,
            stats: LogStats::default(),
        }
    }

    /// Appends `records` as one unit, then applies them: on failure
    /// nothing changed.
    pub(crate) fn append(&mut self, records: Vec<Record>) -> Result<(), RunnerError> {
        let lines = records.iter().map(line).collect::<Result<Vec<_>, _>>()?;
        self.log.append(&lines.concat())?;
        for (r, l) in records.into_iter().zip(&lines) {
            self.inner.apply(r, l.len() as u64);
        }
        self.maybe_compact();
        Ok(())
    }

    /// Appends pushes of `groups`, skipping those whose key was accepted
    /// before. Returns how many were already there.
    pub(crate) fn push(&mut self, groups: Vec<(Value, Option<String>)>) -> Result<usize, RunnerError> {
        let mut records = Vec::new();
        let mut seen = HashSet::new();
        let mut duplicates = 0;
        for (group, key) in groups {
            if key.as_deref().is_some_and(|k| self.inner.has_key(k) || !seen.insert(k.to_owned())) {
                duplicates += 1;
                continue;
            }
            let seq = self.inner.next_seq + records.len() as u64;
            records.push(Record::Push { seq, group, key });
        }
        if !records.is_empty() {
            self.append(records)?;
        }
        Ok(duplicates)
    }

    /// How the log is doing.
    pub(crate) fn stats(&self) -> LogStats {
        LogStats { bytes: self.log.len(), ..self.stats.clone() }
    }

    fn maybe_compact(&mut self) {
        let Some(c) = &self.compaction else { return };
        let len = self.log.len();
        let live = self.inner.queued_bytes + self.inner.snapshot_bytes;
        let dead = len.saturating_sub(live);
        if len < c.retry_at || dead < c.min_bytes.max(1) || dead < live {
            return;
        }
        let path = c.path.clone();
        match self.compact(&path) {
            Ok(()) => {
                self.stats.compactions += 1;
                self.stats.compaction_error = None;
            }
            Err(e) => {
                self.stats.compaction_error = Some(e.to_string());
                if let Some(c) = &mut self.compaction {
                    c.retry_at = len.saturating_add(c.min_bytes.max(1));
                }
            }
        }
    }

    /// Rewrites the log as a snapshot plus the queue's pushes.
    fn compact(&mut self, path: &Path) -> Result<(), RunnerError> {
        let mut lines = vec![line(&Record::Snapshot(Box::new(self.inner.snapshot())))?];
        for q in &self.inner.queue {
            lines.push(line(&Record::Push { seq: q.seq, group: q.group.clone(), key: q.key.clone() })?);
        }
        let snapshot_bytes = lines[0].len() as u64;
        let new = log::rewrite(path, lines.into_iter())?;
        self.log = Log::new(Box::new(new.file), new.len, path.display().to_string());
        self.inner.snapshot_bytes = snapshot_bytes;
        new.dir_synced
    }
}
