//! The numbers that key the delivery history, as types of their own so one is never
//! taken for another (or for a count or a limit) where they cross module boundaries.
//! Both serialize as the bare number, so stored items, jobs and cursors keep their shape.

use serde::{Deserialize, Serialize};
use std::fmt;

/// An endpoint's number: unique across the service and never reused, it keys the
/// endpoint's delivery history and is part of each of its delivery ids.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct EndpointNumber(pub u32);

/// A delivery's place in its endpoint's history: 1, 2, 3, ... in creation order (0 is
/// "none yet", the place before the first).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct DeliverySeq(pub u64);

impl DeliverySeq {
    /// The place before the first delivery.
    pub const NONE: Self = Self(0);

    /// The place after this one.
    pub fn next(self) -> Self {
        Self(self.0.saturating_add(1))
    }

    /// The place before this one (`NONE` stays `NONE`).
    pub fn previous(self) -> Self {
        Self(self.0.saturating_sub(1))
    }
}

// Formatting options (width, fill) apply to the number: the table's keys pad it.
impl fmt::Display for EndpointNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Display for DeliverySeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatted_and_serialized_as_the_bare_number() {
        assert_eq!(format!("{:013}", DeliverySeq(42)), "0000000000042");
        assert_eq!(format!("DLV#{}", EndpointNumber(7)), "DLV#7");
        assert_eq!(
            serde_json::to_string(&(EndpointNumber(7), DeliverySeq(42))).expect("json"),
            "[7,42]"
        );
        assert_eq!(DeliverySeq::NONE.previous(), DeliverySeq::NONE);
        assert_eq!(DeliverySeq(1).next(), DeliverySeq(2));
    }
}
