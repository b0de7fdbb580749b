//! sdk
pub mod verify;
