//! Signed URLs: the fake's signing keys and its download host's token check.
//!
//! `POST /stream/keys` hands out RSA keys from a fixed pool of four
//! 2048-bit **test keys** checked in under `keys/` (ring, the only crypto
//! library of the build, cannot generate RSA keys, and the fake must not
//! bring the `rsa` crate). Each key gets a fresh random id; once the pool
//! is used up, keys are handed out again under new ids. Its `pem` is the
//! PKCS#1 PEM base64-encoded, as Cloudflare's; its `jwk` holds the public
//! part only (Cloudflare's holds the private one too).
//!
//! `POST /stream/{id}/token` signs with a key of the fake's own that is
//! never listed, as Cloudflare does with its own.
//!
//! The download host takes a token in place of the video id and checks it
//! as described in Cloudflare's docs: RS256 verified with the public key of
//! the `kid` (a key created and not deleted, or the fake's own), `sub` a
//! video, `exp` in the future and at most 24 h ahead, `nbf` not in the
//! future, `downloadable: true`. A video that requires signed URLs gets 401
//! without a token; a bad token gets 403 with the reason.

use std::collections::{BTreeMap, HashSet};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::SystemRandom;
use ring::signature::{self, RsaKeyPair, RsaPublicKeyComponents};
use serde_json::{Value, json};

const POOL: [&str; 4] = [
    include_str!("../keys/key-1.pem"),
    include_str!("../keys/key-2.pem"),
    include_str!("../keys/key-3.pem"),
    include_str!("../keys/key-4.pem"),
];

/// Longest a token may be valid.
const MAX_LIFETIME: i64 = 24 * 3600;

/// A key the fake knows.
#[derive(Debug)]
struct Key {
    pool: usize,
    created: String,
}

/// The signing keys of the account, and the fake's own.
#[derive(Debug)]
pub(crate) struct Keys {
    pairs: Vec<RsaKeyPair>,
    keys: BTreeMap<String, Key>,
    deleted: HashSet<String>,
    next: usize,
    own: String,
    /// Tokens the download host accepted, and refused.
    pub(crate) accepted: u64,
    pub(crate) refused: u64,
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn pem_der(pem: &str) -> Vec<u8> {
    let body: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .concat();
    STANDARD
        .decode(body)
        .expect("the checked-in test keys are PEM")
}

fn random_id() -> String {
    let mut bytes = [0u8; 16];
    ring::rand::SecureRandom::fill(&SystemRandom::new(), &mut bytes).expect("system randomness");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Keys {
    pub(crate) fn new() -> Self {
        let pairs = POOL
            .iter()
            .map(|pem| RsaKeyPair::from_der(&pem_der(pem)).expect("the test keys are RSA"))
            .collect();
        Self {
            pairs,
            keys: BTreeMap::new(),
            deleted: HashSet::new(),
            next: 1,
            own: random_id(),
            accepted: 0,
            refused: 0,
        }
    }

    /// `POST /stream/keys`: `{id, pem, jwk, created}`.
    pub(crate) fn create(&mut self) -> Value {
        let pool = self.next % POOL.len();
        self.next += 1;
        let id = random_id();
        let created = chrono::DateTime::<chrono::Utc>::from(SystemTime::now())
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let public = self.public(pool);
        let b64u = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
        let jwk = json!({
            "use": "sig",
            "kty": "RSA",
            "kid": id,
            "alg": "RS256",
            "n": b64u(&public.n),
            "e": b64u(&public.e),
        });
        self.keys.insert(
            id.clone(),
            Key {
                pool,
                created: created.clone(),
            },
        );
        json!({
            "id": id,
            "pem": STANDARD.encode(POOL[pool]),
            "jwk": STANDARD.encode(jwk.to_string()),
            "created": created,
        })
    }

    /// `GET /stream/keys`: ids and creation times, never a pem.
    pub(crate) fn list(&self) -> Value {
        Value::Array(
            self.keys
                .iter()
                .filter(|(id, _)| !self.deleted.contains(*id))
                .map(|(id, k)| json!({ "id": id, "created": k.created, "key_id": id }))
                .collect(),
        )
    }

    /// `DELETE /stream/keys/{id}`: false when there is no such key.
    pub(crate) fn delete(&mut self, id: &str) -> bool {
        self.keys.contains_key(id) && self.deleted.insert(id.to_owned())
    }

    /// `POST /stream/{video}/token`, with the request's body (or none).
    pub(crate) fn token_for(&self, video: &str, body: &Value) -> Result<String, String> {
        let now = now();
        let exp = body.get("exp").and_then(number).unwrap_or(now + 3600);
        if exp > now + MAX_LIFETIME {
            return Err("exp is more than 24 hours ahead".into());
        }
        let nbf = body.get("nbf").and_then(number).unwrap_or(now - 3600);
        let downloadable = body
            .get("downloadable")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let claims = json!({
            "sub": video, "kid": self.own, "exp": exp, "nbf": nbf, "downloadable": downloadable,
        });
        Ok(self.sign(0, &self.own, &claims))
    }

    fn public(&self, pool: usize) -> RsaPublicKeyComponents<Vec<u8>> {
        RsaPublicKeyComponents::from(self.pairs[pool].public())
    }

    fn sign(&self, pool: usize, kid: &str, claims: &Value) -> String {
        let part = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let input = format!(
            "{}.{}",
            part(&json!({"alg": "RS256", "kid": kid})),
            part(claims)
        );
        let pair = &self.pairs[pool];
        let mut sig = vec![0; pair.public().modulus_len()];
        pair.sign(
            &signature::RSA_PKCS1_SHA256,
            &SystemRandom::new(),
            input.as_bytes(),
            &mut sig,
        )
        .expect("signing with a test key");
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    /// Checks a token of the download host: the video it is for, or why it
    /// is refused.
    pub(crate) fn verify(&self, token: &str) -> Result<String, String> {
        self.verify_for(token, true)
    }

    /// [`verify`](Self::verify) for playback (a manifest): a token needs no
    /// `downloadable` claim there.
    pub(crate) fn verify_playback(&self, token: &str) -> Result<String, String> {
        self.verify_for(token, false)
    }

    fn verify_for(&self, token: &str, download: bool) -> Result<String, String> {
        let mut parts = token.split('.');
        let (Some(h), Some(c), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("not a JWT (three base64url parts)".into());
        };
        let decode = |p: &str| -> Result<Value, String> {
            let bytes = URL_SAFE_NO_PAD
                .decode(p)
                .map_err(|_| "a part is not base64url".to_owned())?;
            serde_json::from_slice(&bytes).map_err(|_| "a part is not JSON".to_owned())
        };
        let header = decode(h)?;
        if header.get("alg").and_then(Value::as_str) != Some("RS256") {
            return Err("alg is not RS256".into());
        }
        let kid = header
            .get("kid")
            .and_then(Value::as_str)
            .ok_or("no kid in the header")?;
        let pool = if kid == self.own {
            0
        } else if self.deleted.contains(kid) {
            return Err("the signing key was deleted".into());
        } else {
            self.keys.get(kid).ok_or("unknown signing key")?.pool
        };
        let signature = URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| "the signature is not base64url")?;
        self.public(pool)
            .verify(
                &signature::RSA_PKCS1_2048_8192_SHA256,
                format!("{h}.{c}").as_bytes(),
                &signature,
            )
            .map_err(|_| "bad signature")?;
        let claims = decode(c)?;
        let now = now();
        let exp = claims.get("exp").and_then(number).ok_or("no exp")?;
        if exp <= now {
            return Err("expired".into());
        }
        if exp > now + MAX_LIFETIME + 60 {
            return Err("exp is more than 24 hours ahead".into());
        }
        if claims
            .get("nbf")
            .and_then(number)
            .is_some_and(|nbf| nbf > now)
        {
            return Err("not valid yet (nbf)".into());
        }
        if download && claims.get("downloadable") != Some(&Value::Bool(true)) {
            return Err("not downloadable (make the token with downloadable: true)".into());
        }
        claims
            .get("sub")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| "no sub".into())
    }
}

/// A Unix time as a number, or as a string of digits (the spec's examples
/// write them as strings).
fn number(v: &Value) -> Option<i64> {
    v.as_i64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

/// True when a download URL's first segment is a token, not a video id.
pub(crate) fn is_token(segment: &str) -> bool {
    segment.matches('.').count() == 2
}
