//! A listed video as the generated types carry it: [`ListedVideo`] (the
//! typed [`Video`] and its JSON as sent) and [`VideoList`]. progenitor's
//! output names these in place of its own (the codegen's type
//! replacements), and they wrap its types: with `downloads.rs` and
//! `hooks.rs`, the one circle this crate keeps (ARCHITECTURE.md).

use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::{SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

use crate::types::Video;

/// One listed video: the typed [`Video`] and its JSON exactly as the API
/// sent it (fields newer than the spec included).
#[derive(Clone)]
pub struct ListedVideo {
    video: Video,
    raw: Box<RawValue>,
}

impl ListedVideo {
    /// Decode one video object.
    pub fn from_json(json: &str) -> Result<Self, serde_json::Error> {
        let raw = RawValue::from_string(json.to_owned())?;
        Self::from_raw(raw)
    }

    fn from_raw(raw: Box<RawValue>) -> Result<Self, serde_json::Error> {
        let video = serde_json::from_str(raw.get())?;
        Ok(Self { video, raw })
    }

    /// The typed video.
    pub fn video(&self) -> &Video {
        &self.video
    }

    /// The video's JSON object as the API sent it (one line, no trailing
    /// newline, unless the API itself put newlines in it).
    pub fn raw_json(&self) -> &str {
        self.raw.get()
    }

    /// The typed video, dropping the JSON.
    pub fn into_video(self) -> Video {
        self.video
    }

    /// `uid`, if the API sent one.
    pub fn uid(&self) -> Option<&str> {
        self.video.uid.as_deref().map(|id| id.as_str())
    }

    /// `created`, if the API sent one.
    pub fn created(&self) -> Option<DateTime<Utc>> {
        self.video.created
    }
}

/// Equal when the API sent the same JSON text.
impl PartialEq for ListedVideo {
    fn eq(&self, other: &Self) -> bool {
        self.raw.get() == other.raw.get()
    }
}

impl fmt::Debug for ListedVideo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.video.fmt(f)
    }
}

impl std::ops::Deref for ListedVideo {
    type Target = Video;
    fn deref(&self) -> &Video {
        &self.video
    }
}

/// Decodes one video object, keeping its JSON as sent (the `result` of
/// [`Client::video`](crate::Client::video); see `openapi/patches/10-named-video-details.json`).
impl<'de> Deserialize<'de> for ListedVideo {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        Self::from_raw(raw).map_err(serde::de::Error::custom)
    }
}

/// Writes the JSON as the API sent it.
impl Serialize for ListedVideo {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.raw.serialize(serializer)
    }
}

#[cfg(feature = "schemars")]
impl schemars::JsonSchema for ListedVideo {
    fn schema_name() -> String {
        "ListedVideo".to_owned()
    }

    fn json_schema(generator: &mut schemars::r#gen::SchemaGenerator) -> schemars::schema::Schema {
        generator.subschema_for::<Video>()
    }

    fn is_referenceable() -> bool {
        false
    }
}

/// The `result` of the listing: the videos of one page, each with its JSON
/// as sent. (Replaces the generated array type; see
/// `openapi/patches/06-named-video-list.json`.)
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VideoList(pub Vec<ListedVideo>);

impl<'de> Deserialize<'de> for VideoList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Items;
        impl<'de> Visitor<'de> for Items {
            type Value = VideoList;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of videos")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<VideoList, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1000));
                while let Some(raw) = seq.next_element::<Box<RawValue>>()? {
                    let index = out.len();
                    let video = ListedVideo::from_raw(raw).map_err(|e| {
                        serde::de::Error::custom(format!("video {index} of the page: {e}"))
                    })?;
                    out.push(video);
                }
                Ok(VideoList(out))
            }
        }
        deserializer.deserialize_seq(Items)
    }
}

impl Serialize for VideoList {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|v| &v.raw))
    }
}

#[cfg(feature = "schemars")]
impl schemars::JsonSchema for VideoList {
    fn schema_name() -> String {
        "VideoList".to_owned()
    }

    fn json_schema(generator: &mut schemars::r#gen::SchemaGenerator) -> schemars::schema::Schema {
        <Vec<Video>>::json_schema(generator)
    }
}
