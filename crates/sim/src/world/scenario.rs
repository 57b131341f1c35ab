//! Scenario files: parsing with located errors (`file.toml:LINE: field.path`), validation, and
//! resolution of names into the [`Model`].
//!
//! Syntax and shape errors come from the TOML deserialiser (its byte span gives the line, and
//! `serde_path_to_error` the field path); semantic errors (an unknown lever, a category that does not
//! exist, an effect on a stage that cannot see the delivery...) are located by walking the span-aware
//! `toml::de::DeTable` of the same text along the field path of the offending value.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde_json::Value;

use super::Channel;
use super::math::logit;
use super::model::{
    AttrDef, AttrKind, CatRef, ConversionDef, Dist, EffectDef, Factor, Field, LeverDef, Model, NumRef, Source,
    StageDef, TraitDef, TraitKind, VALUE_EFFECTS, Weights, Xform,
};
use super::spec::{
    AttributeSpec, AttributeType, ConversionKind, DistKind, DistSpec, FactorSpec, ScenarioFile, ShapeKind, StageSpec,
    Target,
};
use crate::error::{Error, Result};
use crate::state::WorkspaceSpec;

/// A scenario: the world's population, response model, drift schedule and Braze workspace, parsed
/// and validated from a TOML file (format: `docs/simulator.md`; the default scenario is
/// `crates/sim/scenarios/winback.toml`).
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Scenario name.
    pub name: String,
    /// Seed of everything random.
    pub seed: u64,
    /// Number of customers (override it freely before [`World::new`](super::World::new)).
    pub customers: usize,
    /// Simulated clock at start.
    pub start: Timestamp,
    /// The Braze workspace: API keys, campaigns, canvases, segments, templates.
    pub braze: WorkspaceSpec,
    /// Free text.
    pub description: String,
    /// Days after a delivery within which its outcomes fall (and over which the oracle counts
    /// organic conversions).
    pub horizon_days: u32,
    /// Prefix of every `external_id`.
    pub id_prefix: String,
    pub(crate) model: Arc<Model>,
}

/// The name of the default scenario file in `crates/sim/scenarios/`.
pub const DEFAULT_SCENARIO: &str = "winback.toml";

impl Scenario {
    /// Parses and validates a scenario file.
    ///
    /// # Errors
    ///
    /// [`Error::ReadScenario`] when the file cannot be read; [`Error::Scenario`] with
    /// `file:LINE: field.path` when it is malformed or inconsistent.
    pub fn from_file(path: &Path) -> Result<Scenario> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::ReadScenario {
            path: path.to_path_buf(),
            source,
        })?;
        Scenario::from_toml_str(&text, Some(path))
    }

    /// Parses and validates scenario text (`path` only names it in errors).
    ///
    /// # Errors
    ///
    /// [`Error::Scenario`] with `file:LINE: field.path` (or `line LINE: field.path` without a path).
    pub fn from_toml_str(text: &str, path: Option<&Path>) -> Result<Scenario> {
        let loc = Locator {
            text,
            file: path.map(|p| p.display().to_string()),
        };
        let de = toml::Deserializer::parse(text).map_err(|e| loc.at_span(e.span(), "", e.message()))?;
        let file: ScenarioFile = serde_path_to_error::deserialize(de).map_err(|e| {
            let field = e.path().to_string();
            let inner = e.into_inner();
            let field = if field == "." { String::new() } else { field };
            loc.at_span(inner.span(), &field, inner.message())
        })?;
        compile(file, &loc)
    }

    /// The same scenario with another population size.
    pub fn with_customers(mut self, customers: usize) -> Scenario {
        self.customers = customers;
        self
    }

    /// The hidden traits' names (for reports and tests).
    pub fn trait_names(&self) -> Vec<&str> {
        self.model.traits.iter().map(|t| t.name.as_str()).collect()
    }

    /// The hidden traits' names and descriptions.
    pub fn traits(&self) -> Vec<(&str, &str)> {
        self.model
            .traits
            .iter()
            .map(|t| (t.name.as_str(), t.description.as_str()))
            .collect()
    }

    /// The observable attributes' names, in generation order.
    pub fn attribute_names(&self) -> Vec<&str> {
        self.model.attrs.iter().map(|a| a.name.as_str()).collect()
    }

    /// The levers: name, `Delivery.properties` key and option ids.
    pub fn levers(&self) -> Vec<(&str, &str, Vec<&str>)> {
        self.model
            .levers
            .iter()
            .map(|l| {
                (
                    l.name.as_str(),
                    l.property.as_str(),
                    l.options.iter().map(String::as_str).collect(),
                )
            })
            .collect()
    }

    /// What counts as this world's conversion, as a use case's success metric names it.
    pub fn conversion(&self) -> ConversionEvent {
        let c = &self.model.conversion;
        match c.kind {
            ConversionKind::Purchase => ConversionEvent::Purchase {
                product_id: c.product_id.clone(),
            },
            ConversionKind::CustomEvent => ConversionEvent::CustomEvent {
                name: c.name.clone(),
                value_property: c.value_property.clone(),
            },
        }
    }
}

/// The world's conversion: the one outcome its response model causes (and customers do organically).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConversionEvent {
    /// A purchase of this product, logged at the price paid.
    Purchase {
        /// Product id.
        product_id: String,
    },
    /// A custom event with this name.
    CustomEvent {
        /// Event name.
        name: String,
        /// The event property carrying the conversion's value, when it has one.
        value_property: Option<String>,
    },
}

/// One step of a field path.
#[derive(Clone, Debug)]
enum Seg {
    Key(String),
    Index(usize),
}

/// A field path under construction: `P::k("effect").i(3).k("when")`.
#[derive(Clone, Debug, Default)]
struct P(Vec<Seg>);

impl P {
    fn k(key: &str) -> P {
        P(vec![Seg::Key(key.to_owned())])
    }

    fn key(&self, key: &str) -> P {
        let mut p = self.clone();
        p.0.push(Seg::Key(key.to_owned()));
        p
    }

    fn idx(&self, index: usize) -> P {
        let mut p = self.clone();
        p.0.push(Seg::Index(index));
        p
    }

    fn render(&self) -> String {
        let mut out = String::new();
        for seg in &self.0 {
            match seg {
                Seg::Key(k) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(k);
                }
                Seg::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        out
    }
}

/// Turns spans and field paths into `file:LINE: field` locations.
struct Locator<'t> {
    text: &'t str,
    file: Option<String>,
}

impl Locator<'_> {
    fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end].iter().filter(|b| **b == b'\n').count() + 1
    }

    fn location(&self, line: Option<usize>, field: &str) -> String {
        let place = match (&self.file, line) {
            (Some(f), Some(l)) => format!("{f}:{l}"),
            (Some(f), None) => f.clone(),
            (None, Some(l)) => format!("line {l}"),
            (None, None) => String::new(),
        };
        match (place.is_empty(), field.is_empty()) {
            (true, _) => field.to_owned(),
            (false, true) => place,
            (false, false) => format!("{place}: {field}"),
        }
    }

    fn at_span(&self, span: Option<std::ops::Range<usize>>, field: &str, message: &str) -> Error {
        Error::Scenario {
            location: self.location(span.map(|s| self.line_of(s.start)), field),
            message: message.trim().to_owned(),
        }
    }

    /// An error at the value `path` points to (or the deepest existing part of it).
    fn at(&self, path: &P, message: impl Into<String>) -> Error {
        let line = self.span_of(path).map(|s| self.line_of(s.start));
        Error::Scenario {
            location: self.location(line, &path.render()),
            message: message.into(),
        }
    }

    fn span_of(&self, path: &P) -> Option<std::ops::Range<usize>> {
        let root = toml::de::DeTable::parse(self.text).ok()?;
        let mut span = None;
        let mut table = Some(root.get_ref());
        let mut value: Option<&toml::de::DeValue<'_>> = None;
        for seg in &path.0 {
            let next = match (seg, table, value) {
                (Seg::Key(k), Some(t), _) => t.get(k.as_str()),
                (Seg::Index(i), _, Some(toml::de::DeValue::Array(a))) => a.get(*i),
                _ => None,
            };
            let Some(next) = next else { break };
            span = Some(next.span());
            value = Some(next.get_ref());
            table = next.get_ref().as_table();
        }
        span
    }
}

/// Standard export fields a scenario may generate, and the attribute type each needs (`None`: any).
const STANDARD_FIELDS: &[(&str, Option<AttributeType>)] = &[
    ("attributed_ad", Some(AttributeType::Category)),
    ("attributed_adgroup", Some(AttributeType::Category)),
    ("attributed_campaign", Some(AttributeType::Category)),
    ("attributed_source", Some(AttributeType::Category)),
    ("country", Some(AttributeType::Category)),
    ("created_at", Some(AttributeType::Timestamp)),
    ("email", Some(AttributeType::Boolean)),
    ("email_subscribe", Some(AttributeType::Category)),
    ("gender", Some(AttributeType::Category)),
    ("home_city", Some(AttributeType::Category)),
    ("language", Some(AttributeType::Category)),
    ("phone", Some(AttributeType::Boolean)),
    ("push_subscribe", Some(AttributeType::Category)),
    ("push_tokens", Some(AttributeType::Boolean)),
    ("random_bucket", Some(AttributeType::Number)),
    ("time_zone", Some(AttributeType::Category)),
    ("total_revenue", Some(AttributeType::Number)),
];

/// What a name refers to while resolving.
#[derive(Clone, Copy, Debug)]
enum Named {
    Trait(usize),
    Attr(usize),
}

struct Resolver<'a> {
    loc: &'a Locator<'a>,
    traits: Vec<TraitDef>,
    attrs: Vec<AttrDef>,
    names: BTreeMap<String, Named>,
    levers: Vec<LeverDef>,
}

fn compile(file: ScenarioFile, loc: &Locator<'_>) -> Result<Scenario> {
    let start: Timestamp = file
        .start
        .parse()
        .map_err(|e| loc.at(&P::k("start"), format!("not an RFC 3339 instant: {e}")))?;
    if !(4..=365).contains(&file.horizon_days) {
        return Err(loc.at(&P::k("horizon_days"), "must be between 4 and 365 days"));
    }
    let default_tz = TimeZone::get(&file.time_zone)
        .map_err(|e| loc.at(&P::k("time_zone"), format!("unknown IANA time zone: {e}")))?;
    if file.id_prefix.is_empty() || file.id_prefix.len() > 32 || !file.id_prefix.is_ascii() {
        return Err(loc.at(&P::k("id_prefix"), "must be 1 to 32 ASCII characters"));
    }

    let mut r = Resolver {
        loc,
        traits: Vec::new(),
        attrs: Vec::new(),
        names: BTreeMap::new(),
        levers: Vec::new(),
    };
    for (i, t) in file.traits.iter().enumerate() {
        r.add_trait(i, t)?;
    }
    for (i, a) in file.attributes.iter().enumerate() {
        r.add_attribute(i, a)?;
    }
    for (i, l) in file.levers.iter().enumerate() {
        r.add_lever(i, l)?;
    }

    let mut tz_attr = None;
    for (i, a) in r.attrs.iter().enumerate() {
        if a.field == Field::Standard("time_zone".into())
            && let AttrKind::Category { categories, .. } = &a.kind
        {
            let mut zones = Vec::with_capacity(categories.len());
            for c in categories {
                let tz = TimeZone::get(c).map_err(|e| {
                    let spec = &file.attributes[i];
                    let row = spec
                        .by
                        .iter()
                        .flatten()
                        .find(|(_, row)| row.contains_key(c))
                        .map(|(g, _)| g);
                    let path = match row {
                        Some(g) => P::k("attribute").idx(i).key("by").key(g).key(c),
                        None => P::k("attribute").idx(i).key("categories").key(c),
                    };
                    loc.at(&path, format!("category {c:?} is not an IANA time zone: {e}"))
                })?;
                zones.push(tz);
            }
            tz_attr = Some((i, zones));
        }
    }

    let mut reach = Vec::new();
    for (channel, factors) in &file.reach {
        let name = channel_name(*channel);
        let path = P::k("reach").key(&name);
        let mut out = Vec::new();
        for (j, f) in factors.iter().enumerate() {
            let fp = path.idx(j);
            if f.attribute.is_none() && f.trait_name.is_none() {
                return Err(loc.at(&fp, "a reach condition reads an `attribute` or a `trait`"));
            }
            out.push(r.factor(f, &fp)?);
        }
        reach.push((*channel, out));
    }

    let conversion = compile_conversion(&file, loc)?;
    let stages = [
        stage(&file.response.open, &P::k("response").key("open"), loc)?,
        stage(&file.response.click, &P::k("response").key("click"), loc)?,
        stage(&file.response.convert, &P::k("response").key("convert"), loc)?,
        stage(&file.response.unsubscribe, &P::k("response").key("unsubscribe"), loc)?,
        stage(&file.response.organic, &P::k("response").key("organic"), loc)?,
    ];
    let mut stages = stages;

    let mut effects: [Vec<EffectDef>; 6] = Default::default();
    let mut effect_slots: BTreeMap<String, Vec<(usize, usize)>> = BTreeMap::new();
    for (i, e) in file.effects.iter().enumerate() {
        let path = P::k("effect").idx(i);
        if !e.weight.is_finite() {
            return Err(loc.at(&path.key("weight"), "must be a finite number"));
        }
        let mut factors = Vec::with_capacity(e.when.len());
        for (j, f) in e.when.iter().enumerate() {
            let fp = path.key("when").idx(j);
            let factor = r.factor(f, &fp)?;
            if e.target == Target::Organic && depends_on_delivery(&factor) {
                return Err(loc.at(
                    &fp,
                    "an organic effect cannot depend on a delivery (lever, channel, hour, fatigue)",
                ));
            }
            factors.push(factor);
        }
        let slot = target_index(e.target);
        if let Some(name) = &e.name {
            effect_slots
                .entry(name.clone())
                .or_default()
                .push((slot, effects[slot].len()));
        }
        effects[slot].push(EffectDef {
            weight: e.weight,
            factors,
            drift: Vec::new(),
        });
    }

    for (i, d) in file.drift.iter().enumerate() {
        let path = P::k("drift").idx(i);
        let from: Date = d
            .from
            .parse()
            .map_err(|e| loc.at(&path.key("from"), format!("not a date (YYYY-MM-DD): {e}")))?;
        match (&d.effect, d.scale, d.target, d.shift) {
            (Some(name), Some(scale), None, None) => {
                if !scale.is_finite() {
                    return Err(loc.at(&path.key("scale"), "must be a finite number"));
                }
                let slots = effect_slots
                    .get(name)
                    .ok_or_else(|| loc.at(&path.key("effect"), format!("no effect is named {name:?}")))?;
                for (slot, index) in slots {
                    effects[*slot][*index].drift.push((from, scale));
                }
            }
            (None, None, Some(target), Some(shift)) => {
                if target == Target::Value || !shift.is_finite() {
                    return Err(loc.at(
                        &path.key("target"),
                        "shift the base of open, click, convert, unsubscribe or organic by a finite number",
                    ));
                }
                stages[target_index(target)].drift.push((from, shift));
            }
            _ => {
                return Err(loc.at(&path, "give either `effect` and `scale`, or `target` and `shift`"));
            }
        }
    }

    let model = Model {
        traits: r.traits,
        attrs: r.attrs,
        reach,
        levers: r.levers,
        conversion,
        stages,
        effects,
        delays: file.delays.clone(),
        default_tz,
        tz_attr,
    };
    check_delays(&model, loc)?;
    check_target_segments(&file.braze, loc)?;
    Ok(Scenario {
        name: file.name,
        seed: file.seed,
        customers: file.customers,
        start,
        braze: file.braze,
        description: file.description,
        horizon_days: file.horizon_days,
        id_prefix: file.id_prefix,
        model: Arc::new(model),
    })
}

fn check_delays(model: &Model, loc: &Locator<'_>) -> Result<()> {
    let d = &model.delays;
    for (key, v) in [
        ("open_hours", d.open_hours),
        ("click_hours", d.click_hours),
        ("convert_days", d.convert_days),
        ("unsubscribe_days", d.unsubscribe_days),
    ] {
        if !(v.is_finite() && v > 0.0) {
            return Err(loc.at(&P::k("delays").key(key), "must be a positive number"));
        }
    }
    Ok(())
}

/// Every campaign's and canvas's target segment is one of the workspace's segments.
fn check_target_segments(braze: &WorkspaceSpec, loc: &Locator<'_>) -> Result<()> {
    let known = |id: &str| braze.segments.iter().any(|s| s.id == id);
    let targets = braze
        .campaigns
        .iter()
        .enumerate()
        .map(|(i, c)| (P::k("braze").key("campaigns").idx(i), c.segment.as_deref()))
        .chain(
            braze
                .canvases
                .iter()
                .enumerate()
                .map(|(i, c)| (P::k("braze").key("canvases").idx(i), c.segment.as_deref())),
        );
    for (path, segment) in targets {
        if let Some(id) = segment
            && !known(id)
        {
            return Err(loc.at(&path.key("segment"), format!("no segment `{id}` in [[braze.segments]]")));
        }
    }
    Ok(())
}

fn channel_name(channel: Channel) -> String {
    serde_json::to_value(channel)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn target_index(target: Target) -> usize {
    match target {
        Target::Open => 0,
        Target::Click => 1,
        Target::Convert => 2,
        Target::Unsubscribe => 3,
        Target::Organic => 4,
        Target::Value => VALUE_EFFECTS,
    }
}

fn depends_on_delivery(f: &Factor) -> bool {
    matches!(
        f,
        Factor::Lever { .. }
            | Factor::Channel(_)
            | Factor::MatchesChannel { .. }
            | Factor::MatchesLever { .. }
            | Factor::LocalHours(_)
            | Factor::InActiveHours { .. }
            | Factor::RecentSends { .. }
    )
}

fn stage(spec: &StageSpec, path: &P, loc: &Locator<'_>) -> Result<StageDef> {
    if !spec.base.is_finite() {
        return Err(loc.at(&path.key("base"), "must be a finite number"));
    }
    let (p_max, k) = match spec.shape {
        ShapeKind::Logistic => {
            if spec.p_max.is_some() || spec.k.is_some() {
                return Err(loc.at(path, "`p_max` and `k` belong to `shape = \"saturating\"`"));
            }
            (1.0, 1.0)
        }
        ShapeKind::Saturating => {
            let p_max = spec
                .p_max
                .ok_or_else(|| loc.at(path, "a saturating stage needs `p_max`"))?;
            let k = spec.k.ok_or_else(|| loc.at(path, "a saturating stage needs `k`"))?;
            if !(p_max > 0.0 && p_max <= 1.0) {
                return Err(loc.at(&path.key("p_max"), "must be in (0, 1]"));
            }
            if !(k.is_finite() && k > 0.0) {
                return Err(loc.at(&path.key("k"), "must be positive"));
            }
            (p_max, k)
        }
    };
    Ok(StageDef {
        shape: spec.shape,
        base: spec.base,
        p_max,
        k,
        drift: Vec::new(),
    })
}

fn compile_conversion(file: &ScenarioFile, loc: &Locator<'_>) -> Result<ConversionDef> {
    let c = &file.conversion;
    let path = P::k("conversion");
    let (name, product_id) = match c.kind {
        ConversionKind::Purchase => {
            if c.name.is_some() || c.value_property.is_some() || !c.properties.is_empty() {
                return Err(loc.at(&path, "a purchase has `product_id`, `currency` and `value` only"));
            }
            let product = c
                .product_id
                .clone()
                .ok_or_else(|| loc.at(&path, "a purchase needs `product_id`"))?;
            if c.value.is_none() {
                return Err(loc.at(&path, "a purchase needs a price distribution `value`"));
            }
            (String::new(), product)
        }
        ConversionKind::CustomEvent => {
            if c.product_id.is_some() {
                return Err(loc.at(
                    &path.key("product_id"),
                    "a custom event has a `name`, not a `product_id`",
                ));
            }
            let name = c
                .name
                .clone()
                .ok_or_else(|| loc.at(&path, "a custom event needs `name`"))?;
            (name, String::new())
        }
    };
    if c.currency.len() != 3 || !c.currency.chars().all(|ch| ch.is_ascii_uppercase()) {
        return Err(loc.at(&path.key("currency"), "must be an ISO 4217 code such as \"USD\""));
    }
    let value = match &c.value {
        Some(v) => {
            let vp = path.key("value");
            let clamped = (v.min.is_some() || v.max.is_some()) && v.kind != DistKind::Uniform;
            if clamped || v.integer {
                return Err(loc.at(
                    &vp,
                    "a conversion value has no clamps or rounding (its mean must be exact)",
                ));
            }
            if v.kind == DistKind::Normal {
                return Err(loc.at(
                    &vp.key("kind"),
                    "use fixed, uniform or lognormal (values must stay positive)",
                ));
            }
            let d = dist(v, &vp, loc)?;
            if d.a < 0.0 || (d.kind == DistKind::Uniform && d.b < 0.0) {
                return Err(loc.at(&vp, "values must not be negative"));
            }
            d
        }
        None => Dist {
            kind: DistKind::Fixed,
            a: 0.0,
            b: 0.0,
            min: None,
            max: None,
            integer: false,
        },
    };
    Ok(ConversionDef {
        kind: c.kind,
        name,
        product_id,
        currency: c.currency.clone(),
        value,
        value_property: c.value_property.clone(),
        properties: c.properties.clone(),
    })
}

fn dist(spec: &DistSpec, path: &P, loc: &Locator<'_>) -> Result<Dist> {
    let need = |v: Option<f64>, key: &str| -> Result<f64> {
        match v {
            Some(x) if x.is_finite() => Ok(x),
            Some(_) => Err(loc.at(&path.key(key), "must be a finite number")),
            None => Err(loc.at(
                path,
                format!("a {:?} distribution needs `{key}`", spec.kind).to_lowercase(),
            )),
        }
    };
    let forbid = |present: bool, key: &str| -> Result<()> {
        if present {
            Err(loc.at(
                &path.key(key),
                format!("does not belong to a {:?} distribution", spec.kind).to_lowercase(),
            ))
        } else {
            Ok(())
        }
    };
    let (a, b, min, max) = match spec.kind {
        DistKind::Normal => {
            forbid(spec.median.is_some(), "median")?;
            forbid(spec.sigma.is_some(), "sigma")?;
            forbid(spec.value.is_some(), "value")?;
            let sd = need(spec.sd, "sd")?;
            if sd < 0.0 {
                return Err(loc.at(&path.key("sd"), "must not be negative"));
            }
            (need(spec.mean, "mean")?, sd, spec.min, spec.max)
        }
        DistKind::Lognormal => {
            forbid(spec.mean.is_some(), "mean")?;
            forbid(spec.sd.is_some(), "sd")?;
            forbid(spec.value.is_some(), "value")?;
            let median = need(spec.median, "median")?;
            let sigma = need(spec.sigma, "sigma")?;
            if median <= 0.0 || sigma < 0.0 {
                return Err(loc.at(path, "a lognormal needs median > 0 and sigma >= 0"));
            }
            (median, sigma, spec.min, spec.max)
        }
        DistKind::Uniform => {
            forbid(spec.mean.is_some(), "mean")?;
            forbid(spec.sd.is_some(), "sd")?;
            forbid(spec.median.is_some(), "median")?;
            forbid(spec.sigma.is_some(), "sigma")?;
            forbid(spec.value.is_some(), "value")?;
            let lo = need(spec.min, "min")?;
            let hi = need(spec.max, "max")?;
            if hi < lo {
                return Err(loc.at(&path.key("max"), "must not be below `min`"));
            }
            (lo, hi, None, None)
        }
        DistKind::Fixed => {
            for (present, key) in [
                (spec.mean.is_some(), "mean"),
                (spec.sd.is_some(), "sd"),
                (spec.median.is_some(), "median"),
                (spec.sigma.is_some(), "sigma"),
                (spec.min.is_some(), "min"),
                (spec.max.is_some(), "max"),
            ] {
                forbid(present, key)?;
            }
            (need(spec.value, "value")?, 0.0, None, None)
        }
    };
    if let (Some(lo), Some(hi)) = (min, max)
        && hi < lo
    {
        return Err(loc.at(&path.key("max"), "must not be below `min`"));
    }
    Ok(Dist {
        kind: spec.kind,
        a,
        b,
        min,
        max,
        integer: spec.integer,
    })
}

fn weights(map: &BTreeMap<String, f64>, path: &P, loc: &Locator<'_>) -> Result<(Vec<String>, Vec<f64>)> {
    if map.is_empty() || map.len() > 255 {
        return Err(loc.at(path, "needs 1 to 255 categories"));
    }
    let total: f64 = map.values().sum();
    for (k, w) in map {
        if !(w.is_finite() && *w >= 0.0) {
            return Err(loc.at(&path.key(k), "weights must be finite and not negative"));
        }
    }
    if total <= 0.0 {
        return Err(loc.at(path, "weights must not all be zero"));
    }
    Ok((map.keys().cloned().collect(), map.values().map(|w| w / total).collect()))
}

impl Resolver<'_> {
    fn claim(&mut self, name: &str, what: Named, path: &P) -> Result<()> {
        if name.is_empty() || name.contains('.') {
            return Err(self.loc.at(&path.key("name"), "names are non-empty and contain no '.'"));
        }
        if self.names.insert(name.to_owned(), what).is_some() {
            return Err(self
                .loc
                .at(&path.key("name"), format!("{name:?} is already a trait or attribute")));
        }
        Ok(())
    }

    fn add_trait(&mut self, i: usize, t: &super::spec::TraitSpec) -> Result<()> {
        let path = P::k("trait").idx(i);
        self.claim(&t.name, Named::Trait(self.traits.len()), &path)?;
        let kind = match &t.categories {
            None => {
                if !t.windows.is_empty() {
                    return Err(self
                        .loc
                        .at(&path.key("windows"), "windows belong to a categorical trait"));
                }
                TraitKind::Scalar
            }
            Some(map) => {
                let (categories, weights) = weights(map, &path.key("categories"), self.loc)?;
                let mut windows = vec![None; categories.len()];
                for (k, w) in &t.windows {
                    let Some(pos) = categories.iter().position(|c| c == k) else {
                        return Err(self
                            .loc
                            .at(&path.key("windows").key(k), format!("{k:?} is not a category")));
                    };
                    if !w.iter().all(|h| (0.0..=24.0).contains(h)) {
                        return Err(self.loc.at(&path.key("windows").key(k), "hours are between 0 and 24"));
                    }
                    windows[pos] = Some(*w);
                }
                TraitKind::Categorical {
                    categories,
                    weights,
                    windows,
                }
            }
        };
        self.traits.push(TraitDef {
            name: t.name.clone(),
            description: t.description.clone(),
            kind,
        });
        Ok(())
    }

    fn add_attribute(&mut self, i: usize, a: &AttributeSpec) -> Result<()> {
        let path = P::k("attribute").idx(i);
        let field = self.field(a, &path)?;
        if self.attrs.iter().any(|other| other.field == field) {
            return Err(self
                .loc
                .at(&path.key("field"), "another attribute already fills this field"));
        }
        let allowed: &[&str] = match a.kind {
            AttributeType::Number => &["dist", "shift"],
            AttributeType::Category => &["categories", "given", "by", "category_shift"],
            AttributeType::Boolean => &["p", "shift"],
            AttributeType::Timestamp => &["days_ago", "shift"],
            AttributeType::Event => &["count", "last_days_ago", "shift"],
        };
        let present = [
            ("dist", a.dist.is_some()),
            ("categories", a.categories.is_some()),
            ("given", a.given.is_some()),
            ("by", a.by.is_some()),
            ("p", a.p.is_some()),
            ("days_ago", a.days_ago.is_some()),
            ("count", a.count.is_some()),
            ("last_days_ago", a.last_days_ago.is_some()),
            ("shift", !a.shift.is_empty()),
            ("category_shift", !a.category_shift.is_empty()),
        ];
        for (key, is) in present {
            if is && !allowed.contains(&key) {
                return Err(self.loc.at(
                    &path.key(key),
                    format!("does not belong to a {:?} attribute", a.kind).to_lowercase(),
                ));
            }
        }
        let required = |v: Option<&'_ DistSpec>, key: &str| -> Result<DistSpec> {
            v.cloned().ok_or_else(|| {
                self.loc
                    .at(&path, format!("a {:?} attribute needs `{key}`", a.kind).to_lowercase())
            })
        };
        let kind = match a.kind {
            AttributeType::Number => AttrKind::Number {
                dist: dist(&required(a.dist.as_ref(), "dist")?, &path.key("dist"), self.loc)?,
                shifts: self.shifts(&a.shift, &path.key("shift"))?,
            },
            AttributeType::Timestamp => AttrKind::Timestamp {
                dist: dist(
                    &required(a.days_ago.as_ref(), "days_ago")?,
                    &path.key("days_ago"),
                    self.loc,
                )?,
                shifts: self.shifts(&a.shift, &path.key("shift"))?,
            },
            AttributeType::Event => AttrKind::Event {
                count: dist(&required(a.count.as_ref(), "count")?, &path.key("count"), self.loc)?,
                last: dist(
                    &required(a.last_days_ago.as_ref(), "last_days_ago")?,
                    &path.key("last_days_ago"),
                    self.loc,
                )?,
                shifts: self.shifts(&a.shift, &path.key("shift"))?,
            },
            AttributeType::Boolean => {
                let p = a.p.ok_or_else(|| self.loc.at(&path, "a boolean attribute needs `p`"))?;
                if !(0.0..=1.0).contains(&p) {
                    return Err(self.loc.at(&path.key("p"), "must be a probability in [0, 1]"));
                }
                AttrKind::Boolean {
                    logit: logit(p),
                    shifts: self.shifts(&a.shift, &path.key("shift"))?,
                }
            }
            AttributeType::Category => self.category(a, &path)?,
        };
        self.claim(&a.name, Named::Attr(self.attrs.len()), &path)?;
        self.attrs.push(AttrDef {
            name: a.name.clone(),
            field,
            kind,
        });
        Ok(())
    }

    fn field(&self, a: &AttributeSpec, path: &P) -> Result<Field> {
        let fp = path.key("field");
        let Some(raw) = &a.field else {
            if a.kind == AttributeType::Event {
                return Err(self.loc.at(
                    path,
                    "an event attribute needs `field = \"custom_events.<name>\"` or `\"purchases.<product_id>\"`",
                ));
            }
            return Ok(Field::Custom(a.name.clone()));
        };
        let field = if let Some(key) = raw.strip_prefix("custom_attributes.") {
            Field::Custom(key.to_owned())
        } else if let Some(name) = raw.strip_prefix("custom_events.") {
            Field::Entry {
                purchase: false,
                name: name.to_owned(),
            }
        } else if let Some(name) = raw.strip_prefix("purchases.") {
            Field::Entry {
                purchase: true,
                name: name.to_owned(),
            }
        } else {
            let Some((_, need)) = STANDARD_FIELDS.iter().find(|(f, _)| f == raw) else {
                return Err(self.loc.at(&fp, format!(
                    "{raw:?} is not a field a scenario may generate (custom_attributes.<key>, custom_events.<name>, purchases.<id> or one of: {})",
                    STANDARD_FIELDS.iter().map(|(f, _)| *f).collect::<Vec<_>>().join(", ")
                )));
            };
            if need.is_some_and(|t| t != a.kind) {
                return Err(self.loc.at(
                    &fp,
                    format!("{raw} must be a {:?} attribute", need.unwrap_or(a.kind)).to_lowercase(),
                ));
            }
            Field::Standard(raw.clone())
        };
        match (&field, a.kind) {
            (Field::Entry { name, .. }, _) if name.is_empty() || name.contains('.') => {
                Err(self.loc.at(&fp, "an entry name is non-empty and has no '.'"))
            }
            (Field::Custom(key), _) if key.is_empty() || key.contains('.') => {
                Err(self.loc.at(&fp, "a custom attribute key is non-empty and has no '.'"))
            }
            (Field::Entry { .. }, AttributeType::Event) => Ok(field),
            (Field::Entry { .. }, _) => Err(self
                .loc
                .at(&fp, "custom_events / purchases entries are `type = \"event\"`")),
            (_, AttributeType::Event) => Err(self.loc.at(
                &fp,
                "an event attribute lives in custom_events.<name> or purchases.<id>",
            )),
            _ => Ok(field),
        }
    }

    fn category(&self, a: &AttributeSpec, path: &P) -> Result<AttrKind> {
        let (categories, weights) = match (&a.categories, &a.given, &a.by) {
            (Some(map), None, None) => {
                let (cats, w) = weights(map, &path.key("categories"), self.loc)?;
                (cats, Weights::Fixed(w))
            }
            (None, Some(given), Some(by)) => {
                let gp = path.key("given");
                let given_ref = self.cat_ref(given, &gp)?;
                let given_cats = self.categories_of(given_ref);
                let own: BTreeSet<String> = by.values().flat_map(|row| row.keys().cloned()).collect();
                if own.is_empty() || own.len() > 255 {
                    return Err(self.loc.at(&path.key("by"), "needs 1 to 255 categories"));
                }
                let own: Vec<String> = own.into_iter().collect();
                let mut table = Vec::with_capacity(given_cats.len());
                for g in &given_cats {
                    let row = by.get(g).ok_or_else(|| {
                        self.loc
                            .at(&path.key("by"), format!("no weights for {given}'s category {g:?}"))
                    })?;
                    let mut full = BTreeMap::new();
                    for c in &own {
                        full.insert(c.clone(), row.get(c).copied().unwrap_or(0.0));
                    }
                    table.push(weights(&full, &path.key("by").key(g), self.loc)?.1);
                }
                if let Some(extra) = by.keys().find(|k| !given_cats.contains(k)) {
                    return Err(self.loc.at(
                        &path.key("by").key(extra),
                        format!("{extra:?} is not a category of {given}"),
                    ));
                }
                (
                    own,
                    Weights::Given {
                        given: given_ref,
                        table,
                    },
                )
            }
            _ => {
                return Err(self
                    .loc
                    .at(path, "a category attribute needs `categories`, or `given` with `by`"));
            }
        };
        let mut shifts = vec![Vec::new(); categories.len()];
        for (cat, map) in &a.category_shift {
            let cp = path.key("category_shift").key(cat);
            let Some(pos) = categories.iter().position(|c| c == cat) else {
                return Err(self.loc.at(&cp, format!("{cat:?} is not a category of this attribute")));
            };
            shifts[pos] = self.shifts(map, &cp)?;
        }
        Ok(AttrKind::Category {
            categories,
            weights,
            shifts,
        })
    }

    fn categories_of(&self, r: CatRef) -> Vec<String> {
        match r {
            CatRef::Trait(t) => match &self.traits[t].kind {
                TraitKind::Categorical { categories, .. } => categories.clone(),
                TraitKind::Scalar => Vec::new(),
            },
            CatRef::Attr(a) => match &self.attrs[a].kind {
                AttrKind::Category { categories, .. } => categories.clone(),
                AttrKind::Boolean { .. } => vec!["false".into(), "true".into()],
                _ => Vec::new(),
            },
        }
    }

    fn cat_ref(&self, name: &str, path: &P) -> Result<CatRef> {
        match self.names.get(name) {
            Some(Named::Trait(t)) if matches!(self.traits[*t].kind, TraitKind::Categorical { .. }) => {
                Ok(CatRef::Trait(*t))
            }
            Some(Named::Attr(a))
                if matches!(
                    self.attrs[*a].kind,
                    AttrKind::Category { .. } | AttrKind::Boolean { .. }
                ) =>
            {
                Ok(CatRef::Attr(*a))
            }
            Some(_) => Err(self.loc.at(path, format!("{name:?} is not categorical"))),
            None => Err(self
                .loc
                .at(path, format!("{name:?} is not a trait or an earlier attribute"))),
        }
    }

    /// Resolves shift sources: `name` (scalar trait / numeric attribute latent, boolean attribute
    /// indicator) or `name.category`.
    fn shifts(&self, map: &BTreeMap<String, f64>, path: &P) -> Result<Vec<(Source, f64)>> {
        let mut out = Vec::with_capacity(map.len());
        for (key, w) in map {
            let kp = path.key(key);
            if !w.is_finite() {
                return Err(self.loc.at(&kp, "must be a finite number"));
            }
            let source = if let Some((name, cat)) = key.split_once('.') {
                let r = self.cat_ref(name, &kp)?;
                let cats = self.categories_of(r);
                let pos = cats
                    .iter()
                    .position(|c| c == cat)
                    .ok_or_else(|| self.loc.at(&kp, format!("{cat:?} is not a category of {name}")))?;
                Source::Is(r, u8::try_from(pos).unwrap_or(u8::MAX))
            } else {
                match self.names.get(key) {
                    Some(Named::Trait(t)) if matches!(self.traits[*t].kind, TraitKind::Scalar) => Source::Latent(*t),
                    Some(Named::Attr(a)) => match self.attrs[*a].kind {
                        AttrKind::Number { .. } | AttrKind::Timestamp { .. } | AttrKind::Event { .. } => {
                            Source::Latent(self.traits.len() + a)
                        }
                        AttrKind::Boolean { .. } => Source::Is(CatRef::Attr(*a), 1),
                        AttrKind::Category { .. } => {
                            return Err(self.loc.at(&kp, format!("{key} is categorical: use {key}.<category>")));
                        }
                    },
                    Some(Named::Trait(_)) => {
                        return Err(self.loc.at(&kp, format!("{key} is categorical: use {key}.<category>")));
                    }
                    None => {
                        return Err(self
                            .loc
                            .at(&kp, format!("{key:?} is not a trait or an earlier attribute")));
                    }
                }
            };
            out.push((source, *w));
        }
        Ok(out)
    }

    fn add_lever(&mut self, i: usize, l: &super::spec::LeverSpec) -> Result<()> {
        let path = P::k("lever").idx(i);
        if self.levers.iter().any(|other| other.name == l.name) {
            return Err(self
                .loc
                .at(&path.key("name"), format!("lever {:?} is declared twice", l.name)));
        }
        if l.options.is_empty() || l.options.len() > usize::from(u16::MAX) {
            return Err(self.loc.at(&path.key("options"), "needs at least one option"));
        }
        let mut discount = Vec::new();
        let mut cost = Vec::new();
        for (id, o) in &l.options {
            let op = path.key("options").key(id);
            if !(0.0..1.0).contains(&o.discount) {
                return Err(self.loc.at(&op.key("discount"), "a discount is a fraction in [0, 1)"));
            }
            if !(o.cost_per_conversion.is_finite() && o.cost_per_conversion >= 0.0) {
                return Err(self.loc.at(&op.key("cost_per_conversion"), "must not be negative"));
            }
            discount.push(o.discount);
            cost.push(o.cost_per_conversion);
        }
        self.levers.push(LeverDef {
            name: l.name.clone(),
            property: l.property.clone().unwrap_or_else(|| l.name.clone()),
            options: l.options.keys().cloned().collect(),
            discount,
            cost,
        });
        Ok(())
    }

    fn factor(&self, f: &FactorSpec, path: &P) -> Result<Factor> {
        let subjects = [
            f.lever.is_some(),
            f.channel.is_some(),
            f.trait_name.is_some(),
            f.attribute.is_some(),
            f.local_hours.is_some(),
            f.in_active_hours.is_some(),
            f.weekday.is_some(),
            f.recent_sends.is_some(),
        ];
        if subjects.iter().filter(|s| **s).count() != 1 {
            return Err(self.loc.at(
                path,
                "a factor has exactly one of lever, channel, trait, attribute, local_hours, in_active_hours, weekday, recent_sends",
            ));
        }
        let categorical_mods = f.is.is_some() || f.one_of.is_some() || f.matches.is_some();
        let numeric_mods =
            f.above.is_some() || f.below.is_some() || f.center.is_some() || f.scale.is_some() || f.cap.is_some();
        let no_mods = |what: &str| -> Result<()> {
            if categorical_mods || numeric_mods {
                Err(self.loc.at(
                    path,
                    format!("{what} takes no is/in/matches/above/below/center/scale/cap"),
                ))
            } else {
                Ok(())
            }
        };
        if let Some(lever) = &f.lever {
            let lp = path.key("lever");
            let index = self
                .levers
                .iter()
                .position(|l| &l.name == lever)
                .ok_or_else(|| self.loc.at(&lp, format!("no lever is named {lever:?}")))?;
            if numeric_mods || f.matches.is_some() {
                return Err(self.loc.at(path, "a lever factor takes `is` or `in` only"));
            }
            let values = self.values(f, path)?;
            let mut options = Vec::new();
            for (v, vp) in values {
                let id = v.as_str().ok_or_else(|| self.loc.at(&vp, "option ids are strings"))?;
                let pos = self.levers[index]
                    .options
                    .iter()
                    .position(|o| o == id)
                    .ok_or_else(|| self.loc.at(&vp, format!("{id:?} is not an option of lever {lever}")))?;
                options.push(u16::try_from(pos).unwrap_or(u16::MAX));
            }
            return Ok(Factor::Lever { lever: index, options });
        }
        if let Some(channels) = &f.channel {
            no_mods("a channel factor")?;
            if channels.is_empty() {
                return Err(self.loc.at(&path.key("channel"), "list at least one channel"));
            }
            return Ok(Factor::Channel(channels.clone()));
        }
        if let Some(hours) = f.local_hours {
            no_mods("a local_hours factor")?;
            if !hours.iter().all(|h| (0.0..=24.0).contains(h)) {
                return Err(self.loc.at(&path.key("local_hours"), "hours are between 0 and 24"));
            }
            return Ok(Factor::LocalHours(hours));
        }
        if let Some(name) = &f.in_active_hours {
            no_mods("an in_active_hours factor")?;
            let ip = path.key("in_active_hours");
            let windows = match self.names.get(name) {
                Some(Named::Trait(t)) => match &self.traits[*t].kind {
                    TraitKind::Categorical { windows, .. } if windows.iter().any(Option::is_some) => {
                        (*t, windows.clone())
                    }
                    _ => return Err(self.loc.at(&ip, format!("trait {name} has no `windows`"))),
                },
                _ => return Err(self.loc.at(&ip, format!("{name:?} is not a trait"))),
            };
            return Ok(Factor::InActiveHours {
                trait_index: windows.0,
                windows: windows.1,
            });
        }
        if let Some(days) = &f.weekday {
            no_mods("a weekday factor")?;
            let mask = days.iter().fold(0u8, |m, d| m | (1 << d.monday_zero()));
            return Ok(Factor::Weekday(mask));
        }
        if let Some(on) = f.recent_sends {
            if !on
                || categorical_mods
                || f.above.is_some()
                || f.below.is_some()
                || f.center.is_some()
                || f.scale.is_some()
            {
                return Err(self.loc.at(path, "write `recent_sends = true` with an optional `cap`"));
            }
            return Ok(Factor::RecentSends {
                cap: f.cap.unwrap_or(f64::INFINITY),
            });
        }
        let (name, sp) = match (&f.trait_name, &f.attribute) {
            (Some(t), None) => (t, path.key("trait")),
            (None, Some(a)) => (a, path.key("attribute")),
            _ => return Err(self.loc.at(path, "a factor reads one trait or one attribute")),
        };
        let named = *self
            .names
            .get(name)
            .ok_or_else(|| self.loc.at(&sp, format!("no trait or attribute is named {name:?}")))?;
        match (&f.trait_name, named) {
            (Some(_), Named::Attr(_)) => return Err(self.loc.at(&sp, format!("{name} is an attribute, not a trait"))),
            (None, Named::Trait(_)) => return Err(self.loc.at(&sp, format!("{name} is a trait, not an attribute"))),
            _ => {}
        }
        let (numeric, categorical) = match named {
            Named::Trait(t) => match self.traits[t].kind {
                TraitKind::Scalar => (Some(NumRef::Trait(t)), None),
                TraitKind::Categorical { .. } => (None, Some(CatRef::Trait(t))),
            },
            Named::Attr(a) => match self.attrs[a].kind {
                AttrKind::Boolean { .. } => {
                    if categorical_mods {
                        (None, Some(CatRef::Attr(a)))
                    } else {
                        (Some(NumRef::Attr(a)), None)
                    }
                }
                AttrKind::Category { .. } => (None, Some(CatRef::Attr(a))),
                _ => (Some(NumRef::Attr(a)), None),
            },
        };
        if let Some(subject) = numeric {
            if categorical_mods {
                return Err(self
                    .loc
                    .at(path, format!("{name} is numeric: use above/below/center/scale/cap")));
            }
            let scale = f.scale.unwrap_or(1.0);
            if !(scale.is_finite() && scale != 0.0) {
                return Err(self.loc.at(&path.key("scale"), "must be a finite non-zero number"));
            }
            let xform = Xform {
                cap: f.cap,
                above: f.above,
                below: f.below,
                center: f.center.unwrap_or(0.0),
                scale,
            };
            return Ok(Factor::Numeric { subject, xform });
        }
        let Some(subject) = categorical else {
            return Err(self.loc.at(&sp, format!("{name} cannot be read by a factor")));
        };
        if numeric_mods {
            return Err(self.loc.at(path, format!("{name} is categorical: use is/in/matches")));
        }
        let cats = self.categories_of(subject);
        if let Some(target) = &f.matches {
            if f.is.is_some() || f.one_of.is_some() {
                return Err(self.loc.at(path, "`matches` stands alone"));
            }
            let mp = path.key("matches");
            if target == "channel" {
                let map: Vec<Option<Channel>> = cats
                    .iter()
                    .map(|c| serde_json::from_value(Value::String(c.clone())).ok())
                    .collect();
                if map.iter().all(Option::is_none) {
                    return Err(self.loc.at(&mp, format!("no category of {name} names a channel")));
                }
                return Ok(Factor::MatchesChannel { subject, map });
            }
            let lever = self.levers.iter().position(|l| &l.name == target).ok_or_else(|| {
                self.loc.at(
                    &mp,
                    format!("`matches` takes \"channel\" or a lever name, not {target:?}"),
                )
            })?;
            let options = &self.levers[lever].options;
            let map: Vec<Option<u16>> = cats
                .iter()
                .map(|c| options.iter().position(|o| o == c).and_then(|p| u16::try_from(p).ok()))
                .collect();
            if map.iter().all(Option::is_none) {
                return Err(self
                    .loc
                    .at(&mp, format!("no category of {name} is an option of lever {target}")));
            }
            return Ok(Factor::MatchesLever { subject, lever, map });
        }
        let mut categories = Vec::new();
        for (v, vp) in self.values(f, path)? {
            let label = match &v {
                Value::String(s) => s.clone(),
                Value::Bool(b) => b.to_string(),
                _ => return Err(self.loc.at(&vp, "categories are strings (booleans: true/false)")),
            };
            let pos = cats
                .iter()
                .position(|c| *c == label)
                .ok_or_else(|| self.loc.at(&vp, format!("{label:?} is not a category of {name}")))?;
            categories.push(u8::try_from(pos).unwrap_or(u8::MAX));
        }
        Ok(Factor::Is { subject, categories })
    }

    /// The values of `is` or `in`, with their paths.
    fn values(&self, f: &FactorSpec, path: &P) -> Result<Vec<(Value, P)>> {
        match (&f.is, &f.one_of) {
            (Some(v), None) => Ok(vec![(v.clone(), path.key("is"))]),
            (None, Some(vs)) if !vs.is_empty() => Ok(vs
                .iter()
                .enumerate()
                .map(|(i, v)| (v.clone(), path.key("in").idx(i)))
                .collect()),
            _ => Err(self.loc.at(path, "give `is = <value>` or a non-empty `in = [...]`")),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A small valid scenario for unit tests.
    pub(crate) const MINIMAL: &str = r#"
name = "tiny"
seed = 7
customers = 50
start = "2026-01-05T00:00:00Z"

[[trait]]
name = "price_sensitivity"

[[attribute]]
name = "orders"
field = "custom_attributes.order_count"
type = "number"
dist = { kind = "lognormal", median = 3, sigma = 0.5, integer = true, min = 1 }
shift = { price_sensitivity = -0.5 }

[[lever]]
name = "offer"
options = { none = {}, pct20 = { discount = 0.2 } }

[conversion]
type = "purchase"
product_id = "sku"
value = { kind = "lognormal", median = 50, sigma = 0.3 }

[response]
open = { base = -1.0 }
click = { base = -1.5 }
convert = { base = -2.0 }
unsubscribe = { base = -6.0 }
organic = { base = -7.0 }

[[effect]]
name = "discount"
target = "convert"
weight = 1.0
when = [{ lever = "offer", is = "pct20" }, { trait = "price_sensitivity" }]
"#;

    fn error(text: &str) -> (String, String) {
        match Scenario::from_toml_str(text, Some(Path::new("bad.toml"))) {
            Err(Error::Scenario { location, message }) => (location, message),
            other => panic!("expected a scenario error, got {other:?}"),
        }
    }

    #[test]
    fn minimal_scenario_parses() {
        let s = Scenario::from_toml_str(MINIMAL, None).unwrap();
        assert_eq!(s.name, "tiny");
        assert_eq!(s.customers, 50);
        assert_eq!(s.horizon_days, 14);
        assert_eq!(s.trait_names(), vec!["price_sensitivity"]);
        assert_eq!(s.levers()[0].2, vec!["none", "pct20"]);
    }

    #[test]
    fn unknown_key_is_located_by_line_and_path() {
        let text = MINIMAL.replace("weight = 1.0", "weight = 1.0\nwieght = 2.0");
        let (location, message) = error(&text);
        let line = text.lines().position(|l| l.starts_with("wieght")).unwrap() + 1;
        assert_eq!(location, format!("bad.toml:{line}: effect[0].wieght"), "{message}");
        assert!(message.contains("unknown field"), "{message}");
    }

    #[test]
    fn semantic_errors_are_located_by_line_and_path() {
        let text = MINIMAL.replace(r#"is = "pct20""#, r#"is = "pct30""#);
        let (location, message) = error(&text);
        let line = text.lines().position(|l| l.contains("pct30")).unwrap() + 1;
        assert_eq!(location, format!("bad.toml:{line}: effect[0].when[0].is"));
        assert!(message.contains("pct30"), "{message}");

        let text = MINIMAL.replace("price_sensitivity = -0.5", "price_sensitivty = -0.5");
        let (location, _) = error(&text);
        let line = text.lines().position(|l| l.contains("price_sensitivty")).unwrap() + 1;
        assert_eq!(
            location,
            format!("bad.toml:{line}: attribute[0].shift.price_sensitivty")
        );
    }

    #[test]
    fn syntax_errors_and_bad_values_are_located() {
        let (location, _) = error("name = \"x\"\nseed = \n");
        assert_eq!(location, "bad.toml:2");
        let text = MINIMAL.replace("2026-01-05T00:00:00Z", "yesterday");
        let (location, message) = error(&text);
        assert_eq!(location, "bad.toml:5: start", "{message}");
        let text = MINIMAL.replace("seed = 7", "seed = \"seven\"");
        let (location, _) = error(&text);
        assert_eq!(location, "bad.toml:3: seed");
    }

    #[test]
    fn missing_fields_and_unknown_variants_are_located() {
        let line_of = |text: &str, needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() + 1;
        let text = MINIMAL.replacen("weight = 1.0\n", "\n", 1);
        let (location, message) = error(&text);
        assert_eq!(
            location,
            format!("bad.toml:{}: effect[0]", line_of(&text, "[[effect]]"))
        );
        assert!(message.contains("missing field `weight`"), "{message}");

        let text = MINIMAL.replacen("open = { base = -1.0 }", "open = { base = -1.0, shape = \"cubic\" }", 1);
        let (location, message) = error(&text);
        assert_eq!(
            location,
            format!("bad.toml:{}: response.open.shape", line_of(&text, "cubic"))
        );
        assert!(message.contains("saturating"), "{message}");

        let text = MINIMAL.replacen("median = 3,", "median = -3,", 1);
        let (location, _) = error(&text);
        assert_eq!(
            location,
            format!("bad.toml:{}: attribute[0].dist", line_of(&text, "median = -3"))
        );
    }

    #[test]
    fn organic_effects_cannot_read_the_delivery() {
        let text = format!(
            "{MINIMAL}\n[[effect]]\ntarget = \"organic\"\nweight = 1.0\nwhen = [{{ lever = \"offer\", is = \"none\" }}]\n"
        );
        let (location, message) = error(&text);
        assert!(location.ends_with("effect[1].when[0]"), "{location}");
        assert!(message.contains("organic"));
    }

    #[test]
    fn drift_must_name_an_effect() {
        let text = format!("{MINIMAL}\n[[drift]]\nfrom = \"2026-01-19\"\neffect = \"nope\"\nscale = 0.5\n");
        let (location, message) = error(&text);
        assert!(location.ends_with("drift[0].effect"), "{location}");
        assert!(message.contains("nope"));
    }
}
