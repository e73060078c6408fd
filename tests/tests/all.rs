//! One test binary for the crate's integration tests: each file beside
//! this one is a module of it. One link instead of one per file, and
//! the tests of every file run side by side instead of one binary after
//! another (`cargo test` runs test binaries one at a time).
//! `client_tracing.rs`, `envelopes.rs`, `inventory.rs` stay binaries of their own (Cargo.toml says why).

mod captions;
mod client_api;
mod client_flow;
mod end_to_end;
mod one_writer;
mod prism_contract;
mod properties;
mod video_listing;
