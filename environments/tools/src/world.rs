//! The simulated world an episode acts on: a database, a file system and a
//! hotel, and the dispatch of validated tool calls to them.

use envhub_sdk::verify::tools::{ToolCall, validate_call};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::tools::booking::Hotel;
use crate::tools::db::Database;
use crate::tools::fs::FileSystem;
use crate::tools::{ToolError, calculator, specs};

/// Everything the tools can see and change. Round-trips through JSON.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct World {
    /// Tables of records.
    #[serde(default)]
    pub db: Database,
    /// Text files.
    #[serde(default)]
    pub fs: FileSystem,
    /// Rooms and reservations.
    #[serde(default)]
    pub hotel: Hotel,
}

/// Why a call did not run.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum CallError {
    /// No tool has that name.
    #[error("unknown tool `{name}`; tools are: {available}")]
    UnknownTool {
        /// The name called.
        name: String,
        /// The tools offered.
        available: String,
    },
    /// The arguments do not follow the tool's schema.
    #[error("invalid arguments for `{name}`: {errors}")]
    Schema {
        /// The tool.
        name: String,
        /// Every violation.
        errors: String,
    },
    /// The tool refused the call.
    #[error(transparent)]
    Tool(#[from] ToolError),
}

impl World {
    /// Checks inline world data for consistency.
    pub fn check(&self) -> Result<(), String> {
        self.db.check().map_err(|e| format!("world.db: {e}"))?;
        self.fs.check().map_err(|e| format!("world.fs: {e}"))?;
        self.hotel.check().map_err(|e| format!("world.hotel: {e}"))
    }

    /// Validates a call against the tool schemas and runs it. The world
    /// changes only when the call succeeds.
    pub fn execute(&mut self, call: &ToolCall) -> Result<Value, CallError> {
        validate_call(specs(), call).map_err(|e| match e {
            envhub_sdk::verify::tools::CallValidationError::UnknownFunction { name, available } => {
                CallError::UnknownTool { name, available }
            }
            envhub_sdk::verify::tools::CallValidationError::InvalidArguments { name, errors } => {
                CallError::Schema { name, errors: errors.to_string() }
            }
        })?;
        let args = &call.arguments;
        let out = match call.name.as_str() {
            "calculator" => calculator::call(args),
            "db_query" => self.db.query(args),
            "db_insert" => self.db.insert(args),
            "db_update" => self.db.update(args),
            "fs_list" => self.fs.list(args),
            "fs_read" => self.fs.read(args),
            "fs_write" => self.fs.write(args),
            "booking_search" => self.hotel.search(args),
            "booking_book" => self.hotel.book(args),
            "booking_list" => self.hotel.list(args),
            "booking_cancel" => self.hotel.cancel(args),
            other => {
                return Err(CallError::UnknownTool {
                    name: other.to_owned(),
                    available: specs().iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", "),
                });
            }
        };
        Ok(out?)
    }
}
