//! Hosts that cannot answer, for the failure paths of a client: one that
//! refuses connections, and one that accepts them and never says a word.

/// `http://127.0.0.1:PORT` on a loopback port nothing listens on (bound,
/// then closed: a connection is refused).
pub fn refusing_host() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(9);
    format!("http://127.0.0.1:{port}")
}

/// `http://127.0.0.1:PORT` of a listener that accepts every connection
/// and never answers (a thread holds them open until the process ends).
pub fn silent_host() -> std::io::Result<String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://{}", listener.local_addr()?);
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    Ok(url)
}
