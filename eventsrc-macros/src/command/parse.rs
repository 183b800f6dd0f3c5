//! Parsing `#[command(...)]` and its struct into an AST: the attribute's keys, and per field its
//! `#[id]` markers and `#[validate(...)]` rules, as written. The helper attributes are removed
//! from the struct that is emitted again.

use proc_macro2::{Span, TokenStream};
use syn::spanned::Spanned;
use syn::{Attribute, Expr, Fields, Ident, ItemStruct, Path, TypeTuple};

use crate::attr::{self, Key, Keys};
use crate::errors::Errors;

/// The keys of `#[command(...)]`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum CommandKey {
    Aggregate,
    Aggregates,
    Error,
    Handler,
    Validate,
    Crate,
}

pub(super) const KEYS: Keys<CommandKey> = Keys {
    attribute: "#[command(...)]",
    keys: &[
        Key {
            name: "aggregate",
            syntax: "aggregate = Type",
            kind: CommandKey::Aggregate,
        },
        Key {
            name: "aggregates",
            syntax: "aggregates = (A, B)",
            kind: CommandKey::Aggregates,
        },
        Key {
            name: "error",
            syntax: "error = Type",
            kind: CommandKey::Error,
        },
        Key {
            name: "handler",
            syntax: "handler = path",
            kind: CommandKey::Handler,
        },
        Key {
            name: "validate",
            syntax: "validate = path",
            kind: CommandKey::Validate,
        },
        Key {
            name: "crate",
            syntax: "crate = path",
            kind: CommandKey::Crate,
        },
    ],
};

/// The keys of a field's `#[validate(...)]`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum RuleKey {
    NonEmpty,
    Range,
    With,
    Message,
}

pub(super) const RULES: Keys<RuleKey> = Keys {
    attribute: "#[validate(...)]",
    keys: &[
        Key {
            name: "non_empty",
            syntax: "non_empty",
            kind: RuleKey::NonEmpty,
        },
        Key {
            name: "range",
            syntax: "range(min = .., max = ..)",
            kind: RuleKey::Range,
        },
        Key {
            name: "with",
            syntax: "with = path",
            kind: RuleKey::With,
        },
        Key {
            name: "message",
            syntax: "message = \"...\"",
            kind: RuleKey::Message,
        },
    ],
};

/// The bounds of `range(...)`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Bound {
    Min,
    Max,
}

pub(super) const BOUNDS: Keys<Bound> = Keys {
    attribute: "range(...)",
    keys: &[
        Key {
            name: "min",
            syntax: "min = ..",
            kind: Bound::Min,
        },
        Key {
            name: "max",
            syntax: "max = ..",
            kind: Bound::Max,
        },
    ],
};

#[derive(Default)]
pub(super) struct CommandAttrs {
    pub krate: Option<Path>,
    pub aggregate: Option<Path>,
    /// `aggregates = (A, B)`: a decision across the streams of several aggregates.
    pub aggregates: Option<TypeTuple>,
    /// `error = Type`: the domain error of a decision across streams.
    pub error: Option<Path>,
    pub handler: Option<Path>,
    pub validate: Option<Path>,
}

/// One check of a `#[validate(...)]` attribute.
pub(super) enum Rule {
    NonEmpty,
    Range {
        min: Option<Box<Expr>>,
        max: Option<Box<Expr>>,
    },
    With(Path),
}

/// One `#[validate(...)]`: its rules (each with the span of its key) and shared message.
pub(super) struct ValidateAttr {
    pub attr: Attribute,
    pub rules: Vec<(Rule, Span)>,
    pub message: Option<Expr>,
    /// Some key was unknown or repeated (and reported): a missing rule is then no news.
    pub bad_key: bool,
}

pub(super) struct FieldAst {
    pub ident: Ident,
    /// Every `#[id]` on the field.
    pub ids: Vec<Attribute>,
    pub validates: Vec<ValidateAttr>,
}

pub(super) struct CommandInput {
    pub attrs: CommandAttrs,
    /// The struct without the helper attributes.
    pub item: ItemStruct,
    /// `None` when the struct has no named fields.
    pub fields: Option<Vec<FieldAst>>,
}

impl CommandInput {
    pub(super) fn parse(args: TokenStream, mut item: ItemStruct, errors: &mut Errors) -> Self {
        let attrs = CommandAttrs::parse(args, errors);
        let fields = match &mut item.fields {
            Fields::Named(named) => Some(
                named
                    .named
                    .iter_mut()
                    .filter_map(|field| FieldAst::take(field, errors))
                    .collect(),
            ),
            _ => None,
        };
        Self {
            attrs,
            item,
            fields,
        }
    }
}

impl CommandAttrs {
    fn parse(args: TokenStream, errors: &mut Errors) -> Self {
        let mut attrs = Self::default();
        KEYS.parse_args(args, errors, |key, meta| {
            if key == CommandKey::Aggregates {
                attrs.aggregates = Some(meta.value()?.parse::<TypeTuple>()?);
                return Ok(());
            }
            let value = Some(attr::path(meta)?);
            match key {
                CommandKey::Crate => attrs.krate = value,
                CommandKey::Aggregate => attrs.aggregate = value,
                CommandKey::Aggregates => {}
                CommandKey::Error => attrs.error = value,
                CommandKey::Validate => attrs.validate = value,
                CommandKey::Handler => attrs.handler = value,
            }
            Ok(())
        });
        attrs
    }
}

impl FieldAst {
    /// Reads and removes the field's `#[id]` and `#[validate(...)]`.
    fn take(field: &mut syn::Field, errors: &mut Errors) -> Option<Self> {
        let ident = field.ident.clone()?;
        let (helpers, kept): (Vec<Attribute>, Vec<Attribute>) = field
            .attrs
            .drain(..)
            .partition(|a| a.path().is_ident("id") || a.path().is_ident("validate"));
        field.attrs = kept;
        let (ids, validates): (Vec<Attribute>, Vec<Attribute>) =
            helpers.into_iter().partition(|a| a.path().is_ident("id"));
        let validates = validates
            .into_iter()
            .map(|a| ValidateAttr::parse(a, errors))
            .collect();
        Some(Self {
            ident,
            ids,
            validates,
        })
    }
}

impl ValidateAttr {
    fn parse(attr: Attribute, errors: &mut Errors) -> Self {
        let mut rules = Vec::new();
        let mut message = None;
        let mut seen = Vec::new();
        let mut bad_key = false;
        let result = attr.parse_nested_meta(|meta| {
            let Some(key) = RULES.read(&meta, &mut seen, errors)? else {
                bad_key = true;
                return Ok(());
            };
            let span = meta.path.span();
            match key {
                RuleKey::NonEmpty => rules.push((Rule::NonEmpty, span)),
                RuleKey::With => rules.push((Rule::With(attr::path(&meta)?), span)),
                RuleKey::Message => message = Some(meta.value()?.parse::<Expr>()?),
                RuleKey::Range => rules.push((range(&meta, errors)?, span)),
            }
            Ok(())
        });
        errors.keep(result);
        Self {
            attr,
            rules,
            message,
            bad_key,
        }
    }
}

/// `range(min = .., max = ..)`: each bound a number literal or a constant.
fn range(meta: &syn::meta::ParseNestedMeta, errors: &mut Errors) -> syn::Result<Rule> {
    let (mut min, mut max) = (None, None);
    let mut seen = Vec::new();
    meta.parse_nested_meta(|bound| {
        let Some(key) = BOUNDS.read(&bound, &mut seen, errors)? else {
            return Ok(());
        };
        let value = bound.value()?.parse::<Expr>()?;
        match key {
            Bound::Min => min = Some(Box::new(value)),
            Bound::Max => max = Some(Box::new(value)),
        }
        Ok(())
    })?;
    Ok(Rule::Range { min, max })
}
