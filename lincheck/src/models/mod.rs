//! Ready-made models.

pub mod kv;
