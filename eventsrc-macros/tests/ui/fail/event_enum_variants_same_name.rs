use eventsrc::Event;

#[derive(Event)]
enum CartEvent {
    #[event(name = "cart.emptied")]
    Emptied,
    #[event(aliases = ["cart.emptied"])]
    Cleared,
}

fn main() {}
