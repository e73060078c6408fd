//! Hostile answers: arbitrary JSON and arbitrary bytes through the envelope
//! decoding never panic, and through the client always give a value or a
//! typed error that keeps the HTTP status.

use std::sync::{Arc, Mutex};

use cloudflare_stream_downloads::types::{DeletedResponse, DownloadsResponse, FailureResponse};
use cloudflare_stream_downloads::{Client, Downloads, Error};
use proptest::prelude::*;
use serde_json::{Value, json};
use wiremock::{MockServer, Request, Respond, ResponseTemplate};

/// Arbitrary JSON, biased towards the envelope's own keys and values.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        prop_oneof![
            Just("ready".to_owned()),
            Just("inprogress".to_owned()),
            Just("error".to_owned()),
            Just("ok".to_owned()),
            ".{0,12}"
        ]
        .prop_map(Value::String),
    ];
    let key = prop_oneof![
        Just("success".to_owned()),
        Just("errors".to_owned()),
        Just("messages".to_owned()),
        Just("result".to_owned()),
        Just("default".to_owned()),
        Just("audio".to_owned()),
        Just("status".to_owned()),
        Just("percentComplete".to_owned()),
        Just("url".to_owned()),
        Just("code".to_owned()),
        Just("message".to_owned()),
        "[a-z]{1,6}"
    ];
    leaf.prop_recursive(5, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_json_never_panics_the_decoders(value in json_value()) {
        let text = value.to_string();
        let _ = serde_json::from_str::<DownloadsResponse>(&text);
        let _ = serde_json::from_str::<DeletedResponse>(&text);
        let _ = serde_json::from_str::<FailureResponse>(&text);
        let _ = serde_json::from_str::<Downloads>(&text);
        // …and what decodes re-serialises and decodes to the same value.
        if let Ok(d) = serde_json::from_str::<Downloads>(&text) {
            let again: Downloads = serde_json::from_value(serde_json::to_value(&d).unwrap()).unwrap();
            prop_assert_eq!(again, d);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_decoders(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = serde_json::from_slice::<DownloadsResponse>(&bytes);
        let _ = serde_json::from_slice::<FailureResponse>(&bytes);
        let _ = serde_json::from_slice::<Downloads>(&bytes);
    }
}

/// Answers with whatever the test put in the slot.
#[derive(Clone, Default)]
struct Slot(Arc<Mutex<(u16, Vec<u8>)>>);

impl Respond for Slot {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let (status, body) = self.0.lock().unwrap().clone();
        ResponseTemplate::new(status).set_body_raw(body, "application/json")
    }
}

#[test]
fn hostile_answers_through_the_client_keep_their_status() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let slot = Slot::default();
    let server = runtime.block_on(async {
        let server = MockServer::start().await;
        wiremock::Mock::given(wiremock::matchers::any())
            .respond_with(slot.clone())
            .mount(&server)
            .await;
        server
    });
    let client = Client::builder()
        .base_url(server.uri())
        .account_id("acc")
        .api_token("t")
        .max_retries(0)
        .build()
        .unwrap();
    let body = prop_oneof![
        json_value().prop_map(|v| v.to_string().into_bytes()),
        prop::collection::vec(any::<u8>(), 0..128),
        Just(b"<html>502 Bad Gateway</html>".to_vec()),
        Just(Vec::new()),
    ];
    let status = prop_oneof![
        Just(200u16),
        Just(400),
        Just(404),
        Just(429),
        Just(500),
        Just(502)
    ];
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(256));
    runner
        .run(&(status, body), |(status, body)| {
            *slot.0.lock().unwrap() = (status, body.clone());
            let result = runtime.block_on(client.list_downloads("video"));
            match result {
                Ok(_) => prop_assert_eq!(status, 200, "a {} was a success", status),
                Err(e) => {
                    prop_assert_eq!(
                        e.status().map(|s| s.as_u16()),
                        Some(status),
                        "lost the status: {:?}",
                        e
                    );
                    prop_assert!(
                        matches!(
                            e,
                            Error::Api { .. }
                                | Error::RateLimited { .. }
                                | Error::UnexpectedResponse { .. }
                        ),
                        "{:?}",
                        e
                    );
                }
            }
            Ok(())
        })
        .unwrap();
}
