//! `#[derive(Event)]`: parse → validate → expand, for structs (one event type, or a superseded
//! shape kept for upcasting) and enums (a set of event types, one per variant).

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::{Attribute, Data, DeriveInput, Fields, FieldsNamed, Ident, LitStr, Path, Type};

use crate::attr::{self, Errors, Seen};
use crate::versioned::Chain;

const KEYS: &str = "name, version, aliases, upcast_from, upcast_json, superseded_by, crate";

/// Where an `#[event(...)]` attribute stands; each place admits some keys.
#[derive(Clone, Copy, PartialEq)]
enum Place {
    Struct,
    Enum,
    Variant,
}

/// The parsed `#[event(...)]` keys, keeping the user's tokens for spans.
#[derive(Default)]
struct EventAttrs {
    krate: Option<Path>,
    name: Option<LitStr>,
    version: Option<(u32, Span)>,
    aliases: Vec<LitStr>,
    upcast_from: Option<Type>,
    upcast_json: Vec<Path>,
    superseded_by: Option<Type>,
}

impl EventAttrs {
    fn parse(attrs: &[Attribute], place: Place, errors: &mut Errors) -> Self {
        let mut parsed = Self::default();
        let mut seen = Seen::default();
        for attr in attrs.iter().filter(|a| a.path().is_ident("event")) {
            let result = attr.parse_nested_meta(|meta| {
                let key = attr::key_of(&meta);
                if !is_known(&key) {
                    return attr::unknown(&meta, "event", KEYS, errors);
                }
                if let Some(message) = misplaced(&key, place) {
                    errors.spanned(&meta.path, message);
                    return attr::skip_value(&meta);
                }
                if !seen.first(&meta, "event", errors) {
                    return attr::skip_value(&meta);
                }
                parsed.set(&key, &meta, errors)
            });
            if let Err(error) = result {
                errors.push(error);
            }
        }
        parsed
    }

    fn set(
        &mut self,
        key: &str,
        meta: &syn::meta::ParseNestedMeta,
        errors: &mut Errors,
    ) -> syn::Result<()> {
        match key {
            "crate" => self.krate = Some(attr::path(meta)?),
            "name" => {
                let name = attr::string(meta)?;
                check_name(&name, errors);
                self.name = Some(name);
            }
            "aliases" => {
                self.aliases = attr::strings(meta)?;
                self.aliases
                    .iter()
                    .for_each(|alias| check_name(alias, errors));
            }
            "version" => {
                let (value, lit) = attr::integer(meta)?;
                match u32::try_from(value) {
                    Ok(0) => errors.spanned(
                        &lit,
                        "schema versions start at 1: write `version = 1` or leave it out",
                    ),
                    Ok(version) => self.version = Some((version, lit.span())),
                    Err(_) => errors.spanned(&lit, "a schema version must fit in a `u32`"),
                }
            }
            "upcast_from" => self.upcast_from = Some(attr::ty(meta)?),
            "upcast_json" => self.upcast_json = attr::paths(meta)?,
            "superseded_by" => self.superseded_by = Some(attr::ty(meta)?),
            _ => unreachable!("keys are checked by is_known"),
        }
        Ok(())
    }

    fn version(&self) -> u32 {
        self.version.map_or(1, |(version, _)| version)
    }

    /// A version above 1 needs some way to read the versions below it.
    fn check_chain(&self, errors: &mut Errors) {
        let Some((version, span)) = self.version else {
            return;
        };
        let steps = self.upcast_json.len() as u32;
        if version > 1 && self.upcast_from.is_none() && steps == 0 {
            errors.at(
                span,
                format!(
                    "`#[event(version = {version})]` needs `upcast_from = ...` or `upcast_json = ...` to read stored version {}",
                    version - 1
                ),
            );
        }
        if steps >= version {
            errors.at(
                span,
                format!(
                    "`upcast_json` lists {steps} step(s) but version {version} has only {} older version(s)",
                    version - 1
                ),
            );
        }
    }
}

fn is_known(key: &str) -> bool {
    [
        "crate",
        "name",
        "version",
        "aliases",
        "upcast_from",
        "upcast_json",
        "superseded_by",
    ]
    .contains(&key)
}

fn misplaced(key: &str, place: Place) -> Option<String> {
    match (place, key) {
        (Place::Enum, "crate") | (Place::Struct, _) => None,
        (Place::Enum, _) => Some(format!(
            "`{key}` belongs on a variant (or on the event struct a variant wraps), not on the enum"
        )),
        (Place::Variant, "name" | "version" | "aliases" | "upcast_json") => None,
        (Place::Variant, "upcast_from" | "superseded_by") => Some(format!(
            "`{key}` works on event structs: derive `Event` on a struct and wrap it in this variant"
        )),
        (Place::Variant, _) => Some(format!("`{key}` belongs on the enum, not on a variant")),
    }
}

fn check_name(name: &LitStr, errors: &mut Errors) {
    let value = name.value();
    if value.trim().is_empty() {
        errors.spanned(name, "an event name must not be empty");
    } else if value.chars().any(char::is_control) {
        errors.spanned(name, "an event name must not contain control characters");
    }
}

pub fn derive(input: DeriveInput) -> TokenStream {
    let mut errors = Errors::default();
    let place = if matches!(input.data, Data::Enum(_)) {
        Place::Enum
    } else {
        Place::Struct
    };
    let attrs = EventAttrs::parse(&input.attrs, place, &mut errors);
    let krate = attr::crate_path(attrs.krate.as_ref());
    if !input.generics.params.is_empty() {
        errors.spanned(
            &input.generics,
            "event types cannot be generic: the registry needs one concrete type per stored name",
        );
        // Any impl would need the generics; emitting none avoids a second error.
        return errors.into_compile_errors();
    }
    let expanded = match &input.data {
        Data::Struct(data) => {
            let unit = matches!(data.fields, Fields::Unit);
            expand_struct(&input.ident, unit, &attrs, &krate, &mut errors)
        }
        Data::Enum(data) => {
            let variants = variant_specs(data, &mut errors);
            expand_enum(&krate, &input.ident, &variants)
        }
        Data::Union(union) => {
            errors.spanned(
                union.union_token,
                "`#[derive(Event)]` works on structs and enums, not unions",
            );
            TokenStream::new()
        }
    };
    if errors.is_empty() {
        expanded
    } else {
        let stub = fallback(&krate, &input.ident, &attrs, place);
        let compile_errors = errors.into_compile_errors();
        quote!(#compile_errors #stub)
    }
}

/// What is emitted beside the errors: impls with the right shape and no behaviour, so that code
/// using the type does not add a second wave of "trait not implemented" errors.
fn fallback(krate: &TokenStream, ident: &Ident, attrs: &EventAttrs, place: Place) -> TokenStream {
    let versioned = (place == Place::Struct).then(|| {
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
    if attrs.superseded_by.is_some() {
        return quote!(#versioned);
    }
    quote! {
        #versioned
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

fn expand_struct(
    ident: &Ident,
    unit: bool,
    attrs: &EventAttrs,
    krate: &TokenStream,
    errors: &mut Errors,
) -> TokenStream {
    if !unit {
        attrs.check_chain(errors);
    }
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
    if let Some(current) = &attrs.superseded_by {
        for (present, key) in [
            (attrs.name.is_some(), "name"),
            (!attrs.aliases.is_empty(), "aliases"),
        ] {
            if present {
                errors.spanned(
                    current,
                    format!("a superseded shape is stored under the name of `superseded_by`; remove `{key}`"),
                );
            }
        }
        return quote! {
            const _: () = {
                #versioned
                fn __superseded_by_an_event<T: #krate::Event>() {}
                let _ = __superseded_by_an_event::<#current>;
            };
        };
    }
    let name = attrs
        .name
        .as_ref()
        .map_or_else(|| ident.to_string(), LitStr::value);
    let version = attrs.version();
    let aliases = &attrs.aliases;
    let encode = if unit {
        quote!(::core::result::Result::Ok(::std::string::String::from(
            "{}"
        )))
    } else {
        quote!(#krate::__private::encode(#name, self))
    };
    let registration = registration(
        krate,
        &name,
        version,
        aliases,
        &ident.to_string(),
        &if unit { quote!(1u32) } else { chain.oldest() },
        &quote!(#ident),
    );
    quote! {
        const _: () = {
            #versioned

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

            #registration
        };
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

fn registration(
    krate: &TokenStream,
    name: &str,
    version: u32,
    aliases: &[LitStr],
    rust_type: &str,
    oldest: &TokenStream,
    event: &TokenStream,
) -> TokenStream {
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

/// One variant of an event enum.
pub struct VariantSpec {
    pub ident: Ident,
    pub kind: VariantKind,
    /// Stored name (unit and named variants; newtype variants take their type's).
    pub name: String,
    pub aliases: Vec<LitStr>,
    pub version: u32,
    pub steps: Vec<Path>,
}

pub enum VariantKind {
    /// `V(SomeEvent)`: the wrapped type is an event of its own.
    Newtype(Type),
    /// `V`: an event without payload.
    Unit,
    /// `V { a: A }`: an event whose payload is these fields.
    Named(FieldsNamed),
}

impl VariantSpec {
    /// A variant wrapping an event type (what `#[aggregate]` generates).
    pub fn newtype(ident: Ident, ty: Type) -> Self {
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

fn variant_specs(data: &syn::DataEnum, errors: &mut Errors) -> Vec<VariantSpec> {
    let mut specs: Vec<VariantSpec> = Vec::new();
    for variant in &data.variants {
        let attrs = EventAttrs::parse(&variant.attrs, Place::Variant, errors);
        let kind = match &variant.fields {
            Fields::Unit => VariantKind::Unit,
            Fields::Named(named) if named.named.is_empty() => VariantKind::Unit,
            Fields::Named(named) => VariantKind::Named(named.clone()),
            Fields::Unnamed(unnamed) if unnamed.unnamed.len() == 1 => {
                VariantKind::Newtype(unnamed.unnamed[0].ty.clone())
            }
            Fields::Unnamed(unnamed) => {
                errors.spanned(
                    unnamed,
                    "an event variant wraps one event type, `Variant(MyEvent)`, or has named fields, `Variant { .. }`; several unnamed fields have no stored names",
                );
                continue;
            }
        };
        if let VariantKind::Newtype(ty) = &kind {
            if attrs.name.is_some()
                || attrs.version.is_some()
                || !attrs.aliases.is_empty()
                || !attrs.upcast_json.is_empty()
            {
                errors.spanned(
                    ty,
                    "this variant wraps an event type: put `#[event(...)]` on that type's definition instead",
                );
            }
        } else if matches!(kind, VariantKind::Named(_)) {
            // Unit variants have no payload to upcast; any older version reads as the value.
            attrs.check_chain(errors);
        }
        let name = attrs
            .name
            .as_ref()
            .map_or_else(|| variant.ident.to_string(), LitStr::value);
        if !matches!(kind, VariantKind::Newtype(_))
            && specs
                .iter()
                .any(|s| s.name == name && !matches!(s.kind, VariantKind::Newtype(_)))
        {
            errors.spanned(
                &variant.ident,
                format!("two variants are stored as `{name}`; give one `#[event(name = \"...\")]`"),
            );
        }
        specs.push(VariantSpec {
            ident: variant.ident.clone(),
            kind,
            name,
            version: attrs.version(),
            aliases: attrs.aliases,
            steps: attrs.upcast_json,
        });
    }
    specs
}

/// The `Event` impl of an enum whose variants are events; used by `#[derive(Event)]` on enums
/// and by `#[aggregate]` for the enum it generates.
pub fn expand_enum(
    krate: &TokenStream,
    enum_ident: &Ident,
    variants: &[VariantSpec],
) -> TokenStream {
    let serde_path = format!("{krate}::__private::serde").replace(' ', "");
    let mut support = Vec::new();
    let mut event_type = Vec::new();
    let mut schema_version = Vec::new();
    let mut encode = Vec::new();
    let mut decode = Vec::new();
    let mut arms = Vec::new();
    let mut stored = Vec::new();
    for v in variants {
        let ident = &v.ident;
        let (name, version, aliases) = (&v.name, v.version, &v.aliases);
        match &v.kind {
            VariantKind::Newtype(ty) => {
                event_type.push(quote!(Self::#ident(event) => #krate::Event::event_type(event),));
                stored.push(quote! {
                    types.push(<#ty as #krate::EventType>::NAME);
                    types.extend_from_slice(<#ty as #krate::EventType>::ALIASES);
                });
                schema_version
                    .push(quote!(Self::#ident(event) => #krate::Event::schema_version(event),));
                encode.push(quote!(Self::#ident(event) => #krate::Event::encode(event),));
                // By name in the dispatch `match`; by alias only when no name matched.
                arms.push(quote! {
                    <#ty as #krate::EventType>::NAME => {
                        return <#ty as #krate::Event>::decode(event_type, version, payload).map(Self::#ident);
                    }
                });
                decode.push(quote! {
                    if <#ty as #krate::EventType>::ALIASES.contains(&event_type) {
                        return <#ty as #krate::Event>::decode(event_type, version, payload).map(Self::#ident);
                    }
                });
            }
            VariantKind::Unit => {
                event_type.push(quote!(Self::#ident {} => #name,));
                stored.push(quote!(types.extend_from_slice(&[#name #(, #aliases)*]);));
                schema_version.push(quote!(Self::#ident {} => #version,));
                encode.push(quote!(Self::#ident {} => ::core::result::Result::Ok(::std::string::String::from("{}")),));
                arms.push(quote! {
                    #name #(| #aliases)* => {
                        if version > #version {
                            return ::core::result::Result::Err(#krate::__private::future_version(event_type, version, #version));
                        }
                        return ::core::result::Result::Ok(Self::#ident {});
                    }
                });
                let rust_type = format!("{enum_ident}::{ident}");
                support.push(registration(
                    krate,
                    name,
                    version,
                    aliases,
                    &rust_type,
                    &quote!(1u32),
                    &quote!(#enum_ident),
                ));
            }
            VariantKind::Named(fields) => {
                let encoder = format_ident!("__Encode{}", ident);
                let decoder = format_ident!("__Decode{}", ident);
                let names: Vec<&Ident> = fields
                    .named
                    .iter()
                    .filter_map(|f| f.ident.as_ref())
                    .collect();
                let types = fields.named.iter().map(|f| &f.ty);
                let serde_attrs: Vec<Vec<&Attribute>> = fields
                    .named
                    .iter()
                    .map(|f| {
                        f.attrs
                            .iter()
                            .filter(|a| a.path().is_ident("serde"))
                            .collect()
                    })
                    .collect();
                let enc_fields = names
                    .iter()
                    .zip(types.clone())
                    .zip(&serde_attrs)
                    .map(|((n, t), a)| quote!(#(#a)* #n: &'a #t));
                let dec_fields = names
                    .iter()
                    .zip(types)
                    .zip(&serde_attrs)
                    .map(|((n, t), a)| quote!(#(#a)* #n: #t));
                let chain = Chain {
                    krate,
                    version,
                    prev: None,
                    steps: &v.steps,
                };
                let versioned = chain.versioned_impl(&quote!(#decoder));
                support.push(quote! {
                    #[derive(#krate::__private::serde::Serialize)]
                    #[serde(crate = #serde_path)]
                    struct #encoder<'a> { #(#enc_fields),* }

                    #[derive(#krate::__private::serde::Deserialize)]
                    #[serde(crate = #serde_path)]
                    struct #decoder { #(#dec_fields),* }

                    #versioned
                });
                let rust_type = format!("{enum_ident}::{ident}");
                support.push(registration(
                    krate,
                    name,
                    version,
                    aliases,
                    &rust_type,
                    &chain.oldest(),
                    &quote!(#enum_ident),
                ));
                event_type.push(quote!(Self::#ident { .. } => #name,));
                stored.push(quote!(types.extend_from_slice(&[#name #(, #aliases)*]);));
                schema_version.push(quote!(Self::#ident { .. } => #version,));
                encode.push(quote! {
                    Self::#ident { #(#names),* } => #krate::__private::encode(#name, &#encoder { #(#names),* }),
                });
                arms.push(quote! {
                    #name #(| #aliases)* => {
                        let decoded = <#decoder as #krate::Versioned>::from_version(event_type, version, payload)?;
                        return ::core::result::Result::Ok(Self::#ident { #(#names: decoded.#names),* });
                    }
                });
            }
        }
    }
    let never = variants
        .is_empty()
        .then(|| quote!(_ => ::core::unreachable!(),));
    quote! {
        const _: () = {
            #(#support)*

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
                    #(#decode)*
                    ::core::result::Result::Err(#krate::DecodeError::unknown(event_type, version))
                }
            }
        };
    }
}
