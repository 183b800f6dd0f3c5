//! Procedural macros for [`eventsrc`](https://docs.rs/eventsrc): `#[derive(Event)]`,
//! `#[aggregate]` and `#[command]`.
//!
//! Do not depend on this crate directly: `eventsrc` re-exports every macro and pins this crate to
//! its own exact version, so generated code and the runtime always agree. The macros are
//! documented there, where their examples can run.
//!
//! Each macro is split parse → validate → expand; every error of one invocation is reported at
//! once, pointing at the user's token, beside a stub expansion so that one mistake gives one error.

mod aggregate;
mod attr;
mod command;
mod event;
mod versioned;

use proc_macro::TokenStream;
use syn::{DeriveInput, ItemImpl, ItemStruct, parse_macro_input};

/// Derives `eventsrc::Event` (and `EventType`, `Versioned`, and the registry entry) for an event
/// struct, or `Event` for an enum of events. See the `eventsrc` crate docs.
#[proc_macro_derive(Event, attributes(event, serde))]
pub fn derive_event(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    event::derive(input).into()
}

/// Turns an `impl` block of event handlers into an `eventsrc::Aggregate`. See the `eventsrc`
/// crate docs.
#[proc_macro_attribute]
pub fn aggregate(args: TokenStream, input: TokenStream) -> TokenStream {
    let item = parse_macro_input!(input as ItemImpl);
    aggregate::expand(args.into(), item).into()
}

/// Makes a struct an `eventsrc::Command` aimed at an aggregate, with attribute validation. See
/// the `eventsrc` crate docs.
#[proc_macro_attribute]
pub fn command(args: TokenStream, input: TokenStream) -> TokenStream {
    let item = parse_macro_input!(input as ItemStruct);
    command::expand(args.into(), item).into()
}
