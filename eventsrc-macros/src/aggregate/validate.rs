//! Checks of `#[aggregate]` input: attribute values, the impl block's shape, and one handler
//! per event.

use super::parse::{AggregateAttrs, AggregateInput, Handler, Member};
use crate::errors::Errors;

pub(super) fn validate(input: &AggregateInput, errors: &mut Errors) {
    attrs(&input.attrs, errors);
    let item = &input.item;
    if !item.generics.params.is_empty() {
        errors.spanned(
            &item.generics,
            "`#[aggregate]` does not support generic aggregates: implement `eventsrc::Aggregate` by hand",
        );
    }
    if let Some((_, trait_path, _)) = &item.trait_ {
        errors.spanned(
            trait_path,
            "`#[aggregate]` goes on an inherent `impl Type { ... }` block of event handlers",
        );
    }
    if input.self_ident().is_none() {
        errors.spanned(
            &item.self_ty,
            "`#[aggregate]` needs a named type: `impl MyAggregate { ... }`",
        );
    }
    members(&input.members, errors);
}

fn attrs(attrs: &AggregateAttrs, errors: &mut Errors) {
    if attrs.id.is_none() {
        errors.at(
            proc_macro2::Span::call_site(),
            "`#[aggregate]` needs `id = ...`, the type of the aggregate's id, e.g. `#[aggregate(id = String)]`",
        );
    }
    if let Some(name) = &attrs.name {
        let value = name.value();
        if value.is_empty() || value.contains('-') || value.chars().any(char::is_control) {
            let fixed: String = value
                .replace('-', "_")
                .chars()
                .filter(|c| !c.is_control())
                .collect();
            let example = if fixed.is_empty() {
                "account".to_owned()
            } else {
                fixed
            };
            errors.spanned(
                name,
                format!("an aggregate name is a stream category: non-empty, without `-` or control characters; write e.g. `name = \"{example}\"`"),
            );
        }
    }
    if let Some(lit) = &attrs.snapshot
        && !matches!(lit.base10_parse::<u32>(), Ok(v) if v > 0)
    {
        errors.spanned(
            lit,
            "`snapshot = n` is the state's schema version: an integer from 1",
        );
    }
    match (&attrs.snapshot, &attrs.snapshot_every) {
        (_, Some(lit)) if !matches!(lit.base10_parse::<u64>(), Ok(v) if v > 0) => {
            errors.spanned(lit, "`snapshot_every` must be an integer from 1");
        }
        (None, Some(lit)) => errors.spanned(
            lit,
            "`snapshot_every` needs `snapshot = n`, the state's schema version",
        ),
        _ => {}
    }
}

fn members(members: &[Member], errors: &mut Errors) {
    let mut seen: Vec<&Handler> = Vec::new();
    for member in members {
        match member {
            Member::NotAFunction(item) => errors.spanned(
                item,
                "only event handlers belong in an `#[aggregate]` block; move other items to a separate `impl`",
            ),
            Member::BadSignature(sig) => errors.spanned(
                sig,
                "an event handler is `fn name(&mut self, event: &EventType)`; move other methods to a separate `impl` block",
            ),
            Member::Handler(handler) => handler_once(handler, &mut seen, errors),
        }
    }
}

/// Each event type has exactly one handler, named by a path.
fn handler_once<'a>(handler: &'a Handler, seen: &mut Vec<&'a Handler>, errors: &mut Errors) {
    let Some(variant) = &handler.variant else {
        errors.spanned(
            &handler.event,
            "the event must be a named type, e.g. `&StatusChanged`",
        );
        return;
    };
    match seen.iter().find(|h| h.variant.as_ref() == Some(variant)) {
        Some(first) => errors.spanned(
            &handler.event,
            format!(
                "`{variant}` already has a handler, `{}`; an event has exactly one handler",
                first.method
            ),
        ),
        None => seen.push(handler),
    }
}
