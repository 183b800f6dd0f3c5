//! The README's examples, compiled and run as a new user's crate would: see `Cargo.toml`.
#![doc = include_str!("../../../README.md")]
