//! Verifiable goals: predicates over the final world and the final answer.
//!
//! A task succeeds when every one of its goals holds at the end of the
//! episode. Numbers are compared exactly (as rationals, so `12.50` equals
//! `12.5`); texts are compared exactly after trimming whitespace.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::tools::booking::Status;
use crate::tools::calculator::parse_number;
use crate::world::World;

/// One condition the episode must meet.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Goal {
    /// The final answer is this number (exact; `value` like `12.5` or `7/3`).
    AnswerNumber {
        /// The expected number.
        value: String,
    },
    /// The final answer is this text (exact, after trimming whitespace).
    AnswerText {
        /// The expected text.
        value: String,
    },
    /// The file holds this number (exact).
    FileNumber {
        /// Absolute path.
        path: String,
        /// The expected number.
        value: String,
    },
    /// The file holds this text (after trimming whitespace).
    FileText {
        /// Absolute path.
        path: String,
        /// The expected text.
        value: String,
    },
    /// The row `id` of `table` has these column values.
    DbRecord {
        /// Table name.
        table: String,
        /// Primary key.
        id: i64,
        /// Expected values by column.
        fields: Map<String, Value>,
    },
    /// Some row of `table` has these column values.
    DbRowExists {
        /// Table name.
        table: String,
        /// Expected values by column.
        fields: Map<String, Value>,
    },
    /// An active booking with these details exists; with `id_file`, that
    /// file holds its confirmation id.
    BookingActive {
        /// Room id.
        room_id: String,
        /// Guest name.
        guest: String,
        /// First night.
        day: i64,
        /// Nights.
        nights: i64,
        /// Party size.
        guests: i64,
        /// File that must hold the confirmation id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id_file: Option<String>,
    },
    /// The booking is cancelled.
    BookingCancelled {
        /// Confirmation id.
        confirmation_id: String,
    },
}

/// Equal as JSON values, numbers by value (`5 == 5.0`).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => x.as_f64() == y.as_f64(),
        },
        _ => a == b,
    }
}

fn fields_match(row: &Map<String, Value>, fields: &Map<String, Value>) -> bool {
    fields.iter().all(|(k, v)| row.get(k).is_some_and(|got| same(got, v)))
}

fn number_is(text: Option<&str>, value: &str) -> bool {
    match (text.and_then(parse_number), parse_number(value)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

impl Goal {
    /// Whether the goal's literals are usable (numbers parse).
    pub fn check(&self) -> Result<(), String> {
        match self {
            Goal::AnswerNumber { value } | Goal::FileNumber { value, .. } if parse_number(value).is_none() => {
                Err(format!("goal value `{value}` is not a number"))
            }
            _ => Ok(()),
        }
    }

    /// Whether the goal holds for the final `world` and `answer`.
    pub fn met(&self, world: &World, answer: Option<&str>) -> bool {
        match self {
            Goal::AnswerNumber { value } => number_is(answer, value),
            Goal::AnswerText { value } => answer.is_some_and(|a| a.trim() == value.trim()),
            Goal::FileNumber { path, value } => number_is(world.fs.content(path), value),
            Goal::FileText { path, value } => world.fs.content(path).is_some_and(|c| c.trim() == value.trim()),
            Goal::DbRecord { table, id, fields } => world.db.row(table, *id).is_some_and(|r| fields_match(r, fields)),
            Goal::DbRowExists { table, fields } => {
                world.db.tables.get(table).is_some_and(|t| t.rows.iter().any(|r| fields_match(r, fields)))
            }
            Goal::BookingActive { room_id, guest, day, nights, guests, id_file } => {
                world.hotel.bookings.iter().any(|b| {
                    b.status == Status::Active
                        && &b.room_id == room_id
                        && &b.guest == guest
                        && b.day == *day
                        && b.nights == *nights
                        && b.guests == *guests
                        && id_file.as_ref().is_none_or(|f| world.fs.content(f).is_some_and(|c| c.trim() == b.id))
                })
            }
            Goal::BookingCancelled { confirmation_id } => {
                world.hotel.booking(confirmation_id).is_some_and(|b| b.status == Status::Cancelled)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn answers_compare_exactly() {
        let w = World::default();
        let g = Goal::AnswerNumber { value: "12.5".into() };
        assert!(g.met(&w, Some(" 12.50 ")));
        assert!(!g.met(&w, Some("12.49")));
        assert!(!g.met(&w, None));
        let g = Goal::AnswerText { value: "Lamp".into() };
        assert!(g.met(&w, Some("Lamp\n")));
        assert!(!g.met(&w, Some("lamp")));
    }

    #[test]
    fn goals_read_from_json() {
        let g: Goal = serde_json::from_value(json!({"type": "file_text", "path": "/a", "value": "x"})).expect("goal");
        assert_eq!(g, Goal::FileText { path: "/a".into(), value: "x".into() });
        assert!(serde_json::from_value::<Goal>(json!({"type": "nope"})).is_err());
        assert!(Goal::AnswerNumber { value: "ten".into() }.check().is_err());
    }
}
