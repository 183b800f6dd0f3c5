//! `DecisionFixture`: given events per aggregate, when a decision across streams, then events,
//! an error or invalid fields; and the messages of expectations that fail.

use eventsrc::{Decided, Event, aggregate, command};
use eventsrc_testing::DecisionFixture;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Booked {
    guest: String,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Charged {
    cents: u64,
}

#[derive(Default, Debug)]
struct Room {
    guest: Option<String>,
}

#[aggregate(id = u32)]
impl Room {
    fn on_booked(&mut self, event: &Booked) {
        self.guest = Some(event.guest.clone());
    }
}

#[derive(Default, Debug)]
struct Wallet {
    spent: u64,
}

#[aggregate(id = String)]
impl Wallet {
    fn on_charged(&mut self, event: &Charged) {
        self.spent += event.cents;
    }
}

#[derive(Debug, PartialEq, thiserror::Error)]
enum BookingError {
    #[error("the room is taken")]
    Taken,
}

/// Books a room and charges the guest's wallet in one decision.
#[command(aggregates = (Room, Wallet), error = BookingError, handler = book)]
struct Book {
    #[id]
    room: u32,
    #[id]
    #[validate(non_empty)]
    guest: String,
    cents: u64,
}

fn book(command: &Book, (room, _): &(Room, Wallet)) -> Decided<Book> {
    if room.guest.as_deref() == Some(command.guest.as_str()) {
        return Ok((vec![], vec![]));
    }
    if room.guest.is_some() {
        return Err(BookingError::Taken);
    }
    let booked = Booked {
        guest: command.guest.clone(),
    };
    Ok((
        vec![booked.into()],
        vec![
            Charged {
                cents: command.cents,
            }
            .into(),
        ],
    ))
}

fn ada() -> Book {
    Book {
        room: 7,
        guest: "ada".into(),
        cents: 9000,
    }
}

#[test]
fn a_booking_decides_both_aggregates_and_the_next_sees_it() {
    DecisionFixture::<Book>::new()
        .when(ada())
        .then_events((
            vec![
                Booked {
                    guest: "ada".into(),
                }
                .into(),
            ],
            vec![Charged { cents: 9000 }.into()],
        ))
        .then_states(|(room, wallet)| {
            assert_eq!(room.guest.as_deref(), Some("ada"));
            assert_eq!(wallet.spent, 9000);
        })
        .and()
        .when(ada())
        .then_no_events()
        .and()
        .when(Book {
            guest: "bob".into(),
            ..ada()
        })
        .then_error(BookingError::Taken);
}

#[test]
fn given_events_and_validation() {
    DecisionFixture::<Book>::new()
        .given((
            vec![
                Booked {
                    guest: "bob".into(),
                }
                .into(),
            ],
            vec![],
        ))
        .when(ada())
        .then_error_matching(|error| *error == BookingError::Taken);
    DecisionFixture::<Book>::new()
        .when(Book {
            guest: " ".into(),
            ..ada()
        })
        .then_invalid(&["guest"]);
}

#[test]
#[should_panic(expected = "`Book` decided other events than expected")]
fn other_events_fail_with_a_diff() {
    DecisionFixture::<Book>::new()
        .when(ada())
        .then_events((vec![], vec![Charged { cents: 1 }.into()]));
}

#[test]
#[should_panic(
    expected = "`Book` was expected to give the error `the room is taken`, but it decided [1, 1] event(s)"
)]
fn an_expected_error_that_does_not_come_fails() {
    DecisionFixture::<Book>::new()
        .when(ada())
        .then_error(BookingError::Taken);
}

#[test]
#[should_panic(expected = "was expected to decide nothing, but decided [1, 1]")]
fn events_where_none_were_expected_fail() {
    DecisionFixture::<Book>::new().when(ada()).then_no_events();
}
