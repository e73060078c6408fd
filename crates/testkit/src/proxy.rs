//! A recording TCP proxy for HTTP/1.1: it forwards every byte both ways
//! and reads, on the way to the server, each request's line and headers,
//! for the checks a server cannot make (R2's rule that all parts of a
//! multipart upload but the last have one size, which SeaweedFS does not
//! enforce). Request bodies are forwarded by their `Content-Length`;
//! a chunked request body ends the recording of its connection (the bytes
//! still flow).
//!
//! With [`RecordingProxy::start_listing_part_checksums`] it also fills in
//! one thing S3 documents and SeaweedFS 4.48 leaves out: the
//! `ChecksumSHA256` of each part in a `ListParts` answer (the value the
//! client sent with that part), so that a client taking over an upload it
//! did not start can be tested against a real store.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One request as the proxy saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// `PUT`, `POST`, …
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    /// Header names (lowercase) and values.
    pub headers: Vec<(String, String)>,
}

impl Seen {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// A query parameter's value.
    pub fn query(&self, name: &str) -> Option<&str> {
        let (_, query) = self.target.split_once('?')?;
        query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == name).then_some(v)
        })
    }
}

/// A running proxy to one upstream address.
#[derive(Debug)]
pub struct RecordingProxy {
    port: u16,
    task: tokio::task::JoinHandle<()>,
    shared: Arc<Shared>,
}

/// What the connections of one proxy share.
#[derive(Debug, Default)]
struct Shared {
    seen: Mutex<Vec<Seen>>,
    /// (upload id, part number) → the `x-amz-checksum-sha256` sent with it.
    checksums: Mutex<HashMap<(String, String), String>>,
    list_part_checksums: bool,
}

impl Drop for RecordingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RecordingProxy {
    /// Listens on a free loopback port and forwards to `upstream`
    /// (`host:port`).
    pub async fn start(upstream: String) -> std::io::Result<Self> {
        Self::start_with(upstream, false).await
    }

    /// [`start`](Self::start), adding to each part of a `ListParts` answer
    /// the `ChecksumSHA256` the client sent with it (see the module
    /// documentation).
    pub async fn start_listing_part_checksums(upstream: String) -> std::io::Result<Self> {
        Self::start_with(upstream, true).await
    }

    async fn start_with(upstream: String, list_part_checksums: bool) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let shared = Arc::new(Shared {
            list_part_checksums,
            ..Shared::default()
        });
        let for_task = shared.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let shared = for_task.clone();
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(&upstream).await {
                        let _ = relay(client, server, shared).await;
                    }
                });
            }
        });
        Ok(Self { port, task, shared })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The requests so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }
}

/// Reads one HTTP/1.1 head (`\r\n\r\n`-terminated) from `buf`.
fn take_head(buf: &mut Vec<u8>) -> Option<(String, Vec<(String, String)>)> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    buf.drain(..end + 4);
    let mut lines = head.split("\r\n");
    let first = lines.next().unwrap_or_default().to_owned();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Some((first, headers))
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

async fn relay(client: TcpStream, server: TcpStream, shared: Arc<Shared>) -> std::io::Result<()> {
    let (mut client_read, client_write) = client.into_split();
    let (server_read, mut server_write) = server.into_split();
    // The requests of this connection whose answers have not come yet.
    let pending: Arc<Mutex<VecDeque<Seen>>> = Arc::default();
    let back = tokio::spawn(responses(
        server_read,
        client_write,
        pending.clone(),
        shared.clone(),
    ));
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    // Body bytes still to pass before the next request's head.
    let mut body_left: u64 = 0;
    let mut recording = true;
    loop {
        let n = client_read.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        // Parsed before forwarding, so that a request is queued before its
        // answer can arrive.
        if recording {
            buf.extend_from_slice(&chunk[..n]);
            loop {
                if body_left > 0 {
                    let skip = body_left.min(buf.len() as u64) as usize;
                    buf.drain(..skip);
                    body_left -= skip as u64;
                    if body_left > 0 {
                        break;
                    }
                }
                let Some((first, headers)) = take_head(&mut buf) else {
                    break;
                };
                let mut first = first.split(' ');
                let seen = Seen {
                    method: first.next().unwrap_or_default().to_owned(),
                    target: first.next().unwrap_or_default().to_owned(),
                    headers,
                };
                if let (Some(id), Some(n), Some(sum)) = (
                    seen.query("uploadId"),
                    seen.query("partNumber"),
                    seen.header("x-amz-checksum-sha256"),
                ) {
                    shared
                        .checksums
                        .lock()
                        .unwrap()
                        .insert((id.to_owned(), n.to_owned()), sum.to_owned());
                }
                if seen
                    .header("transfer-encoding")
                    .is_some_and(|t| t.contains("chunked"))
                {
                    recording = false;
                }
                body_left = seen
                    .header("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                shared.seen.lock().unwrap().push(seen.clone());
                pending.lock().unwrap().push_back(seen);
                if !recording {
                    break;
                }
            }
        }
        server_write.write_all(&chunk[..n]).await?;
    }
    let _ = server_write.shutdown().await;
    let _ = back.await;
    Ok(())
}

/// Forwards the answers; with `list_part_checksums`, rewrites those of
/// `ListParts`.
async fn responses(
    mut server_read: tokio::net::tcp::OwnedReadHalf,
    mut client_write: tokio::net::tcp::OwnedWriteHalf,
    pending: Arc<Mutex<VecDeque<Seen>>>,
    shared: Arc<Shared>,
) -> std::io::Result<()> {
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut raw = !shared.list_part_checksums;
    loop {
        if raw {
            if !buf.is_empty() {
                client_write.write_all(&buf).await?;
                buf.clear();
            }
            tokio::io::copy(&mut server_read, &mut client_write).await?;
            break;
        }
        // A whole head, then its body.
        let head = loop {
            if let Some(head) = take_head(&mut buf) {
                break Some(head);
            }
            let n = server_read.read(&mut chunk).await?;
            if n == 0 {
                break None;
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let Some((status_line, headers)) = head else {
            break;
        };
        let request = pending.lock().unwrap().pop_front();
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let bodyless = request.as_ref().is_some_and(|r| r.method == "HEAD")
            || status < 200
            || status == 204
            || status == 304;
        if bodyless {
            // (A HEAD answer's Content-Length is the object's: kept.)
            client_write
                .write_all(&rebuild(&status_line, &headers, None))
                .await?;
            continue;
        }
        let length: Option<u64> = header(&headers, "content-length").and_then(|v| v.parse().ok());
        let Some(length) = length else {
            // Chunked or to-the-close: pass the rest through as it is.
            client_write
                .write_all(&rebuild(&status_line, &headers, None))
                .await?;
            raw = true;
            continue;
        };
        while (buf.len() as u64) < length {
            let n = server_read.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let take = (length as usize).min(buf.len());
        let mut body: Vec<u8> = buf.drain(..take).collect();
        let list_parts = request.as_ref().filter(|r| {
            r.method == "GET" && r.query("uploadId").is_some() && r.query("partNumber").is_none()
        });
        if let (Some(r), true) = (list_parts, status == 200) {
            let id = r.query("uploadId").unwrap_or_default().to_owned();
            body = add_part_checksums(&body, &id, &shared.checksums.lock().unwrap());
        }
        client_write
            .write_all(&rebuild(&status_line, &headers, Some(body.len())))
            .await?;
        client_write.write_all(&body).await?;
    }
    let _ = client_write.shutdown().await;
    Ok(())
}

/// A response head, with `Content-Length` set to `length` when given.
fn rebuild(status_line: &str, headers: &[(String, String)], length: Option<usize>) -> Vec<u8> {
    let mut out = format!("{status_line}\r\n");
    for (name, value) in headers {
        if name == "content-length" && length.is_some() {
            continue;
        }
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(length) = length {
        out.push_str(&format!("content-length: {length}\r\n"));
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// Adds `<ChecksumSHA256>` to each `<Part>` of a `ListPartsResult` that
/// has none and whose checksum the client sent.
fn add_part_checksums(
    body: &[u8],
    upload_id: &str,
    checksums: &HashMap<(String, String), String>,
) -> Vec<u8> {
    let text = String::from_utf8_lossy(body);
    let mut out = String::with_capacity(text.len() + 256);
    let mut rest: &str = &text;
    while let Some(start) = rest.find("<Part>") {
        let Some(end) = rest[start..].find("</Part>").map(|e| start + e) else {
            break;
        };
        out.push_str(&rest[..end]);
        let part = &rest[start..end];
        let number = part
            .split("<PartNumber>")
            .nth(1)
            .and_then(|p| p.split("</PartNumber>").next())
            .unwrap_or_default();
        if !part.contains("<ChecksumSHA256>")
            && let Some(sum) = checksums.get(&(upload_id.to_owned(), number.to_owned()))
        {
            out.push_str(&format!("<ChecksumSHA256>{sum}</ChecksumSHA256>"));
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out.into_bytes()
}
