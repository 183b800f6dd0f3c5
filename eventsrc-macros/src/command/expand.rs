//! Code generation for `#[command]`: `Command` with the field rules, `AggregateCommand`, the
//! optional `Handle` impl, and the stub emitted beside errors.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Expr, Ident, Path};

use super::parse::{CommandInput, Rule};

/// One rule applied to one field.
struct Check<'a> {
    field: &'a Ident,
    rule: &'a Rule,
    message: Option<&'a Expr>,
    span: Span,
}

pub(super) fn expand(krate: &TokenStream, input: &CommandInput) -> TokenStream {
    let item = &input.item;
    let command = command_impl(krate, input);
    let targeting = match (&input.attrs.aggregate, id_field(input)) {
        (Some(aggregate), Some(id)) => {
            let handler = handle_impl(krate, input, aggregate);
            let target = aggregate_command(krate, input, aggregate, &quote!(&self.#id));
            quote!(#target #handler)
        }
        _ => decide_impl(krate, input).unwrap_or_default(),
    };
    quote! {
        #item
        const _: () = {
            #command
            #targeting
        };
    }
}

fn id_field(input: &CommandInput) -> Option<&Ident> {
    let fields = input.fields.as_ref()?;
    fields.iter().find(|f| !f.ids.is_empty()).map(|f| &f.ident)
}

fn command_impl(krate: &TokenStream, input: &CommandInput) -> TokenStream {
    let ident = &input.item.ident;
    let (impl_generics, ty_generics, where_clause) = input.item.generics.split_for_impl();
    let name = ident.to_string();
    let fields = input.fields.iter().flatten();
    let checks = fields.flat_map(|f| {
        f.validates.iter().flat_map(move |v| {
            v.rules.iter().map(move |(rule, span)| Check {
                field: &f.ident,
                rule,
                message: v.message.as_ref(),
                span: *span,
            })
        })
    });
    let checks = checks.map(|check| validation(krate, &check));
    // A whole-command check (fields that depend on each other) runs after the field rules.
    let whole = input
        .attrs
        .validate
        .as_ref()
        .map(|path| quote!(#path(self, &mut errors);));
    quote! {
        #[automatically_derived]
        impl #impl_generics #krate::Command for #ident #ty_generics #where_clause {
            fn validate(&self) -> ::core::result::Result<(), #krate::ValidationError> {
                let mut errors = #krate::ValidationError::new();
                #(#checks)*
                #whole
                errors.into_result()
            }
            fn name(&self) -> &'static str {
                #name
            }
        }
    }
}

/// `AggregateCommand`, returning `id` (an expression of `&self`). The whole impl carries the
/// span of `aggregate = ...`: every obligation on the aggregate then points there, and rustc
/// folds the identical reports into one.
fn aggregate_command(
    krate: &TokenStream,
    input: &CommandInput,
    aggregate: &Path,
    id: &TokenStream,
) -> TokenStream {
    let ident = &input.item.ident;
    let (impl_generics, ty_generics, where_clause) = input.item.generics.split_for_impl();
    let assoc = quote_spanned!(aggregate.span()=> type Aggregate = #aggregate;);
    let id_type = quote_spanned!(aggregate.span()=> <<Self as #krate::AggregateCommand>::Aggregate as #krate::Aggregate>::Id);
    quote_spanned! {aggregate.span()=>
        #[automatically_derived]
        impl #impl_generics #krate::AggregateCommand for #ident #ty_generics #where_clause {
            #assoc
            #[inline]
            fn aggregate_id(&self) -> &#id_type {
                #id
            }
        }
    }
}

/// `Decide` for a decision across streams (`aggregates = (A, B)`): its ids are the `#[id]`
/// fields in order, cloned; `decide` calls `handler = ...` with the command and the states.
fn decide_impl(krate: &TokenStream, input: &CommandInput) -> Option<TokenStream> {
    let attrs = &input.attrs;
    let (across, error, handler) = (
        attrs.aggregates.as_ref()?,
        attrs.error.as_ref()?,
        attrs.handler.as_ref()?,
    );
    let ids = input
        .fields
        .iter()
        .flatten()
        .filter(|f| !f.ids.is_empty())
        .map(|f| &f.ident);
    let ident = &input.item.ident;
    let (impl_generics, ty_generics, where_clause) = input.item.generics.split_for_impl();
    Some(quote_spanned! {across.span()=>
        #[automatically_derived]
        impl #impl_generics #krate::Decide for #ident #ty_generics #where_clause {
            type Aggregates = #across;
            type Error = #error;
            fn ids(&self) -> <Self::Aggregates as #krate::Aggregates>::Ids {
                (#(::core::clone::Clone::clone(&self.#ids),)*)
            }
            #[inline]
            fn decide(&self, states: &Self::Aggregates) -> #krate::Decided<Self> {
                #handler(self, states)
            }
        }
    })
}

/// `Handle<Command>` for the aggregate, calling `handler = ...`.
fn handle_impl(krate: &TokenStream, input: &CommandInput, aggregate: &Path) -> Option<TokenStream> {
    let handler = input.attrs.handler.as_ref()?;
    let ident = &input.item.ident;
    let (impl_generics, ty_generics, where_clause) = input.item.generics.split_for_impl();
    Some(quote! {
        #[automatically_derived]
        impl #impl_generics #krate::Handle<#ident #ty_generics> for #aggregate #where_clause {
            #[inline]
            fn handle(&self, command: &#ident #ty_generics) -> #krate::Decision<Self> {
                #handler(self, command)
            }
        }
    })
}

fn validation(krate: &TokenStream, check: &Check) -> TokenStream {
    let field_name = check.field.to_string();
    // The field named with the rule's span, so a type error points at the rule, not the field.
    let field = &Ident::new(&field_name, check.span);
    let p = quote!(#krate::__private);
    let custom = check
        .message
        .map(|m| quote!(::std::string::ToString::to_string(&#m)));
    let or_default = |default: TokenStream| custom.clone().unwrap_or(default);
    let span = check.span;
    match check.rule {
        Rule::NonEmpty => {
            let message = or_default(quote!(::std::string::String::from("must not be empty")));
            quote_spanned! {span=>
                if !#p::non_empty(&self.#field) {
                    errors.push(#field_name, #message);
                }
            }
        }
        Rule::Range { min, max } => {
            let bound = |b: &Option<Box<Expr>>| match b {
                Some(expr) => quote!(::core::option::Option::Some((#expr) as f64)),
                None => quote!(::core::option::Option::None),
            };
            let (lo, hi) = (bound(min), bound(max));
            let message = or_default(quote!(#p::range_message(#lo, #hi)));
            quote_spanned! {span=>
                if !#p::in_range(&self.#field, #lo, #hi) {
                    errors.push(#field_name, #message);
                }
            }
        }
        Rule::With(path) => {
            // The rule's own `message` wins over the text of an error the function returns.
            let message = or_default(quote!(
                reason.unwrap_or_else(|| ::std::string::String::from("is invalid"))
            ));
            quote_spanned! {path.span()=>
                if let ::core::option::Option::Some(reason) = #p::check_failed(#path(&self.#field)) {
                    let _ = &reason;
                    errors.push(#field_name, #message);
                }
            }
        }
    }
}

/// Beside errors: the struct, a `Command` impl without rules, and, when the aggregate is
/// known, `AggregateCommand` and `Handle` impls that are never reached.
pub(super) fn stub(krate: &TokenStream, input: &CommandInput) -> TokenStream {
    let item = &input.item;
    let ident = &item.ident;
    let (impl_generics, ty_generics, where_clause) = item.generics.split_for_impl();
    let targeting = input.attrs.aggregate.as_ref().map(|aggregate| {
        let target = aggregate_command(krate, input, aggregate, &quote!(::core::unreachable!()));
        let handler = handle_impl(krate, input, aggregate);
        quote!(#target #handler)
    });
    quote! {
        #item
        impl #impl_generics #krate::Command for #ident #ty_generics #where_clause {}
        #targeting
    }
}
