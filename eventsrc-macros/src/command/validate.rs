//! Checks of `#[command]` input: the targeted aggregate, exactly one `#[id]`, and rules that
//! make sense.

use proc_macro2::Span;
use quote::quote;

use super::parse::{CommandInput, FieldAst, RULES, Rule, ValidateAttr};
use crate::errors::Errors;

pub(super) fn validate(input: &CommandInput, errors: &mut Errors) {
    let attrs = &input.attrs;
    match (&attrs.aggregate, &attrs.aggregates) {
        (None, None) => errors.at(
            Span::call_site(),
            "`#[command]` needs `aggregate = ...`, the aggregate it targets, e.g. `#[command(aggregate = Lead)]` (or `aggregates = (User, EmailOwner)` for a decision across streams)",
        ),
        (Some(_), Some(across)) => errors.spanned(
            across,
            "a command targets one aggregate (`aggregate = ...`) or decides across several (`aggregates = (..)`): keep one",
        ),
        (None, Some(across)) => across_streams(input, across, errors),
        (Some(_), None) => {
            if let Some(error) = &attrs.error {
                errors.spanned(
                    error,
                    "`error = ...` is for a decision across streams (`aggregates = (..)`): a command on one aggregate returns that aggregate's error",
                );
            }
        }
    }
    let Some(fields) = &input.fields else {
        errors.spanned(
            &input.item.ident,
            "`#[command]` needs a struct with named fields, one of them marked `#[id]`",
        );
        return;
    };
    if let (None, Some(across)) = (&attrs.aggregate, &attrs.aggregates) {
        ids_across(fields, across, errors);
    } else {
        one_id(input, fields, errors);
    }
    for validate in fields.iter().flat_map(|f| &f.validates) {
        rules(validate, errors);
    }
}

/// A decision across streams names two to four aggregates, its error and its handler.
fn across_streams(input: &CommandInput, across: &syn::TypeTuple, errors: &mut Errors) {
    let arity = across.elems.len();
    if !(2..=4).contains(&arity) {
        errors.spanned(
            across,
            format!("`aggregates = (..)` names two to four aggregates, found {arity}; a command on one aggregate is written `aggregate = Type`"),
        );
    }
    if input.attrs.error.is_none() {
        errors.at(
            Span::call_site(),
            "a decision across streams needs `error = ...`, the domain error its handler returns, e.g. `error = SignUpError`",
        );
    }
    if input.attrs.handler.is_none() {
        errors.at(
            Span::call_site(),
            "a decision across streams needs `handler = ...`, a function `fn(&Command, &(A, B)) -> eventsrc::Decided<Command>`",
        );
    }
}

/// One bare `#[id]` per aggregate of a decision across streams, in the tuple's order.
fn ids_across(fields: &[FieldAst], across: &syn::TypeTuple, errors: &mut Errors) {
    let ids: Vec<&syn::Attribute> = fields.iter().flat_map(|f| &f.ids).collect();
    for attr in &ids {
        if !matches!(attr.meta, syn::Meta::Path(_)) {
            errors.spanned(attr, "`#[id]` takes no arguments: write `#[id]`");
        }
    }
    let arity = across.elems.len();
    if ids.len() != arity {
        let names = quote!(#across).to_string();
        errors.spanned(
            across,
            format!(
                "a decision across `{names}` needs one field marked `#[id]` per aggregate, in the same order: found {}",
                ids.len()
            ),
        );
    }
}

/// Exactly one field is the target's id, marked by a bare `#[id]`.
fn one_id(input: &CommandInput, fields: &[FieldAst], errors: &mut Errors) {
    let ids: Vec<(&FieldAst, &syn::Attribute)> = fields
        .iter()
        .flat_map(|f| f.ids.iter().map(move |a| (f, a)))
        .collect();
    for (_, attr) in &ids {
        if !matches!(attr.meta, syn::Meta::Path(_)) {
            errors.spanned(attr, "`#[id]` takes no arguments: write `#[id]`");
        }
    }
    match ids.as_slice() {
        [] => {
            let target = input
                .attrs
                .aggregate
                .as_ref()
                .map_or_else(|| "aggregate".to_owned(), |path| quote!(#path).to_string());
            errors.spanned(
                &input.item.ident,
                format!("`#[command]` needs one field marked `#[id]`, holding the id of the `{target}` it targets"),
            );
        }
        [_] => {}
        [(first, _), rest @ ..] => {
            for (_, attr) in rest {
                errors.spanned(
                    attr,
                    format!(
                        "a command targets one aggregate: `{}` is already its `#[id]` (to decide across several, write `aggregates = (A, B)` with one `#[id]` each)",
                        first.ident
                    ),
                );
            }
        }
    }
}

fn rules(validate: &ValidateAttr, errors: &mut Errors) {
    if validate.rules.is_empty() && !validate.bad_key {
        errors.spanned(
            &validate.attr,
            format!(
                "`#[validate(...)]` needs a rule: one of {}",
                RULES.expected()
            ),
        );
    }
    for (rule, span) in &validate.rules {
        let Rule::Range { min, max } = rule else {
            continue;
        };
        if min.is_none() && max.is_none() {
            errors.at(*span, "`range` needs `min = ..`, `max = ..` or both");
        }
        for bound in min.iter().chain(max) {
            if let syn::Expr::Lit(syn::ExprLit { lit, .. }) = &**bound
                && !matches!(lit, syn::Lit::Int(_) | syn::Lit::Float(_))
            {
                errors.spanned(bound, "a `range` bound is a number or a numeric constant");
            }
        }
    }
}
