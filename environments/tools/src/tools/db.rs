//! The database tools: `db_query`, `db_insert` and `db_update` over a small
//! in-memory database of typed tables.
//!
//! Every table has an integer primary key `id` (assigned on insert) and a
//! fixed list of typed columns. Queries filter with simple comparisons,
//! combined with AND, and may sort and limit the result.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::ToolError;

/// Most rows a table may hold.
pub const MAX_ROWS: usize = 1_000;
/// Most rows one query returns.
pub const MAX_LIMIT: u64 = 100;
/// Longest string value stored.
pub const MAX_STRING: usize = 1_000;

/// The type of a column's values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    /// A whole number.
    Integer,
    /// Any number.
    Number,
    /// Text.
    String,
    /// `true` or `false`.
    Boolean,
}

impl ColumnType {
    fn admits(self, v: &Value) -> bool {
        match self {
            ColumnType::Integer => v.as_i64().is_some(),
            ColumnType::Number => v.is_number(),
            ColumnType::String => v.as_str().is_some_and(|s| s.chars().count() <= MAX_STRING),
            ColumnType::Boolean => v.is_boolean(),
        }
    }

    fn name(self) -> &'static str {
        match self {
            ColumnType::Integer => "integer",
            ColumnType::Number => "number",
            ColumnType::String => "string",
            ColumnType::Boolean => "boolean",
        }
    }
}

/// A named, typed column (the `id` column is implicit).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Column {
    /// Column name.
    pub name: String,
    /// Value type.
    #[serde(rename = "type")]
    pub kind: ColumnType,
}

/// A table: its columns and rows. Each row is an object with `id` and one
/// value per column.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Table {
    /// The columns, besides `id`.
    pub columns: Vec<Column>,
    /// The rows, in insertion order.
    #[serde(default)]
    pub rows: Vec<Map<String, Value>>,
}

/// The whole database: tables by name.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Database {
    /// Tables by name.
    pub tables: BTreeMap<String, Table>,
}

fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Orders two values of the same JSON type (numbers by value).
fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => Some(x.cmp(&y)),
            _ => x.as_f64()?.partial_cmp(&y.as_f64()?),
        },
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

impl Table {
    fn column(&self, name: &str) -> Result<ColumnType, ToolError> {
        if name == "id" {
            return Ok(ColumnType::Integer);
        }
        self.columns.iter().find(|c| c.name == name).map(|c| c.kind).ok_or_else(|| {
            let names: Vec<&str> = std::iter::once("id").chain(self.columns.iter().map(|c| c.name.as_str())).collect();
            ToolError::NotFound(format!("no column `{name}`; columns are: {}", names.join(", ")))
        })
    }

    fn next_id(&self) -> i64 {
        self.rows.iter().filter_map(|r| r.get("id").and_then(Value::as_i64)).max().unwrap_or(0).saturating_add(1)
    }

    fn row_index(&self, id: i64) -> Option<usize> {
        self.rows.iter().position(|r| r.get("id").and_then(Value::as_i64) == Some(id))
    }

    /// Checks that every row has a unique integer `id` and well-typed values
    /// for exactly the declared columns.
    pub fn check(&self, table: &str) -> Result<(), String> {
        if self.rows.len() > MAX_ROWS {
            return Err(format!("table `{table}` has more than {MAX_ROWS} rows"));
        }
        let mut ids = std::collections::BTreeSet::new();
        for (i, row) in self.rows.iter().enumerate() {
            let id =
                row.get("id").and_then(Value::as_i64).ok_or(format!("table `{table}` row {i}: no integer `id`"))?;
            if !ids.insert(id) {
                return Err(format!("table `{table}`: duplicate id {id}"));
            }
            for c in &self.columns {
                match row.get(&c.name) {
                    Some(v) if c.kind.admits(v) => {}
                    _ => {
                        return Err(format!("table `{table}` row {id}: column `{}` needs a {}", c.name, c.kind.name()));
                    }
                }
            }
            if row.len() != self.columns.len() + 1 {
                return Err(format!("table `{table}` row {id}: fields other than the declared columns"));
            }
        }
        Ok(())
    }
}

/// One `filters` entry of `db_query`.
struct Filter<'a> {
    column: &'a str,
    op: &'a str,
    value: &'a Value,
}

impl Filter<'_> {
    fn matches(&self, row: &Map<String, Value>) -> bool {
        let Some(v) = row.get(self.column) else { return false };
        match self.op {
            "contains" => match (v.as_str(), self.value.as_str()) {
                (Some(hay), Some(needle)) => hay.to_lowercase().contains(&needle.to_lowercase()),
                _ => false,
            },
            op => {
                let Some(ord) = compare(v, self.value) else { return false };
                match op {
                    "eq" => ord == Ordering::Equal,
                    "ne" => ord != Ordering::Equal,
                    "lt" => ord == Ordering::Less,
                    "le" => ord != Ordering::Greater,
                    "gt" => ord == Ordering::Greater,
                    "ge" => ord != Ordering::Less,
                    _ => false,
                }
            }
        }
    }
}

impl Database {
    fn table(&self, name: &str) -> Result<&Table, ToolError> {
        self.tables.get(name).ok_or_else(|| self.no_table(name))
    }

    fn no_table(&self, name: &str) -> ToolError {
        let names: Vec<&str> = self.tables.keys().map(String::as_str).collect();
        ToolError::NotFound(format!("no table `{name}`; tables are: {}", names.join(", ")))
    }

    /// Checks every table (see [`Table::check`]).
    pub fn check(&self) -> Result<(), String> {
        self.tables.iter().try_for_each(|(name, t)| t.check(name))
    }

    /// The row of `table` with primary key `id`.
    pub fn row(&self, table: &str, id: i64) -> Option<&Map<String, Value>> {
        let t = self.tables.get(table)?;
        t.row_index(id).and_then(|i| t.rows.get(i))
    }

    /// `db_query`: rows matching every filter, sorted and limited.
    pub fn query(&self, args: &Value) -> Result<Value, ToolError> {
        let table = self.table(args.get("table").and_then(Value::as_str).unwrap_or_default())?;
        let mut filters = Vec::new();
        for f in args.get("filters").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default() {
            let column = f.get("column").and_then(Value::as_str).unwrap_or_default();
            let op = f.get("op").and_then(Value::as_str).unwrap_or("eq");
            let value = f.get("value").unwrap_or(&Value::Null);
            let kind = table.column(column)?;
            let type_ok = if op == "contains" {
                kind == ColumnType::String && value.is_string()
            } else {
                match kind {
                    ColumnType::Integer | ColumnType::Number => value.is_number(),
                    _ => kind.admits(value),
                }
            };
            if !type_ok {
                return Err(ToolError::Invalid(format!(
                    "filter on `{column}` ({}) with op `{op}` cannot take a {} value",
                    kind.name(),
                    type_of(value)
                )));
            }
            filters.push(Filter { column, op, value });
        }
        let mut rows: Vec<&Map<String, Value>> =
            table.rows.iter().filter(|r| filters.iter().all(|f| f.matches(r))).collect();
        let total = rows.len();
        if let Some(order_by) = args.get("order_by").and_then(Value::as_str) {
            table.column(order_by)?;
            let descending = args.get("descending").and_then(Value::as_bool).unwrap_or(false);
            rows.sort_by(|a, b| {
                let ord = match (a.get(order_by), b.get(order_by)) {
                    (Some(x), Some(y)) => compare(x, y).unwrap_or(Ordering::Equal),
                    _ => Ordering::Equal,
                };
                if descending { ord.reverse() } else { ord }
            });
        }
        let limit = args.get("limit").and_then(Value::as_u64).unwrap_or(MAX_LIMIT).min(MAX_LIMIT);
        let rows: Vec<&Map<String, Value>> = rows.into_iter().take(limit as usize).collect();
        Ok(json!({ "rows": rows, "total_matches": total }))
    }

    /// `db_insert`: adds a record with a fresh id.
    pub fn insert(&mut self, args: &Value) -> Result<Value, ToolError> {
        let name = args.get("table").and_then(Value::as_str).unwrap_or_default();
        let record = args.get("record").and_then(Value::as_object).cloned().unwrap_or_default();
        let no_table = self.no_table(name);
        let table = self.tables.get_mut(name).ok_or(no_table)?;
        if record.contains_key("id") {
            return Err(ToolError::Invalid("do not give `id`: the database assigns it".to_owned()));
        }
        for key in record.keys() {
            table.column(key)?;
        }
        let mut row = Map::new();
        let id = table.next_id();
        row.insert("id".to_owned(), json!(id));
        for c in &table.columns {
            match record.get(&c.name) {
                Some(v) if c.kind.admits(v) => {
                    row.insert(c.name.clone(), v.clone());
                }
                Some(v) => {
                    return Err(ToolError::Invalid(format!(
                        "column `{}` needs a {} value, got {}",
                        c.name,
                        c.kind.name(),
                        type_of(v)
                    )));
                }
                None => return Err(ToolError::Invalid(format!("missing column `{}`", c.name))),
            }
        }
        if table.rows.len() >= MAX_ROWS {
            return Err(ToolError::Rule(format!("table `{name}` is full ({MAX_ROWS} rows)")));
        }
        table.rows.push(row.clone());
        Ok(json!({ "id": id, "record": row }))
    }

    /// `db_update`: changes some columns of the row with the given id.
    pub fn update(&mut self, args: &Value) -> Result<Value, ToolError> {
        let name = args.get("table").and_then(Value::as_str).unwrap_or_default();
        let id = args.get("id").and_then(Value::as_i64).unwrap_or_default();
        let changes = args.get("changes").and_then(Value::as_object).cloned().unwrap_or_default();
        let no_table = self.no_table(name);
        let table = self.tables.get_mut(name).ok_or(no_table)?;
        if changes.contains_key("id") {
            return Err(ToolError::Invalid("`id` cannot be changed".to_owned()));
        }
        for (key, v) in &changes {
            let kind = table.column(key)?;
            if !kind.admits(v) {
                return Err(ToolError::Invalid(format!(
                    "column `{key}` needs a {} value, got {}",
                    kind.name(),
                    type_of(v)
                )));
            }
        }
        let i = table
            .row_index(id)
            .ok_or_else(|| ToolError::NotFound(format!("table `{name}` has no row with id {id}")))?;
        let row = table.rows.get_mut(i).ok_or_else(|| ToolError::NotFound(format!("no row {id}")))?;
        for (key, v) in changes {
            row.insert(key, v);
        }
        Ok(json!({ "record": row }))
    }
}

/// JSON Schema of `db_query`.
pub fn query_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "table": {"type": "string", "description": "Table name."},
            "filters": {
                "type": "array",
                "description": "Conditions that must all hold.",
                "maxItems": 16,
                "items": {
                    "type": "object",
                    "properties": {
                        "column": {"type": "string"},
                        "op": {"type": "string", "enum": ["eq", "ne", "lt", "le", "gt", "ge", "contains"]},
                        "value": {"type": ["string", "number", "boolean"]}
                    },
                    "required": ["column", "op", "value"],
                    "additionalProperties": false
                }
            },
            "order_by": {"type": "string", "description": "Column to sort by."},
            "descending": {"type": "boolean", "description": "Sort from largest to smallest."},
            "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "description": "Most rows to return (default 100)."}
        },
        "required": ["table"],
        "additionalProperties": false
    })
}

/// JSON Schema of `db_insert`.
pub fn insert_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "table": {"type": "string"},
            "record": {"type": "object", "description": "A value for every column except `id`."}
        },
        "required": ["table", "record"],
        "additionalProperties": false
    })
}

/// JSON Schema of `db_update`.
pub fn update_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "table": {"type": "string"},
            "id": {"type": "integer", "description": "Primary key of the row to change."},
            "changes": {"type": "object", "minProperties": 1, "description": "New values by column."}
        },
        "required": ["table", "id", "changes"],
        "additionalProperties": false
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Database {
        serde_json::from_value(json!({
            "products": {
                "columns": [{"name": "name", "type": "string"}, {"name": "price", "type": "number"}],
                "rows": [
                    {"id": 1, "name": "Lamp", "price": 30},
                    {"id": 2, "name": "Desk", "price": 120},
                    {"id": 3, "name": "Desk lamp", "price": 45}
                ]
            }
        }))
        .expect("db")
    }

    #[test]
    fn query_filters_sorts_and_limits() {
        let d = db();
        let r = d
            .query(&json!({"table": "products", "filters": [{"column": "name", "op": "contains", "value": "lamp"}],
                "order_by": "price", "descending": true, "limit": 1}))
            .expect("query");
        assert_eq!(r, json!({"rows": [{"id": 3, "name": "Desk lamp", "price": 45}], "total_matches": 2}));
        let r = d
            .query(&json!({"table": "products", "filters": [{"column": "price", "op": "ge", "value": 45.0}]}))
            .expect("query");
        assert_eq!(r["total_matches"], json!(2));
        assert!(d.query(&json!({"table": "nope"})).is_err());
        assert!(
            d.query(&json!({"table": "products", "filters": [{"column": "color", "op": "eq", "value": 1}]})).is_err()
        );
        assert!(
            d.query(&json!({"table": "products", "filters": [{"column": "price", "op": "eq", "value": "1"}]})).is_err()
        );
        assert!(d.query(&json!({"table": "products", "order_by": "weight"})).is_err());
    }

    #[test]
    fn insert_assigns_ids_and_checks_types() {
        let mut d = db();
        let r = d.insert(&json!({"table": "products", "record": {"name": "Chair", "price": 60}})).expect("insert");
        assert_eq!(r["id"], json!(4));
        assert!(d.insert(&json!({"table": "products", "record": {"name": "Chair"}})).is_err());
        assert!(d.insert(&json!({"table": "products", "record": {"name": 1, "price": 60}})).is_err());
        assert!(d.insert(&json!({"table": "products", "record": {"name": "x", "price": 1, "color": "red"}})).is_err());
        assert!(d.insert(&json!({"table": "products", "record": {"id": 9, "name": "x", "price": 1}})).is_err());
        assert!(d.check().is_ok());
    }

    #[test]
    fn update_changes_one_row() {
        let mut d = db();
        d.update(&json!({"table": "products", "id": 2, "changes": {"price": 99.5}})).expect("update");
        assert_eq!(d.row("products", 2).and_then(|r| r.get("price")), Some(&json!(99.5)));
        assert!(d.update(&json!({"table": "products", "id": 7, "changes": {"price": 1}})).is_err());
        assert!(d.update(&json!({"table": "products", "id": 2, "changes": {"id": 5}})).is_err());
        assert!(d.update(&json!({"table": "products", "id": 2, "changes": {"price": "cheap"}})).is_err());
    }

    #[test]
    fn check_rejects_inconsistent_tables() {
        let mut d = db();
        if let Some(t) = d.tables.get_mut("products") {
            t.rows.push(serde_json::from_value(json!({"id": 1, "name": "dup", "price": 1})).expect("row"));
        }
        assert!(d.check().is_err());
    }
}
