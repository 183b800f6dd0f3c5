use eventsrc::command;

#[command]
struct Post {
    #[id]
    ledger: String,
}

fn main() {}
