//! A shopping cart, told through `eventsrc::Repository`: two computers in, a mouse, one computer
//! out, checkout, plus the commands a cart refuses; then the order cancelled (a compensating
//! event: the checkout stays in the history) beside an abandoned cart soft-deleted (its events
//! move to the archive, a marker stays in the log); then "total computers sold", a counter
//! folded over the carts' events in the global log.
//!
//! The store is `memory:` (nothing kept) unless `--store <url>` or the environment variable
//! `EVENTSRC_STORE` names another (the flag wins), e.g. `sqlite://eventsrc-demo.db`, the leads
//! demo's file, or `postgres://user:password@host/database` (the schema `eventsrc`, or the one
//! `?schema=name` names; the password is never printed): the carts' streams sit beside the
//! leads' and the counter reads only carts. On a store that already holds carts 1 and 2 the
//! commands are decided against what is there (a checked-out cart refuses more items, a
//! cancelled order is cancelled already, a deleted cart starts again empty after its marker and
//! is deleted again), and the counter includes the earlier runs' sales.
//!
//! Run with: `cargo run -p eventsrc-examples --bin cart [-- --store <url>]`

use std::error::Error;
use std::fmt::{Debug, Display};
use std::process::ExitCode;

use eventsrc::Store;
use eventsrc::store::{Deletion, Lifecycle, ReadAll, STREAM_DELETED, STREAM_TOMBSTONED};
use eventsrc::{
    Aggregate, AggregateCommand, EventStore, ExpectedVersion, GlobalPosition, Handle, Metadata,
    RecordedEvent, Repository,
};
use eventsrc_examples::cart::{
    AddItem, CancelOrder, Cart, CartEvent, CartId, Checkout, RemoveItem, Sales,
};
use eventsrc_examples::narrate::{note_earlier_run, print_registered, send_and_tell};
use eventsrc_examples::store::{Invocation, exit_code};

/// The store when neither `--store` nor `EVENTSRC_STORE` names one.
const DEFAULT_STORE: &str = "memory:";

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    eventsrc_examples::telemetry::init_tracing();
    exit_code(run().await)
}

async fn run() -> Result<(), Box<dyn Error>> {
    let Some((url, source)) = Invocation::store("cart", DEFAULT_STORE)? else {
        return Ok(());
    };
    eventsrc::registry::check()?;
    let store = url.open().await?;
    let repository = Repository::new(store.clone());
    println!("eventsrc: shopping carts on {store}");
    println!("Store URL: {url} ({source})");
    print_registered::<Cart>("cart");

    let one = CartId(1);
    let two = CartId(2);
    for cart in [one, two] {
        note_earlier_run::<Cart, _>(&store, "Cart", &cart).await?;
    }
    note_cancelled_or_deleted(&store, &repository, one, two).await?;
    println!("\nCart 1, filled and checked out, then three commands it refuses and a repeat");
    send(&repository, add(one, "computer", 1)).await?;
    send(&repository, add(one, "computer", 1)).await?;
    send(&repository, add(one, "mouse", 1)).await?;
    send(&repository, remove(one, "computer", 1)).await?;
    send(&repository, remove(one, "keyboard", 1)).await?;
    send(&repository, add(one, " ", 0)).await?;
    send(&repository, Checkout { cart: one }).await?;
    send(&repository, Checkout { cart: one }).await?;
    send(&repository, add(one, "computer", 1)).await?;

    println!("\nCart 2: checked out while empty, then filled and left open");
    send(&repository, Checkout { cart: two }).await?;
    send(&repository, add(two, "computer", 3)).await?;

    println!("\nCart 1's order cancelled: a compensating event; the checkout stays in the history");
    send(&repository, cancel(one, "payment declined")).await?;
    send(&repository, cancel(one, "payment declined")).await?;
    send(&repository, remove(one, "mouse", 1)).await?;
    send(&repository, cancel(two, "changed my mind")).await?;

    println!("\nCart 2, abandoned while open: soft-deleted, its events moved to the archive");
    soft_delete(&store, &repository, two).await?;

    print_computers_sold(&store).await
}

/// Says what earlier runs left that the story meets: cart `one`'s order cancelled, cart `two`
/// soft-deleted (its events in the archive).
async fn note_cancelled_or_deleted(
    store: &Store,
    repository: &Repository<Store>,
    one: CartId,
    two: CartId,
) -> Result<(), Box<dyn Error>> {
    if repository.load::<Cart>(&one).await?.state.is_cancelled() {
        println!("Cart {one}'s order was cancelled by an earlier run: it takes no more changes.");
    }
    let archived = store.read_archive(&Cart::stream_id(&two)?).await?.len();
    if archived > 0 {
        println!(
            "Cart {two} was soft-deleted by an earlier run ({} in the archive): it loads empty, \
             a new cart after the marker.",
            count(archived, "event")
        );
    }
    Ok(())
}

/// Soft-deletes cart `id`'s stream and prints what became of it: the marker, the archive, and
/// the cart a load now gives.
async fn soft_delete(
    store: &Store,
    repository: &Repository<Store>,
    id: CartId,
) -> Result<(), Box<dyn Error>> {
    let stream = Cart::stream_id(&id)?;
    println!("  delete_stream({stream}, ExpectedVersion::Any, Deletion::Soft)");
    let deleted = store
        .delete_stream(&stream, ExpectedVersion::Any, Deletion::Soft)
        .await?;
    if deleted.already_deleted {
        println!(
            "      -> already deleted (an earlier run): nothing written, the marker is version {}",
            deleted.version
        );
    } else {
        println!(
            "      -> {STREAM_DELETED} at version {}, position {}; {} moved to the archive",
            deleted.version,
            deleted.position,
            count(deleted.removed, "event")
        );
    }
    let archive = store.read_archive(&stream).await?;
    println!(
        "  read_archive({stream}): {}, still there to audit, export or restore",
        count(archive.len(), "event")
    );
    for record in &archive {
        println!(
            "      version {:<3} {:<14} {}",
            record.stream_version.to_string(),
            record.event_type,
            record.payload
        );
    }
    let loaded = repository.load::<Cart>(&id).await?;
    println!(
        "  load cart {id}\n      -> version {}; cart {id}: {} (a load starts again after the marker)",
        loaded.version,
        contents(&loaded.state)
    );
    Ok(())
}

/// `1 event`, `3 events`.
fn count<N: Display + PartialEq + From<u8>>(n: N, noun: &str) -> String {
    if n == N::from(1) {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn cancel(cart: CartId, reason: &str) -> CancelOrder {
    let reason = reason.into();
    CancelOrder { cart, reason }
}

fn add(cart: CartId, sku: &str, quantity: u32) -> AddItem {
    let sku = sku.into();
    AddItem {
        cart,
        sku,
        quantity,
    }
}

fn remove(cart: CartId, sku: &str, quantity: u32) -> RemoveItem {
    let sku = sku.into();
    RemoveItem {
        cart,
        sku,
        quantity,
    }
}

/// Sends `command` to its cart and prints what became of it: the events and the cart after
/// them, a no-op, or why it was refused.
async fn send<C>(repository: &Repository<Store>, command: C) -> Result<(), Box<dyn Error>>
where
    C: AggregateCommand<Aggregate = Cart> + Debug,
    Cart: Handle<C>,
{
    let id = *command.aggregate_id();
    send_and_tell(repository, command, Metadata::new(), |_, cart| {
        format!("cart {id}: {}", contents(cart))
    })
    .await
}

/// `computer x1, mouse x1`, or `empty`; and whether it is checked out.
fn contents(cart: &Cart) -> String {
    let items: Vec<String> = cart
        .items()
        .iter()
        .map(|(sku, units)| format!("{sku} x{units}"))
        .collect();
    let items = if items.is_empty() {
        "empty".to_owned()
    } else {
        items.join(", ")
    };
    if cart.is_cancelled() {
        format!("{items} (order cancelled)")
    } else if cart.is_checked_out() {
        format!("{items} (checked out)")
    } else {
        items
    }
}

/// Every cart event in the global log (other streams in the store are skipped), with the
/// "computers" counter after each. A deleted cart's marker is a row too: the counter forgets
/// that cart there (its events are in the archive, not the log).
async fn print_computers_sold(store: &Store) -> Result<(), Box<dyn Error>> {
    println!("\nTotal computers sold: a counter folded over every cart's events, in log order");
    println!(
        "({STREAM_DELETED} marks a deleted cart: its events are in the archive now, and the \
         counter forgets it)"
    );
    print_row(
        "position",
        "cart",
        "event",
        "payload",
        "in open carts",
        "sold",
    );
    let mut computers = Sales::of("computer");
    let mut after = GlobalPosition::START;
    loop {
        let page = ReadAll::after(after).categories([Cart::TYPE]);
        let records = store.read_all(page).await?;
        let Some(last) = records.last() else {
            return Ok(());
        };
        after = last.global_position;
        for record in &records {
            count_in(&mut computers, record)?;
            print_row(
                &record.global_position.to_string(),
                record.stream.as_str(),
                &record.event_type,
                &record.payload,
                &computers.in_open_carts().to_string(),
                &computers.sold().to_string(),
            );
        }
    }
}

/// Counts one record of a cart's stream: a cart event, or a deletion marker.
fn count_in(computers: &mut Sales, record: &RecordedEvent) -> Result<(), Box<dyn Error>> {
    match &*record.event_type {
        STREAM_DELETED | STREAM_TOMBSTONED => computers.forget(&record.stream),
        _ => computers.apply(&record.stream, &record.decode::<CartEvent>()?),
    }
    Ok(())
}

/// One row of the counter's table.
fn print_row(position: &str, cart: &str, event: &str, payload: &str, open: &str, sold: &str) {
    println!("  {position:<8}  {cart:<6}  {event:<14}  {payload:<32}  {open:<13}  {sold}");
}
