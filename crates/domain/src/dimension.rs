//! Dimensions to test and their options.
//!
//! A [`Dimension`] is one axis of a decision (which offer, which channel, what time); its
//! [`OptionSpec`]s are the values it can take. Options of some kinds carry what activation needs: a
//! channel option names the Braze campaign or canvas that delivers it, a send-time option a local time,
//! a day-of-week option a weekday, a frequency option whether to send at all.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::ids::Identifier;
use crate::{Error, Result};

/// What a dimension varies. The kind decides which extra keys its options carry and how activation
/// turns the chosen option into a Braze request.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DimensionKind {
    /// The offer: a discount, bundle, plan, reward. Options usually have a cost.
    Offer,
    /// The subject line of an email (or title of a push).
    SubjectLine,
    /// The creative: template, image, copy variant.
    Creative,
    /// The channel; each option names the campaign or canvas that sends through it.
    Channel,
    /// The local time of day at which to send.
    SendTime,
    /// The day of the week on which to send.
    DayOfWeek,
    /// How often to contact; an option may mean "send nothing today".
    Frequency,
    /// Anything else, passed to Braze as a Liquid property.
    Custom,
}

impl DimensionKind {
    /// Every kind, in documentation order.
    pub const ALL: [Self; 8] = [
        Self::Offer,
        Self::SubjectLine,
        Self::Creative,
        Self::Channel,
        Self::SendTime,
        Self::DayOfWeek,
        Self::Frequency,
        Self::Custom,
    ];

    /// The name used in configuration files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Offer => "offer",
            Self::SubjectLine => "subject_line",
            Self::Creative => "creative",
            Self::Channel => "channel",
            Self::SendTime => "send_time",
            Self::DayOfWeek => "day_of_week",
            Self::Frequency => "frequency",
            Self::Custom => "custom",
        }
    }

    /// Whether a use case may have at most one dimension of this kind (one channel, one send time...).
    pub fn is_singleton(self) -> bool {
        matches!(self, Self::Channel | Self::SendTime | Self::DayOfWeek | Self::Frequency)
    }
}

impl fmt::Display for DimensionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A Braze messaging channel.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// Email.
    Email,
    /// SMS / MMS.
    Sms,
    /// Mobile or web push.
    Push,
    /// In-app message.
    InApp,
    /// Content card.
    ContentCard,
    /// WhatsApp.
    Whatsapp,
    /// Webhook (e.g. to a direct-mail or call-centre system).
    Webhook,
}

impl Channel {
    /// Every channel, in documentation order.
    pub const ALL: [Self; 7] = [
        Self::Email,
        Self::Sms,
        Self::Push,
        Self::InApp,
        Self::ContentCard,
        Self::Whatsapp,
        Self::Webhook,
    ];

    /// The name used in configuration files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Sms => "sms",
            Self::Push => "push",
            Self::InApp => "in_app",
            Self::ContentCard => "content_card",
            Self::Whatsapp => "whatsapp",
            Self::Webhook => "webhook",
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The Braze object that delivers a message: an API-triggered campaign or canvas.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageTarget {
    /// `campaign_id` of an API-triggered campaign (`/campaigns/trigger/send`).
    Campaign(String),
    /// `canvas_id` of an API-triggered canvas (`/canvas/trigger/send`).
    Canvas(String),
}

/// A time of day in the customer's own time zone, to the minute.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct LocalTime {
    hour: u8,
    minute: u8,
}

impl LocalTime {
    /// A time from hour (0–23) and minute (0–59).
    ///
    /// # Errors
    /// [`Error::OutOfRange`] when either is out of range.
    pub fn new(hour: u8, minute: u8) -> Result<Self> {
        if hour > 23 {
            return Err(Error::OutOfRange {
                what: "an hour",
                range: "[0, 23]",
                value: f64::from(hour),
            });
        }
        if minute > 59 {
            return Err(Error::OutOfRange {
                what: "a minute",
                range: "[0, 59]",
                value: f64::from(minute),
            });
        }
        Ok(Self { hour, minute })
    }

    /// Parses `HH:MM` (24-hour clock).
    ///
    /// # Errors
    /// [`Error::InvalidField`] when the text is not of that form.
    pub fn parse(text: &str) -> Result<Self> {
        let bad = || Error::InvalidField {
            field: text.to_owned(),
            reason: "expected a 24-hour local time `HH:MM`, e.g. `09:30`".to_owned(),
        };
        let (h, m) = text.split_once(':').ok_or_else(bad)?;
        if h.len() != 2 || m.len() != 2 {
            return Err(bad());
        }
        let hour: u8 = h.parse().map_err(|_| bad())?;
        let minute: u8 = m.parse().map_err(|_| bad())?;
        Self::new(hour, minute).map_err(|_| bad())
    }

    /// The hour, 0–23.
    pub fn hour(self) -> u8 {
        self.hour
    }

    /// The minute, 0–59.
    pub fn minute(self) -> u8 {
        self.minute
    }

    /// Minutes since local midnight.
    pub fn minutes_since_midnight(self) -> u16 {
        u16::from(self.hour) * 60 + u16::from(self.minute)
    }
}

impl fmt::Display for LocalTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.hour, self.minute)
    }
}

impl fmt::Debug for LocalTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LocalTime({self})")
    }
}

impl TryFrom<String> for LocalTime {
    type Error = Error;
    fn try_from(value: String) -> Result<Self> {
        Self::parse(&value)
    }
}

impl From<LocalTime> for String {
    fn from(value: LocalTime) -> Self {
        value.to_string()
    }
}

/// A day of the week.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Weekday {
    /// Monday.
    Monday,
    /// Tuesday.
    Tuesday,
    /// Wednesday.
    Wednesday,
    /// Thursday.
    Thursday,
    /// Friday.
    Friday,
    /// Saturday.
    Saturday,
    /// Sunday.
    Sunday,
}

impl Weekday {
    /// Every weekday, Monday first.
    pub const ALL: [Self; 7] = [
        Self::Monday,
        Self::Tuesday,
        Self::Wednesday,
        Self::Thursday,
        Self::Friday,
        Self::Saturday,
        Self::Sunday,
    ];

    /// The name used in configuration files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Monday => "monday",
            Self::Tuesday => "tuesday",
            Self::Wednesday => "wednesday",
            Self::Thursday => "thursday",
            Self::Friday => "friday",
            Self::Saturday => "saturday",
            Self::Sunday => "sunday",
        }
    }

    /// The same day as a `jiff` weekday, for calendar arithmetic.
    pub fn to_jiff(self) -> jiff::civil::Weekday {
        use jiff::civil::Weekday as J;
        match self {
            Self::Monday => J::Monday,
            Self::Tuesday => J::Tuesday,
            Self::Wednesday => J::Wednesday,
            Self::Thursday => J::Thursday,
            Self::Friday => J::Friday,
            Self::Saturday => J::Saturday,
            Self::Sunday => J::Sunday,
        }
    }
}

/// What an option carries besides its id, depending on its dimension's kind.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OptionPayload {
    /// No kind-specific data (offer, subject line, creative, custom).
    None,
    /// A channel option: the channel and the campaign or canvas that sends through it.
    Channel {
        /// The channel.
        channel: Channel,
        /// The API-triggered campaign or canvas.
        target: MessageTarget,
    },
    /// A send-time option: the customer's local time.
    SendTime {
        /// Local time of day.
        local_time: LocalTime,
    },
    /// A day-of-week option.
    DayOfWeek {
        /// The weekday.
        weekday: Weekday,
    },
    /// A frequency option.
    Frequency {
        /// `true`: send nothing this time (the "skip" arm of a frequency test).
        skip: bool,
        /// Minimum days between two messages to the same customer under this option.
        min_days_between_messages: Option<u32>,
    },
}

/// An option's email template: local files that `offerloop templates sync` creates or updates as a
/// Braze email template.
///
/// Only the configuration is held here; the files are read at sync time, so a use case validates
/// without them. Paths are as written in the use-case file, relative to its directory.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct TemplateSpec {
    /// The Braze template name, the key sync looks the template up by (by default
    /// `<use case>-<dimension>-<option>`); unique within a use case.
    pub name: String,
    /// The HTML body file.
    pub html: PathBuf,
    /// The plain-text body file, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<PathBuf>,
    /// The subject line; when absent, the option's label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The preheader, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preheader: Option<String>,
}

impl TemplateSpec {
    /// The default template name of option `option` of dimension `dimension` in use case `use_case`:
    /// `<use case>-<dimension>-<option>`.
    pub fn default_name(use_case: &str, dimension: &str, option: &str) -> String {
        format!("{use_case}-{dimension}-{option}")
    }
}

/// One value a dimension can take.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct OptionSpec {
    /// Stable id: the Liquid value sent to Braze and the key in every log.
    pub id: Identifier,
    /// Human-readable label for reports.
    pub label: String,
    /// Cost of giving this option to one customer, in the metric's currency (a discount's expected
    /// cost, an SMS fee). Subtracted from revenue when the metric asks for it.
    pub cost: f64,
    /// Free-form Liquid properties sent with the message (`api_trigger_properties` / `context`).
    pub properties: BTreeMap<String, serde_json::Value>,
    /// Kind-specific data.
    pub payload: OptionPayload,
    /// The option's email template, kept in local files and synced to Braze by
    /// `offerloop templates sync` (creative, subject-line and custom dimensions only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<TemplateSpec>,
}

impl OptionSpec {
    /// A plain option with no cost, properties or payload.
    pub fn new(id: Identifier) -> Self {
        let label = id.as_str().to_owned();
        Self {
            id,
            label,
            cost: 0.0,
            properties: BTreeMap::new(),
            payload: OptionPayload::None,
            template: None,
        }
    }

    /// Whether choosing this option means sending nothing (a frequency "skip").
    pub fn is_skip(&self) -> bool {
        matches!(self.payload, OptionPayload::Frequency { skip: true, .. })
    }
}

/// One axis of a decision and its options, in a stable order.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct Dimension {
    /// Stable name, used as the Liquid property key.
    pub name: Identifier,
    /// What the dimension varies.
    pub kind: DimensionKind,
    /// The options, in the order that defines their index in an [`crate::ActionId`].
    pub options: Vec<OptionSpec>,
}

impl Dimension {
    /// A dimension of `kind` named `name` with `options`.
    ///
    /// # Errors
    /// [`Error::EmptyDimension`] without options; [`Error::Duplicate`] when two options share an id.
    pub fn new(name: Identifier, kind: DimensionKind, options: Vec<OptionSpec>) -> Result<Self> {
        if options.is_empty() {
            return Err(Error::EmptyDimension(name.to_string()));
        }
        // One pass with a set: a use case may have a million options (a linear scan per option made
        // validating 10^5 options take half a minute).
        let mut seen = std::collections::HashSet::with_capacity(options.len());
        if let Some(option) = options.iter().find(|o| !seen.insert(o.id.as_str())) {
            return Err(Error::Duplicate {
                what: "option",
                name: option.id.to_string(),
            });
        }
        Ok(Self { name, kind, options })
    }

    /// The index of the option with id `id`.
    pub fn option_index(&self, id: &str) -> Option<usize> {
        self.options.iter().position(|o| o.id.as_str() == id)
    }

    /// The number of options.
    pub fn len(&self) -> usize {
        self.options.len()
    }

    /// Always `false` for a dimension built with [`Dimension::new`]; here for clippy's sake.
    pub fn is_empty(&self) -> bool {
        self.options.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_time_parses_only_hh_mm() {
        assert_eq!(LocalTime::parse("09:30").unwrap().minutes_since_midnight(), 570);
        assert_eq!(LocalTime::parse("23:59").unwrap().to_string(), "23:59");
        for bad in ["9:30", "24:00", "12:60", "noon", "12-30", "12:3"] {
            assert!(LocalTime::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dimension_refuses_duplicates_and_emptiness() {
        let id = |s: &str| Identifier::new(s).unwrap();
        assert!(Dimension::new(id("offer"), DimensionKind::Offer, vec![]).is_err());
        let dup = vec![OptionSpec::new(id("a")), OptionSpec::new(id("a"))];
        assert!(matches!(
            Dimension::new(id("offer"), DimensionKind::Offer, dup),
            Err(Error::Duplicate { what: "option", .. })
        ));
    }
}
