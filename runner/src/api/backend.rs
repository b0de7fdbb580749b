//! The operations the API's routes perform, over either store: the
//! embedded log (one server) or PostgreSQL (several replicas sharing one
//! queue). Both give the same answers; the API's test suite runs on both.

use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::pick_exact;
use super::postgres::PgStore;
use super::store::{EnvReg, Record, Store, group_env};
use crate::error::RunnerError;

/// Where the API keeps its state.
#[derive(Clone)]
pub(crate) enum Backend {
    /// The embedded, append-only log.
    Log(Arc<Mutex<Store>>),
    /// Tables in a PostgreSQL database.
    Postgres(Arc<PgStore>),
}

/// What `/register-env` answers from.
pub(crate) struct RegisteredEnv {
    pub(crate) env_id: i64,
    pub(crate) trainer: Option<Value>,
    pub(crate) step: u64,
}

/// What `/status-env` is worked out from.
pub(crate) struct EnvStatus {
    pub(crate) step: u64,
    pub(crate) envs: Vec<EnvReg>,
    /// Each queued group's `env_id` and size, oldest first.
    pub(crate) queue: Vec<(Option<i64>, usize)>,
}

impl Backend {
    /// Runs `f` on the log store off the async threads.
    async fn log<T: Send + 'static>(
        store: &Arc<Mutex<Store>>,
        f: impl FnOnce(&mut Store) -> Result<T, RunnerError> + Send + 'static,
    ) -> Result<T, RunnerError> {
        let store = store.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = store.lock().map_err(|_| RunnerError::Sink("the trajectory store is poisoned".into()))?;
            f(&mut guard)
        })
        .await
        .map_err(|e| RunnerError::Sink(format!("the trajectory store's task failed: {e}")))?
    }

    /// Records a trainer's registration.
    pub(crate) async fn register(&self, body: Value, uuid: String) -> Result<(), RunnerError> {
        match self {
            Backend::Log(s) => Self::log(s, move |st| st.append(vec![Record::Register { body, uuid }])).await,
            Backend::Postgres(pg) => pg.register(&body, &uuid).await,
        }
    }

    /// Registers an environment under the next id.
    pub(crate) async fn register_env(&self, body: Value) -> Result<RegisteredEnv, RunnerError> {
        match self {
            Backend::Log(s) => {
                Self::log(s, move |st| {
                    let env_id = st.inner.envs.len() as i64;
                    st.append(vec![Record::RegisterEnv { env_id, body }])?;
                    let trainer = st.inner.trainer.as_ref().map(|t| t.0.clone());
                    Ok(RegisteredEnv { env_id, trainer, step: st.inner.step })
                })
                .await
            }
            Backend::Postgres(pg) => pg.register_env(&body).await,
        }
    }

    /// Marks an environment disconnected; whether it was registered.
    pub(crate) async fn disconnect_env(&self, env_id: i64) -> Result<bool, RunnerError> {
        match self {
            Backend::Log(s) => {
                Self::log(s, move |st| {
                    if !st.inner.envs.iter().any(|e| e.env_id == env_id) {
                        return Ok(false);
                    }
                    st.append(vec![Record::DisconnectEnv { env_id }])?;
                    Ok(true)
                })
                .await
            }
            Backend::Postgres(pg) => pg.disconnect_env(env_id).await,
        }
    }

    /// Queues `groups` (each with its idempotency key) as one unit;
    /// returns how many were already there.
    pub(crate) async fn push(&self, groups: Vec<(Value, Option<String>)>) -> Result<usize, RunnerError> {
        match self {
            Backend::Log(s) => Self::log(s, move |st| st.push(groups)).await,
            Backend::Postgres(pg) => pg.push(groups).await,
        }
    }

    /// Takes exactly one batch of whole groups out of the queue, if it
    /// holds one and a trainer registered a batch size.
    pub(crate) async fn take_batch(&self) -> Result<Option<Vec<Value>>, RunnerError> {
        match self {
            Backend::Log(s) => {
                Self::log(s, |st| {
                    let Some(bs) = st.inner.batch_size() else { return Ok(None) };
                    let sizes: Vec<usize> = st.inner.queue.iter().map(|q| q.size).collect();
                    let Some(picked) = pick_exact(&sizes, bs) else { return Ok(None) };
                    let seqs: Vec<u64> = picked.iter().map(|&i| st.inner.queue[i].seq).collect();
                    let groups: Vec<Value> = picked.iter().map(|&i| st.inner.queue[i].group.clone()).collect();
                    st.append(vec![Record::Batch { seqs }])?;
                    Ok(Some(groups))
                })
                .await
            }
            Backend::Postgres(pg) => pg.take_batch().await,
        }
    }

    /// The registered trainer's registration body.
    pub(crate) async fn trainer(&self) -> Result<Option<Value>, RunnerError> {
        match self {
            Backend::Log(s) => Self::log(s, |st| Ok(st.inner.trainer.as_ref().map(|t| t.0.clone()))).await,
            Backend::Postgres(pg) => pg.trainer().await,
        }
    }

    /// The trainer's step and the number of queued groups.
    pub(crate) async fn status(&self) -> Result<(u64, usize), RunnerError> {
        match self {
            Backend::Log(s) => Self::log(s, |st| Ok((st.inner.step, st.inner.queue.len()))).await,
            Backend::Postgres(pg) => pg.status().await,
        }
    }

    /// What `/status-env` needs.
    pub(crate) async fn env_status(&self) -> Result<EnvStatus, RunnerError> {
        match self {
            Backend::Log(s) => {
                Self::log(s, |st| {
                    Ok(EnvStatus {
                        step: st.inner.step,
                        envs: st.inner.envs.clone(),
                        queue: st.inner.queue.iter().map(|q| (group_env(&q.group), q.size)).collect(),
                    })
                })
                .await
            }
            Backend::Postgres(pg) => pg.env_status().await,
        }
    }

    /// The group pushed last, if any.
    pub(crate) async fn latest(&self) -> Result<Option<Value>, RunnerError> {
        match self {
            Backend::Log(s) => Self::log(s, |st| Ok(st.inner.latest.clone())).await,
            Backend::Postgres(pg) => pg.latest().await,
        }
    }

    /// Forgets the trainer, the environments and the queue (keeping the
    /// idempotency keys, so a retried push is still a duplicate).
    pub(crate) async fn reset(&self) -> Result<(), RunnerError> {
        match self {
            Backend::Log(s) => Self::log(s, |st| st.append(vec![Record::Reset])).await,
            Backend::Postgres(pg) => pg.reset().await,
        }
    }
}
