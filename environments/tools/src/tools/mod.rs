//! The simulated tools and their catalogue (names, descriptions, JSON Schemas).
//!
//! Every tool is deterministic and runs inside the guest on the episode's
//! [`World`](crate::world::World). Arguments are validated against the
//! schemas here before a tool runs, so each tool only reads well-typed
//! arguments; anything else a tool refuses is a [`ToolError`].

pub mod booking;
pub mod calculator;
pub mod db;
pub mod fs;

use std::sync::OnceLock;

use envhub_sdk::protocol::{FunctionSpec, Tool};
use envhub_sdk::verify::tools::ToolSpec;
use serde_json::Value;

/// Why a tool refused a call. Reported to the policy as a tool message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ToolError {
    /// An argument is unusable (bad path, bad expression, wrong column type).
    #[error("invalid argument: {0}")]
    Invalid(String),
    /// The thing named does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// A business rule forbids the operation.
    #[error("not allowed: {0}")]
    Rule(String),
}

/// Name, description and schema of every tool, in a fixed order.
fn catalogue() -> Vec<(&'static str, &'static str, Value)> {
    vec![
        ("calculator", "Evaluate an arithmetic expression exactly (fractions stay exact).", calculator::schema()),
        ("db_query", "Read rows of a database table, optionally filtered, sorted and limited.", db::query_schema()),
        ("db_insert", "Insert a row into a database table; returns its new id.", db::insert_schema()),
        ("db_update", "Change columns of the row with the given id.", db::update_schema()),
        ("fs_list", "List the entries of a directory (directories end in `/`).", fs::list_schema()),
        ("fs_read", "Read a text file.", fs::read_schema()),
        ("fs_write", "Write (or append to) a text file.", fs::write_schema()),
        (
            "booking_search",
            "Find hotel rooms free for a stay that fit the party, cheapest first, with total prices.",
            booking::search_schema(),
        ),
        (
            "booking_book",
            "Book a room for a stay; returns the confirmation id and total price.",
            booking::book_schema(),
        ),
        ("booking_list", "List a guest's bookings (active and cancelled).", booking::list_schema()),
        ("booking_cancel", "Cancel an active booking; returns the fee and the refund.", booking::cancel_schema()),
    ]
}

/// The tools in the verifier's form, for argument validation.
pub fn specs() -> &'static [ToolSpec] {
    static SPECS: OnceLock<Vec<ToolSpec>> = OnceLock::new();
    SPECS.get_or_init(|| {
        catalogue().into_iter().map(|(name, desc, schema)| ToolSpec::new(name, Some(desc.to_owned()), schema)).collect()
    })
}

/// The tools in the protocol's OpenAI function format.
pub fn openai_tools() -> Vec<Tool> {
    catalogue()
        .into_iter()
        .map(|(name, desc, schema)| Tool {
            kind: "function".to_owned(),
            function: FunctionSpec { name: name.to_owned(), description: desc.to_owned(), parameters: schema },
        })
        .collect()
}
