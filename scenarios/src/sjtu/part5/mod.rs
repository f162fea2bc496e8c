//! SJTU CSE lab 3 part 5: the 2021 key/value store ([`kv`]) and the 2022 ChFS filesystem
//! ([`chfs`]), both on the replicated services of the `services` crate.

pub mod chfs;
pub mod kv;
