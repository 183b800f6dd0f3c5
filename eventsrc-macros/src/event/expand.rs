//! Code generation for event structs, and the stubs emitted beside errors.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::{Ident, LitStr};

use super::parse::{Body, EventAttrs, EventInput};
use super::personal::{self, PersonalFields};
use super::versioned::Chain;

/// `EventType`, `Event`, `Versioned` and the registry entry of an event struct; `Versioned` and
/// a check of the successor for a superseded shape.
pub(super) fn event_struct(
    krate: &TokenStream,
    ident: &Ident,
    unit: bool,
    attrs: &EventAttrs,
    fields: &PersonalFields,
) -> TokenStream {
    let chain = Chain {
        krate,
        version: attrs.version(),
        prev: attrs.upcast_from.as_ref(),
        steps: &attrs.upcast_json,
    };
    // A unit struct has no payload: it is stored as `{}` (like a unit variant) and any payload
    // of a version up to the current one reads as the value.
    let versioned = if unit {
        unit_versioned(krate, ident, attrs.version())
    } else {
        chain.versioned_impl(&quote!(#ident))
    };
    let json = (!unit).then(|| json_assertion(krate, ident));
    if let Some(current) = &attrs.superseded_by {
        // A superseded shape's payloads are stored under its successor's names, at its own
        // version.
        let personal = personal::registration(
            krate,
            fields,
            ident,
            &quote!(<#current as #krate::EventType>::NAME),
            &quote!(<#current as #krate::EventType>::ALIASES),
            attrs.version(),
        );
        return quote! {
            const _: () = {
                use #krate::__private::NotJson as _;
                #json
                #versioned
                fn __superseded_by_an_event<T: #krate::Event>() {}
                let _ = __superseded_by_an_event::<#current>;
                #personal
            };
        };
    }
    let oldest = if unit { quote!(1u32) } else { chain.oldest() };
    let impls = event_impls(krate, ident, unit, attrs);
    let name = attrs.name_or(ident);
    let entry = Registration {
        krate,
        name: &name,
        version: attrs.version(),
        aliases: &attrs.aliases,
    };
    let registration = entry.tokens(&ident.to_string(), &oldest, &quote!(#ident));
    let aliases = &attrs.aliases;
    let personal = personal::registration(
        krate,
        fields,
        ident,
        &quote!(#name),
        &quote!(&[#(#aliases),*]),
        attrs.version(),
    );
    quote! {
        const _: () = {
            use #krate::__private::NotJson as _;
            #json
            #versioned
            #impls
            #registration
            #personal
        };
    }
}

/// Fails the build, at the type, when it cannot be written as JSON.
fn json_assertion(krate: &TokenStream, ident: &Ident) -> TokenStream {
    let message = format!(
        "`{ident}` is stored as JSON: add `#[derive(Serialize, Deserialize)]` (from `serde`) to it"
    );
    quote_spanned! {ident.span()=>
        const _: () = ::core::assert!(<#krate::__private::Json<#ident>>::IS_JSON, #message);
    }
}

fn event_impls(krate: &TokenStream, ident: &Ident, unit: bool, attrs: &EventAttrs) -> TokenStream {
    let name = attrs.name_or(ident);
    let version = attrs.version();
    let aliases = &attrs.aliases;
    let encode = if unit {
        quote!(::core::result::Result::Ok(::std::string::String::from(
            "{}"
        )))
    } else {
        quote!(<#krate::__private::Json<Self>>::encode(#name, self))
    };
    quote! {
        #[automatically_derived]
        impl #krate::EventType for #ident {
            const NAME: &'static str = #name;
            const VERSION: u32 = #version;
            const ALIASES: &'static [&'static str] = &[#(#aliases),*];
        }

        #[automatically_derived]
        impl #krate::Event for #ident {
            #[inline]
            fn event_type(&self) -> &'static str {
                #name
            }
            #[inline]
            fn schema_version(&self) -> u32 {
                #version
            }
            #[inline]
            fn encode(&self) -> ::core::result::Result<::std::string::String, #krate::EncodeError> {
                #encode
            }
            #[inline]
            fn stored_types() -> ::core::option::Option<::std::vec::Vec<&'static str>> {
                ::core::option::Option::Some(::std::vec![#name #(, #aliases)*])
            }
            #[inline]
            fn decode(
                event_type: &str,
                version: u32,
                payload: &str,
            ) -> ::core::result::Result<Self, #krate::DecodeError> {
                if !#krate::__private::answers_to(event_type, #name, &[#(#aliases),*]) {
                    return ::core::result::Result::Err(#krate::DecodeError::unknown(event_type, version));
                }
                <Self as #krate::Versioned>::from_version(event_type, version, payload)
            }
        }
    }
}

fn unit_versioned(krate: &TokenStream, ident: &Ident, version: u32) -> TokenStream {
    quote! {
        #[automatically_derived]
        impl #krate::Versioned for #ident {
            const VERSION: u32 = #version;
            const OLDEST: u32 = 1;
            fn from_version(
                event_type: &str,
                version: u32,
                _payload: &str,
            ) -> ::core::result::Result<Self, #krate::DecodeError> {
                if version > #version {
                    return ::core::result::Result::Err(#krate::__private::future_version(event_type, version, #version));
                }
                ::core::result::Result::Ok(#ident)
            }
        }
    }
}

/// The registry entry of one stored event name.
pub(super) struct Registration<'a> {
    pub krate: &'a TokenStream,
    pub name: &'a str,
    pub version: u32,
    pub aliases: &'a [LitStr],
}

impl Registration<'_> {
    /// `rust_type` is shown in registry listings; `event` is the type that decodes the name.
    pub(super) fn tokens(
        &self,
        rust_type: &str,
        oldest: &TokenStream,
        event: &TokenStream,
    ) -> TokenStream {
        let Self {
            krate,
            name,
            version,
            aliases,
        } = self;
        quote! {
            #krate::__private::inventory::submit! {
                #krate::__private::EventRegistration {
                    name: #name,
                    version: #version,
                    aliases: &[#(#aliases),*],
                    rust_type: ::core::concat!(::core::module_path!(), "::", #rust_type),
                    oldest_version: #oldest,
                    to_current_json: #krate::__private::to_current_json::<#event>,
                }
            }
        }
    }
}

/// What stands beside the errors: the impls the type would have, with the right shape and no
/// behaviour. A generic type gets none, since any impl would need its parameters.
pub(super) fn stub(krate: &TokenStream, input: &EventInput) -> TokenStream {
    if !input.generics.params.is_empty() {
        return TokenStream::new();
    }
    let ident = &input.ident;
    let versioned = (!matches!(input.body, Body::Enum(_))).then(|| {
        quote! {
            impl #krate::Versioned for #ident {
                const VERSION: u32 = 1;
                const OLDEST: u32 = 1;
                fn from_version(_: &str, _: u32, _: &str) -> ::core::result::Result<Self, #krate::DecodeError> {
                    ::core::unreachable!()
                }
            }
        }
    });
    if input.attrs.superseded_by.is_some() {
        return quote!(#versioned);
    }
    let event = event_stub(krate, ident);
    let event_type = matches!(input.body, Body::Struct { .. }).then(|| {
        // A control character: no real stored name can equal it, so stubs never collide.
        quote! {
            impl #krate::EventType for #ident {
                const NAME: &'static str = ::core::concat!("\u{0}", ::core::module_path!(), "::", ::core::stringify!(#ident));
                const VERSION: u32 = 1;
            }
        }
    });
    quote!(#versioned #event_type #event)
}

/// An `Event` impl whose methods are never reached: the build has already failed.
pub(crate) fn event_stub(krate: &TokenStream, ident: &Ident) -> TokenStream {
    quote! {
        impl #krate::Event for #ident {
            fn event_type(&self) -> &'static str { "" }
            fn schema_version(&self) -> u32 { 0 }
            fn encode(&self) -> ::core::result::Result<::std::string::String, #krate::EncodeError> {
                ::core::unreachable!()
            }
            fn decode(_: &str, _: u32, _: &str) -> ::core::result::Result<Self, #krate::DecodeError> {
                ::core::unreachable!()
            }
        }
    }
}
