//! MIT 6.5840 Raft lab tests (2023 names 2A–2D; 2024 names 3A–3D), in virtual time.

pub mod kv;
pub mod part1;
pub mod part2;
pub mod part3;
pub mod part4;
