//! Attribute parsing shared by the three macros: the key tables and the value readers.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::meta::ParseNestedMeta;
use syn::{LitStr, Path, Token};

use crate::errors::Errors;

/// One key an attribute accepts: how it is spelled, how its value is written (for messages) and
/// what the parser turns it into.
pub(crate) struct Key<K: 'static> {
    pub name: &'static str,
    pub syntax: &'static str,
    pub kind: K,
}

/// The table of keys of one attribute. It is what parsing matches keys against and what the
/// "unknown key" message lists, so the two never disagree.
pub(crate) struct Keys<K: 'static> {
    /// How the attribute is written, e.g. `#[event(...)]`.
    pub attribute: &'static str,
    pub keys: &'static [Key<K>],
}

impl<K: Copy> Keys<K> {
    /// `name = "..."`, `version = 2`, ...: what the attribute accepts.
    pub(crate) fn expected(&self) -> String {
        let forms: Vec<String> = self
            .keys
            .iter()
            .map(|k| format!("`{}`", k.syntax))
            .collect();
        forms.join(", ")
    }

    /// The kind of the key `meta` starts with. An unknown or repeated key is reported, its value
    /// skipped, and `None` returned, so parsing goes on with the next key.
    pub(crate) fn read(
        &self,
        meta: &ParseNestedMeta,
        seen: &mut Vec<String>,
        errors: &mut Errors,
    ) -> syn::Result<Option<K>> {
        let name = key_of(meta);
        let Some(key) = self.keys.iter().find(|k| k.name == name) else {
            errors.spanned(
                &meta.path,
                format!(
                    "unknown key `{name}` in `{}`: expected one of {}",
                    self.attribute,
                    self.expected()
                ),
            );
            skip_value(meta)?;
            return Ok(None);
        };
        if seen.contains(&name) {
            errors.spanned(
                &meta.path,
                format!("duplicate `{name}` in `{}`: keep one", self.attribute),
            );
            skip_value(meta)?;
            return Ok(None);
        }
        seen.push(name);
        Ok(Some(key.kind))
    }

    /// Parses an attribute macro's arguments key by key, handing each known key to `set`;
    /// unknown and repeated keys are reported and skipped, and so is a value `set` rejects.
    pub(crate) fn parse_args(
        &self,
        args: TokenStream,
        errors: &mut Errors,
        mut set: impl FnMut(K, &ParseNestedMeta) -> syn::Result<()>,
    ) {
        let mut seen = Vec::new();
        let parser = syn::meta::parser(|meta| match self.read(&meta, &mut seen, errors)? {
            Some(key) => set(key, &meta),
            None => Ok(()),
        });
        let result = syn::parse::Parser::parse2(parser, args);
        errors.keep(result);
    }
}

/// The key as written: `name`, `crate`.
pub(crate) fn key_of(meta: &ParseNestedMeta) -> String {
    meta.path.to_token_stream().to_string().replace(' ', "")
}

/// Consumes `= value` or `(...)` after a key, whatever it holds.
pub(crate) fn skip_value(meta: &ParseNestedMeta) -> syn::Result<()> {
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

/// The path generated code uses for the runtime crate: `::eventsrc` unless `crate = path`.
pub(crate) fn crate_path(custom: Option<&Path>) -> TokenStream {
    match custom {
        Some(path) => quote!(#path),
        None => quote!(::eventsrc),
    }
}

pub(crate) fn string(meta: &ParseNestedMeta) -> syn::Result<LitStr> {
    meta.value()?.parse()
}

pub(crate) fn path(meta: &ParseNestedMeta) -> syn::Result<Path> {
    meta.value()?.parse()
}

pub(crate) fn ty(meta: &ParseNestedMeta) -> syn::Result<syn::Type> {
    meta.value()?.parse()
}

/// `key = ["a", "b"]` or `key = "a"`.
pub(crate) fn strings(meta: &ParseNestedMeta) -> syn::Result<Vec<LitStr>> {
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
pub(crate) fn paths(meta: &ParseNestedMeta) -> syn::Result<Vec<Path>> {
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
pub(crate) fn snake_case(name: &str) -> String {
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
