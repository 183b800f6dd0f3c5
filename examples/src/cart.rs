//! A shopping cart, after Garrett Heinlen's talk "Event Sourcing: Don't want to miss a thing".
//!
//! A [`Cart`] is a fold over four events: [`ItemAdded`], [`ItemRemoved`], [`CheckedOut`] and
//! [`OrderCancelled`]. Four commands decide them:
//!
//! - [`AddItem`]: a SKU (not blank) and a quantity from 1 to [`MAX_QUANTITY`];
//! - [`RemoveItem`]: only what the cart holds, so a SKU that is not in the cart is rejected;
//! - [`Checkout`]: an empty cart is rejected, and checking out again is a no-op (a cancelled
//!   order is not ordered again: that is rejected);
//! - [`CancelOrder`]: only a checked-out cart has an order to cancel, and cancelling again is a
//!   no-op.
//!
//! A checked-out cart keeps its items (they are the order) and takes no more changes; nor does
//! a cancelled one.
//!
//! [`OrderCancelled`] is a compensating event: the way to undo a business fact. The checkout
//! happened, so its event stays; the cancellation is a second fact recorded after it, with its
//! reason. The history keeps both, and every fold over it (the cart, the sales counter, an
//! audit) sees the order and then its cancellation. Deleting the cart's stream
//! ([`Lifecycle::delete_stream`](eventsrc::store::Lifecycle::delete_stream)) is something else:
//! it takes the events out of the log, for data that should not be there any more, not for a
//! change of mind.
//!
//! The other fold, "total computers sold", is a counter over the events of every cart:
//! [`Sales`].
//!
//! ```
//! use eventsrc::{Aggregate, Handle};
//! use eventsrc_examples::cart::{AddItem, CancelOrder, Cart, CartError, CartId, Checkout};
//!
//! let mut cart = Cart::default();
//! let add = AddItem { cart: CartId(1), sku: "computer".into(), quantity: 2 };
//! for event in cart.handle(&add)? {
//!     cart.apply(&event);
//! }
//! let checkout = Checkout { cart: CartId(1) };
//! for event in cart.handle(&checkout)? {
//!     cart.apply(&event);
//! }
//! assert!(cart.is_checked_out());
//! assert_eq!(cart.quantity("computer"), 2);
//! assert_eq!(cart.handle(&checkout)?, vec![]); // checking out again: a no-op
//!
//! // The order is cancelled after the fact: a new event, and the items stay as they were.
//! let cancel = CancelOrder { cart: CartId(1), reason: "payment declined".into() };
//! for event in cart.handle(&cancel)? {
//!     cart.apply(&event);
//! }
//! assert!(cart.is_cancelled());
//! assert_eq!(cart.quantity("computer"), 2);
//! assert_eq!(cart.handle(&cancel)?, vec![]); // cancelling again: a no-op
//! assert_eq!(cart.handle(&add), Err(CartError::Cancelled));
//! # Ok::<(), eventsrc_examples::cart::CartError>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;

use eventsrc::{Decision, Event, StreamId, aggregate, command};
use serde::{Deserialize, Serialize};

/// The most units of one SKU a single command may add or remove.
pub const MAX_QUANTITY: u32 = 99;

/// A cart's id; the cart's stream is `cart-<id>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CartId(pub u64);

impl fmt::Display for CartId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Units of a product went into the cart: `{"sku":"computer","quantity":1}`.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ItemAdded {
    /// The product.
    pub sku: String,
    /// How many units.
    pub quantity: u32,
}

/// Units of a product came out of the cart: `{"sku":"computer","quantity":1}`.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ItemRemoved {
    /// The product.
    pub sku: String,
    /// How many units.
    pub quantity: u32,
}

/// The cart was checked out: its items are now an order. Payload `{}`.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct CheckedOut {}

/// The order of a checked-out cart was cancelled: `{"reason":"payment declined"}`.
///
/// A compensating event: it does not remove the [`CheckedOut`] before it, it says that the
/// order no longer stands, and why.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct OrderCancelled {
    /// Why, as the customer or the shop gave it.
    pub reason: String,
}

/// A shopping cart: the units of each SKU in it, whether it is checked out, and whether its
/// order was cancelled.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cart {
    items: BTreeMap<String, u32>,
    checked_out: bool,
    cancelled: bool,
}

#[aggregate(id = CartId, error = CartError)]
impl Cart {
    fn on_item_added(&mut self, event: &ItemAdded) {
        let held = self.items.entry(event.sku.clone()).or_default();
        *held = held.saturating_add(event.quantity);
    }

    fn on_item_removed(&mut self, event: &ItemRemoved) {
        let left = self.quantity(&event.sku).saturating_sub(event.quantity);
        if left == 0 {
            self.items.remove(&event.sku);
        } else {
            self.items.insert(event.sku.clone(), left);
        }
    }

    fn on_checked_out(&mut self, _: &CheckedOut) {
        self.checked_out = true;
    }

    fn on_order_cancelled(&mut self, _: &OrderCancelled) {
        self.cancelled = true;
    }
}

impl Cart {
    /// Units of each SKU in the cart, by SKU.
    pub fn items(&self) -> &BTreeMap<String, u32> {
        &self.items
    }

    /// Units of `sku` in the cart.
    pub fn quantity(&self, sku: &str) -> u32 {
        self.items.get(sku).copied().unwrap_or(0)
    }

    /// Whether the cart holds nothing.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Whether the cart is checked out (and so takes no more changes). A cancelled order
    /// stays checked out: the checkout happened.
    pub fn is_checked_out(&self) -> bool {
        self.checked_out
    }

    /// Whether the cart's order was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled
    }

    fn open(&self) -> Result<(), CartError> {
        if self.cancelled {
            Err(CartError::Cancelled)
        } else if self.checked_out {
            Err(CartError::CheckedOut)
        } else {
            Ok(())
        }
    }
}

/// Why a cart refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CartError {
    /// `RemoveItem` of a SKU the cart does not hold.
    #[error("`{sku}` is not in the cart")]
    NotInCart {
        /// The SKU asked for.
        sku: String,
    },
    /// `RemoveItem` of more units than the cart holds.
    #[error("the cart holds {held} of `{sku}`, fewer than the {requested} to remove")]
    TooFew {
        /// The SKU asked for.
        sku: String,
        /// Units in the cart.
        held: u32,
        /// Units asked for.
        requested: u32,
    },
    /// `Checkout` of an empty cart.
    #[error("the cart is empty: add an item before checking out")]
    Empty,
    /// A change to a checked-out cart.
    #[error("the cart is checked out: its items are an order now")]
    CheckedOut,
    /// `CancelOrder` of a cart that is not checked out.
    #[error("the cart is not checked out: there is no order to cancel")]
    NotOrdered,
    /// A change to a cart whose order was cancelled (checking it out again included).
    #[error("the cart's order was cancelled: it takes no more changes")]
    Cancelled,
}

/// Puts `quantity` units of `sku` in the cart.
#[command(aggregate = Cart, handler = Cart::add)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddItem {
    /// The cart.
    #[id]
    pub cart: CartId,
    /// The product; surrounding whitespace is dropped.
    #[validate(non_empty)]
    pub sku: String,
    /// How many units: 1 to [`MAX_QUANTITY`].
    #[validate(range(min = 1, max = 99))]
    pub quantity: u32,
}

/// Takes `quantity` units of `sku` out of the cart.
#[command(aggregate = Cart, handler = Cart::remove)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoveItem {
    /// The cart.
    #[id]
    pub cart: CartId,
    /// The product; surrounding whitespace is dropped.
    #[validate(non_empty)]
    pub sku: String,
    /// How many units: 1 to [`MAX_QUANTITY`], and no more than the cart holds.
    #[validate(range(min = 1, max = 99))]
    pub quantity: u32,
}

/// Checks the cart out. An empty cart cannot be; a checked-out cart already is (a no-op); a
/// cancelled order is not ordered again.
#[command(aggregate = Cart, handler = Cart::checkout)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkout {
    /// The cart.
    #[id]
    pub cart: CartId,
}

/// Cancels the order of a checked-out cart, with the reason. A cart not checked out has no
/// order to cancel; a cancelled one already is (a no-op).
#[command(aggregate = Cart, handler = Cart::cancel)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelOrder {
    /// The cart.
    #[id]
    pub cart: CartId,
    /// Why; surrounding whitespace is dropped.
    #[validate(non_empty)]
    pub reason: String,
}

// The commands' handlers: state in, events out, no I/O.
impl Cart {
    fn add(&self, command: &AddItem) -> Decision<Self> {
        self.open()?;
        let (sku, quantity) = (command.sku.trim().to_owned(), command.quantity);
        Ok(vec![ItemAdded { sku, quantity }.into()])
    }

    fn remove(&self, command: &RemoveItem) -> Decision<Self> {
        self.open()?;
        let (sku, requested) = (command.sku.trim().to_owned(), command.quantity);
        match self.quantity(&sku) {
            0 => Err(CartError::NotInCart { sku }),
            held if held < requested => Err(CartError::TooFew {
                sku,
                held,
                requested,
            }),
            _ => Ok(vec![
                ItemRemoved {
                    sku,
                    quantity: requested,
                }
                .into(),
            ]),
        }
    }

    fn checkout(&self, _: &Checkout) -> Decision<Self> {
        if self.cancelled {
            Err(CartError::Cancelled)
        } else if self.checked_out {
            Ok(vec![])
        } else if self.is_empty() {
            Err(CartError::Empty)
        } else {
            Ok(vec![CheckedOut {}.into()])
        }
    }

    fn cancel(&self, command: &CancelOrder) -> Decision<Self> {
        if self.cancelled {
            Ok(vec![])
        } else if !self.checked_out {
            Err(CartError::NotOrdered)
        } else {
            let reason = command.reason.trim().to_owned();
            Ok(vec![OrderCancelled { reason }.into()])
        }
    }
}

/// "Total computers sold": a counter folded over the events of every cart, in the order of the
/// global log. Units of the SKU count as sold when their cart is checked out, and no longer
/// when its order is cancelled; until checkout they are in open carts.
///
/// ```
/// use eventsrc::StreamId;
/// use eventsrc_examples::cart::{CheckedOut, ItemAdded, ItemRemoved, OrderCancelled, Sales};
///
/// let (one, two) = (StreamId::new("cart", 1)?, StreamId::new("cart", 2)?);
/// let computer = |quantity| ItemAdded { sku: "computer".into(), quantity };
/// let mut computers = Sales::of("computer");
/// computers.apply(&one, &computer(2).into());
/// computers.apply(&two, &computer(1).into());
/// computers.apply(&one, &ItemRemoved { sku: "computer".into(), quantity: 1 }.into());
/// computers.apply(&one, &CheckedOut {}.into());
/// assert_eq!((computers.sold(), computers.in_open_carts()), (1, 1));
///
/// // The order of cart 1 is cancelled: its unit is not sold any more.
/// computers.apply(&one, &OrderCancelled { reason: "payment declined".into() }.into());
/// assert_eq!((computers.sold(), computers.in_open_carts()), (0, 1));
///
/// // Cart 2's stream is deleted: the counter forgets it, as a count rebuilt from the log
/// // (which no longer holds its events) would.
/// computers.forget(&two);
/// assert_eq!((computers.sold(), computers.in_open_carts()), (0, 0));
/// # Ok::<(), eventsrc::InvalidStreamId>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sales {
    sku: String,
    /// Units in each cart not checked out yet.
    open: BTreeMap<StreamId, u32>,
    /// Units in each checked-out cart whose order stands: what a cancellation takes back.
    ordered: BTreeMap<StreamId, u32>,
}

impl Sales {
    /// A counter of `sku`, at zero.
    pub fn of(sku: impl Into<String>) -> Self {
        Self {
            sku: sku.into(),
            ..Self::default()
        }
    }

    /// Counts one event of the cart whose stream is `cart`.
    pub fn apply(&mut self, cart: &StreamId, event: &CartEvent) {
        match event {
            CartEvent::ItemAdded(added) if added.sku == self.sku => {
                let units = self.open.entry(cart.clone()).or_default();
                *units = units.saturating_add(added.quantity);
            }
            CartEvent::ItemRemoved(removed) if removed.sku == self.sku => {
                if let Some(units) = self.open.get_mut(cart) {
                    *units = units.saturating_sub(removed.quantity);
                }
            }
            CartEvent::CheckedOut(_) => {
                if let Some(units) = self.open.remove(cart) {
                    self.ordered.insert(cart.clone(), units);
                }
            }
            CartEvent::OrderCancelled(_) => {
                self.ordered.remove(cart);
            }
            CartEvent::ItemAdded(_) | CartEvent::ItemRemoved(_) => {}
        }
    }

    /// Forgets the cart whose stream is `cart`, at its deletion marker
    /// ([`STREAM_DELETED`](eventsrc::store::STREAM_DELETED) or
    /// [`STREAM_TOMBSTONED`](eventsrc::store::STREAM_TOMBSTONED)): its units count neither as
    /// in an open cart nor as sold. The deleted events are no longer in the log, so a counter
    /// folded from the start never sees them; one that saw them before the deletion forgets
    /// them here, and the two agree. (A deleted order is no longer a sale: cancel an order,
    /// do not delete it.)
    pub fn forget(&mut self, cart: &StreamId) {
        self.open.remove(cart);
        self.ordered.remove(cart);
    }

    /// Units in checked-out carts whose order was not cancelled.
    pub fn sold(&self) -> u32 {
        total(&self.ordered)
    }

    /// Units in carts not checked out yet.
    pub fn in_open_carts(&self) -> u32 {
        total(&self.open)
    }
}

/// The units of every cart in `carts`.
fn total(carts: &BTreeMap<StreamId, u32>) -> u32 {
    carts
        .values()
        .fold(0, |total, units| total.saturating_add(*units))
}
