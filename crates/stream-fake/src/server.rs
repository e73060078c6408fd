//! The two HTTP servers: the API under `/client/v4`, and the download host.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use serde_json::{Value, json};

use crate::faults::{Fault, RetryAfter, Route};
use crate::state::{FileRequest, Kind, World};
use crate::{catalog, content};

pub(crate) type Shared = Arc<Mutex<World>>;

/// Chunk size of streamed bodies.
const CHUNK: usize = 64 * 1024;

/// Code and message of Cloudflare's authentication failure.
pub const AUTH_ERROR: (i64, &str) = (10000, "Authentication error");
/// Code of the fake's "no such video" failure.
pub const NOT_FOUND: (i64, &str) = (10003, "Not Found");
/// Code of the fake's "invalid id" failure.
pub const INVALID_ID: (i64, &str) = (10005, "Invalid identifier");
/// Code and message of Cloudflare's unknown-route failure (the spec's example).
pub const NO_ROUTE: (i64, &str) = (7003, "No route for the URI");
/// Code and message of the fake's rate-limit failure. (Cloudflare's API
/// sends 971 here, below the spec's `minimum: 1000`; the fake follows the
/// spec, and uses the edge's rate-limit code 1015.)
pub const RATE_LIMITED: (i64, &str) = (1015, "You are being rate limited");
/// Code and message of the fake's failure for creating downloads of a video
/// that is not ready to stream (Cloudflare's code is not documented).
pub const NOT_READY: (i64, &str) = (10011, "Video is not ready to stream");
/// Code of the fake's failure for a listing query it cannot parse.
pub const BAD_QUERY: (i64, &str) = (10012, "Invalid query parameter");
/// Code of the fake's failure for a request body it cannot take.
pub const BAD_BODY: (i64, &str) = (10013, "Invalid request body");

pub(crate) fn api_router(world: Shared) -> Router {
    let base = "/client/v4/accounts/{account}/stream/{video}/downloads";
    Router::new()
        .route("/client/v4/accounts/{account}/stream", get(list_videos))
        .route(
            "/client/v4/accounts/{account}/stream/keys",
            get(list_keys).post(create_key),
        )
        .route(
            "/client/v4/accounts/{account}/stream/keys/{key}",
            axum::routing::delete(delete_key),
        )
        .route(
            "/client/v4/accounts/{account}/stream/{video}",
            get(video_details),
        )
        .route(
            "/client/v4/accounts/{account}/stream/{video}/token",
            post(create_token),
        )
        .route(
            "/client/v4/accounts/{account}/stream/watermarks",
            get(list_watermarks),
        )
        .route(
            "/client/v4/accounts/{account}/stream/{video}/captions",
            get(list_captions),
        )
        .route(
            "/client/v4/accounts/{account}/stream/{video}/captions/{language}",
            get(one_caption),
        )
        .route(
            "/client/v4/accounts/{account}/stream/{video}/captions/{language}/vtt",
            get(caption_vtt),
        )
        .route(
            "/client/v4/accounts/{account}/stream/{video}/audio",
            get(audio_tracks),
        )
        .route(base, get(list).post(create_all).delete(delete_all))
        .route(
            &format!("{base}/{{kind}}"),
            post(create_one).delete(delete_one),
        )
        .fallback(|| async { failure(StatusCode::NOT_FOUND, NO_ROUTE) })
        .with_state(world)
}

pub(crate) fn files_router(world: Shared) -> Router {
    Router::new()
        .route("/{video}/downloads/{file}", get(file))
        .route("/{video}/manifest/video.m3u8", get(manifest))
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found\n") })
        .with_state(world)
}

fn envelope(result: Value) -> Value {
    json!({ "result": result, "success": true, "errors": [], "messages": [] })
}

fn failure_body((code, message): (i64, &str)) -> Value {
    json!({
        "result": null,
        "success": false,
        "errors": [{ "code": code, "message": message }],
        "messages": []
    })
}

/// A failure body whose message adds why.
fn failure_because(error: (i64, &str), reason: &str) -> Value {
    let mut body = failure_body(error);
    body["errors"][0]["message"] = json!(format!("{}: {reason}", error.1));
    body
}

fn failure(status: StatusCode, error: (i64, &str)) -> Response {
    json_response(status, &failure_body(error))
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// A valid Cloudflare id: 1..=32 of `[A-Za-z0-9_-]`.
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 32
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// 401 without credentials, 403 with wrong ones, None when accepted.
fn check_auth(world: &World, headers: &HeaderMap) -> Option<StatusCode> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let config = &world.config;
    let token = get("authorization").and_then(|v| v.strip_prefix("Bearer "));
    let (email, key) = (get("x-auth-email"), get("x-auth-key"));
    let service = get("x-auth-user-service-key");
    if token == Some(config.api_token.as_str())
        || (email == Some(config.api_key.0.as_str()) && key == Some(config.api_key.1.as_str()))
        || service == Some(config.user_service_key.as_str())
    {
        return None;
    }
    if token.is_none() && email.is_none() && key.is_none() && service.is_none() {
        Some(StatusCode::UNAUTHORIZED)
    } else {
        Some(StatusCode::FORBIDDEN)
    }
}

/// The JSON answer of one API operation, before faults.
type Answer = (StatusCode, Value);

/// Everything common to the six operations: faults, auth, id checks, then
/// `op` on the world. `video` is `None` for the listing.
async fn api(
    world: Shared,
    route: Route,
    headers: HeaderMap,
    account: String,
    video: Option<String>,
    op: impl FnOnce(&mut World) -> Answer,
) -> Response {
    let fault = match prologue(&world, route).await {
        Ok(fault) => fault,
        Err(response) => return response,
    };
    let (status, body) = {
        let mut w = world.lock().unwrap();
        answer(&mut w, &headers, &account, video.as_deref(), op)
    };
    let text = body.to_string();
    match fault {
        Some(Fault::CutMidBody) => cut_body(status, "application/json", Bytes::from(text)),
        Some(Fault::TruncatedJson) => {
            let half = text.len() / 2;
            (
                status,
                [(header::CONTENT_TYPE, "application/json")],
                text[..half].to_owned(),
            )
                .into_response()
        }
        _ => (status, [(header::CONTENT_TYPE, "application/json")], text).into_response(),
    }
}

/// What every API request meets first: the rate limit, then an armed
/// fault that answers in place of the operation (`Err`), or one that
/// changes its answer (`Ok`).
async fn prologue(world: &Shared, route: Route) -> Result<Option<Fault>, Response> {
    let (fault, locked) = {
        let mut w = world.lock().unwrap();
        let locked = w.admit(route);
        (w.take_fault(route), locked)
    };
    if let Some(wait) = locked {
        // Whole seconds, rounded up, as Cloudflare sends them.
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        return Err(rate_limited(RetryAfter::Seconds(secs)));
    }
    match fault {
        Some(Fault::RateLimited(after)) => Err(rate_limited(after)),
        Some(Fault::ServerErrorHtml(status)) => Err(html_error(status)),
        Some(Fault::OkHtml) => Err(html_page(StatusCode::OK, "<h1>Sign in to continue</h1>")),
        Some(Fault::SuccessFalse) => Err(json_response(
            StatusCode::OK,
            &failure_body((
                1002,
                "Temporary failure; the answer says success: false at HTTP 200",
            )),
        )),
        Some(Fault::Slow(delay)) => {
            tokio::time::sleep(delay).await;
            Ok(fault)
        }
        _ => Ok(fault),
    }
}

fn answer(
    w: &mut World,
    headers: &HeaderMap,
    account: &str,
    video: Option<&str>,
    op: impl FnOnce(&mut World) -> Answer,
) -> Answer {
    if let Some(status) = check_auth(w, headers) {
        return (status, failure_body(AUTH_ERROR));
    }
    if !valid_id(account) || !video.is_none_or(valid_id) {
        return (StatusCode::BAD_REQUEST, failure_body(INVALID_ID));
    }
    if account != w.config.account_id {
        return (StatusCode::FORBIDDEN, failure_body(AUTH_ERROR));
    }
    if let Some(video) = video
        && !w.has_video(video)
    {
        return (StatusCode::NOT_FOUND, failure_body(NOT_FOUND));
    }
    op(w)
}

/// `GET /accounts/{account}/stream`: see [`crate::catalog`].
async fn list_videos(
    State(world): State<Shared>,
    Path(account): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    api(world, Route::ListVideos, headers, account, None, move |w| {
        let parsed = catalog::ListQuery::parse(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let q = match parsed {
            Ok(q) => q,
            Err(reason) => {
                return (StatusCode::BAD_REQUEST, failure_because(BAD_QUERY, &reason));
            }
        };
        let (page, counts) = catalog::list(&w.catalog, &q, w.config.bounds);
        let videos: Vec<Value> = page.iter().map(|v| v.to_json(&w.playback_base())).collect();
        let mut body = envelope(Value::Array(videos));
        if let Some((total, range)) = counts {
            body["total"] = json!(total);
            body["range"] = json!(range);
        }
        (StatusCode::OK, body)
    })
    .await
}

/// `GET /accounts/{account}/stream/{video}`: the video as the listing
/// shows it (a video added by id only: its few known fields).
async fn video_details(
    State(world): State<Shared>,
    Path((account, video)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let v = video.clone();
    api(
        world,
        Route::Video,
        headers,
        account,
        Some(video),
        move |w| {
            let json = match w.catalog.iter().find(|c| c.uid == v) {
                Some(listed) => listed.to_json(&w.playback_base()),
                None => json!({
                    "uid": v,
                    "readyToStream": w.ready_to_stream(&v),
                    "requireSignedURLs": w.requires_signed_urls(&v),
                    "status": { "state": "ready" },
                }),
            };
            (StatusCode::OK, envelope(json))
        },
    )
    .await
}

/// `POST …/stream/{video}/token`: a token signed with the fake's own key;
/// the body is optional (its fields as Cloudflare documents them).
async fn create_token(
    State(world): State<Shared>,
    Path((account, video)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let v = video.clone();
    api(
        world,
        Route::Token,
        headers,
        account,
        Some(video),
        move |w| {
            let request = if body.is_empty() {
                json!({})
            } else {
                match serde_json::from_slice::<Value>(&body) {
                    Ok(value) if value.is_object() => value,
                    _ => return (StatusCode::BAD_REQUEST, failure_body(BAD_BODY)),
                }
            };
            match w.keys.token_for(&v, &request) {
                Ok(token) => (StatusCode::OK, envelope(json!({ "token": token }))),
                Err(reason) => (StatusCode::BAD_REQUEST, failure_because(BAD_BODY, &reason)),
            }
        },
    )
    .await
}

async fn create_key(
    State(world): State<Shared>,
    Path(account): Path<String>,
    headers: HeaderMap,
) -> Response {
    api(world, Route::CreateKey, headers, account, None, |w| {
        (StatusCode::OK, envelope(w.keys.create()))
    })
    .await
}

async fn list_keys(
    State(world): State<Shared>,
    Path(account): Path<String>,
    headers: HeaderMap,
) -> Response {
    api(world, Route::ListKeys, headers, account, None, |w| {
        (StatusCode::OK, envelope(w.keys.list()))
    })
    .await
}

async fn delete_key(
    State(world): State<Shared>,
    Path((account, key)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    api(world, Route::DeleteKey, headers, account, None, move |w| {
        if !valid_id(&key) {
            (StatusCode::BAD_REQUEST, failure_body(INVALID_ID))
        } else if w.keys.delete(&key) {
            (StatusCode::OK, envelope(json!("ok")))
        } else {
            (StatusCode::NOT_FOUND, failure_body(NOT_FOUND))
        }
    })
    .await
}

/// Creating downloads: refused for a video that is not ready to stream.
fn create_answer(w: &mut World, video: &str, kind: Kind) -> Answer {
    if !w.ready_to_stream(video) {
        return (StatusCode::BAD_REQUEST, failure_body(NOT_READY));
    }
    w.create(video, kind);
    (StatusCode::OK, envelope(downloads_map(w, video)))
}

/// The `{default?, audio?}` map of a video, with each download's file URL.
fn downloads_map(w: &World, video: &str) -> Value {
    let mut map = serde_json::Map::new();
    for (kind, view) in w.view(video) {
        map.insert(
            kind.name().into(),
            json!({
                "status": view.status,
                "percentComplete": view.percent,
                "url": format!(
                    "http://127.0.0.1:{}/{video}/downloads/{}.{}",
                    w.files_port,
                    kind.name(),
                    kind.extension()
                ),
            }),
        );
    }
    Value::Object(map)
}

async fn list(
    State(world): State<Shared>,
    Path((account, video)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let v = video.clone();
    api(
        world,
        Route::List,
        headers,
        account,
        Some(video),
        move |w| {
            w.poll(&v);
            (StatusCode::OK, envelope(downloads_map(w, &v)))
        },
    )
    .await
}

async fn create_all(
    State(world): State<Shared>,
    Path((account, video)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let v = video.clone();
    api(
        world,
        Route::Create,
        headers,
        account,
        Some(video),
        move |w| create_answer(w, &v, Kind::Default),
    )
    .await
}

async fn delete_all(
    State(world): State<Shared>,
    Path((account, video)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let v = video.clone();
    api(
        world,
        Route::Delete,
        headers,
        account,
        Some(video),
        move |w| {
            w.delete(&v, None);
            (StatusCode::OK, envelope(json!("ok")))
        },
    )
    .await
}

async fn create_one(
    State(world): State<Shared>,
    Path((account, video, kind)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let v = video.clone();
    api(
        world,
        Route::CreateType,
        headers,
        account,
        Some(video),
        move |w| match Kind::parse(&kind) {
            Some(kind) => create_answer(w, &v, kind),
            None => (StatusCode::NOT_FOUND, failure_body(NO_ROUTE)),
        },
    )
    .await
}

async fn delete_one(
    State(world): State<Shared>,
    Path((account, video, kind)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let v = video.clone();
    api(
        world,
        Route::DeleteType,
        headers,
        account,
        Some(video),
        move |w| match Kind::parse(&kind) {
            Some(kind) => {
                w.delete(&v, Some(kind));
                (StatusCode::OK, envelope(json!("ok")))
            }
            None => (StatusCode::NOT_FOUND, failure_body(NO_ROUTE)),
        },
    )
    .await
}

/// `GET …/stream/watermarks`: the account's watermark profiles.
async fn list_watermarks(
    State(world): State<Shared>,
    Path(account): Path<String>,
    headers: HeaderMap,
) -> Response {
    api(world, Route::Watermarks, headers, account, None, |_| {
        (StatusCode::OK, envelope(crate::captions::watermarks()))
    })
    .await
}

/// `GET …/stream/{video}/captions`: every caption of the video, ready or
/// not.
async fn list_captions(
    State(world): State<Shared>,
    Path((account, video)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let v = video.clone();
    api(
        world,
        Route::Captions,
        headers,
        account,
        Some(video),
        move |w| {
            let list: Vec<Value> = w.captions(&v).iter().map(|c| c.to_json()).collect();
            (StatusCode::OK, envelope(Value::Array(list)))
        },
    )
    .await
}

/// `GET …/stream/{video}/captions/{language}`: one caption (404 for a
/// language the video does not have).
async fn one_caption(
    State(world): State<Shared>,
    Path((account, video, language)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let v = video.clone();
    api(
        world,
        Route::Caption,
        headers,
        account,
        Some(video),
        move |w| match w.captions(&v).iter().find(|c| c.language == language) {
            Some(c) => (StatusCode::OK, envelope(c.to_json())),
            None => (StatusCode::NOT_FOUND, failure_body(NOT_FOUND)),
        },
    )
    .await
}

/// `GET …/stream/{video}/captions/{language}/vtt`: the WebVTT text
/// (`text/vtt`, not an envelope) of a ready caption; a failure envelope
/// (404) for a language the video does not have or one not ready.
async fn caption_vtt(
    State(world): State<Shared>,
    Path((account, video, language)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let fault = match prologue(&world, Route::Vtt).await {
        Ok(fault) => fault,
        Err(response) => return response,
    };
    let mut text = None;
    let (status, body) = {
        let mut w = world.lock().unwrap();
        answer(&mut w, &headers, &account, Some(&video), |w| {
            match w
                .captions(&video)
                .iter()
                .find(|c| c.language == language && c.status == "ready")
            {
                Some(c) => {
                    text = Some(c.vtt.clone());
                    (StatusCode::OK, Value::Null)
                }
                None => (StatusCode::NOT_FOUND, failure_body(NOT_FOUND)),
            }
        })
    };
    match (text, status) {
        (Some(vtt), StatusCode::OK) => {
            if fault == Some(Fault::CutMidBody) {
                return cut_body(StatusCode::OK, "text/vtt", Bytes::from(vtt));
            }
            (StatusCode::OK, [(header::CONTENT_TYPE, "text/vtt")], vtt).into_response()
        }
        _ => json_response(status, &body),
    }
}

/// `GET …/stream/{video}/audio`: the video's additional audio tracks.
async fn audio_tracks(
    State(world): State<Shared>,
    Path((account, video)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let v = video.clone();
    api(
        world,
        Route::Audio,
        headers,
        account,
        Some(video),
        move |w| {
            let list: Vec<Value> = w.audio_tracks(&v).iter().map(|a| a.to_json()).collect();
            (StatusCode::OK, envelope(json!({ "audio": list })))
        },
    )
    .await
}

/// `GET /{video}/manifest/video.m3u8` on the download host: the HLS master
/// manifest, listing the ready captions and audio tracks. A video that
/// requires signed URLs wants a token in place of its id (no
/// `downloadable` claim needed for playback): 401 without, 403 with a bad
/// one. No credential is needed or looked at. Faults: 5xx, 429, `html` (a
/// 200 that is not a playlist), `cut` (the body cut half-way), `slow`.
async fn manifest(State(world): State<Shared>, Path(segment): Path<String>) -> Response {
    let fault = world.lock().unwrap().take_fault(Route::Manifest);
    if let Some(Fault::Slow(delay)) = fault {
        tokio::time::sleep(delay).await;
    }
    let mut w = world.lock().unwrap();
    let tokened = crate::signed::is_token(&segment);
    let video = if tokened {
        match w.keys.verify_playback(&segment) {
            Ok(video) => video,
            Err(why) => {
                return (
                    StatusCode::FORBIDDEN,
                    format!("signed URL refused: {why}\n"),
                )
                    .into_response();
            }
        }
    } else {
        segment
    };
    w.file_requests.push(crate::state::FileRequest {
        path: format!("/{video}/manifest/video.m3u8"),
        signed: tokened,
        filename: None,
        range: None,
        credential_headers: Vec::new(),
    });
    match fault {
        Some(Fault::ServerErrorHtml(status)) => return html_error(status),
        Some(Fault::RateLimited(after)) => return rate_limited(after),
        Some(Fault::OkHtml) => {
            return html_page(
                StatusCode::OK,
                "<html><body>Sign in to the Wi-Fi</body></html>",
            );
        }
        _ => {}
    }
    if !w.has_video(&video) || !w.ready_to_stream(&video) {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    }
    if !tokened && w.requires_signed_urls(&video) {
        return (
            StatusCode::UNAUTHORIZED,
            "this video requires signed URLs\n",
        )
            .into_response();
    }
    let text = crate::captions::manifest(w.captions(&video), w.audio_tracks(&video));
    if fault == Some(Fault::CutMidBody) {
        return cut_body(
            StatusCode::OK,
            "application/vnd.apple.mpegurl",
            Bytes::from(text),
        );
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/vnd.apple.mpegurl")],
        text,
    )
        .into_response()
}

fn rate_limited(after: RetryAfter) -> Response {
    let mut response = match after {
        RetryAfter::Missing => json_response(StatusCode::TOO_MANY_REQUESTS, &Value::Null),
        _ => failure(StatusCode::TOO_MANY_REQUESTS, RATE_LIMITED),
    };
    let value = match after {
        RetryAfter::Seconds(s) => Some(s.to_string()),
        RetryAfter::HttpDate(d) => Some(httpdate::fmt_http_date(SystemTime::now() + d)),
        RetryAfter::Missing => None,
    };
    if let Some(value) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// An HTML page with `status` and `body` as its body's markup (an edge
/// error page, a captive portal).
fn html_page(status: StatusCode, body: &str) -> Response {
    let page = format!(
        "<!DOCTYPE html>\n<html><head><title>{} | stream-fake</title></head>\
         <body>{body}</body></html>\n",
        status.as_u16(),
    );
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=UTF-8")],
        page,
    )
        .into_response()
}

fn html_error(status: u16) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    html_page(
        status,
        &format!(
            "<h1>Error {}</h1><p>Bad gateway (injected by stream-fake).</p>",
            status.as_u16()
        ),
    )
}

/// How long a cut body waits before the cut, so the head and the first
/// half are on the wire (hyper would otherwise abort before sending them).
const CUT_PAUSE: std::time::Duration = std::time::Duration::from_millis(50);

fn cut_error() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::ConnectionReset,
        "stream-fake: connection cut mid-body",
    )
}

/// A response whose connection is closed after half of `body`.
fn cut_body(status: StatusCode, content_type: &'static str, body: Bytes) -> Response {
    let len = body.len();
    let half = body.slice(..len / 2);
    let stream = futures_util::stream::unfold(Some(half), |half| async move {
        match half {
            Some(half) => Some((Ok(half), None)),
            None => {
                tokio::time::sleep(CUT_PAUSE).await;
                Some((Err(cut_error()), None))
            }
        }
    });
    let mut response = Response::new(Body::from_stream(stream));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    response
}

#[derive(serde::Deserialize)]
pub(crate) struct FileQuery {
    filename: Option<String>,
}

async fn file(
    State(world): State<Shared>,
    Path((segment, file)): Path<(String, String)>,
    Query(query): Query<FileQuery>,
    headers: HeaderMap,
) -> Response {
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let tokened = crate::signed::is_token(&segment);
    let (fault, size, ready, signed, chunk_delay, video, refused) = {
        let mut w = world.lock().unwrap();
        // A token in place of the video id: the video it was made for.
        let (video, refused) = if tokened {
            match w.keys.verify(&segment) {
                Ok(video) => {
                    w.keys.accepted += 1;
                    (video, None)
                }
                Err(why) => {
                    w.keys.refused += 1;
                    ("(refused token)".to_owned(), Some(why))
                }
            }
        } else {
            (segment, None)
        };
        let credential_headers = [
            "authorization",
            "x-auth-email",
            "x-auth-key",
            "x-auth-user-service-key",
        ]
        .into_iter()
        .filter(|h| headers.contains_key(*h))
        .map(str::to_owned)
        .collect();
        w.file_requests.push(FileRequest {
            path: format!("/{video}/downloads/{file}"),
            signed: tokened,
            filename: query.filename.clone(),
            range: range.clone(),
            credential_headers,
        });
        let kind = match file.as_str() {
            "default.mp4" => Some(Kind::Default),
            "audio.m4a" => Some(Kind::Audio),
            _ => None,
        };
        let ready = kind.is_some_and(|k| w.is_ready(&video, k));
        if !ready {
            // Asking the download host is a check like a listing: under
            // `Progress::PerPoll` it advances generation too.
            w.poll(&video);
        }
        // Without a token, a video that requires signed URLs is refused.
        let signed = !tokened && w.requires_signed_urls(&video);
        // A fault on the body (cut, short, range ignored) is spent only on
        // a request that gets a body of more than its first byte: not on a
        // 401, 403 or 404, nor on a probe (`Range: bytes=0-0`).
        let probe = range.as_deref() == Some("bytes=0-0");
        let served = ready && !signed && refused.is_none() && !probe;
        let body_fault = |f: Fault| {
            matches!(
                f,
                Fault::CutMidBody | Fault::TruncatedJson | Fault::IgnoreRange | Fault::ShortFile
            )
        };
        (
            w.take_fault_where(Route::File, |f| served || !body_fault(f)),
            w.config.file_size,
            ready,
            signed,
            w.config.file_chunk_delay,
            video,
            refused,
        )
    };
    match fault {
        Some(Fault::RateLimited(after)) => return rate_limited(after),
        Some(Fault::ServerErrorHtml(status)) => return html_error(status),
        Some(Fault::Slow(delay)) => tokio::time::sleep(delay).await,
        _ => {}
    }
    if let Some(why) = refused {
        return (
            StatusCode::FORBIDDEN,
            format!("signed URL refused: {why}\n"),
        )
            .into_response();
    }
    if signed {
        // `requireSignedURLs`: Cloudflare's download host wants a signed
        // token in place of the video id.
        return (
            StatusCode::UNAUTHORIZED,
            "this video requires signed URLs (a token made with downloadable: true)\n",
        )
            .into_response();
    }
    if !ready {
        return (StatusCode::NOT_FOUND, "no such download, or not ready\n").into_response();
    }
    if let Some(name) = &query.filename
        && !(name.len() <= 120
            && !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    {
        return (
            StatusCode::BAD_REQUEST,
            "filename: at most 120 of [A-Za-z0-9-_]\n",
        )
            .into_response();
    }
    // A strong validator per file: the same video, type and size give the
    // same bytes. `If-Range` with another validator gets the whole file.
    let etag = format!("\"{video}-{file}-{size}\"");
    let if_range_ok = headers
        .get(header::IF_RANGE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v == etag);
    let short = fault == Some(Fault::ShortFile);
    let honour_range = !matches!(fault, Some(Fault::IgnoreRange | Fault::ShortFile)) && if_range_ok;
    let (status, start, end) = match range.as_deref().filter(|_| honour_range) {
        None if short => (StatusCode::OK, 0, size / 2),
        None => (StatusCode::OK, 0, size),
        Some(r) => match parse_range(r, size) {
            Some((start, end)) => (StatusCode::PARTIAL_CONTENT, start, end),
            None => {
                return (
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    [(header::CONTENT_RANGE, format!("bytes */{size}"))],
                )
                    .into_response();
            }
        },
    };
    let cut = matches!(fault, Some(Fault::CutMidBody | Fault::TruncatedJson));
    let send_end = if cut { start + (end - start) / 2 } else { end };
    let content = Arc::new(content::FileContent::new(&video, &file, size));
    let sent = world.lock().unwrap().file_bytes.clone();
    let stream = futures_util::stream::unfold(start, move |pos| {
        let content = content.clone();
        let sent = sent.clone();
        async move {
            if pos >= send_end {
                if cut && pos < end {
                    tokio::time::sleep(CUT_PAUSE).await;
                    return Some((Err(cut_error()), end));
                }
                return None;
            }
            let n = (send_end - pos).min(CHUNK as u64) as usize;
            if !chunk_delay.is_zero() {
                tokio::time::sleep(chunk_delay).await;
            }
            sent.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
            Some((
                Ok::<_, std::io::Error>(content.chunk(pos, n)),
                pos + n as u64,
            ))
        }
    });
    let mut response = Response::new(Body::from_stream(stream));
    *response.status_mut() = status;
    let h = response.headers_mut();
    let media = if file.ends_with(".m4a") {
        "audio/mp4"
    } else {
        "video/mp4"
    };
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    if status == StatusCode::PARTIAL_CONTENT
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{}/{size}", end - 1))
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    if let Some(name) = &query.filename
        && let Ok(v) = HeaderValue::from_str(&format!(
            "attachment; filename=\"{name}.{}\"",
            if media == "audio/mp4" { "m4a" } else { "mp4" }
        ))
    {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    response
}

/// `bytes=N-` or `bytes=N-M` -> [start, end) within `size`.
fn parse_range(value: &str, size: u64) -> Option<(u64, u64)> {
    let spec = value.trim().strip_prefix("bytes=")?;
    let (start, end) = spec.split_once('-')?;
    let start: u64 = start.trim().parse().ok()?;
    let end = match end.trim() {
        "" => size,
        e => e.parse::<u64>().ok()?.saturating_add(1).min(size),
    };
    (start < end).then_some((start, end))
}
