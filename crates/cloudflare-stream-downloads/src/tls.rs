//! TLS: rustls with a crypto provider chosen here, explicitly.
//!
//! reqwest's default rustls provider is aws-lc-rs, whose build needs cmake
//! and a C toolchain and dominates a clean build. This crate uses **ring**
//! by default (cargo feature `ring`); the features `aws-lc-rs` and `fips`
//! select aws-lc-rs (its FIPS module with `fips`) instead. The provider is
//! passed to every HTTP client this crate builds, never installed as the
//! process default, so it cannot clash with an application's own choice
//! and nothing panics for want of a provider at first use.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls_platform_verifier::BuilderVerifierExt;

#[cfg(not(any(feature = "ring", feature = "aws-lc-rs")))]
compile_error!("enable one TLS crypto provider feature: `ring` (default), `aws-lc-rs` or `fips`");

/// The crypto provider of this build (see the module documentation).
pub fn crypto_provider() -> Arc<CryptoProvider> {
    #[cfg(feature = "aws-lc-rs")]
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    #[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
    let provider = rustls::crypto::ring::default_provider();
    Arc::new(provider)
}

/// A rustls client configuration with [`crypto_provider`] and the
/// platform's certificate verifier (the system's trust store), speaking
/// HTTP/1.1. Give it to `reqwest::ClientBuilder::tls_backend_preconfigured`
/// to build other reqwest clients the same way.
pub fn client_config() -> Result<rustls::ClientConfig, rustls::Error> {
    let mut config = rustls::ClientConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()?
        .with_platform_verifier()?
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}
