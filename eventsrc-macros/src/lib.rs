//! Procedural macros for [`eventsrc`](https://docs.rs/eventsrc): `#[derive(Event)]`,
//! `#[aggregate]` and `#[command]`.
//!
//! Do not depend on this crate directly: `eventsrc` re-exports every macro and pins this crate to
//! its own exact version, so generated code and the runtime always agree. The macros are
//! documented there, where their examples can run.
//!
//! # How each macro is built
//!
//! Every macro has the same three steps, each in its own module:
//!
//! - `parse` reads the input into an AST that keeps the user's tokens, so every error points at
//!   what the user wrote. It reports only syntax: unknown or repeated keys and malformed
//!   values. Each attribute has one table of keys, which parsing matches against and which the
//!   "unknown key" message lists.
//! - `validate` checks what the keys and items mean together (a version needs an upcast path,
//!   a command needs one `#[id]`, an event has one handler, ...).
//! - `expand` generates code from the validated AST. Generated code names runtime items by
//!   full path (`::eventsrc::...`, or the `crate = path` given) and marks impls
//!   `#[automatically_derived]`.
//!
//! Both steps go on after an error and add every error to one list (`syn::Error::combine`), so
//! one compile shows every mistake of an invocation, each saying what to write instead.
//!
//! # What is emitted when there are errors
//!
//! One policy for all three macros: an invocation with errors emits the errors and a *stub*,
//! never the real expansion. The stub is the user's item (without the helper attributes the
//! macro consumes) plus the trait impls the macro would have written, with the same associated
//! types where they are known and bodies that are never run. Code that uses the type therefore
//! still type-checks, and one mistake gives one error instead of a wave of "trait not
//! implemented" errors elsewhere. Stubs register nothing and carry no compile-time checks. A
//! generic event type or aggregate gets no impls in its stub, since they would need its
//! parameters.
//!
//! Some mistakes can only be seen by the compiler; the generated code turns those into short
//! errors at the user's tokens too: an event type without `Serialize`/`Deserialize`, an
//! `upcast_from` shape of the wrong version, two handled event types stored under one name.

mod aggregate;
mod attr;
mod command;
mod errors;
mod event;

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
    aggregate::aggregate(args.into(), item).into()
}

/// Makes a struct an `eventsrc::Command` aimed at an aggregate, with attribute validation. See
/// the `eventsrc` crate docs.
#[proc_macro_attribute]
pub fn command(args: TokenStream, input: TokenStream) -> TokenStream {
    let item = parse_macro_input!(input as ItemStruct);
    command::command(args.into(), item).into()
}
