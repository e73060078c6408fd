//! The client's tracing events: one per attempt, and never a secret.
//!
//! A test binary of its own with a global subscriber: tracing caches each
//! event's interest globally, so a thread-local subscriber in a binary whose
//! other tests hit the same events concurrently can miss them.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cloudflare_stream_downloads::{Client, RetryPolicy};
use serde_json::json;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "Sn3lZJTBX6kkg7OdcBUAxOO963GEIyGQqnFTOFYY";

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn one_event_per_attempt_and_no_secret() {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .finish(),
    )
    .unwrap();

    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "success": true, "errors": [], "messages": [{ "code": 1000, "message": "hello" }],
            "result": { "default": { "status": "ready", "percentComplete": 100 } }
        })))
        .mount(&server)
        .await;
    Client::builder()
        .base_url(format!("{}/client/v4", server.uri()))
        .account_id("023e105f4ecef8ad9ca31a8372d0c353")
        .api_token(TOKEN)
        .retry_policy(RetryPolicy {
            initial_backoff: Duration::from_millis(10),
            ..RetryPolicy::default()
        })
        .build()
        .unwrap()
        .list_downloads("ea95132c15732412d22c1476fa83f27a")
        .await
        .unwrap();

    let log = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let attempts: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(": cloudflare api request operation=\"list_downloads\""))
        .collect();
    assert_eq!(attempts.len(), 2, "{log}");
    assert!(
        attempts[0].contains("attempt=1") && attempts[0].contains("status=500"),
        "{log}"
    );
    assert!(
        attempts[1].contains("attempt=2") && attempts[1].contains("status=200"),
        "{log}"
    );
    assert!(log.contains("retrying cloudflare api request"), "{log}");
    assert!(log.contains("hello"), "envelope messages are logged: {log}");
    assert!(!log.contains(TOKEN), "the token was logged");
    assert!(
        !log.contains("Bearer"),
        "an authorization header was logged"
    );
}
