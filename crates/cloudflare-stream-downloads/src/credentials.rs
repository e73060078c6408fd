//! Cloudflare API credentials: which headers they add, and where they come from.

use std::fmt;

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};

use crate::error::Error;

/// Environment variable of an API token.
pub const ENV_API_TOKEN: &str = "CLOUDFLARE_API_TOKEN";
/// Environment variable of the e-mail that goes with a global API key.
pub const ENV_EMAIL: &str = "CLOUDFLARE_EMAIL";
/// Environment variable of a global API key.
pub const ENV_API_KEY: &str = "CLOUDFLARE_API_KEY";
/// Environment variable of a user service key.
pub const ENV_USER_SERVICE_KEY: &str = "CLOUDFLARE_API_USER_SERVICE_KEY";
/// Environment variable of the API base URL.
pub const ENV_BASE_URL: &str = "CLOUDFLARE_BASE_URL";
/// Environment variable of the default account id.
pub const ENV_ACCOUNT_ID: &str = "CLOUDFLARE_ACCOUNT_ID";

/// One of the three ways to authenticate to the Cloudflare API. `Debug`
/// never shows a secret.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// An API token (preferred): `Authorization: Bearer <token>`.
    ApiToken(String),
    /// A global API key with its account e-mail: `X-Auth-Email` + `X-Auth-Key`.
    ApiKey {
        /// The account's e-mail address.
        email: String,
        /// The global API key.
        key: String,
    },
    /// A user service key: `X-Auth-User-Service-Key`.
    UserServiceKey(String),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::ApiToken(_) => f.write_str("ApiToken(***)"),
            Credentials::ApiKey { email, .. } => f
                .debug_struct("ApiKey")
                .field("email", email)
                .field("key", &"***")
                .finish(),
            Credentials::UserServiceKey(_) => f.write_str("UserServiceKey(***)"),
        }
    }
}

impl Credentials {
    /// Read credentials with `lookup` (e.g. `std::env::var`): the API token
    /// first, else e-mail + API key, else the user service key. Empty
    /// values count as unset. `Ok(None)` when none is set.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, Error> {
        let get = |name: &str| lookup(name).filter(|v| !v.is_empty());
        if let Some(token) = get(ENV_API_TOKEN) {
            return Ok(Some(Credentials::ApiToken(token)));
        }
        match (get(ENV_EMAIL), get(ENV_API_KEY)) {
            (Some(email), Some(key)) => return Ok(Some(Credentials::ApiKey { email, key })),
            (None, Some(_)) => {
                return Err(Error::Config(format!(
                    "{ENV_API_KEY} is set but {ENV_EMAIL} is not; a global API key needs both"
                )));
            }
            _ => {}
        }
        Ok(get(ENV_USER_SERVICE_KEY).map(Credentials::UserServiceKey))
    }

    /// The headers these credentials add to a request, marked sensitive
    /// (hyper then keeps them out of HPACK tables; our logs never print
    /// headers). Fails when a value cannot be a header value.
    pub fn headers(&self) -> Result<HeaderMap, Error> {
        fn value(what: &str, v: &str) -> Result<HeaderValue, Error> {
            let mut value = HeaderValue::from_str(v).map_err(|_| {
                Error::Config(format!(
                    "the {what} contains characters not allowed in an HTTP header"
                ))
            })?;
            value.set_sensitive(true);
            Ok(value)
        }
        let mut headers = HeaderMap::new();
        match self {
            Credentials::ApiToken(token) => {
                headers.insert(
                    AUTHORIZATION,
                    value("API token", &format!("Bearer {token}"))?,
                );
            }
            Credentials::ApiKey { email, key } => {
                headers.insert(
                    HeaderName::from_static("x-auth-email"),
                    value("e-mail", email)?,
                );
                headers.insert(
                    HeaderName::from_static("x-auth-key"),
                    value("API key", key)?,
                );
            }
            Credentials::UserServiceKey(key) => {
                headers.insert(
                    HeaderName::from_static("x-auth-user-service-key"),
                    value("user service key", key)?,
                );
            }
        }
        Ok(headers)
    }
}
