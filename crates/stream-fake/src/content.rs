//! The bytes of every served file: deterministic, produced on the fly.
//!
//! A file ([`FileContent`]) is a well-formed ISO media file at the top
//! level, like the MP4/M4A files Stream serves: `ftyp`, a minimal `moov`
//! whose one chunk offset points into the media data, then `mdat` (with a
//! 64-bit size when over 4 GiB) filling the rest. The media data is the
//! pattern below, starting at a per-file shift, so different videos and
//! types hold different bytes. Files under [`MIN_BOX_FILE`] bytes are
//! pattern bytes only.
//!
//! Pattern byte `i` is `PATTERN[i % PERIOD]`, a pseudo-random table whose
//! prime length does not line up with chunk or buffer sizes, so a lost,
//! repeated or shifted block changes what a checker sees.

use std::sync::OnceLock;

use bytes::Bytes;

/// Length of the repeating pattern (a prime).
pub const PERIOD: usize = 65_521;

fn pattern() -> &'static [u8] {
    static PATTERN: OnceLock<Vec<u8>> = OnceLock::new();
    PATTERN.get_or_init(|| {
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        (0..PERIOD)
            .map(|_| {
                // xorshift64*
                state ^= state >> 12;
                state ^= state << 25;
                state ^= state >> 27;
                (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
            })
            .collect()
    })
}

/// Where in the pattern the file `/{video}/downloads/{file}` starts, so
/// that different files hold different bytes (a `.part` of one video is
/// not a prefix of another's). Byte `i` of that file is
/// `byte(shift(video, file) + i)`.
pub fn shift(video: &str, file: &str) -> u64 {
    // FNV-1a.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in video.bytes().chain([b'/']).chain(file.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h % PERIOD as u64
}

/// Byte `i` of the pattern.
pub fn byte(i: u64) -> u8 {
    pattern()[(i % PERIOD as u64) as usize]
}

/// `len` bytes of a served file starting at `offset`.
pub fn chunk(offset: u64, len: usize) -> Bytes {
    let pattern = pattern();
    let mut out = Vec::with_capacity(len);
    let mut pos = (offset % PERIOD as u64) as usize;
    while out.len() < len {
        let n = (len - out.len()).min(PERIOD - pos);
        out.extend_from_slice(&pattern[pos..pos + n]);
        pos = 0;
    }
    Bytes::from(out)
}

/// Smallest file served with box structure.
pub const MIN_BOX_FILE: u64 = 128;

/// The file `/{video}/downloads/{file}` of `size` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileContent {
    shift: u64,
    size: u64,
    header: Vec<u8>,
}

impl FileContent {
    /// The file the fake serves for `video`, `file` (`default.mp4`,
    /// `audio.m4a`) and `size`.
    pub fn new(video: &str, file: &str, size: u64) -> Self {
        Self {
            shift: shift(video, file),
            size,
            header: if size >= MIN_BOX_FILE {
                box_header(size, file.ends_with(".m4a"))
            } else {
                Vec::new()
            },
        }
    }

    /// Its size.
    pub fn len(&self) -> u64 {
        self.size
    }

    /// True for an empty file.
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// The bytes from `offset` (at most to the end of the file).
    pub fn chunk(&self, offset: u64, len: usize) -> Bytes {
        let end = (offset + len as u64).min(self.size);
        if offset >= end {
            return Bytes::new();
        }
        let head = self.header.len() as u64;
        if offset >= head {
            return chunk(self.shift + offset, (end - offset) as usize);
        }
        let mut out = self.header[offset as usize..head.min(end) as usize].to_vec();
        if end > head {
            out.extend_from_slice(&chunk(self.shift + head, (end - head) as usize));
        }
        Bytes::from(out)
    }

    /// The index in `data` of the first byte that differs from the file's
    /// bytes at `offset`.
    pub fn first_mismatch(&self, offset: u64, data: &[u8]) -> Option<usize> {
        let expected = self.chunk(offset, data.len());
        if expected.len() < data.len() {
            return Some(expected.len());
        }
        data.iter().zip(expected.iter()).position(|(a, b)| a != b)
    }
}

/// `ftyp`, a `moov` with one `stco` entry pointing at the media data, and
/// the `mdat` header, for a file of `size` bytes.
fn box_header(size: u64, audio: bool) -> Vec<u8> {
    fn put_box(out: &mut Vec<u8>, size: u32, kind: &[u8; 4]) {
        out.extend_from_slice(&size.to_be_bytes());
        out.extend_from_slice(kind);
    }
    let mut out = Vec::with_capacity(100);
    put_box(&mut out, 24, b"ftyp");
    out.extend_from_slice(if audio { b"M4A " } else { b"isom" });
    out.extend_from_slice(&512u32.to_be_bytes());
    out.extend_from_slice(b"isommp41");
    // moov > trak > mdia > minf > stbl > stco (one chunk).
    let ftyp_moov = 24 + 60;
    let mdat_size = size - ftyp_moov;
    let mdat_header = if mdat_size > u64::from(u32::MAX) {
        16
    } else {
        8
    };
    for (size, kind) in [
        (60, b"moov"),
        (52, b"trak"),
        (44, b"mdia"),
        (36, b"minf"),
        (28, b"stbl"),
    ] {
        put_box(&mut out, size, kind);
    }
    put_box(&mut out, 20, b"stco");
    out.extend_from_slice(&0u32.to_be_bytes()); // version, flags
    out.extend_from_slice(&1u32.to_be_bytes()); // one entry
    out.extend_from_slice(&((ftyp_moov + mdat_header) as u32).to_be_bytes());
    if mdat_header == 16 {
        put_box(&mut out, 1, b"mdat");
        out.extend_from_slice(&mdat_size.to_be_bytes());
    } else {
        put_box(&mut out, mdat_size as u32, b"mdat");
    }
    out
}

/// Check that `data` is exactly the pattern from `offset`; returns the
/// index of the first wrong byte.
pub fn first_mismatch(offset: u64, data: &[u8]) -> Option<usize> {
    data.iter()
        .enumerate()
        .find(|(i, b)| **b != byte(offset + *i as u64))
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_agree_with_bytes_across_the_period() {
        let c = chunk(PERIOD as u64 - 10, 100);
        for (i, b) in c.iter().enumerate() {
            assert_eq!(*b, byte(PERIOD as u64 - 10 + i as u64));
        }
        assert_eq!(first_mismatch(5, &chunk(5, 200_000)), None);
        let mut bad = chunk(0, 1000).to_vec();
        bad[700] ^= 1;
        assert_eq!(first_mismatch(0, &bad), Some(700));
    }
}
