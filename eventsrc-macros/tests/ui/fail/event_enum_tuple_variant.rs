use eventsrc::Event;

#[derive(Event)]
enum CartEvent {
    ItemAdded(String, u32),
}

fn main() {}
