//! The seam between progenitor's generated `Client` and the hand-written layer.
//!
//! The generator is configured (`xtask/src/generate.rs`) with
//! `HooksMode::Expected` and `Inner` as the client's inner type, so every
//! generated call passes through the `ClientHooks` implementation below.

use progenitor_client::{ClientHooks, Error, OperationInfo};

use crate::generated::Client;

/// Per-client state carried by the generated `Client` for the hooks.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Inner {}

impl ClientHooks<Inner> for Client {
    /// progenitor adds `api-version: <info.version>` ("4.0.0") to every
    /// request. Cloudflare versions its API in the URL (`/client/v4`) and
    /// defines no such header, so it is removed: we send only headers the
    /// API defines.
    async fn pre<E>(
        &self,
        request: &mut reqwest::Request,
        _info: &OperationInfo,
    ) -> Result<(), Error<E>> {
        request.headers_mut().remove("api-version");
        Ok(())
    }
}
