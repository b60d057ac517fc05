//! The web page at `/`: one HTML document, three scripts and a stylesheet, embedded in the binary
//! with `include_str!` (no build step, nothing fetched from elsewhere). The page reads the JSON
//! API under `/api/v1` and draws everything in the browser. Every response carries a strict
//! Content-Security-Policy (`default-src 'self'`, no inline script or style, no plugins, no
//! framing), so even a payload that slipped past the page's escaping could not run script.
//! The page needs no state of its own, hence [`routes`] is generic over the router's state and
//! merges into the API router.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// The Content-Security-Policy sent with every page response.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; \
     base-uri 'none'; frame-ancestors 'none'; form-action 'none'";

const INDEX_HTML: &str = include_str!("assets/index.html");
const DOM_JS: &str = include_str!("assets/dom.js");
const DIAGRAM_JS: &str = include_str!("assets/diagram.js");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");
const FAVICON_SVG: &str = include_str!("assets/favicon.svg");

/// The page's routes: `/` and `/assets/...`.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route(
            "/assets/dom.js",
            get(|| async { asset("text/javascript; charset=utf-8", DOM_JS) }),
        )
        .route(
            "/assets/diagram.js",
            get(|| async { asset("text/javascript; charset=utf-8", DIAGRAM_JS) }),
        )
        .route(
            "/assets/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/assets/app.css",
            get(|| async { asset("text/css; charset=utf-8", APP_CSS) }),
        )
        .route(
            "/assets/favicon.svg",
            get(|| async { asset("image/svg+xml", FAVICON_SVG) }),
        )
        .route(
            "/favicon.ico",
            get(|| async { asset("image/svg+xml", FAVICON_SVG) }),
        )
}

/// One embedded file with its content type and the security headers.
fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // The assets change with the binary; revalidating is cheap and avoids a stale page
    // after an upgrade.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{to_bytes, Body};
    use axum::http::Request;
    use tower::ServiceExt;

    async fn get_path(path: &str) -> Response {
        routes::<()>()
            .oneshot(Request::get(path).body(Body::empty()).expect("request"))
            .await
            .expect("the router answers")
    }

    #[tokio::test]
    async fn serves_the_page_and_its_assets_with_a_strict_policy() {
        for (path, content_type, marker) in [
            ("/", "text/html; charset=utf-8", "<!doctype html>"),
            (
                "/assets/app.js",
                "text/javascript; charset=utf-8",
                "\"use strict\";",
            ),
            ("/assets/app.css", "text/css; charset=utf-8", "body"),
            ("/assets/favicon.svg", "image/svg+xml", "<svg"),
        ] {
            let response = get_path(path).await;
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            let headers = response.headers();
            assert_eq!(headers[header::CONTENT_TYPE], content_type, "{path}");
            let policy = headers[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .expect("ascii");
            assert!(policy.starts_with("default-src 'self'"), "{path}");
            assert!(!policy.contains("unsafe-inline") && !policy.contains("unsafe-eval"));
            assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
            let body = to_bytes(response.into_body(), 1 << 20).await.expect("body");
            let text = String::from_utf8(body.to_vec()).expect("utf-8");
            assert!(text.contains(marker), "{path}");
        }
        assert_eq!(
            get_path("/assets/nope.js").await.status(),
            StatusCode::NOT_FOUND
        );
    }

    #[test]
    fn the_html_has_no_inline_script_style_or_handler() {
        let html = INDEX_HTML.to_ascii_lowercase();
        for script in html.match_indices("<script").map(|(at, _)| &html[at..]) {
            let tag = &script[..script.find('>').expect("a closed tag")];
            assert!(
                tag.contains("src=\"/assets/"),
                "only external scripts: {tag}"
            );
            assert!(
                script[tag.len() + 1..].starts_with("</script>"),
                "empty script body"
            );
        }
        assert!(!html.contains("<style"), "no inline style element");
        assert!(!html.contains(" style="), "no inline style attribute");
        for (at, _) in html.match_indices(" on") {
            let name: String = html[at + 1..]
                .chars()
                .take_while(|c| c.is_ascii_alphabetic())
                .collect();
            let after = html[at + 1 + name.len()..].trim_start();
            assert!(!after.starts_with('='), "no inline event handler: {name}");
        }
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "nothing remote"
        );
    }

    #[test]
    fn the_script_inserts_no_html() {
        // Payload values reach the page as data; the script builds elements and sets
        // textContent only. Forbid the APIs that parse strings as HTML or code.
        for forbidden in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
            "new Function",
            "setTimeout(\"",
        ] {
            for (name, script) in [
                ("dom.js", DOM_JS),
                ("diagram.js", DIAGRAM_JS),
                ("app.js", APP_JS),
            ] {
                assert!(!script.contains(forbidden), "{name} uses {forbidden}");
            }
        }
    }
}
