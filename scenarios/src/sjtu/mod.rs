//! SJTU CSE lab 3 Raft tests (parts 1–4, identical in 2021 and 2022), in virtual time.

pub mod part1;
pub mod part2;
pub mod part3;
pub mod part4;
pub mod part5;
