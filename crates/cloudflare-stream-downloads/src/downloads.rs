//! `Downloads`: the `result` of list and create, in either of its shapes.

use std::fmt;

use serde::de::{self, Error as _, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::types::{Download, DownloadType};

/// The downloads of one video, by type: the `result` of list and create.
///
/// The API has returned two shapes here, and both decode to the same value:
///
/// * the current map `{"default": Download?, "audio": Download?}` (a key is
///   present only once that type has been created);
/// * the older single `Download` (`{"status": …, "percentComplete": …}`),
///   returned by create before 2026-04 and shown on the API reference page.
///   That shape only ever described the `default` (MP4) download, so it
///   decodes as a map holding just `default`.
///
/// A body is taken as the single shape when it has a `status` or
/// `percentComplete` key; it then must be a valid `Download`, so a malformed
/// single download is an error and never an empty map. In the map shape,
/// keys other than `default` and `audio` (a download type added later) are
/// ignored. Serialising always writes the map shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[cfg_attr(
    feature = "schemars",
    schemars(description = "The downloads of one video, keyed by download type.")
)]
pub struct Downloads {
    /// The video download (MP4).
    #[serde(skip_serializing_if = "Option::is_none")]
    default: Option<Download>,
    /// The audio-only download (M4A).
    #[serde(skip_serializing_if = "Option::is_none")]
    audio: Option<Download>,
}

impl Downloads {
    /// No download of any type.
    pub fn none() -> Self {
        Self {
            default: None,
            audio: None,
        }
    }

    /// The same downloads with `download` set for `kind`.
    pub fn with(mut self, kind: DownloadType, download: Download) -> Self {
        *self.slot(kind) = Some(download);
        self
    }

    /// The `default` (MP4) download, if it has been created.
    pub fn default(&self) -> Option<&Download> {
        self.default.as_ref()
    }

    /// The `audio` (M4A) download, if it has been created.
    pub fn audio(&self) -> Option<&Download> {
        self.audio.as_ref()
    }

    /// The download of `kind`, if it has been created.
    pub fn get(&self, kind: DownloadType) -> Option<&Download> {
        match kind {
            DownloadType::Default => self.default.as_ref(),
            DownloadType::Audio => self.audio.as_ref(),
        }
    }

    /// Every created download with its type, `default` first.
    pub fn iter(&self) -> impl Iterator<Item = (DownloadType, &Download)> {
        [
            (DownloadType::Default, self.default.as_ref()),
            (DownloadType::Audio, self.audio.as_ref()),
        ]
        .into_iter()
        .filter_map(|(kind, d)| d.map(|d| (kind, d)))
    }

    /// True when no download of any type exists.
    pub fn is_empty(&self) -> bool {
        self.default.is_none() && self.audio.is_none()
    }

    fn slot(&mut self, kind: DownloadType) -> &mut Option<Download> {
        match kind {
            DownloadType::Default => &mut self.default,
            DownloadType::Audio => &mut self.audio,
        }
    }
}

impl<'de> Deserialize<'de> for Downloads {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(DownloadsVisitor)
    }
}

/// Decodes the map shape directly into typed downloads (no intermediate
/// `Value`); the keys of a single `Download` are kept aside and decoded as
/// one at the end.
struct DownloadsVisitor;

impl<'de> Visitor<'de> for DownloadsVisitor {
    type Value = Downloads;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of downloads by type, or a single download")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Downloads, A::Error> {
        let mut by_type = Downloads::none();
        let mut single = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "status" | "percentComplete" | "url" => {
                    single.insert(key, map.next_value::<Value>()?);
                }
                "default" | "audio" => {
                    let kind = if key == "default" {
                        DownloadType::Default
                    } else {
                        DownloadType::Audio
                    };
                    *by_type.slot(kind) = map.next_value::<Option<Download>>().map_err(|e| {
                        A::Error::custom(format!("invalid downloads map: {key}: {e}"))
                    })?;
                }
                _ => {
                    map.next_value::<de::IgnoredAny>()?;
                }
            }
        }
        if single.contains_key("status") || single.contains_key("percentComplete") {
            let download = Download::deserialize(Value::Object(single))
                .map_err(|e| A::Error::custom(format!("invalid single-download result: {e}")))?;
            return Ok(Downloads::none().with(DownloadType::Default, download));
        }
        Ok(by_type)
    }
}
