//! The generated population, stored column-wise: one `f32` or `u8` per customer per trait and
//! attribute (three `f32` for an event entry) and one shared buffer of fixed-width `external_id`s, so a
//! million customers with a dozen attributes take well under 100 MB. Braze-shaped export objects are
//! rendered on demand by [`World::profile`]; PII (names, email, phone, date of birth) is derived from a
//! hash of `(seed, customer)` and never stored.

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use rand::RngExt as _;
use rand_distr::StandardNormal;
use serde_json::{Map, Value, json};

use super::Scenario;
use super::math::{Purpose, hash_for, normal_cdf, rng_for, sigmoid};
use super::model::{AttrKind, CatRef, Field, Model, NumRef, Source, TraitKind, Weights};
use crate::error::{Error, Result};

/// One column of per-customer values.
#[derive(Clone, Debug)]
pub(crate) enum Column {
    /// Numbers (scalar trait values, attribute values, days ago).
    Num(Vec<f32>),
    /// Category indices (booleans: 0 / 1).
    Cat(Vec<u8>),
    /// An event entry: count, days since last, days since first.
    Entry {
        /// All-time count.
        count: Vec<f32>,
        /// Days between the last occurrence and the start.
        last: Vec<f32>,
        /// Days between the first occurrence and the start.
        first: Vec<f32>,
    },
}

/// The generated world: the scenario and its population. Customers are stored compactly; their
/// Braze-shaped profile is rendered on demand by [`World::profile`]. Cheap to share behind an `Arc`.
/// Its `Debug` output is a summary (a million customers' columns are not worth printing).
#[derive(Clone)]
pub struct World {
    pub(crate) scenario: Scenario,
    /// `external_id`s back to back, each `id_width` bytes.
    ids: String,
    id_width: usize,
    digits: usize,
    pub(crate) traits: Vec<Column>,
    pub(crate) attrs: Vec<Column>,
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World")
            .field("scenario", &self.scenario.name)
            .field("seed", &self.scenario.seed)
            .field("customers", &self.len())
            .field("traits", &self.traits.len())
            .field("attributes", &self.attrs.len())
            .field("bytes_per_customer", &self.bytes_per_customer())
            .finish()
    }
}

/// The largest population [`World::new`] accepts.
pub const MAX_CUSTOMERS: usize = 50_000_000;

impl World {
    /// Generates the population of `scenario`, deterministically from its seed (customer `i` depends
    /// only on `(seed, i)`, never on the population size or generation order).
    ///
    /// # Errors
    ///
    /// [`Error::Scenario`] when `customers` exceeds [`MAX_CUSTOMERS`].
    pub fn new(scenario: Scenario) -> Result<World> {
        let n = scenario.customers;
        if n > MAX_CUSTOMERS {
            return Err(Error::Scenario {
                location: "customers".into(),
                message: format!("{n} customers is more than the simulator's limit of {MAX_CUSTOMERS}"),
            });
        }
        let digits = n.saturating_sub(1).max(1).to_string().len().max(6);
        let id_width = scenario.id_prefix.len() + digits;
        let mut ids = String::with_capacity(n * id_width);
        for i in 0..n {
            ids.push_str(&scenario.id_prefix);
            ids.push_str(&format!("{i:0digits$}"));
        }
        let model = scenario.model.clone();
        let mut traits: Vec<Column> = model
            .traits
            .iter()
            .map(|t| match t.kind {
                TraitKind::Scalar => Column::Num(Vec::with_capacity(n)),
                TraitKind::Categorical { .. } => Column::Cat(Vec::with_capacity(n)),
            })
            .collect();
        let mut attrs: Vec<Column> = model
            .attrs
            .iter()
            .map(|a| match a.kind {
                AttrKind::Number { .. } | AttrKind::Timestamp { .. } => Column::Num(Vec::with_capacity(n)),
                AttrKind::Category { .. } | AttrKind::Boolean { .. } => Column::Cat(Vec::with_capacity(n)),
                AttrKind::Event { .. } => Column::Entry {
                    count: Vec::with_capacity(n),
                    last: Vec::with_capacity(n),
                    first: Vec::with_capacity(n),
                },
            })
            .collect();
        let width = model.traits.len() + model.attrs.len();
        let mut latent = vec![0.0f64; width];
        let mut cats = vec![0u8; width];
        for c in 0..n {
            generate_one(
                &model,
                scenario.seed,
                c,
                &mut latent,
                &mut cats,
                &mut traits,
                &mut attrs,
            );
        }
        Ok(World {
            scenario,
            ids,
            id_width,
            digits,
            traits,
            attrs,
        })
    }

    /// The scenario.
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    pub(crate) fn model(&self) -> &Model {
        &self.scenario.model
    }

    /// Number of customers.
    pub fn len(&self) -> usize {
        self.scenario.customers
    }

    /// Whether there is no customer.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `external_id` of customer `index` (`""` when out of range).
    pub fn external_id(&self, index: usize) -> &str {
        let start = index.saturating_mul(self.id_width);
        self.ids.get(start..start.saturating_add(self.id_width)).unwrap_or("")
    }

    /// The index of a customer by `external_id`.
    pub fn index_of(&self, external_id: &str) -> Option<usize> {
        let digits = external_id.strip_prefix(self.scenario.id_prefix.as_str())?;
        if digits.len() != self.digits || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok().filter(|i| *i < self.len())
    }

    /// The Braze user id of customer `index` (the export's `braze_id`, Currents' `user_id`): 24 hex
    /// digits, as in Braze's samples.
    pub fn braze_id(&self, index: usize) -> String {
        let h = |salt: &str| hash_for(self.scenario.seed, index, salt);
        format!("{:016x}{:08x}", h("braze"), h("braze2") as u32)
    }

    /// Approximate heap bytes held per customer (ids and columns), for capacity planning.
    pub fn bytes_per_customer(&self) -> usize {
        let columns: usize = self
            .traits
            .iter()
            .chain(&self.attrs)
            .map(|c| match c {
                Column::Num(_) => 4,
                Column::Cat(_) => 1,
                Column::Entry { .. } => 12,
            })
            .sum();
        columns + self.id_width
    }

    /// Customer `index`'s hidden traits by name: scalar traits as numbers in (0, 1), categorical ones
    /// as their category. For tests, benchmarks and reports only: no Braze endpoint exposes them.
    /// Empty when `index` is out of range.
    pub fn hidden_traits(&self, index: usize) -> Map<String, Value> {
        let mut out = Map::new();
        if index >= self.len() {
            return out;
        }
        for (t, def) in self.model().traits.iter().enumerate() {
            let value = match &def.kind {
                TraitKind::Scalar => json!(self.num(NumRef::Trait(t), index)),
                TraitKind::Categorical { categories, .. } => {
                    json!(
                        categories
                            .get(usize::from(self.cat(CatRef::Trait(t), index)))
                            .cloned()
                            .unwrap_or_default()
                    )
                }
            };
            out.insert(def.name.clone(), value);
        }
        out
    }

    /// A numeric value: a scalar trait in (0, 1), or a number / timestamp (days ago) / boolean
    /// (0 or 1) / event count attribute.
    pub(crate) fn num(&self, r: NumRef, c: usize) -> f64 {
        let col = match r {
            NumRef::Trait(t) => self.traits.get(t),
            NumRef::Attr(a) => self.attrs.get(a),
        };
        match col {
            Some(Column::Num(v)) => v.get(c).map_or(0.0, |x| f64::from(*x)),
            Some(Column::Cat(v)) => v.get(c).map_or(0.0, |x| f64::from(*x)),
            Some(Column::Entry { count, .. }) => count.get(c).map_or(0.0, |x| f64::from(*x)),
            None => 0.0,
        }
    }

    /// A categorical value (category index; booleans 0 / 1).
    pub(crate) fn cat(&self, r: CatRef, c: usize) -> u8 {
        let col = match r {
            CatRef::Trait(t) => self.traits.get(t),
            CatRef::Attr(a) => self.attrs.get(a),
        };
        match col {
            Some(Column::Cat(v)) => v.get(c).copied().unwrap_or(0),
            _ => 0,
        }
    }

    /// The IANA name of customer `c`'s time zone, as their profile's `time_zone` field shows it.
    pub fn time_zone_name(&self, c: usize) -> Option<String> {
        Some(self.time_zone(c).iana_name().unwrap_or("UTC").to_owned())
    }

    /// The customer's time zone.
    pub(crate) fn time_zone(&self, c: usize) -> &TimeZone {
        let model = self.model();
        match &model.tz_attr {
            Some((a, zones)) => zones
                .get(usize::from(self.cat(CatRef::Attr(*a), c)))
                .unwrap_or(&model.default_tz),
            None => &model.default_tz,
        }
    }

    /// Customer `index`'s profile at the scenario start, as a Braze export object: standard fields
    /// (`external_id`, `braze_id`, `first_name`, `last_name`, `email`, `dob`, `gender`, `created_at`,
    /// `time_zone`, `email_subscribe`, `push_subscribe`, `total_revenue`, and whatever standard fields
    /// the scenario generates such as `country`, `language`, `phone`, `push_tokens`,
    /// `attributed_source`), `custom_attributes`, `custom_events` and `purchases`
    /// (`[{name, first, last, count}]`, entries with a zero count left out). PII fields are present,
    /// as in Braze: it is the caller's `fields_to_export` that must leave them out. Empty when
    /// `index` is out of range.
    pub fn profile(&self, index: usize) -> Map<String, Value> {
        let mut out = Map::new();
        if index >= self.len() {
            return out;
        }
        let c = index;
        let seed = self.scenario.seed;
        let start = self.scenario.start;
        let model = self.model();
        let h = |salt: &str| hash_for(seed, c, salt);
        let first = FIRST_NAMES[(h("first") % FIRST_NAMES.len() as u64) as usize];
        let last = LAST_NAMES[(h("last") % LAST_NAMES.len() as u64) as usize];
        out.insert("external_id".into(), json!(self.external_id(c)));
        out.insert("braze_id".into(), json!(self.braze_id(c)));
        out.insert("first_name".into(), json!(first));
        out.insert("last_name".into(), json!(last));
        out.insert(
            "email".into(),
            json!(format!(
                "{}.{}.{c}@example.com",
                first.to_lowercase(),
                last.to_lowercase()
            )),
        );
        let age_days = 18 * 365 + (h("dob") % (50 * 365)) as i64;
        if let Ok(dob) = start.checked_sub(SignedDuration::from_hours(age_days * 24)) {
            out.insert(
                "dob".into(),
                json!(dob.to_zoned_datetime(TimeZone::UTC).date().to_string()),
            );
        }
        out.insert("gender".into(), json!(["F", "M", "O", "N"][(h("gender") % 4) as usize]));
        let created_days = 30.0 + (h("created") % 1500) as f64;
        out.insert("created_at".into(), json!(days_before(start, created_days)));
        out.insert("email_subscribe".into(), json!("subscribed"));
        out.insert("push_subscribe".into(), json!("subscribed"));
        out.insert("total_revenue".into(), json!(0.0));
        out.insert(
            "time_zone".into(),
            json!(self.time_zone(c).iana_name().unwrap_or("UTC")),
        );

        let mut custom = Map::new();
        let mut events = Vec::new();
        let mut purchases = Vec::new();
        let country = model
            .attrs
            .iter()
            .position(|a| a.field == Field::Standard("country".into()))
            .and_then(|a| match (&model.attrs[a].kind, &self.attrs[a]) {
                (AttrKind::Category { categories, .. }, Column::Cat(v)) => categories.get(usize::from(v[c])).cloned(),
                _ => None,
            })
            .unwrap_or_default();
        for (a, def) in model.attrs.iter().enumerate() {
            let col = &self.attrs[a];
            let value = match (&def.kind, col) {
                (AttrKind::Number { dist, .. }, Column::Num(v)) => {
                    let x = f64::from(v[c]);
                    if dist.integer {
                        json!(x as i64)
                    } else {
                        json!((x * 100.0).round() / 100.0)
                    }
                }
                (AttrKind::Timestamp { .. }, Column::Num(v)) => json!(days_before(start, f64::from(v[c]))),
                (AttrKind::Boolean { .. }, Column::Cat(v)) => json!(v[c] == 1),
                (AttrKind::Category { categories, .. }, Column::Cat(v)) => {
                    json!(categories.get(usize::from(v[c])).cloned().unwrap_or_default())
                }
                (AttrKind::Event { .. }, Column::Entry { count, last, first }) => {
                    let n = f64::from(count[c]);
                    if n >= 1.0 {
                        let entry = json!({
                            "name": match &def.field { Field::Entry { name, .. } => name.as_str(), _ => "" },
                            "first": days_before(start, f64::from(first[c])),
                            "last": days_before(start, f64::from(last[c])),
                            "count": n as i64,
                        });
                        match &def.field {
                            Field::Entry { purchase: true, .. } => purchases.push(entry),
                            _ => events.push(entry),
                        }
                    }
                    continue;
                }
                _ => continue,
            };
            match &def.field {
                Field::Custom(key) => {
                    custom.insert(key.clone(), value);
                }
                Field::Standard(name) => match name.as_str() {
                    "email" => {
                        if value != json!(true) {
                            out.remove("email");
                        }
                    }
                    "phone" => {
                        if value == json!(true) {
                            out.insert("phone".into(), json!(PhoneNumber(h("phone")).render(&country)));
                        }
                    }
                    "push_tokens" => {
                        if value == json!(true) {
                            let android = h("platform") % 2 == 0;
                            out.insert(
                                "push_tokens".into(),
                                json!([{
                                    "app": "offerloop-sim",
                                    "platform": if android { "Android" } else { "iOS" },
                                    "token": format!("{:016x}{:016x}", h("token"), h("token2")),
                                    "device_id": format!("{:016x}", h("device")),
                                    "notifications_enabled": true,
                                }]),
                            );
                        }
                    }
                    other => {
                        out.insert(other.to_owned(), value);
                    }
                },
                Field::Entry { .. } => {}
            }
        }
        out.insert("custom_attributes".into(), Value::Object(custom));
        if !events.is_empty() {
            out.insert("custom_events".into(), Value::Array(events));
        }
        if !purchases.is_empty() {
            out.insert("purchases".into(), Value::Array(purchases));
        }
        out
    }
}

/// Generates customer `c` into the columns.
fn generate_one(
    model: &Model,
    seed: u64,
    c: usize,
    latent: &mut [f64],
    cats: &mut [u8],
    traits: &mut [Column],
    attrs: &mut [Column],
) {
    let mut rng = rng_for(seed, c, 0, Purpose::Generate);
    let nt = model.traits.len();
    for (t, def) in model.traits.iter().enumerate() {
        match (&def.kind, &mut traits[t]) {
            (TraitKind::Scalar, Column::Num(col)) => {
                let z: f64 = rng.sample(StandardNormal);
                latent[t] = z;
                col.push(normal_cdf(z) as f32);
            }
            (TraitKind::Categorical { weights, .. }, Column::Cat(col)) => {
                let k = pick(weights, rng.random::<f64>());
                cats[t] = k;
                col.push(k);
            }
            _ => {}
        }
    }
    for (a, def) in model.attrs.iter().enumerate() {
        let slot = nt + a;
        let shifted = |shifts: &[(Source, f64)], latent: &[f64], cats: &[u8]| -> f64 {
            shifts.iter().map(|(s, w)| w * source_value(*s, nt, latent, cats)).sum()
        };
        match (&def.kind, &mut attrs[a]) {
            (AttrKind::Number { dist, shifts }, Column::Num(col))
            | (AttrKind::Timestamp { dist, shifts }, Column::Num(col)) => {
                let z = rng.sample::<f64, _>(StandardNormal) + shifted(shifts, latent, cats);
                latent[slot] = z;
                let mut x = dist.at(z);
                if matches!(def.kind, AttrKind::Timestamp { .. }) {
                    x = x.max(0.0);
                }
                col.push(x as f32);
            }
            (
                AttrKind::Event {
                    count: cd,
                    last: ld,
                    shifts,
                },
                Column::Entry { count, last, first },
            ) => {
                let z = rng.sample::<f64, _>(StandardNormal) + shifted(shifts, latent, cats);
                latent[slot] = z;
                let n = cd.at(z).max(0.0).round();
                let l = ld.at(rng.sample(StandardNormal)).max(0.0);
                let span = if n > 1.0 { rng.random::<f64>() * 365.0 } else { 0.0 };
                count.push(n as f32);
                last.push(l as f32);
                first.push((l + span) as f32);
            }
            (AttrKind::Boolean { logit, shifts }, Column::Cat(col)) => {
                let p = sigmoid(logit + shifted(shifts, latent, cats));
                let b = u8::from(rng.random::<f64>() < p);
                cats[slot] = b;
                col.push(b);
            }
            (AttrKind::Category { weights, shifts, .. }, Column::Cat(col)) => {
                let row: &[f64] = match weights {
                    Weights::Fixed(w) => w,
                    Weights::Given { given, table } => {
                        let g = match given {
                            CatRef::Trait(t) => cats[*t],
                            CatRef::Attr(x) => cats[nt + x],
                        };
                        table.get(usize::from(g)).map_or(&[][..], Vec::as_slice)
                    }
                };
                let u = rng.random::<f64>();
                let k = if shifts.iter().all(Vec::is_empty) {
                    pick(row, u)
                } else {
                    let tilted: Vec<f64> = row
                        .iter()
                        .zip(shifts)
                        .map(|(w, s)| w * shifted(s, latent, cats).exp())
                        .collect();
                    let total: f64 = tilted.iter().sum();
                    if total.is_finite() && total > 0.0 {
                        let normalised: Vec<f64> = tilted.iter().map(|w| w / total).collect();
                        pick(&normalised, u)
                    } else {
                        // Shifts so extreme that the weights overflow (or vanish): the heaviest
                        // tilted category wins, as it would in the limit.
                        let best = tilted
                            .iter()
                            .enumerate()
                            .max_by(|a, b| a.1.total_cmp(b.1))
                            .map_or(0, |(k, _)| k);
                        u8::try_from(best).unwrap_or(u8::MAX)
                    }
                };
                cats[slot] = k;
                col.push(k);
            }
            _ => {}
        }
    }
}

fn source_value(s: Source, nt: usize, latent: &[f64], cats: &[u8]) -> f64 {
    match s {
        Source::Latent(i) => latent.get(i).copied().unwrap_or(0.0),
        Source::Is(CatRef::Trait(t), k) => f64::from(u8::from(cats.get(t) == Some(&k))),
        Source::Is(CatRef::Attr(a), k) => f64::from(u8::from(cats.get(nt + a) == Some(&k))),
    }
}

/// The category whose cumulative probability first exceeds `u`.
fn pick(probabilities: &[f64], u: f64) -> u8 {
    let mut acc = 0.0;
    for (k, p) in probabilities.iter().enumerate() {
        acc += p;
        if u < acc {
            return u8::try_from(k).unwrap_or(u8::MAX);
        }
    }
    // Rounding can leave `acc` a hair below 1: the last category with a positive weight takes it.
    let last = probabilities.iter().rposition(|p| *p > 0.0).unwrap_or(0);
    u8::try_from(last).unwrap_or(u8::MAX)
}

/// `start - days`, as an ISO-8601 string (whole seconds).
fn days_before(start: Timestamp, days: f64) -> String {
    let secs = (days * 86_400.0).round() as i64;
    start
        .checked_sub(SignedDuration::from_secs(secs))
        .unwrap_or(start)
        .to_string()
}

/// A fake E.164 number from a hash.
struct PhoneNumber(u64);

impl PhoneNumber {
    fn render(&self, country: &str) -> String {
        // Mobile prefixes and subscriber-number lengths per country (E.164, at most 15 digits).
        let (prefix, digits) = match country {
            "GB" => ("+447", 9),
            "DE" => ("+4915", 9),
            "AU" => ("+614", 8),
            "FR" => ("+336", 8),
            _ => ("+1555", 7),
        };
        let n = self.0 % 10u64.pow(digits);
        format!("{prefix}{n:0width$}", width = digits as usize)
    }
}

const FIRST_NAMES: &[&str] = &[
    "Ava", "Ben", "Chloe", "Dev", "Elena", "Farah", "Gus", "Hana", "Ines", "Jonah", "Kai", "Lena", "Mateo", "Nora",
    "Omar", "Priya", "Quinn", "Rosa", "Sam", "Tariq", "Uma", "Victor", "Wen", "Yara", "Zoe",
];

const LAST_NAMES: &[&str] = &[
    "Adams", "Baker", "Chen", "Diaz", "Evans", "Fischer", "Garcia", "Hughes", "Ito", "Jensen", "Kowalski", "Lopez",
    "Martin", "Nguyen", "Okafor", "Patel", "Rossi", "Schmidt", "Tanaka", "Walsh",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pick_follows_cumulative_weights() {
        let w = [0.2, 0.0, 0.8];
        assert_eq!(pick(&w, 0.1), 0);
        assert_eq!(pick(&w, 0.2), 2);
        assert_eq!(pick(&w, 0.999_999_999_999), 2);
        assert_eq!(pick(&[0.5, 0.5 - 1e-12], 0.999_999_999_999_9), 1);
    }

    #[test]
    fn overflowing_category_shifts_pick_the_heaviest_category() {
        let text = format!(
            "{}\n[[attribute]]\nname = \"tier\"\ntype = \"category\"\ncategories = {{ a = 0.5, b = 0.5 }}\ncategory_shift.b = {{ orders = 800.0 }}\n",
            crate::world::scenario::tests::MINIMAL
        );
        let world = World::new(Scenario::from_toml_str(&text, None).unwrap().with_customers(200)).unwrap();
        for c in 0..world.len() {
            let tier = world.profile(c)["custom_attributes"]["tier"]
                .as_str()
                .unwrap()
                .to_owned();
            assert!(tier == "a" || tier == "b");
        }
    }

    proptest::proptest! {
        /// Whatever the seed: clamps and rounding hold, ids round-trip, scalar traits stay in (0, 1).
        #[test]
        fn generation_invariants(seed in proptest::prelude::any::<u64>()) {
            let mut scenario = Scenario::from_toml_str(crate::world::scenario::tests::MINIMAL, None).unwrap();
            scenario.seed = seed;
            let world = World::new(scenario.with_customers(60)).unwrap();
            for c in 0..world.len() {
                let p = world.profile(c);
                let orders = p["custom_attributes"]["order_count"].as_i64().unwrap();
                proptest::prop_assert!(orders >= 1);
                proptest::prop_assert_eq!(world.index_of(world.external_id(c)), Some(c));
                let ps = world.hidden_traits(c)["price_sensitivity"].as_f64().unwrap();
                proptest::prop_assert!(ps > 0.0 && ps < 1.0);
            }
        }
    }

    #[test]
    fn debug_output_is_a_summary_and_worlds_are_shareable() {
        fn shareable<T: Send + Sync + 'static>() {}
        shareable::<World>();
        let world = World::new(
            Scenario::from_toml_str(crate::world::scenario::tests::MINIMAL, None)
                .unwrap()
                .with_customers(5_000),
        )
        .unwrap();
        let text = format!("{world:?}");
        assert!(text.contains("customers: 5000") && text.len() < 300, "{text}");
    }

    #[test]
    fn phone_numbers_are_e164() {
        let n = PhoneNumber(123_456_789).render("GB");
        assert!(n.starts_with("+447") && n.len() == 13, "{n}");
        assert!(PhoneNumber(5).render("US").starts_with("+1555"));
    }
}
