use eventsrc::Event;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize)]
#[event(name = "cart.item_added")]
struct ItemAdded {
    sku: String,
}

// The alias claims the name `ItemAdded` is stored under.
#[derive(Event, Serialize, Deserialize)]
#[event(name = "cart.items_added", aliases = ["cart.item_added"])]
struct ItemsAdded {
    skus: Vec<String>,
}

#[derive(Event)]
enum CartEvent {
    Added(ItemAdded),
    AddedMany(ItemsAdded),
}

fn main() {}
