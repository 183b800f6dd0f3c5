//! The workload's domain, shared by every contender: a bank account's events, its state and the
//! rules its commands are decided by. Each library gets its own thin adapter around these (the
//! `#[aggregate]` and `#[command]` annotations for eventsrc, the `Aggregate` trait for cqrs-es),
//! so both store the same payloads and decide the same way.

use eventsrc::Event;
use serde::{Deserialize, Serialize};

/// Opening an account: its first event.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub(crate) struct AccountOpened {
    pub(crate) account: u64,
    pub(crate) owner: String,
    pub(crate) currency: String,
    pub(crate) memo: String,
}

/// Money paid in.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub(crate) struct Deposited {
    pub(crate) account: u64,
    pub(crate) amount_cents: u64,
    pub(crate) currency: String,
    pub(crate) memo: String,
}

/// Money paid out.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub(crate) struct Withdrawn {
    pub(crate) account: u64,
    pub(crate) amount_cents: u64,
    pub(crate) currency: String,
    pub(crate) memo: String,
}

/// Why a command on an account is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BankError {
    /// Opening an account twice.
    #[error("account {0} is already open")]
    AlreadyOpen(u64),
    /// Moving money on an account that was never opened.
    #[error("account {0} is not open")]
    NotOpen(u64),
    /// Withdrawing more than the balance.
    #[error("account {account} holds {balance_cents} cents, less than {requested_cents}")]
    Insufficient {
        account: u64,
        balance_cents: u64,
        requested_cents: u64,
    },
}

/// An account's state, folded from its events.
#[derive(Default, Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Account {
    pub(crate) open: bool,
    pub(crate) balance_cents: u64,
    /// How many events the account has: what the bench checks a load against.
    pub(crate) entries: u64,
}

const CURRENCY: &str = "EUR";

/// A memo of a fixed 130 characters, numbered by account and entry, so that every event's JSON
/// payload is about 200 bytes.
fn memo(account: u64, entry: u64) -> String {
    const FILLER: &str = "standing order, quarterly settlement of the shared household \
                          ledger, booked by the branch office of the account holder ";
    let mut memo = format!("ref {account:012}/{entry:06}: ");
    memo.push_str(FILLER);
    memo.truncate(130);
    memo
}

impl Account {
    pub(crate) fn opened(&mut self, _: &AccountOpened) {
        self.open = true;
        self.entries += 1;
    }

    pub(crate) fn deposited(&mut self, event: &Deposited) {
        self.balance_cents += event.amount_cents;
        self.entries += 1;
    }

    pub(crate) fn withdrawn(&mut self, event: &Withdrawn) {
        self.balance_cents = self.balance_cents.saturating_sub(event.amount_cents);
        self.entries += 1;
    }

    pub(crate) fn decide_open(
        &self,
        account: u64,
        owner: &str,
    ) -> Result<AccountOpened, BankError> {
        if self.open {
            return Err(BankError::AlreadyOpen(account));
        }
        Ok(AccountOpened {
            account,
            owner: owner.to_owned(),
            currency: CURRENCY.into(),
            memo: memo(account, 0),
        })
    }

    pub(crate) fn decide_deposit(
        &self,
        account: u64,
        amount_cents: u64,
    ) -> Result<Deposited, BankError> {
        if !self.open {
            return Err(BankError::NotOpen(account));
        }
        Ok(Deposited {
            account,
            amount_cents,
            currency: CURRENCY.into(),
            memo: memo(account, self.entries),
        })
    }

    pub(crate) fn decide_withdraw(
        &self,
        account: u64,
        amount_cents: u64,
    ) -> Result<Withdrawn, BankError> {
        if !self.open {
            return Err(BankError::NotOpen(account));
        }
        if amount_cents > self.balance_cents {
            return Err(BankError::Insufficient {
                account,
                balance_cents: self.balance_cents,
                requested_cents: amount_cents,
            });
        }
        Ok(Withdrawn {
            account,
            amount_cents,
            currency: CURRENCY.into(),
            memo: memo(account, self.entries),
        })
    }

    /// A history carried over from another system: `entries` deposits in one command. Seeds the
    /// large aggregates.
    pub(crate) fn decide_import(
        &self,
        account: u64,
        entries: u64,
    ) -> Result<Vec<Deposited>, BankError> {
        if !self.open {
            return Err(BankError::NotOpen(account));
        }
        Ok((0..entries)
            .map(|i| Deposited {
                account,
                amount_cents: 100 + i % 900,
                currency: CURRENCY.into(),
                memo: memo(account, self.entries + i),
            })
            .collect())
    }
}

/// A command of the workload, whichever library carries it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    Open,
    Deposit(u64),
    Withdraw(u64),
}

/// The commands an account receives in the workload, one event each: it is opened, then money
/// moves in and out, `EVENTS_PER_ACCOUNT` events in all, never overdrawing.
pub(crate) fn script() -> impl Iterator<Item = Step> {
    (0..EVENTS_PER_ACCOUNT).map(|i| match i {
        0 => Step::Open,
        i if i % 3 == 0 => Step::Withdraw(400),
        _ => Step::Deposit(1_000),
    })
}

/// Events (and commands) per account in the command workloads.
pub(crate) const EVENTS_PER_ACCOUNT: u64 = 10;

/// The owner's name on every account.
pub(crate) const OWNER: &str = "Ada Lovelace";

/// A typical event's payload, to print its size.
pub(crate) fn sample_deposit() -> Deposited {
    let mut account = Account::default();
    account.opened(&AccountOpened {
        account: 1,
        owner: OWNER.into(),
        currency: CURRENCY.into(),
        memo: memo(1, 0),
    });
    account
        .decide_deposit(123_456, 1_000)
        .expect("an open account takes deposits")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_never_overdraws_and_makes_its_events() {
        let mut account = Account::default();
        for step in script() {
            match step {
                Step::Open => account.opened(&account.decide_open(1, OWNER).expect("opens")),
                Step::Deposit(cents) => {
                    account.deposited(&account.decide_deposit(1, cents).expect("deposits"))
                }
                Step::Withdraw(cents) => {
                    account.withdrawn(&account.decide_withdraw(1, cents).expect("withdraws"))
                }
            }
        }
        assert_eq!(account.entries, EVENTS_PER_ACCOUNT);
        assert!(
            account
                .decide_withdraw(1, account.balance_cents + 1)
                .is_err()
        );
    }

    #[test]
    fn a_payload_is_about_200_bytes() {
        let json = serde_json::to_string(&sample_deposit()).expect("encodes");
        assert!(
            (180..=220).contains(&json.len()),
            "{} bytes: {json}",
            json.len()
        );
    }
}
