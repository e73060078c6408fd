//! The fake over real HTTP: every operation's answers, the progression of a
//! download, the file route and every fault mode. Every JSON body the fake
//! sends in these tests is validated against the checked-in spec (the
//! contract), so the fake cannot drift from `openapi/`.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use stream_fake::{
    FakeConfig, Fault, Kind, Progress, RetryAfter, Route, StreamFake, VideoOptions, content,
};

const VIDEO: &str = stream_fake::config::DEFAULT_VIDEO;
const ACCOUNT: &str = stream_fake::config::DEFAULT_ACCOUNT;
const TEMPLATE: &str = "/accounts/{account_id}/stream/{identifier}/downloads";

/// The spec's response schemas as JSON Schema validators.
struct Contract {
    spec: Value,
    components: Value,
}

impl Contract {
    fn load() -> Self {
        let spec = xtask::codegen::patched_spec(&xtask::codegen::Paths::workspace()).unwrap();
        let mut components = spec["components"].clone();
        openapi_to_json_schema(&mut components);
        Self { spec, components }
    }

    /// Validate `body` as the answer of `method` on the `typed` or untyped
    /// path with `status`. A `success: false` body is validated against the
    /// operation's failure (4XX) schema whatever its status: that is the
    /// shape it claims.
    fn check(&self, method: &str, typed: bool, status: StatusCode, body: &Value) {
        let path = if typed {
            format!("{TEMPLATE}/{{download_type}}")
        } else {
            TEMPLATE.to_owned()
        };
        self.check_at(method, &path, status, body);
    }

    /// Validate `body` as the answer of `method` on the spec path `path`.
    fn check_at(&self, method: &str, path: &str, status: StatusCode, body: &Value) {
        let key = if status.is_success() && body["success"] != json!(false) {
            status.as_str().to_owned()
        } else {
            "4XX".to_owned()
        };
        let responses = &self.spec["paths"][path][method.to_lowercase()]["responses"];
        let schema = &responses[&key]["content"]["application/json"]["schema"];
        assert!(
            !schema.is_null(),
            "the spec has no {key} JSON response for {method} {path}"
        );
        let document = json!({ "allOf": [schema], "components": self.components });
        let validator = jsonschema::draft7::new(&document).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(body)
            .map(|e| format!("{} at {}", e, e.instance_path))
            .collect();
        assert!(
            errors.is_empty(),
            "{method} {path} {status}: body breaks the spec: {errors:?}\n{body}"
        );
    }
}

/// OpenAPI 3.0 `nullable: true` is JSON Schema's `type: [T, "null"]`.
fn openapi_to_json_schema(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map.remove("nullable") == Some(Value::Bool(true))
                && let Some(Value::String(t)) = map.get("type").cloned()
            {
                map.insert("type".into(), json!([t, "null"]));
            }
            map.values_mut().for_each(openapi_to_json_schema);
        }
        Value::Array(items) => items.iter_mut().for_each(openapi_to_json_schema),
        _ => {}
    }
}

struct Harness {
    fake: StreamFake,
    http: reqwest::Client,
    contract: Contract,
}

/// One API answer.
struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Harness {
    async fn start(config: FakeConfig) -> Self {
        Self {
            fake: StreamFake::start(config).await.unwrap(),
            http: reqwest::Client::builder()
                .tls_backend_preconfigured(
                    cloudflare_stream_downloads::tls::client_config().unwrap(),
                )
                .build()
                .unwrap(),
            contract: Contract::load(),
        }
    }

    async fn default() -> Self {
        Self::start(FakeConfig::default()).await
    }

    fn url(&self, account: &str, video: &str, kind: Option<&str>) -> String {
        let mut url = format!(
            "{}/accounts/{account}/stream/{video}/downloads",
            self.fake.base_url()
        );
        if let Some(kind) = kind {
            url.push('/');
            url.push_str(kind);
        }
        url
    }

    /// Call an operation with the default token; validate the JSON body.
    async fn call(&self, method: &str, video: &str, kind: Option<&str>) -> Answer {
        self.call_as(method, ACCOUNT, video, kind, |r| {
            r.bearer_auth(stream_fake::config::DEFAULT_TOKEN)
        })
        .await
    }

    async fn call_as(
        &self,
        method: &str,
        account: &str,
        video: &str,
        kind: Option<&str>,
        auth: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Answer {
        let method_value = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let request = auth(
            self.http
                .request(method_value, self.url(account, video, kind)),
        );
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{method} answered non-JSON ({e}): {text}"));
        if !body.is_null() {
            self.contract.check(method, kind.is_some(), status, &body);
        }
        Answer {
            status,
            headers,
            body,
        }
    }
}

fn codes(body: &Value) -> Vec<i64> {
    body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["code"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn every_operation_succeeds_with_the_envelope() {
    let h = Harness::default().await;
    let created = h.call("POST", VIDEO, None).await;
    assert_eq!(created.status, StatusCode::OK);
    assert_eq!(created.body["result"]["default"]["status"], "inprogress");
    assert_eq!(created.body["result"]["default"]["percentComplete"], 0.0);
    let audio = h.call("POST", VIDEO, Some("audio")).await;
    assert_eq!(audio.body["result"]["audio"]["status"], "inprogress");
    assert!(
        audio.body["result"]["audio"]["url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/{VIDEO}/downloads/audio.m4a"))
    );
    let listed = h.call("GET", VIDEO, None).await;
    assert_eq!(listed.body["success"], true);
    assert!(
        listed.body["result"]["default"].is_object() && listed.body["result"]["audio"].is_object()
    );
    let deleted = h.call("DELETE", VIDEO, Some("audio")).await;
    assert_eq!(deleted.body["result"], "ok");
    let listed = h.call("GET", VIDEO, None).await;
    assert!(listed.body["result"]["audio"].is_null());
    assert!(listed.body["result"]["default"].is_object());
    h.call("DELETE", VIDEO, None).await;
    let listed = h.call("GET", VIDEO, None).await;
    assert_eq!(listed.body["result"], json!({}));
}

#[tokio::test]
async fn each_credential_kind_is_accepted_and_anything_else_refused() {
    let h = Harness::default().await;
    let (email, key) = (
        stream_fake::config::DEFAULT_EMAIL,
        stream_fake::config::DEFAULT_API_KEY,
    );
    let ok = h
        .call_as("GET", ACCOUNT, VIDEO, None, |r| {
            r.header("x-auth-email", email).header("x-auth-key", key)
        })
        .await;
    assert_eq!(ok.status, StatusCode::OK);
    let ok = h
        .call_as("GET", ACCOUNT, VIDEO, None, |r| {
            r.header(
                "x-auth-user-service-key",
                stream_fake::config::DEFAULT_SERVICE_KEY,
            )
        })
        .await;
    assert_eq!(ok.status, StatusCode::OK);

    let none = h.call_as("GET", ACCOUNT, VIDEO, None, |r| r).await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert_eq!(codes(&none.body), [10000]);
    for wrong in [
        h.call_as("POST", ACCOUNT, VIDEO, None, |r| r.bearer_auth("nope"))
            .await,
        h.call_as("DELETE", ACCOUNT, VIDEO, Some("audio"), |r| {
            r.header("x-auth-email", email)
        })
        .await,
        h.call_as("GET", ACCOUNT, VIDEO, None, |r| {
            r.header("x-auth-email", email)
                .header("x-auth-key", "wrong")
        })
        .await,
    ] {
        assert_eq!(wrong.status, StatusCode::FORBIDDEN);
        assert_eq!(codes(&wrong.body), [10000]);
        assert_eq!(wrong.body["errors"][0]["message"], "Authentication error");
    }
    // Another account is not ours to see.
    let other = h
        .call_as(
            "GET",
            "0123456789abcdef0123456789abcdef",
            VIDEO,
            None,
            |r| r.bearer_auth(stream_fake::config::DEFAULT_TOKEN),
        )
        .await;
    assert_eq!(other.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn unknown_video_invalid_id_and_unknown_type() {
    let h = Harness::default().await;
    for (method, kind) in [
        ("GET", None),
        ("POST", None),
        ("DELETE", None),
        ("POST", Some("audio")),
        ("DELETE", Some("default")),
    ] {
        let unknown = h
            .call(method, "0123456789abcdef0123456789abcdef", kind)
            .await;
        assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{method}");
        assert_eq!(codes(&unknown.body), [10003]);
        let long = "a".repeat(33);
        for bad in [long.as_str(), "a.b", "a%20b"] {
            let invalid = h.call(method, bad, kind).await;
            assert_eq!(invalid.status, StatusCode::BAD_REQUEST, "{method} {bad}");
            assert_eq!(codes(&invalid.body), [10005]);
        }
    }
    let no_type = h.call("POST", VIDEO, Some("hls")).await;
    assert_eq!(no_type.status, StatusCode::NOT_FOUND);
    assert_eq!(codes(&no_type.body), [7003]);
}

#[tokio::test]
async fn a_download_progresses_per_poll_to_ready() {
    let h = Harness::start(FakeConfig {
        progress: Progress::PerPoll { step: 40.0 },
        ..FakeConfig::default()
    })
    .await;
    h.call("POST", VIDEO, Some("default")).await;
    let mut seen = Vec::new();
    for _ in 0..4 {
        let listed = h.call("GET", VIDEO, None).await;
        let d = &listed.body["result"]["default"];
        seen.push((
            d["status"].as_str().unwrap().to_owned(),
            d["percentComplete"].as_f64().unwrap(),
        ));
    }
    let expected = [
        ("inprogress", 40.0),
        ("inprogress", 80.0),
        ("ready", 100.0),
        ("ready", 100.0),
    ];
    let expected: Vec<(String, f64)> = expected
        .iter()
        .map(|(s, p)| ((*s).to_owned(), *p))
        .collect();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn a_download_progresses_with_time_to_ready() {
    let h = Harness::start(FakeConfig {
        progress: Progress::OverTime {
            duration: Duration::from_millis(300),
        },
        ..FakeConfig::default()
    })
    .await;
    h.call("POST", VIDEO, Some("audio")).await;
    let first = h.call("GET", VIDEO, None).await.body["result"]["audio"].clone();
    assert_eq!(first["status"], "inprogress");
    tokio::time::sleep(Duration::from_millis(350)).await;
    let later = h.call("GET", VIDEO, None).await.body["result"]["audio"].clone();
    assert_eq!(later["status"], "ready");
    assert_eq!(later["percentComplete"], 100.0);
}

#[tokio::test]
async fn a_configured_video_ends_in_error() {
    let h = Harness::start(FakeConfig {
        progress: Progress::PerPoll { step: 30.0 },
        ..FakeConfig::default()
    })
    .await;
    let failing = "fa11fa11fa11fa11fa11fa11fa11fa11";
    h.fake.add_video(
        failing,
        VideoOptions {
            fails_at: Some(50.0),
            ..VideoOptions::default()
        },
    );
    h.call("POST", failing, None).await;
    let first = h.call("GET", failing, None).await;
    assert_eq!(first.body["result"]["default"]["status"], "inprogress");
    let second = h.call("GET", failing, None).await;
    assert_eq!(second.body["result"]["default"]["status"], "error");
    assert_eq!(second.body["result"]["default"]["percentComplete"], 50.0);
    assert_eq!(
        h.fake.download(failing, Kind::Default).unwrap().status,
        "error"
    );
}

/// Make the default download ready and return its URL.
async fn ready_url(h: &Harness, kind: &str) -> String {
    h.call("POST", VIDEO, Some(kind)).await;
    for _ in 0..4 {
        h.call("GET", VIDEO, None).await;
    }
    let listed = h.call("GET", VIDEO, None).await;
    assert_eq!(listed.body["result"][kind]["status"], "ready");
    listed.body["result"][kind]["url"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn the_file_route_serves_exact_bytes_ranges_and_filenames_without_credentials() {
    let size = 300_000;
    let h = Harness::start(FakeConfig {
        file_size: size,
        ..FakeConfig::default()
    })
    .await;
    let url = ready_url(&h, "default").await;
    assert!(url.starts_with(&h.fake.files_base_url()), "{url}");

    let whole = h.http.get(&url).send().await.unwrap();
    assert_eq!(whole.status(), StatusCode::OK);
    assert_eq!(whole.headers()["content-length"], size.to_string().as_str());
    assert_eq!(whole.headers()["content-type"], "video/mp4");
    let bytes = whole.bytes().await.unwrap();
    assert_eq!(bytes.len() as u64, size);
    let file = content::FileContent::new(VIDEO, url.rsplit('/').next().unwrap(), size);
    assert_eq!(file.first_mismatch(0, &bytes), None);
    // Another file holds other bytes.
    assert_ne!(
        content::shift(VIDEO, "audio.m4a"),
        content::shift(VIDEO, "default.mp4")
    );
    assert_ne!(
        content::shift("other", "default.mp4"),
        content::shift(VIDEO, "default.mp4")
    );

    let part = h
        .http
        .get(&url)
        .header("range", "bytes=100000-")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        part.headers()["content-range"],
        "bytes 100000-299999/300000"
    );
    let bytes = part.bytes().await.unwrap();
    assert_eq!(bytes.len(), 200_000);
    assert_eq!(file.first_mismatch(100_000, &bytes), None);

    let closed = h
        .http
        .get(&url)
        .header("range", "bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(closed.headers()["content-range"], "bytes 10-19/300000");
    assert_eq!(closed.bytes().await.unwrap(), file.chunk(10, 10));

    let beyond = h
        .http
        .get(&url)
        .header("range", "bytes=300000-")
        .send()
        .await
        .unwrap();
    assert_eq!(beyond.status(), StatusCode::RANGE_NOT_SATISFIABLE);

    let named = h
        .http
        .get(format!("{url}?filename=my-video_1"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        named.headers()["content-disposition"],
        "attachment; filename=\"my-video_1.mp4\""
    );
    let bad_name = h
        .http
        .get(format!("{url}?filename=..%2Fetc"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad_name.status(), StatusCode::BAD_REQUEST);

    // A credential sent to the download host is recorded.
    h.http.get(&url).bearer_auth("leaked").send().await.unwrap();
    let requests = h.fake.file_requests();
    assert!(
        requests[..requests.len() - 1]
            .iter()
            .all(|r| r.credential_headers.is_empty())
    );
    assert_eq!(
        requests.last().unwrap().credential_headers,
        ["authorization"]
    );
    assert_eq!(requests[1].range.as_deref(), Some("bytes=100000-"));
    assert_eq!(requests[4].filename.as_deref(), Some("my-video_1"));
}

#[tokio::test]
async fn a_file_that_is_not_ready_is_not_served() {
    let h = Harness::default().await;
    let created = h.call("POST", VIDEO, None).await;
    let url = created.body["result"]["default"]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let response = h.http.get(&url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn fault_rate_limited_with_seconds_date_or_nothing() {
    let h = Harness::default().await;
    h.fake.inject(
        Route::List,
        Fault::RateLimited(RetryAfter::Seconds(7)),
        Some(1),
    );
    let limited = h.call("GET", VIDEO, None).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.headers["retry-after"], "7");
    assert_eq!(codes(&limited.body), [1015]);
    // Used up: the next request is normal.
    assert_eq!(h.call("GET", VIDEO, None).await.status, StatusCode::OK);

    h.fake.inject(
        Route::Any,
        Fault::RateLimited(RetryAfter::HttpDate(Duration::from_secs(30))),
        Some(1),
    );
    let limited = h.call("POST", VIDEO, None).await;
    let date = limited.headers["retry-after"].to_str().unwrap();
    let when = httpdate::parse_http_date(date).unwrap();
    let ahead = when.duration_since(std::time::SystemTime::now()).unwrap();
    assert!(
        ahead > Duration::from_secs(25) && ahead <= Duration::from_secs(31),
        "{ahead:?}"
    );

    h.fake.inject(
        Route::Delete,
        Fault::RateLimited(RetryAfter::Missing),
        Some(1),
    );
    let bare = h.call("DELETE", VIDEO, None).await;
    assert_eq!(bare.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(bare.headers.get("retry-after").is_none());
    assert_eq!(bare.body, Value::Null);
}

#[tokio::test]
async fn fault_server_error_html_and_success_false() {
    let h = Harness::default().await;
    h.fake
        .inject(Route::CreateType, Fault::ServerErrorHtml(502), Some(1));
    let response = h
        .http
        .post(h.url(ACCOUNT, VIDEO, Some("audio")))
        .bearer_auth(stream_fake::config::DEFAULT_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(response.text().await.unwrap().contains("<html>"));

    h.fake.inject(Route::List, Fault::SuccessFalse, None);
    for _ in 0..2 {
        let answer = h.call("GET", VIDEO, None).await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.body["success"], false);
        assert!(!codes(&answer.body).is_empty());
    }
    h.fake.clear_faults();
    assert_eq!(h.call("GET", VIDEO, None).await.body["success"], true);
}

#[tokio::test]
async fn fault_slow_answers() {
    let h = Harness::default().await;
    h.fake.inject(
        Route::List,
        Fault::Slow(Duration::from_millis(400)),
        Some(1),
    );
    let started = Instant::now();
    let answer = h.call("GET", VIDEO, None).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(400));
}

#[tokio::test]
async fn fault_truncated_json_and_cut_api_body() {
    let h = Harness::default().await;
    h.fake.inject(Route::List, Fault::TruncatedJson, Some(1));
    let response = h
        .http
        .get(h.url(ACCOUNT, VIDEO, None))
        .bearer_auth(stream_fake::config::DEFAULT_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");
    assert!(text.starts_with('{'));

    h.fake.inject(Route::List, Fault::CutMidBody, Some(1));
    let response = h
        .http
        .get(h.url(ACCOUNT, VIDEO, None))
        .bearer_auth(stream_fake::config::DEFAULT_TOKEN)
        .send()
        .await
        .unwrap();
    assert!(
        response.bytes().await.is_err(),
        "a cut body read to the end"
    );
}

#[tokio::test]
async fn fault_cut_file_and_ignored_range() {
    let size = 200_000;
    let h = Harness::start(FakeConfig {
        file_size: size,
        ..FakeConfig::default()
    })
    .await;
    let url = ready_url(&h, "audio").await;
    h.fake.inject(Route::File, Fault::CutMidBody, Some(1));
    let cut = h.http.get(&url).send().await.unwrap();
    assert_eq!(cut.headers()["content-length"], size.to_string().as_str());
    assert!(cut.bytes().await.is_err(), "a cut file read to the end");

    h.fake.inject(Route::File, Fault::IgnoreRange, Some(1));
    let whole = h
        .http
        .get(&url)
        .header("range", "bytes=1000-")
        .send()
        .await
        .unwrap();
    assert_eq!(whole.status(), StatusCode::OK);
    assert_eq!(whole.bytes().await.unwrap().len() as u64, size);
    assert_eq!(
        whole_status_after_fault(&h, &url).await,
        StatusCode::PARTIAL_CONTENT
    );
}

#[tokio::test]
async fn fault_shares_hit_part_of_the_file_requests_and_a_spared_one_goes_to_the_next() {
    let h = Harness::start(FakeConfig {
        file_size: 4096,
        ..FakeConfig::default()
    })
    .await;
    let url = ready_url(&h, "default").await;
    h.fake.inject_rule(stream_fake::FaultRule::share(
        Route::File,
        Fault::ServerErrorHtml(503),
        30,
    ));
    h.fake.inject_rule(stream_fake::FaultRule::share(
        Route::File,
        Fault::CutMidBody,
        30,
    ));
    let (mut unavailable, mut cut, mut whole) = (0, 0, 0);
    for _ in 0..200 {
        let response = h.http.get(&url).send().await.unwrap();
        if response.status() == StatusCode::SERVICE_UNAVAILABLE {
            unavailable += 1;
        } else if response.bytes().await.is_err() {
            cut += 1;
        } else {
            whole += 1;
        }
    }
    // 30 % of 200, then 30 % of the 70 % left (±, a fixed sequence).
    assert!((40..=80).contains(&unavailable), "{unavailable}");
    assert!((25..=60).contains(&cut), "{cut}");
    assert_eq!(unavailable + cut + whole, 200);
}

#[tokio::test]
async fn the_listing_can_put_playback_on_another_host() {
    let h = Harness::start(FakeConfig {
        generated_videos: 3,
        playback_base: Some("https://customer-x.cloudflarestream.com".into()),
        ..FakeConfig::default()
    })
    .await;
    let listed = h.list_videos(&[]).await;
    for v in listed.body["result"].as_array().unwrap() {
        let uid = v["uid"].as_str().unwrap();
        assert_eq!(
            v["playback"]["hls"],
            format!("https://customer-x.cloudflarestream.com/{uid}/manifest/video.m3u8")
        );
    }
    // Downloads stay on the download host.
    let url = ready_url(&h, "default").await;
    assert!(url.starts_with(&h.fake.files_base_url()), "{url}");
}

async fn whole_status_after_fault(h: &Harness, url: &str) -> StatusCode {
    h.http
        .get(url)
        .header("range", "bytes=1000-")
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn the_contract_catches_a_body_the_spec_does_not_allow() {
    // The contract check itself must be able to fail.
    let contract = Contract::load();
    let bad = json!({ "success": true, "errors": [], "messages": [],
        "result": { "default": { "status": "queued", "percentComplete": 5 } } });
    let outcome = std::panic::catch_unwind(|| contract.check("GET", false, StatusCode::OK, &bad));
    assert!(outcome.is_err(), "an unknown status passed the contract");
    let missing_code =
        json!({ "success": false, "errors": [{ "message": "x" }], "messages": [], "result": null });
    let outcome = std::panic::catch_unwind(|| {
        contract.check("GET", false, StatusCode::NOT_FOUND, &missing_code)
    });
    assert!(
        outcome.is_err(),
        "a message without code passed the contract"
    );
}

const LISTING: &str = "/accounts/{account_id}/stream";

impl Harness {
    /// `GET …/stream?query` with the default token; the body validated.
    async fn list_videos(&self, query: &[(&str, &str)]) -> Answer {
        let response = self
            .http
            .get(format!(
                "{}/accounts/{ACCOUNT}/stream",
                self.fake.base_url()
            ))
            .query(query)
            .bearer_auth(stream_fake::config::DEFAULT_TOKEN)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body: Value = response.json().await.unwrap();
        self.contract.check_at("GET", LISTING, status, &body);
        Answer {
            status,
            headers,
            body,
        }
    }
}

fn uids(body: &Value) -> Vec<String> {
    body["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["uid"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_listing_follows_the_documented_rules() {
    let h = Harness::start(FakeConfig {
        videos: Vec::new(),
        generated_videos: 2500,
        ..FakeConfig::default()
    })
    .await;
    let catalog = h.fake.catalog();
    let newest_first: Vec<String> = catalog.iter().rev().map(|v| v.uid.clone()).collect();

    // Default: newest first, 1000 per page, no counts.
    let page = h.list_videos(&[]).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(uids(&page.body), newest_first[..1000]);
    assert!(page.body.get("total").is_none());
    // asc, limit, include_counts.
    let page = h
        .list_videos(&[("asc", "true"), ("limit", "3"), ("include_counts", "true")])
        .await;
    let oldest: Vec<String> = catalog.iter().take(3).map(|v| v.uid.clone()).collect();
    assert_eq!(uids(&page.body), oldest);
    assert_eq!(page.body["total"], 2500);
    assert_eq!(page.body["range"], 2497);
    // A video as listed: the fields the spec describes.
    let v = &page.body["result"][0];
    for key in [
        "uid",
        "created",
        "modified",
        "duration",
        "size",
        "readyToStream",
        "status",
        "meta",
        "requireSignedURLs",
    ] {
        assert!(!v[key].is_null(), "{key} missing: {v}");
    }
    assert_eq!(v["meta"]["name"], catalog[0].name);
    // Filters.
    let page = h
        .list_videos(&[("status", "queued"), ("include_counts", "true")])
        .await;
    let queued = catalog.iter().filter(|v| v.state == "queued").count();
    assert!(queued > 0);
    assert_eq!(page.body["total"], queued);
    assert!(
        page.body["result"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["status"]["state"] == "queued" && v["readyToStream"] == false)
    );
    let page = h.list_videos(&[("video_name", "video-000007.mp4")]).await;
    assert_eq!(
        uids(&page.body),
        [catalog
            .iter()
            .find(|v| v.name == "video-000007.mp4")
            .unwrap()
            .uid
            .clone()]
    );
    // Bad queries: the failure envelope, 400.
    for query in [
        [("limit", "0")],
        [("limit", "1001")],
        [("before", "yesterday")],
    ] {
        let page = h.list_videos(&query).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{query:?}");
        assert_eq!(codes(&page.body), [stream_fake::BAD_QUERY.0]);
    }
}

#[tokio::test]
async fn the_bounds_are_a_setting() {
    use stream_fake::catalog::{Bounds, CatalogVideo, epoch};
    let t = epoch();
    let layout = vec![
        CatalogVideo::ready("a", t),
        CatalogVideo::ready("b", t + chrono::Duration::seconds(1)),
        CatalogVideo::ready("c", t + chrono::Duration::seconds(1)),
        CatalogVideo::ready("d", t + chrono::Duration::seconds(2)),
    ];
    let at = "2024-01-01T00:00:01Z";
    for (bounds, before, after) in [
        (Bounds::Exclusive, vec!["a"], vec!["d"]),
        (Bounds::Inclusive, vec!["c", "b", "a"], vec!["d", "c", "b"]),
    ] {
        let h = Harness::start(FakeConfig {
            videos: Vec::new(),
            catalog: layout.clone(),
            bounds,
            ..FakeConfig::default()
        })
        .await;
        assert_eq!(
            uids(&h.list_videos(&[("before", at)]).await.body),
            before,
            "{bounds:?}"
        );
        assert_eq!(
            uids(&h.list_videos(&[("end", at)]).await.body),
            before,
            "{bounds:?} end"
        );
        assert_eq!(
            uids(&h.list_videos(&[("after", at)]).await.body),
            after,
            "{bounds:?}"
        );
        assert_eq!(
            uids(&h.list_videos(&[("start", at)]).await.body),
            after,
            "{bounds:?} start"
        );
    }
}

#[tokio::test]
async fn not_ready_videos_refuse_downloads_and_signed_ones_refuse_files() {
    use stream_fake::catalog::{CatalogVideo, epoch};
    let mut pending = CatalogVideo::ready("pending0000000000000000000000000", epoch());
    pending.ready_to_stream = false;
    pending.state = "inprogress".into();
    let mut signed = CatalogVideo::ready("signed00000000000000000000000000", epoch());
    signed.require_signed_urls = true;
    let h = Harness::start(FakeConfig {
        catalog: vec![pending.clone(), signed.clone()],
        progress: Progress::PerPoll { step: 100.0 },
        ..FakeConfig::default()
    })
    .await;
    for kind in [None, Some("audio")] {
        let refused = h.call("POST", &pending.uid, kind).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST);
        assert_eq!(codes(&refused.body), [stream_fake::NOT_READY.0]);
    }
    assert_eq!(
        h.call("POST", &signed.uid, None).await.status,
        StatusCode::OK
    );
    let listed = h.call("GET", &signed.uid, None).await;
    let url = listed.body["result"]["default"]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let file = h.http.get(&url).send().await.unwrap();
    assert_eq!(file.status(), StatusCode::UNAUTHORIZED);
    assert!(file.text().await.unwrap().contains("signed URLs"));
}

#[tokio::test]
async fn a_deleted_video_leaves_the_listing_and_answers_404() {
    let h = Harness::start(FakeConfig {
        generated_videos: 5,
        ..FakeConfig::default()
    })
    .await;
    let gone = h.fake.catalog()[2].uid.clone();
    h.fake.delete_video(&gone);
    assert!(!uids(&h.list_videos(&[]).await.body).contains(&gone));
    assert_eq!(
        h.call("GET", &gone, None).await.status,
        StatusCode::NOT_FOUND
    );
}

/// A reader over a served file, made on the fly (for files too big to hold).
struct Served {
    file: content::FileContent,
    pos: u64,
}

impl std::io::Read for Served {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let chunk = self.file.chunk(self.pos, buf.len());
        buf[..chunk.len()].copy_from_slice(&chunk);
        self.pos += chunk.len() as u64;
        Ok(chunk.len())
    }
}

impl std::io::Seek for Served {
    fn seek(&mut self, to: std::io::SeekFrom) -> std::io::Result<u64> {
        self.pos = match to {
            std::io::SeekFrom::Start(n) => n,
            std::io::SeekFrom::End(d) => self.file.len().saturating_add_signed(d),
            std::io::SeekFrom::Current(d) => self.pos.saturating_add_signed(d),
        };
        Ok(self.pos)
    }
}

#[test]
fn served_files_are_whole_mp4s_with_32_and_64_bit_mdat() {
    use cloudflare_stream_downloads::media::check_boxes;
    for (file, size) in [
        ("default.mp4", 300_000u64),
        ("audio.m4a", content::MIN_BOX_FILE),
        ("default.mp4", 5 << 30), // over 4 GiB: a 64-bit mdat size
        ("default.mp4", 1 << 50),
    ] {
        let mut reader = Served {
            file: content::FileContent::new(VIDEO, file, size),
            pos: 0,
        };
        let boxes = check_boxes(&mut reader, size).unwrap_or_else(|e| panic!("{file} {size}: {e}"));
        let kinds: Vec<String> = boxes.iter().map(|b| b.kind_str()).collect();
        assert_eq!(kinds, ["ftyp", "moov", "mdat"], "{file} {size}");
        // Cut anywhere, it fails.
        for cut in [size - 1, size / 2, 100, 90, 30] {
            assert!(
                check_boxes(&mut reader, cut).is_err(),
                "{file} {size} cut at {cut}"
            );
        }
    }
    // The audio file says so in its ftyp.
    assert_eq!(
        &content::FileContent::new(VIDEO, "audio.m4a", 1000).chunk(8, 4)[..],
        b"M4A "
    );
}

impl Harness {
    /// Call `method` on `…/accounts/{ACCOUNT}/stream/{rest}` with the
    /// default token and `body`; validate the JSON answer against the
    /// operation at `template` (a spec path).
    async fn call_path(
        &self,
        method: &str,
        rest: &str,
        template: &str,
        body: Option<Value>,
    ) -> Answer {
        let method_value = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let url = format!("{}/accounts/{ACCOUNT}/stream/{rest}", self.fake.base_url());
        let mut request = self
            .http
            .request(method_value, url)
            .bearer_auth(stream_fake::config::DEFAULT_TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
        self.contract.check_at(method, template, status, &body);
        Answer {
            status,
            headers,
            body,
        }
    }

    /// GET a file URL whose first path segment is replaced by `token`.
    async fn signed_get(&self, url: &str, token: &str) -> (StatusCode, String) {
        let mut url = reqwest::Url::parse(url).unwrap();
        let rest: Vec<String> = url
            .path_segments()
            .unwrap()
            .skip(1)
            .map(str::to_owned)
            .collect();
        url.path_segments_mut()
            .unwrap()
            .clear()
            .push(token)
            .extend(rest);
        let response = self.http.get(url).send().await.unwrap();
        let status = response.status();
        let bytes = response.bytes().await.unwrap();
        (
            status,
            String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned(),
        )
    }
}

/// The signed-URL operations answer by the spec, and the download host
/// checks tokens as Cloudflare documents: a locally signed token and one
/// from `/token` (with `downloadable`) work; none is 401; an expired, a
/// too-long, a not-yet-valid, a non-downloadable, a tampered token and one
/// of a deleted key are 403. No token is kept in the request log.
#[tokio::test]
async fn signed_urls_keys_and_tokens() {
    use cloudflare_stream_downloads::{SigningKey, TokenOptions};
    use stream_fake::catalog::{CatalogVideo, epoch};
    let mut signed = CatalogVideo::ready("signed00000000000000000000000000", epoch());
    signed.require_signed_urls = true;
    let h = Harness::start(FakeConfig {
        catalog: vec![signed.clone()],
        progress: Progress::PerPoll { step: 100.0 },
        ..FakeConfig::default()
    })
    .await;
    let uid = signed.uid.as_str();
    let details = h
        .call_path(
            "GET",
            uid,
            "/accounts/{account_id}/stream/{identifier}",
            None,
        )
        .await;
    assert_eq!(details.status, StatusCode::OK);
    assert_eq!(details.body["result"]["requireSignedURLs"], true);
    assert_eq!(details.body["result"]["uid"], uid);

    let keys = "/accounts/{account_id}/stream/keys";
    let created = h.call_path("POST", "keys", keys, None).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    let key = SigningKey::from_json(&created.body.to_string()).unwrap();
    let listed = h.call_path("GET", "keys", keys, None).await;
    assert_eq!(listed.body["result"][0]["id"], key.id());
    assert!(!listed.body.to_string().contains("pem"));

    h.call("POST", uid, None).await;
    let url = h.call("GET", uid, None).await.body["result"]["default"]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let unsigned = h.http.get(&url).send().await.unwrap().status();
    assert_eq!(unsigned, StatusCode::UNAUTHORIZED);

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let good = key.sign(uid, &TokenOptions::default()).unwrap();
    let (status, _) = h.signed_get(&url, good.expose()).await;
    assert_eq!(status, StatusCode::OK);

    let token_path = "/accounts/{account_id}/stream/{identifier}/token";
    let from_api = h
        .call_path(
            "POST",
            &format!("{uid}/token"),
            token_path,
            Some(json!({"downloadable": true})),
        )
        .await;
    let api_token = from_api.body["result"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(h.signed_get(&url, &api_token).await.0, StatusCode::OK);
    let too_far = h
        .call_path(
            "POST",
            &format!("{uid}/token"),
            token_path,
            Some(json!({"downloadable": true, "exp": now + 25 * 3600})),
        )
        .await;
    assert_eq!(too_far.status, StatusCode::BAD_REQUEST);

    // Without a body, a token is made with the defaults: not downloadable.
    let plain = h
        .call_path("POST", &format!("{uid}/token"), token_path, None)
        .await;
    let plain = plain.body["result"]["token"].as_str().unwrap().to_owned();
    // The manifest is playback: a token without `downloadable` opens it;
    // without a token a signed video's manifest is refused, as its files.
    let manifest = format!("{}/{uid}/manifest/video.m3u8", h.fake.files_base_url());
    assert_eq!(
        h.http.get(&manifest).send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let (status, text) = h.signed_get(&manifest, &plain).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(text.starts_with("#EXTM3U"), "{text}");
    assert!(
        h.fake
            .file_requests()
            .iter()
            .all(|r| !r.path.contains(&plain))
    );
    let expired = key
        .sign_at(uid, &TokenOptions::default(), now - 7200)
        .unwrap();
    let day = TokenOptions {
        lifetime: Duration::from_secs(24 * 3600),
        ..TokenOptions::default()
    };
    let too_long = key.sign_at(uid, &day, now + 7200).unwrap();
    let early = TokenOptions {
        not_before: Some(now + 3600),
        ..TokenOptions::default()
    };
    let not_yet = key.sign(uid, &early).unwrap();
    let mut tampered = good.expose().to_owned();
    tampered.replace_range(tampered.len() - 5.., "AAAAA");
    for (token, why) in [
        (plain.as_str(), "not downloadable"),
        (expired.expose(), "expired"),
        (too_long.expose(), "24 hours"),
        (not_yet.expose(), "nbf"),
        (tampered.as_str(), "bad signature"),
    ] {
        let (status, text) = h.signed_get(&url, token).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{why}: {text}");
        assert!(text.contains(why), "{why}: {text}");
    }

    let key_path = format!("keys/{}", key.id());
    let delete_key = || {
        h.call_path(
            "DELETE",
            &key_path,
            "/accounts/{account_id}/stream/keys/{identifier}",
            None,
        )
    };
    let deleted = delete_key().await;
    assert_eq!(deleted.status, StatusCode::OK);
    let (status, text) = h.signed_get(&url, good.expose()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(text.contains("deleted"), "{text}");
    let again = delete_key().await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);

    // The request log names the video, never a token.
    let log = h.fake.file_requests();
    assert!(log.iter().filter(|r| r.signed).count() >= 8);
    for r in &log {
        assert!(
            !r.path.contains(good.expose()) && !r.path.contains('.')
                || r.path.ends_with(".mp4")
                || r.path.ends_with("/manifest/video.m3u8"),
            "{}",
            r.path
        );
        assert!(!r.path.contains("eyJ"), "{}", r.path);
    }
}

#[tokio::test]
async fn captions_audio_tracks_watermarks_and_the_manifest_answer_by_the_spec() {
    use stream_fake::captions::{FakeAudioTrack, FakeCaption};
    let h = Harness::default().await;
    h.fake.set_captions(
        VIDEO,
        vec![
            FakeCaption::ready(VIDEO, "pt-BR", "Português"),
            FakeCaption::generating(VIDEO, "en", "English"),
        ],
    );
    h.fake.set_audio_tracks(
        VIDEO,
        vec![FakeAudioTrack {
            uid: "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1".into(),
            label: "Director".into(),
            default: false,
            status: "ready".into(),
        }],
    );
    let base = format!("{}/accounts/{ACCOUNT}/stream", h.fake.base_url());
    let get = |url: String| {
        h.http
            .get(url)
            .bearer_auth(stream_fake::config::DEFAULT_TOKEN)
            .send()
    };
    let spec = "/accounts/{account_id}/stream";
    for (url, path) in [
        (
            format!("{base}/{VIDEO}/captions"),
            format!("{spec}/{{identifier}}/captions"),
        ),
        (
            format!("{base}/{VIDEO}/captions/pt-BR"),
            format!("{spec}/{{identifier}}/captions/{{language}}"),
        ),
        (
            format!("{base}/{VIDEO}/captions/fr"),
            format!("{spec}/{{identifier}}/captions/{{language}}"),
        ),
        (
            format!("{base}/{VIDEO}/audio"),
            format!("{spec}/{{identifier}}/audio"),
        ),
        (format!("{base}/watermarks"), format!("{spec}/watermarks")),
    ] {
        let response = get(url.clone()).await.unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        h.contract.check_at("GET", &path, status, &body);
        if url.ends_with("/fr") {
            assert_eq!(status, StatusCode::NOT_FOUND);
        } else {
            assert_eq!(status, StatusCode::OK, "{url}: {body}");
        }
    }
    // The WebVTT: text/vtt, the caption's text; not ready: an envelope 404.
    let vtt = get(format!("{base}/{VIDEO}/captions/pt-BR/vtt"))
        .await
        .unwrap();
    assert_eq!(vtt.headers()["content-type"], "text/vtt");
    assert!(
        vtt.text()
            .await
            .unwrap()
            .starts_with("WEBVTT\n\n00:00:00.000 --> ")
    );
    let not_ready = get(format!("{base}/{VIDEO}/captions/en/vtt"))
        .await
        .unwrap();
    assert_eq!(not_ready.status(), StatusCode::NOT_FOUND);
    let body: Value = not_ready.json().await.unwrap();
    h.contract.check_at(
        "GET",
        &format!("{spec}/{{identifier}}/captions/{{language}}/vtt"),
        StatusCode::NOT_FOUND,
        &body,
    );
    // The manifest on the download host: the ready caption and track only,
    // no credentials needed.
    let manifest = h
        .http
        .get(format!(
            "{}/{VIDEO}/manifest/video.m3u8",
            h.fake.files_base_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(manifest.status(), StatusCode::OK);
    let text = manifest.text().await.unwrap();
    assert!(
        text.contains("TYPE=SUBTITLES") && text.contains("LANGUAGE=\"pt-BR\""),
        "{text}"
    );
    assert!(!text.contains("LANGUAGE=\"en\""), "{text}");
    assert!(text.contains("TYPE=AUDIO"), "{text}");
}
