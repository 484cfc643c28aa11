//! The organisation slug, as a type of its own where it crosses module boundaries:
//! every store call, job and stored item is scoped by it.

use super::validation::{self, ValidationError};
use serde::{Deserialize, Serialize};
use std::{fmt, ops::Deref};

/// An organisation's slug (`acme-corp`): 1-64 characters of a-z, 0-9, '-' and '_'.
///
/// How values are made: text from outside (an API key's org at creation, a CLI
/// argument, a URL path segment) goes through [`OrgSlug::parse`], which applies the one
/// rule in [`validation::org_slug`]. Stored items, jobs and the state file deserialize
/// without a check (serialized as the bare string), and the org part of a stored table
/// key is read back with [`OrgSlug::stored`]: they were checked when written.
/// A name that fails the rule can own nothing, so where one only looks things up (an API
/// path segment, the admin CLI's `keys list` and `keys revoke --id --org`) it finds
/// nothing, "not found" as before, rather than a validation error.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrgSlug(String);

impl OrgSlug {
    /// A slug from outside, checked against the rule.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        validation::org_slug(raw).map(|ok| Self(ok.to_owned()))
    }

    /// A slug read back from a table key this service wrote (checked when written).
    pub(crate) fn stored(raw: &str) -> Self {
        Self(raw.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Deref for OrgSlug {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

// Compared with plain text where a caller or a test names an org.
impl PartialEq<str> for OrgSlug {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for OrgSlug {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl fmt::Display for OrgSlug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// The organisation the unit tests act for.
#[cfg(test)]
pub(crate) fn acme() -> OrgSlug {
    OrgSlug::stored("acme")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsed_by_the_rule_and_serialized_as_the_bare_string() {
        let acme = OrgSlug::parse("acme-corp").expect("valid");
        assert_eq!(format!("ORG#{acme}"), "ORG#acme-corp");
        assert_eq!(serde_json::to_string(&acme).expect("json"), "\"acme-corp\"");
        let stored: OrgSlug = serde_json::from_str("\"acme-corp\"").expect("json");
        assert_eq!(stored, acme);
        let rule = validation::org_slug("Acme").expect_err("not a slug");
        assert_eq!(OrgSlug::parse("Acme"), Err(rule));
    }
}
