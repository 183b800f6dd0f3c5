//! Parsing `#[derive(Event)]` input into an AST that keeps the user's tokens for spans. Only
//! syntax is checked here (unknown or repeated keys, malformed values); what the keys mean
//! together is checked in `validate`.

use syn::{
    Attribute, Data, DeriveInput, Fields, FieldsNamed, FieldsUnnamed, Generics, Ident, LitInt,
    LitStr, Path, Type,
};

use super::personal::PersonalFields;
use crate::attr::{self, Key, Keys};
use crate::errors::Errors;

/// The keys of `#[event(...)]`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum EventKey {
    Name,
    Version,
    Aliases,
    UpcastFrom,
    UpcastJson,
    SupersededBy,
    Crate,
}

pub(super) const KEYS: Keys<EventKey> = Keys {
    attribute: "#[event(...)]",
    keys: &[
        Key {
            name: "name",
            syntax: "name = \"...\"",
            kind: EventKey::Name,
        },
        Key {
            name: "version",
            syntax: "version = 2",
            kind: EventKey::Version,
        },
        Key {
            name: "aliases",
            syntax: "aliases = [\"...\"]",
            kind: EventKey::Aliases,
        },
        Key {
            name: "upcast_from",
            syntax: "upcast_from = OldType",
            kind: EventKey::UpcastFrom,
        },
        Key {
            name: "upcast_json",
            syntax: "upcast_json = [step]",
            kind: EventKey::UpcastJson,
        },
        Key {
            name: "superseded_by",
            syntax: "superseded_by = Type",
            kind: EventKey::SupersededBy,
        },
        Key {
            name: "crate",
            syntax: "crate = path",
            kind: EventKey::Crate,
        },
    ],
};

/// The `#[event(...)]` keys of one struct, enum or variant, as written.
#[derive(Default)]
pub(super) struct EventAttrs {
    pub krate: Option<Path>,
    pub name: Option<LitStr>,
    pub version: Option<LitInt>,
    pub aliases: Vec<LitStr>,
    pub upcast_from: Option<Type>,
    pub upcast_json: Vec<Path>,
    pub superseded_by: Option<Type>,
    /// Every key given, with the path the user wrote, for the placement check.
    pub given: Vec<(EventKey, Path)>,
}

/// The derive input.
pub(super) struct EventInput {
    pub ident: Ident,
    pub generics: Generics,
    pub attrs: EventAttrs,
    pub body: Body,
    /// The fields marked `#[event(personal)]` or `#[event(subject)]`.
    pub personal: PersonalFields,
}

pub(super) enum Body {
    /// An event struct; `unit` when it has no fields (stored as `{}`).
    Struct {
        unit: bool,
    },
    Enum(Vec<VariantAst>),
    Union(syn::token::Union),
}

pub(super) struct VariantAst {
    pub ident: Ident,
    pub attrs: EventAttrs,
    pub shape: Shape,
}

pub(super) enum Shape {
    /// `V(SomeEvent)`: the wrapped type is an event of its own.
    Newtype(Type),
    /// `V` or `V {}`: an event without payload.
    Unit,
    /// `V { a: A }`: an event whose payload is these fields.
    Named(FieldsNamed),
    /// `V(A, B)`: not an event form; rejected by `validate`.
    Tuple(FieldsUnnamed),
}

impl EventInput {
    pub(super) fn parse(input: DeriveInput, errors: &mut Errors) -> Self {
        let attrs = EventAttrs::parse(&input.attrs, errors);
        let personal = PersonalFields::parse(&input.attrs, &input.data, errors);
        let body = match input.data {
            Data::Struct(data) => Body::Struct {
                unit: matches!(data.fields, Fields::Unit),
            },
            Data::Enum(data) => Body::Enum(
                data.variants
                    .into_iter()
                    .map(|v| VariantAst {
                        attrs: EventAttrs::parse(&v.attrs, errors),
                        shape: Shape::of(v.fields),
                        ident: v.ident,
                    })
                    .collect(),
            ),
            Data::Union(data) => Body::Union(data.union_token),
        };
        Self {
            ident: input.ident,
            generics: input.generics,
            attrs,
            body,
            personal,
        }
    }
}

impl Shape {
    fn of(fields: Fields) -> Self {
        match fields {
            Fields::Unit => Self::Unit,
            Fields::Named(named) if named.named.is_empty() => Self::Unit,
            Fields::Named(named) => Self::Named(named),
            Fields::Unnamed(mut unnamed) if unnamed.unnamed.len() == 1 => {
                let only = unnamed.unnamed.pop().map(|pair| pair.into_value().ty);
                only.map_or(Self::Tuple(unnamed), Self::Newtype)
            }
            Fields::Unnamed(unnamed) => Self::Tuple(unnamed),
        }
    }
}

impl EventAttrs {
    /// Reads every `#[event(...)]` in `attrs`, reporting each bad key and going on.
    pub(super) fn parse(attrs: &[Attribute], errors: &mut Errors) -> Self {
        let mut parsed = Self::default();
        let mut seen = Vec::new();
        for attr in attrs.iter().filter(|a| a.path().is_ident("event")) {
            let result = attr.parse_nested_meta(|meta| {
                let Some(key) = KEYS.read(&meta, &mut seen, errors)? else {
                    return Ok(());
                };
                parsed.given.push((key, meta.path.clone()));
                parsed.set(key, &meta)
            });
            errors.keep(result);
        }
        parsed
    }

    fn set(&mut self, key: EventKey, meta: &syn::meta::ParseNestedMeta) -> syn::Result<()> {
        match key {
            EventKey::Crate => self.krate = Some(attr::path(meta)?),
            EventKey::Name => self.name = Some(attr::string(meta)?),
            EventKey::Aliases => self.aliases = attr::strings(meta)?,
            EventKey::Version => self.version = Some(meta.value()?.parse()?),
            EventKey::UpcastFrom => self.upcast_from = Some(attr::ty(meta)?),
            EventKey::UpcastJson => self.upcast_json = attr::paths(meta)?,
            EventKey::SupersededBy => self.superseded_by = Some(attr::ty(meta)?),
        }
        Ok(())
    }

    /// The schema version: 1 when absent; a bad literal (reported by `validate`) also reads
    /// as 1 so that expansion can go on.
    pub(super) fn version(&self) -> u32 {
        self.version
            .as_ref()
            .and_then(|lit| lit.base10_parse::<u32>().ok())
            .filter(|v| *v > 0)
            .unwrap_or(1)
    }

    /// The stored name: the `name` key, or the Rust identifier.
    pub(super) fn name_or(&self, ident: &Ident) -> String {
        self.name
            .as_ref()
            .map_or_else(|| ident.to_string(), LitStr::value)
    }
}
