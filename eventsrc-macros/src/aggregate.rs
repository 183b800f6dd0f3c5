//! `#[aggregate]` on an impl block of event handlers: the event enum (or a check of the user's),
//! apply dispatch, the `Aggregate` impl and the aggregate's registration.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, Ident, ImplItem, ItemImpl, LitStr, Path, ReturnType, Type, Visibility};

use crate::attr::{self, Errors, Seen};
use crate::event::{VariantSpec, expand_enum};

const KEYS: &str = "id, error, name, event, vis, snapshot, snapshot_every, conflicts, crate";

#[derive(Default)]
pub struct AggregateAttrs {
    krate: Option<Path>,
    id: Option<Type>,
    error: Option<Type>,
    name: Option<LitStr>,
    event: Option<Path>,
    vis: Option<Visibility>,
    snapshot: Option<u32>,
    snapshot_every: Option<(u64, Span)>,
    conflicts: Option<Path>,
}

impl AggregateAttrs {
    pub fn parse(args: TokenStream, errors: &mut Errors) -> Self {
        let mut attrs = Self::default();
        let mut seen = Seen::default();
        let parser = syn::meta::parser(|meta| {
            let key = attr::key_of(&meta);
            if !KEYS.split(", ").any(|k| k == key) {
                return attr::unknown(&meta, "aggregate", KEYS, errors);
            }
            if !seen.first(&meta, "aggregate", errors) {
                return attr::skip_value(&meta);
            }
            match key.as_str() {
                "crate" => attrs.krate = Some(attr::path(&meta)?),
                "id" => attrs.id = Some(attr::ty(&meta)?),
                "error" => attrs.error = Some(attr::ty(&meta)?),
                "event" => attrs.event = Some(attr::path(&meta)?),
                "conflicts" => attrs.conflicts = Some(attr::path(&meta)?),
                "vis" => attrs.vis = Some(meta.value()?.parse()?),
                "name" => {
                    let name = attr::string(&meta)?;
                    let value = name.value();
                    if value.is_empty()
                        || value.contains('-')
                        || value.chars().any(char::is_control)
                    {
                        errors.spanned(
                            &name,
                            "an aggregate name is a stream category: non-empty, without `-`",
                        );
                    }
                    attrs.name = Some(name);
                }
                "snapshot" => {
                    let (value, lit) = attr::integer(&meta)?;
                    match u32::try_from(value) {
                        Ok(v) if v > 0 => attrs.snapshot = Some(v),
                        _ => errors.spanned(
                            &lit,
                            "`snapshot = n` is the state's schema version: an integer from 1",
                        ),
                    }
                }
                "snapshot_every" => {
                    let (value, lit) = attr::integer(&meta)?;
                    if value == 0 {
                        errors.spanned(&lit, "`snapshot_every` must be at least 1");
                    }
                    attrs.snapshot_every = Some((value, lit.span()));
                }
                _ => unreachable!("keys are checked above"),
            }
            Ok(())
        });
        if let Err(error) = syn::parse::Parser::parse2(parser, args) {
            errors.push(error);
        }
        if let (None, Some((_, span))) = (attrs.snapshot, attrs.snapshot_every) {
            errors.at(
                span,
                "`snapshot_every` needs `snapshot = n`, the state's schema version",
            );
        }
        attrs
    }
}

/// One `fn on_x(&mut self, event: &X)`.
struct Handler {
    method: Ident,
    event: Type,
    variant: Ident,
}

pub fn expand(args: TokenStream, item: ItemImpl) -> TokenStream {
    let mut errors = Errors::default();
    let attrs = AggregateAttrs::parse(args, &mut errors);
    let krate = attr::crate_path(attrs.krate.as_ref());
    if !item.generics.params.is_empty() {
        errors.spanned(
            &item.generics,
            "`#[aggregate]` does not support generic aggregates",
        );
    }
    if let Some((_, trait_path, _)) = &item.trait_ {
        errors.spanned(
            trait_path,
            "`#[aggregate]` goes on an inherent `impl Type { ... }` block of event handlers",
        );
    }
    let self_ident = match &*item.self_ty {
        Type::Path(path) if path.qself.is_none() => {
            path.path.segments.last().map(|s| s.ident.clone())
        }
        _ => None,
    };
    let Some(self_ident) = self_ident else {
        errors.spanned(
            &item.self_ty,
            "`#[aggregate]` needs a named type: `impl MyAggregate { ... }`",
        );
        let compile_errors = errors.into_compile_errors();
        return quote!(#compile_errors #item);
    };
    let handlers = handlers(&item, &mut errors);
    let id = attrs.id.clone().unwrap_or_else(|| {
        errors.at(
            Span::call_site(),
            "`#[aggregate]` needs `id = ...`, the type of the aggregate's id, e.g. `#[aggregate(id = String)]`",
        );
        syn::parse_quote!(::std::string::String)
    });
    let expanded = expand_aggregate(&krate, &attrs, &item, &self_ident, &id, &handlers);
    let compile_errors = errors.into_compile_errors();
    quote!(#compile_errors #expanded)
}

fn handlers(item: &ItemImpl, errors: &mut Errors) -> Vec<Handler> {
    let mut handlers: Vec<Handler> = Vec::new();
    for impl_item in &item.items {
        let ImplItem::Fn(function) = impl_item else {
            errors.spanned(impl_item, "only event handlers belong in an `#[aggregate]` block; move other items to a separate `impl`");
            continue;
        };
        let Some(event) = handler_event(&function.sig) else {
            errors.spanned(
                &function.sig,
                "an event handler is `fn name(&mut self, event: &EventType)`; move other methods to a separate `impl` block",
            );
            continue;
        };
        let Some(variant) = last_ident(&event) else {
            errors.spanned(
                &event,
                "the event must be a named type, e.g. `&StatusChanged`",
            );
            continue;
        };
        if let Some(first) = handlers.iter().find(|h| h.variant == variant) {
            errors.spanned(
                &event,
                format!(
                    "`{variant}` already has a handler, `{}`; an event has exactly one handler",
                    first.method
                ),
            );
            continue;
        }
        handlers.push(Handler {
            method: function.sig.ident.clone(),
            event,
            variant,
        });
    }
    handlers
}

/// The `X` of `fn f(&mut self, e: &X)`, if the signature has that shape.
fn handler_event(sig: &syn::Signature) -> Option<Type> {
    let shaped = sig.asyncness.is_none()
        && sig.constness.is_none()
        && sig.generics.params.is_empty()
        && sig.inputs.len() == 2
        && matches!(sig.output, ReturnType::Default);
    if !shaped {
        return None;
    }
    let receiver_ok = matches!(sig.inputs.first(), Some(FnArg::Receiver(r)) if r.reference.is_some() && r.mutability.is_some());
    let Some(FnArg::Typed(arg)) = sig.inputs.iter().nth(1) else {
        return None;
    };
    match (&*arg.ty, receiver_ok) {
        (Type::Reference(reference), true) if reference.mutability.is_none() => {
            Some((*reference.elem).clone())
        }
        _ => None,
    }
}

fn last_ident(ty: &Type) -> Option<Ident> {
    match ty {
        Type::Path(path) if path.qself.is_none() => {
            path.path.segments.last().map(|s| s.ident.clone())
        }
        _ => None,
    }
}

fn expand_aggregate(
    krate: &TokenStream,
    attrs: &AggregateAttrs,
    item: &ItemImpl,
    self_ident: &Ident,
    id: &Type,
    handlers: &[Handler],
) -> TokenStream {
    let self_ty = &item.self_ty;
    let name = attrs
        .name
        .as_ref()
        .map_or_else(|| attr::snake_case(&self_ident.to_string()), LitStr::value);
    let error = attrs
        .error
        .clone()
        .unwrap_or_else(|| syn::parse_quote!(::core::convert::Infallible));
    let (event_path, generated) = match &attrs.event {
        Some(path) => (quote!(#path), TokenStream::new()),
        None => {
            let enum_ident = format_ident!("{}Event", self_ident);
            (
                quote!(#enum_ident),
                generated_enum(krate, attrs, self_ident, &enum_ident, handlers),
            )
        }
    };
    let arms = handlers.iter().map(|h| {
        let (method, variant) = (&h.method, &h.variant);
        quote!(#event_path::#variant(event) => self.#method(event),)
    });
    // Spanned at the user's `event = ...` so that rustc's "pattern not covered" error (an event
    // of their enum without a handler) points at the enum they named.
    let match_span = attrs
        .event
        .as_ref()
        .map_or_else(Span::call_site, |p| p.span());
    // A generated enum with no variants (every handler was malformed) still needs a total match.
    let empty = (attrs.event.is_none() && handlers.is_empty()).then(|| quote!(_ => {}));
    let apply_body = quote_spanned!(match_span=> match event { #(#arms)* #empty });
    let snapshot = attrs.snapshot.map(|state_version| {
        let every = attrs.snapshot_every.map(|(n, _)| quote!(.every(#n)));
        quote! {
            const SNAPSHOT: ::core::option::Option<#krate::store::SnapshotFormat<Self>> =
                ::core::option::Option::Some(#krate::store::SnapshotFormat::json(#state_version) #every);
        }
    });
    let conflicts = attrs.conflicts.as_ref().map(|path| {
        quote! {
            fn conflicts(ours: &Self::Event, theirs: &Self::Event) -> bool {
                #path(ours, theirs)
            }
        }
    });
    let event_types = handlers.iter().map(|h| &h.event);
    quote! {
        #item
        #generated

        const _: () = {
            #[automatically_derived]
            impl #krate::Aggregate for #self_ty {
                const TYPE: &'static str = #name;
                #snapshot
                type Id = #id;
                type Event = #event_path;
                type Error = #error;

                #[inline]
                fn apply(&mut self, event: &Self::Event) {
                    #apply_body
                }

                #conflicts
            }

            #krate::__private::inventory::submit! {
                #krate::__private::AggregateRegistration {
                    name: #name,
                    rust_type: ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#self_ident)),
                    events: &[#(<#event_types as #krate::EventType>::NAME),*],
                }
            }
        };
    }
}

fn generated_enum(
    krate: &TokenStream,
    attrs: &AggregateAttrs,
    self_ident: &Ident,
    enum_ident: &Ident,
    handlers: &[Handler],
) -> TokenStream {
    let vis = attrs.vis.clone().unwrap_or_else(|| syn::parse_quote!(pub));
    let variants = handlers.iter().map(|h| {
        let (variant, event) = (&h.variant, &h.event);
        quote!(#[allow(missing_docs)] #variant(#event),)
    });
    let from_impls = handlers.iter().map(|h| {
        let (variant, event) = (&h.variant, &h.event);
        quote! {
            #[automatically_derived]
            impl ::core::convert::From<#event> for #enum_ident {
                fn from(event: #event) -> Self {
                    Self::#variant(event)
                }
            }
        }
    });
    let specs: Vec<VariantSpec> = handlers
        .iter()
        .map(|h| VariantSpec::newtype(h.variant.clone(), h.event.clone()))
        .collect();
    let event_impl = expand_enum(krate, enum_ident, &specs);
    let doc = format!(
        " The events of [`{self_ident}`], one variant per event handler; generated by `#[aggregate]`."
    );
    quote! {
        #[doc = #doc]
        // Public by default; its variants are only as reachable as the user's event types.
        #[allow(private_interfaces)]
        #[derive(::core::fmt::Debug, ::core::clone::Clone, ::core::cmp::PartialEq)]
        #vis enum #enum_ident {
            #(#variants)*
        }
        #(#from_impls)*
        #event_impl
    }
}
