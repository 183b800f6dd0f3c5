//! `#[aggregate]` on an impl block of event handlers: `parse` reads the attribute and the
//! block, `validate` checks them, `expand` generates the event enum (or uses the user's), the
//! apply dispatch, the `Aggregate` impl and the aggregate's registration.

mod expand;
mod parse;
mod validate;

use proc_macro2::TokenStream;
use syn::ItemImpl;

use crate::attr;
use crate::errors::Errors;
use expand::Context;
use parse::AggregateInput;

pub(crate) fn aggregate(args: TokenStream, item: ItemImpl) -> TokenStream {
    let mut errors = Errors::default();
    let input = AggregateInput::parse(args, item, &mut errors);
    validate::validate(&input, &mut errors);
    let krate = attr::crate_path(input.attrs.krate.as_ref());
    let Some(self_ident) = input.self_ident() else {
        // Validation reported the unnamed type; without a name there is nothing to stub.
        let item = &input.item;
        return errors.finish(TokenStream::new, || quote::quote!(#item));
    };
    let cx = Context::new(&krate, &input, self_ident);
    errors.finish(|| expand::expand(&cx), || expand::stub(&cx))
}
