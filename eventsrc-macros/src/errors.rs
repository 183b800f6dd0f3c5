//! The error accumulator and the one fallback policy every macro follows.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote};

/// Collects every error of one macro invocation, so that the user sees all of them at once
/// instead of fixing them one compile at a time.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    /// An error at the user's tokens.
    pub(crate) fn spanned(&mut self, tokens: impl ToTokens, message: impl std::fmt::Display) {
        self.push(syn::Error::new_spanned(tokens, message));
    }

    /// An error at one span.
    pub(crate) fn at(&mut self, span: Span, message: impl std::fmt::Display) {
        self.push(syn::Error::new(span, message));
    }

    /// Keeps the error of a parse that could not go on, if any.
    pub(crate) fn keep(&mut self, result: syn::Result<()>) {
        if let Err(error) = result {
            self.push(error);
        }
    }

    /// The fallback policy: without errors, the expansion; with errors, every error and the
    /// stub, never both expansion and errors. See the crate docs.
    pub(crate) fn finish(
        self,
        expand: impl FnOnce() -> TokenStream,
        stub: impl FnOnce() -> TokenStream,
    ) -> TokenStream {
        match self.0 {
            None => expand(),
            Some(errors) => {
                let errors = errors.to_compile_error();
                let stub = stub();
                quote!(#errors #stub)
            }
        }
    }
}
