//! Where an upload's bytes come from: a video's file on the download host,
//! asked again (from the byte where it stopped) when it fails.

use cloudflare_stream_downloads::{Client, Error, Signing};

/// Where an upload's bytes come from: a video's file on the download host.
#[derive(Clone, Copy)]
pub(crate) struct Source<'a> {
    /// The client that opens it.
    pub client: &'a Client,
    /// The video.
    pub video_id: &'a str,
    /// Its download URL (unsigned).
    pub url: &'a str,
    /// Whether the URL needs a token.
    pub signing: Signing,
}

/// Times the download host is asked again, inside one upload attempt,
/// after an answer worth retrying (429, 5xx, no connection, a timeout) or
/// a body cut short: each time from the byte where the last one stopped.
pub(crate) const SOURCE_RETRIES: u32 = 3;

/// The wait before the `n`-th retry (from 0): 250 ms, doubling.
pub(super) fn source_backoff(n: u32) -> std::time::Duration {
    std::time::Duration::from_millis(250 << n.min(4))
}

impl Source<'_> {
    /// The file from byte `from` ([`Client::open_video_url`]), asked again
    /// up to `retries` times (each one spent) while the answer is worth
    /// retrying; a 429's `Retry-After` is waited out when it is short.
    pub(crate) async fn open(
        &self,
        from: u64,
        validator: Option<&str>,
        retries: &mut u32,
    ) -> Result<cloudflare_stream_downloads::FileStream, Error> {
        loop {
            match self
                .client
                .open_video_url(self.video_id, self.url, self.signing, from, validator)
                .await
            {
                Ok(body) => return Ok(body),
                Err(e) if e.is_retryable() && *retries > 0 => {
                    let n = SOURCE_RETRIES - *retries;
                    *retries -= 1;
                    let wait = e
                        .retry_after()
                        .filter(|w| *w <= std::time::Duration::from_secs(10))
                        .unwrap_or_else(|| source_backoff(n));
                    tracing::info!(video = self.video_id, error = %e, from, wait_ms = wait.as_millis() as u64, "the download host failed; asking again");
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_waits_double_from_a_quarter_second_and_stay_bounded() {
        let waits: Vec<u64> = (0..SOURCE_RETRIES + 3)
            .map(|n| source_backoff(n).as_millis() as u64)
            .collect();
        assert_eq!(waits[..3], [250, 500, 1000]);
        assert!(waits.iter().all(|w| *w <= 4000), "{waits:?}");
    }
}
