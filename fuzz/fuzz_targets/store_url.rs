//! Arbitrary text parsed as a store URL: `eventsrc::StoreUrl`, and PostgreSQL's URL and
//! `key=value` forms through `eventsrc_postgres::PgUrl`.
//!
//! Nothing may panic. What the documentation promises is asserted:
//! - a PostgreSQL URL that parses never shows its password (`Display`, `Debug`), wherever the
//!   password can be told apart from the rest of the text;
//! - `StoreUrl`'s `Display` parses back to the same value, except that a PostgreSQL password
//!   is written `***` (so only URLs without a password are compared);
//! - `PgUrl`'s `Display` of a URL without a password is the URL as given (trimmed, the scheme in
//!   lower case), so it parses back to the same value; the `key=value` form is shown with every
//!   value quoted, which reads back the same.
#![no_main]

use eventsrc::{OpenStoreError, StoreUrl};
use eventsrc_postgres::PgUrl;
use libfuzzer_sys::fuzz_target;

/// `text` percent-decoded as the URL parser decodes each part; what is not valid UTF-8 after
/// decoding is replaced.
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |at: usize| bytes.get(at).and_then(|b| char::from(*b).to_digit(16));
        match (bytes[i], hex(i + 1), hex(i + 2)) {
            (b'%', Some(high), Some(low)) => {
                out.push(u8::try_from(high * 16 + low).unwrap_or_default());
                i += 3;
            }
            (byte, _, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// How often `needle` occurs in `haystack`, ignoring ASCII case, overlaps included.
fn occurrences(haystack: &str, needle: &str) -> usize {
    let (haystack, needle) = (haystack.to_ascii_lowercase(), needle.to_ascii_lowercase());
    (0..haystack.len())
        .filter(|&at| {
            haystack
                .get(at..)
                .is_some_and(|rest| rest.starts_with(&needle))
        })
        .count()
}

/// The password `url` was parsed with, when it can be told apart from the rest of `input`:
/// at least three characters, none of `*` (which the mask writes), `=`, `'` or `\` (which the
/// `key=value` form writes as it shows its pairs, `password =x` as `password=***`), occurring once in the input, decoded, and no `\` in the
/// input (whose escapes could make the password from other text). Then any occurrence in what
/// is shown is the password showing.
fn telling_password<'a>(input: &str, url: &'a PgUrl) -> Option<&'a str> {
    let password = std::str::from_utf8(url.config().get_password()?).ok()?;
    let plain = password.chars().count() >= 3
        && !password.contains(['*', '=', '\'', '\\'])
        && !input.contains('\\');
    (plain && occurrences(&percent_decoded(input), password) == 1).then_some(password)
}

fn assert_hidden(password: &str, shown: &str) {
    assert_eq!(
        occurrences(&percent_decoded(shown), password),
        0,
        "the password {password:?} shows in {shown:?}"
    );
}

fn check_pg_url(input: &str) {
    let url = match input.parse::<PgUrl>() {
        Ok(url) => url,
        Err(error) => {
            let _ = format!("{error} {error:?}");
            return;
        }
    };
    let shown = url.to_string();
    // `Debug` shows what `Display` shows, and nothing else.
    assert_eq!(format!("{url:?}"), format!("PgUrl({shown:?})"));
    if let Some(password) = telling_password(input, &url) {
        assert_hidden(password, &shown);
    }
    if url.config().get_password().is_none() {
        let again = shown
            .parse::<PgUrl>()
            .unwrap_or_else(|e| panic!("{shown:?} does not parse back: {e}"));
        assert_eq!(again, url, "{input:?} shown as {shown:?}");
        assert_eq!(again.to_string(), shown);
        let trimmed = input.trim();
        if trimmed.split_once(':').is_some_and(|(scheme, _)| {
            scheme.eq_ignore_ascii_case("postgres") || scheme.eq_ignore_ascii_case("postgresql")
        }) {
            // A URL without a password prints as it was given, the scheme in lower case.
            let (scheme, rest) = trimmed.split_once(':').unwrap_or_default();
            assert_eq!(shown, format!("{}:{rest}", scheme.to_ascii_lowercase()));
        }
    }
}

fn check_store_url(input: &str) {
    let url = match input.parse::<StoreUrl>() {
        Ok(url) => url,
        Err(error) => {
            let _ = format!("{error} {error:?}");
            if let OpenStoreError::Postgres { url, .. } = &error {
                // The error shows the URL as `PgUrl`'s error does, masked.
                let pg = input
                    .parse::<PgUrl>()
                    .expect_err("the same URL fails alike");
                assert_eq!(Some(url.as_str()), pg.url().or(Some("a postgres: URL")));
            }
            return;
        }
    };
    let shown = url.to_string();
    let password = match &url {
        StoreUrl::Postgres(pg) => {
            let inner = pg.as_pg_url();
            assert_eq!(pg.to_string(), inner.to_string());
            assert_eq!(
                format!("{url:?}"),
                format!("Postgres(PostgresUrl({shown:?}))")
            );
            if let Some(password) = telling_password(input, inner) {
                assert_hidden(password, &shown);
            }
            inner.config().get_password().is_some()
        }
        _ => false,
    };
    if !password {
        let again = shown
            .parse::<StoreUrl>()
            .unwrap_or_else(|e| panic!("{shown:?} does not parse back: {e}"));
        assert_eq!(again, url, "{input:?} shown as {shown:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    check_store_url(input);
    check_pg_url(input);
});
