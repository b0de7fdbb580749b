//! A curriculum: each environment's difficulty moves along an ordered list
//! of levels to keep its pass rate in a target band (too easy: up a level;
//! too hard: down), as Gensyn's proposer and adaptive-difficulty trainers
//! do. A level is a split (`split=arithmetic-easy,arithmetic-medium,...`) or
//! a value of a reset config key (`level=1,2,3,4,5` for the reasoning
//! environment). Each group records the level it was drawn at in its task
//! (the split, or the config key), so `envhub verify` replays it exactly.

use std::collections::VecDeque;
use std::str::FromStr;

use serde_json::{Map, Value};

/// What a curriculum moves.
#[derive(Clone, Debug, PartialEq)]
pub enum Knob {
    /// The split tasks are drawn from.
    Split(Vec<String>),
    /// A reset config key and its values, easiest first.
    Config {
        /// The key, e.g. `level`.
        key: String,
        /// Its values.
        values: Vec<Value>,
    },
}

/// A curriculum's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Curriculum {
    /// What moves.
    pub knob: Knob,
    /// The pass-rate band to stay in: below `.0` a level down, above `.1` up.
    pub band: (f64, f64),
    /// Groups whose pass rate is averaged before a move.
    pub window: usize,
}

impl FromStr for Knob {
    type Err = String;

    /// `split=A,B,C` or `KEY=V1,V2,...` (values parsed as JSON where they are, else strings).
    fn from_str(text: &str) -> Result<Knob, String> {
        let (key, values) = text
            .split_once('=')
            .ok_or_else(|| format!("`{text}` is not KEY=LEVEL,LEVEL,...; e.g. level=1,2,3,4,5 or split=easy,hard"))?;
        let values: Vec<&str> = values.split(',').map(str::trim).filter(|v| !v.is_empty()).collect();
        let key = key.trim();
        if key.is_empty() || values.len() < 2 {
            return Err(format!("`{text}`: a curriculum needs a key and at least two levels"));
        }
        Ok(if key == "split" {
            Knob::Split(values.iter().map(|v| (*v).to_owned()).collect())
        } else {
            let values = values.iter().map(|v| serde_json::from_str(v).unwrap_or_else(|_| Value::from(*v))).collect();
            Knob::Config { key: key.to_owned(), values }
        })
    }
}

impl Knob {
    fn levels(&self) -> usize {
        match self {
            Knob::Split(splits) => splits.len(),
            Knob::Config { values, .. } => values.len(),
        }
    }
}

/// One environment's place in a curriculum.
#[derive(Clone, Debug)]
pub struct Ladder {
    level: usize,
    recent: VecDeque<f64>,
}

impl Ladder {
    /// Starts at the easiest level.
    pub fn new() -> Ladder {
        Ladder { level: 0, recent: VecDeque::new() }
    }

    /// The current level (0 = easiest).
    pub fn level(&self) -> usize {
        self.level
    }

    /// Records a finished group's pass rate (drawn at `level`); moves when
    /// the window's mean leaves the band. Returns the new level.
    pub fn record(&mut self, curriculum: &Curriculum, level: usize, pass_rate: f64) -> usize {
        if level != self.level {
            return self.level; // drawn before the last move: not evidence about this level
        }
        self.recent.push_back(pass_rate);
        if self.recent.len() < curriculum.window.max(1) {
            return self.level;
        }
        let mean = self.recent.iter().sum::<f64>() / self.recent.len() as f64;
        self.recent.pop_front();
        let top = curriculum.knob.levels().saturating_sub(1);
        let moved = if mean > curriculum.band.1 && self.level < top {
            self.level + 1
        } else if mean < curriculum.band.0 && self.level > 0 {
            self.level - 1
        } else {
            self.level
        };
        if moved != self.level {
            self.level = moved;
            self.recent.clear();
        }
        self.level
    }
}

impl Default for Ladder {
    fn default() -> Self {
        Ladder::new()
    }
}

impl Curriculum {
    /// The split to draw from at `level`, if the curriculum moves splits.
    pub fn split(&self, level: usize) -> Option<&str> {
        match &self.knob {
            Knob::Split(splits) => splits.get(level).map(String::as_str),
            Knob::Config { .. } => None,
        }
    }

    /// `config` with the curriculum's key set for `level`, if it moves a key.
    pub fn config(&self, level: usize, config: &Map<String, Value>) -> Map<String, Value> {
        let mut config = config.clone();
        if let Knob::Config { key, values } = &self.knob
            && let Some(value) = values.get(level)
        {
            config.insert(key.clone(), value.clone());
        }
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curriculum(knob: &str) -> Curriculum {
        Curriculum { knob: knob.parse().expect("a knob"), band: (0.2, 0.8), window: 2 }
    }

    #[test]
    fn knobs_parse_splits_and_config_values() {
        assert_eq!("split=a, b".parse::<Knob>(), Ok(Knob::Split(vec!["a".into(), "b".into()])));
        let Ok(Knob::Config { key, values }) = "level=1,2,x".parse::<Knob>() else { panic!("a config knob") };
        assert_eq!((key.as_str(), values), ("level", vec![Value::from(1), Value::from(2), Value::from("x")]));
        assert!("level=1".parse::<Knob>().is_err());
        assert!("level".parse::<Knob>().is_err());
    }

    #[test]
    fn a_ladder_climbs_when_easy_descends_when_hard_and_ignores_stale_groups() {
        let c = curriculum("level=1,2,3");
        let mut l = Ladder::new();
        assert_eq!(l.record(&c, 0, 1.0), 0, "one group is not a window");
        assert_eq!(l.record(&c, 0, 0.9), 1, "too easy: up");
        assert_eq!(l.record(&c, 0, 0.0), 1, "drawn before the move: ignored");
        assert_eq!(l.record(&c, 1, 0.5), 1);
        assert_eq!(l.record(&c, 1, 0.5), 1, "in the band: stays");
        assert_eq!(l.record(&c, 1, 0.0), 1, "the window's mean (0.25) is still in the band");
        assert_eq!(l.record(&c, 1, 0.0), 0, "too hard: down");
        assert_eq!(c.config(1, &Map::new()).get("level"), Some(&Value::from(2)));
        let mut top = Ladder { level: 2, recent: VecDeque::new() };
        top.record(&c, 2, 1.0);
        assert_eq!(top.record(&c, 2, 1.0), 2, "no level above the top");
    }
}
