//! Tokens and signing keys through the client: a token for a video (signed
//! locally with the client's [`SigningKey`], or asked of the API), and
//! creating, listing and deleting the account's signing keys. The keys and
//! the signing themselves are [`crate::signing`]'s.

use std::sync::atomic::Ordering;

use crate::client::Client;
use crate::error::Error;
use crate::ids;
use crate::secret::Secret;
use crate::signing::{
    CreatedSigningKey, MAX_TOKEN_LIFETIME, SigningKey, TokenCounts, TokenOptions, unix_now,
};
use crate::types::{DeletedResponse, SigningKeyInfo, TokenRequest};

impl Client {
    /// Asks the API for a signed token for `video_id`
    /// (`POST …/stream/{id}/token`): one rate-limited API request. For a
    /// download, `request.downloadable` must be `true`. Prefer a
    /// [`SigningKey`] when many tokens are needed.
    pub async fn create_token(
        &self,
        video_id: &str,
        request: &TokenRequest,
    ) -> Result<Secret, Error> {
        let (account, video) = (self.account()?, ids::video_id(video_id)?);
        let latest = unix_now()? + MAX_TOKEN_LIFETIME.as_secs() as i64;
        if request.exp.is_some_and(|exp| exp > latest) {
            return Err(Error::InvalidInput {
                what: "token request",
                reason: "`exp` is more than 24 h ahead; Cloudflare refuses it".into(),
            });
        }
        let summary = self.account_path("POST", &format!("{video_id}/token"));
        let call = self.generated();
        let result = call.create_token(&account, &video, request).await;
        let result = self
            .finish_with_result(&call, summary.clone(), result)
            .await;
        let token = crate::envelope::withhold_secret_body(result)?
            .token
            .ok_or_else(|| Error::UnexpectedResponse {
                request: summary,
                status: reqwest::StatusCode::OK,
                content_type: Some("application/json".into()),
                body_snippet: "a token answer without `token`".into(),
            })?;
        self.shared.tokens.requested.fetch_add(1, Ordering::Relaxed);
        Ok(token)
    }

    /// A token for the downloads of `video_id`: signed locally with the
    /// client's [`SigningKey`] (no API request), or else asked of the API
    /// with `downloadable: true` and the default lifetime (one request).
    pub async fn token(&self, video_id: &str) -> Result<Secret, Error> {
        match &self.shared.signing_key {
            Some(key) => {
                let token = key.sign(video_id, &TokenOptions::default())?;
                self.shared
                    .tokens
                    .signed_locally
                    .fetch_add(1, Ordering::Relaxed);
                Ok(token)
            }
            None => {
                let request = TokenRequest {
                    downloadable: true,
                    ..TokenRequest::default()
                };
                self.create_token(video_id, &request).await
            }
        }
    }

    /// The signing key the client signs with, if it has one.
    pub fn signing_key(&self) -> Option<&SigningKey> {
        self.shared.signing_key.as_ref()
    }

    /// Tokens this client (and its clones) made so far.
    pub fn token_counts(&self) -> TokenCounts {
        TokenCounts {
            signed_locally: self.shared.tokens.signed_locally.load(Ordering::Relaxed),
            requested: self.shared.tokens.requested.load(Ordering::Relaxed),
        }
    }

    /// Creates a signing key (`POST …/stream/keys`). Its private key is in
    /// the answer only: keep it ([`CreatedSigningKey::raw`]) or lose it.
    pub async fn create_signing_key(&self) -> Result<CreatedSigningKey, Error> {
        let account = self.account()?;
        let summary = self.account_path("POST", "keys");
        let call = self.generated();
        let result = call.create_signing_key(&account).await;
        let key = crate::envelope::withhold_secret_body(
            self.finish_with_result(&call, summary.clone(), result)
                .await,
        )?;
        let missing = |what: &str| Error::UnexpectedResponse {
            request: summary.clone(),
            status: reqwest::StatusCode::OK,
            content_type: Some("application/json".into()),
            body_snippet: format!("a new signing key without `{what}`"),
        };
        let raw = serde_json::to_string(&key).map_err(|_| missing("a JSON form"))?;
        Ok(CreatedSigningKey {
            id: key
                .id
                .as_ref()
                .map(|id| id.as_str().to_owned())
                .ok_or_else(|| missing("id"))?,
            created: key.created,
            pem: key.pem.ok_or_else(|| missing("pem"))?,
            jwk: key.jwk,
            raw: Secret::new(raw),
        })
    }

    /// Lists the account's signing keys (`GET …/stream/keys`): ids and
    /// creation times, never a private key.
    pub async fn signing_keys(&self) -> Result<Vec<SigningKeyInfo>, Error> {
        let account = self.account()?;
        let summary = self.account_path("GET", "keys");
        let call = self.generated();
        let result = call.list_signing_keys(&account).await;
        self.finish_with_result(&call, summary, result).await
    }

    /// Deletes a signing key (`DELETE …/stream/keys/{id}`): **every token
    /// signed with it stops working**, including those of transfers in
    /// flight.
    pub async fn delete_signing_key(&self, key_id: &str) -> Result<(), Error> {
        let account = self.account()?;
        ids::check_id("signing key id", key_id)?;
        let key = ids::account_id(key_id).map_err(|_| Error::InvalidInput {
            what: "signing key id",
            reason: format!("{key_id:?}"),
        })?;
        let summary = self.account_path("DELETE", &format!("keys/{key_id}"));
        let call = self.generated();
        let result = call.delete_signing_key(&account, &key).await;
        self.finish_with_result::<DeletedResponse>(&call, summary, result)
            .await
            .map(drop)
    }
}
