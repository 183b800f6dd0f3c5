//! Checks of `#[derive(Event)]` input that span several keys or variants: where each key may
//! stand, versions and upcast chains, stored names, and the forms of enum variants.

use std::collections::BTreeMap;

use syn::LitStr;

use super::parse::{Body, EventAttrs, EventInput, EventKey, Shape, VariantAst};
use crate::errors::Errors;

/// Where an `#[event(...)]` attribute stands; each place admits some keys.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Place {
    Struct,
    Enum,
    Variant,
}

pub(super) fn validate(input: &EventInput, errors: &mut Errors) {
    if !input.generics.params.is_empty() {
        errors.spanned(
            &input.generics,
            "event types cannot be generic: the registry needs one concrete type per stored name; remove the type parameters",
        );
    }
    match &input.body {
        Body::Struct { unit } => {
            attrs(&input.attrs, Place::Struct, errors);
            if !unit {
                chain(&input.attrs, errors);
            }
            superseded(&input.attrs, errors);
        }
        Body::Enum(variants) => {
            attrs(&input.attrs, Place::Enum, errors);
            variants.iter().for_each(|v| variant(v, errors));
            distinct_variant_names(variants, errors);
        }
        Body::Union(token) => errors.spanned(
            token,
            "`#[derive(Event)]` works on structs and enums, not unions: make it a struct or an enum",
        ),
    }
    super::personal::validate(&input.personal, errors);
}

/// The checks every attribute gets: placement, version and names.
fn attrs(attrs: &EventAttrs, place: Place, errors: &mut Errors) {
    for (key, path) in &attrs.given {
        if let Some(message) = misplaced(*key, place) {
            let key = quote::quote!(#path).to_string();
            errors.spanned(path, format!("`{key}` {message}"));
        }
    }
    if let Some(lit) = &attrs.version {
        match lit.base10_parse::<u32>() {
            Ok(0) => errors.spanned(
                lit,
                "schema versions start at 1: write `version = 1` or leave it out",
            ),
            Ok(_) => {}
            Err(_) => errors.spanned(lit, "a schema version is an integer that fits in a `u32`"),
        }
    }
    attrs
        .name
        .iter()
        .chain(&attrs.aliases)
        .for_each(|name| stored_name(name, errors));
}

fn misplaced(key: EventKey, place: Place) -> Option<&'static str> {
    use EventKey::*;
    match (place, key) {
        (Place::Struct, _) | (Place::Enum, Crate) => None,
        (Place::Enum, _) => {
            Some("belongs on a variant (or on the event struct a variant wraps), not on the enum")
        }
        (Place::Variant, Name | Version | Aliases | UpcastJson) => None,
        (Place::Variant, UpcastFrom | SupersededBy) => {
            Some("works on event structs: derive `Event` on a struct and wrap it in this variant")
        }
        (Place::Variant, Crate) => Some("belongs on the enum, not on a variant"),
    }
}

fn stored_name(name: &LitStr, errors: &mut Errors) {
    let value = name.value();
    if value.trim().is_empty() {
        errors.spanned(
            name,
            "an event name must not be empty: write the name it is stored under",
        );
    } else if value.chars().any(char::is_control) {
        errors.spanned(name, "an event name must not contain control characters");
    }
}

/// A version above 1 needs some way to read the versions below it.
fn chain(attrs: &EventAttrs, errors: &mut Errors) {
    let Some(lit) = &attrs.version else {
        return;
    };
    let version = attrs.version();
    let steps = attrs.upcast_json.len() as u32;
    if version > 1 && attrs.upcast_from.is_none() && steps == 0 {
        errors.spanned(
            lit,
            format!(
                "`#[event(version = {version})]` needs `upcast_from = ...` or `upcast_json = ...` to read stored version {}",
                version - 1
            ),
        );
    }
    if steps >= version {
        errors.spanned(
            lit,
            format!(
                "`upcast_json` lists {steps} step(s) but version {version} has only {} older version(s)",
                version - 1
            ),
        );
    }
}

/// A superseded shape is stored under its successor's names; it has none of its own.
fn superseded(attrs: &EventAttrs, errors: &mut Errors) {
    let Some(current) = &attrs.superseded_by else {
        return;
    };
    for (present, key) in [
        (attrs.name.is_some(), "name"),
        (!attrs.aliases.is_empty(), "aliases"),
    ] {
        if present {
            errors.spanned(
                current,
                format!(
                    "a superseded shape is stored under the name of `superseded_by`; remove `{key}`"
                ),
            );
        }
    }
}

fn variant(variant: &VariantAst, errors: &mut Errors) {
    attrs(&variant.attrs, Place::Variant, errors);
    match &variant.shape {
        Shape::Tuple(fields) => errors.spanned(
            fields,
            "an event variant wraps one event type, `Variant(MyEvent)`, or has named fields, `Variant { .. }`; several unnamed fields have no stored names",
        ),
        Shape::Newtype(ty) if !variant.attrs.given.is_empty() => errors.spanned(
            ty,
            "this variant wraps an event type: put `#[event(...)]` on that type's definition instead",
        ),
        // Unit variants have no payload to upcast; any older version reads as the value.
        Shape::Named(_) => chain(&variant.attrs, errors),
        Shape::Newtype(_) | Shape::Unit => {}
    }
}

/// Variants with names written here must not share one (names of wrapped event types are only
/// known to the compiler; the generated const check covers those).
fn distinct_variant_names(variants: &[VariantAst], errors: &mut Errors) {
    let mut owners: BTreeMap<String, &syn::Ident> = BTreeMap::new();
    for v in variants
        .iter()
        .filter(|v| matches!(v.shape, Shape::Unit | Shape::Named(_)))
    {
        let name = v.attrs.name_or(&v.ident);
        let aliases = v.attrs.aliases.iter().map(LitStr::value);
        for stored in std::iter::once(name).chain(aliases) {
            match owners.get(&stored) {
                Some(first) => errors.spanned(
                    &v.ident,
                    format!(
                        "`{first}` and `{}` are both stored as `{stored}`: give one of them another `#[event(name = \"...\")]` or drop the alias",
                        v.ident
                    ),
                ),
                None => {
                    owners.insert(stored, &v.ident);
                }
            }
        }
    }
}
