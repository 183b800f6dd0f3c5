//! Checks of `#[command]` input: the targeted aggregate, exactly one `#[id]`, and rules that
//! make sense.

use proc_macro2::Span;
use quote::quote;

use super::parse::{CommandInput, FieldAst, RULES, Rule, ValidateAttr};
use crate::errors::Errors;

pub(super) fn validate(input: &CommandInput, errors: &mut Errors) {
    if input.attrs.aggregate.is_none() {
        errors.at(
            Span::call_site(),
            "`#[command]` needs `aggregate = ...`, the aggregate it targets, e.g. `#[command(aggregate = Lead)]`",
        );
    }
    let Some(fields) = &input.fields else {
        errors.spanned(
            &input.item.ident,
            "`#[command]` needs a struct with named fields, one of them marked `#[id]`",
        );
        return;
    };
    one_id(input, fields, errors);
    for validate in fields.iter().flat_map(|f| &f.validates) {
        rules(validate, errors);
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
                        "a command targets one aggregate: `{}` is already its `#[id]`",
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
