//! The web UI: pages, scripts and styles embedded in the binary and
//! served under `/ui` (`/` redirects there), with no request leaving the
//! server (no CDN, no remote fonts). The UI is a client of the HTTP API
//! like any other: it signs in with an API key, calls `/api/v1`, and the
//! server enforces every role whatever the UI shows.

pub(crate) mod live;
pub(crate) mod markdown;

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use ferroserve_core::Access;

use crate::routes::{route, Route};

/// One embedded file of the UI.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $type:expr) => {
        Asset {
            name: $name,
            content_type: $type,
            bytes: include_bytes!(concat!("../../ui/", $name)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file of the UI, by its path under `/ui/`.
const ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
    asset!("js/app.js", JS),
    asset!("js/api.js", JS),
    asset!("js/dom.js", JS),
    asset!("js/overview.js", JS),
    asset!("js/model.js", JS),
    asset!("js/rollout.js", JS),
    asset!("js/confirm.js", JS),
    asset!("js/jobs.js", JS),
    asset!("js/keys.js", JS),
    asset!("js/tryit.js", JS),
    asset!("js/chart.js", JS),
    asset!("js/live.js", JS),
    asset!("js/drift.js", JS),
    asset!("js/config.js", JS),
    asset!("vendor/uPlot.iife.min.js", JS),
    asset!("vendor/uPlot.min.css", "text/css; charset=utf-8"),
];

/// What the UI's pages may load and run: only the server's own files.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The UI's routes: its files, open to anyone since they hold no data
/// (the data comes from the API, under the caller's key; the live figures
/// it charts are `/api/v1/live`, in the management table).
pub(crate) fn table() -> Vec<Route> {
    vec![
        route(Method::GET, "/", Access::Open, to_ui),
        route(Method::GET, "/ui", Access::Open, to_ui),
        route(Method::GET, "/ui/", Access::Open, index),
        route(Method::GET, "/ui/{*path}", Access::Open, file),
    ]
}

/// `GET /` and `GET /ui`: to the UI's start page.
async fn to_ui() -> Redirect {
    Redirect::to("/ui/")
}

/// `GET /ui/`: the single page the UI runs in.
async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

/// `GET /ui/{path}`: one embedded file; every other path is the single
/// page too, so a reloaded or shared deep link opens the UI.
async fn file(Path(path): Path<String>, headers: HeaderMap) -> Response {
    let is_asset = ASSETS.iter().any(|a| a.name == path);
    serve(if is_asset { &path } else { "index.html" }, &headers)
}

fn serve(name: &str, headers: &HeaderMap) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.name == name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    // Revalidated on every load, answered 304 while unchanged: a new
    // release's UI is picked up at once, an unchanged one costs no bytes.
    let etag = format!("\"{}\"", &blake3::hash(asset.bytes).to_hex()[..16]);
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, asset.content_type)], asset.bytes).into_response()
    };
    let out = response.headers_mut();
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(etag) = HeaderValue::from_str(&etag) {
        out.insert(header::ETAG, etag);
    }
    out.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    out.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    /// The whole UI, gzipped, must stay within 300 KB.
    const MAX_GZIPPED_BYTES: usize = 300 * 1024;

    #[test]
    fn the_whole_ui_gzipped_fits_its_budget() {
        let mut total = 0;
        for asset in ASSETS {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            gz.write_all(asset.bytes).expect("gzip");
            total += gz.finish().expect("gzip").len();
        }
        assert!(
            total <= MAX_GZIPPED_BYTES,
            "the UI weighs {total} bytes gzipped, over its {MAX_GZIPPED_BYTES}"
        );
    }

    #[test]
    fn pages_load_nothing_from_elsewhere() {
        // Vendored libraries name their home in their license comment; the
        // pages' Content-Security-Policy lets nothing load from elsewhere.
        for asset in ASSETS.iter().filter(|a| !a.name.starts_with("vendor/")) {
            // An SVG names its XML namespace by URL; nothing is fetched.
            let text =
                String::from_utf8_lossy(asset.bytes).replace("http://www.w3.org/2000/svg", "");
            for remote in ["http://", "https://", "//cdn", "fonts.googleapis"] {
                assert!(
                    !text.contains(remote),
                    "{} refers to {remote}: the UI must work offline",
                    asset.name
                );
            }
        }
    }

    #[test]
    fn every_script_the_page_imports_is_embedded() {
        for asset in ASSETS
            .iter()
            .filter(|a| a.name.ends_with(".js") || a.name.ends_with(".html"))
        {
            let text = String::from_utf8_lossy(asset.bytes);
            for part in text.split(['"', '\'']) {
                let Some(local) = part
                    .strip_prefix("./")
                    .or_else(|| part.strip_prefix("/ui/"))
                else {
                    continue;
                };
                if local.ends_with(".js") || local.ends_with(".css") || local.ends_with(".svg") {
                    let local = local.trim_start_matches("./");
                    let under_js = format!("js/{local}");
                    assert!(
                        ASSETS.iter().any(|a| a.name == local || a.name == under_js),
                        "{} loads {part}, which is not embedded",
                        asset.name
                    );
                }
            }
        }
    }
}
