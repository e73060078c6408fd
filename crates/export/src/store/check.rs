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

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;

    /// A reader over `bytes` stored in memory under `key`.
    async fn reader(bytes: Vec<u8>) -> RangeReader {
        let store: Arc<dyn object_store::ObjectStore> = Arc::new(InMemory::new());
        let key = ObjectPath::from("v.mp4");
        let len = bytes.len() as u64;
        store.put(&key, bytes.into()).await.unwrap();
        RangeReader {
            store,
            key,
            len,
            pos: 0,
            buf: Bytes::new(),
            buf_start: 0,
            runtime: tokio::runtime::Handle::current(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ranged_reads_give_the_objects_bytes_wherever_they_seek() {
        // Past one 256 KiB range, so a read crosses ranges.
        let bytes: Vec<u8> = (0..700_000u32).map(|i| (i % 251) as u8).collect();
        let mut r = reader(bytes.clone()).await;
        tokio::task::spawn_blocking(move || {
            let mut all = Vec::new();
            r.read_to_end(&mut all).unwrap();
            assert_eq!(all, bytes);
            assert_eq!(r.read(&mut [0u8; 8]).unwrap(), 0, "past the end");
            let mut ten = [0u8; 10];
            r.seek(SeekFrom::Start(300_000)).unwrap();
            r.read_exact(&mut ten).unwrap();
            assert_eq!(ten[..], bytes[300_000..300_010]);
            r.seek(SeekFrom::End(-5)).unwrap();
            let mut tail = Vec::new();
            r.read_to_end(&mut tail).unwrap();
            assert_eq!(tail, bytes[bytes.len() - 5..]);
            r.seek(SeekFrom::Current(-700_000)).unwrap();
            r.read_exact(&mut ten).unwrap();
            assert_eq!(ten[..], bytes[..10], "a seek back before the buffer");
        })
        .await
        .unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_box_check_reads_a_real_mp4_from_the_store_and_refuses_it_cut() {
        let mp4 = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../cloudflare-stream-downloads/tests/media/video-moov-at-end.mp4"
        ))
        .unwrap();
        let size = mp4.len() as u64;
        let mut whole = reader(mp4.clone()).await;
        let mut cut = reader(mp4[..mp4.len() * 2 / 3].to_vec()).await;
        tokio::task::spawn_blocking(move || {
            assert!(media::check_boxes(&mut whole, size).is_ok());
            let cut_len = cut.len;
            assert!(media::check_boxes(&mut cut, cut_len).is_err());
        })
        .await
        .unwrap();
    }
}
