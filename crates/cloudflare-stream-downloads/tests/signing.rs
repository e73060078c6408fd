//! The local signer: tokens checked independently of this crate.
//!
//! `tests/data/signing-key.json` has the shape `POST /stream/keys` returns
//! (`id`, base64 `pem`, base64 `jwk`), made with OpenSSL (see
//! `tests/data/README.md`). `known-answer.jwt` was signed by `openssl dgst
//! -sha256 -sign` over the same header and claims: RS256 (RSASSA-PKCS1-v1_5)
//! is deterministic, so the crate must produce it byte for byte. The jwk's
//! modulus and exponent (printed by OpenSSL, not read by the crate) verify
//! the crate's tokens through ring directly.

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use cloudflare_stream_downloads::types::{AccessRule, AccessRuleAction, AccessRuleType};
use cloudflare_stream_downloads::{
    ENV_SIGNING_KEY_ID, ENV_SIGNING_KEY_PEM, Error, SigningKey, TokenOptions,
};
use serde_json::Value;

const VIDEO: &str = "ea95132c15732412d22c1476fa83f27a";
const NOW: i64 = 1_800_000_000;

fn data(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    std::fs::read_to_string(path).unwrap()
}

fn key_doc() -> Value {
    serde_json::from_str(&data("signing-key.json")).unwrap()
}

fn key() -> SigningKey {
    SigningKey::from_json(&data("signing-key.json")).unwrap()
}

fn part(token: &str, i: usize) -> Value {
    let text = token.split('.').nth(i).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(text).unwrap()).unwrap()
}

/// Verifies `token` with the modulus and exponent of the key's JWK.
fn verify_with_jwk(token: &str) -> bool {
    let jwk: Value =
        serde_json::from_slice(&STANDARD.decode(key_doc()["jwk"].as_str().unwrap()).unwrap())
            .unwrap();
    let n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
    let e = URL_SAFE_NO_PAD.decode(jwk["e"].as_str().unwrap()).unwrap();
    let (input, signature) = token.rsplit_once('.').unwrap();
    let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
    ring::signature::RsaPublicKeyComponents { n: &n, e: &e }
        .verify(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            input.as_bytes(),
            &signature,
        )
        .is_ok()
}

#[test]
fn a_token_equals_the_one_openssl_signed() {
    let token = key().sign_at(VIDEO, &TokenOptions::default(), NOW).unwrap();
    assert_eq!(token.expose(), data("known-answer.jwt").trim());
}

#[test]
fn tokens_verify_with_the_public_key_and_carry_the_claims() {
    let key = key();
    let options = TokenOptions {
        lifetime: Duration::from_secs(6 * 3600),
        not_before: Some(NOW - 60),
        access_rules: vec![AccessRule {
            action: Some(AccessRuleAction::Allow),
            type_: Some(AccessRuleType::Any),
            ..AccessRule::default()
        }],
    };
    let token = key.sign_at(VIDEO, &options, NOW).unwrap();
    let token = token.expose();
    assert!(verify_with_jwk(token));
    assert_eq!(
        part(token, 0),
        serde_json::json!({"alg": "RS256", "kid": key.id()})
    );
    let claims = part(token, 1);
    assert_eq!(claims["sub"], VIDEO);
    assert_eq!(claims["kid"], key.id());
    assert_eq!(claims["exp"], NOW + 6 * 3600);
    assert_eq!(claims["nbf"], NOW - 60);
    assert_eq!(claims["downloadable"], true);
    assert_eq!(
        claims["accessRules"],
        serde_json::json!([{"action": "allow", "type": "any"}])
    );

    // A changed claim no longer verifies: the check can fail.
    let mut parts: Vec<&str> = token.split('.').collect();
    let other = URL_SAFE_NO_PAD.encode(
        serde_json::to_vec(&serde_json::json!({"sub": "0123456789abcdef0123456789abcdef"}))
            .unwrap(),
    );
    parts[1] = &other;
    assert!(!verify_with_jwk(&parts.join(".")));

    // Defaults: one hour, no nbf, no rules; `sign` uses the clock.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let token = key.sign(VIDEO, &TokenOptions::default()).unwrap();
    let claims = part(token.expose(), 1);
    let exp = claims["exp"].as_i64().unwrap();
    assert!((now + 3600..=now + 3602).contains(&exp), "{exp} vs {now}");
    assert!(claims.get("nbf").is_none() && claims.get("accessRules").is_none());
    assert!(verify_with_jwk(token.expose()));
}

#[test]
fn a_lifetime_beyond_24_hours_is_refused() {
    let key = key();
    for lifetime in [Duration::from_secs(24 * 3600 + 1), Duration::ZERO] {
        let options = TokenOptions {
            lifetime,
            ..TokenOptions::default()
        };
        let e = key.sign_at(VIDEO, &options, NOW).unwrap_err();
        assert!(
            matches!(&e, Error::InvalidInput { what: "token lifetime", reason } if reason.contains("24 h")),
            "{e}"
        );
    }
    let exactly = TokenOptions {
        lifetime: Duration::from_secs(24 * 3600),
        ..TokenOptions::default()
    };
    let token = key.sign_at(VIDEO, &exactly, NOW).unwrap();
    assert_eq!(part(token.expose(), 1)["exp"], NOW + 24 * 3600);
    // A bad video id is refused before signing.
    assert!(key.sign_at("../x", &exactly, NOW).is_err());
}

fn refusal(id: &str, pem: &str) -> String {
    match SigningKey::from_base64_pem(id, pem) {
        Ok(_) => panic!("accepted"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_pems_get_clear_errors_that_do_not_repeat_them() {
    let id = "5213cfa121f70b8c1380686ffc371ba3";
    let e = refusal(id, "this is not base64!");
    assert!(e.contains("not base64"), "{e}");
    let pkcs8 = STANDARD.encode(data("signing-key-pkcs8.pem"));
    let e = refusal(id, &pkcs8);
    assert!(e.contains("PKCS#1") && e.contains("PrivateKey"), "{e}");
    let ec = STANDARD.encode(data("ec-key.pem"));
    let e = refusal(id, &ec);
    assert!(e.contains("EcPrivateKey") && e.contains("PKCS#1"), "{e}");
    let garbage = "-----BEGIN RSA PRIVATE KEY-----\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n-----END RSA PRIVATE KEY-----\n";
    let e = refusal(id, &STANDARD.encode(garbage));
    assert!(e.contains("not a usable RSA private key"), "{e}");
    let e = refusal(id, &STANDARD.encode("no pem here"));
    assert!(e.contains("no PEM section"), "{e}");
    let e = refusal("not/an/id", key_doc()["pem"].as_str().unwrap());
    assert!(e.contains("signing key id"), "{e}");
    // The errors never carry the key material.
    let pem = key_doc()["pem"].as_str().unwrap().to_owned();
    for e in [refusal(id, &pkcs8), refusal("not/an/id", &pem)] {
        assert!(
            !e.contains(&pem[40..80]) && !e.contains(&pkcs8[40..80]),
            "{e}"
        );
    }
}

#[test]
fn the_key_loads_from_every_form_and_never_prints_its_pem() {
    let doc = key_doc();
    let pem = doc["pem"].as_str().unwrap();
    let id = doc["id"].as_str().unwrap();
    let expected = key().sign_at(VIDEO, &TokenOptions::default(), NOW).unwrap();
    let envelope =
        serde_json::json!({"success": true, "errors": [], "messages": [], "result": doc});
    let decoded = String::from_utf8(STANDARD.decode(pem).unwrap()).unwrap();
    let lookup = |name: &str| match name {
        ENV_SIGNING_KEY_ID => Some(id.to_owned()),
        ENV_SIGNING_KEY_PEM => Some(pem.to_owned()),
        _ => None,
    };
    let keys = [
        SigningKey::from_json(&envelope.to_string()).unwrap(),
        SigningKey::from_base64_pem(id, pem).unwrap(),
        SigningKey::from_pem(id, decoded.as_bytes()).unwrap(),
        SigningKey::from_base64_pem(id, &decoded).unwrap(),
        SigningKey::from_lookup(lookup).unwrap().unwrap(),
    ];
    for key in keys {
        assert_eq!(
            key.sign_at(VIDEO, &TokenOptions::default(), NOW).unwrap(),
            expected
        );
        let debug = format!("{key:?}");
        assert!(
            debug.contains(id) && !debug.contains(&pem[40..80]),
            "{debug}"
        );
    }
    assert!(SigningKey::from_lookup(|_| None).unwrap().is_none());
    let half = |name: &str| (name == ENV_SIGNING_KEY_ID).then(|| id.to_owned());
    let e = SigningKey::from_lookup(half).unwrap_err().to_string();
    assert!(e.contains(ENV_SIGNING_KEY_PEM), "{e}");
    let e = SigningKey::from_json(r#"{"id": "abc"}"#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("`pem`"), "{e}");
}

/// The example `pem` of Cloudflare's own spec (the token request's) is a
/// key in the documented form, and loads.
#[test]
fn the_spec_example_pem_loads() {
    let spec: Value = serde_json::from_str(
        &std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../openapi/stream-downloads.openapi.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let pem = spec
        .pointer("/components/schemas/stream_signed_token_request/properties/pem/example")
        .and_then(Value::as_str)
        .unwrap();
    let key = SigningKey::from_base64_pem("ab0d4ef71g4425f8dcba9041231813000", pem);
    // (the example id is 33 characters: over the API's 32)
    assert!(key.is_err());
    let key = SigningKey::from_base64_pem("ab0d4ef71g4425f8dcba904123181300", pem).unwrap();
    assert!(key.sign_at(VIDEO, &TokenOptions::default(), NOW).is_ok());
}
