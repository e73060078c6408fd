//! The run's state: an embedded SQLite database, `DIR/cfstream-export.sqlite`.
//!
//! Schema (version 4; `PRAGMA user_version` holds the version and
//! [`Store::open`] migrates older files forward, refusing newer ones):
//!
//! ```sql
//! CREATE TABLE runs (
//!     id          INTEGER PRIMARY KEY,
//!     started_at  TEXT NOT NULL,          -- RFC 3339, UTC
//!     finished_at TEXT,                   -- NULL: killed, or still running
//!     selection   TEXT NOT NULL,          -- the run's options, JSON
//!     summary     TEXT                    -- the final summary, JSON
//! );
//! CREATE TABLE videos (
//!     uid          TEXT PRIMARY KEY,
//!     listed       TEXT,                  -- the video's JSON as the listing sent it
//!                                         -- (NULL when selected by id)
//!     run          INTEGER NOT NULL REFERENCES runs(id),  -- last run that selected it
//!     api_requests INTEGER NOT NULL DEFAULT 0  -- API requests made for it, all runs
//! );
//! CREATE TABLE files (
//!     uid        TEXT NOT NULL REFERENCES videos(uid),
//!     type       TEXT NOT NULL CHECK (type IN ('default', 'audio')),
//!     state      TEXT NOT NULL CHECK (state IN
//!                  ('selected', 'created', 'ready', 'fetched', 'done', 'failed')),
//!     percent    REAL,                    -- last percentComplete (created)
//!     url        TEXT,                    -- download URL (ready, fetched, done)
//!     size       INTEGER,                 -- bytes (fetched, done)
//!     sha256     TEXT,                    -- lowercase hex (done)
//!     reason     TEXT,                    -- why it failed (failed)
//!     updated_at TEXT NOT NULL,
//!     PRIMARY KEY (uid, type)
//! );
//! CREATE INDEX files_by_state ON files (state);
//! -- version 2: object-store destinations
//! CREATE TABLE uploads (                  -- multipart uploads in flight
//!     key        TEXT PRIMARY KEY,        -- the object's key
//!     upload_id  TEXT NOT NULL,
//!     part_size  INTEGER NOT NULL,        -- every part but the last
//!     total      INTEGER,                 -- the file's size, when known
//!     validator  TEXT                     -- the download host's ETag or Last-Modified
//! );
//! CREATE TABLE parts (                    -- their finished parts
//!     key        TEXT NOT NULL REFERENCES uploads(key) ON DELETE CASCADE,
//!     idx        INTEGER NOT NULL,        -- 0-based
//!     content_id TEXT NOT NULL,           -- what completing the upload needs (ETag)
//!     size       INTEGER NOT NULL,
//!     PRIMARY KEY (key, idx)
//! );
//! CREATE TABLE objects (                  -- the destination as listed at the run's
//!     key  TEXT PRIMARY KEY,              -- start, plus the objects written since
//!     size INTEGER NOT NULL
//! );
//! -- version 3: how each file's download was found
//! ALTER TABLE files ADD COLUMN found TEXT
//!     CHECK (found IN ('existing', 'created'));  -- on the download host, or by a create
//! -- version 4: captions and additional audio tracks
//! ALTER TABLE videos ADD COLUMN extras TEXT;  -- JSON of crate::extras::Extras
//!                                             -- (NULL: not looked at yet)
//! ```
//!
//! The database is in WAL mode with `synchronous = FULL`: every state change
//! is its own committed transaction, durable before the next step starts,
//! so a `kill -9` or a power cut loses nothing but the bytes of transfers in
//! flight. Each change goes through [`FileState::apply`], so the file's
//! state machine holds in the database too. Reading it while an export
//! runs is safe (`sqlite3 DIR/cfstream-export.sqlite 'select state,
//! count(*) from files group by state'`).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use cloudflare_stream_downloads::types::DownloadType;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use crate::error::ExportError;
use crate::machine::{Event, FileState};

/// Name of the state database inside the export directory.
pub const STATE_FILE: &str = "cfstream-export.sqlite";

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = 4;

/// Migrations: entry `i` takes a database from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    "
CREATE TABLE runs (
    id          INTEGER PRIMARY KEY,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    selection   TEXT NOT NULL,
    summary     TEXT
);
CREATE TABLE videos (
    uid          TEXT PRIMARY KEY,
    listed       TEXT,
    run          INTEGER NOT NULL REFERENCES runs(id),
    api_requests INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE files (
    uid        TEXT NOT NULL REFERENCES videos(uid),
    type       TEXT NOT NULL CHECK (type IN ('default', 'audio')),
    state      TEXT NOT NULL CHECK (state IN
                 ('selected', 'created', 'ready', 'fetched', 'done', 'failed')),
    percent    REAL,
    url        TEXT,
    size       INTEGER,
    sha256     TEXT,
    reason     TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (uid, type)
);
CREATE INDEX files_by_state ON files (state);
",
    "
CREATE TABLE uploads (
    key        TEXT PRIMARY KEY,
    upload_id  TEXT NOT NULL,
    part_size  INTEGER NOT NULL,
    total      INTEGER,
    validator  TEXT
);
CREATE TABLE parts (
    key        TEXT NOT NULL REFERENCES uploads(key) ON DELETE CASCADE,
    idx        INTEGER NOT NULL,
    content_id TEXT NOT NULL,
    size       INTEGER NOT NULL,
    PRIMARY KEY (key, idx)
);
CREATE TABLE objects (
    key  TEXT PRIMARY KEY,
    size INTEGER NOT NULL
);
",
    "
ALTER TABLE files ADD COLUMN found TEXT CHECK (found IN ('existing', 'created'));
",
    "
ALTER TABLE videos ADD COLUMN extras TEXT;
",
];

/// One video as the state has it.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoRow {
    /// Its id.
    pub uid: String,
    /// Its JSON as listed, when it came from the listing.
    pub listed: Option<String>,
    /// Its files, in the order `default`, `audio` (only those selected at
    /// some run).
    pub files: Vec<(DownloadType, FileState)>,
    /// Its captions and additional audio tracks as last recorded (JSON of
    /// [`crate::extras::Extras`]); `None` before any run looked.
    pub extras: Option<String>,
}

/// A multipart upload in flight (object-store destinations).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    /// The object's key.
    pub key: String,
    /// The store's id of the upload.
    pub upload_id: String,
    /// The size of every part but the last.
    pub part_size: u64,
    /// The file's size, when the download host said it.
    pub total: Option<u64>,
    /// The download host's validator (`If-Range` when continuing).
    pub validator: Option<String>,
}

/// A finished part of an [`Upload`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// Its index, from 0.
    pub idx: u64,
    /// What completing the upload needs of it (the store's ETag, and the
    /// checksum it verified).
    pub content_id: String,
    /// Its size.
    pub size: u64,
}

/// The state database. All access goes through one connection; each call
/// is short (one row, or one listing page in one transaction).
#[derive(Debug)]
pub struct Store {
    conn: Mutex<Connection>,
    path: PathBuf,
}

/// The `type` column's text.
pub fn type_name(kind: DownloadType) -> &'static str {
    match kind {
        DownloadType::Default => "default",
        DownloadType::Audio => "audio",
    }
}

fn parse_type(s: &str) -> Option<DownloadType> {
    match s {
        "default" => Some(DownloadType::Default),
        "audio" => Some(DownloadType::Audio),
        _ => None,
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Store {
    /// Opens (creating if needed) the state database at `path`, in WAL mode,
    /// and migrates it to [`SCHEMA_VERSION`].
    pub fn open(path: &Path) -> Result<Self, ExportError> {
        let err = |source| ExportError::State {
            path: path.to_owned(),
            source,
        };
        let conn = Connection::open(path).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(err)?;
        let store = Self {
            conn: Mutex::new(conn),
            path: path.to_owned(),
        };
        store.migrate()?;
        Ok(store)
    }

    /// Opens an existing state database read-only (`--dry-run`); `None`
    /// when there is none yet.
    pub fn open_read_only(path: &Path) -> Result<Option<Self>, ExportError> {
        if !path.exists() {
            return Ok(None);
        }
        let err = |source| ExportError::State {
            path: path.to_owned(),
            source,
        };
        let conn =
            Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(err)?;
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(err)?;
        if version != SCHEMA_VERSION {
            return Err(ExportError::Schema {
                path: path.to_owned(),
                found: version,
                known: SCHEMA_VERSION,
            });
        }
        Ok(Some(Self {
            conn: Mutex::new(conn),
            path: path.to_owned(),
        }))
    }

    fn err(&self, source: rusqlite::Error) -> ExportError {
        ExportError::State {
            path: self.path.clone(),
            source,
        }
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, ExportError> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut conn).map_err(|e| self.err(e))
    }

    fn migrate(&self) -> Result<(), ExportError> {
        let version: i64 =
            self.with(|c| c.pragma_query_value(None, "user_version", |r| r.get(0)))?;
        if !(0..=SCHEMA_VERSION).contains(&version) {
            return Err(ExportError::Schema {
                path: self.path.clone(),
                found: version,
                known: SCHEMA_VERSION,
            });
        }
        for (from, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            self.with(|c| {
                let tx = c.transaction()?;
                tx.execute_batch(sql)?;
                tx.pragma_update(None, "user_version", from as i64 + 1)?;
                tx.commit()
            })?;
        }
        Ok(())
    }

    /// Records the start of a run; returns its id.
    pub fn begin_run(&self, selection: &str) -> Result<i64, ExportError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO runs (started_at, selection) VALUES (?1, ?2)",
                params![now(), selection],
            )?;
            Ok(c.last_insert_rowid())
        })
    }

    /// Records the end of a run and its summary.
    pub fn finish_run(&self, run: i64, summary: &str) -> Result<(), ExportError> {
        self.with(|c| {
            c.execute(
                "UPDATE runs SET finished_at = ?1, summary = ?2 WHERE id = ?3",
                params![now(), summary, run],
            )
            .map(drop)
        })
    }

    /// Adds videos to run `run`'s selection, in one transaction: each video
    /// (its listed JSON refreshed when given) and a `selected` file for each
    /// of `types` it does not have yet. Files already known keep their state.
    pub fn select(
        &self,
        run: i64,
        videos: &[(String, Option<String>)],
        types: &[DownloadType],
    ) -> Result<(), ExportError> {
        let at = now();
        self.with(|c| {
            let tx = c.transaction()?;
            {
                let mut video = tx.prepare_cached(
                    "INSERT INTO videos (uid, listed, run) VALUES (?1, ?2, ?3)
                     ON CONFLICT (uid) DO UPDATE SET
                       listed = coalesce(excluded.listed, videos.listed), run = excluded.run",
                )?;
                let mut file = tx.prepare_cached(
                    "INSERT INTO files (uid, type, state, updated_at)
                     VALUES (?1, ?2, 'selected', ?3) ON CONFLICT DO NOTHING",
                )?;
                for (uid, listed) in videos {
                    video.execute(params![uid, listed, run])?;
                    for kind in types {
                        file.execute(params![uid, type_name(*kind), at])?;
                    }
                }
            }
            tx.commit()
        })
    }

    /// Up to `limit` videos of run `run`'s selection after `after`, in id
    /// order, with their files (one query per page: the run walks its
    /// selection in pages, so memory stays flat whatever its size).
    pub fn selection_page(
        &self,
        run: i64,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<VideoRow>, ExportError> {
        self.with(|c| {
            let mut q = c.prepare_cached(
                "WITH page AS (
                   SELECT uid, listed, extras FROM videos WHERE run = ?1 AND uid > ?2
                   ORDER BY uid LIMIT ?3)
                 SELECT p.uid, p.listed, p.extras, f.type, f.state, f.percent, f.url, f.size, f.sha256, f.reason
                 FROM page p LEFT JOIN files f USING (uid)
                 ORDER BY p.uid, f.type = 'audio'",
            )?;
            let mut rows: Vec<VideoRow> = Vec::new();
            let mut cursor = q.query(params![run, after.unwrap_or(""), limit])?;
            while let Some(r) = cursor.next()? {
                let uid: String = r.get(0)?;
                if rows.last().is_none_or(|v| v.uid != uid) {
                    rows.push(VideoRow {
                        uid,
                        listed: r.get(1)?,
                        files: Vec::new(),
                        extras: r.get(2)?,
                    });
                }
                let kind: Option<String> = r.get(3)?;
                if let Some(kind) = kind.as_deref().and_then(parse_type)
                    && let Ok(state) = read_state_at(r, 4)?
                    && let Some(row) = rows.last_mut()
                {
                    row.files.push((kind, state));
                }
            }
            Ok(rows)
        })
    }

    /// How many videos run `run` selected.
    pub fn selection_count(&self, run: i64) -> Result<u64, ExportError> {
        self.with(|c| {
            c.query_row(
                "SELECT count(*) FROM videos WHERE run = ?1",
                params![run],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
        })
    }

    /// A video and its files; `None` if unknown.
    pub fn video(&self, uid: &str) -> Result<Option<VideoRow>, ExportError> {
        self.with(|c| {
            let known: Option<(Option<String>, Option<String>)> = c
                .prepare_cached("SELECT listed, extras FROM videos WHERE uid = ?1")?
                .query_row(params![uid], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            let Some((listed, extras)) = known else {
                return Ok(None);
            };
            let mut q = c.prepare_cached(
                "SELECT type, state, percent, url, size, sha256, reason FROM files
                 WHERE uid = ?1 ORDER BY type = 'audio'",
            )?;
            let files = q
                .query_map(params![uid], |r| {
                    let kind: String = r.get(0)?;
                    Ok((kind, read_state_at(r, 1)?))
                })?
                .collect::<rusqlite::Result<Vec<(String, Stored)>>>()?;
            // A row this build cannot read is skipped here and refused by
            // `apply` (which names it).
            let files = files
                .into_iter()
                .filter_map(|(kind, state)| Some((parse_type(&kind)?, state.ok()?)))
                .collect();
            Ok(Some(VideoRow {
                uid: uid.to_owned(),
                listed,
                files,
                extras,
            }))
        })
    }

    /// The state of one file; `None` if it is not in the state.
    pub fn file(&self, uid: &str, kind: DownloadType) -> Result<Option<FileState>, ExportError> {
        self.with(|c| read_file(c, uid, kind))
            .and_then(|s| s.transpose().map_err(|e| self.corrupt(uid, kind, e)))
    }

    fn corrupt(&self, uid: &str, kind: DownloadType, why: String) -> ExportError {
        ExportError::Corrupt {
            path: self.path.clone(),
            what: format!("file {uid}/{}: {why}", type_name(kind)),
        }
    }

    /// Applies `event` to a file and commits the new state before
    /// returning it. An event that does not apply is an error and changes
    /// nothing.
    pub fn apply(
        &self,
        uid: &str,
        kind: DownloadType,
        event: &Event,
    ) -> Result<FileState, ExportError> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        let current = read_file(&tx, uid, kind)
            .map_err(|e| self.err(e))?
            .ok_or_else(|| self.corrupt(uid, kind, "not in the state".into()))?
            .map_err(|why| self.corrupt(uid, kind, why))?;
        let next = current
            .apply(event)
            .map_err(|illegal| ExportError::Corrupt {
                path: self.path.clone(),
                what: format!("file {uid}/{}: {illegal}", type_name(kind)),
            })?;
        write_file(&tx, uid, kind, &next).map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(next)
    }

    /// Records a video's JSON (its details, for a video selected by id).
    pub fn set_listed(&self, uid: &str, json: &str) -> Result<(), ExportError> {
        self.with(|c| {
            c.execute(
                "UPDATE videos SET listed = ?1 WHERE uid = ?2",
                params![json, uid],
            )
            .map(drop)
        })
    }

    /// Records a video's captions and additional audio tracks (JSON of
    /// [`crate::extras::Extras`]).
    pub fn set_extras(&self, uid: &str, json: &str) -> Result<(), ExportError> {
        self.with(|c| {
            c.execute(
                "UPDATE videos SET extras = ?1 WHERE uid = ?2",
                params![json, uid],
            )
            .map(drop)
        })
    }

    /// Records how a file's download was found: `existing` (on the download
    /// host, no create) or `created`.
    pub fn set_found(&self, uid: &str, kind: DownloadType, how: &str) -> Result<(), ExportError> {
        self.with(|c| {
            c.execute(
                "UPDATE files SET found = ?1 WHERE uid = ?2 AND type = ?3",
                params![how, uid, type_name(kind)],
            )
            .map(drop)
        })
    }

    /// Adds `n` to the API requests made for `uid`.
    pub fn add_requests(&self, uid: &str, n: u64) -> Result<(), ExportError> {
        if n == 0 {
            return Ok(());
        }
        self.with(|c| {
            c.execute(
                "UPDATE videos SET api_requests = api_requests + ?1 WHERE uid = ?2",
                params![n as i64, uid],
            )
            .map(drop)
        })
    }

    /// Replaces the `objects` table with a listing of the destination,
    /// page by page (`begin` once, then `add_objects` per page).
    pub fn clear_objects(&self) -> Result<(), ExportError> {
        self.with(|c| c.execute("DELETE FROM objects", []).map(drop))
    }

    /// Records objects of the destination (key, size).
    pub fn add_objects(&self, objects: &[(String, u64)]) -> Result<(), ExportError> {
        self.with(|c| {
            let tx = c.transaction()?;
            {
                let mut q = tx.prepare_cached(
                    "INSERT INTO objects (key, size) VALUES (?1, ?2)
                     ON CONFLICT (key) DO UPDATE SET size = excluded.size",
                )?;
                for (key, size) in objects {
                    q.execute(params![key, *size as i64])?;
                }
            }
            tx.commit()
        })
    }

    /// Forgets an object (deleted, or found wrong).
    pub fn remove_object(&self, key: &str) -> Result<(), ExportError> {
        self.with(|c| {
            c.execute("DELETE FROM objects WHERE key = ?1", params![key])
                .map(drop)
        })
    }

    /// The size of an object of the destination, as last seen.
    pub fn object_size(&self, key: &str) -> Result<Option<u64>, ExportError> {
        self.with(|c| {
            c.query_row(
                "SELECT size FROM objects WHERE key = ?1",
                params![key],
                |r| r.get::<_, i64>(0),
            )
            .optional()
            .map(|s| s.map(|s| s as u64))
        })
    }

    /// Keys of the listed objects ending in `suffix` after `after`, in
    /// order, at most `limit` (for walking the sidecars page by page).
    pub fn objects_page(
        &self,
        suffix: &str,
        after: &str,
        limit: u32,
    ) -> Result<Vec<String>, ExportError> {
        self.with(|c| {
            let mut q = c.prepare_cached(
                "SELECT key FROM objects WHERE key > ?1 AND substr(key, -length(?2)) = ?2
                 ORDER BY key LIMIT ?3",
            )?;
            let rows = q.query_map(params![after, suffix, limit], |r| r.get(0))?;
            rows.collect()
        })
    }

    /// Records a file found complete in the destination (its sidecar and
    /// object agree) as done, without the state machine's steps: the
    /// destination is the truth, this database a cache of it. The video is
    /// added when unknown (to run `run`, with its JSON from the sidecar).
    pub fn adopt_done(
        &self,
        run: i64,
        uid: &str,
        listed: Option<&str>,
        kind: DownloadType,
        done: &FileState,
    ) -> Result<(), ExportError> {
        let FileState::Done { .. } = done else {
            return Err(self.corrupt(uid, kind, "only a done file can be adopted".into()));
        };
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "INSERT INTO videos (uid, listed, run) VALUES (?1, ?2, ?3)
                 ON CONFLICT (uid) DO UPDATE SET listed = coalesce(videos.listed, excluded.listed)",
                params![uid, listed, run],
            )?;
            tx.execute(
                "INSERT INTO files (uid, type, state, updated_at) VALUES (?1, ?2, 'selected', ?3)
                 ON CONFLICT DO NOTHING",
                params![uid, type_name(kind), now()],
            )?;
            write_file(&tx, uid, kind, done)?;
            tx.commit()
        })
    }

    /// The multipart upload in flight for `key`, with its finished parts
    /// (in index order).
    pub fn upload(&self, key: &str) -> Result<Option<(Upload, Vec<Part>)>, ExportError> {
        self.with(|c| {
            let upload = c
                .query_row(
                    "SELECT upload_id, part_size, total, validator FROM uploads WHERE key = ?1",
                    params![key],
                    |r| {
                        Ok(Upload {
                            key: key.to_owned(),
                            upload_id: r.get(0)?,
                            part_size: r.get::<_, i64>(1)? as u64,
                            total: r.get::<_, Option<i64>>(2)?.map(|t| t as u64),
                            validator: r.get(3)?,
                        })
                    },
                )
                .optional()?;
            let Some(upload) = upload else {
                return Ok(None);
            };
            let mut q = c.prepare_cached(
                "SELECT idx, content_id, size FROM parts WHERE key = ?1 ORDER BY idx",
            )?;
            let parts = q
                .query_map(params![key], |r| {
                    Ok(Part {
                        idx: r.get::<_, i64>(0)? as u64,
                        content_id: r.get(1)?,
                        size: r.get::<_, i64>(2)? as u64,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(Some((upload, parts)))
        })
    }

    /// Every multipart upload the state knows (to abort at the end of a run).
    pub fn uploads(&self) -> Result<Vec<Upload>, ExportError> {
        self.with(|c| {
            let mut q = c.prepare_cached(
                "SELECT key, upload_id, part_size, total, validator FROM uploads ORDER BY key",
            )?;
            let rows = q.query_map([], |r| {
                Ok(Upload {
                    key: r.get(0)?,
                    upload_id: r.get(1)?,
                    part_size: r.get::<_, i64>(2)? as u64,
                    total: r.get::<_, Option<i64>>(3)?.map(|t| t as u64),
                    validator: r.get(4)?,
                })
            })?;
            rows.collect()
        })
    }

    /// Records a new multipart upload (replacing any other of the key).
    pub fn begin_upload(&self, upload: &Upload) -> Result<(), ExportError> {
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute("DELETE FROM uploads WHERE key = ?1", params![upload.key])?;
            tx.execute(
                "INSERT INTO uploads (key, upload_id, part_size, total, validator)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    upload.key,
                    upload.upload_id,
                    upload.part_size as i64,
                    upload.total.map(|t| t as i64),
                    upload.validator
                ],
            )?;
            tx.commit()
        })
    }

    /// Records a finished part, before the next is counted on.
    pub fn add_part(&self, key: &str, part: &Part) -> Result<(), ExportError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO parts (key, idx, content_id, size) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (key, idx) DO UPDATE SET
                   content_id = excluded.content_id, size = excluded.size",
                params![key, part.idx as i64, part.content_id, part.size as i64],
            )
            .map(drop)
        })
    }

    /// Forgets an upload (completed or aborted) and its parts.
    pub fn end_upload(&self, key: &str) -> Result<(), ExportError> {
        self.with(|c| {
            c.execute("DELETE FROM uploads WHERE key = ?1", params![key])
                .map(drop)
        })
    }
}

type Stored = Result<FileState, String>;

fn read_file(c: &Connection, uid: &str, kind: DownloadType) -> rusqlite::Result<Option<Stored>> {
    c.prepare_cached(
        "SELECT state, percent, url, size, sha256, reason FROM files WHERE uid = ?1 AND type = ?2",
    )?
    .query_row(params![uid, type_name(kind)], |r| read_state_at(r, 0))
    .optional()
}

/// Reads `state, percent, url, size, sha256, reason` starting at column `at`.
fn read_state_at(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Stored> {
    let state: String = r.get(at)?;
    let percent: Option<f64> = r.get(at + 1)?;
    let url: Option<String> = r.get(at + 2)?;
    let size: Option<i64> = r.get(at + 3)?;
    let sha256: Option<String> = r.get(at + 4)?;
    let reason: Option<String> = r.get(at + 5)?;
    let need = |v: Option<String>, what: &str| v.ok_or_else(|| format!("{state} without {what}"));
    let bytes = |s: Option<i64>| {
        s.and_then(|s| u64::try_from(s).ok())
            .ok_or_else(|| format!("{state} without a size"))
    };
    Ok((|| {
        Ok(match state.as_str() {
            "selected" => FileState::Selected,
            "created" => FileState::Created {
                percent: percent.unwrap_or(0.0),
            },
            "ready" => FileState::Ready {
                url: need(url, "url")?,
            },
            "fetched" => FileState::Fetched {
                url: need(url, "url")?,
                size: bytes(size)?,
            },
            "done" => FileState::Done {
                url: need(url, "url")?,
                size: bytes(size)?,
                sha256: need(sha256, "sha256")?,
            },
            "failed" => FileState::Failed {
                reason: reason.unwrap_or_default(),
            },
            other => return Err(format!("unknown state {other:?}")),
        })
    })())
}

fn write_file(
    c: &Connection,
    uid: &str,
    kind: DownloadType,
    state: &FileState,
) -> rusqlite::Result<()> {
    let (mut percent, mut url, mut size, mut sha256, mut reason) = (None, None, None, None, None);
    match state {
        FileState::Selected => {}
        FileState::Created { percent: p } => percent = Some(*p),
        FileState::Ready { url: u } => url = Some(u.as_str()),
        FileState::Fetched { url: u, size: s } => {
            url = Some(u.as_str());
            size = Some(*s as i64);
        }
        FileState::Done {
            url: u,
            size: s,
            sha256: h,
        } => {
            url = Some(u.as_str());
            size = Some(*s as i64);
            sha256 = Some(h.as_str());
        }
        FileState::Failed { reason: r } => reason = Some(r.as_str()),
    }
    c.prepare_cached(
        "UPDATE files SET state = ?3, percent = ?4, url = ?5, size = ?6, sha256 = ?7,
           reason = ?8, updated_at = ?9 WHERE uid = ?1 AND type = ?2",
    )?
    .execute(params![
        uid,
        type_name(kind),
        state.name(),
        percent,
        url,
        size,
        sha256,
        reason,
        now()
    ])
    .map(drop)
}
