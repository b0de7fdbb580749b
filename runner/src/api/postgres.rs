//! The trajectory API's state in PostgreSQL, so several API replicas (and
//! the trainers and environments behind them) share one queue.
//!
//! Four tables in the database the URL names (its `search_path` picks the
//! schema): `trajectory_state` (one row: the trainer's registration, its
//! step, the latest group), `trajectory_envs`, `trajectory_queue` (one row
//! per queued group, oldest first by `seq`) and `trajectory_keys` (the
//! idempotency keys accepted, the last [`KEPT_KEYS`]). Every change that
//! reads before it writes locks the state row first, so replicas apply
//! changes one at a time; a batch's groups are deleted in the same
//! transaction that hands them out, and that transaction commits before
//! the batch is sent (at-most-once delivery, as with the log). Groups are
//! stored as the JSON text they were accepted as.

use std::time::Duration;

use serde_json::Value;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Postgres, Row, Transaction};

use super::backend::{EnvStatus, RegisteredEnv};
use super::pick_exact;
use super::store::{EnvReg, KEPT_KEYS, batch_size, group_env, group_size, starting_step};
use crate::error::RunnerError;

/// Serialises schema creation among replicas starting at once.
const SCHEMA_LOCK: i64 = 0x656e_7668_7562_7431;

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS trajectory_state (
        id SMALLINT PRIMARY KEY CHECK (id = 1),
        step BIGINT NOT NULL DEFAULT 0,
        trainer TEXT,
        trainer_uuid TEXT,
        latest TEXT)",
    "INSERT INTO trajectory_state (id) VALUES (1) ON CONFLICT DO NOTHING",
    "CREATE TABLE IF NOT EXISTS trajectory_envs (
        env_id BIGINT PRIMARY KEY,
        body TEXT NOT NULL,
        connected BOOLEAN NOT NULL DEFAULT TRUE)",
    "CREATE TABLE IF NOT EXISTS trajectory_queue (
        seq BIGSERIAL PRIMARY KEY,
        size BIGINT NOT NULL,
        env_id BIGINT,
        grp TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS trajectory_keys (
        key TEXT PRIMARY KEY,
        n BIGSERIAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS trajectory_keys_n ON trajectory_keys (n)",
];

fn db(e: sqlx::Error) -> RunnerError {
    RunnerError::Database { message: e.to_string() }
}

fn to_json(text: &str) -> Result<Value, RunnerError> {
    serde_json::from_str(text)
        .map_err(|e| RunnerError::Database { message: format!("a stored value is not JSON: {e}") })
}

fn json_opt(text: Option<String>) -> Result<Option<Value>, RunnerError> {
    text.as_deref().map(to_json).transpose()
}

/// The state in PostgreSQL.
pub(crate) struct PgStore {
    db: PgPool,
}

impl PgStore {
    /// Connects to `url` (`postgres://...`) and creates the tables if they
    /// are not there.
    pub(crate) async fn connect(url: &str) -> Result<Self, RunnerError> {
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .map_err(db)?;
        let mut tx = pool.begin().await.map_err(db)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(SCHEMA_LOCK).execute(&mut *tx).await.map_err(db)?;
        for statement in SCHEMA {
            sqlx::query(statement).execute(&mut *tx).await.map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(PgStore { db: pool })
    }

    /// Begins a transaction holding the state row's lock.
    async fn locked(&self) -> Result<(Transaction<'_, Postgres>, u64, Option<Value>), RunnerError> {
        let mut tx = self.db.begin().await.map_err(db)?;
        let row = sqlx::query("SELECT step, trainer FROM trajectory_state WHERE id = 1 FOR UPDATE")
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
        let step: i64 = row.try_get("step").map_err(db)?;
        let trainer = json_opt(row.try_get("trainer").map_err(db)?)?;
        Ok((tx, step.max(0) as u64, trainer))
    }

    pub(crate) async fn register(&self, body: &Value, uuid: &str) -> Result<(), RunnerError> {
        let step = starting_step(body).and_then(|s| i64::try_from(s).ok());
        sqlx::query(
            "UPDATE trajectory_state SET trainer = $1, trainer_uuid = $2, step = COALESCE($3, step) WHERE id = 1",
        )
        .bind(body.to_string())
        .bind(uuid)
        .bind(step)
        .execute(&self.db)
        .await
        .map_err(db)?;
        Ok(())
    }

    pub(crate) async fn register_env(&self, body: &Value) -> Result<RegisteredEnv, RunnerError> {
        let (mut tx, step, trainer) = self.locked().await?;
        let count: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM trajectory_envs").fetch_one(&mut *tx).await.map_err(db)?.get("n");
        sqlx::query("INSERT INTO trajectory_envs (env_id, body) VALUES ($1, $2)")
            .bind(count)
            .bind(body.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(RegisteredEnv { env_id: count, trainer, step })
    }

    pub(crate) async fn disconnect_env(&self, env_id: i64) -> Result<bool, RunnerError> {
        let done = sqlx::query("UPDATE trajectory_envs SET connected = FALSE WHERE env_id = $1")
            .bind(env_id)
            .execute(&self.db)
            .await
            .map_err(db)?;
        Ok(done.rows_affected() > 0)
    }

    pub(crate) async fn push(&self, groups: Vec<(Value, Option<String>)>) -> Result<usize, RunnerError> {
        let (mut tx, _, _) = self.locked().await?;
        let mut duplicates = 0;
        let mut latest = None;
        for (group, key) in groups {
            if let Some(key) = &key {
                let fresh = sqlx::query("INSERT INTO trajectory_keys (key) VALUES ($1) ON CONFLICT DO NOTHING")
                    .bind(key)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
                if fresh.rows_affected() == 0 {
                    duplicates += 1;
                    continue;
                }
            }
            let text = group.to_string();
            sqlx::query("INSERT INTO trajectory_queue (size, env_id, grp) VALUES ($1, $2, $3)")
                .bind(group_size(&group) as i64)
                .bind(group_env(&group))
                .bind(&text)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            latest = Some(text);
        }
        if let Some(text) = latest {
            sqlx::query("UPDATE trajectory_state SET latest = $1 WHERE id = 1")
                .bind(text)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            sqlx::query("DELETE FROM trajectory_keys WHERE n <= (SELECT MAX(n) FROM trajectory_keys) - $1")
                .bind(KEPT_KEYS as i64)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(duplicates)
    }

    pub(crate) async fn take_batch(&self) -> Result<Option<Vec<Value>>, RunnerError> {
        let (mut tx, _, trainer) = self.locked().await?;
        let Some(bs) = trainer.as_ref().and_then(batch_size) else { return Ok(None) };
        let rows =
            sqlx::query("SELECT seq, size FROM trajectory_queue ORDER BY seq").fetch_all(&mut *tx).await.map_err(db)?;
        let mut seqs = Vec::with_capacity(rows.len());
        let mut sizes = Vec::with_capacity(rows.len());
        for row in &rows {
            seqs.push(row.try_get::<i64, _>("seq").map_err(db)?);
            sizes.push(row.try_get::<i64, _>("size").map_err(db)?.max(0) as usize);
        }
        let Some(picked) = pick_exact(&sizes, bs) else { return Ok(None) };
        let taken: Vec<i64> = picked.iter().map(|&i| seqs[i]).collect();
        let rows = sqlx::query("DELETE FROM trajectory_queue WHERE seq = ANY($1) RETURNING seq, grp")
            .bind(&taken)
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
        let mut by_seq = std::collections::HashMap::with_capacity(rows.len());
        for row in rows {
            by_seq.insert(row.try_get::<i64, _>("seq").map_err(db)?, row.try_get::<String, _>("grp").map_err(db)?);
        }
        let groups = taken
            .iter()
            .map(|seq| by_seq.get(seq).map_or_else(|| Err(db(sqlx::Error::RowNotFound)), |text| to_json(text)))
            .collect::<Result<Vec<_>, _>>()?;
        sqlx::query("UPDATE trajectory_state SET step = step + 1 WHERE id = 1").execute(&mut *tx).await.map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(Some(groups))
    }

    pub(crate) async fn trainer(&self) -> Result<Option<Value>, RunnerError> {
        let row =
            sqlx::query("SELECT trainer FROM trajectory_state WHERE id = 1").fetch_one(&self.db).await.map_err(db)?;
        json_opt(row.try_get("trainer").map_err(db)?)
    }

    pub(crate) async fn status(&self) -> Result<(u64, usize), RunnerError> {
        let row = sqlx::query(
            "SELECT step, (SELECT COUNT(*) FROM trajectory_queue) AS queued FROM trajectory_state WHERE id = 1",
        )
        .fetch_one(&self.db)
        .await
        .map_err(db)?;
        let step: i64 = row.try_get("step").map_err(db)?;
        let queued: i64 = row.try_get("queued").map_err(db)?;
        Ok((step.max(0) as u64, queued.max(0) as usize))
    }

    pub(crate) async fn env_status(&self) -> Result<EnvStatus, RunnerError> {
        // One snapshot for all three reads.
        let mut tx = self.db.begin().await.map_err(db)?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let row =
            sqlx::query("SELECT step FROM trajectory_state WHERE id = 1").fetch_one(&mut *tx).await.map_err(db)?;
        let step: i64 = row.try_get("step").map_err(db)?;
        let mut envs = Vec::new();
        for row in sqlx::query("SELECT env_id, body, connected FROM trajectory_envs ORDER BY env_id")
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?
        {
            let mut env =
                EnvReg::registered(row.try_get("env_id").map_err(db)?, &to_json(row.try_get("body").map_err(db)?)?);
            env.connected = row.try_get("connected").map_err(db)?;
            envs.push(env);
        }
        let mut queue = Vec::new();
        for row in sqlx::query("SELECT env_id, size FROM trajectory_queue ORDER BY seq")
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?
        {
            let size: i64 = row.try_get("size").map_err(db)?;
            queue.push((row.try_get("env_id").map_err(db)?, size.max(0) as usize));
        }
        tx.commit().await.map_err(db)?;
        Ok(EnvStatus { step: step.max(0) as u64, envs, queue })
    }

    pub(crate) async fn latest(&self) -> Result<Option<Value>, RunnerError> {
        let row =
            sqlx::query("SELECT latest FROM trajectory_state WHERE id = 1").fetch_one(&self.db).await.map_err(db)?;
        json_opt(row.try_get("latest").map_err(db)?)
    }

    pub(crate) async fn reset(&self) -> Result<(), RunnerError> {
        let (mut tx, _, _) = self.locked().await?;
        for statement in [
            "DELETE FROM trajectory_queue",
            "DELETE FROM trajectory_envs",
            "UPDATE trajectory_state SET step = 0, trainer = NULL, trainer_uuid = NULL, latest = NULL WHERE id = 1",
        ] {
            sqlx::query(statement).execute(&mut *tx).await.map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(())
    }
}
