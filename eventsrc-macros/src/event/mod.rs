//! `#[derive(Event)]`: `parse` reads the input into an AST, `validate` checks it, `expand`
//! and `enums` generate the impls, for structs (one event type, or a superseded shape kept for
//! upcasting) and enums (a set of event types, one per variant).

mod enums;
mod expand;
mod parse;
mod personal;
mod validate;
mod versioned;

use proc_macro2::TokenStream;
use syn::DeriveInput;

pub(crate) use enums::{VariantSpec, expand_enum};
pub(crate) use expand::event_stub;

use crate::attr;
use crate::errors::Errors;
use enums::VariantKind;
use parse::{Body, EventInput, Shape, VariantAst};

pub(crate) fn derive(input: DeriveInput) -> TokenStream {
    let mut errors = Errors::default();
    let input = EventInput::parse(input, &mut errors);
    validate::validate(&input, &mut errors);
    let krate = attr::crate_path(input.attrs.krate.as_ref());
    errors.finish(|| expand(&krate, &input), || expand::stub(&krate, &input))
}

fn expand(krate: &TokenStream, input: &EventInput) -> TokenStream {
    match &input.body {
        Body::Struct { unit } => {
            expand::event_struct(krate, &input.ident, *unit, &input.attrs, &input.personal)
        }
        Body::Enum(variants) => {
            let specs: Vec<VariantSpec> = variants.iter().filter_map(spec).collect();
            expand_enum(krate, &input.ident, &specs)
        }
        Body::Union(_) => TokenStream::new(),
    }
}

/// The validated form of a variant (tuple variants were rejected by `validate`).
fn spec(variant: &VariantAst) -> Option<VariantSpec> {
    let kind = match &variant.shape {
        Shape::Newtype(ty) => VariantKind::Newtype(ty.clone()),
        Shape::Unit => VariantKind::Unit,
        Shape::Named(fields) => VariantKind::Named(fields.clone()),
        Shape::Tuple(_) => return None,
    };
    Some(VariantSpec {
        ident: variant.ident.clone(),
        kind,
        name: variant.attrs.name_or(&variant.ident),
        aliases: variant.attrs.aliases.clone(),
        version: variant.attrs.version(),
        steps: variant.attrs.upcast_json.clone(),
    })
}
