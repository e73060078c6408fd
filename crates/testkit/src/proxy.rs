//! A recording TCP proxy for HTTP/1.1: it forwards every byte both ways
//! and reads, on the way to the server, each request's line and headers,
//! for the checks a server cannot make (R2's rule that all parts of a
//! multipart upload but the last have one size, which SeaweedFS does not
//! enforce). Request bodies are forwarded by their `Content-Length`;
//! a chunked request body ends the recording of its connection (the bytes
//! still flow).

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
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
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
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let log = log.clone();
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(&upstream).await {
                        let _ = relay(client, server, log).await;
                    }
                });
            }
        });
        Ok(Self { port, seen, task })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The requests so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn relay(
    client: TcpStream,
    server: TcpStream,
    log: Arc<Mutex<Vec<Seen>>>,
) -> std::io::Result<()> {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let back = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
        let _ = client_write.shutdown().await;
    });
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
        server_write.write_all(&chunk[..n]).await?;
        if !recording {
            continue;
        }
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
            let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                break;
            };
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            buf.drain(..end + 4);
            let mut lines = head.split("\r\n");
            let mut first = lines.next().unwrap_or_default().split(' ');
            let seen = Seen {
                method: first.next().unwrap_or_default().to_owned(),
                target: first.next().unwrap_or_default().to_owned(),
                headers: lines
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
                    .collect(),
            };
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
            log.lock().unwrap().push(seen);
            if !recording {
                break;
            }
        }
    }
    let _ = server_write.shutdown().await;
    let _ = back.await;
    Ok(())
}
