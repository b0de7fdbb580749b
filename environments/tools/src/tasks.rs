//! Procedural multi-turn tasks: a random world and a goal that needs tools,
//! with the reference actions that reach it.
//!
//! A task depends only on its split and index (through
//! [`Rng::for_task`]), so `train` is open-ended and `test` is a fixed prefix
//! of its own stream. Each template builds its goal and reference from the
//! generated world, so the reference solves the task by construction; the
//! test suite replays it.

use envhub_sdk::protocol::{FunctionCall, Message, ToolCall};
use envhub_sdk::rng::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::goal::Goal;
use crate::tools::booking::{Hotel, Reservation, Room, Status, cancellation_fee, stay_price};
use crate::tools::calculator::evaluate;
use crate::tools::db::{Column, ColumnType, Database, Table};
use crate::tools::fs::FileSystem;
use crate::world::World;

/// A task over the simulated world.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorldTask {
    /// Template name (`inline` for inline tasks).
    pub template: String,
    /// What the user asks.
    pub instruction: String,
    /// The world at the start.
    pub world: World,
    /// What must hold at the end.
    pub goals: Vec<Goal>,
    /// Assistant turns of an optimal episode (for the efficiency component).
    pub min_turns: u32,
    /// Reference actions, when known.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reference: Vec<Message>,
}

const FIRST: &[&str] = &[
    "Ada", "Bruno", "Chen", "Dalia", "Emeka", "Freya", "Goran", "Hana", "Ivo", "Jun", "Kemal", "Lena", "Mateo", "Nia",
    "Omar", "Priya", "Quinn", "Rosa", "Sven", "Tara", "Umar", "Vera", "Wen", "Yara",
];
const LAST: &[&str] =
    &["Abe", "Berg", "Costa", "Diaz", "Eto", "Fox", "Gill", "Holm", "Ito", "Jain", "Kaur", "Lind", "Moss", "Novak"];
const CITIES: &[&str] =
    &["Lisbon", "Oslo", "Nairobi", "Osaka", "Quito", "Tunis", "Hanoi", "Perth", "Porto", "Riga", "Lima", "Accra"];
const TIERS: &[&str] = &["bronze", "silver", "gold"];
const PRODUCTS: &[&str] = &[
    "Desk Lamp",
    "Notebook",
    "Stapler",
    "Kettle",
    "Teapot",
    "Cutting Board",
    "Rake",
    "Watering Can",
    "Seed Tray",
    "Puzzle",
    "Kite",
    "Yo-yo",
    "Chef Knife",
    "Mixing Bowl",
    "Planter",
    "Pen Set",
    "Whiteboard",
    "Garden Hose",
    "Toy Robot",
    "Board Game",
    "Desk Mat",
    "Spatula",
    "Pruning Shears",
    "Marbles",
];
const CATEGORIES: &[&str] = &["office", "kitchen", "garden", "toys"];
const STATUSES: &[&str] = &["pending", "shipped", "delivered"];
const EXPENSES: &[&str] = &["taxi", "lunch", "hotel", "train", "printing", "coffee", "parking", "dinner"];
const WORDS: &[&str] = &["meeting", "budget", "review", "travel", "launch", "hiring", "audit", "offsite"];
const CODES: &[&str] = &["ORCHID", "FALCON", "MARBLE", "COMET", "JUNIPER", "QUARTZ", "ANVIL", "LOTUS"];

/// The number of templates.
pub const TEMPLATES: u64 = 10;

fn pick<'a>(rng: &mut Rng, items: &[&'a str]) -> &'a str {
    rng.choose(items).copied().unwrap_or_default()
}

fn col(name: &str, kind: ColumnType) -> Column {
    Column { name: name.to_owned(), kind }
}

fn row(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

fn money(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// Builds reference assistant turns with ids `call_<turn>_<k>`.
struct Script {
    turns: Vec<Message>,
}

impl Script {
    fn new() -> Self {
        Script { turns: Vec::new() }
    }

    fn calls(mut self, calls: Vec<(&str, Value)>) -> Self {
        let turn = self.turns.len() + 1;
        let tool_calls = calls
            .into_iter()
            .enumerate()
            .map(|(k, (name, args))| ToolCall {
                id: format!("call_{turn}_{k}"),
                kind: "function".to_owned(),
                function: FunctionCall { name: name.to_owned(), arguments: args.to_string() },
            })
            .collect();
        let mut m = Message::assistant("");
        m.content = None;
        m.tool_calls = tool_calls;
        self.turns.push(m);
        self
    }

    fn answer(mut self, text: impl Into<String>) -> Vec<Message> {
        self.turns.push(Message::assistant(text));
        self.turns
    }
}

/// The random world every template starts from.
struct Gen {
    rng: Rng,
    customers: Vec<(i64, String, String)>,
    products: Vec<(i64, String, String, i64)>,
    unused_products: Vec<&'static str>,
    orders: Vec<(i64, i64, String, i64, i64)>,
    world: World,
}

impl Gen {
    fn new(mut rng: Rng) -> Self {
        let mut first: Vec<&str> = FIRST.to_vec();
        rng.shuffle(&mut first);
        let mut customers = Vec::new();
        let mut cust_rows = Vec::new();
        for (i, f) in first.iter().take(8).enumerate() {
            let id = i as i64 + 1;
            let name = format!("{f} {}", pick(&mut rng, LAST));
            let city = pick(&mut rng, CITIES).to_owned();
            cust_rows.push(row(json!({"id": id, "name": name, "city": city, "tier": pick(&mut rng, TIERS)})));
            customers.push((id, name, city));
        }
        let mut names: Vec<&'static str> = PRODUCTS.to_vec();
        rng.shuffle(&mut names);
        let mut prices: Vec<i64> = (2..=60).map(|p| p * 5).collect();
        rng.shuffle(&mut prices);
        let mut products = Vec::new();
        let mut prod_rows = Vec::new();
        for (i, (name, price)) in names.iter().zip(prices.iter()).take(10).enumerate() {
            let id = i as i64 + 1;
            let category = pick(&mut rng, CATEGORIES).to_owned();
            prod_rows.push(row(json!({"id": id, "name": name, "category": category, "price": price})));
            products.push((id, (*name).to_owned(), category, *price));
        }
        let unused_products = names.iter().skip(10).copied().collect();
        let mut orders = Vec::new();
        let mut order_rows = Vec::new();
        for i in 0..12 {
            let id = i as i64 + 1;
            let cust = rng.range_i64(1, customers.len() as i64);
            let p = rng.below(products.len() as u64) as usize;
            let (pname, price) = products.get(p).map(|p| (p.1.clone(), p.3)).unwrap_or_default();
            let qty = rng.range_i64(1, 5);
            order_rows.push(row(json!({"id": id, "customer_id": cust, "product": pname, "quantity": qty,
                "unit_price": price, "status": pick(&mut rng, STATUSES)})));
            orders.push((id, cust, pname, qty, price));
        }
        let mut db = Database::default();
        db.tables.insert(
            "customers".into(),
            Table {
                columns: vec![
                    col("name", ColumnType::String),
                    col("city", ColumnType::String),
                    col("tier", ColumnType::String),
                ],
                rows: cust_rows,
            },
        );
        db.tables.insert(
            "products".into(),
            Table {
                columns: vec![
                    col("name", ColumnType::String),
                    col("category", ColumnType::String),
                    col("price", ColumnType::Number),
                ],
                rows: prod_rows,
            },
        );
        db.tables.insert(
            "orders".into(),
            Table {
                columns: vec![
                    col("customer_id", ColumnType::Integer),
                    col("product", ColumnType::String),
                    col("quantity", ColumnType::Integer),
                    col("unit_price", ColumnType::Number),
                    col("status", ColumnType::String),
                ],
                rows: order_rows,
            },
        );
        db.tables.insert(
            "refunds".into(),
            Table {
                columns: vec![col("booking_id", ColumnType::String), col("amount", ColumnType::Number)],
                rows: Vec::new(),
            },
        );

        let mut fs = FileSystem::default();
        let mut words: Vec<&str> = WORDS.to_vec();
        rng.shuffle(&mut words);
        for (i, w) in words.iter().take(4).enumerate() {
            let text = format!("Notes on the {w} ({}).\nOwner: {}\n", i + 1, pick(&mut rng, FIRST));
            fs.files.insert(format!("/notes/{w}.txt"), text);
        }
        let mut labels: Vec<&str> = EXPENSES.to_vec();
        rng.shuffle(&mut labels);
        let n = rng.range_i64(3, 6) as usize;
        let lines: Vec<String> =
            labels.iter().take(n).map(|l| format!("{l}: {}", money(rng.range_i64(150, 25_000)))).collect();
        fs.files.insert("/inbox/expenses.txt".into(), format!("{}\n", lines.join("\n")));
        fs.dirs.insert("/reports".into());

        let mut hotel = Hotel::default();
        for i in 0..6 {
            hotel.rooms.push(Room {
                id: format!("R{}", 101 + i),
                capacity: rng.range_i64(1, 4),
                base_price: rng.range_i64(3, 12) * 20,
            });
        }
        let mut guests: Vec<&str> = FIRST.to_vec();
        rng.shuffle(&mut guests);
        for g in guests.iter().take(6) {
            // Existing bookings go through the same rules; a refused one is skipped.
            let r = rng.below(hotel.rooms.len() as u64) as usize;
            let Some(room) = hotel.rooms.get(r).cloned() else { continue };
            let day = rng.range_i64(1, 25);
            let nights = rng.range_i64(1, 4);
            let guests = rng.range_i64(1, room.capacity);
            let _ = hotel.book(&json!({"room_id": room.id, "guest_name": format!("{g} {}", pick(&mut rng, LAST)),
                "day": day, "nights": nights, "guests": guests}));
        }
        let world = World { db, fs, hotel };
        Gen { rng, customers, products, unused_products, orders, world }
    }

    fn finish(self, template: &str, instruction: String, goals: Vec<Goal>, reference: Vec<Message>) -> WorldTask {
        WorldTask {
            template: template.to_owned(),
            instruction,
            world: self.world,
            goals,
            min_turns: reference.len() as u32,
            reference,
        }
    }

    fn calc_expr(mut self) -> WorldTask {
        let r = &mut self.rng;
        let (a, b, c, d, e) =
            (r.range_i64(2, 99), r.range_i64(2, 99), r.range_i64(2, 12), r.range_i64(2, 9), r.range_i64(1, 50));
        let expr = match r.below(3) {
            0 => format!("({a} + {b}) * {c} / {d} - {e}"),
            1 => format!("{a} * {b} - {c} ^ 3 / {d} + {e}"),
            _ => format!("({a} - {b} / {d}) * ({c} + {e})"),
        };
        let value = evaluate(&expr).map(|v| v.to_string()).unwrap_or_default();
        let instruction = format!(
            "Compute {expr} exactly. Reply with the result only: an integer, an exact decimal, or a fraction like 7/3."
        );
        let reference = Script::new().calls(vec![("calculator", json!({ "expression": expr }))]).answer(value.clone());
        self.finish("calc_expression", instruction, vec![Goal::AnswerNumber { value }], reference)
    }

    fn calc_discount(mut self) -> WorldTask {
        let r = &mut self.rng;
        let qty = r.range_i64(2, 40);
        let price = money(r.range_i64(99, 9_999));
        let pct = r.range_i64(1, 9) * 5;
        let expr = format!("{qty} * {price} * (100 - {pct}) / 100");
        let value = evaluate(&expr).map(|v| v.to_string()).unwrap_or_default();
        let instruction = format!(
            "A customer buys {qty} items at {price} each and gets a {pct}% discount on the order. \
             What is the exact total price? Reply with the number only."
        );
        let reference = Script::new().calls(vec![("calculator", json!({ "expression": expr }))]).answer(value.clone());
        self.finish("calc_discount", instruction, vec![Goal::AnswerNumber { value }], reference)
    }

    fn db_cheapest(mut self) -> WorldTask {
        let i = self.rng.below(self.products.len() as u64) as usize;
        let category = self.products.get(i).map(|p| p.2.clone()).unwrap_or_default();
        let cheapest = self
            .products
            .iter()
            .filter(|p| p.2 == category)
            .min_by_key(|p| p.3)
            .map(|p| p.1.clone())
            .unwrap_or_default();
        let instruction = format!(
            "Which product in the `{category}` category of the `products` table is the cheapest? \
             Reply with its exact name only."
        );
        let reference = Script::new()
            .calls(vec![(
                "db_query",
                json!({"table": "products", "filters": [{"column": "category", "op": "eq", "value": category}],
                    "order_by": "price", "limit": 1}),
            )])
            .answer(cheapest.clone());
        self.finish("db_cheapest", instruction, vec![Goal::AnswerText { value: cheapest }], reference)
    }

    fn db_customer_total(mut self) -> WorldTask {
        let i = self.rng.below(self.orders.len() as u64) as usize;
        let cust_id = self.orders.get(i).map(|o| o.1).unwrap_or(1);
        let name = self.customers.iter().find(|c| c.0 == cust_id).map(|c| c.1.clone()).unwrap_or_default();
        let terms: Vec<String> =
            self.orders.iter().filter(|o| o.1 == cust_id).map(|o| format!("{} * {}", o.3, o.4)).collect();
        let expr = terms.join(" + ");
        let value = evaluate(&expr).map(|v| v.to_string()).unwrap_or_default();
        let instruction = format!(
            "How much has the customer {name} spent in total over all of their orders (any status), \
             counting quantity times unit price? Reply with the number only."
        );
        let reference = Script::new()
            .calls(vec![(
                "db_query",
                json!({"table": "customers", "filters": [{"column": "name", "op": "eq", "value": name}]}),
            )])
            .calls(vec![(
                "db_query",
                json!({"table": "orders", "filters": [{"column": "customer_id", "op": "eq", "value": cust_id}]}),
            )])
            .calls(vec![("calculator", json!({ "expression": expr }))])
            .answer(value.clone());
        self.finish("db_customer_total", instruction, vec![Goal::AnswerNumber { value }], reference)
    }

    fn db_move_customer(mut self) -> WorldTask {
        let i = self.rng.below(self.customers.len() as u64) as usize;
        let (id, name, city) = self.customers.get(i).cloned().unwrap_or_default();
        let others: Vec<&str> = CITIES.iter().copied().filter(|c| *c != city).collect();
        let new_city = pick(&mut self.rng, &others).to_owned();
        let instruction = format!(
            "The customer {name} has moved to {new_city}. Update their record in the `customers` table, \
             then tell me when you are done."
        );
        let reference = Script::new()
            .calls(vec![(
                "db_query",
                json!({"table": "customers", "filters": [{"column": "name", "op": "eq", "value": name}]}),
            )])
            .calls(vec![("db_update", json!({"table": "customers", "id": id, "changes": {"city": new_city}}))])
            .answer("Done: the record is updated.");
        let goals = vec![Goal::DbRecord { table: "customers".into(), id, fields: row(json!({ "city": new_city })) }];
        self.finish("db_move_customer", instruction, goals, reference)
    }

    fn db_add_product(mut self) -> WorldTask {
        let name = pick(&mut self.rng, &self.unused_products.clone()).to_owned();
        let category = pick(&mut self.rng, CATEGORIES).to_owned();
        let price = self.rng.range_i64(1, 60) * 5;
        let instruction = format!(
            "Add a new product named \"{name}\" in the `{category}` category with price {price} \
             to the `products` table, then tell me when you are done."
        );
        let fields = row(json!({"name": name, "category": category, "price": price}));
        let reference = Script::new()
            .calls(vec![("db_insert", json!({"table": "products", "record": fields.clone()}))])
            .answer("Done: the product is added.");
        let goals = vec![Goal::DbRowExists { table: "products".into(), fields }];
        self.finish("db_add_product", instruction, goals, reference)
    }

    fn fs_expenses(self) -> WorldTask {
        let text = self.world.fs.content("/inbox/expenses.txt").unwrap_or_default().to_owned();
        let amounts: Vec<&str> = text.lines().filter_map(|l| l.split_once(": ").map(|(_, a)| a.trim())).collect();
        let expr = amounts.join(" + ");
        let value = evaluate(&expr).map(|v| v.to_string()).unwrap_or_default();
        let path = "/reports/expenses_total.txt";
        let instruction = format!(
            "The file /inbox/expenses.txt lists expenses, one `label: amount` per line. Write their exact total \
             (just the number) to {path}, then tell me when you are done."
        );
        let reference = Script::new()
            .calls(vec![("fs_read", json!({"path": "/inbox/expenses.txt"}))])
            .calls(vec![("calculator", json!({ "expression": expr }))])
            .calls(vec![("fs_write", json!({"path": path, "content": value}))])
            .answer("Done: the total is saved.");
        let goals = vec![Goal::FileNumber { path: path.into(), value }];
        self.finish("fs_expenses", instruction, goals, reference)
    }

    fn fs_find_note(mut self) -> WorldTask {
        let notes: Vec<String> = self.world.fs.files.keys().filter(|p| p.starts_with("/notes/")).cloned().collect();
        let i = self.rng.below(notes.len() as u64) as usize;
        let target = notes.get(i).cloned().unwrap_or_default();
        let code = format!("{}-{}", pick(&mut self.rng, CODES), self.rng.range_i64(100, 999));
        if let Some(content) = self.world.fs.files.get_mut(&target) {
            content.push_str(&format!("Code word: {code}\n"));
        }
        let instruction = format!(
            "One of the files in the /notes directory contains the code word {code}. \
             Which one? Reply with its full path only."
        );
        let reads = notes.iter().map(|p| ("fs_read", json!({ "path": p }))).collect();
        let reference =
            Script::new().calls(vec![("fs_list", json!({"path": "/notes"}))]).calls(reads).answer(target.clone());
        self.finish("fs_find_note", instruction, vec![Goal::AnswerText { value: target }], reference)
    }

    fn booking_cheapest(mut self) -> WorldTask {
        let guest = format!("{} {}", pick(&mut self.rng, LAST), pick(&mut self.rng, LAST));
        // Find a stay some room can take; the stream always finds one, but the
        // loop is bounded and falls back to an empty calendar day.
        let mut chosen = None;
        for _ in 0..64 {
            let day = self.rng.range_i64(1, 27);
            let nights = self.rng.range_i64(1, 3);
            let guests = self.rng.range_i64(1, 3);
            let found = self.world.hotel.search(&json!({"day": day, "nights": nights, "guests": guests}));
            if let Ok(found) = found
                && let Some(room) = found["rooms"].get(0)
            {
                chosen = Some((day, nights, guests, room["room_id"].as_str().unwrap_or_default().to_owned()));
                break;
            }
        }
        let (day, nights, guests, room_id) = chosen.unwrap_or_else(|| {
            self.world.hotel.bookings.clear();
            let best = self.world.hotel.rooms.iter().min_by_key(|r| (stay_price(r, 1, 1), r.id.clone()));
            (1, 1, 1, best.map(|r| r.id.clone()).unwrap_or_default())
        });
        let file = "/notes/booking.txt";
        let instruction = format!(
            "Book the cheapest hotel room (lowest total price; on a tie, the lowest room id) for {guests} guest(s) \
             arriving on day {day} for {nights} night(s), under the name \"{guest}\". Save the confirmation id \
             (and nothing else) to {file}, then tell me when you are done."
        );
        let confirmation = self.world.hotel.next_id();
        let reference = Script::new()
            .calls(vec![("booking_search", json!({"day": day, "nights": nights, "guests": guests}))])
            .calls(vec![(
                "booking_book",
                json!({"room_id": room_id, "guest_name": guest, "day": day, "nights": nights, "guests": guests}),
            )])
            .calls(vec![("fs_write", json!({"path": file, "content": confirmation}))])
            .answer(format!("Booked {room_id}; confirmation {confirmation} saved."));
        let goals = vec![Goal::BookingActive { room_id, guest, day, nights, guests, id_file: Some(file.to_owned()) }];
        self.finish("booking_cheapest", instruction, goals, reference)
    }

    fn booking_cancel(mut self) -> WorldTask {
        let active: Vec<Reservation> =
            self.world.hotel.bookings.iter().filter(|b| b.status == Status::Active).cloned().collect();
        let i = self.rng.below(active.len() as u64) as usize;
        let Some(b) = active.get(i).cloned() else {
            // No existing booking to cancel (cannot happen with 6 tries on an
            // empty calendar, but stay total): fall back to another template.
            return self.booking_cheapest();
        };
        let refund = b.total_price - cancellation_fee(b.total_price);
        let instruction = format!(
            "{} wants to cancel their hotel booking. Cancel it, then record the refund in the `refunds` table \
             (booking_id = the confirmation id, amount = the refunded amount), and tell me when you are done.",
            b.guest
        );
        let reference = Script::new()
            .calls(vec![("booking_list", json!({"guest_name": b.guest}))])
            .calls(vec![("booking_cancel", json!({"confirmation_id": b.id}))])
            .calls(vec![("db_insert", json!({"table": "refunds", "record": {"booking_id": b.id, "amount": refund}}))])
            .answer("Done: cancelled and refund recorded.");
        let goals = vec![
            Goal::BookingCancelled { confirmation_id: b.id.clone() },
            Goal::DbRowExists { table: "refunds".into(), fields: row(json!({"booking_id": b.id, "amount": refund})) },
        ];
        self.finish("booking_cancel", instruction, goals, reference)
    }
}

/// Task `index` of a generated split.
pub fn generate(split: &str, index: u64) -> WorldTask {
    let mut rng = Rng::for_task(split, index);
    let template = rng.below(TEMPLATES);
    let g = Gen::new(rng);
    match template {
        0 => g.calc_expr(),
        1 => g.calc_discount(),
        2 => g.db_cheapest(),
        3 => g.db_customer_total(),
        4 => g.db_move_customer(),
        5 => g.db_add_product(),
        6 => g.fs_expenses(),
        7 => g.fs_find_note(),
        8 => g.booking_cheapest(),
        _ => g.booking_cancel(),
    }
}

/// The inline task schema (see the crate README).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InlineWorldTask {
    instruction: String,
    #[serde(default)]
    world: World,
    goals: Vec<Goal>,
    #[serde(default)]
    reference: Vec<Message>,
    #[serde(default)]
    min_turns: Option<u32>,
}

/// Reads and checks an inline world task.
pub fn from_inline(task: Value) -> Result<WorldTask, String> {
    let t: InlineWorldTask = serde_json::from_value(task).map_err(|e| e.to_string())?;
    if t.instruction.trim().is_empty() {
        return Err("`instruction` must not be empty".to_owned());
    }
    if t.goals.is_empty() {
        return Err("`goals` must list at least one goal".to_owned());
    }
    t.world.check()?;
    for g in &t.goals {
        g.check()?;
    }
    let min_turns = t.min_turns.unwrap_or(if t.reference.is_empty() { 2 } else { t.reference.len() as u32 }).max(1);
    Ok(WorldTask {
        template: "inline".to_owned(),
        instruction: t.instruction,
        world: t.world,
        goals: t.goals,
        min_turns,
        reference: t.reference,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_stable_and_covers_every_template() {
        assert_eq!(generate("train", 3), generate("train", 3));
        assert_ne!(generate("train", 3), generate("train", 4));
        let seen: std::collections::BTreeSet<String> = (0..200).map(|i| generate("test", i).template).collect();
        assert_eq!(seen.len(), TEMPLATES as usize, "{seen:?}");
    }

    #[test]
    fn generated_worlds_are_consistent() {
        for i in 0..100 {
            let t = generate("train", i);
            assert!(t.world.check().is_ok(), "task {i}: {:?}", t.world.check());
            assert!(t.goals.iter().all(|g| g.check().is_ok()), "task {i}");
            assert!(t.min_turns >= 2 && t.min_turns <= 4, "task {i}");
        }
    }

    #[test]
    fn inline_tasks_are_checked() {
        assert!(from_inline(json!({"instruction": "x", "goals": [{"type": "answer_text", "value": "y"}]})).is_ok());
        assert!(from_inline(json!({"instruction": "x", "goals": []})).is_err());
        assert!(from_inline(json!({"instruction": "x", "goals": [{"type": "answer_number", "value": "y"}]})).is_err());
        assert!(from_inline(json!({"instruction": "x", "goals": [], "extra": 1})).is_err());
    }
}
