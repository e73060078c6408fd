//! The API's success envelope (`success`, `errors`, `messages`, `result`)
//! as one trait over the generated response types, and what an answer
//! that may hold a credential shows of itself in an error.

use crate::downloads::Downloads;
use crate::error::Error;
use crate::types::{DeletedResponse, DownloadsResponse, Message};

/// The envelope fields of a success response type.
pub(crate) trait Envelope {
    /// The `result` type.
    type Result;
    fn parts(self) -> (bool, Vec<Message>, Vec<Message>, Option<Self::Result>);
}

/// [`Envelope`] for generated success types whose `result` is an
/// `Option` of the value itself (the common case).
macro_rules! single_result_envelope {
    ($($response:ty => $result:ty),+ $(,)?) => {$(
        impl Envelope for $response {
            type Result = $result;
            fn parts(self) -> (bool, Vec<Message>, Vec<Message>, Option<$result>) {
                (self.success, self.errors.0, self.messages.0, self.result)
            }
        }
    )+};
}

single_result_envelope! {
    DownloadsResponse => Downloads,
    DeletedResponse => String,
    crate::types::TokenResponse => crate::types::TokenResult,
    crate::types::NewSigningKeyResponse => crate::types::NewSigningKey,
    crate::types::CaptionResponse => crate::types::Caption,
}

/// [`Envelope`] for generated success types whose `result` is a list the
/// generator decodes to empty when absent (`#[serde(default)]`).
macro_rules! list_result_envelope {
    ($($response:ty => $item:ty),+ $(,)?) => {$(
        impl Envelope for $response {
            type Result = Vec<$item>;
            fn parts(self) -> (bool, Vec<Message>, Vec<Message>, Option<Vec<$item>>) {
                (self.success, self.errors.0, self.messages.0, Some(self.result))
            }
        }
    )+};
}

list_result_envelope! {
    crate::types::SigningKeysResponse => crate::types::SigningKeyInfo,
    crate::types::CaptionsResponse => crate::types::Caption,
    crate::types::WatermarksResponse => crate::types::Watermark,
}

/// For answers that carry a credential (a token, a new key): an answer
/// that cannot be decoded is reported without its body, which may hold it.
pub(crate) fn withhold_secret_body<T>(result: Result<T, Error>) -> Result<T, Error> {
    result.map_err(|e| match e {
        Error::UnexpectedResponse {
            request,
            status,
            content_type,
            body_snippet: _,
        } => Error::UnexpectedResponse {
            request,
            status,
            content_type,
            body_snippet: "(not shown: this answer may hold a credential)".into(),
        },
        other => other,
    })
}
