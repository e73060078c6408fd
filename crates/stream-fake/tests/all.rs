//! One test binary for the crate's integration tests: each file beside
//! this one is a module of it. One link instead of one per file, and
//! the tests of every file run side by side instead of one binary after
//! another (`cargo test` runs test binaries one at a time).

mod behaviour;
mod binary;
