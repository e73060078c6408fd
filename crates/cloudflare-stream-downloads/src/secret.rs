//! `Secret`: a credential that travels as a string.

use std::fmt;

/// A credential carried as a string: a signing key's private key (`pem`,
/// `jwk`), a signed URL token. `Debug` and `Display` print `***`, so a
/// value that holds one can be logged or put into an error without leaking
/// it; [`expose`](Self::expose) is the one, greppable, way to the text.
/// On the wire it is the plain string.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schemars", schemars(transparent))]
pub struct Secret(String);

impl Secret {
    /// Wraps a credential.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The credential itself. Pass it only to the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::Secret;

    #[test]
    fn never_formats_its_value() {
        let s = Secret::new("eyJhbGciOiJSUzI1NiJ9.c2VjcmV0.c2ln");
        assert_eq!(format!("{s:?} {s} {s:#?}"), "*** *** ***");
        assert_eq!(s.expose(), "eyJhbGciOiJSUzI1NiJ9.c2VjcmV0.c2ln");
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            "\"eyJhbGciOiJSUzI1NiJ9.c2VjcmV0.c2ln\""
        );
    }
}
