//! Verifier libraries that environments use to score and give feedback on policy output.

pub mod math;
pub mod tools;
