//! The web pages: `/` (search box and package list) and
//! `/packages/{owner}/{name}` (README card, versions, digests, yanked marks,
//! self-test results, the pull line). Server-rendered; every value is
//! escaped, and README Markdown is rendered with raw HTML shown as text.

use std::fmt::Write;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use pulldown_cmark::{CowStr, Event, Options, Parser, Tag};
use serde::Deserialize;

use crate::AppState;
use crate::store::VersionRecord;

/// The page routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/", get(index_page)).route("/packages/{owner}/{name}", get(package_page))
}

/// Escapes text for HTML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn safe_url(url: CowStr<'_>) -> CowStr<'_> {
    let lower = url.trim().to_ascii_lowercase();
    if ["javascript:", "vbscript:", "data:", "file:"].iter().any(|s| lower.starts_with(s)) {
        CowStr::from("#")
    } else {
        url
    }
}

/// Renders README Markdown to HTML: raw HTML in the Markdown is shown as
/// text, and script-like link targets are dropped.
pub fn render_markdown(markdown: &str) -> String {
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;
    let events = Parser::new_ext(markdown, options).map(|event| match event {
        Event::Html(html) | Event::InlineHtml(html) => Event::Text(html),
        Event::Start(Tag::Link { link_type, dest_url, title, id }) => {
            Event::Start(Tag::Link { link_type, dest_url: safe_url(dest_url), title, id })
        }
        Event::Start(Tag::Image { link_type, dest_url, title, id }) => {
            Event::Start(Tag::Image { link_type, dest_url: safe_url(dest_url), title, id })
        }
        other => other,
    });
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, events);
    html
}

/// Unix seconds as `YYYY-MM-DD HH:MM UTC`.
pub fn format_time(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02} UTC", rem / 3600, rem % 3600 / 60)
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}\
a{color:#0b5cad}header{display:flex;gap:1rem;align-items:center;border-bottom:1px solid #ddd;padding-bottom:.5rem}\
header h1{margin:0;font-size:1.4rem}form{margin-left:auto}input[type=search]{padding:.3rem;width:18rem}\
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #eee;padding:.3rem .5rem;text-align:left;vertical-align:top}\
code{background:#f4f4f4;padding:.1rem .3rem}.digest{font-family:monospace;font-size:.8rem;word-break:break-all}\
.yanked{color:#a00;font-weight:bold}.pass{color:#070}.fail{color:#a00}.card{border:1px solid #ddd;border-radius:6px;padding:0 1rem;margin:1rem 0}\
.pull{font-size:1.1rem;background:#f4f4f4;padding:.6rem;border-radius:4px}";

fn page(title: &str, query: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title} · envhub</title><style>{STYLE}</style></head>\
         <body><header><h1><a href=\"/\">envhub</a></h1><form action=\"/\" method=\"get\">\
         <input type=\"search\" name=\"q\" value=\"{query}\" placeholder=\"Search environments\" aria-label=\"Search\"> \
         <button type=\"submit\">Search</button></form></header><main>{body}</main></body></html>",
        title = escape(title),
        query = escape(query),
    ))
}

/// `?q=`.
#[derive(Deserialize)]
struct PageQuery {
    #[serde(default)]
    q: String,
}

/// `GET /`: the search box and the package list.
async fn index_page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(query): Query<PageQuery>,
) -> Response {
    let patterns = match crate::api::read_patterns(&state, &headers).await {
        Ok(patterns) => patterns,
        Err(e) => return e.into_response(),
    };
    let q: String = query.q.trim().chars().take(crate::api::MAX_QUERY_BYTES).collect();
    let hits = match state.storage.search(&q, crate::api::MAX_SEARCH_LIMIT, 0).await {
        Ok(hits) => crate::api::visible(hits, patterns.as_deref()),
        Err(e) => {
            return (StatusCode::INTERNAL_SERVER_ERROR, page("error", "", &escape(&e.to_string()))).into_response();
        }
    };
    let mut body = String::new();
    let heading = if query.q.trim().is_empty() {
        "Environments".to_owned()
    } else {
        format!("Results for “{}”", query.q.trim())
    };
    let _ = write!(body, "<h2>{}</h2>", escape(&heading));
    if hits.is_empty() {
        body.push_str("<p>No environments found.</p>");
    } else {
        body.push_str("<table><thead><tr><th>Environment</th><th>Latest</th><th>Description</th></tr></thead><tbody>");
        for hit in &hits {
            let _ = write!(
                body,
                "<tr><td><a href=\"/packages/{n}\">{n}</a></td><td>{v}</td><td>{d}</td></tr>",
                n = escape(&hit.name),
                v = escape(hit.latest.as_deref().unwrap_or("(all yanked)")),
                d = escape(&hit.description),
            );
        }
        body.push_str("</tbody></table>");
    }
    page("Environments", &query.q, &body).into_response()
}

fn self_test_cell(v: &VersionRecord) -> String {
    let t = &v.self_test;
    let tasks = t["tasks"].as_u64().unwrap_or(0);
    if t["passed"].as_bool() == Some(true) {
        format!(
            "<span class=\"pass\">passed</span> ({tasks} tasks, {} validated)",
            t["validated"].as_u64().unwrap_or(0)
        )
    } else {
        format!("<span class=\"fail\">failed</span> ({tasks} tasks)")
    }
}

/// `GET /packages/{owner}/{name}`: the environment page.
async fn package_page(State(state): State<Arc<AppState>>, Path((owner, name)): Path<(String, String)>) -> Response {
    let full = format!("{owner}/{name}");
    let record = match state.storage.package(&full).await {
        Ok(Some(record)) => record,
        Ok(None) => {
            let body = format!("<h2>No environment {}</h2>", escape(&full));
            return (StatusCode::NOT_FOUND, page("not found", "", &body)).into_response();
        }
        Err(e) => {
            return (StatusCode::INTERNAL_SERVER_ERROR, page("error", "", &escape(&e.to_string()))).into_response();
        }
    };
    let shown = record.latest().or(record.versions.last());
    let mut body = String::new();
    let _ = write!(body, "<h2>{}</h2>", escape(&record.name));
    if let Some(v) = shown {
        let _ = write!(
            body,
            "<p>{}</p><p class=\"pull\"><code>envhub pull {}@{}</code></p><p>Licence: {} · Owners: {}</p>",
            escape(&v.description),
            escape(&record.name),
            escape(&v.version),
            escape(&v.license),
            escape(&record.owners.join(", ")),
        );
    }
    body.push_str(
        "<h3>Versions</h3><table><thead><tr><th>Version</th><th>Published</th><th>Size</th><th>Self-test</th><th>Digest</th></tr></thead><tbody>",
    );
    for v in record.versions.iter().rev() {
        let yanked = if v.yanked { " <span class=\"yanked\">yanked</span>" } else { "" };
        let _ = write!(
            body,
            "<tr><td>{ver}{yanked}</td><td>{at}</td><td>{size} B</td><td>{test}</td><td class=\"digest\"><a href=\"{href}\">{digest}</a></td></tr>",
            ver = escape(&v.version),
            at = format_time(v.published_at),
            size = v.size,
            test = self_test_cell(v),
            href = escape(&crate::api::blob_path(&v.digest)),
            digest = escape(&v.digest),
        );
    }
    body.push_str("</tbody></table>");
    let readme = match shown {
        Some(v) => state.storage.readme(&record.name, &v.version).await.ok().flatten(),
        None => None,
    };
    if let Some(readme) = readme.as_ref() {
        let _ = write!(body, "<section class=\"card\" id=\"readme\">{}</section>", render_markdown(readme));
    }
    page(&record.name, "", &body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_raw_html_is_text() {
        let html = render_markdown("# Hi\n\n<script>alert(1)</script>\n\n[x](javascript:alert(1)) *ok*");
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(!html.contains("javascript:"), "{html}");
        assert!(html.contains("<em>ok</em>"));
    }

    #[test]
    fn dates() {
        assert_eq!(format_time(0), "1970-01-01 00:00 UTC");
        assert_eq!(format_time(1_709_251_200), "2024-03-01 00:00 UTC");
    }
}
