//! The booking tools: `booking_search`, `booking_book`, `booking_list` and
//! `booking_cancel`, a small hotel reservation API with business rules.
//!
//! Rules:
//! - days are numbered 1 to [`LAST_DAY`]; a stay of `nights` nights starting
//!   on `day` occupies nights `day..day+nights`, which must all fall within
//!   the calendar; a stay is 1 to [`MAX_NIGHTS`] nights;
//! - a room holds at most `capacity` guests;
//! - a room cannot be booked for a night on which it already has an active
//!   booking, and a guest cannot hold two active bookings on the same night;
//! - a night costs the room's base price, plus a quarter (rounded down) on
//!   weekend nights (days 6 and 7 of each week: day % 7 is 6 or 0);
//! - cancelling an active booking costs a fee of a fifth of its total
//!   (rounded down); the rest is refunded. A cancelled booking stays listed.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::ToolError;

/// The last bookable night.
pub const LAST_DAY: i64 = 30;
/// The longest stay.
pub const MAX_NIGHTS: i64 = 7;
/// Most bookings the calendar holds.
pub const MAX_BOOKINGS: usize = 500;

/// A room.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Room {
    /// Room id, e.g. `R101`.
    pub id: String,
    /// Most guests.
    pub capacity: i64,
    /// Price of a weekday night.
    pub base_price: i64,
}

/// Whether a booking still holds its room.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The room is held.
    Active,
    /// Cancelled; the room is free again.
    Cancelled,
}

/// A reservation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    /// Confirmation id, e.g. `BK1003`.
    pub id: String,
    /// The room.
    pub room_id: String,
    /// Guest name.
    pub guest: String,
    /// First night.
    pub day: i64,
    /// Number of nights.
    pub nights: i64,
    /// Number of guests.
    pub guests: i64,
    /// Total price of the stay.
    pub total_price: i64,
    /// Active or cancelled.
    pub status: Status,
}

impl Reservation {
    fn overlaps(&self, day: i64, nights: i64) -> bool {
        self.status == Status::Active
            && self.day < day.saturating_add(nights)
            && day < self.day.saturating_add(self.nights)
    }
}

/// The hotel: rooms and reservations.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hotel {
    /// The rooms.
    #[serde(default)]
    pub rooms: Vec<Room>,
    /// Every reservation ever made, in order.
    #[serde(default)]
    pub bookings: Vec<Reservation>,
}

/// Whether `day` is a weekend night.
pub fn is_weekend(day: i64) -> bool {
    matches!(day.rem_euclid(7), 6 | 0)
}

/// The price of one night in `room` on `day`.
pub fn night_price(room: &Room, day: i64) -> i64 {
    if is_weekend(day) { room.base_price.saturating_add(room.base_price / 4) } else { room.base_price }
}

/// The total price of a stay.
pub fn stay_price(room: &Room, day: i64, nights: i64) -> i64 {
    (day..day.saturating_add(nights))
        .take(MAX_NIGHTS as usize)
        .map(|d| night_price(room, d))
        .fold(0i64, i64::saturating_add)
}

/// The cancellation fee of a booking of total `total`.
pub fn cancellation_fee(total: i64) -> i64 {
    total / 5
}

fn arg_i64(args: &Value, key: &str) -> i64 {
    args.get(key).and_then(Value::as_i64).unwrap_or_default()
}

fn arg_str<'a>(args: &'a Value, key: &str) -> &'a str {
    args.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn check_stay(day: i64, nights: i64) -> Result<(), ToolError> {
    if !(1..=LAST_DAY).contains(&day) {
        return Err(ToolError::Rule(format!("day must be between 1 and {LAST_DAY}, got {day}")));
    }
    if !(1..=MAX_NIGHTS).contains(&nights) {
        return Err(ToolError::Rule(format!("a stay is 1 to {MAX_NIGHTS} nights, got {nights}")));
    }
    if day + nights - 1 > LAST_DAY {
        // Both are bounded above, so the sum cannot overflow.
        return Err(ToolError::Rule(format!(
            "the calendar ends on day {LAST_DAY}: a stay from day {day} can be at most {} nights",
            LAST_DAY - day + 1
        )));
    }
    Ok(())
}

impl Hotel {
    /// Checks inline data: unique room ids, positive capacities and prices,
    /// bookings on known rooms within the rules.
    pub fn check(&self) -> Result<(), String> {
        let mut ids = std::collections::BTreeSet::new();
        for r in &self.rooms {
            if !ids.insert(r.id.as_str()) {
                return Err(format!("duplicate room `{}`", r.id));
            }
            if r.capacity < 1 || r.base_price < 0 || r.base_price > 1_000_000 {
                return Err(format!("room `{}` needs capacity >= 1 and a price between 0 and 1000000", r.id));
            }
        }
        if self.bookings.len() > MAX_BOOKINGS {
            return Err(format!("more than {MAX_BOOKINGS} bookings"));
        }
        let mut booking_ids = std::collections::BTreeSet::new();
        for b in &self.bookings {
            if !ids.contains(b.room_id.as_str()) {
                return Err(format!("booking `{}` names unknown room `{}`", b.id, b.room_id));
            }
            if !booking_ids.insert(b.id.as_str()) {
                return Err(format!("duplicate booking id `{}`", b.id));
            }
            check_stay(b.day, b.nights).map_err(|e| format!("booking `{}`: {e}", b.id))?;
        }
        Ok(())
    }

    fn room(&self, id: &str) -> Result<&Room, ToolError> {
        self.rooms.iter().find(|r| r.id == id).ok_or_else(|| {
            let ids: Vec<&str> = self.rooms.iter().map(|r| r.id.as_str()).collect();
            ToolError::NotFound(format!("no room `{id}`; rooms are: {}", ids.join(", ")))
        })
    }

    fn room_free(&self, room_id: &str, day: i64, nights: i64) -> bool {
        !self.bookings.iter().any(|b| b.room_id == room_id && b.overlaps(day, nights))
    }

    /// The active booking with this confirmation id, if any.
    pub fn booking(&self, id: &str) -> Option<&Reservation> {
        self.bookings.iter().find(|b| b.id == id)
    }

    /// The confirmation id the next booking will get.
    pub fn next_id(&self) -> String {
        format!("BK{}", 1001 + self.bookings.len())
    }

    /// `booking_search`: rooms free for the whole stay that fit the party,
    /// cheapest first (ties by room id).
    pub fn search(&self, args: &Value) -> Result<Value, ToolError> {
        let (day, nights, guests) = (arg_i64(args, "day"), arg_i64(args, "nights"), arg_i64(args, "guests"));
        check_stay(day, nights)?;
        let max_price = args.get("max_price").and_then(Value::as_i64);
        let mut found: Vec<(i64, &Room)> = self
            .rooms
            .iter()
            .filter(|r| r.capacity >= guests && self.room_free(&r.id, day, nights))
            .map(|r| (stay_price(r, day, nights), r))
            .filter(|(p, _)| max_price.is_none_or(|m| *p <= m))
            .collect();
        found.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.id.cmp(&b.1.id)));
        let rooms: Vec<Value> =
            found.iter().map(|(p, r)| json!({"room_id": r.id, "capacity": r.capacity, "total_price": p})).collect();
        Ok(json!({ "day": day, "nights": nights, "guests": guests, "rooms": rooms }))
    }

    /// `booking_book`: reserves a room, enforcing every rule.
    pub fn book(&mut self, args: &Value) -> Result<Value, ToolError> {
        let (day, nights, guests) = (arg_i64(args, "day"), arg_i64(args, "nights"), arg_i64(args, "guests"));
        let guest = arg_str(args, "guest_name").trim().to_owned();
        let room = self.room(arg_str(args, "room_id"))?.clone();
        check_stay(day, nights)?;
        if guest.is_empty() {
            return Err(ToolError::Invalid("guest_name must not be empty".to_owned()));
        }
        if guests < 1 || guests > room.capacity {
            return Err(ToolError::Rule(format!(
                "room {} holds 1 to {} guests, asked for {guests}",
                room.id, room.capacity
            )));
        }
        if !self.room_free(&room.id, day, nights) {
            return Err(ToolError::Rule(format!(
                "room {} is not available for {nights} night(s) from day {day}",
                room.id
            )));
        }
        if let Some(b) = self.bookings.iter().find(|b| b.guest == guest && b.overlaps(day, nights)) {
            return Err(ToolError::Rule(format!(
                "{guest} already holds booking {} on overlapping nights (no double booking)",
                b.id
            )));
        }
        if self.bookings.len() >= MAX_BOOKINGS {
            return Err(ToolError::Rule("the calendar is full".to_owned()));
        }
        let reservation = Reservation {
            id: self.next_id(),
            room_id: room.id.clone(),
            guest,
            day,
            nights,
            guests,
            total_price: stay_price(&room, day, nights),
            status: Status::Active,
        };
        let out =
            json!({"confirmation_id": reservation.id, "room_id": room.id, "total_price": reservation.total_price});
        self.bookings.push(reservation);
        Ok(out)
    }

    /// `booking_list`: a guest's bookings, active and cancelled.
    pub fn list(&self, args: &Value) -> Result<Value, ToolError> {
        let guest = arg_str(args, "guest_name").trim();
        let found: Vec<&Reservation> = self.bookings.iter().filter(|b| b.guest == guest).collect();
        Ok(json!({ "guest_name": guest, "bookings": found }))
    }

    /// `booking_cancel`: cancels an active booking and reports fee and refund.
    pub fn cancel(&mut self, args: &Value) -> Result<Value, ToolError> {
        let id = arg_str(args, "confirmation_id").trim();
        let b = self
            .bookings
            .iter_mut()
            .find(|b| b.id == id)
            .ok_or_else(|| ToolError::NotFound(format!("no booking `{id}`")))?;
        if b.status == Status::Cancelled {
            return Err(ToolError::Rule(format!("booking {id} is already cancelled")));
        }
        b.status = Status::Cancelled;
        let fee = cancellation_fee(b.total_price);
        Ok(json!({"confirmation_id": b.id, "status": "cancelled", "fee": fee, "refund": b.total_price - fee}))
    }
}

fn stay_properties() -> serde_json::Map<String, Value> {
    let v = json!({
        "day": {"type": "integer", "minimum": 1, "maximum": LAST_DAY, "description": "First night."},
        "nights": {"type": "integer", "minimum": 1, "maximum": MAX_NIGHTS},
        "guests": {"type": "integer", "minimum": 1, "maximum": 20}
    });
    v.as_object().cloned().unwrap_or_default()
}

/// JSON Schema of `booking_search`.
pub fn search_schema() -> Value {
    let mut props = stay_properties();
    props.insert("max_price".into(), json!({"type": "integer", "description": "Highest total price to show."}));
    json!({"type": "object", "properties": props, "required": ["day", "nights", "guests"], "additionalProperties": false})
}

/// JSON Schema of `booking_book`.
pub fn book_schema() -> Value {
    let mut props = stay_properties();
    props.insert("room_id".into(), json!({"type": "string"}));
    props.insert("guest_name".into(), json!({"type": "string", "minLength": 1, "maxLength": 60}));
    json!({
        "type": "object",
        "properties": props,
        "required": ["room_id", "guest_name", "day", "nights", "guests"],
        "additionalProperties": false
    })
}

/// JSON Schema of `booking_list`.
pub fn list_schema() -> Value {
    json!({
        "type": "object",
        "properties": {"guest_name": {"type": "string"}},
        "required": ["guest_name"],
        "additionalProperties": false
    })
}

/// JSON Schema of `booking_cancel`.
pub fn cancel_schema() -> Value {
    json!({
        "type": "object",
        "properties": {"confirmation_id": {"type": "string"}},
        "required": ["confirmation_id"],
        "additionalProperties": false
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hotel() -> Hotel {
        Hotel {
            rooms: vec![
                Room { id: "R1".into(), capacity: 2, base_price: 100 },
                Room { id: "R2".into(), capacity: 4, base_price: 80 },
                Room { id: "R3".into(), capacity: 1, base_price: 40 },
            ],
            bookings: Vec::new(),
        }
    }

    #[test]
    fn prices_follow_the_weekend_rule() {
        let r = Room { id: "R".into(), capacity: 1, base_price: 100 };
        assert_eq!(night_price(&r, 5), 100);
        assert_eq!(night_price(&r, 6), 125);
        assert_eq!(night_price(&r, 7), 125);
        assert_eq!(stay_price(&r, 5, 3), 350);
    }

    #[test]
    fn search_book_list_cancel() {
        let mut h = hotel();
        let s = h.search(&json!({"day": 3, "nights": 2, "guests": 2})).expect("search");
        assert_eq!(s["rooms"][0], json!({"room_id": "R2", "capacity": 4, "total_price": 160}));
        assert_eq!(s["rooms"].as_array().map(Vec::len), Some(2));
        let b =
            h.book(&json!({"room_id": "R2", "guest_name": "Ada", "day": 3, "nights": 2, "guests": 2})).expect("book");
        assert_eq!(b["confirmation_id"], json!("BK1001"));
        let s = h.search(&json!({"day": 4, "nights": 1, "guests": 2})).expect("search");
        assert_eq!(s["rooms"][0]["room_id"], json!("R1"));
        assert_eq!(h.list(&json!({"guest_name": "Ada"})).expect("list")["bookings"][0]["id"], json!("BK1001"));
        let c = h.cancel(&json!({"confirmation_id": "BK1001"})).expect("cancel");
        assert_eq!(c, json!({"confirmation_id": "BK1001", "status": "cancelled", "fee": 32, "refund": 128}));
        assert!(h.cancel(&json!({"confirmation_id": "BK1001"})).is_err());
        assert!(h.cancel(&json!({"confirmation_id": "BK9"})).is_err());
    }

    #[test]
    fn business_rules_are_enforced() {
        let mut h = hotel();
        let book = |h: &mut Hotel, room: &str, guest: &str, day: i64, nights: i64, guests: i64| {
            h.book(&json!({"room_id": room, "guest_name": guest, "day": day, "nights": nights, "guests": guests}))
        };
        assert!(book(&mut h, "R1", "Ada", 10, 3, 2).is_ok());
        let err = |r: Result<Value, ToolError>| r.expect_err("must fail").to_string();
        assert!(err(book(&mut h, "R1", "Bob", 12, 1, 1)).contains("not available"));
        assert!(err(book(&mut h, "R2", "Ada", 11, 1, 1)).contains("double booking"));
        assert!(err(book(&mut h, "R3", "Bob", 1, 1, 2)).contains("holds 1 to 1"));
        assert!(err(book(&mut h, "R2", "Bob", 29, 3, 1)).contains("calendar ends"));
        assert!(err(book(&mut h, "R2", "Bob", 0, 1, 1)).contains("between 1"));
        assert!(err(book(&mut h, "R2", "Bob", 1, 9, 1)).contains("1 to 7"));
        assert!(err(book(&mut h, "R9", "Bob", 1, 1, 1)).contains("no room"));
        assert!(err(book(&mut h, "R2", " ", 1, 1, 1)).contains("empty"));
        // Back-to-back stays do not overlap.
        assert!(book(&mut h, "R1", "Bob", 13, 1, 1).is_ok());
        assert!(h.check().is_ok());
    }
}
