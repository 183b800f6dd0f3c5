//! `#[command(aggregate = ...)]` on a struct: attribute validation, the targeted aggregate and its
//! id field, and optionally routing to a handler method.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Attribute, Fields, Ident, ItemStruct, Path};

use crate::attr::{self, Errors, Seen};

const KEYS: &str = "aggregate, handler, validate, crate";
const RULES: &str = "non_empty, range(min = .., max = ..), with = path, message = \"...\"";

#[derive(Default)]
struct CommandAttrs {
    krate: Option<Path>,
    aggregate: Option<Path>,
    handler: Option<Path>,
    validate: Option<Path>,
}

/// One check from a `#[validate(...)]` attribute.
enum Rule {
    NonEmpty,
    Range {
        min: Option<Box<syn::Expr>>,
        max: Option<Box<syn::Expr>>,
    },
    With(Path),
}

struct Check {
    field: Ident,
    rule: Rule,
    message: Option<syn::Expr>,
    span: Span,
}

pub fn expand(args: TokenStream, mut item: ItemStruct) -> TokenStream {
    let mut errors = Errors::default();
    let attrs = parse_args(args, &mut errors);
    let krate = attr::crate_path(attrs.krate.as_ref());
    let (id_field, checks) = match &mut item.fields {
        Fields::Named(fields) => {
            let mut ids = Vec::new();
            let mut checks = Vec::new();
            for field in &mut fields.named {
                let Some(ident) = field.ident.clone() else {
                    continue;
                };
                let (is_id, field_checks) = field_attrs(&field.attrs, &ident, &mut errors);
                field
                    .attrs
                    .retain(|a| !a.path().is_ident("id") && !a.path().is_ident("validate"));
                if let Some(span) = is_id {
                    ids.push((ident, span));
                }
                checks.extend(field_checks);
            }
            (
                id_field(&ids, &item.ident, attrs.aggregate.as_ref(), &mut errors),
                checks,
            )
        }
        _ => {
            errors.spanned(
                &item.ident,
                "`#[command]` needs a struct with named fields, one of them marked `#[id]`",
            );
            (None, Vec::new())
        }
    };
    let expanded = expand_impls(&krate, &attrs, &item, id_field.as_ref(), &checks);
    let compile_errors = errors.into_compile_errors();
    quote!(#compile_errors #item #expanded)
}

fn parse_args(args: TokenStream, errors: &mut Errors) -> CommandAttrs {
    let mut attrs = CommandAttrs::default();
    let mut seen = Seen::default();
    let parser = syn::meta::parser(|meta| {
        let key = attr::key_of(&meta);
        if !KEYS.split(", ").any(|k| k == key) {
            return attr::unknown(&meta, "command", KEYS, errors);
        }
        if !seen.first(&meta, "command", errors) {
            return attr::skip_value(&meta);
        }
        let value = attr::path(&meta)?;
        match key.as_str() {
            "crate" => attrs.krate = Some(value),
            "aggregate" => attrs.aggregate = Some(value),
            "validate" => attrs.validate = Some(value),
            _ => attrs.handler = Some(value),
        }
        Ok(())
    });
    if let Err(error) = syn::parse::Parser::parse2(parser, args) {
        errors.push(error);
    }
    if attrs.aggregate.is_none() {
        errors.at(
            Span::call_site(),
            "`#[command]` needs `aggregate = ...`, the aggregate it targets, e.g. `#[command(aggregate = Lead)]`",
        );
    }
    attrs
}

/// Reads `#[id]` and `#[validate(...)]` of one field.
fn field_attrs(
    attrs: &[Attribute],
    field: &Ident,
    errors: &mut Errors,
) -> (Option<Span>, Vec<Check>) {
    let mut id = None;
    let mut checks = Vec::new();
    for attr in attrs {
        if attr.path().is_ident("id") {
            if !matches!(attr.meta, syn::Meta::Path(_)) {
                errors.spanned(attr, "`#[id]` takes no arguments");
            }
            id = Some(attr.span());
        } else if attr.path().is_ident("validate") {
            checks.extend(validate_attr(attr, field, errors));
        }
    }
    (id, checks)
}

fn validate_attr(attr: &Attribute, field: &Ident, errors: &mut Errors) -> Vec<Check> {
    let mut rules: Vec<(Rule, Span)> = Vec::new();
    let mut message = None;
    let mut seen = Seen::default();
    let result = attr.parse_nested_meta(|meta| {
        let key = attr::key_of(&meta);
        if !seen.first(&meta, "validate", errors) {
            return attr::skip_value(&meta);
        }
        let span = meta.path.span();
        match key.as_str() {
            "non_empty" => rules.push((Rule::NonEmpty, span)),
            "with" => rules.push((Rule::With(attr::path(&meta)?), span)),
            "message" => message = Some(meta.value()?.parse::<syn::Expr>()?),
            "range" => {
                let (mut min, mut max) = (None, None);
                meta.parse_nested_meta(|bound| {
                    // A number literal or a constant: `max = 99` or `max = MAX_QUANTITY`.
                    let lit = bound.value()?.parse::<syn::Expr>()?;
                    if let syn::Expr::Lit(syn::ExprLit { lit: other, .. }) = &lit
                        && !matches!(other, syn::Lit::Int(_) | syn::Lit::Float(_))
                    {
                        errors.spanned(&lit, "a `range` bound is a number or a numeric constant");
                    }
                    match attr::key_of(&bound).as_str() {
                        "min" => min = Some(Box::new(lit)),
                        "max" => max = Some(Box::new(lit)),
                        other => errors.spanned(
                            &bound.path,
                            format!("unknown `range` bound `{other}`; expected `min` or `max`"),
                        ),
                    }
                    Ok(())
                })?;
                if min.is_none() && max.is_none() {
                    errors.at(span, "`range` needs `min = ..`, `max = ..` or both");
                }
                rules.push((Rule::Range { min, max }, span));
            }
            _ => return attr::unknown(&meta, "validate", RULES, errors),
        }
        Ok(())
    });
    if let Err(error) = result {
        errors.push(error);
    }
    if rules.is_empty() && errors.is_empty() {
        errors.spanned(attr, format!("`#[validate(...)]` needs a rule: {RULES}"));
    }
    rules
        .into_iter()
        .map(|(rule, span)| Check {
            field: field.clone(),
            rule,
            message: message.clone(),
            span,
        })
        .collect()
}

fn id_field(
    ids: &[(Ident, Span)],
    command: &Ident,
    aggregate: Option<&Path>,
    errors: &mut Errors,
) -> Option<Ident> {
    match ids {
        [] => {
            let target =
                aggregate.map_or_else(|| "aggregate".to_owned(), |p| quote!(#p).to_string());
            errors.spanned(
                command,
                format!("`#[command]` needs one field marked `#[id]`, holding the id of the `{target}` it targets"),
            );
            None
        }
        [(only, _)] => Some(only.clone()),
        [(first, _), rest @ ..] => {
            for (_, span) in rest {
                errors.at(
                    *span,
                    format!("a command targets one aggregate: `{first}` is already its `#[id]`"),
                );
            }
            Some(first.clone())
        }
    }
}

fn expand_impls(
    krate: &TokenStream,
    attrs: &CommandAttrs,
    item: &ItemStruct,
    id_field: Option<&Ident>,
    checks: &[Check],
) -> TokenStream {
    let ident = &item.ident;
    let (impl_generics, ty_generics, where_clause) = item.generics.split_for_impl();
    let name = ident.to_string();
    let checks = checks.iter().map(|check| validation(krate, check));
    // A whole-command check (fields that depend on each other) runs after the field rules.
    let whole = attrs
        .validate
        .as_ref()
        .map(|path| quote!(#path(self, &mut errors);));
    let targeting = match (attrs.aggregate.as_ref(), id_field) {
        (Some(aggregate), Some(id)) => {
            // Spanned at the user's `aggregate = ...` so a non-aggregate is reported there.
            let assoc = quote_spanned!(aggregate.span()=> type Aggregate = #aggregate;);
            let id_type = quote_spanned!(aggregate.span()=> <<Self as #krate::AggregateCommand>::Aggregate as #krate::Aggregate>::Id);
            let handler = attrs.handler.as_ref().map(|handler| {
                quote! {
                    #[automatically_derived]
                    impl #impl_generics #krate::Handle<#ident #ty_generics> for #aggregate #where_clause {
                        #[inline]
                        fn handle(&self, command: &#ident #ty_generics) -> #krate::Decision<Self> {
                            #handler(self, command)
                        }
                    }
                }
            });
            // The whole impl carries the span of `aggregate = ...`: every obligation on the
            // aggregate then points there, and rustc folds the identical reports into one.
            let targeting = quote_spanned! {aggregate.span()=>
                #[automatically_derived]
                impl #impl_generics #krate::AggregateCommand for #ident #ty_generics #where_clause {
                    #assoc
                    #[inline]
                    fn aggregate_id(&self) -> &#id_type {
                        &self.#id
                    }
                }
            };
            quote! {
                #targeting
                #handler
            }
        }
        _ => TokenStream::new(),
    };
    quote! {
        const _: () = {
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
            #targeting
        };
    }
}

fn validation(krate: &TokenStream, check: &Check) -> TokenStream {
    let Check {
        field,
        rule,
        message,
        span,
    } = check;
    let field_name = field.to_string();
    // The field named with the rule's span, so a type error points at the rule, not the field.
    let field = &Ident::new(&field_name, *span);
    let p = quote!(#krate::__private);
    let custom = message
        .as_ref()
        .map(|m| quote!(::std::string::ToString::to_string(&#m)));
    let or_default = |default: TokenStream| match &custom {
        Some(custom) => custom.clone(),
        None => default,
    };
    match rule {
        Rule::NonEmpty => {
            let message = or_default(quote!(::std::string::String::from("must not be empty")));
            quote_spanned! {*span=>
                if !#p::non_empty(&self.#field) {
                    errors.push(#field_name, #message);
                }
            }
        }
        Rule::Range { min, max } => {
            let bound = |b: &Option<Box<syn::Expr>>| match b {
                Some(expr) => quote!(::core::option::Option::Some((#expr) as f64)),
                None => quote!(::core::option::Option::None),
            };
            let (lo, hi) = (bound(min), bound(max));
            let message = or_default(quote!(#p::range_message(#lo, #hi)));
            quote_spanned! {*span=>
                if !#p::in_range(&self.#field, #lo, #hi) {
                    errors.push(#field_name, #message);
                }
            }
        }
        Rule::With(path) => {
            // The rule's own `message` wins over the text of an error the function returns.
            let message = match &custom {
                Some(custom) => quote!(#custom),
                None => quote!(reason.unwrap_or_else(|| ::std::string::String::from("is invalid"))),
            };
            quote_spanned! {path.span()=>
                if let ::core::option::Option::Some(reason) = #p::check_failed(#path(&self.#field)) {
                    let _ = &reason;
                    errors.push(#field_name, #message);
                }
            }
        }
    }
}
