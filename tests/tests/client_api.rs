//! The client layer over real HTTP on 127.0.0.1 (wiremock): credentials,
//! paths, id checks, envelope errors and retries.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use cloudflare_stream_downloads::DownloadStatus;
use cloudflare_stream_downloads::types::DownloadType;
use cloudflare_stream_downloads::{Client, Credentials, Error, RetryPolicy};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const ACCOUNT: &str = "023e105f4ecef8ad9ca31a8372d0c353";
const VIDEO: &str = "ea95132c15732412d22c1476fa83f27a";
const TOKEN: &str = "Sn3lZJTBX6kkg7OdcBUAxOO963GEIyGQqnFTOFYY";
const KEY: &str = "144c9defac04969c7bfad8efaa8ea194";

fn downloads_path() -> String {
    format!("/client/v4/accounts/{ACCOUNT}/stream/{VIDEO}/downloads")
}

/// Retries as in production, but with short backoff so tests stay fast.
fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(40),
        ..RetryPolicy::default()
    }
}

fn client_for(server: &MockServer, credentials: Credentials) -> Client {
    Client::builder()
        .base_url(format!("{}/client/v4", server.uri()))
        .account_id(ACCOUNT)
        .credentials(credentials)
        .retry_policy(fast_retries())
        .build()
        .unwrap()
}

fn client(server: &MockServer) -> Client {
    client_for(server, Credentials::ApiToken(TOKEN.into()))
}

fn ready_list() -> Value {
    json!({
        "success": true, "errors": [], "messages": [],
        "result": { "default": { "status": "ready", "percentComplete": 100, "url": "https://example.com/v.mp4" } }
    })
}

async fn received(server: &MockServer) -> Vec<Request> {
    server.received_requests().await.unwrap_or_default()
}

#[tokio::test]
async fn each_credential_kind_sends_exactly_its_own_headers() {
    let cases = [
        (
            Credentials::ApiToken(TOKEN.into()),
            vec![("authorization", format!("Bearer {TOKEN}"))],
        ),
        (
            Credentials::ApiKey {
                email: "user@example.com".into(),
                key: KEY.into(),
            },
            vec![
                ("x-auth-email", "user@example.com".to_owned()),
                ("x-auth-key", KEY.to_owned()),
            ],
        ),
        (
            Credentials::UserServiceKey(KEY.into()),
            vec![("x-auth-user-service-key", KEY.to_owned())],
        ),
    ];
    let auth_headers = [
        "authorization",
        "x-auth-email",
        "x-auth-key",
        "x-auth-user-service-key",
    ];
    for (credentials, expected) in cases {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200).set_body_json(ready_list()))
            .mount(&server)
            .await;
        client_for(&server, credentials.clone())
            .list_downloads(VIDEO)
            .await
            .unwrap();
        let requests = received(&server).await;
        assert_eq!(requests.len(), 1);
        let headers = &requests[0].headers;
        for name in auth_headers {
            let want = expected.iter().find(|(n, _)| *n == name);
            let got = headers.get(name).map(|v| v.to_str().unwrap().to_owned());
            assert_eq!(got, want.map(|(_, v)| v.clone()), "{credentials:?}: {name}");
        }
        assert!(headers.get("api-version").is_none(), "api-version is sent");
        assert_eq!(
            headers.get("user-agent").unwrap().to_str().unwrap(),
            cloudflare_stream_downloads::USER_AGENT
        );
    }
}

#[test]
fn debug_never_shows_a_secret() {
    let client = Client::builder()
        .credentials(Credentials::ApiKey {
            email: "user@example.com".into(),
            key: KEY.into(),
        })
        .account_id(ACCOUNT)
        .build()
        .unwrap();
    let shown = format!("{client:?} {client:#?}");
    assert!(!shown.contains(KEY), "{shown}");
    assert!(shown.contains("***"), "{shown}");
    for credentials in [
        Credentials::ApiToken(TOKEN.into()),
        Credentials::UserServiceKey(KEY.into()),
    ] {
        let shown = format!("{credentials:?}");
        assert!(!shown.contains(TOKEN) && !shown.contains(KEY), "{shown}");
    }
    let builder = Client::builder().api_token(TOKEN);
    assert!(!format!("{builder:?}").contains(TOKEN));
}

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + 'static {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name| map.get(name).cloned()
}

#[test]
fn environment_precedence() {
    let all = [
        ("CLOUDFLARE_API_TOKEN", TOKEN),
        ("CLOUDFLARE_EMAIL", "user@example.com"),
        ("CLOUDFLARE_API_KEY", KEY),
        ("CLOUDFLARE_API_USER_SERVICE_KEY", "usk"),
        ("CLOUDFLARE_ACCOUNT_ID", ACCOUNT),
        ("CLOUDFLARE_BASE_URL", "http://127.0.0.1:9/client/v4"),
    ];
    // Token beats key beats user service key.
    let c = Client::builder().from_lookup(env(&all)).build().unwrap();
    assert!(format!("{c:?}").contains("ApiToken(***)"));
    assert_eq!(c.account_id(), Some(ACCOUNT));
    assert_eq!(c.base_url(), "http://127.0.0.1:9/client/v4");
    let c = Client::builder()
        .from_lookup(env(&all[1..]))
        .build()
        .unwrap();
    assert!(format!("{c:?}").contains("ApiKey"));
    let c = Client::builder()
        .from_lookup(env(&all[3..]))
        .build()
        .unwrap();
    assert!(format!("{c:?}").contains("UserServiceKey(***)"));

    // Explicit values beat the environment.
    let c = Client::builder()
        .from_lookup(env(&all))
        .credentials(Credentials::UserServiceKey("explicit".into()))
        .account_id("other")
        .base_url("https://api.example.com/v4/")
        .build()
        .unwrap();
    assert!(format!("{c:?}").contains("UserServiceKey(***)"));
    assert_eq!(c.account_id(), Some("other"));
    assert_eq!(c.base_url(), "https://api.example.com/v4");

    // Nothing set: the error names the variables.
    let err = Client::builder().from_lookup(env(&[])).build().unwrap_err();
    let text = err.to_string();
    for var in [
        "CLOUDFLARE_API_TOKEN",
        "CLOUDFLARE_EMAIL",
        "CLOUDFLARE_API_KEY",
        "CLOUDFLARE_API_USER_SERVICE_KEY",
    ] {
        assert!(text.contains(var), "{text}");
    }
    // A key without its e-mail is refused, not silently skipped.
    let err = Client::builder()
        .from_lookup(env(&[("CLOUDFLARE_API_KEY", KEY)]))
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("CLOUDFLARE_EMAIL"), "{err}");
    assert!(!err.to_string().contains(KEY));
}

#[test]
fn clear_text_base_url_is_refused_unless_loopback() {
    for url in [
        "http://api.cloudflare.com/client/v4",
        "http://10.0.0.1/v4",
        "ftp://127.0.0.1/",
    ] {
        let err = Client::builder()
            .api_token(TOKEN)
            .base_url(url)
            .build()
            .unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{url}: {err}");
    }
    for url in [
        "http://127.0.0.1:8787/client/v4",
        "http://[::1]:1/x",
        "http://localhost:1/x",
        "https://api.cloudflare.com/client/v4",
    ] {
        Client::builder()
            .api_token(TOKEN)
            .base_url(url)
            .build()
            .unwrap_or_else(|e| panic!("{url}: {e}"));
    }
}

#[tokio::test]
async fn all_five_operations_hit_the_right_method_and_path() {
    let server = MockServer::start().await;
    let base = downloads_path();
    let deleted = json!({ "success": true, "errors": [], "messages": [], "result": "ok" });
    for (verb, route, body) in [
        ("GET", base.clone(), ready_list()),
        ("POST", base.clone(), ready_list()),
        ("DELETE", base.clone(), deleted.clone()),
        ("POST", format!("{base}/audio"), ready_list()),
        ("DELETE", format!("{base}/audio"), deleted.clone()),
    ] {
        Mock::given(method(verb))
            .and(path(route))
            .respond_with(ResponseTemplate::new(200).set_body_json(body))
            .expect(1)
            .mount(&server)
            .await;
    }
    let client = client(&server);
    let listed = client.list_downloads(VIDEO).await.unwrap();
    assert_eq!(listed.default().unwrap().status, DownloadStatus::Ready);
    client.create_downloads(VIDEO).await.unwrap();
    client.delete_downloads(VIDEO).await.unwrap();
    client
        .create_download(VIDEO, DownloadType::Audio)
        .await
        .unwrap();
    client
        .delete_download(VIDEO, DownloadType::Audio)
        .await
        .unwrap();
    // POSTs carry no body (the API defines none; Prism answers 415 to one).
    for request in received(&server).await {
        assert!(request.body.is_empty(), "{} sent a body", request.method);
    }
}

#[tokio::test]
async fn bad_ids_are_refused_before_any_request() {
    let server = MockServer::start().await;
    let client = client(&server);
    let long = "a".repeat(33);
    for bad in ["", "a/b", "..", "%2e%2e", "x?y", long.as_str()] {
        let err = client.list_downloads(bad).await.unwrap_err();
        assert!(matches!(err, Error::InvalidInput { .. }), "{bad:?}: {err}");
        let err = client
            .create_download(bad, DownloadType::Default)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidInput { .. }), "{bad:?}: {err}");
        let err = client
            .with_account_id(bad)
            .delete_downloads(VIDEO)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidInput { .. }), "{bad:?}: {err}");
    }
    assert!(received(&server).await.is_empty(), "a request was sent");
}

#[tokio::test]
async fn success_false_at_200_is_an_api_error_with_every_code() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "success": false, "result": null, "messages": [],
            "errors": [
                { "code": 10005, "message": "bad download type" },
                { "code": 1_000_000, "message": "beyond u16", "documentation_url": "https://d", "source": { "pointer": "/x" } }
            ]
        })))
        .mount(&server)
        .await;
    let err = client(&server).list_downloads(VIDEO).await.unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(200));
    assert_eq!(err.codes(), [10005, 1_000_000]);
    let Error::Api { errors, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(errors[1].documentation_url.as_deref(), Some("https://d"));
    let text = err.to_string();
    assert!(
        text.contains(&format!("GET {}", downloads_path())),
        "{text}"
    );
    assert!(text.contains("HTTP 200 OK"), "{text}");
    assert!(
        text.contains("10005: bad download type; 1000000: beyond u16"),
        "{text}"
    );
    assert!(!text.contains(TOKEN));
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn a_4xx_envelope_is_an_api_error_and_never_retried() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({
            "success": false, "result": null, "messages": [],
            "errors": [{ "code": 10003, "message": "Not Found" }]
        })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "success": false, "messages": [],
            "errors": [{ "code": 10005, "message": "bad request" }]
        })))
        .mount(&server)
        .await;
    let client = client(&server);
    let err = client.list_downloads(VIDEO).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert_eq!(err.codes(), [10003]);
    let err = client.create_downloads(VIDEO).await.unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(400));
    assert_eq!(received(&server).await.len(), 2, "a 4xx was retried");
}

#[tokio::test]
async fn a_502_html_page_is_an_unexpected_response_after_the_retries() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(502).set_body_raw(
            "<html><body>502 Bad Gateway cloudflare</body></html>",
            "text/html",
        ))
        .mount(&server)
        .await;
    let err = client(&server).list_downloads(VIDEO).await.unwrap_err();
    let Error::UnexpectedResponse {
        status,
        content_type,
        body_snippet,
        ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(status.as_u16(), 502);
    assert_eq!(content_type.as_deref(), Some("text/html"));
    assert!(body_snippet.contains("502 Bad Gateway"), "{body_snippet}");
    assert_eq!(received(&server).await.len(), 3, "1 attempt + 2 retries");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn truncated_json_keeps_its_status() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            r#"{"success": true, "errors": [], "mess"#,
            "application/json",
        ))
        .mount(&server)
        .await;
    let err = client(&server).list_downloads(VIDEO).await.unwrap_err();
    assert!(
        matches!(&err, Error::UnexpectedResponse { status, .. } if status.as_u16() == 200),
        "{err:?}"
    );
    assert!(err.to_string().contains("\\\"mess"), "{err}");
    // The content type the server really sent, not "no content type".
    assert!(
        matches!(&err, Error::UnexpectedResponse { content_type: Some(ct), .. } if ct == "application/json"),
        "{err:?}"
    );
}

/// A body over the cap is never buffered whole: an UnexpectedResponse with
/// the status and content type, for a success and for an error status.
#[tokio::test]
async fn an_answer_over_the_size_cap_is_refused_not_buffered() {
    let server = MockServer::start().await;
    let huge = format!(
        r#"{{"success": true, "errors": [], "messages": [], "result": {{}}, "pad": "{}"}}"#,
        "x".repeat(3 * 1024 * 1024)
    );
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(huge.clone(), "application/json"))
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .respond_with(ResponseTemplate::new(418).set_body_raw(huge, "text/plain"))
        .mount(&server)
        .await;
    let capped = Client::builder()
        .base_url(format!("{}/client/v4", server.uri()))
        .account_id(ACCOUNT)
        .api_token(TOKEN)
        .max_response_bytes(1024 * 1024)
        .build()
        .unwrap();
    let err = capped.list_downloads(VIDEO).await.unwrap_err();
    match &err {
        Error::UnexpectedResponse {
            status,
            content_type,
            body_snippet,
            ..
        } => {
            assert_eq!(status.as_u16(), 200);
            assert_eq!(content_type.as_deref(), Some("application/json"));
            assert!(
                body_snippet.contains("larger than 1048576 bytes"),
                "{body_snippet}"
            );
        }
        other => panic!("{other:?}"),
    }
    let err = capped.delete_downloads(VIDEO).await.unwrap_err();
    assert!(
        matches!(&err, Error::UnexpectedResponse { status, body_snippet, .. }
            if status.as_u16() == 418 && body_snippet.contains("larger than")),
        "{err:?}"
    );
    // Under the default cap (32 MiB) the same answer decodes.
    assert!(client(&server).list_downloads(VIDEO).await.is_ok());
}

/// Without a Content-Length (chunked), the cap stops the read as it passes.
#[tokio::test]
async fn a_chunked_answer_over_the_size_cap_is_refused() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = sent.clone();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = vec![0u8; 4096];
        let _ = socket.read(&mut request).await;
        let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
        if socket.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        let chunk = vec![b' '; 64 * 1024];
        // Up to 64 MiB of whitespace, unless the client hangs up first.
        for _ in 0..1024 {
            let frame = [
                format!("{:x}\r\n", chunk.len()).into_bytes(),
                chunk.clone(),
                b"\r\n".to_vec(),
            ]
            .concat();
            if socket.write_all(&frame).await.is_err() {
                return;
            }
            counter.fetch_add(chunk.len() as u64, std::sync::atomic::Ordering::Relaxed);
        }
    });
    let capped = Client::builder()
        .base_url(format!("http://127.0.0.1:{port}/client/v4"))
        .account_id(ACCOUNT)
        .api_token(TOKEN)
        .max_retries(0)
        .max_response_bytes(1024 * 1024)
        .build()
        .unwrap();
    let err = capped.list_downloads(VIDEO).await.unwrap_err();
    assert!(
        matches!(&err, Error::UnexpectedResponse { status, content_type: Some(ct), body_snippet, .. }
            if status.as_u16() == 200 && ct == "application/json" && body_snippet.contains("larger than 1048576")),
        "{err:?}"
    );
    // The client stopped reading long before the server's 64 MiB.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(
        sent.load(std::sync::atomic::Ordering::Relaxed) < 32 * 1024 * 1024,
        "the server wrote {} bytes",
        sent.load(std::sync::atomic::Ordering::Relaxed)
    );
}

#[tokio::test]
async fn rate_limit_with_retry_after_seconds_then_success() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "2"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(ready_list()))
        .mount(&server)
        .await;
    let started = Instant::now();
    client(&server).list_downloads(VIDEO).await.unwrap();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
    assert_eq!(received(&server).await.len(), 2);
}

#[tokio::test]
async fn rate_limit_with_an_http_date_retry_after() {
    let server = MockServer::start().await;
    let when = httpdate(SystemTime::now() + Duration::from_secs(2));
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", when.as_str()))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(ready_list()))
        .mount(&server)
        .await;
    let started = Instant::now();
    client(&server).list_downloads(VIDEO).await.unwrap();
    let waited = started.elapsed();
    // HTTP dates have whole seconds: the wait is between 1 and 2 s, far
    // above the 10 ms backoff the policy would otherwise use.
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
}

fn httpdate(t: SystemTime) -> String {
    // Format with the same crate the client parses with? No: write the
    // IMF-fixdate by hand so the test does not trust the code under test.
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
    let days = secs / 86_400;
    let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let names = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{weekday}, {d:02} {} {year} {h:02}:{m:02}:{s:02} GMT",
        names[(month - 1) as usize]
    )
}

#[tokio::test]
async fn rate_limited_every_time_carries_the_delay() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "1")
                .set_body_string(""),
        )
        .mount(&server)
        .await;
    let err = client(&server).list_downloads(VIDEO).await.unwrap_err();
    let Error::RateLimited {
        retry_after,
        attempts,
        ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(*retry_after, Some(Duration::from_secs(1)));
    assert_eq!(*attempts, 3);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(1)));
    assert_eq!(err.status().map(|s| s.as_u16()), Some(429));
    assert!(err.to_string().contains("retry after 1 s"), "{err}");
}

#[tokio::test]
async fn a_lockout_is_reported_at_once_not_waited_out() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "300"))
        .mount(&server)
        .await;
    let started = Instant::now();
    let err = client(&server).list_downloads(VIDEO).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(err.retry_after(), Some(Duration::from_secs(300)));
    assert_eq!(received(&server).await.len(), 1);
}

#[tokio::test]
async fn a_429_is_a_429_whatever_its_body() {
    for body in ["", "null", "<html>Too Many Requests</html>"] {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(429).set_body_string(body))
            .mount(&server)
            .await;
        let err = client(&server)
            .with_max_retries(0)
            .list_downloads(VIDEO)
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::RateLimited { .. }),
            "{body:?}: {err:?}"
        );
    }
    // …and with a failure envelope, its codes are kept.
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).set_body_json(json!({
            "success": false, "messages": [], "result": null,
            "errors": [{ "code": 971, "message": "Please wait and consider throttling your request speed" }]
        })))
        .mount(&server)
        .await;
    let err = client(&server)
        .with_max_retries(0)
        .list_downloads(VIDEO)
        .await
        .unwrap_err();
    assert_eq!(err.codes(), [971]);
}

#[tokio::test]
async fn x_should_retry_false_stops_retrying() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503).insert_header("x-should-retry", "false"))
        .mount(&server)
        .await;
    let err = client(&server).list_downloads(VIDEO).await.unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(503));
    assert_eq!(received(&server).await.len(), 1);
}

#[tokio::test]
async fn retries_can_be_set_per_call() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;
    let client = client(&server);
    client
        .with_max_retries(0)
        .list_downloads(VIDEO)
        .await
        .unwrap_err();
    assert_eq!(received(&server).await.len(), 1);
    client
        .with_max_retries(4)
        .list_downloads(VIDEO)
        .await
        .unwrap_err();
    assert_eq!(received(&server).await.len(), 1 + 5);
}

#[tokio::test]
async fn a_slow_server_times_out_after_the_retries() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(ready_list())
                .set_delay(Duration::from_secs(5)),
        )
        .mount(&server)
        .await;
    let client = Client::builder()
        .base_url(format!("{}/client/v4", server.uri()))
        .account_id(ACCOUNT)
        .api_token(TOKEN)
        .retry_policy(fast_retries())
        .request_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let err = client.list_downloads(VIDEO).await.unwrap_err();
    assert!(matches!(err, Error::Timeout { attempts: 3, .. }), "{err:?}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn a_refused_connection_is_a_connection_error() {
    // Bind then drop a listener: nothing listens on that port any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = Client::builder()
        .base_url(format!("http://127.0.0.1:{port}/client/v4"))
        .account_id(ACCOUNT)
        .api_token(TOKEN)
        .retry_policy(fast_retries())
        .build()
        .unwrap();
    let err = client.list_downloads(VIDEO).await.unwrap_err();
    assert!(
        matches!(err, Error::Connection { attempts: 3, .. }),
        "{err:?}"
    );
    assert!(!err.to_string().contains(TOKEN));
}

#[tokio::test]
async fn reference_and_docs_payloads_decode_through_the_client() {
    for (fixture, kind, status) in [
        (
            "reference-create-single.json",
            DownloadType::Default,
            DownloadStatus::Ready,
        ),
        (
            "docs-create-inprogress.json",
            DownloadType::Default,
            DownloadStatus::Inprogress,
        ),
        (
            "docs-list-audio-and-default.json",
            DownloadType::Audio,
            DownloadStatus::Inprogress,
        ),
    ] {
        let body = std::fs::read_to_string(workspace_tests::fixtures_dir().join(fixture)).unwrap();
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(200)
                    .insert_header("content-type", "application/json")
                    .set_body_string(body),
            )
            .mount(&server)
            .await;
        let downloads = client(&server).create_downloads(VIDEO).await.unwrap();
        assert_eq!(downloads.get(kind).unwrap().status, status, "{fixture}");
    }
}

#[tokio::test]
async fn missing_account_id_is_refused_before_any_request() {
    let server = MockServer::start().await;
    let client = Client::builder()
        .base_url(format!("{}/client/v4", server.uri()))
        .api_token(TOKEN)
        .build()
        .unwrap();
    let err = client.list_downloads(VIDEO).await.unwrap_err();
    assert!(err.to_string().contains("CLOUDFLARE_ACCOUNT_ID"), "{err}");
    assert!(received(&server).await.is_empty());
}

/// TLS is rustls with the ring provider, chosen by the crate: building a
/// client never panics for want of a provider, and an https base URL goes
/// through a real handshake (here refused by a server that does not speak
/// TLS: a connection error, not a panic).
#[tokio::test]
async fn https_goes_through_rustls_with_the_crates_provider() {
    use tokio::io::AsyncWriteExt;
    let config = cloudflare_stream_downloads::tls::client_config().unwrap();
    assert!(!config.crypto_provider().cipher_suites.is_empty());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let _ = socket.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        }
    });
    let client = Client::builder()
        .base_url(format!("https://127.0.0.1:{port}/client/v4"))
        .account_id(ACCOUNT)
        .api_token(TOKEN)
        .max_retries(0)
        .build()
        .unwrap();
    let err = client.list_downloads(VIDEO).await.unwrap_err();
    assert!(matches!(err, Error::Connection { .. }), "{err:?}");
}
