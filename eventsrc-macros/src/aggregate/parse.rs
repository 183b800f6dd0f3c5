//! Parsing `#[aggregate(...)]` and its impl block into an AST that keeps the user's tokens.

use proc_macro2::TokenStream;
use syn::{
    FnArg, Ident, ImplItem, ItemImpl, LitBool, LitInt, LitStr, Path, ReturnType, Type, Visibility,
};

use crate::attr::{self, Key, Keys};
use crate::errors::Errors;

/// The keys of `#[aggregate(...)]`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum AggregateKey {
    Id,
    Error,
    Name,
    Event,
    Vis,
    Snapshot,
    SnapshotEvery,
    Cache,
    Conflicts,
    Crate,
}

pub(super) const KEYS: Keys<AggregateKey> = Keys {
    attribute: "#[aggregate(...)]",
    keys: &[
        Key {
            name: "id",
            syntax: "id = Type",
            kind: AggregateKey::Id,
        },
        Key {
            name: "error",
            syntax: "error = Type",
            kind: AggregateKey::Error,
        },
        Key {
            name: "name",
            syntax: "name = \"...\"",
            kind: AggregateKey::Name,
        },
        Key {
            name: "event",
            syntax: "event = EventEnum",
            kind: AggregateKey::Event,
        },
        Key {
            name: "vis",
            syntax: "vis = pub(crate)",
            kind: AggregateKey::Vis,
        },
        Key {
            name: "snapshot",
            syntax: "snapshot = 1",
            kind: AggregateKey::Snapshot,
        },
        Key {
            name: "snapshot_every",
            syntax: "snapshot_every = 100",
            kind: AggregateKey::SnapshotEvery,
        },
        Key {
            name: "cache",
            syntax: "cache = false",
            kind: AggregateKey::Cache,
        },
        Key {
            name: "conflicts",
            syntax: "conflicts = path",
            kind: AggregateKey::Conflicts,
        },
        Key {
            name: "crate",
            syntax: "crate = path",
            kind: AggregateKey::Crate,
        },
    ],
};

#[derive(Default)]
pub(super) struct AggregateAttrs {
    pub krate: Option<Path>,
    pub id: Option<Type>,
    pub error: Option<Type>,
    pub name: Option<LitStr>,
    pub event: Option<Path>,
    pub vis: Option<Visibility>,
    pub snapshot: Option<LitInt>,
    pub snapshot_every: Option<LitInt>,
    pub cache: Option<LitBool>,
    pub conflicts: Option<Path>,
}

/// One item of the impl block.
pub(super) enum Member {
    /// `fn method(&mut self, event: &Event)`.
    Handler(Box<Handler>),
    /// A function of another shape.
    BadSignature(Box<syn::Signature>),
    /// Anything but a function.
    NotAFunction(Box<ImplItem>),
}

pub(super) struct Handler {
    pub method: Ident,
    pub event: Type,
    /// The variant of the event enum: the last segment of the event type, if it is a path.
    pub variant: Option<Ident>,
}

pub(super) struct AggregateInput {
    pub attrs: AggregateAttrs,
    pub item: ItemImpl,
    pub members: Vec<Member>,
}

impl AggregateInput {
    pub(super) fn parse(args: TokenStream, item: ItemImpl, errors: &mut Errors) -> Self {
        let attrs = AggregateAttrs::parse(args, errors);
        let members = item.items.iter().map(Member::of).collect();
        Self {
            attrs,
            item,
            members,
        }
    }

    /// The aggregate's type name, when the impl is for a named type.
    pub(super) fn self_ident(&self) -> Option<&Ident> {
        last_ident(&self.item.self_ty)
    }

    pub(super) fn handlers(&self) -> impl Iterator<Item = &Handler> {
        self.members.iter().filter_map(|m| match m {
            Member::Handler(handler) => Some(&**handler),
            _ => None,
        })
    }
}

impl AggregateAttrs {
    fn parse(args: TokenStream, errors: &mut Errors) -> Self {
        let mut attrs = Self::default();
        KEYS.parse_args(args, errors, |key, meta| attrs.set(key, meta));
        attrs
    }

    fn set(&mut self, key: AggregateKey, meta: &syn::meta::ParseNestedMeta) -> syn::Result<()> {
        match key {
            AggregateKey::Crate => self.krate = Some(attr::path(meta)?),
            AggregateKey::Id => self.id = Some(attr::ty(meta)?),
            AggregateKey::Error => self.error = Some(attr::ty(meta)?),
            AggregateKey::Event => self.event = Some(attr::path(meta)?),
            AggregateKey::Conflicts => self.conflicts = Some(attr::path(meta)?),
            AggregateKey::Vis => self.vis = Some(meta.value()?.parse()?),
            AggregateKey::Name => self.name = Some(attr::string(meta)?),
            AggregateKey::Snapshot => self.snapshot = Some(meta.value()?.parse()?),
            AggregateKey::SnapshotEvery => self.snapshot_every = Some(meta.value()?.parse()?),
            AggregateKey::Cache => self.cache = Some(meta.value()?.parse()?),
        }
        Ok(())
    }
}

impl Member {
    fn of(item: &ImplItem) -> Self {
        let ImplItem::Fn(function) = item else {
            return Self::NotAFunction(Box::new(item.clone()));
        };
        match handler_event(&function.sig) {
            Some(event) => Self::Handler(Box::new(Handler {
                method: function.sig.ident.clone(),
                variant: last_ident(&event).cloned(),
                event,
            })),
            None => Self::BadSignature(Box::new(function.sig.clone())),
        }
    }
}

/// The `X` of `fn f(&mut self, e: &X)`, if the signature has that shape.
fn handler_event(sig: &syn::Signature) -> Option<Type> {
    let shaped = sig.asyncness.is_none()
        && sig.constness.is_none()
        && sig.generics.params.is_empty()
        && sig.inputs.len() == 2
        && matches!(sig.output, ReturnType::Default);
    let receiver_ok = matches!(sig.inputs.first(), Some(FnArg::Receiver(r)) if r.reference.is_some() && r.mutability.is_some());
    if !shaped || !receiver_ok {
        return None;
    }
    match sig.inputs.iter().nth(1) {
        Some(FnArg::Typed(arg)) => match &*arg.ty {
            Type::Reference(reference) if reference.mutability.is_none() => {
                Some((*reference.elem).clone())
            }
            _ => None,
        },
        _ => None,
    }
}

fn last_ident(ty: &Type) -> Option<&Ident> {
    match ty {
        Type::Path(path) if path.qself.is_none() => path.path.segments.last().map(|s| &s.ident),
        _ => None,
    }
}
