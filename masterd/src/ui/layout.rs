//! The shell every UI page shares (head, navigation, the connection banner, the flash line) and
//! the small formatting helpers the pages use. A page is two parts: `live`, re-rendered and
//! swapped in by the page's script whenever the master's state changes, and `fixed` (forms),
//! rendered once so that what a user is typing is never replaced. With JavaScript off a page is
//! still complete: both parts are in the HTML.

use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};

/// The request header the page script sends to get only the live part.
pub const FRAGMENT_HEADER: &str = "x-gantry-fragment";

/// Which navigation entry a page belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Cluster,
    Services,
    Jobs,
    Tasks,
    Frameworks,
}

impl Section {
    const ALL: [(Section, &'static str, &'static str); 5] = [
        (Section::Cluster, "Cluster", "/"),
        (Section::Services, "Services", "/ui/services"),
        (Section::Jobs, "Jobs", "/ui/jobs"),
        (Section::Tasks, "Tasks", "/ui/tasks"),
        (Section::Frameworks, "Frameworks", "/ui/frameworks"),
    ];
}

/// One page.
pub struct Page {
    pub title: String,
    pub section: Section,
    /// Rendered once, above the live part (search and filter boxes).
    pub top: Markup,
    /// Re-rendered on every state change.
    pub live: Markup,
    /// Rendered once (forms, log viewers).
    pub fixed: Markup,
}

impl Page {
    /// A page with only a live part.
    pub fn live(title: impl Into<String>, section: Section, live: Markup) -> Page {
        Page {
            title: title.into(),
            section,
            top: html! {},
            live,
            fixed: html! {},
        }
    }
}

/// True when the request asks for the live part only.
pub fn wants_fragment(headers: &HeaderMap) -> bool {
    headers.contains_key(FRAGMENT_HEADER)
}

/// The whole page, or only its live part.
pub fn respond(headers: &HeaderMap, page: Page) -> Response {
    let markup = if wants_fragment(headers) {
        page.live
    } else {
        shell(&page)
    };
    let mut resp = markup.into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn shell(page: &Page) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (page.title) " · Gantry" }
                link rel="stylesheet" href="/ui/assets/gantry.css";
                script src="/ui/assets/gantry.js" defer {}
            }
            body {
                header.top {
                    a.brand href="/" { "Gantry" }
                    nav {
                        @for (section, name, href) in Section::ALL {
                            a href=(href) class=[(section == page.section).then_some("active")] { (name) }
                        }
                    }
                    span #conn .conn hidden { }
                }
                div #flash .flash hidden role="status" {}
                main {
                    (page.top)
                    div #live { (page.live) }
                    (page.fixed)
                }
            }
        }
    }
}

/// `1.5 GiB`, `512 MiB` from MiB.
pub fn mib(v: f64) -> String {
    if v >= 1024.0 * 1024.0 {
        format!("{:.1} TiB", v / (1024.0 * 1024.0))
    } else if v >= 1024.0 {
        format!("{:.1} GiB", v / 1024.0)
    } else {
        format!("{v:.0} MiB")
    }
}

/// A CPU amount without needless decimals: `2`, `0.5`.
pub fn cpus(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// `in ~24 hours`, `~3 minutes ago`: the distance from `now` to `at` (seconds since the epoch),
/// as Chronos's job table shows the next run.
pub fn relative(at: f64, now: f64) -> String {
    let d = at - now;
    let a = d.abs();
    let (n, unit) = if a < 60.0 {
        (a, "second")
    } else if a < 3600.0 {
        (a / 60.0, "minute")
    } else if a < 2.0 * 86400.0 {
        (a / 3600.0, "hour")
    } else {
        (a / 86400.0, "day")
    };
    let n = n.round().max(1.0) as u64;
    let plural = if n == 1 { "" } else { "s" };
    if d >= 0.0 {
        format!("in ~{n} {unit}{plural}")
    } else {
        format!("~{n} {unit}{plural} ago")
    }
}

/// A duration in seconds as `1.2 s`, `3 min 4 s`, `2 h 5 min`.
pub fn duration(secs: f64) -> String {
    if secs < 60.0 {
        format!("{secs:.1} s")
    } else if secs < 3600.0 {
        format!("{} min {} s", (secs / 60.0) as u64, (secs % 60.0) as u64)
    } else {
        format!(
            "{} h {} min",
            (secs / 3600.0) as u64,
            ((secs % 3600.0) / 60.0) as u64
        )
    }
}

/// Percent-encodes a path segment or query value (everything but unreserved characters).
pub fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A used/total bar with its figures.
pub fn bar(used: f64, total: f64, label: String) -> Markup {
    let pct = if total > 0.0 {
        (used / total * 100.0).clamp(0.0, 100.0)
    } else {
        0.0
    };
    html! {
        span.bar title=(label) {
            span.fill style=(format!("width:{pct:.0}%")) {}
            span.text { (label) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times_read_as_chronos_shows_them() {
        assert_eq!(relative(86_400.0, 0.0), "in ~24 hours");
        assert_eq!(relative(30.0, 0.0), "in ~30 seconds");
        assert_eq!(relative(0.0, 180.0), "~3 minutes ago");
        assert_eq!(relative(5.0 * 86_400.0, 0.0), "in ~5 days");
        assert_eq!(relative(0.2, 0.0), "in ~1 second");
    }

    #[test]
    fn figures_are_short_and_encoding_keeps_only_unreserved() {
        assert_eq!(mib(512.0), "512 MiB");
        assert_eq!(mib(1536.0), "1.5 GiB");
        assert_eq!(cpus(2.0), "2");
        assert_eq!(cpus(0.25), "0.25");
        assert_eq!(enc("/a/b c"), "%2Fa%2Fb%20c");
        assert_eq!(duration(75.0), "1 min 15 s");
    }
}
