//! A use case: everything a marketer configures for one lifecycle programme.
//!
//! Build one with [`crate::config::parse_use_case`] (from TOML, with located errors) or field by field;
//! the invariants that matter downstream live in the typed parts ([`ActionSpace`], [`Holdout`],
//! [`FeatureSchema`]), each of which validates itself when built.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::action::ActionSpace;
use crate::dimension::{DimensionKind, LocalTime, MessageTarget};
use crate::features::FeatureSchema;
use crate::holdout::Holdout;
use crate::ids::Identifier;
use crate::metric::SuccessMetric;

/// The lifecycle programme a use case serves. It picks the template and the report's vocabulary; the
/// engine treats every kind alike.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UseCaseKind {
    /// Sell a complementary product.
    CrossSell,
    /// Move a customer to a higher plan or tier.
    Upsell,
    /// Get a subscription renewed.
    Renewal,
    /// Keep a customer from churning.
    Retention,
    /// Bring a buyer back for the next purchase.
    RepeatPurchase,
    /// Win back a lapsed customer.
    Winback,
    /// Get customers to refer friends.
    Referral,
    /// Nurture a lead to a first purchase.
    LeadNurture,
    /// Grow loyalty-programme engagement.
    Loyalty,
    /// Anything else.
    Custom,
}

impl UseCaseKind {
    /// Every kind, in documentation order.
    pub const ALL: [Self; 10] = [
        Self::CrossSell,
        Self::Upsell,
        Self::Renewal,
        Self::Retention,
        Self::RepeatPurchase,
        Self::Winback,
        Self::Referral,
        Self::LeadNurture,
        Self::Loyalty,
        Self::Custom,
    ];

    /// The name used in configuration files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CrossSell => "cross_sell",
            Self::Upsell => "upsell",
            Self::Renewal => "renewal",
            Self::Retention => "retention",
            Self::RepeatPurchase => "repeat_purchase",
            Self::Winback => "winback",
            Self::Referral => "referral",
            Self::LeadNurture => "lead_nurture",
            Self::Loyalty => "loyalty",
            Self::Custom => "custom",
        }
    }
}

impl fmt::Display for UseCaseKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How to reach Braze. Holds the *name* of the environment variable with the API key, never the key.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct BrazeConnection {
    /// REST endpoint, e.g. `https://rest.iad-01.braze.com` (plain `http` only to loopback).
    pub endpoint: String,
    /// Name of the environment variable that holds the REST API key.
    pub api_key_env: String,
    /// Attribute objects per `/users/track` request: Braze's limit is 75 per array, but workspaces on
    /// the "Monthly Active Users CY 24-25" package accept at most 50 updates per request, combined
    /// across attributes, events and purchases.
    #[serde(default = "default_track_objects")]
    pub track_objects_per_request: u32,
}

/// Braze's documented maximum of objects per `/users/track` array, the bound of
/// `[braze] track_objects_per_request`. The domain depends on no other crate, so this is a copy of
/// `offerloop_braze::limits::MAX_TRACK_OBJECTS`; `offerloop-activation` fails to compile if they differ.
pub const MAX_TRACK_OBJECTS: u32 = 75;

fn default_track_objects() -> u32 {
    MAX_TRACK_OBJECTS
}

/// Where the audience comes from.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum AudienceSource {
    /// A Braze segment, exported with `/users/export/segment`.
    Segment {
        /// The segment's API identifier.
        segment_id: String,
    },
    /// A file of external ids (one per line), exported with `/users/export/ids` in batches of 50.
    IdsFile {
        /// Path, relative to the use-case file.
        path: String,
    },
}

/// The audience of a use case.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Audience {
    /// Where it comes from.
    pub source: AudienceSource,
    /// At most this many customers are decided per run (`None`: all).
    pub max_customers_per_run: Option<u64>,
    /// Days a downloaded segment export (whole Braze profiles: personal data) is kept on disk. 0, the
    /// default: deleted as soon as the run has read the audience from it, failed runs included;
    /// `n`: deleted by the first run dated more than `n` days later. Left out of the serialised use
    /// case (and so of its fingerprint) when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub keep_exports_days: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Limits that protect customers and budget, whatever the policy wants.
#[derive(Clone, PartialEq, Debug, Default, Serialize, Deserialize)]
pub struct Guardrails {
    /// At most this many messages to one customer in any 7 days.
    pub max_messages_per_customer_per_week: Option<u32>,
    /// At least this many days between two messages to one customer.
    pub min_days_between_messages: Option<u32>,
    /// At most this many sends per run.
    pub max_sends_per_run: Option<u64>,
    /// At most this total option cost per run.
    pub max_cost_per_run: Option<f64>,
    /// No send in this local-time window (`start` inclusive, `end` exclusive; may wrap midnight).
    pub quiet_hours: Option<(LocalTime, LocalTime)>,
    /// Pause treatment when the treatment group's unsubscribe rate exceeds control's by this much.
    pub max_unsubscribe_rate_increase: Option<f64>,
}

/// Which learning algorithm decides, and how it explores.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    /// Uniformly random eligible action.
    Uniform,
    /// Always the business-as-usual action.
    Fixed,
    /// A classical A/B test: uniform for a number of days, then the global winner.
    ExploreThenCommit,
    /// Beta–Bernoulli Thompson sampling over joint actions (non-contextual).
    BetaTs,
    /// Gaussian Thompson sampling over joint actions (non-contextual).
    GaussianTs,
    /// Linear UCB over context × option features.
    LinUcb,
    /// Linear Thompson sampling over context × option features.
    LinTs,
    /// Logistic Thompson sampling (Laplace approximation), for binary rewards.
    LogisticTs,
}

impl Algorithm {
    /// Every algorithm, in documentation order.
    pub const ALL: [Self; 8] = [
        Self::Uniform,
        Self::Fixed,
        Self::ExploreThenCommit,
        Self::BetaTs,
        Self::GaussianTs,
        Self::LinUcb,
        Self::LinTs,
        Self::LogisticTs,
    ];

    /// The name used in configuration files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Uniform => "uniform",
            Self::Fixed => "fixed",
            Self::ExploreThenCommit => "explore_then_commit",
            Self::BetaTs => "beta_ts",
            Self::GaussianTs => "gaussian_ts",
            Self::LinUcb => "lin_ucb",
            Self::LinTs => "lin_ts",
            Self::LogisticTs => "logistic_ts",
        }
    }
}

/// Policy settings of a use case. The policy crate interprets them.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct PolicySettings {
    /// The algorithm.
    pub algorithm: Algorithm,
    /// Seed of the policy's random generator (reproducible runs).
    pub seed: u64,
    /// Every eligible joint action keeps at least this probability (times the number of eligible
    /// actions, it must stay below 1).
    pub exploration_floor: f64,
    /// Exponential discount of old evidence per day, in `(0, 1]`; 1 forgets nothing.
    pub forgetting_factor: f64,
    /// Learn option × option interactions between dimensions (e.g. sms × evening).
    pub pairwise_interactions: bool,
    /// For explore-then-commit: days of uniform exploration.
    pub explore_days: Option<u32>,
    /// Raise drift alerts and adapt when the reward distribution changes.
    pub drift_detection: bool,
}

impl Default for PolicySettings {
    fn default() -> Self {
        Self {
            algorithm: Algorithm::LogisticTs,
            seed: 0,
            exploration_floor: 0.0,
            forgetting_factor: 1.0,
            pairwise_interactions: true,
            explore_days: None,
            drift_detection: true,
        }
    }
}

/// How decisions become Braze requests.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct ActivationMapping {
    /// The campaign or canvas used when the use case has no channel dimension.
    pub default_target: Option<MessageTarget>,
    /// Also write the chosen options to the profile through `/users/track`.
    pub write_profile_attributes: bool,
    /// Prefix of those profile attributes (`offerloop_offer`, ...).
    pub attribute_prefix: String,
    /// Send at the chosen local time in each customer's own time zone (`in_local_time`).
    pub in_local_time: bool,
}

impl Default for ActivationMapping {
    fn default() -> Self {
        Self {
            default_target: None,
            write_profile_attributes: false,
            attribute_prefix: "offerloop_".to_owned(),
            in_local_time: true,
        }
    }
}

/// One lifecycle use case, validated.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UseCase {
    /// Unique name; prefixes every stored record.
    pub name: Identifier,
    /// The programme.
    pub kind: UseCaseKind,
    /// Free text for people.
    pub description: String,
    /// IANA time zone of the business: a run's date and customers without a time zone use it.
    pub time_zone: String,
    /// What is optimised.
    pub metric: SuccessMetric,
    /// Who is decided for.
    pub audience: Audience,
    /// What the policy may know about customers.
    pub features: FeatureSchema,
    /// The dimensions, rules and eligibility: every joint action.
    pub actions: ActionSpace,
    /// Control and random-control groups.
    pub holdout: Holdout,
    /// Protective limits.
    pub guardrails: Guardrails,
    /// Policy settings.
    pub policy: PolicySettings,
    /// Decision → Braze request mapping.
    pub activation: ActivationMapping,
    /// How to reach Braze.
    pub braze: BrazeConnection,
    /// Where outcomes are read from besides profile exports.
    #[serde(default)]
    pub outcomes: OutcomeFeeds,
    /// Where the use case's state is kept (`[store]`). Not part of the [fingerprint](Self::fingerprint):
    /// moving the state changes no decision.
    #[serde(skip)]
    pub store: StoreSettings,
}

/// Where a use case's state is kept (`[store]`): the embedded SQLite file by default, or a shared
/// PostgreSQL database.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct StoreSettings {
    /// `postgres://user@host:port/database[?schema=name]`: never with a password (refused).
    pub url: Option<String>,
    /// The environment variable holding the database password (default `OFFERLOOP_STORE_PASSWORD`).
    pub password_env: Option<String>,
}

/// Where a use case reads outcomes (`[outcomes]`); without a feed, outcomes are the differences
/// between successive profile exports.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct OutcomeFeeds {
    /// The Braze Currents bucket prefix (`s3://…`, `gs://…`, `az://…`, `file:///…`): the connector's
    /// folder path, under which Braze writes `dataexport.…/event_type=…/date=…/…avro`. Credentials
    /// come from the environment, never from the file.
    pub currents: Option<String>,
}

impl UseCase {
    /// A fingerprint of the whole validated configuration (16 hex digits, xxh3-64 of its JSON): runs
    /// record it, so a report can show when the configuration changed.
    pub fn fingerprint(&self) -> String {
        // Serialising validated plain data cannot fail; an empty input would still hash consistently.
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&bytes))
    }

    /// The dimension of `kind`, if the use case has one (channel, send time...).
    pub fn dimension_of_kind(&self, kind: DimensionKind) -> Option<usize> {
        self.actions.dimensions().iter().position(|d| d.kind == kind)
    }

    /// The Braze `fields_to_export` / `custom_attributes_to_export` lists a run requests: the
    /// features' fields plus `time_zone` (for local send times). Never a refused PII field.
    pub fn export_fields(&self) -> (Vec<String>, Vec<String>) {
        let (mut fields, attributes) = self.features.export_fields();
        if !fields.iter().any(|f| f == "time_zone") {
            fields.push("time_zone".to_owned());
            fields.sort();
        }
        (fields, attributes)
    }
}
