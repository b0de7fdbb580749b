//! Verifier libraries for scoring model answers.
pub mod math;
