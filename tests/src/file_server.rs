//! A small HTTP/1.1 file server on 127.0.0.1 for the fetch tests: serves
//! deterministic bytes of a given size, honours `Range: bytes=N-` with 206,
//! records every request's headers, and can cut the connection mid-body.
//! (wiremock always sends whole bodies, so it cannot show a cut.)

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Byte `i` of every served file.
pub fn content_byte(i: u64) -> u8 {
    (i.wrapping_mul(2_654_435_761) >> 13) as u8
}

/// The first `len` bytes of every served file.
pub fn content(len: u64) -> Vec<u8> {
    (0..len).map(content_byte).collect()
}

/// One received request: method, path and headers (names lower-cased).
#[derive(Debug, Clone)]
pub struct SeenRequest {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
}

impl SeenRequest {
    /// The value of header `name`, if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the server does.
#[derive(Debug, Clone)]
pub struct FileServerConfig {
    /// Size of the file.
    pub size: u64,
    /// Close the connection after sending this many body bytes, for the
    /// first `cuts` requests.
    pub cut_after: Option<u64>,
    /// How many requests are cut.
    pub cuts: usize,
    /// Ignore `Range` (always answer 200 with the whole file).
    pub ignore_range: bool,
}

/// A running file server; stops when dropped.
pub struct FileServer {
    base: String,
    seen: Arc<Mutex<Vec<SeenRequest>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FileServer {
    /// Start on 127.0.0.1 with a free port.
    pub async fn start(config: FileServerConfig) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let seen: Arc<Mutex<Vec<SeenRequest>>> = Arc::default();
        let seen_in_task = seen.clone();
        let task = tokio::spawn(async move {
            let served = Arc::new(Mutex::new(0usize));
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let config = config.clone();
                let seen = seen_in_task.clone();
                let served = served.clone();
                tokio::spawn(async move {
                    let _ = serve(stream, &config, &seen, &served).await;
                });
            }
        });
        Self { base, seen, task }
    }

    /// URL of the file (any path serves it).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.seen.lock().unwrap().clone()
    }
}

async fn serve(
    mut stream: TcpStream,
    config: &FileServerConfig,
    seen: &Mutex<Vec<SeenRequest>>,
    served: &Mutex<usize>,
) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await? == 0 {
            return Ok(());
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let method = request_line.next().unwrap_or_default().to_owned();
    let path = request_line.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let request = SeenRequest {
        method,
        path,
        headers,
    };
    let range_start = request
        .header("range")
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse::<u64>().ok())
        .filter(|_| !config.ignore_range);
    seen.lock().unwrap().push(request);
    let index = {
        let mut n = served.lock().unwrap();
        *n += 1;
        *n
    };

    let size = config.size;
    let (status, start) = match range_start {
        Some(start) if start >= size => {
            let head = format!(
                "HTTP/1.1 416 Range Not Satisfiable\r\ncontent-range: bytes */{size}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
            stream.write_all(head.as_bytes()).await?;
            return Ok(());
        }
        Some(start) => ("206 Partial Content", start),
        None => ("200 OK", 0),
    };
    let mut head = format!(
        "HTTP/1.1 {status}\r\ncontent-type: video/mp4\r\ncontent-length: {}\r\nconnection: close\r\n",
        size - start
    );
    if start > 0 {
        head.push_str(&format!(
            "content-range: bytes {start}-{}/{size}\r\n",
            size - 1
        ));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;

    let cut_at = config
        .cut_after
        .filter(|_| index <= config.cuts)
        .map(|n| (start + n).min(size));
    let end = cut_at.unwrap_or(size);
    let mut buf = vec![0u8; 64 * 1024];
    let mut pos = start;
    while pos < end {
        let n = ((end - pos) as usize).min(buf.len());
        for (i, b) in buf[..n].iter_mut().enumerate() {
            *b = content_byte(pos + i as u64);
        }
        stream.write_all(&buf[..n]).await?;
        pos += n as u64;
    }
    stream.flush().await?;
    // Dropping the stream closes the connection; when cut, mid-body.
    Ok(())
}
