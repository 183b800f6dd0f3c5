use eventsrc::Event;

#[derive(Event)]
#[event(name = "cart")]
enum CartEvent {
    #[event(crate = eventsrc)]
    CheckedOut,
    #[event(superseded_by = CartEvent)]
    Emptied {},
}

fn main() {}
