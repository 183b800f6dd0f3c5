//! Attribute parsing shared by the three macros: an error accumulator and value readers.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote};
use syn::meta::ParseNestedMeta;
use syn::{LitInt, LitStr, Path, Token};

/// Collects every error of one macro invocation, so that the user sees all of them at once
/// (serde_derive's habit) instead of fixing them one compile at a time.
#[derive(Default)]
pub struct Errors(Option<syn::Error>);

impl Errors {
    pub fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    pub fn spanned(&mut self, tokens: impl ToTokens, message: impl std::fmt::Display) {
        self.push(syn::Error::new_spanned(tokens, message));
    }

    pub fn at(&mut self, span: Span, message: impl std::fmt::Display) {
        self.push(syn::Error::new(span, message));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    pub fn into_compile_errors(self) -> TokenStream {
        self.0.map(|e| e.to_compile_error()).unwrap_or_default()
    }
}

/// The path generated code uses for the runtime crate: `::eventsrc` unless `crate = path`.
pub fn crate_path(custom: Option<&Path>) -> TokenStream {
    match custom {
        Some(path) => quote!(#path),
        None => quote!(::eventsrc),
    }
}

/// Remembers which keys an attribute used, to report duplicates.
#[derive(Default)]
pub struct Seen(Vec<String>);

impl Seen {
    /// `false` (and an error) when `key` was already given.
    pub fn first(&mut self, meta: &ParseNestedMeta, attribute: &str, errors: &mut Errors) -> bool {
        let key = key_of(meta);
        if self.0.contains(&key) {
            errors.spanned(
                &meta.path,
                format!("duplicate `{key}` in `#[{attribute}(...)]`"),
            );
            return false;
        }
        self.0.push(key);
        true
    }
}

pub fn key_of(meta: &ParseNestedMeta) -> String {
    meta.path.to_token_stream().to_string().replace(' ', "")
}

/// Reports an unknown key and consumes its value so parsing can go on.
pub fn unknown(
    meta: &ParseNestedMeta,
    attribute: &str,
    expected: &str,
    errors: &mut Errors,
) -> syn::Result<()> {
    errors.spanned(
        &meta.path,
        format!(
            "unknown `#[{attribute}]` attribute `{}`; expected one of: {expected}",
            key_of(meta)
        ),
    );
    skip_value(meta)
}

/// Consumes `= value` or `(...)` after a key, whatever it holds.
pub fn skip_value(meta: &ParseNestedMeta) -> syn::Result<()> {
    if meta.input.peek(Token![=]) {
        meta.input.parse::<Token![=]>()?;
        meta.input.parse::<syn::Expr>()?;
    } else if meta.input.peek(syn::token::Paren) {
        let _ = meta.input.step(|cursor| match cursor.token_tree() {
            Some((_, rest)) => Ok(((), rest)),
            None => Err(cursor.error("expected a value")),
        });
    }
    Ok(())
}

pub fn string(meta: &ParseNestedMeta) -> syn::Result<LitStr> {
    meta.value()?.parse()
}

pub fn path(meta: &ParseNestedMeta) -> syn::Result<Path> {
    meta.value()?.parse()
}

pub fn ty(meta: &ParseNestedMeta) -> syn::Result<syn::Type> {
    meta.value()?.parse()
}

/// `key = <positive integer>`.
pub fn integer(meta: &ParseNestedMeta) -> syn::Result<(u64, LitInt)> {
    let lit: LitInt = meta.value()?.parse()?;
    let value = lit.base10_parse::<u64>()?;
    Ok((value, lit))
}

/// `key = ["a", "b"]` or `key = "a"`.
pub fn strings(meta: &ParseNestedMeta) -> syn::Result<Vec<LitStr>> {
    let input = meta.value()?;
    if input.peek(syn::token::Bracket) {
        let content;
        syn::bracketed!(content in input);
        let list = content.parse_terminated(|p| p.parse::<LitStr>(), Token![,])?;
        Ok(list.into_iter().collect())
    } else {
        Ok(vec![input.parse()?])
    }
}

/// `key = path` or `key = [path, path]`.
pub fn paths(meta: &ParseNestedMeta) -> syn::Result<Vec<Path>> {
    let input = meta.value()?;
    if input.peek(syn::token::Bracket) {
        let content;
        syn::bracketed!(content in input);
        let list = content.parse_terminated(<Path as syn::parse::Parse>::parse, Token![,])?;
        Ok(list.into_iter().collect())
    } else {
        Ok(vec![input.parse()?])
    }
}

/// `snake_case` of a Rust type name: `StudentProgress` → `student_progress`.
pub fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    let chars: Vec<char> = name.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        if c.is_uppercase() {
            let after_lower =
                i > 0 && (chars[i - 1].is_lowercase() || chars[i - 1].is_ascii_digit());
            let before_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            if i > 0 && (after_lower || (before_lower && chars[i - 1].is_uppercase())) {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(*c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::snake_case;

    #[test]
    fn snake_cases_type_names() {
        assert_eq!(snake_case("Lead"), "lead");
        assert_eq!(snake_case("StudentProgress"), "student_progress");
        assert_eq!(snake_case("HTTPRequest"), "http_request");
        assert_eq!(snake_case("Cart2Go"), "cart2_go");
    }
}
