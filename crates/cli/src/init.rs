//! `offerloop init --template <kind>`: write a realistic, valid use case to start from.
//!
//! The templates are the files in the repository's `examples/` directory, compiled in, so `init` and
//! the documentation never drift apart. `upsell` and `retention` reuse the cross-sell and renewal
//! templates with their `kind` changed.

/// A template: the kind name it answers to, the file name it is written as, and its text.
#[derive(Debug, Clone, Copy)]
pub struct Template {
    /// The `--template` value (a use-case kind).
    pub kind: &'static str,
    /// Default output file name.
    pub file_name: &'static str,
    /// What it is for, for `--help` and errors.
    pub about: &'static str,
    source: &'static str,
    /// For kinds that reuse another kind's template: the `kind = "..."` value to write instead.
    rename_kind: Option<(&'static str, &'static str)>,
}

impl Template {
    /// The template text, with its `kind` set to this template's kind.
    pub fn text(&self) -> String {
        match self.rename_kind {
            Some((from, to)) => self
                .source
                .replacen(&format!("kind = \"{from}\""), &format!("kind = \"{to}\""), 1),
            None => self.source.to_owned(),
        }
    }
}

const CROSS_SELL: &str = include_str!("../../../examples/cross-sell.toml");
const RENEWAL: &str = include_str!("../../../examples/renewal.toml");

/// Every template, in documentation order.
pub const TEMPLATES: &[Template] = &[
    Template {
        kind: "cross_sell",
        file_name: "cross-sell.toml",
        about: "recommend the complementary product that a customer is most likely to buy",
        source: CROSS_SELL,
        rename_kind: None,
    },
    Template {
        kind: "upsell",
        file_name: "upsell.toml",
        about: "move customers to a higher plan (the cross-sell template, kind = upsell)",
        source: CROSS_SELL,
        rename_kind: Some(("cross_sell", "upsell")),
    },
    Template {
        kind: "renewal",
        file_name: "renewal.toml",
        about: "get subscriptions renewed before they lapse",
        source: RENEWAL,
        rename_kind: None,
    },
    Template {
        kind: "retention",
        file_name: "retention.toml",
        about: "keep customers from churning (the renewal template, kind = retention)",
        source: RENEWAL,
        rename_kind: Some(("renewal", "retention")),
    },
    Template {
        kind: "repeat_purchase",
        file_name: "repeat-purchase.toml",
        about: "bring buyers back for their next purchase",
        source: include_str!("../../../examples/repeat-purchase.toml"),
        rename_kind: None,
    },
    Template {
        kind: "winback",
        file_name: "winback.toml",
        about: "win back lapsed customers with the right incentive, channel and time",
        source: include_str!("../../../examples/winback.toml"),
        rename_kind: None,
    },
    Template {
        kind: "referral",
        file_name: "referral.toml",
        about: "get customers to refer friends",
        source: include_str!("../../../examples/referral.toml"),
        rename_kind: None,
    },
    Template {
        kind: "lead_nurture",
        file_name: "lead-nurture.toml",
        about: "nurture leads to a first purchase without over-messaging",
        source: include_str!("../../../examples/lead-nurture.toml"),
        rename_kind: None,
    },
    Template {
        kind: "loyalty",
        file_name: "loyalty.toml",
        about: "grow loyalty-programme engagement",
        source: include_str!("../../../examples/loyalty.toml"),
        rename_kind: None,
    },
];

/// The template for `kind`.
///
/// # Errors
/// A message listing the available kinds when there is none.
pub fn template(kind: &str) -> Result<&'static Template, String> {
    TEMPLATES.iter().find(|t| t.kind == kind).ok_or_else(|| {
        let kinds: Vec<&str> = TEMPLATES.iter().map(|t| t.kind).collect();
        format!("no template for `{kind}`; available: {}", kinds.join(", "))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::{Verdict, check_source};

    #[test]
    fn every_template_is_a_valid_use_case_of_its_kind() {
        for t in TEMPLATES {
            match check_source(&t.text(), t.file_name) {
                Verdict::Valid(use_case) => assert_eq!(use_case.kind.as_str(), t.kind),
                other => panic!("template {} is invalid: {other:?}", t.kind),
            }
        }
    }

    #[test]
    fn unknown_kinds_list_the_choices() {
        let err = template("custom").unwrap_err();
        assert!(err.contains("winback") && err.contains("loyalty"), "{err}");
    }
}
