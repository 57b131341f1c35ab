//! The use-case schema: which keys exist, what they mean, and how they are cross-checked.
//!
//! Every `read_*` function reads one section, records its problems in the [`Cx`] and returns `None`
//! when the section cannot be built; [`parse_use_case`] reads every section regardless, so one pass
//! reports everything, then builds the [`UseCase`] only when nothing was wrong.

use std::collections::{BTreeMap, HashSet};
use std::ops::Range;

use toml::de::{DeTable, DeValue};

use super::diagnostic::Diagnostics;
use super::reader::{Cx, Sp, Table, as_number, as_string, as_strings, as_table, join, unknown_value};
use crate::action::{ActionSpace, EligibilityRule, ExclusionRule, MAX_RULES};
use crate::dimension::{
    Channel, Dimension, DimensionKind, LocalTime, MessageTarget, OptionPayload, OptionSpec, TemplateSpec, Weekday,
};
use crate::features::{FeatureSchema, FeatureSpec, FeatureType, FieldPath};
use crate::holdout::{ControlAction, Holdout};
use crate::ids::{Fraction, Identifier, identifier_problem};
use crate::metric::{ConversionOn, MAX_ATTRIBUTION_WINDOW_DAYS, MetricKind, SuccessMetric};
use crate::predicate::{Comparison, Literal, Predicate};
use crate::usecase::MAX_TRACK_OBJECTS;
use crate::usecase::{
    ActivationMapping, Algorithm, Audience, AudienceSource, BrazeConnection, Guardrails, OutcomeFeeds, PolicySettings,
    StoreSettings, UseCase, UseCaseKind,
};
use crate::{Error, Result};

/// Parses and validates a use case from TOML `source`; `file` names it in diagnostics.
///
/// # Errors
/// [`Error::Config`] with every problem found, in source order.
pub fn parse_use_case(source: &str, file: &str) -> Result<UseCase> {
    let mut cx = Cx::new(source, file);
    let root = match DeTable::parse(source) {
        Ok(root) => root,
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            let message = e.message().trim_end_matches('\n').trim_end_matches('.').to_owned();
            cx.error(span, "", format!("invalid TOML: {message}"));
            return Err(into_error(cx));
        }
    };
    let table = Table::new(root.get_ref(), 0..0, String::new());
    let use_case = read_root(&mut cx, table);
    match use_case {
        Some(use_case) if cx.error_count() == 0 => Ok(use_case),
        _ => Err(into_error(cx)),
    }
}

fn into_error(cx: Cx<'_>) -> Error {
    let mut diagnostics = cx.diagnostics;
    diagnostics.sort_by_key(|d| (d.span.start, d.path.clone()));
    diagnostics.dedup();
    Error::Config(Diagnostics(diagnostics))
}

/// Checks an identifier value, reporting at its span.
fn identifier(cx: &mut Cx<'_>, (value, span): Sp<String>, path: &str) -> Option<Sp<Identifier>> {
    match identifier_problem(&value) {
        None => Identifier::new(value).ok().map(|id| (id, span)),
        Some(reason) => {
            cx.error(span, path, format!("invalid identifier `{value}`: {reason}"));
            None
        }
    }
}

fn read_root(cx: &mut Cx<'_>, mut root: Table<'_, '_>) -> Option<UseCase> {
    let header = read_header(cx, &mut root);
    let braze = root.table(cx, "braze", true).and_then(|t| read_braze(cx, t));
    let audience = root.table(cx, "audience", true).and_then(|t| read_audience(cx, t));
    let metric = root.table(cx, "metric", true).and_then(|t| read_metric(cx, t));
    let feature_tables = root.tables(cx, "feature");
    let mut feature_catalog = FeatureCatalog::new();
    let features = read_features(cx, feature_tables, &mut feature_catalog);
    let dimension_tables = root.tables(cx, "dimension");
    if dimension_tables.is_empty() {
        match root.span_of("dimension") {
            Some(span) if root.has("dimension") => {
                cx.error(span, "dimension", "a use case needs at least one dimension");
            }
            _ => root.missing(cx, "dimension"),
        }
    }
    let mut catalog = Catalog::default();
    let use_case_name = header.as_ref().map(|(name, ..)| name.as_str());
    let dimensions = read_dimensions(cx, dimension_tables, &mut catalog, use_case_name);
    let rule_tables = root.tables(cx, "rule");
    let rules = read_rules(cx, rule_tables, &catalog);
    let eligibility_tables = root.tables(cx, "eligibility");
    let eligibility = read_eligibility(cx, eligibility_tables, &catalog, &feature_catalog);
    let holdout_table = root.table(cx, "holdout", true);
    let holdout_span = holdout_table.as_ref().map(|t| t.span.clone());
    let holdout = holdout_table.and_then(|t| read_holdout(cx, t, &catalog));
    let guardrails = match root.table(cx, "guardrails", false) {
        Some(t) => read_guardrails(cx, t),
        None => Some(Guardrails::default()),
    };
    let policy_table = root.table(cx, "policy", false);
    let policy_span = policy_table.as_ref().map(|t| t.span.clone()).unwrap_or(0..0);
    let policy = match policy_table {
        Some(t) => read_policy(cx, t),
        None => Some((PolicySettings::default(), None)),
    };
    let activation = match root.table(cx, "activation", false) {
        Some(t) => read_activation(cx, t, &catalog),
        None => read_activation_default(cx, &root, &catalog),
    };
    let outcomes = match root.table(cx, "outcomes", false) {
        Some(t) => read_outcomes(cx, t),
        None => Some(OutcomeFeeds::default()),
    };
    let store = match root.table(cx, "store", false) {
        Some(t) => read_store(cx, t),
        None => Some(StoreSettings::default()),
    };
    root.finish(cx);

    // Cross-section checks that need several sections at once.
    let dimensions = dimensions.filter(|d| !d.is_empty())?;
    let rules = rules?;
    let eligibility = eligibility?;
    let space_span = rules.first().map(|(_, span)| span.clone()).unwrap_or(0..0);
    let actions = match ActionSpace::new(
        dimensions.into_iter().map(|(d, _)| d).collect(),
        rules.into_iter().map(|(r, _)| r).collect(),
        eligibility,
    ) {
        Ok(space) => space,
        Err(e) => {
            cx.error(space_span, "rule", e.to_string());
            return None;
        }
    };
    let (holdout, bau_span) = holdout?;
    if let ControlAction::BusinessAsUsual { options } = holdout.control_action() {
        match actions.action_from_names(options) {
            Ok(action) => {
                if let Some(rule) = actions.excluding_rule(&action) {
                    cx.error(
                        bau_span,
                        "holdout.business_as_usual",
                        format!("the business-as-usual action is forbidden by rule `{}`", rule.name),
                    );
                }
            }
            Err(e) => cx.error(bau_span, "holdout.business_as_usual", e.to_string()),
        }
    }
    let (policy, floor_span) = policy?;
    if policy.algorithm == Algorithm::Fixed && matches!(holdout.control_action(), ControlAction::NoMessage) {
        cx.error(
            holdout_span.unwrap_or(0..0),
            "holdout.control",
            "the `fixed` algorithm sends the business-as-usual action; set control = \"business_as_usual\" and [holdout.business_as_usual]",
        );
    }
    let count = actions.count();
    if policy.exploration_floor > 0.0 && policy.exploration_floor * count as f64 >= 1.0 {
        cx.error(
            floor_span.unwrap_or(policy_span),
            "policy.exploration_floor",
            format!(
                "{} × {count} joint actions ≥ 1: no probability would be left to exploit; lower it below {:.3e}",
                policy.exploration_floor,
                1.0 / count as f64
            ),
        );
    }
    let (name, kind, description, time_zone) = header?;
    Some(UseCase {
        name,
        kind,
        description,
        time_zone,
        metric: metric?,
        audience: audience?,
        features: features?,
        actions,
        holdout,
        guardrails: guardrails?,
        policy,
        activation: activation?,
        braze: braze?,
        outcomes: outcomes?,
        store: store?,
    })
}

/// `[store]`: a PostgreSQL URL without a password, and the environment variable that holds it.
fn read_store(cx: &mut Cx<'_>, mut t: Table<'_, '_>) -> Option<StoreSettings> {
    let errors = cx.error_count();
    let url = t.nonempty(cx, "url", false).and_then(|(url, span)| {
        let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        if !matches!(scheme.as_deref(), Some("postgres" | "postgresql")) {
            cx.error(
                span,
                &t.key_path("url"),
                format!("`{url}` is not a PostgreSQL URL: use postgres://user@host:5432/database (omit [store] for the embedded SQLite file)"),
            );
            return None;
        }
        let authority = url.split_once("://").map_or("", |(_, rest)| rest.split('/').next().unwrap_or(""));
        let has_password = authority
            .rsplit_once('@')
            .is_some_and(|(user_info, _)| user_info.contains(':'));
        if has_password || url.contains("password=") {
            cx.error(
                span,
                &t.key_path("url"),
                "no password in the file: put it in the environment variable named by `password_env` (default OFFERLOOP_STORE_PASSWORD)",
            );
            return None;
        }
        Some(url)
    });
    let password_env = t.nonempty(cx, "password_env", false).and_then(|(name, span)| {
        let valid = !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !name.starts_with(|c: char| c.is_ascii_digit());
        if valid {
            Some(name)
        } else {
            cx.error(
                span,
                &t.key_path("password_env"),
                format!("`{name}` is not an environment variable name (letters, digits and _)"),
            );
            None
        }
    });
    t.finish(cx);
    (cx.error_count() == errors).then_some(StoreSettings { url, password_env })
}

/// The URL schemes a Currents connector writes to (and `file` for a local copy).
const CURRENTS_SCHEMES: [&str; 7] = ["s3", "s3a", "gs", "az", "abfs", "abfss", "file"];

fn read_outcomes(cx: &mut Cx<'_>, mut t: Table<'_, '_>) -> Option<OutcomeFeeds> {
    let errors = cx.error_count();
    let currents = t.nonempty(cx, "currents", false).and_then(|(url, span)| {
        let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        match scheme {
            Some(s) if CURRENTS_SCHEMES.contains(&s.as_str()) => {
                if url.contains('@') || url.contains('?') {
                    cx.error(
                        span,
                        &t.key_path("currents"),
                        "no credentials or options in the URL: set them in the environment (AWS_*, GOOGLE_*, AZURE_STORAGE_*)",
                    );
                    None
                } else {
                    Some(url)
                }
            }
            _ => {
                cx.error(
                    span,
                    &t.key_path("currents"),
                    format!(
                        "`{url}` is not a bucket URL: use s3://bucket/prefix, gs://bucket/prefix, az://container/prefix or file:///path"
                    ),
                );
                None
            }
        }
    });
    t.finish(cx);
    (cx.error_count() == errors).then_some(OutcomeFeeds { currents })
}

fn read_header(cx: &mut Cx<'_>, root: &mut Table<'_, '_>) -> Option<(Identifier, UseCaseKind, String, String)> {
    let mut t = root.table(cx, "use_case", true)?;
    let name_path = t.key_path("name");
    let name = t.string(cx, "name", true).and_then(|v| identifier(cx, v, &name_path));
    let kinds: Vec<(&str, UseCaseKind)> = UseCaseKind::ALL.iter().map(|k| (k.as_str(), *k)).collect();
    let kind = t.choice(cx, "kind", true, &kinds);
    let description = t.string(cx, "description", false).map(|(s, _)| s).unwrap_or_default();
    let time_zone = t.string(cx, "time_zone", true).and_then(|(tz, span)| {
        if jiff::tz::TimeZone::get(&tz).is_err() {
            cx.error(
                span,
                &t.key_path("time_zone"),
                format!("unknown IANA time zone `{tz}` (e.g. `Europe/Paris`, `America/New_York`, `UTC`)"),
            );
            return None;
        }
        Some(tz)
    });
    t.finish(cx);
    Some((name?.0, kind?.0, description, time_zone?))
}

/// Whether `host` (without brackets or port) is a loopback name or address: `localhost`, `::1`, or a
/// dotted-quad IPv4 address in 127.0.0.0/8. Names that merely start with `127.` are not.
fn is_loopback_host(host: &str) -> bool {
    if host == "localhost" || host == "::1" {
        return true;
    }
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => false,
    }
}

fn read_braze(cx: &mut Cx<'_>, mut t: Table<'_, '_>) -> Option<BrazeConnection> {
    let endpoint = t.nonempty(cx, "endpoint", true).and_then(|(url, span)| {
        let path = t.key_path("endpoint");
        let (scheme, rest) = url.split_once("://").unwrap_or(("", &url));
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        if authority.contains('@') {
            cx.error(
                span,
                &path,
                "credentials in the URL are refused; the API key is read from `api_key_env`",
            );
            return None;
        }
        let host = if let Some(bracketed) = authority.strip_prefix('[') {
            bracketed.split(']').next().unwrap_or("")
        } else {
            authority.split(':').next().unwrap_or("")
        };
        let loopback = is_loopback_host(host);
        match scheme {
            "https" if !host.is_empty() => Some(url.trim_end_matches('/').to_owned()),
            "http" if loopback => Some(url.trim_end_matches('/').to_owned()),
            "http" => {
                cx.error(
                    span,
                    &path,
                    "plain http is refused except to loopback (the API key would travel in clear); use https",
                );
                None
            }
            _ => {
                cx.error(
                    span,
                    &path,
                    format!("`{url}` is not an https URL such as `https://rest.iad-01.braze.com`"),
                );
                None
            }
        }
    });
    let api_key_env = t.nonempty(cx, "api_key_env", true).and_then(|(name, span)| {
        let path = t.key_path("api_key_env");
        let valid = name.bytes().next().is_some_and(|b| b.is_ascii_uppercase() || b == b'_')
            && name.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
        if valid {
            return Some(name);
        }
        let looks_like_key = name.len() >= 32 && name.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
        if looks_like_key {
            cx.error(span, &path, "this looks like an API key itself; put the key in an environment variable and name the variable here (the key never belongs in a file)");
        } else {
            cx.error(span, &path, format!("`{name}` is not an environment variable name (uppercase letters, digits and `_`)"));
        }
        None
    });
    t.not_here(
        cx,
        "api_key",
        "an API key never belongs in a file; set `api_key_env` to the name of the environment variable that holds it",
    );
    let track_objects = t
        .integer(cx, "track_objects_per_request", false, 1, u64::from(MAX_TRACK_OBJECTS))
        .map_or(MAX_TRACK_OBJECTS, |(n, _)| {
            u32::try_from(n).unwrap_or(MAX_TRACK_OBJECTS)
        });
    t.finish(cx);
    Some(BrazeConnection {
        endpoint: endpoint?,
        api_key_env: api_key_env?,
        track_objects_per_request: track_objects,
    })
}

/// The longest `[audience] keep_exports_days`: a year.
const MAX_KEEP_EXPORTS_DAYS: u32 = 365;

fn read_audience(cx: &mut Cx<'_>, mut t: Table<'_, '_>) -> Option<Audience> {
    let segment = t.nonempty(cx, "segment_id", false);
    let ids_file = t.nonempty(cx, "ids_file", false);
    let max = t
        .integer(cx, "max_customers_per_run", false, 1, u64::MAX >> 1)
        .map(|(n, _)| n);
    let keep_exports_days = t
        .integer(cx, "keep_exports_days", false, 0, u64::from(MAX_KEEP_EXPORTS_DAYS))
        .map_or(0, |(n, _)| u32::try_from(n).unwrap_or(MAX_KEEP_EXPORTS_DAYS));
    let source = match (segment, ids_file) {
        (Some((segment_id, _)), None) => Some(AudienceSource::Segment { segment_id }),
        (None, Some((path, _))) => Some(AudienceSource::IdsFile { path }),
        (Some(_), Some((_, span))) => {
            cx.error(
                span,
                &t.key_path("ids_file"),
                "give either `segment_id` or `ids_file`, not both",
            );
            None
        }
        (None, None) => {
            if !t.has("segment_id") && !t.has("ids_file") {
                t.missing(cx, "segment_id");
            }
            None
        }
    };
    t.finish(cx);
    Some(Audience {
        source: source?,
        max_customers_per_run: max,
        keep_exports_days,
    })
}

const METRIC_KEYS: [&str; 8] = [
    "event",
    "purchase",
    "product",
    "subtract_option_cost",
    "active_event",
    "churn_event",
    "property",
    "annual_discount_rate",
];

fn read_metric(cx: &mut Cx<'_>, mut t: Table<'_, '_>) -> Option<SuccessMetric> {
    let kinds = [
        ("conversion", "conversion"),
        ("revenue", "revenue"),
        ("arpu", "arpu"),
        ("retention", "retention"),
        ("renewal", "renewal"),
        ("event_value", "event_value"),
        ("npv", "npv"),
    ];
    let kind = t.choice(cx, "kind", true, &kinds).map(|(k, _)| k);
    let window = t
        .integer(
            cx,
            "attribution_window_days",
            true,
            1,
            u64::from(MAX_ATTRIBUTION_WINDOW_DAYS),
        )
        .map(|(n, _)| n as u32);
    let Some(kind_name) = kind else {
        // Still mark the kind-specific keys as known, so they are not also reported as unknown.
        for key in METRIC_KEYS {
            t.get(key);
        }
        t.finish(cx);
        return None;
    };
    let product = |t: &mut Table<'_, '_>, cx: &mut Cx<'_>, key: &'static str| {
        t.nonempty(cx, key, false).map(|(p, _)| p).filter(|p| p != "*")
    };
    let used: &[&str] = match kind_name {
        "conversion" => &["event", "purchase"],
        "revenue" => &["product", "subtract_option_cost"],
        "arpu" => &["product"],
        "retention" => &["active_event", "churn_event"],
        "renewal" => &["event"],
        "event_value" => &["event", "property", "subtract_option_cost"],
        _ => &["product", "annual_discount_rate", "subtract_option_cost"],
    };
    for key in METRIC_KEYS {
        if !used.contains(&key) {
            t.not_here(
                cx,
                key,
                &format!("not used by metric kind `{kind_name}` (it uses: {})", used.join(", ")),
            );
        }
    }
    let metric_kind = match kind_name {
        "conversion" => {
            let event = t.nonempty(cx, "event", false);
            let purchase = t.nonempty(cx, "purchase", false);
            match (event, purchase) {
                (Some((event, _)), None) => Some(MetricKind::Conversion {
                    on: ConversionOn::CustomEvent { event },
                }),
                (None, Some((p, _))) => Some(MetricKind::Conversion {
                    on: ConversionOn::Purchase {
                        product: (p != "*").then_some(p),
                    },
                }),
                (Some(_), Some((_, span))) => {
                    cx.error(
                        span,
                        &t.key_path("purchase"),
                        "a conversion is either a custom `event` or a `purchase` (product id, or \"*\"), not both",
                    );
                    None
                }
                (None, None) => {
                    if !t.has("event") && !t.has("purchase") {
                        t.missing(cx, "event");
                    }
                    None
                }
            }
        }
        "revenue" => {
            let product = product(&mut t, cx, "product");
            let subtract = t.boolean(cx, "subtract_option_cost", false).is_none_or(|(b, _)| b);
            Some(MetricKind::Revenue {
                product,
                subtract_option_cost: subtract,
            })
        }
        "arpu" => Some(MetricKind::Arpu {
            product: product(&mut t, cx, "product"),
        }),
        "retention" => {
            let active = t.nonempty(cx, "active_event", false);
            let churn = t.nonempty(cx, "churn_event", false);
            match (active, churn) {
                (Some(_), Some((_, span))) => {
                    cx.error(
                        span,
                        &t.key_path("churn_event"),
                        "give either `active_event` or `churn_event`, not both",
                    );
                    None
                }
                (None, None) => {
                    if !t.has("active_event") && !t.has("churn_event") {
                        t.missing(cx, "churn_event");
                    }
                    None
                }
                (a, c) => Some(MetricKind::Retention {
                    active_event: a.map(|x| x.0),
                    churn_event: c.map(|x| x.0),
                }),
            }
        }
        "renewal" => t
            .nonempty(cx, "event", true)
            .map(|(event, _)| MetricKind::Renewal { event }),
        "event_value" => {
            let event = t.nonempty(cx, "event", true);
            let property = t.nonempty(cx, "property", true);
            let subtract = t.boolean(cx, "subtract_option_cost", false).is_some_and(|(b, _)| b);
            Some(MetricKind::EventValue {
                event: event?.0,
                property: property?.0,
                subtract_option_cost: subtract,
            })
        }
        _ => {
            let product = product(&mut t, cx, "product");
            let rate = t.number_in(cx, "annual_discount_rate", true, |x| x > 0.0 && x <= 1.0, "(0, 1]");
            let subtract = t.boolean(cx, "subtract_option_cost", false).is_none_or(|(b, _)| b);
            Some(MetricKind::Npv {
                product,
                annual_discount_rate: rate?.0,
                subtract_option_cost: subtract,
            })
        }
    };
    t.finish(cx);
    Some(SuccessMetric {
        kind: metric_kind?,
        attribution_window_days: window?,
    })
}

/// Feature names and (when readable) types, in declaration order: predicates are checked against it
/// even when another feature has a problem.
type FeatureCatalog = Vec<(String, Option<FeatureType>)>;

fn read_features(cx: &mut Cx<'_>, tables: Vec<Table<'_, '_>>, catalog: &mut FeatureCatalog) -> Option<FeatureSchema> {
    let mut specs = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut ok = true;
    let types = [
        ("number", FeatureType::Number),
        ("category", FeatureType::Category),
        ("boolean", FeatureType::Boolean),
        ("timestamp", FeatureType::Timestamp),
    ];
    for mut t in tables {
        let name_path = t.key_path("name");
        let name = t.string(cx, "name", true).and_then(|v| identifier(cx, v, &name_path));
        if let Some((name, span)) = &name {
            if let Some(line) = seen.get(name.as_str()) {
                cx.error(
                    span.clone(),
                    &name_path,
                    format!("duplicate feature `{name}` (first defined on line {line})"),
                );
                ok = false;
            } else {
                seen.insert(name.to_string(), cx.line_of(span.start));
            }
        }
        let field_path = t.key_path("field");
        let field = t
            .nonempty(cx, "field", true)
            .and_then(|(text, span)| match FieldPath::parse(&text) {
                Ok(path) => Some(path),
                Err(Error::Pii(refused)) => {
                    cx.error(span, &field_path, refused.to_string());
                    None
                }
                Err(Error::InvalidField { reason, .. }) => {
                    cx.error(span, &field_path, format!("`{text}`: {reason}"));
                    None
                }
                Err(e) => {
                    cx.error(span, &field_path, e.to_string());
                    None
                }
            });
        let ty = t.choice(cx, "type", true, &types).map(|(ty, _)| ty);
        if let Some(raw_name) = t.peek_string("name") {
            catalog.push((raw_name.to_owned(), ty));
        }
        t.finish(cx);
        match (name, field, ty) {
            (Some((name, _)), Some(field), Some(ty)) => specs.push(FeatureSpec { name, field, ty }),
            _ => ok = false,
        }
    }
    if !ok {
        return None;
    }
    FeatureSchema::new(specs).ok()
}

type Located<T> = (T, Range<usize>);

/// What the dimensions declare, as far as it could be read: names, kinds and option ids. Rules,
/// eligibility and the business-as-usual action are checked against it even when some dimension has
/// an unrelated problem, so one pass reports those too.
#[derive(Default)]
struct Catalog {
    dims: Vec<(Identifier, Option<DimensionKind>, Vec<Identifier>)>,
}

impl Catalog {
    fn has_channel(&self) -> bool {
        self.dims.iter().any(|(_, k, _)| *k == Some(DimensionKind::Channel))
    }
}

fn read_dimensions(
    cx: &mut Cx<'_>,
    tables: Vec<Table<'_, '_>>,
    catalog: &mut Catalog,
    use_case_name: Option<&str>,
) -> Option<Vec<Located<Dimension>>> {
    let kinds: Vec<(&str, DimensionKind)> = DimensionKind::ALL.iter().map(|k| (k.as_str(), *k)).collect();
    let mut dims = Vec::new();
    let mut ok = true;
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    let mut singleton: BTreeMap<&'static str, usize> = BTreeMap::new();
    // Template names are the key `templates sync` looks templates up by: unique in the use case.
    let mut template_names: BTreeMap<String, usize> = BTreeMap::new();
    // Every dimension's name is also a Liquid property (`{"<dimension>": "<option id>"}`), so no
    // option property may be called like a dimension.
    let dimension_names: Vec<String> = tables
        .iter()
        .filter_map(|t| t.peek_string("name"))
        .map(str::to_owned)
        .collect();
    for mut t in tables {
        let span = t.span.clone();
        let name_path = t.key_path("name");
        let name = t.string(cx, "name", true).and_then(|v| identifier(cx, v, &name_path));
        if let Some((name, span)) = &name {
            if let Some(line) = names.get(name.as_str()) {
                cx.error(
                    span.clone(),
                    &name_path,
                    format!("duplicate dimension `{name}` (first defined on line {line})"),
                );
                ok = false;
            } else {
                names.insert(name.to_string(), cx.line_of(span.start));
            }
        }
        let kind = t.choice(cx, "kind", true, &kinds);
        if let Some((kind, kind_span)) = &kind
            && kind.is_singleton()
        {
            {
                if let Some(line) = singleton.get(kind.as_str()) {
                    cx.error(
                        kind_span.clone(),
                        &t.key_path("kind"),
                        format!("a use case has at most one `{kind}` dimension (another is on line {line})"),
                    );
                    ok = false;
                } else {
                    singleton.insert(kind.as_str(), cx.line_of(kind_span.start));
                }
            }
        }
        let option_tables = t.tables(cx, "options");
        if option_tables.is_empty() {
            match t.span_of("options") {
                Some(s) => cx.error(s, &t.key_path("options"), "a dimension needs at least one option"),
                None => t.missing(cx, "options"),
            }
            ok = false;
        }
        // The distinct valid ids, in declaration order (a set keeps this linear in the options).
        let mut seen_ids = HashSet::with_capacity(option_tables.len());
        let option_ids: Vec<Identifier> = option_tables
            .iter()
            .filter_map(|o| o.peek_string("id"))
            .filter(|id| seen_ids.insert(*id))
            .filter_map(|id| Identifier::new(id).ok())
            .collect();
        if let Some((name, _)) = &name {
            catalog
                .dims
                .push((name.clone(), kind.as_ref().map(|k| k.0), option_ids));
        }
        let owner = OptionOwner {
            kind: kind.as_ref().map(|k| k.0),
            use_case: use_case_name,
            dimension: name.as_ref().map(|(n, _)| n.as_str()),
        };
        let options = read_options(cx, option_tables, &owner, &dimension_names, &mut template_names);
        t.finish(cx);
        match (name, kind, options) {
            (Some((name, _)), Some((kind, _)), Some(options)) if !options.is_empty() => {
                match Dimension::new(name, kind, options) {
                    Ok(d) => dims.push((d, span)),
                    Err(e) => {
                        cx.error(span, "dimension", e.to_string());
                        ok = false;
                    }
                }
            }
            _ => ok = false,
        }
    }
    ok.then_some(dims)
}

const OPTION_KIND_KEYS: [(&str, DimensionKind); 7] = [
    ("channel", DimensionKind::Channel),
    ("campaign_id", DimensionKind::Channel),
    ("canvas_id", DimensionKind::Channel),
    ("local_time", DimensionKind::SendTime),
    ("weekday", DimensionKind::DayOfWeek),
    ("skip", DimensionKind::Frequency),
    ("min_days_between_messages", DimensionKind::Frequency),
];

/// The dimension kinds whose options may carry a `template`.
const TEMPLATE_KINDS: [DimensionKind; 3] = [
    DimensionKind::Creative,
    DimensionKind::SubjectLine,
    DimensionKind::Custom,
];

/// What options are read for: their dimension's kind and name, and the use case's name (for
/// default template names). `None` where that part could not be read.
struct OptionOwner<'n> {
    kind: Option<DimensionKind>,
    use_case: Option<&'n str>,
    dimension: Option<&'n str>,
}

fn read_options(
    cx: &mut Cx<'_>,
    tables: Vec<Table<'_, '_>>,
    owner: &OptionOwner<'_>,
    dimension_names: &[String],
    template_names: &mut BTreeMap<String, usize>,
) -> Option<Vec<OptionSpec>> {
    let kind = owner.kind;
    let mut options = Vec::new();
    let mut ids: BTreeMap<String, usize> = BTreeMap::new();
    let mut ok = true;
    let channels: Vec<(&str, Channel)> = Channel::ALL.iter().map(|c| (c.as_str(), *c)).collect();
    let weekdays: Vec<(&str, Weekday)> = Weekday::ALL.iter().map(|w| (w.as_str(), *w)).collect();
    for mut t in tables {
        let errors_before = cx.error_count();
        let id_path = t.key_path("id");
        let id = t.string(cx, "id", true).and_then(|v| identifier(cx, v, &id_path));
        if let Some((id, span)) = &id {
            if let Some(line) = ids.get(id.as_str()) {
                cx.error(
                    span.clone(),
                    &id_path,
                    format!("duplicate option id `{id}` (first defined on line {line})"),
                );
            } else {
                ids.insert(id.to_string(), cx.line_of(span.start));
            }
        }
        let label = t.nonempty(cx, "label", false).map(|(l, _)| l);
        let cost = t
            .number_in(cx, "cost", false, |x| x >= 0.0, "[0, ∞)")
            .map_or(0.0, |(c, _)| c);
        let properties = t
            .table(cx, "properties", false)
            .map(|p| read_properties(cx, p, dimension_names))
            .unwrap_or_default();
        if let Some(kind) = kind {
            for (key, owner) in OPTION_KIND_KEYS {
                if owner != kind {
                    t.not_here(cx, key, &format!("only options of a `{owner}` dimension carry `{key}`"));
                }
            }
        }
        let template = match kind {
            Some(k) if TEMPLATE_KINDS.contains(&k) => t.table(cx, "template", false).and_then(|tt| {
                let option = id.as_ref().map(|(id, _)| id.as_str());
                read_template(cx, tt, owner, option, template_names)
            }),
            Some(k) => {
                let allowed: Vec<&str> = TEMPLATE_KINDS.iter().map(|k| k.as_str()).collect();
                t.not_here(
                    cx,
                    "template",
                    &format!(
                        "only options of {} dimensions carry an email `template`; this dimension is of kind `{k}`",
                        allowed.join(", ").replacen(", custom", " or custom", 1)
                    ),
                );
                None
            }
            None => {
                t.get("template");
                None
            }
        };
        let payload = match kind {
            Some(DimensionKind::Channel) => {
                let channel = t.choice(cx, "channel", true, &channels).map(|(c, _)| c);
                let campaign = t.nonempty(cx, "campaign_id", false);
                let canvas = t.nonempty(cx, "canvas_id", false);
                let target = match (campaign, canvas) {
                    (Some((c, _)), None) => Some(MessageTarget::Campaign(c)),
                    (None, Some((c, _))) => Some(MessageTarget::Canvas(c)),
                    (Some(_), Some((_, span))) => {
                        cx.error(
                            span,
                            &t.key_path("canvas_id"),
                            "give either `campaign_id` or `canvas_id`, not both",
                        );
                        None
                    }
                    (None, None) => {
                        if !t.has("campaign_id") && !t.has("canvas_id") {
                            t.missing(cx, "campaign_id");
                        }
                        None
                    }
                };
                channel
                    .zip(target)
                    .map(|(channel, target)| OptionPayload::Channel { channel, target })
            }
            Some(DimensionKind::SendTime) => {
                t.nonempty(cx, "local_time", true)
                    .and_then(|(text, span)| match LocalTime::parse(&text) {
                        Ok(local_time) => Some(OptionPayload::SendTime { local_time }),
                        Err(_) => {
                            cx.error(
                                span,
                                &t.key_path("local_time"),
                                format!("`{text}` is not a 24-hour local time `HH:MM`, e.g. `09:30`"),
                            );
                            None
                        }
                    })
            }
            Some(DimensionKind::DayOfWeek) => t
                .choice(cx, "weekday", true, &weekdays)
                .map(|(weekday, _)| OptionPayload::DayOfWeek { weekday }),
            Some(DimensionKind::Frequency) => {
                let skip = t.boolean(cx, "skip", false).is_some_and(|(b, _)| b);
                let gap = t
                    .integer(cx, "min_days_between_messages", false, 0, 365)
                    .map(|(n, _)| n as u32);
                Some(OptionPayload::Frequency {
                    skip,
                    min_days_between_messages: gap,
                })
            }
            Some(_) => Some(OptionPayload::None),
            None => {
                for (key, _) in OPTION_KIND_KEYS {
                    t.get(key);
                }
                None
            }
        };
        t.finish(cx);
        if cx.error_count() != errors_before {
            ok = false;
        }
        if let (Some((id, _)), Some(payload)) = (id, payload) {
            let label = label.unwrap_or_else(|| id.to_string());
            options.push(OptionSpec {
                id,
                label,
                cost,
                properties,
                payload,
                template,
            });
        } else {
            ok = false;
        }
    }
    ok.then_some(options)
}

/// Reads an option's `template = { name, html, text, subject, preheader }`; the paths are kept as
/// written (the files are read at sync time).
fn read_template(
    cx: &mut Cx<'_>,
    mut t: Table<'_, '_>,
    owner: &OptionOwner<'_>,
    option: Option<&str>,
    template_names: &mut BTreeMap<String, usize>,
) -> Option<TemplateSpec> {
    let errors = cx.error_count();
    let name = t.nonempty(cx, "name", false);
    let html = t.nonempty(cx, "html", false).map(|(p, _)| p);
    if html.is_none() && !t.has("html") {
        cx.error(
            t.span.start..t.span.start,
            &t.key_path("html"),
            "missing: the HTML body file, relative to the use-case file (e.g. `templates/offer.html`)",
        );
    }
    let text = t.nonempty(cx, "text", false).map(|(p, _)| p);
    let subject = t.nonempty(cx, "subject", false).map(|(s, _)| s);
    let preheader = t.nonempty(cx, "preheader", false).map(|(s, _)| s);
    let name = name.or_else(|| {
        let default = TemplateSpec::default_name(owner.use_case?, owner.dimension?, option?);
        Some((default, t.span.clone()))
    });
    if let Some((name, span)) = &name {
        if let Some(line) = template_names.get(name) {
            cx.error(
                span.clone(),
                &t.key_path("name"),
                format!("template name `{name}` is already used on line {line}; each option needs its own template"),
            );
        } else {
            template_names.insert(name.clone(), cx.line_of(span.start));
        }
    }
    t.finish(cx);
    if cx.error_count() != errors {
        return None;
    }
    Some(TemplateSpec {
        name: name?.0,
        html: html?.into(),
        text: text.map(Into::into),
        subject,
        preheader,
    })
}

fn read_properties(
    cx: &mut Cx<'_>,
    t: Table<'_, '_>,
    dimension_names: &[String],
) -> BTreeMap<String, serde_json::Value> {
    let mut out = BTreeMap::new();
    for (key, key_span, value) in t.entries() {
        let path = join(&t.path, key);
        if let Some(reason) = identifier_problem(key) {
            cx.error(
                key_span,
                &path,
                format!("invalid Liquid property name `{key}`: {reason}"),
            );
            continue;
        }
        if dimension_names.iter().any(|d| d == key) {
            cx.error(
                key_span,
                &path,
                format!(
                    "property `{key}` has the name of a dimension: the dimension's option id is sent as \
                     `{key}`, so this value would be lost; rename it (e.g. `{key}_text`)"
                ),
            );
            continue;
        }
        if let Some(json) = to_json(cx, value, &path) {
            out.insert(key.to_owned(), json);
        }
    }
    out
}

fn to_json(cx: &mut Cx<'_>, v: &toml::Spanned<DeValue<'_>>, path: &str) -> Option<serde_json::Value> {
    Some(match v.get_ref() {
        DeValue::String(s) => serde_json::Value::String(s.to_string()),
        DeValue::Integer(_) | DeValue::Float(_) => {
            let (x, _) = as_number(cx, v, path)?;
            if x.fract() == 0.0 && x.abs() < 9.0e15 {
                serde_json::Value::from(x as i64)
            } else {
                serde_json::Value::from(x)
            }
        }
        DeValue::Boolean(b) => serde_json::Value::Bool(*b),
        DeValue::Datetime(d) => serde_json::Value::String(d.to_string()),
        DeValue::Array(items) => serde_json::Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| to_json(cx, item, &format!("{path}[{i}]")))
                .collect::<Option<_>>()?,
        ),
        DeValue::Table(t) => serde_json::Value::Object(
            t.iter()
                .map(|(k, item)| Some((k.get_ref().to_string(), to_json(cx, item, &join(path, k.get_ref()))?)))
                .collect::<Option<_>>()?,
        ),
    })
}

/// Resolves `dimension = option(s)` pairs against the dimensions, reporting unknown names.
fn resolve_choice(
    cx: &mut Cx<'_>,
    catalog: &Catalog,
    dim_name: &str,
    key_span: Range<usize>,
    options: Vec<Sp<String>>,
    path: &str,
) -> Option<(Identifier, Vec<Identifier>)> {
    if catalog.dims.is_empty() {
        // No dimension could be read; that has its own diagnostic.
        return None;
    }
    let Some((dim, _, dim_options)) = catalog.dims.iter().find(|(d, _, _)| d.as_str() == dim_name) else {
        let names: Vec<&str> = catalog.dims.iter().map(|(d, _, _)| d.as_str()).collect();
        cx.error(
            key_span,
            path,
            unknown_value(dim_name, &names).replacen("value", "dimension", 1),
        );
        return None;
    };
    if dim_options.is_empty() {
        // The dimension's own diagnostic already says it has no (readable) options.
        return None;
    }
    let mut ids = Vec::new();
    let mut ok = true;
    for (option, span) in options {
        match dim_options.iter().find(|o| o.as_str() == option) {
            Some(o) => ids.push(o.clone()),
            None => {
                let names: Vec<&str> = dim_options.iter().map(Identifier::as_str).collect();
                let message = unknown_value(&option, &names).replacen("value", "option", 1);
                cx.error(span, path, format!("{message} (in dimension `{dim_name}`)"));
                ok = false;
            }
        }
    }
    ok.then(|| (dim.clone(), ids))
}

fn read_rules(
    cx: &mut Cx<'_>,
    tables: Vec<Table<'_, '_>>,
    catalog: &Catalog,
) -> Option<Vec<(ExclusionRule, Range<usize>)>> {
    let mut rules = Vec::new();
    let mut ok = true;
    if let Some(extra) = tables.get(MAX_RULES) {
        cx.error(
            extra.span.clone(),
            &extra.path,
            format!("at most {MAX_RULES} exclusion rules are supported"),
        );
        ok = false;
    }
    for (i, mut t) in tables.into_iter().enumerate() {
        let name = t
            .nonempty(cx, "name", false)
            .map_or_else(|| format!("rule[{i}]"), |(n, _)| n);
        let exclude = t.table(cx, "exclude", true);
        let rule_span = t.span.clone();
        t.finish(cx);
        let Some(exclude) = exclude else {
            ok = false;
            continue;
        };
        let mut conditions = BTreeMap::new();
        let entries: Vec<_> = exclude.entries().collect();
        if entries.is_empty() {
            cx.error(
                exclude.span.clone(),
                &exclude.path,
                "name at least one `dimension = option` to exclude",
            );
            ok = false;
        }
        for (dim_name, key_span, value) in entries {
            let path = join(&exclude.path, dim_name);
            let Some(options) = as_strings(cx, value, &path) else {
                ok = false;
                continue;
            };
            match resolve_choice(cx, catalog, dim_name, key_span, options, &path) {
                Some((d, os)) => {
                    conditions.insert(d, os);
                }
                None => ok = false,
            }
        }
        rules.push((ExclusionRule { name, conditions }, rule_span));
    }
    ok.then_some(rules)
}

fn read_eligibility(
    cx: &mut Cx<'_>,
    tables: Vec<Table<'_, '_>>,
    catalog: &Catalog,
    features: &FeatureCatalog,
) -> Option<Vec<EligibilityRule>> {
    let mut rules = Vec::new();
    let mut ok = true;
    for mut t in tables {
        let dimension = t.nonempty(cx, "dimension", true);
        let option = t.nonempty(cx, "option", true);
        let when = t.table(cx, "when", true).and_then(|w| read_predicate(cx, w, features));
        let resolved = match (dimension, option) {
            (Some((d, d_span)), Some(o)) => {
                let known = catalog.dims.iter().any(|(dim, _, _)| dim.as_str() == d);
                let path = t.key_path(if known { "option" } else { "dimension" });
                resolve_choice(cx, catalog, &d, d_span, vec![o], &path)
            }
            _ => None,
        };
        t.finish(cx);
        match (resolved, when) {
            (Some((dimension, mut options)), Some(when)) if options.len() == 1 => {
                if let Some(option) = options.pop() {
                    rules.push(EligibilityRule {
                        dimension,
                        option,
                        when,
                    });
                }
            }
            _ => ok = false,
        }
    }
    ok.then_some(rules)
}

const OPERATORS: [&str; 10] = [
    "eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "present", "missing",
];

fn read_predicate(cx: &mut Cx<'_>, mut t: Table<'_, '_>, features: &FeatureCatalog) -> Option<Predicate> {
    let mut forms: Vec<&'static str> = ["all", "any", "not"].into_iter().filter(|k| t.has(k)).collect();
    if t.has("feature") {
        forms.push("feature");
    }
    if let [_, second, ..] = forms.as_slice() {
        let span = t.span_of(second).unwrap_or(t.span.clone());
        cx.error(
            span,
            &t.key_path(second),
            format!(
                "a condition is exactly one of all / any / not / feature; found both `{}` and `{second}`",
                forms[0]
            ),
        );
        for op in OPERATORS {
            t.get(op);
        }
        t.finish(cx);
        return None;
    }
    for combinator in ["all", "any"] {
        let key: &'static str = combinator;
        if let Some(v) = t.raw(key) {
            let path = t.key_path(key);
            let DeValue::Array(items) = v.get_ref() else {
                cx.error(v.span(), &path, "expected an array of conditions");
                t.finish(cx);
                return None;
            };
            if items.is_empty() {
                cx.error(v.span(), &path, "cannot be empty: give at least one condition");
                t.finish(cx);
                return None;
            }
            let inner: Vec<Option<Predicate>> = items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    as_table(cx, item, format!("{path}[{i}]")).and_then(|it| read_predicate(cx, it, features))
                })
                .collect();
            t.finish(cx);
            let inner: Option<Vec<Predicate>> = inner.into_iter().collect();
            return inner.map(|ps| {
                if key == "all" {
                    Predicate::All(ps)
                } else {
                    Predicate::Any(ps)
                }
            });
        }
    }
    if let Some(inner) = t.table(cx, "not", false) {
        let p = read_predicate(cx, inner, features);
        t.finish(cx);
        return p.map(|p| Predicate::Not(Box::new(p)));
    }
    let feature_path = t.key_path("feature");
    let feature = t.nonempty(cx, "feature", true).and_then(|(name, span)| {
        match features.iter().position(|(n, _)| *n == name) {
            // A feature whose type could not be read has its own diagnostic already.
            Some(i) => features[i].1.map(|ty| (i, ty)),
            None => {
                let names: Vec<&str> = features.iter().map(|(n, _)| n.as_str()).collect();
                let message = if names.is_empty() {
                    format!("unknown feature `{name}`: declare it in a [[feature]] table")
                } else {
                    unknown_value(&name, &names).replacen("value", "feature", 1)
                };
                cx.error(span, &feature_path, message);
                None
            }
        }
    });
    let present: Vec<&'static str> = OPERATORS.iter().copied().filter(|op| t.has(op)).collect();
    let op = match present.as_slice() {
        [op] => Some(*op),
        [] => {
            cx.error(
                t.span.clone(),
                &t.path,
                format!(
                    "a condition needs one operator: {}, or all / any / not",
                    OPERATORS.join(", ")
                ),
            );
            None
        }
        [_, second, ..] => {
            let span = t.span_of(second).unwrap_or(t.span.clone());
            cx.error(
                span,
                &t.key_path(second),
                "a condition has exactly one operator; combine several with `all = [...]`",
            );
            None
        }
    };
    let predicate = match (feature, op) {
        (Some((feature, ty)), Some(op)) => read_operator(cx, &mut t, op, feature, ty),
        _ => None,
    };
    t.finish(cx);
    predicate
}

fn literal(cx: &mut Cx<'_>, v: &toml::Spanned<DeValue<'_>>, path: &str, ty: FeatureType) -> Option<Literal> {
    let lit = match (v.get_ref(), ty) {
        (DeValue::Boolean(b), FeatureType::Boolean | FeatureType::Category) => Literal::Boolean(*b),
        (DeValue::String(s), FeatureType::Category) => Literal::Text(s.to_string()),
        (DeValue::Integer(_) | DeValue::Float(_), FeatureType::Number | FeatureType::Category) => {
            Literal::Number(as_number(cx, v, path)?.0)
        }
        (other, _) => {
            cx.error(
                v.span(),
                path,
                format!(
                    "cannot compare a {} feature with {}",
                    ty.as_str(),
                    super::reader::article(other.type_str())
                ),
            );
            return None;
        }
    };
    Some(lit)
}

fn read_operator(
    cx: &mut Cx<'_>,
    t: &mut Table<'_, '_>,
    op: &'static str,
    feature: usize,
    ty: FeatureType,
) -> Option<Predicate> {
    let path = t.key_path(op);
    let v = t.raw(op)?;
    match op {
        "eq" | "ne" => {
            let value = literal(cx, v, &path, ty)?;
            Some(if op == "eq" {
                Predicate::Eq { feature, value }
            } else {
                Predicate::Ne { feature, value }
            })
        }
        "in" | "not_in" => {
            let DeValue::Array(items) = v.get_ref() else {
                cx.error(v.span(), &path, "expected an array of values");
                return None;
            };
            if items.is_empty() {
                cx.error(v.span(), &path, "cannot be empty: no customer would match");
                return None;
            }
            let values: Option<Vec<Literal>> = items
                .iter()
                .enumerate()
                .map(|(i, item)| literal(cx, item, &format!("{path}[{i}]"), ty))
                .collect();
            let values = values?;
            Some(if op == "in" {
                Predicate::In { feature, values }
            } else {
                Predicate::NotIn { feature, values }
            })
        }
        "present" | "missing" => match v.get_ref() {
            DeValue::Boolean(true) => Some(if op == "present" {
                Predicate::Present { feature }
            } else {
                Predicate::Missing { feature }
            }),
            _ => {
                cx.error(v.span(), &path, format!("write `{op} = true`"));
                None
            }
        },
        _ => {
            if !matches!(ty, FeatureType::Number | FeatureType::Timestamp) {
                cx.error(
                    v.span(),
                    &path,
                    format!("`{op}` compares numbers or timestamps, not a {} feature", ty.as_str()),
                );
                return None;
            }
            let value = match (v.get_ref(), ty) {
                (DeValue::Datetime(d), FeatureType::Timestamp) => match d.to_string().parse::<jiff::Timestamp>() {
                    Ok(ts) => ts.as_second() as f64,
                    Err(_) => {
                        cx.error(
                            v.span(),
                            &path,
                            "expected an offset date-time such as 2026-01-01T00:00:00Z",
                        );
                        return None;
                    }
                },
                _ => as_number(cx, v, &path)?.0,
            };
            let op = match op {
                "gt" => Comparison::Gt,
                "gte" => Comparison::Gte,
                "lt" => Comparison::Lt,
                _ => Comparison::Lte,
            };
            Some(Predicate::Compare { feature, op, value })
        }
    }
}

fn read_holdout(cx: &mut Cx<'_>, mut t: Table<'_, '_>, catalog: &Catalog) -> Option<(Holdout, Range<usize>)> {
    let salt = t.nonempty(cx, "salt", true);
    let control = t.number_in(cx, "control_fraction", true, |x| (0.0..1.0).contains(&x), "[0, 1)");
    let random = t.number_in(
        cx,
        "random_control_fraction",
        false,
        |x| (0.0..1.0).contains(&x),
        "[0, 1)",
    );
    if let (Some((c, _)), Some((r, span))) = (&control, &random)
        && c + r >= 1.0
    {
        cx.error(
            span.clone(),
            &t.key_path("random_control_fraction"),
            format!(
                "control_fraction + random_control_fraction = {} leaves nobody to treat; keep the sum below 1",
                c + r
            ),
        );
    }
    let modes = [("business_as_usual", true), ("no_message", false)];
    let bau_mode = t
        .choice(cx, "control", false, &modes)
        .map_or(Some(true), |(m, _)| Some(m));
    let bau_table = t.table(cx, "business_as_usual", false);
    let bau_span = bau_table.as_ref().map(|b| b.span.clone()).unwrap_or(t.span.clone());
    let control_action = match (bau_mode, bau_table) {
        (Some(false), None) => Some(ControlAction::NoMessage),
        (Some(false), Some(b)) => {
            cx.error(b.span.clone(), &b.path, "not used when control = \"no_message\"");
            None
        }
        (_, None) => {
            t.missing(cx, "business_as_usual");
            None
        }
        (_, Some(b)) => {
            let mut options = BTreeMap::new();
            let mut ok = true;
            for (dim_name, key_span, value) in b.entries() {
                let path = join(&b.path, dim_name);
                let Some((option, span)) = as_string(cx, value, &path) else {
                    ok = false;
                    continue;
                };
                match resolve_choice(cx, catalog, dim_name, key_span, vec![(option, span)], &path) {
                    Some((d, mut os)) => {
                        if let Some(o) = os.pop() {
                            options.insert(d, o);
                        }
                    }
                    None => ok = false,
                }
            }
            if ok {
                for (d, _, _) in &catalog.dims {
                    if !options.contains_key(d) {
                        b.missing(cx, d.as_str());
                        ok = false;
                    }
                }
            }
            ok.then_some(ControlAction::BusinessAsUsual { options })
        }
    };
    t.finish(cx);
    let control = Fraction::new(control?.0).ok()?;
    let random = Fraction::new(random.map_or(0.0, |r| r.0)).ok()?;
    let holdout = Holdout::new(salt?.0, control, random, control_action?).ok()?;
    Some((holdout, bau_span))
}

fn read_guardrails(cx: &mut Cx<'_>, mut t: Table<'_, '_>) -> Option<Guardrails> {
    let errors = cx.error_count();
    let per_week = t
        .integer(cx, "max_messages_per_customer_per_week", false, 1, 100)
        .map(|(n, _)| n as u32);
    let gap = t
        .integer(cx, "min_days_between_messages", false, 0, 365)
        .map(|(n, _)| n as u32);
    let sends = t
        .integer(cx, "max_sends_per_run", false, 1, u64::MAX >> 1)
        .map(|(n, _)| n);
    let cost = t
        .number_in(cx, "max_cost_per_run", false, |x| x >= 0.0, "[0, ∞)")
        .map(|(x, _)| x);
    let unsub = t
        .number_in(
            cx,
            "max_unsubscribe_rate_increase",
            false,
            |x| x > 0.0 && x < 1.0,
            "(0, 1)",
        )
        .map(|(x, _)| x);
    let quiet = t.table(cx, "quiet_hours", false).and_then(|mut q| {
        let mut time = |q: &mut Table<'_, '_>, key: &'static str| {
            let path = q.key_path(key);
            q.nonempty(cx, key, true)
                .and_then(|(text, span)| match LocalTime::parse(&text) {
                    Ok(t) => Some(t),
                    Err(_) => {
                        cx.error(span, &path, format!("`{text}` is not a 24-hour local time `HH:MM`"));
                        None
                    }
                })
        };
        let start = time(&mut q, "start");
        let end = time(&mut q, "end");
        if let (Some(a), Some(b)) = (start, end)
            && a == b
        {
            let span = q.span_of("end").unwrap_or(q.span.clone());
            cx.error(
                span,
                &q.key_path("end"),
                "equals `start`: quiet hours must be a non-empty window",
            );
        }
        q.finish(cx);
        start.zip(end)
    });
    t.finish(cx);
    (cx.error_count() == errors).then_some(Guardrails {
        max_messages_per_customer_per_week: per_week,
        min_days_between_messages: gap,
        max_sends_per_run: sends,
        max_cost_per_run: cost,
        quiet_hours: quiet,
        max_unsubscribe_rate_increase: unsub,
    })
}

fn read_policy(cx: &mut Cx<'_>, mut t: Table<'_, '_>) -> Option<(PolicySettings, Option<Range<usize>>)> {
    let errors = cx.error_count();
    let defaults = PolicySettings::default();
    let algorithms: Vec<(&str, Algorithm)> = Algorithm::ALL.iter().map(|a| (a.as_str(), *a)).collect();
    let algorithm = t
        .choice(cx, "algorithm", false, &algorithms)
        .map_or(defaults.algorithm, |(a, _)| a);
    let seed = t
        .integer(cx, "seed", false, 0, i64::MAX as u64)
        .map_or(defaults.seed, |(n, _)| n);
    let floor = t.number_in(cx, "exploration_floor", false, |x| (0.0..1.0).contains(&x), "[0, 1)");
    let forgetting = t
        .number_in(cx, "forgetting_factor", false, |x| x > 0.0 && x <= 1.0, "(0, 1]")
        .map_or(defaults.forgetting_factor, |(x, _)| x);
    let pairwise = t
        .boolean(cx, "pairwise_interactions", false)
        .map_or(defaults.pairwise_interactions, |(b, _)| b);
    let drift = t
        .boolean(cx, "drift_detection", false)
        .map_or(defaults.drift_detection, |(b, _)| b);
    let explore_days = if algorithm == Algorithm::ExploreThenCommit {
        t.integer(cx, "explore_days", true, 1, 365).map(|(n, _)| n as u32)
    } else {
        t.not_here(
            cx,
            "explore_days",
            "only the `explore_then_commit` algorithm uses `explore_days`",
        );
        None
    };
    t.finish(cx);
    (cx.error_count() == errors).then(|| {
        (
            PolicySettings {
                algorithm,
                seed,
                exploration_floor: floor.as_ref().map_or(defaults.exploration_floor, |(x, _)| *x),
                forgetting_factor: forgetting,
                pairwise_interactions: pairwise,
                explore_days,
                drift_detection: drift,
            },
            floor.map(|(_, s)| s),
        )
    })
}

fn read_activation_default(cx: &mut Cx<'_>, root: &Table<'_, '_>, catalog: &Catalog) -> Option<ActivationMapping> {
    if !catalog.dims.is_empty() && !catalog.has_channel() {
        cx.error(
            root.span.clone(),
            "activation.campaign_id",
            "missing: without a `channel` dimension, [activation] must name the campaign_id or canvas_id that sends every decision",
        );
        return None;
    }
    Some(ActivationMapping::default())
}

fn read_activation(cx: &mut Cx<'_>, mut t: Table<'_, '_>, catalog: &Catalog) -> Option<ActivationMapping> {
    let errors = cx.error_count();
    let defaults = ActivationMapping::default();
    let campaign = t.nonempty(cx, "campaign_id", false);
    let canvas = t.nonempty(cx, "canvas_id", false);
    let channel_dim = catalog.has_channel();
    let default_target = match (campaign, canvas) {
        (Some((_, span)), _) | (None, Some((_, span))) if channel_dim => {
            let key = if t.span_of("campaign_id") == Some(span.clone()) {
                "campaign_id"
            } else {
                "canvas_id"
            };
            cx.error(
                span,
                &t.key_path(key),
                "the channel dimension's options choose the campaign or canvas; remove this default target",
            );
            None
        }
        (Some(_), Some((_, span))) => {
            cx.error(
                span,
                &t.key_path("canvas_id"),
                "give either `campaign_id` or `canvas_id`, not both",
            );
            None
        }
        (Some((c, _)), None) => Some(MessageTarget::Campaign(c)),
        (None, Some((c, _))) => Some(MessageTarget::Canvas(c)),
        (None, None) => {
            if !catalog.dims.is_empty() && !channel_dim {
                cx.error(t.span.clone(), &t.key_path("campaign_id"), "missing: without a `channel` dimension, name the campaign_id or canvas_id that sends every decision");
            }
            None
        }
    };
    let write = t
        .boolean(cx, "write_profile_attributes", false)
        .map_or(defaults.write_profile_attributes, |(b, _)| b);
    let prefix_path = t.key_path("attribute_prefix");
    let prefix = match t.string(cx, "attribute_prefix", false) {
        Some((p, span)) => {
            let ok = !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !ok {
                cx.error(
                    span,
                    &prefix_path,
                    "use lowercase letters, digits and `_` (e.g. `offerloop_`)",
                );
            }
            p
        }
        None => defaults.attribute_prefix,
    };
    let local = t
        .boolean(cx, "in_local_time", false)
        .map_or(defaults.in_local_time, |(b, _)| b);
    t.finish(cx);
    (cx.error_count() == errors).then_some(ActivationMapping {
        default_target,
        write_profile_attributes: write,
        attribute_prefix: prefix,
        in_local_time: local,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// A small use case; `{offer}`, `{a}` and `{b}` are extra lines of the options `offer.none`,
    /// `subject.a` and `subject.b`.
    fn use_case(offer: &str, a: &str, b: &str) -> String {
        format!(
            r#"[use_case]
name = "tpl"
kind = "winback"
time_zone = "UTC"

[braze]
endpoint = "https://rest.fra-01.braze.eu"
api_key_env = "BRAZE_API_KEY"

[audience]
segment_id = "segment-1"

[metric]
kind = "conversion"
event = "purchase_completed"
attribution_window_days = 7

[activation]
campaign_id = "cmp-email"

[[dimension]]
name = "offer"
kind = "offer"

  [[dimension.options]]
  id = "none"
  {offer}

[[dimension]]
name = "subject"
kind = "subject_line"

  [[dimension.options]]
  id = "a"
  label = "Hello A"
  {a}

  [[dimension.options]]
  id = "b"
  {b}

[holdout]
salt = "s"
control_fraction = 0.1

  [holdout.business_as_usual]
  offer = "none"
  subject = "a"
"#
        )
    }

    fn errors(text: &str) -> Vec<String> {
        match parse_use_case(text, "tpl.toml") {
            Ok(_) => panic!("expected errors"),
            Err(Error::Config(d)) => d.iter().map(ToString::to_string).collect(),
            Err(e) => panic!("unexpected error {e}"),
        }
    }

    #[test]
    fn track_objects_per_request_defaults_to_75_and_stays_within_brazes_limit() {
        let base = use_case("", "", "");
        assert_eq!(
            parse_use_case(&base, "tpl.toml")
                .unwrap()
                .braze
                .track_objects_per_request,
            75
        );
        let with = |n: &str| base.replacen("[braze]\n", &format!("[braze]\ntrack_objects_per_request = {n}\n"), 1);
        assert_eq!(
            parse_use_case(&with("50"), "tpl.toml")
                .unwrap()
                .braze
                .track_objects_per_request,
            50
        );
        let got = errors(&with("100"));
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(
            got[0].contains("braze.track_objects_per_request: must be in [1, 75], got 100"),
            "{got:?}"
        );
    }

    #[test]
    fn keep_exports_days_defaults_to_0_is_bounded_and_stays_out_of_the_fingerprint() {
        let base = use_case("", "", "");
        let parsed = parse_use_case(&base, "tpl.toml").unwrap();
        assert_eq!(parsed.audience.keep_exports_days, 0);
        let with = |n: &str| base.replacen("[audience]\n", &format!("[audience]\nkeep_exports_days = {n}\n"), 1);
        // Writing the default changes nothing, not even the fingerprint of existing stores' runs.
        let zero = parse_use_case(&with("0"), "tpl.toml").unwrap();
        assert_eq!(zero.fingerprint(), parsed.fingerprint());
        assert_eq!(
            parse_use_case(&with("7"), "tpl.toml")
                .unwrap()
                .audience
                .keep_exports_days,
            7
        );
        let got = errors(&with("400"));
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(
            got[0].contains("audience.keep_exports_days: must be in [0, 365], got 400"),
            "{got:?}"
        );
    }

    #[test]
    fn a_currents_bucket_is_read_from_outcomes() {
        let text = format!(
            "{}\n[outcomes]\ncurrents = \"s3://acme-currents/currents\"\n",
            use_case("", "", "")
        );
        let uc = parse_use_case(&text, "tpl.toml").unwrap();
        assert_eq!(uc.outcomes.currents.as_deref(), Some("s3://acme-currents/currents"));
        assert_eq!(
            parse_use_case(&use_case("", "", ""), "tpl.toml")
                .unwrap()
                .outcomes
                .currents,
            None
        );
    }

    #[test]
    fn a_currents_url_that_is_not_a_bucket_or_holds_credentials_is_located() {
        for (url, says) in [
            ("https://example.com/x", "is not a bucket URL"),
            ("s3://AKIA:secret@acme/currents", "no credentials or options in the URL"),
        ] {
            let base = use_case("", "", "");
            let line = base.lines().count() + 3;
            let text = format!("{base}\n[outcomes]\ncurrents = \"{url}\"\n");
            let got = errors(&text);
            assert_eq!(got.len(), 1, "{got:?}");
            assert!(
                got[0].starts_with(&format!("tpl.toml:{line}:12 outcomes.currents: ")),
                "{got:?}"
            );
            assert!(got[0].contains(says), "{got:?}");
        }
    }

    #[test]
    fn a_postgres_store_is_read_and_not_fingerprinted() {
        let base = use_case("", "", "");
        let text = format!(
            "{base}\n[store]\nurl = \"postgres://offerloop@db:5432/marketing?schema=winback\"\npassword_env = \"PG_PASS\"\n"
        );
        let uc = parse_use_case(&text, "tpl.toml").unwrap();
        assert_eq!(
            uc.store.url.as_deref(),
            Some("postgres://offerloop@db:5432/marketing?schema=winback")
        );
        assert_eq!(uc.store.password_env.as_deref(), Some("PG_PASS"));
        let plain = parse_use_case(&base, "tpl.toml").unwrap();
        assert_eq!(plain.store, crate::StoreSettings::default());
        assert_eq!(
            uc.fingerprint(),
            plain.fingerprint(),
            "where the state lives changes no decision"
        );
    }

    #[test]
    fn a_store_url_with_a_password_or_of_another_kind_is_located() {
        for (key, value, says) in [
            (
                "url",
                "postgres://offerloop:hunter2@db/marketing",
                "no password in the file",
            ),
            (
                "url",
                "postgresql://db/marketing?password=hunter2",
                "no password in the file",
            ),
            ("url", "mysql://db/marketing", "is not a PostgreSQL URL"),
            ("password_env", "9LIVES", "is not an environment variable name"),
        ] {
            let base = use_case("", "", "");
            let line = base.lines().count() + 3;
            let text = format!("{base}\n[store]\n{key} = \"{value}\"\n");
            let got = errors(&text);
            assert_eq!(got.len(), 1, "{got:?}");
            assert!(got[0].starts_with(&format!("tpl.toml:{line}:")), "{got:?}");
            assert!(got[0].contains(&format!("store.{key}: ")), "{got:?}");
            assert!(got[0].contains(says), "{got:?}");
            assert!(!got[0].contains("hunter2"), "the password is never repeated: {got:?}");
        }
    }

    #[test]
    fn a_template_is_read_with_its_defaults() {
        let text = use_case(
            "",
            r#"template = { html = "a.html" }"#,
            r#"template = { name = "custom", html = "t/b.html", text = "t/b.txt", subject = "Hi", preheader = "Pre" }"#,
        );
        let uc = parse_use_case(&text, "tpl.toml").unwrap();
        let subject = &uc.actions.dimensions()[1];
        let a = subject.options[0].template.as_ref().unwrap();
        assert_eq!(a.name, "tpl-subject-a");
        assert_eq!(a.html, Path::new("a.html"));
        assert_eq!(
            (a.text.as_ref(), a.subject.as_ref(), a.preheader.as_ref()),
            (None, None, None)
        );
        let b = subject.options[1].template.as_ref().unwrap();
        assert_eq!(
            b,
            &TemplateSpec {
                name: "custom".into(),
                html: "t/b.html".into(),
                text: Some("t/b.txt".into()),
                subject: Some("Hi".into()),
                preheader: Some("Pre".into()),
            }
        );
        assert!(uc.actions.dimensions()[0].options[0].template.is_none());
    }

    #[test]
    fn unknown_template_keys_are_located_with_a_hint() {
        let text = use_case("", r#"template = { htm = "a.html" }"#, "");
        assert_eq!(
            errors(&text),
            [
                "tpl.toml:36:14 dimension[1].options[0].template.html: missing: the HTML body file, relative to the use-case file (e.g. `templates/offer.html`)",
                "tpl.toml:36:16 dimension[1].options[0].template.htm: unknown key; did you mean `html`?",
            ]
        );
    }

    #[test]
    fn a_template_outside_creative_subject_and_custom_dimensions_is_refused() {
        let text = use_case(r#"template = { html = "a.html" }"#, "", "");
        assert_eq!(
            errors(&text),
            [
                "tpl.toml:27:14 dimension[0].options[0].template: only options of creative, subject_line or custom dimensions carry an email `template`; this dimension is of kind `offer`"
            ]
        );
    }

    #[test]
    fn a_template_needs_an_html_file_and_a_table() {
        let text = use_case("", r#"template = { subject = "Hi" }"#, r#"template = "b.html""#);
        assert_eq!(
            errors(&text),
            [
                "tpl.toml:36:14 dimension[1].options[0].template.html: missing: the HTML body file, relative to the use-case file (e.g. `templates/offer.html`)",
                "tpl.toml:40:14 dimension[1].options[1].template: expected a table, found a string",
            ]
        );
        let empty = use_case("", r#"template = { html = " " }"#, "");
        assert_eq!(
            errors(&empty),
            ["tpl.toml:36:23 dimension[1].options[0].template.html: cannot be empty"]
        );
    }

    #[test]
    fn two_options_cannot_share_a_template_name() {
        let text = use_case(
            "",
            r#"template = { name = "same", html = "a.html" }"#,
            r#"template = { name = "same", html = "b.html" }"#,
        );
        assert_eq!(
            errors(&text),
            [
                "tpl.toml:40:23 dimension[1].options[1].template.name: template name `same` is already used on line 36; each option needs its own template"
            ]
        );
    }
}
