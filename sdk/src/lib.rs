//! sdk

pub mod verify;
