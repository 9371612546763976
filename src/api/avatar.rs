//! `GET /avatar/<username>`, as Rocket.Chat serves it
//! (`server/routes/avatar/user.ts`): the stored image with its type and
//! `Last-Modified`, plus an `ETag` (upstream's `avatarETag`) that
//! `If-None-Match` answers with a 304; without an image, the SVG of the
//! username's first letter, as upstream's fallback.

use crate::store::avatars;
use crate::store::schema::Date;
use crate::store::users::{IndexKey, Users};

use super::{ApiError, Env, Request, Response};

/// Upstream's `Last-Modified` of every letters fallback.
const FALLBACK_LAST_MODIFIED: &str = "Thu, 01 Jan 2015 00:00:00 GMT";
/// Upstream's colours, picked by the name's length.
const COLORS: [&str; 6] = ["#158D65", "#7F1B9F", "#B68D00", "#E26D0E", "#10529E", "#6C727A"];

/// The handler.
pub fn serve(req: &Request, env: &Env<'_>) -> Response {
    match answer(req, env) {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

fn answer(req: &Request, env: &Env<'_>) -> Result<Response, ApiError> {
    let name = path_decode(req.path.strip_prefix("/avatar/").unwrap_or_default());
    if name.is_empty() {
        return Ok(Response { status: 404, headers: Vec::new(), body: serde_json::Value::Null, raw: Some(Vec::new()) });
    }
    // `Accounts_AvatarCacheTime` is 0 by default.
    let mut headers = vec![("Cache-Control", "public, max-age=0".to_owned()), ("Content-Disposition", "inline".to_owned())];
    if let Some(letters_of) = name.strip_prefix('@') {
        return Ok(letters(req, headers, letters_of));
    }
    let users = Users::new(env.store);
    let stored = match users.by_index(&IndexKey::username(&name))? {
        Some(doc) => avatars::avatar(env.store, &doc.id)?,
        None => None,
    };
    let Some(avatar) = stored else {
        if req.header("if-modified-since") == Some(FALLBACK_LAST_MODIFIED) {
            return Ok(Response { status: 304, headers, body: serde_json::Value::Null, raw: Some(Vec::new()) });
        }
        return Ok(letters(req, headers, &name));
    };
    let last_modified = http_date(avatar.uploaded_at);
    let etag = format!("\"{}\"", avatar.etag);
    headers.push(("Content-Security-Policy", "default-src 'none'".to_owned()));
    headers.push(("Last-Modified", last_modified.clone()));
    headers.push(("ETag", etag.clone()));
    let none_match = req.header("if-none-match").is_some_and(|v| v.split(',').any(|t| matches!(t.trim(), "*") || t.trim() == etag));
    let not_modified = req.header("if-modified-since") == Some(last_modified.as_str());
    if none_match || (req.header("if-none-match").is_none() && not_modified) {
        return Ok(Response { status: 304, headers, body: serde_json::Value::Null, raw: Some(Vec::new()) });
    }
    let Some(bytes) = avatar.bytes() else {
        return Err(ApiError::Store(crate::store::StoreError::Corrupt {
            key: format!("avatar of {name}"),
            reason: "not base64".to_owned(),
        }));
    };
    headers.push(("Content-Type", avatar.content_type));
    Ok(Response { status: 200, headers, body: serde_json::Value::Null, raw: Some(bytes) })
}

/// Upstream's `serveSvgAvatarInRequestedFormat` (SVG only) for `name`.
fn letters(req: &Request, mut headers: Vec<(&'static str, String)>, name: &str) -> Response {
    let size = req.query_param("size").and_then(|s| s.trim().parse::<i64>().ok()).filter(|s| *s != 0).map(|s| s.clamp(16, 1024));
    headers.push(("Last-Modified", FALLBACK_LAST_MODIFIED.to_owned()));
    headers.push(("Content-Type", "image/svg+xml".to_owned()));
    Response { status: 200, headers, body: serde_json::Value::Null, raw: Some(render_svg_letters(name, size.unwrap_or(200)).into_bytes()) }
}

/// Upstream's `renderSVGLetters(username, viewSize)` with one initial.
pub fn render_svg_letters(name: &str, view_size: i64) -> String {
    let (color, initials) = if name == "?" {
        ("#000", "?".to_owned())
    } else {
        // `name.length` counts UTF-16 units.
        let color = COLORS[name.encode_utf16().count() % COLORS.len()];
        (color, name.chars().filter(char::is_ascii_alphanumeric).take(1).collect::<String>().to_ascii_uppercase())
    };
    let reduction = if initials.chars().count() > 1 { (initials.chars().count() as f64).powi(2) / 10.0 } else { 0.0 };
    let font_size = view_size as f64 / (1.6 + reduction);
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {view_size} {view_size}\">\n<rect width=\"100%\" height=\"100%\" fill=\"{color}\"/>\n\
         <text x=\"50%\" y=\"50%\" dy=\"0.36em\" text-anchor=\"middle\" pointer-events=\"none\" fill=\"#ffffff\" \
         font-family=\"'Helvetica', 'Arial', 'Lucida Grande', 'sans-serif'\" font-size=\"{font_size}\">\n{initials}\n</text>\n</svg>"
    )
}

/// RFC 7231's IMF-fixdate, as JavaScript's `toUTCString`.
pub fn http_date(at: Date) -> String {
    let iso = at.iso(); // 2026-11-29T04:15:45.000Z
    let days = at.millis.div_euclid(86_400_000);
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][days.rem_euclid(7) as usize];
    let month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        [iso.get(5..7).and_then(|m| m.parse::<usize>().ok()).unwrap_or(1).clamp(1, 12) - 1];
    format!(
        "{weekday}, {} {month} {} {} GMT",
        iso.get(8..10).unwrap_or("01"),
        iso.get(0..4).unwrap_or("1970"),
        iso.get(11..19).unwrap_or("00:00:00")
    )
}

/// `%XX` decoding of a path segment (`+` stays `+`); invalid UTF-8 is replaced.
fn path_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], text.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_javascripts_to_utc_string() {
        assert_eq!(http_date(Date { millis: 1_420_070_400_000 }), FALLBACK_LAST_MODIFIED);
        assert_eq!(http_date(Date { millis: 1_800_000_000_000 }), "Fri, 15 Jan 2027 08:00:00 GMT");
    }

    #[test]
    fn letters_are_upstreams_svg() {
        assert_eq!(
            render_svg_letters("alice", 200),
            "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 200 200\">\n<rect width=\"100%\" height=\"100%\" fill=\"#6C727A\"/>\n\
             <text x=\"50%\" y=\"50%\" dy=\"0.36em\" text-anchor=\"middle\" pointer-events=\"none\" fill=\"#ffffff\" \
             font-family=\"'Helvetica', 'Arial', 'Lucida Grande', 'sans-serif'\" font-size=\"125\">\nA\n</text>\n</svg>"
        );
        assert!(render_svg_letters("b", 100).contains("font-size=\"62.5\""));
        assert!(render_svg_letters("?", 200).contains("fill=\"#000\""));
        assert_eq!(path_decode("j%C3%BCrgen+x"), "jürgen+x");
    }
}
