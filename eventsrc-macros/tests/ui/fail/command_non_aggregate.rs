use eventsrc::command;

#[derive(Default)]
struct Ledger;

#[command(aggregate = Ledger)]
struct Post {
    #[id]
    ledger: String,
}

fn main() {}
