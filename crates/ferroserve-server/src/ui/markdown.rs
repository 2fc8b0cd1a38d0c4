//! Model cards as HTML for the web UI: CommonMark (with tables and
//! strikethrough) rendered by pulldown-cmark, with the card's raw HTML
//! shown as text and links or images to script URLs neutralised, so that
//! a card can never run code in a reader's browser.

use pulldown_cmark::{html, CowStr, Event, Options, Parser, Tag};

/// URL schemes a card's links and images may not use.
const UNSAFE_SCHEMES: [&str; 3] = ["javascript:", "vbscript:", "data:"];

/// `markdown` as HTML that is safe to put into a page.
pub(crate) fn to_safe_html(markdown: &str) -> String {
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;
    let events = Parser::new_ext(markdown, options).map(|event| match event {
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) => Event::Start(Tag::Link {
            link_type,
            dest_url: safe_url(dest_url),
            title,
            id,
        }),
        Event::Start(Tag::Image {
            link_type,
            dest_url,
            title,
            id,
        }) => Event::Start(Tag::Image {
            link_type,
            dest_url: safe_url(dest_url),
            title,
            id,
        }),
        other => other,
    });
    let mut out = String::with_capacity(markdown.len() * 3 / 2);
    html::push_html(&mut out, events);
    out
}

/// `url`, or `#` when it uses a scheme that could run code.
fn safe_url(url: CowStr<'_>) -> CowStr<'_> {
    let lowered: String = url
        .chars()
        .filter(|c| !c.is_whitespace() && !c.is_control())
        .collect::<String>()
        .to_ascii_lowercase();
    if UNSAFE_SCHEMES.iter().any(|s| lowered.starts_with(s)) {
        CowStr::Borrowed("#")
    } else {
        url
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_becomes_html_with_tables() {
        let html = to_safe_html("# Iris\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n*fast*");
        assert!(html.contains("<h1>Iris</h1>"), "{html}");
        assert!(html.contains("<table>"), "{html}");
        assert!(html.contains("<em>fast</em>"), "{html}");
    }

    #[test]
    fn raw_html_is_shown_as_text_and_script_links_go_nowhere() {
        let html = to_safe_html(
            "<script>alert(1)</script>\n\nhi <img src=x onerror=alert(1)>\n\n\
             [x](javascript:alert(1)) [y]( JaVa\tScript:alert(1)) ![i](data:text/html,x) \
             [ok](https://example.com/a)",
        );
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<img src=x"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(!html.to_ascii_lowercase().contains("javascript:"), "{html}");
        assert!(!html.contains("data:text"), "{html}");
        assert!(html.contains("href=\"https://example.com/a\""), "{html}");
    }
}
