//! The file state machine, and the SQLite store that applies it, under
//! arbitrary sequences of events, with the database closed and reopened
//! (a crash) at arbitrary points: no sequence loses a done file or marks an
//! unverified one done, and the store always agrees with the pure machine.

use cfstream_export::machine::{Event, FileState};
use cfstream_export::state::{SCHEMA_VERSION, Store};
use cloudflare_stream_downloads::types::DownloadType;
use proptest::prelude::*;

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        (0.0f64..100.0).prop_map(|percent| Event::Created { percent }),
        (0u8..3).prop_map(|i| Event::Ready {
            url: format!("https://dl.example/{i}.mp4")
        }),
        (1u64..4).prop_map(|size| Event::Fetched { size }),
        ((1u64..4), (0u8..3)).prop_map(|(size, h)| Event::Verified {
            size,
            sha256: format!("{h:064x}")
        }),
        "[a-z ]{0,12}".prop_map(|reason| Event::Failed { reason }),
        Just(Event::Retry),
        Just(Event::Vanished),
    ]
}

/// A step: an event on one of two files, or a reopen of the database.
#[derive(Debug, Clone)]
enum Step {
    Apply(bool, Event),
    Reopen,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => (any::<bool>(), event()).prop_map(|(audio, e)| Step::Apply(audio, e)),
        1 => Just(Step::Reopen),
    ]
}

const UID: &str = "ea95132c15732412d22c1476fa83f27a";

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn the_store_follows_the_machine_and_never_loses_done(steps in prop::collection::vec(step(), 1..60)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.sqlite");
        let mut store = Store::open(&path).unwrap();
        let run = store.begin_run("{}").unwrap();
        let kinds = [DownloadType::Default, DownloadType::Audio];
        store.select(run, &[(UID.to_owned(), None)], &kinds).unwrap();
        let mut model = [FileState::Selected, FileState::Selected];
        for step in steps {
            match step {
                Step::Reopen => {
                    drop(store);
                    store = Store::open(&path).unwrap();
                }
                Step::Apply(audio, event) => {
                    let i = usize::from(audio);
                    let before = model[i].clone();
                    let stored = store.apply(UID, kinds[i], &event);
                    match before.apply(&event) {
                        Ok(next) => {
                            prop_assert_eq!(stored.unwrap(), next.clone());
                            // Done only from fetched, by a verification of that size.
                            if next.is_done() && !before.is_done() {
                                let fetched = matches!(before, FileState::Fetched { size, .. }
                                    if matches!(event, Event::Verified { size: v, .. } if v == size));
                                prop_assert!(fetched, "{:?} --{:?}--> done", before, event);
                            }
                            // Done is left only when the file is gone from disk.
                            if before.is_done() && !next.is_done() {
                                prop_assert_eq!(&event, &Event::Vanished);
                            }
                            model[i] = next;
                        }
                        Err(_) => {
                            prop_assert!(stored.is_err(), "the store took an illegal {:?} on {:?}", event, before);
                        }
                    }
                }
            }
            // What the database holds is the model, after any step.
            for (i, kind) in kinds.iter().enumerate() {
                prop_assert_eq!(store.file(UID, *kind).unwrap(), Some(model[i].clone()));
            }
        }
    }
}

#[test]
fn a_newer_database_is_refused_and_an_old_one_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.sqlite");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
    }
    let err = Store::open(&path).unwrap_err().to_string();
    assert!(err.contains("newer cfstream"), "{err}");
    assert!(err.contains("state.sqlite"), "{err}");
    // Version 0 (an empty file) is migrated to the current version.
    let fresh = dir.path().join("fresh.sqlite");
    drop(Store::open(&fresh).unwrap());
    let conn = rusqlite::Connection::open(&fresh).unwrap();
    let v: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(v, SCHEMA_VERSION);
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn a_row_it_cannot_read_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.sqlite");
    let store = Store::open(&path).unwrap();
    let run = store.begin_run("{}").unwrap();
    store
        .select(run, &[(UID.to_owned(), None)], &[DownloadType::Default])
        .unwrap();
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute("UPDATE files SET state = 'done'", []).unwrap();
    }
    let err = store
        .apply(UID, DownloadType::Default, &Event::Vanished)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(UID) && err.contains("done without url"),
        "{err}"
    );
}
