//! Real servers the workspace's tests and benchmarks start on loopback,
//! from the package registries (`.ci/run` installs them): no mocks.
//!
//! - [`seaweed`]: SeaweedFS, an S3 server, for exports into a bucket.

pub mod seaweed;
