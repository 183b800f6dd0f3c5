//! Code generation for `#[aggregate]`: the event enum (unless the user names theirs), apply
//! dispatch, the `Aggregate` impl, the registration, and the stub emitted beside errors.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Ident, LitStr, Type};

use super::parse::{AggregateAttrs, AggregateInput, Handler};
use crate::attr;
use crate::event::{VariantSpec, event_stub, expand_enum};

/// What every expansion needs: the crate path, the input and the aggregate's names.
pub(super) struct Context<'a> {
    pub krate: &'a TokenStream,
    pub input: &'a AggregateInput,
    pub self_ident: &'a Ident,
    /// The event enum's path: the user's `event = ...` or the generated one.
    pub event_path: TokenStream,
}

impl<'a> Context<'a> {
    pub(super) fn new(
        krate: &'a TokenStream,
        input: &'a AggregateInput,
        self_ident: &'a Ident,
    ) -> Self {
        let event_path = match &input.attrs.event {
            Some(path) => quote!(#path),
            None => {
                let generated = enum_ident(self_ident);
                quote!(#generated)
            }
        };
        Self {
            krate,
            input,
            self_ident,
            event_path,
        }
    }

    fn attrs(&self) -> &AggregateAttrs {
        &self.input.attrs
    }

    /// Handlers with a variant, the first of each variant.
    fn handlers(&self) -> Vec<&Handler> {
        let mut handlers: Vec<&Handler> = Vec::new();
        for handler in self.input.handlers().filter(|h| h.variant.is_some()) {
            if !handlers.iter().any(|h| h.variant == handler.variant) {
                handlers.push(handler);
            }
        }
        handlers
    }

    fn name(&self) -> String {
        let snake = || attr::snake_case(&self.self_ident.to_string());
        self.attrs().name.as_ref().map_or_else(snake, LitStr::value)
    }

    fn id(&self) -> Type {
        let string = || syn::parse_quote!(::std::string::String);
        self.attrs().id.clone().unwrap_or_else(string)
    }

    fn error(&self) -> Type {
        let infallible = || syn::parse_quote!(::core::convert::Infallible);
        self.attrs().error.clone().unwrap_or_else(infallible)
    }
}

fn enum_ident(self_ident: &Ident) -> Ident {
    format_ident!("{}Event", self_ident)
}

pub(super) fn expand(cx: &Context) -> TokenStream {
    let krate = cx.krate;
    let item = &cx.input.item;
    let generated = cx.attrs().event.is_none().then(|| {
        let enum_ident = enum_ident(cx.self_ident);
        let specs: Vec<VariantSpec> = cx
            .handlers()
            .iter()
            .filter_map(|h| Some(VariantSpec::newtype(h.variant.clone()?, h.event.clone())))
            .collect();
        expand_enum(krate, &enum_ident, &specs)
    });
    let enum_def = cx.attrs().event.is_none().then(|| event_enum(cx));
    let aggregate = aggregate_impl(cx);
    let registration = registration(cx);
    quote! {
        #item
        #enum_def
        #generated
        const _: () = {
            #aggregate
            #registration
        };
    }
}

fn aggregate_impl(cx: &Context) -> TokenStream {
    let (krate, event_path) = (cx.krate, &cx.event_path);
    let self_ty = &cx.input.item.self_ty;
    let (name, id, error) = (cx.name(), cx.id(), cx.error());
    let apply = apply_body(cx);
    let snapshot = snapshot(cx);
    let cache = cx
        .attrs()
        .cache
        .as_ref()
        .map(|flag| quote!(const CACHE: bool = #flag;));
    let conflicts = cx.attrs().conflicts.as_ref().map(|path| {
        quote! {
            fn conflicts(ours: &Self::Event, theirs: &Self::Event) -> bool {
                #path(ours, theirs)
            }
        }
    });
    quote! {
        #[automatically_derived]
        impl #krate::Aggregate for #self_ty {
            const TYPE: &'static str = #name;
            #snapshot
            #cache
            type Id = #id;
            type Event = #event_path;
            type Error = #error;

            #[inline]
            fn apply(&mut self, event: &Self::Event) {
                #apply
            }

            #conflicts
        }
    }
}

/// The dispatch to handlers. Spanned at the user's `event = ...` so that rustc's "pattern not
/// covered" error (an event of their enum without a handler) points at the enum they named.
fn apply_body(cx: &Context) -> TokenStream {
    let event_path = &cx.event_path;
    let handlers = cx.handlers();
    let arms = handlers.iter().map(|h| {
        let (method, variant) = (&h.method, &h.variant);
        quote!(#event_path::#variant(event) => self.#method(event),)
    });
    let span = cx
        .attrs()
        .event
        .as_ref()
        .map_or_else(Span::call_site, |p| p.span());
    // A generated enum without variants still needs a total match.
    let empty = (cx.attrs().event.is_none() && handlers.is_empty()).then(|| quote!(_ => {}));
    quote_spanned!(span=> match event { #(#arms)* #empty })
}

fn snapshot(cx: &Context) -> Option<TokenStream> {
    let krate = cx.krate;
    let state_version = cx.attrs().snapshot.as_ref()?;
    let every = cx
        .attrs()
        .snapshot_every
        .as_ref()
        .map(|n| quote!(.every(#n)));
    Some(quote! {
        const SNAPSHOT: ::core::option::Option<#krate::store::SnapshotFormat<Self>> =
            ::core::option::Option::Some(#krate::store::SnapshotFormat::json(#state_version) #every);
    })
}

fn registration(cx: &Context) -> TokenStream {
    let (krate, self_ident, name) = (cx.krate, cx.self_ident, cx.name());
    let event_types = cx.handlers().into_iter().map(|h| &h.event);
    quote! {
        #krate::__private::inventory::submit! {
            #krate::__private::AggregateRegistration {
                name: #name,
                rust_type: ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#self_ident)),
                events: &[#(<#event_types as #krate::EventType>::NAME),*],
            }
        }
    }
}

/// The generated event enum, one variant per handler, with a `From` impl per event type.
fn event_enum(cx: &Context) -> TokenStream {
    let enum_ident = enum_ident(cx.self_ident);
    let vis = cx
        .attrs()
        .vis
        .clone()
        .unwrap_or_else(|| syn::parse_quote!(pub));
    let handlers = cx.handlers();
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
    let doc = format!(
        " The events of [`{}`], one variant per event handler; generated by `#[aggregate]`.",
        cx.self_ident
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
    }
}

/// Beside errors: the impl block, the event enum with a behaviourless `Event` impl, and an
/// `Aggregate` impl with the right associated types, without registration or checks.
pub(super) fn stub(cx: &Context) -> TokenStream {
    let krate = cx.krate;
    let item = &cx.input.item;
    let generated = cx.attrs().event.is_none().then(|| {
        let enum_def = event_enum(cx);
        let event_impl = event_stub(krate, &enum_ident(cx.self_ident));
        quote!(#enum_def #event_impl)
    });
    if !item.generics.params.is_empty() || item.trait_.is_some() {
        // Any `Aggregate` impl would be a second error about the same mistake.
        return quote!(#item #generated);
    }
    let (self_ty, event_path) = (&item.self_ty, &cx.event_path);
    let (id, error) = (cx.id(), cx.error());
    quote! {
        #item
        #generated
        impl #krate::Aggregate for #self_ty {
            const TYPE: &'static str = "";
            type Id = #id;
            type Event = #event_path;
            type Error = #error;
            fn apply(&mut self, _: &Self::Event) {}
        }
    }
}
