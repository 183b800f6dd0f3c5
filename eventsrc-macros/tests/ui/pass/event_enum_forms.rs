//! Every enum variant form: wrapping an event struct, named fields, unit.
use eventsrc::Event;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize)]
struct ItemAdded {
    sku: String,
}

fn default_quantity(v: serde_json::Value) -> Result<serde_json::Value, String> {
    let mut v = v;
    v["quantity"] = 1.into();
    Ok(v)
}

#[derive(Event)]
enum CartEvent {
    Added(ItemAdded),
    #[event(name = "cart.removed", version = 2, upcast_json = default_quantity, aliases = ["ItemRemoved"])]
    Removed {
        sku: String,
        #[serde(default)]
        quantity: u32,
    },
    CheckedOut,
    Emptied {},
}

fn main() {
    let event = CartEvent::Removed { sku: "a".into(), quantity: 2 };
    assert_eq!(event.event_type(), "cart.removed");
    assert_eq!(CartEvent::CheckedOut.schema_version(), 1);
    let _ = CartEvent::Emptied {};
    let _ = CartEvent::Added(ItemAdded { sku: "b".into() });
}
