use eventsrc::Event;

#[derive(Event, Debug)]
struct Opened {
    owner: String,
}

fn main() {}
