//! `#[command(aggregate = ...)]` on a struct: `parse` reads the attribute and the fields'
//! `#[id]` and `#[validate(...)]`, `validate` checks them, `expand` generates `Command`,
//! `AggregateCommand` and optionally `Handle`.

mod expand;
mod parse;
mod validate;

use proc_macro2::TokenStream;
use syn::ItemStruct;

use crate::attr;
use crate::errors::Errors;
use parse::CommandInput;

pub(crate) fn command(args: TokenStream, item: ItemStruct) -> TokenStream {
    let mut errors = Errors::default();
    let input = CommandInput::parse(args, item, &mut errors);
    validate::validate(&input, &mut errors);
    let krate = attr::crate_path(input.attrs.krate.as_ref());
    errors.finish(
        || expand::expand(&krate, &input),
        || expand::stub(&krate, &input),
    )
}
