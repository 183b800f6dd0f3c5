//! The `Event` impl of an enum whose variants are events; used by `#[derive(Event)]` on enums
//! and by `#[aggregate]` for the enum it generates.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::{Attribute, FieldsNamed, Ident, LitStr, Path, Type};

use super::expand::Registration;
use super::versioned::Chain;

/// One variant of an event enum, validated.
pub(crate) struct VariantSpec {
    pub ident: Ident,
    pub kind: VariantKind,
    /// Stored name (unit and named variants; newtype variants take their type's).
    pub name: String,
    pub aliases: Vec<LitStr>,
    pub version: u32,
    pub steps: Vec<Path>,
}

pub(crate) enum VariantKind {
    /// `V(SomeEvent)`: the wrapped type is an event of its own.
    Newtype(Type),
    /// `V`: an event without payload.
    Unit,
    /// `V { a: A }`: an event whose payload is these fields.
    Named(FieldsNamed),
}

impl VariantSpec {
    /// A variant wrapping an event type (what `#[aggregate]` generates).
    pub(crate) fn newtype(ident: Ident, ty: Type) -> Self {
        Self {
            ident,
            kind: VariantKind::Newtype(ty),
            name: String::new(),
            aliases: Vec::new(),
            version: 1,
            steps: Vec::new(),
        }
    }
}

/// The match arms and support items of every variant, gathered one variant at a time.
#[derive(Default)]
struct Parts {
    support: Vec<TokenStream>,
    event_type: Vec<TokenStream>,
    schema_version: Vec<TokenStream>,
    encode: Vec<TokenStream>,
    /// Arms of the dispatch `match` on the stored name.
    arms: Vec<TokenStream>,
    /// Alias checks after the `match`, for wrapped types (their aliases are not patterns).
    by_alias: Vec<TokenStream>,
    stored: Vec<TokenStream>,
    /// `(Rust name, stored name, aliases)` of each variant, for the distinct-names check.
    handled: Vec<TokenStream>,
}

pub(crate) fn expand_enum(
    krate: &TokenStream,
    enum_ident: &Ident,
    variants: &[VariantSpec],
) -> TokenStream {
    let mut parts = Parts::default();
    for v in variants {
        match &v.kind {
            VariantKind::Newtype(ty) => parts.newtype(krate, v, ty),
            VariantKind::Unit => parts.unit(krate, enum_ident, v),
            VariantKind::Named(fields) => parts.named(krate, enum_ident, v, fields),
        }
    }
    parts.finish(krate, enum_ident, variants.is_empty())
}

impl Parts {
    fn newtype(&mut self, krate: &TokenStream, v: &VariantSpec, ty: &Type) {
        let ident = &v.ident;
        let decode =
            quote!(<#ty as #krate::Event>::decode(event_type, version, payload).map(Self::#ident));
        self.event_type
            .push(quote!(Self::#ident(event) => #krate::Event::event_type(event),));
        self.schema_version
            .push(quote!(Self::#ident(event) => #krate::Event::schema_version(event),));
        self.encode
            .push(quote!(Self::#ident(event) => #krate::Event::encode(event),));
        self.stored.push(quote! {
            types.push(<#ty as #krate::EventType>::NAME);
            types.extend_from_slice(<#ty as #krate::EventType>::ALIASES);
        });
        // By name in the dispatch `match`; by alias only when no name matched.
        self.arms
            .push(quote!(<#ty as #krate::EventType>::NAME => { return #decode; }));
        self.by_alias.push(quote! {
            if <#ty as #krate::EventType>::ALIASES.contains(&event_type) {
                return #decode;
            }
        });
        self.handled.push(quote! {
            (::core::stringify!(#ty), <#ty as #krate::EventType>::NAME, <#ty as #krate::EventType>::ALIASES)
        });
    }

    /// What unit and named variants share: their stored names written here.
    fn literal(
        &mut self,
        krate: &TokenStream,
        enum_ident: &Ident,
        v: &VariantSpec,
        oldest: &TokenStream,
    ) {
        let (ident, name, aliases) = (&v.ident, &v.name, &v.aliases);
        let rust_type = format!("{enum_ident}::{ident}");
        self.stored
            .push(quote!(types.extend_from_slice(&[#name #(, #aliases)*]);));
        self.handled
            .push(quote!((#rust_type, #name, &[#(#aliases),*])));
        let entry = Registration {
            krate,
            name,
            version: v.version,
            aliases,
        };
        self.support
            .push(entry.tokens(&rust_type, oldest, &quote!(#enum_ident)));
    }

    fn unit(&mut self, krate: &TokenStream, enum_ident: &Ident, v: &VariantSpec) {
        let (ident, name, version, aliases) = (&v.ident, &v.name, v.version, &v.aliases);
        self.literal(krate, enum_ident, v, &quote!(1u32));
        self.event_type.push(quote!(Self::#ident {} => #name,));
        self.schema_version
            .push(quote!(Self::#ident {} => #version,));
        self.encode.push(quote!(Self::#ident {} => ::core::result::Result::Ok(::std::string::String::from("{}")),));
        self.arms.push(quote! {
            #name #(| #aliases)* => {
                if version > #version {
                    return ::core::result::Result::Err(#krate::__private::future_version(event_type, version, #version));
                }
                return ::core::result::Result::Ok(Self::#ident {});
            }
        });
    }

    fn named(
        &mut self,
        krate: &TokenStream,
        enum_ident: &Ident,
        v: &VariantSpec,
        fields: &FieldsNamed,
    ) {
        let (ident, name, version, aliases) = (&v.ident, &v.name, v.version, &v.aliases);
        let encoder = format_ident!("__Encode{}", ident);
        let decoder = format_ident!("__Decode{}", ident);
        let names: Vec<&Ident> = fields
            .named
            .iter()
            .filter_map(|f| f.ident.as_ref())
            .collect();
        let chain = Chain {
            krate,
            version,
            prev: None,
            steps: &v.steps,
        };
        self.literal(krate, enum_ident, v, &chain.oldest());
        self.support
            .push(payload_structs(krate, &encoder, &decoder, fields));
        self.support.push(chain.versioned_impl(&quote!(#decoder)));
        self.event_type.push(quote!(Self::#ident { .. } => #name,));
        self.schema_version
            .push(quote!(Self::#ident { .. } => #version,));
        self.encode.push(quote! {
            Self::#ident { #(#names),* } => <#krate::__private::Json<#encoder<'_>>>::encode(#name, &#encoder { #(#names),* }),
        });
        self.arms.push(quote! {
            #name #(| #aliases)* => {
                let decoded = <#decoder as #krate::Versioned>::from_version(event_type, version, payload)?;
                return ::core::result::Result::Ok(Self::#ident { #(#names: decoded.#names),* });
            }
        });
    }

    fn finish(self, krate: &TokenStream, enum_ident: &Ident, empty: bool) -> TokenStream {
        let Parts {
            support,
            event_type,
            schema_version,
            encode,
            arms,
            by_alias,
            stored,
            handled,
        } = self;
        let never = empty.then(|| quote!(_ => ::core::unreachable!(),));
        quote! {
            const _: () = {
                use #krate::__private::NotJson as _;
                #(#support)*

                const _: () = #krate::__private::assert_distinct_names(&[#(#handled),*]);

                #[automatically_derived]
                impl #krate::Event for #enum_ident {
                    #[inline]
                    fn event_type(&self) -> &'static str {
                        match self { #(#event_type)* #never }
                    }
                    #[inline]
                    fn schema_version(&self) -> u32 {
                        match self { #(#schema_version)* #never }
                    }
                    #[inline]
                    fn encode(&self) -> ::core::result::Result<::std::string::String, #krate::EncodeError> {
                        match self { #(#encode)* #never }
                    }
                    fn stored_types() -> ::core::option::Option<::std::vec::Vec<&'static str>> {
                        #[allow(unused_mut)]
                        let mut types: ::std::vec::Vec<&'static str> = ::std::vec::Vec::new();
                        #(#stored)*
                        ::core::option::Option::Some(types)
                    }
                    fn decode(
                        event_type: &str,
                        version: u32,
                        payload: &str,
                    ) -> ::core::result::Result<Self, #krate::DecodeError> {
                        // rustc turns this into the same dispatch a hand-written `match` gets.
                        #[allow(unreachable_patterns)]
                        match event_type {
                            #(#arms)*
                            _ => {}
                        }
                        #(#by_alias)*
                        ::core::result::Result::Err(#krate::DecodeError::unknown(event_type, version))
                    }
                }
            };
        }
    }
}

/// The serde structs a named variant's payload is written from and read into; the variant's
/// `#[serde(...)]` field attributes carry over.
fn payload_structs(
    krate: &TokenStream,
    encoder: &Ident,
    decoder: &Ident,
    fields: &FieldsNamed,
) -> TokenStream {
    let serde_path = format!("{krate}::__private::serde").replace(' ', "");
    let serde_attrs = |attrs: &[Attribute]| -> Vec<Attribute> {
        attrs
            .iter()
            .filter(|a| a.path().is_ident("serde"))
            .cloned()
            .collect()
    };
    let enc_fields = fields.named.iter().map(|f| {
        let (name, ty, attrs) = (&f.ident, &f.ty, serde_attrs(&f.attrs));
        quote!(#(#attrs)* #name: &'a #ty)
    });
    let dec_fields = fields.named.iter().map(|f| {
        let (name, ty, attrs) = (&f.ident, &f.ty, serde_attrs(&f.attrs));
        quote!(#(#attrs)* #name: #ty)
    });
    quote! {
        #[derive(#krate::__private::serde::Serialize)]
        #[serde(crate = #serde_path)]
        struct #encoder<'a> { #(#enc_fields),* }

        #[derive(#krate::__private::serde::Deserialize)]
        #[serde(crate = #serde_path)]
        struct #decoder { #(#dec_fields),* }
    }
}
