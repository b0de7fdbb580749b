//! Reward weights: the declared components' defaults, overridden per episode
//! by the reset config `{"weights": {"component": weight}}`, and the weighted total.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::error::EnvError;
use crate::protocol::RewardComponent;

/// The weight of each component: its default from `components`, replaced by
/// `config.weights` where given. Unknown components and non-finite weights
/// are refused with a `bad_request` naming them.
pub fn weights(components: &[RewardComponent], config: &Map<String, Value>) -> Result<BTreeMap<String, f64>, EnvError> {
    let mut weights: BTreeMap<String, f64> = components.iter().map(|c| (c.name.clone(), c.weight)).collect();
    let Some(overrides) = config.get("weights") else {
        return Ok(weights);
    };
    let overrides =
        overrides.as_object().ok_or_else(|| EnvError::bad_request("config.weights must be an object of numbers"))?;
    for (name, w) in overrides {
        let slot = weights.get_mut(name).ok_or_else(|| {
            EnvError::bad_request(format!(
                "config.weights names unknown component `{name}`; components are: {}",
                components.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ")
            ))
        })?;
        *slot = w
            .as_f64()
            .filter(|w| w.is_finite())
            .ok_or_else(|| EnvError::bad_request(format!("config.weights.{name} must be a finite number")))?;
    }
    Ok(weights)
}

/// The weighted total of `components` under `weights` (missing components count 0).
pub fn weighted_total(weights: &BTreeMap<String, f64>, components: &BTreeMap<String, f64>) -> f64 {
    weights.iter().map(|(name, w)| w * components.get(name).copied().unwrap_or(0.0)).sum()
}
