//! Real servers the workspace's tests and benchmarks start on loopback,
//! from the package registries (`.ci/run` installs them): no mocks.
//!
//! - [`seaweed`]: SeaweedFS, an S3 server, for exports into a bucket.
//! - [`proxy`]: a recording HTTP/1.1 proxy, for checks on the requests a
//!   client sent that the server does not make.
//! - [`hosts`]: hosts that refuse connections, or accept and never answer.

pub mod hosts;
pub mod proxy;
pub mod seaweed;
