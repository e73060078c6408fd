//! Id validation: the one place that decides what may go into a URL path.

use crate::error::Error;
use crate::types::{AccountId, VideoId};

/// Longest id the API accepts (Cloudflare ids are 32 hex characters).
pub const MAX_ID_LEN: usize = 32;

/// Check an id before it goes into a request path: non-empty, at most 32
/// characters, only `[A-Za-z0-9_-]`. Nothing that passes can add a path
/// segment, a dot-segment, a query or an escape.
pub fn check_id(what: &'static str, id: &str) -> Result<(), Error> {
    let reason = if id.is_empty() {
        "must not be empty".to_owned()
    } else if id.len() > MAX_ID_LEN {
        format!("{} characters; at most {MAX_ID_LEN}", id.chars().count())
    } else if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        format!("{c:?} is not allowed; only A-Z, a-z, 0-9, '-' and '_'")
    } else {
        return Ok(());
    };
    Err(Error::InvalidInput { what, reason })
}

/// A checked account id, as the generated client takes it.
pub(crate) fn account_id(id: &str) -> Result<AccountId, Error> {
    check_id("account id", id)?;
    id.parse().map_err(|e| Error::InvalidInput {
        what: "account id",
        reason: format!("{e}"),
    })
}

/// A checked video id, as the generated client takes it.
pub(crate) fn video_id(id: &str) -> Result<VideoId, Error> {
    check_id("video id", id)?;
    id.parse().map_err(|e| Error::InvalidInput {
        what: "video id",
        reason: format!("{e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::check_id;

    #[test]
    fn accepts_cloudflare_ids() {
        check_id("video id", "ea95132c15732412d22c1476fa83f27a").unwrap();
        check_id("video id", "a-b_C9").unwrap();
    }

    #[test]
    fn refuses_what_could_change_the_path() {
        for bad in [
            "",
            "a/b",
            "..",
            "%2e%2e",
            "a?b=c",
            "a#b",
            "a b",
            "é",
            &"a".repeat(33),
        ] {
            assert!(check_id("video id", bad).is_err(), "{bad:?} passed");
        }
    }
}
