//! `#[event(personal)]` and `#[event(subject)]` on the fields of an event struct: which fields
//! hold a data subject's personal data, and which field names that subject. Parsed here with
//! the rest of the input, checked in [`validate`], and registered by [`registration`] so that
//! crypto-shredding (`eventsrc::personal`) knows what to seal.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Attribute, Data, Fields, Ident, LitStr, Path, Type};

use crate::attr::{Key, Keys};
use crate::errors::Errors;

/// The keys of `#[event(...)]` on a field.
#[derive(Clone, Copy, PartialEq, Eq)]
enum FieldKey {
    Personal,
    Subject,
}

const FIELD_KEYS: Keys<FieldKey> = Keys {
    attribute: "#[event(...)]",
    keys: &[
        Key {
            name: "personal",
            syntax: "personal",
            kind: FieldKey::Personal,
        },
        Key {
            name: "subject",
            syntax: "subject",
            kind: FieldKey::Subject,
        },
    ],
};

/// One field of an event struct, as far as crypto-shredding cares.
pub(super) struct FieldAst {
    pub ident: Option<Ident>,
    pub ty: Type,
    /// `personal` as written, for spans.
    pub personal: Option<Path>,
    /// `subject` as written.
    pub subject: Option<Path>,
    /// `#[serde(rename = "...")]`, the key the field is stored under.
    pub rename: Option<LitStr>,
    /// `#[serde(flatten)]`, as written.
    pub flatten: Option<Path>,
}

/// The fields of the input that carry `#[event(personal)]` or `#[event(subject)]`, and what
/// of serde's container attributes changes their stored keys.
#[derive(Default)]
pub(super) struct PersonalFields {
    pub fields: Vec<FieldAst>,
    /// `#[serde(rename_all = ...)]` on the struct, as written.
    pub rename_all: Option<Path>,
    /// Field attributes on enum variants or tuple fields, where they cannot work.
    pub misplaced: Vec<Path>,
}

impl PersonalFields {
    pub(super) fn parse(attrs: &[Attribute], data: &Data, errors: &mut Errors) -> Self {
        let mut parsed = Self::default();
        match data {
            Data::Struct(data) => match &data.fields {
                Fields::Named(named) => {
                    for field in &named.named {
                        let ast = field_ast(field, errors);
                        if ast.personal.is_some() || ast.subject.is_some() {
                            parsed.fields.push(ast);
                        }
                    }
                }
                Fields::Unnamed(unnamed) => parsed.misplace(&unnamed.unnamed, errors),
                Fields::Unit => {}
            },
            Data::Enum(data) => {
                parsed.misplace(data.variants.iter().flat_map(|v| &v.fields), errors);
            }
            Data::Union(_) => {}
        }
        if !parsed.fields.is_empty() {
            parsed.rename_all = serde_keys(attrs, &["rename_all", "rename_all_fields"])
                .into_iter()
                .next()
                .map(|(path, _)| path);
        }
        parsed
    }

    /// Notes the `personal` and `subject` keys on `fields`, where they cannot work.
    fn misplace<'f>(
        &mut self,
        fields: impl IntoIterator<Item = &'f syn::Field>,
        errors: &mut Errors,
    ) {
        for field in fields {
            let ast = field_ast(field, errors);
            self.misplaced
                .extend(ast.personal.into_iter().chain(ast.subject));
        }
    }

    fn personal(&self) -> impl Iterator<Item = &FieldAst> {
        self.fields.iter().filter(|f| f.personal.is_some())
    }

    fn subjects(&self) -> impl Iterator<Item = &FieldAst> {
        self.fields.iter().filter(|f| f.subject.is_some())
    }
}

fn field_ast(field: &syn::Field, errors: &mut Errors) -> FieldAst {
    let mut ast = FieldAst {
        ident: field.ident.clone(),
        ty: field.ty.clone(),
        personal: None,
        subject: None,
        rename: None,
        flatten: None,
    };
    let mut seen = Vec::new();
    for attr in field.attrs.iter().filter(|a| a.path().is_ident("event")) {
        let result = attr.parse_nested_meta(|meta| {
            match FIELD_KEYS.read(&meta, &mut seen, errors)? {
                Some(FieldKey::Personal) => ast.personal = Some(meta.path.clone()),
                Some(FieldKey::Subject) => ast.subject = Some(meta.path.clone()),
                None => {}
            }
            Ok(())
        });
        errors.keep(result);
    }
    for (path, value) in serde_keys(&field.attrs, &["rename", "flatten"]) {
        if path.is_ident("flatten") {
            ast.flatten = Some(path);
        } else {
            ast.rename = value;
        }
    }
    ast
}

/// The `#[serde(...)]` keys among `wanted`, with their string value when it is one.
fn serde_keys(attrs: &[Attribute], wanted: &[&str]) -> Vec<(Path, Option<LitStr>)> {
    let mut found = Vec::new();
    for attr in attrs.iter().filter(|a| a.path().is_ident("serde")) {
        // Serde reports its own syntax errors; a list this cannot read is left to it.
        let _ = attr.parse_nested_meta(|meta| {
            let key = crate::attr::key_of(&meta);
            if !wanted.contains(&key.as_str()) {
                return crate::attr::skip_value(&meta);
            }
            let value = if meta.input.peek(syn::Token![=]) && key == "rename" {
                meta.value()?.parse::<LitStr>().ok()
            } else {
                crate::attr::skip_value(&meta)?;
                None
            };
            found.push((meta.path.clone(), value));
            Ok(())
        });
    }
    found
}

pub(super) fn validate(fields: &PersonalFields, errors: &mut Errors) {
    for path in &fields.misplaced {
        errors.spanned(
            path,
            "`#[event(personal)]` and `#[event(subject)]` work on the named fields of an event struct: move these fields into a struct that derives `Event` and wrap it in this variant, `Variant(MyEvent)`",
        );
    }
    let subjects: Vec<&FieldAst> = fields.subjects().collect();
    let first_personal = fields.personal().next();
    match (subjects.as_slice(), first_personal) {
        ([], Some(field)) => errors.spanned(
            field.personal.as_ref(),
            "a personal field is sealed with its data subject's key: mark the field naming that subject (a user or customer id) with `#[event(subject)]`",
        ),
        ([subject], None) => errors.spanned(
            subject.subject.as_ref(),
            "`#[event(subject)]` names whose personal data this event holds, but no field is marked `#[event(personal)]`: mark the personal fields, or remove `#[event(subject)]`",
        ),
        _ => {}
    }
    for extra in subjects.iter().skip(1) {
        let first = field_name(subjects[0]);
        errors.spanned(
            extra.subject.as_ref(),
            format!(
                "only one field names the data subject, and `{first}` already does: remove `#[event(subject)]` from one of them (an event about two people holds the other's data in an event of its own)"
            ),
        );
    }
    for field in &fields.fields {
        if let (Some(_), Some(personal)) = (&field.subject, &field.personal) {
            errors.spanned(
                personal,
                "the subject field stays readable after its subject is forgotten, so it cannot be personal: name the subject with an id that is not personal data (a user id, not an e-mail address) and mark the personal data on other fields",
            );
        }
        if let Some(flatten) = &field.flatten {
            errors.spanned(
                flatten,
                "a personal or subject field is sealed or read by its own key in the payload; `#[serde(flatten)]` spreads it over the parent's keys: remove `flatten`, or mark the flattened struct's own fields",
            );
        }
        if field.personal.is_some() && field.subject.is_none() && !is_option(&field.ty) {
            let ty = &field.ty;
            errors.spanned(
                ty,
                format!(
                    "a personal field reads as `null` once its subject is forgotten, so it must accept `null`: write `Option<{}>`",
                    quote!(#ty).to_string().replace(' ', "")
                ),
            );
        }
    }
    if let Some(rename_all) = &fields.rename_all {
        errors.spanned(
            rename_all,
            "`rename_all` hides the stored keys of the personal fields from `#[derive(Event)]`: write `#[serde(rename = \"...\")]` on each renamed field instead",
        );
    }
}

fn field_name(field: &FieldAst) -> String {
    field
        .ident
        .as_ref()
        .map_or_else(String::new, ToString::to_string)
}

/// `Option<T>` as written (`Option`, `std::option::Option`, `core::option::Option`).
fn is_option(ty: &Type) -> bool {
    match ty {
        Type::Path(path) if path.qself.is_none() => path
            .path
            .segments
            .last()
            .is_some_and(|last| last.ident == "Option"),
        Type::Group(group) => is_option(&group.elem),
        Type::Paren(paren) => is_option(&paren.elem),
        _ => false,
    }
}

/// The stored key of a field: its `#[serde(rename)]`, or its identifier without `r#`.
fn stored_key(field: &FieldAst) -> String {
    match (&field.rename, &field.ident) {
        (Some(rename), _) => rename.value(),
        (None, Some(ident)) => ident.to_string().trim_start_matches("r#").to_owned(),
        (None, None) => String::new(),
    }
}

/// The registry entry of a validated struct's personal fields (nothing when it has none).
/// `names` is the stored name and aliases as tokens: literals, or the successor's constants for
/// a superseded shape.
pub(super) fn registration(
    krate: &TokenStream,
    fields: &PersonalFields,
    rust_type: &Ident,
    name: &TokenStream,
    aliases: &TokenStream,
    version: u32,
) -> TokenStream {
    let Some(subject) = fields.subjects().next() else {
        return TokenStream::new();
    };
    let subject = stored_key(subject);
    let personal: Vec<String> = fields.personal().map(stored_key).collect();
    let rust_type = rust_type.to_string();
    quote! {
        #krate::__private::inventory::submit! {
            #krate::__private::PersonalRegistration {
                name: #name,
                aliases: #aliases,
                version: #version,
                subject: #subject,
                fields: &[#(#personal),*],
                rust_type: ::core::concat!(::core::module_path!(), "::", #rust_type),
            }
        }
    }
}
