//! What the export reads from a listed video's JSON (the listing's, or the
//! video's details): the few flags that decide how its files go.

/// `requireSignedURLs` of a video's JSON (false when absent or unreadable).
pub(crate) fn requires_signed_urls(json: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct Flag {
        #[serde(rename = "requireSignedURLs")]
        signed: Option<bool>,
    }
    serde_json::from_str::<Flag>(json).is_ok_and(|f| f.signed == Some(true))
}

/// `readyToStream: false` in a video's JSON (absent or unreadable: not
/// known, so not false).
pub(crate) fn not_ready_to_stream(json: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct Flag {
        #[serde(rename = "readyToStream")]
        ready: Option<bool>,
    }
    serde_json::from_str::<Flag>(json).is_ok_and(|f| f.ready == Some(false))
}
