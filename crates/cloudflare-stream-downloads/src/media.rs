//! Checking a downloaded MP4 or M4A file: its top-level boxes must tile it.
//!
//! A file of the ISO base media format (ISO/IEC 14496-12, which MP4 and
//! M4A are) is a sequence of boxes: a 4-byte big-endian size, a 4-byte
//! type, the content. Size 1 means a 64-bit size follows the type (an
//! `mdat` over 4 GiB); size 0 means "to the end of the file". The top-level
//! boxes of a whole file cover it exactly, so a file cut short leaves its
//! last box short, even when the server lied about the length. A file cut
//! exactly at a box boundary still tiles, which is why the file must also
//! start with `ftyp`, hold a `moov` (without which no player can read it; a
//! fragmented file has an empty one) and an `mdat`, and, for a progressive
//! (not fragmented) file, every chunk offset of the `moov` sample tables
//! (`stco`, `co64`) must point into an `mdat`.
//!
//! What it cannot see: a cut inside a to-the-end box (size 0), and a
//! fragmented file cut between whole fragments (a valid, shorter file).
//! Compare the size with `Content-Length` for those, as `fetch` does.
//!
//! Only the box headers and the `moov` are read: checking a file of several
//! GB takes a few reads.

use std::fmt;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// One top-level box.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopLevelBox {
    /// The four-character type, e.g. `*b"moov"`.
    pub kind: [u8; 4],
    /// Where the box starts.
    pub offset: u64,
    /// Its whole size, header included.
    pub size: u64,
}

impl TopLevelBox {
    /// The type as text (lossy).
    pub fn kind_str(&self) -> String {
        String::from_utf8_lossy(&self.kind).into_owned()
    }
}

impl fmt::Display for TopLevelBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind_str(), self.size)
    }
}

/// Why a file is not a whole MP4/M4A.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    /// The file could not be read.
    #[error("cannot read the file: {0}")]
    Io(#[from] std::io::Error),
    /// The file is empty.
    #[error("the file is empty")]
    Empty,
    /// A box header does not fit in what is left of the file.
    #[error("truncated: a box header at byte {offset} needs {needed} bytes, {left} are left")]
    TruncatedHeader {
        /// Where the header starts.
        offset: u64,
        /// Bytes the header needs (8, or 16 with a 64-bit size).
        needed: u64,
        /// Bytes left in the file.
        left: u64,
    },
    /// A box declares more bytes than the file holds.
    #[error(
        "truncated: the {} box at byte {} declares {} bytes, the file holds {} from there",
        String::from_utf8_lossy(kind),
        offset,
        size,
        left
    )]
    Truncated {
        /// Its type.
        kind: [u8; 4],
        /// Where it starts.
        offset: u64,
        /// Its declared size.
        size: u64,
        /// Bytes left in the file from `offset`.
        left: u64,
    },
    /// A box size smaller than its own header.
    #[error("invalid box size {size} at byte {offset}")]
    BadSize {
        /// Where the box starts.
        offset: u64,
        /// The size it declares.
        size: u64,
    },
    /// Not an ISO media file: an unreadable box type, no leading `ftyp`,
    /// or no `moov`.
    #[error("not a whole MP4/M4A file: {0}")]
    NotIsoMedia(String),
}

/// Check the file at `path` (see the module documentation); returns its
/// top-level boxes.
pub fn check_file(path: &Path) -> Result<Vec<TopLevelBox>, MediaError> {
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    check_boxes(&mut file, len)
}

/// Check `len` bytes of `reader` from its start.
pub fn check_boxes<R: Read + Seek>(
    reader: &mut R,
    len: u64,
) -> Result<Vec<TopLevelBox>, MediaError> {
    if len == 0 {
        return Err(MediaError::Empty);
    }
    let mut boxes = Vec::new();
    let mut offset = 0u64;
    while offset < len {
        let left = len - offset;
        if left < 8 {
            return Err(MediaError::TruncatedHeader {
                offset,
                needed: 8,
                left,
            });
        }
        reader.seek(SeekFrom::Start(offset))?;
        let mut header = [0u8; 8];
        reader.read_exact(&mut header)?;
        let size32 = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        let kind = [header[4], header[5], header[6], header[7]];
        if !kind.iter().all(|b| (0x20..=0x7e).contains(b) || *b == 0xa9) {
            return Err(MediaError::NotIsoMedia(format!(
                "the bytes at {offset} are not a box type ({kind:02x?})"
            )));
        }
        let size = match size32 {
            0 => left,
            1 => {
                if left < 16 {
                    return Err(MediaError::TruncatedHeader {
                        offset,
                        needed: 16,
                        left,
                    });
                }
                let mut large = [0u8; 8];
                reader.read_exact(&mut large)?;
                let size = u64::from_be_bytes(large);
                if size < 16 {
                    return Err(MediaError::BadSize { offset, size });
                }
                size
            }
            n if n < 8 => {
                return Err(MediaError::BadSize {
                    offset,
                    size: u64::from(n),
                });
            }
            n => u64::from(n),
        };
        if size > left {
            return Err(MediaError::Truncated {
                kind,
                offset,
                size,
                left,
            });
        }
        boxes.push(TopLevelBox { kind, offset, size });
        offset += size;
    }
    if boxes.first().map(|b| &b.kind) != Some(b"ftyp") {
        return Err(MediaError::NotIsoMedia(format!(
            "it starts with `{}`, not `ftyp`",
            boxes.first().map(TopLevelBox::kind_str).unwrap_or_default()
        )));
    }
    let Some(moov) = boxes.iter().find(|b| &b.kind == b"moov") else {
        return Err(MediaError::NotIsoMedia(
            "no `moov` box (cut at a box boundary?)".into(),
        ));
    };
    let mdats: Vec<(u64, u64)> = boxes
        .iter()
        .filter(|b| &b.kind == b"mdat")
        .map(|b| (b.offset, b.offset + b.size))
        .collect();
    if mdats.is_empty() {
        return Err(MediaError::NotIsoMedia(
            "no `mdat` box: no media data (cut at a box boundary?)".into(),
        ));
    }
    // A progressive file's sample tables point into its media data: every
    // chunk offset must lie inside an `mdat`, or the file was cut (or
    // rearranged) after its `moov` was written. Fragmented files keep
    // their sample tables in each `moof` instead.
    if !boxes.iter().any(|b| &b.kind == b"moof") && moov.size <= MAX_MOOV {
        reader.seek(SeekFrom::Start(moov.offset))?;
        let mut bytes = vec![0u8; moov.size as usize];
        reader.read_exact(&mut bytes)?;
        let header = if bytes.get(..4) == Some(&[0, 0, 0, 1]) {
            16
        } else {
            8
        };
        let mut offsets = Vec::new();
        chunk_offsets(&bytes[header.min(bytes.len())..], 0, &mut offsets);
        if let Some(outside) = offsets
            .iter()
            .find(|o| !mdats.iter().any(|(start, end)| **o >= *start && **o < *end))
        {
            return Err(MediaError::NotIsoMedia(format!(
                "a chunk of the `moov` sample tables starts at byte {outside}, outside the media \
                 data (the file is {len} bytes)"
            )));
        }
    }
    Ok(boxes)
}

/// Largest `moov` read for the chunk-offset check (a long video's sample
/// tables are a few MB).
const MAX_MOOV: u64 = 64 * 1024 * 1024;

/// The chunk offsets (`stco`, `co64`) in the boxes of `data`, descending
/// into the containers on the way to them.
fn chunk_offsets(data: &[u8], depth: u32, out: &mut Vec<u64>) {
    const CONTAINERS: [&[u8; 4]; 5] = [b"trak", b"mdia", b"minf", b"stbl", b"edts"];
    let mut at = 0usize;
    while at + 8 <= data.len() && depth < 8 {
        let size =
            u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]) as usize;
        let kind = &data[at + 4..at + 8];
        let (header, size) = match size {
            0 => (8, data.len() - at),
            1 if at + 16 <= data.len() => {
                let mut large = [0u8; 8];
                large.copy_from_slice(&data[at + 8..at + 16]);
                (
                    16,
                    usize::try_from(u64::from_be_bytes(large)).unwrap_or(usize::MAX),
                )
            }
            n => (8, n),
        };
        if size < header || size > data.len() - at {
            return;
        }
        let body = &data[at + header..at + size];
        if CONTAINERS.iter().any(|c| c.as_slice() == kind) {
            chunk_offsets(body, depth + 1, out);
        } else if kind == b"stco" || kind == b"co64" {
            let width = if kind == b"stco" { 4 } else { 8 };
            if body.len() >= 8 {
                let count = u32::from_be_bytes([body[4], body[5], body[6], body[7]]) as usize;
                for entry in body[8..].chunks_exact(width).take(count) {
                    out.push(if width == 4 {
                        u64::from(u32::from_be_bytes([entry[0], entry[1], entry[2], entry[3]]))
                    } else {
                        let mut v = [0u8; 8];
                        v.copy_from_slice(entry);
                        u64::from_be_bytes(v)
                    });
                }
            }
        }
        at += size;
    }
}
