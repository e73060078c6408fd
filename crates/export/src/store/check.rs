//! The check of an uploaded object: its size, and its top-level MP4 boxes
//! read back by ranged reads (the SHA-256 from the stream, or read back for
//! a continued upload).

use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;

use bytes::Bytes;
use cloudflare_stream_downloads::media;
use futures_util::StreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path as ObjectPath;
use sha2::{Digest, Sha256};

use super::hex;
use crate::dest::ObjectDest;
use crate::error::ExportError;

impl ObjectDest {
    /// Checks the object `name` after its upload: its size is `size`, its
    /// top-level boxes tile it ([`media::check_boxes`], reading only box
    /// headers and the `moov`), and its SHA-256 (`sha256`, else read back
    /// whole). Returns the SHA-256, or why the object is wrong.
    pub(crate) async fn check_object(
        &self,
        name: &str,
        size: u64,
        sha256: Option<String>,
    ) -> Result<Result<String, String>, ExportError> {
        let key = self.key(name);
        let meta = match self.store.head(&key).await {
            Ok(meta) => meta,
            Err(object_store::Error::NotFound { .. }) => {
                return Ok(Err("the object is missing".into()));
            }
            Err(e) => return Err(self.error(format!("reading {key}"), e)),
        };
        if meta.size != size {
            return Ok(Err(format!(
                "the object holds {} bytes, not {size}",
                meta.size
            )));
        }
        let reader = RangeReader {
            store: self.store.clone(),
            key: key.clone(),
            len: size,
            pos: 0,
            buf: Bytes::new(),
            buf_start: 0,
            runtime: tokio::runtime::Handle::current(),
        };
        let boxes = tokio::task::spawn_blocking(move || {
            let mut reader = reader;
            media::check_boxes(&mut reader, size)
                .map(drop)
                .map_err(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|e| Err(format!("checker panicked: {e}")));
        if let Err(why) = boxes {
            return Ok(Err(why));
        }
        if let Some(sha) = sha256 {
            return Ok(Ok(sha));
        }
        let got = self
            .store
            .get(&key)
            .await
            .map_err(|e| self.error(format!("reading {key}"), e))?;
        let mut stream = got.into_stream();
        let mut hasher = Sha256::new();
        let mut read = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| self.error(format!("reading {key}"), e))?;
            read += chunk.len() as u64;
            hasher.update(&chunk);
        }
        if read != size {
            return Ok(Err(format!("read back {read} bytes, not {size}")));
        }
        Ok(Ok(hex(&hasher.finalize())))
    }
}

/// `Read + Seek` over an object, by ranged reads of 256 KiB (for the box
/// check, which reads box headers and the `moov` only). Runs on a blocking
/// thread.
struct RangeReader {
    store: Arc<dyn object_store::ObjectStore>,
    key: ObjectPath,
    len: u64,
    pos: u64,
    buf: Bytes,
    buf_start: u64,
    runtime: tokio::runtime::Handle,
}

impl Read for RangeReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.len || out.is_empty() {
            return Ok(0);
        }
        let in_buf =
            self.pos >= self.buf_start && self.pos < self.buf_start + self.buf.len() as u64;
        if !in_buf {
            let end = (self.pos + (256 << 10)).min(self.len);
            let bytes = self
                .runtime
                .block_on(self.store.get_range(&self.key, self.pos..end))
                .map_err(std::io::Error::other)?;
            self.buf = bytes;
            self.buf_start = self.pos;
        }
        let at = (self.pos - self.buf_start) as usize;
        let n = out.len().min(self.buf.len() - at);
        out[..n].copy_from_slice(&self.buf[at..at + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for RangeReader {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        self.pos = match to {
            SeekFrom::Start(p) => p,
            SeekFrom::End(d) => self.len.saturating_add_signed(d),
            SeekFrom::Current(d) => self.pos.saturating_add_signed(d),
        };
        Ok(self.pos)
    }
}
