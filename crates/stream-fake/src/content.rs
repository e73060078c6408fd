//! The bytes of every served file: deterministic, produced on the fly.
//!
//! Byte `i` is `PATTERN[i % PERIOD]`, a pseudo-random table whose prime
//! length does not line up with chunk or buffer sizes, so a lost, repeated
//! or shifted block changes what a checker sees.

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

/// Check that `data` is exactly the served file's bytes from `offset`;
/// returns the index of the first wrong byte.
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
