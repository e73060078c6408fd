//! Envelope decoding: any bytes into every response type. Decoding may
//! fail, never panic; what decodes re-serialises and decodes to itself.
#![no_main]

use cloudflare_stream_downloads::Downloads;
use cloudflare_stream_downloads::types::{DeletedResponse, DownloadsResponse, FailureResponse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = serde_json::from_slice::<DownloadsResponse>(data) {
        let again: DownloadsResponse =
            serde_json::from_value(serde_json::to_value(&r).unwrap()).unwrap();
        assert_eq!(again, r);
    }
    let _ = serde_json::from_slice::<DeletedResponse>(data);
    let _ = serde_json::from_slice::<FailureResponse>(data);
    if let Ok(d) = serde_json::from_slice::<Downloads>(data) {
        let again: Downloads = serde_json::from_value(serde_json::to_value(&d).unwrap()).unwrap();
        assert_eq!(again, d);
    }
});
