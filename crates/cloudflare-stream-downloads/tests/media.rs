//! `media::check_boxes` on real muxer-made files (`tests/media/`, made by
//! FFmpeg) and on every way of cutting them: each whole file passes with
//! its exact box list; every truncation fails; 64-bit and to-the-end box
//! sizes are read; random bytes are refused.

use std::io::Cursor;
use std::path::PathBuf;

use cloudflare_stream_downloads::media::{MediaError, check_boxes, check_file};

fn media(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/media")
        .join(name)
}

fn check(bytes: &[u8]) -> Result<Vec<(String, u64)>, MediaError> {
    check_boxes(&mut Cursor::new(bytes), bytes.len() as u64)
        .map(|boxes| boxes.iter().map(|b| (b.kind_str(), b.size)).collect())
}

const FILES: [(&str, &[(&str, u64)]); 4] = [
    (
        "video-faststart.mp4",
        &[("ftyp", 32), ("moov", 1873), ("free", 8), ("mdat", 21475)],
    ),
    (
        "video-moov-at-end.mp4",
        &[("ftyp", 32), ("free", 8), ("mdat", 21475), ("moov", 1873)],
    ),
    (
        "fragmented.mp4",
        &[
            ("ftyp", 36),
            ("moov", 1243),
            ("moof", 716),
            ("mdat", 21475),
            ("mfra", 110),
        ],
    ),
    (
        "audio.m4a",
        &[("ftyp", 28), ("free", 8), ("mdat", 8405), ("moov", 943)],
    ),
];

#[test]
fn whole_files_pass_with_their_boxes() {
    for (name, want) in FILES {
        let boxes = check_file(&media(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let got: Vec<(String, u64)> = boxes.iter().map(|b| (b.kind_str(), b.size)).collect();
        let want: Vec<(String, u64)> = want.iter().map(|(k, s)| ((*k).to_owned(), *s)).collect();
        assert_eq!(got, want, "{name}");
        let mut offset = 0;
        for b in &boxes {
            assert_eq!(b.offset, offset);
            offset += b.size;
        }
        assert_eq!(offset, std::fs::metadata(media(name)).unwrap().len());
    }
}

#[test]
fn every_truncation_fails() {
    for (name, _) in FILES {
        let bytes = std::fs::read(media(name)).unwrap();
        for cut in 0..bytes.len() {
            // A fragmented file cut right before its optional trailing
            // `mfra` (random-access index) is a valid, shorter file: only
            // the length check can tell.
            if name == "fragmented.mp4" && cut == bytes.len() - 110 {
                assert!(check(&bytes[..cut]).is_ok());
                continue;
            }
            let result = check(&bytes[..cut]);
            assert!(
                result.is_err(),
                "{name} cut at {cut} of {} passed: {result:?}",
                bytes.len()
            );
        }
    }
}

#[test]
fn a_moov_pointing_outside_the_media_data_fails() {
    // The faststart file (ftyp 32, moov 1873, free 8, mdat 21475) with its
    // mdat cut short by 4 KiB and re-declared at that size: the boxes tile,
    // but the last chunks of the sample tables point past the media data.
    let bytes = std::fs::read(media("video-faststart.mp4")).unwrap();
    let mdat = 32 + 1873 + 8;
    let short = 21475u32 - 4096;
    let mut cut = bytes[..mdat].to_vec();
    cut.extend_from_slice(&short.to_be_bytes());
    cut.extend_from_slice(&bytes[mdat + 4..mdat + short as usize]);
    let err = check(&cut).unwrap_err();
    assert!(err.to_string().contains("outside the media data"), "{err}");
}

#[test]
fn a_file_cut_at_a_box_boundary_without_moov_fails() {
    // moov at the end: cutting it off leaves boxes that tile, without moov.
    let bytes = std::fs::read(media("video-moov-at-end.mp4")).unwrap();
    let err = check(&bytes[..bytes.len() - 1873]).unwrap_err();
    assert!(err.to_string().contains("no `moov`"), "{err}");
}

/// The same file with its `mdat` header rewritten to a 64-bit size.
fn with_large_mdat(name: &str) -> Vec<u8> {
    let bytes = std::fs::read(media(name)).unwrap();
    let boxes = check_file(&media(name)).unwrap();
    let mdat = boxes.iter().find(|b| &b.kind == b"mdat").unwrap();
    let (start, end) = (mdat.offset as usize, (mdat.offset + mdat.size) as usize);
    let mut out = bytes[..start].to_vec();
    out.extend_from_slice(&1u32.to_be_bytes());
    out.extend_from_slice(b"mdat");
    out.extend_from_slice(&(mdat.size + 8).to_be_bytes());
    out.extend_from_slice(&bytes[start + 8..end]);
    out.extend_from_slice(&bytes[end..]);
    out
}

#[test]
fn sixty_four_bit_sizes_are_read_and_their_truncations_fail() {
    for name in ["video-faststart.mp4", "audio.m4a"] {
        let bytes = with_large_mdat(name);
        let boxes = check(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(boxes.iter().any(|(k, _)| k == "mdat"), "{boxes:?}");
        for cut in 0..bytes.len() {
            assert!(
                check(&bytes[..cut]).is_err(),
                "{name} (64-bit mdat) cut at {cut} passed"
            );
        }
    }
}

#[test]
fn a_to_the_end_box_covers_the_rest() {
    // The faststart file ends with mdat: size 0 means "to the end".
    let mut bytes = std::fs::read(media("video-faststart.mp4")).unwrap();
    let mdat = bytes.len() - 21475;
    bytes[mdat..mdat + 4].copy_from_slice(&0u32.to_be_bytes());
    let boxes = check(&bytes).unwrap();
    assert_eq!(boxes.last().unwrap(), &("mdat".to_owned(), 21475));
    // Cut anywhere inside it, a to-the-end box still "fits": that is why
    // the size is checked against Content-Length before this check; cut
    // into the boxes before it, it fails.
    assert!(check(&bytes[..mdat + 4]).is_err());
    assert!(check(&bytes[..mdat - 1]).is_err());
}

#[test]
fn random_bytes_and_bad_sizes_are_refused() {
    let noise: Vec<u8> = (0..5000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    assert!(matches!(
        check(&noise),
        Err(MediaError::NotIsoMedia(_) | MediaError::Truncated { .. } | MediaError::BadSize { .. })
    ));
    assert!(matches!(check(&[]), Err(MediaError::Empty)));
    let mut bytes = std::fs::read(media("audio.m4a")).unwrap();
    bytes[28..32].copy_from_slice(&4u32.to_be_bytes()); // `free` of size 4
    assert!(matches!(
        check(&bytes),
        Err(MediaError::BadSize {
            offset: 28,
            size: 4
        })
    ));
    // Not starting with ftyp.
    let bytes = std::fs::read(media("audio.m4a")).unwrap();
    let err = check(&bytes[28..]).unwrap_err();
    assert!(err.to_string().contains("not `ftyp`"), "{err}");
}

proptest::proptest! {
    /// Any bytes: an answer, never a panic; and a file that passes tiles.
    #[test]
    fn any_bytes_give_an_answer(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..4096), start_real: bool) {
        let mut data = if start_real {
            std::fs::read(media("audio.m4a")).unwrap()[..64].to_vec()
        } else {
            Vec::new()
        };
        data.extend_from_slice(&bytes);
        if let Ok(boxes) = check(&data) {
            let total: u64 = boxes.iter().map(|(_, s)| s).sum();
            proptest::prop_assert_eq!(total, data.len() as u64);
        }
    }
}
