//! The `stream-fake` binary prints what a user needs and serves it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[tokio::test]
async fn prints_base_url_and_credentials_and_serves() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_stream-fake"))
        .args([
            "--port",
            "0",
            "--file-size",
            "1KiB",
            "--fault",
            "list=429:3*1",
            "--videos",
            "1500",
            "--bounds",
            "inclusive",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    for line in stdout.lines() {
        let line = line.unwrap();
        let done = line.starts_with("Ctrl-C");
        lines.push(line);
        if done {
            break;
        }
    }
    let text = lines.join("\n");
    let value = |key: &str| {
        lines
            .iter()
            .find_map(|l| l.trim().strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key} in:\n{text}"))
            .to_owned()
    };
    let base = value("CLOUDFLARE_BASE_URL=");
    let token = value("CLOUDFLARE_API_TOKEN=");
    let account = value("CLOUDFLARE_ACCOUNT_ID=");
    assert!(text.contains("CLOUDFLARE_API_USER_SERVICE_KEY="), "{text}");
    assert!(
        text.contains("fault: RateLimited(Seconds(3)) on List for 1 request(s)"),
        "{text}"
    );

    let url = format!(
        "{base}/accounts/{account}/stream/{}/downloads",
        stream_fake::config::DEFAULT_VIDEO
    );
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(cloudflare_stream_downloads::tls::client_config().unwrap())
        .build()
        .unwrap();
    let first = http.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(first.status(), 429);
    assert_eq!(first.headers()["retry-after"], "3");
    let second = http.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(second.status(), 200);

    // --videos: the default video plus 1500 generated ones in the listing.
    assert!(
        text.contains("listing: 1500 more generated videos, Inclusive bounds"),
        "{text}"
    );
    let listing: serde_json::Value = http
        .get(format!(
            "{base}/accounts/{account}/stream?include_counts=true&limit=5"
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listing["total"], 1501);
    assert_eq!(listing["result"].as_array().unwrap().len(), 5);
    child.kill().unwrap();
    child.wait().unwrap();
}
