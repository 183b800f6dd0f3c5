//! A shopping cart, told through `eventsrc::Repository`: two computers in, a mouse, one computer
//! out, checkout, plus the commands a cart refuses; then "total computers sold", a counter folded
//! over the carts' events in the global log.
//!
//! The store is `memory:` (nothing kept) unless `--store <url>` or the environment variable
//! `EVENTSRC_STORE` names another (the flag wins), e.g. `sqlite://eventsrc-demo.db`, the leads
//! demo's file, or `postgres://user:password@host/database` (the schema `eventsrc`, or the one
//! `?schema=name` names; the password is never printed): the carts' streams sit beside the
//! leads' and the counter reads only carts. On a store that already holds carts 1 and 2 the
//! commands are decided against what is there (a checked-out cart refuses more items), and the
//! counter includes the earlier runs' sales.
//!
//! Run with: `cargo run -p eventsrc-examples --bin cart [-- --store <url>]`

use std::error::Error;
use std::fmt::Debug;
use std::process::ExitCode;

use eventsrc::Store;
use eventsrc::store::ReadAll;
use eventsrc::{
    Aggregate, AggregateCommand, EventStore, GlobalPosition, Handle, Metadata, Repository,
};
use eventsrc_examples::cart::{AddItem, Cart, CartEvent, CartId, Checkout, RemoveItem, Sales};
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

    print_computers_sold(&store).await
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
    if cart.is_checked_out() {
        format!("{items} (checked out)")
    } else {
        items
    }
}

/// Every cart event in the global log (other streams in the store are skipped), with the
/// "computers" counter after each.
async fn print_computers_sold(store: &Store) -> Result<(), Box<dyn Error>> {
    println!("\nTotal computers sold: a counter folded over every cart's events, in log order");
    println!(
        "  position  cart    event        payload                           in open carts  sold"
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
            let event: CartEvent = record.decode()?;
            computers.apply(&record.stream, &event);
            println!(
                "  {:<8}  {:<6}  {:<11}  {:<32}  {:<13}  {}",
                record.global_position.to_string(),
                record.stream.to_string(),
                record.event_type,
                record.payload,
                computers.in_open_carts(),
                computers.sold(),
            );
        }
    }
}
