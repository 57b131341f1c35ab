//! The response model: what a delivery does to a customer, sampled ([`World::respond`],
//! [`World::organic`]) or in expectation ([`World::expected`], [`World::expected_organic`]).
//!
//! Both paths go through [`World::stages`], so the oracle is the exact expectation of the sampler:
//! - reach: the scenario's `[reach]` conditions for the channel (`Bounced` and nothing else when not);
//! - open (email, push only) with P = stage(open score);
//! - click given open (every channel but webhook) with P = stage(click score);
//! - conversion given click with P = stage(convert score), one per delivery, its value
//!   `base value × e^(value score) × (1 − discount)`, after a delay within the horizon;
//! - unsubscribe (email, SMS, push), independent of the rest;
//! - organic conversions: per UTC day, P = stage(organic score), independent of messages.
//!
//! Each stage's score is its base (plus base drift) plus the effect terms of that stage, each a
//! weight (times drift multipliers from their dates) times a product of factors evaluated on the
//! customer (traits, attributes) and on the delivery (options, channel, local hour and weekday in the
//! customer's time zone, recent sends).

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use rand::RngExt as _;
use rand_distr::StandardNormal;
use serde_json::{Map, Value, json};

use super::math::{Purpose, rng_for, truncated_exponential, unit_hash};
use super::model::{CatRef, Factor, Stage, VALUE_EFFECTS, in_window};
use super::spec::ConversionKind;
use super::{Channel, Delivery, Expectation, Outcome, OutcomeKind, World};

/// What a delivery sees of the world at its instant.
#[derive(Clone, Debug)]
pub(crate) struct Context {
    /// The channel (`None` for organic days).
    channel: Option<Channel>,
    /// Option index per lever.
    options: Vec<Option<u16>>,
    /// Local hour (fractional), `None` for organic days.
    local_hour: Option<f64>,
    /// Local weekday, days after Monday.
    weekday: u8,
    /// Messages in the 7 days before.
    recent: f64,
    /// UTC date (drift).
    date: Date,
}

/// The per-stage probabilities of one delivery.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Stages {
    /// Whether the channel reaches the customer.
    pub reachable: bool,
    /// P(open), on channels with opens.
    pub open: Option<f64>,
    /// P(click | open), on channels with clicks.
    pub click: Option<f64>,
    /// P(conversion | click).
    pub convert: f64,
    /// P(unsubscribe), on channels with unsubscribes.
    pub unsubscribe: Option<f64>,
    /// Value multiplier `e^(value score) × (1 − discount)`.
    pub value_factor: f64,
    /// Cost per caused conversion.
    pub cost: f64,
}

fn has_opens(c: Channel) -> bool {
    matches!(c, Channel::Email | Channel::Push)
}

fn has_clicks(c: Channel) -> bool {
    c != Channel::Webhook
}

fn has_unsubscribes(c: Channel) -> bool {
    matches!(c, Channel::Email | Channel::Sms | Channel::Push | Channel::WhatsApp)
}

fn utc_date(at: Timestamp) -> Date {
    at.to_zoned_datetime(TimeZone::UTC).date()
}

fn plus_seconds(at: Timestamp, secs: f64) -> Timestamp {
    at.checked_add(SignedDuration::from_secs_f64(secs.max(0.0)))
        .unwrap_or(at)
}

impl World {
    fn factor(&self, f: &Factor, c: usize, ctx: &Context) -> f64 {
        let yes = |b: bool| if b { 1.0 } else { 0.0 };
        match f {
            Factor::Lever { lever, options } => yes(ctx
                .options
                .get(*lever)
                .copied()
                .flatten()
                .is_some_and(|o| options.contains(&o))),
            Factor::Channel(list) => yes(ctx.channel.is_some_and(|ch| list.contains(&ch))),
            Factor::Numeric { subject, xform } => xform.apply(self.num(*subject, c)),
            Factor::Is { subject, categories } => yes(categories.contains(&self.cat(*subject, c))),
            Factor::MatchesChannel { subject, map } => {
                let k = usize::from(self.cat(*subject, c));
                yes(ctx.channel.is_some() && map.get(k).copied().flatten() == ctx.channel)
            }
            Factor::MatchesLever { subject, lever, map } => {
                let k = usize::from(self.cat(*subject, c));
                let chosen = ctx.options.get(*lever).copied().flatten();
                yes(chosen.is_some() && map.get(k).copied().flatten() == chosen)
            }
            Factor::LocalHours(window) => yes(ctx.local_hour.is_some_and(|h| in_window(h, *window))),
            Factor::InActiveHours { trait_index, windows } => {
                let k = usize::from(self.cat(CatRef::Trait(*trait_index), c));
                let window = windows.get(k).copied().flatten();
                yes(matches!((ctx.local_hour, window), (Some(h), Some(w)) if in_window(h, w)))
            }
            Factor::Weekday(mask) => yes(mask & (1 << ctx.weekday) != 0),
            Factor::RecentSends { cap } => ctx.recent.min(*cap),
        }
    }

    /// The sum of the effect terms of slot `slot` (a [`Stage`] or [`VALUE_EFFECTS`]).
    fn effect_sum(&self, slot: usize, c: usize, ctx: &Context) -> f64 {
        let Some(effects) = self.model().effects.get(slot) else {
            return 0.0;
        };
        let mut sum = 0.0;
        for e in effects {
            let mut product = e.weight_on(ctx.date);
            for f in &e.factors {
                if product == 0.0 {
                    break;
                }
                product *= self.factor(f, c, ctx);
            }
            sum += product;
        }
        sum
    }

    fn stage_p(&self, stage: Stage, c: usize, ctx: &Context) -> f64 {
        let sum = self.effect_sum(stage as usize, c, ctx);
        self.model().stages[stage as usize]
            .probability(sum, ctx.date)
            .clamp(0.0, 1.0)
    }

    /// Whether `channel` reaches `customer` (the scenario's `[reach]` conditions on the profile at
    /// start; a channel without conditions reaches everybody). `false` out of range.
    pub fn reachable(&self, customer: usize, channel: Channel) -> bool {
        if customer >= self.len() {
            return false;
        }
        let ctx = self.organic_context(customer, utc_date(self.scenario.start));
        self.model()
            .reach
            .iter()
            .filter(|(ch, _)| *ch == channel)
            .all(|(_, factors)| factors.iter().all(|f| self.factor(f, customer, &ctx) > 0.0))
    }

    fn delivery_context(&self, c: usize, d: &Delivery) -> Context {
        let local = d.at.to_zoned_datetime(self.time_zone(c).clone());
        let options = self
            .model()
            .levers
            .iter()
            .map(|l| {
                let id = d.properties.get(&l.property).and_then(Value::as_str)?;
                l.options
                    .iter()
                    .position(|o| o == id)
                    .and_then(|p| u16::try_from(p).ok())
            })
            .collect();
        Context {
            channel: Some(d.channel),
            options,
            local_hour: Some(f64::from(local.hour()) + f64::from(local.minute()) / 60.0),
            weekday: u8::try_from(local.weekday().to_monday_zero_offset()).unwrap_or(0),
            recent: f64::from(d.recent_sends),
            date: utc_date(d.at),
        }
    }

    fn organic_context(&self, c: usize, day: Date) -> Context {
        let _ = c;
        Context {
            channel: None,
            options: vec![None; self.model().levers.len()],
            local_hour: None,
            weekday: u8::try_from(day.weekday().to_monday_zero_offset()).unwrap_or(0),
            recent: 0.0,
            date: day,
        }
    }

    /// The stage probabilities of delivery `d` to customer `c`.
    pub(crate) fn stages(&self, c: usize, d: &Delivery) -> Stages {
        let ctx = self.delivery_context(c, d);
        let model = self.model();
        let mut discount = 0.0;
        let mut cost = 0.0;
        for (l, o) in model.levers.iter().zip(&ctx.options) {
            if let Some(o) = o {
                discount += l.discount.get(usize::from(*o)).copied().unwrap_or(0.0);
                cost += l.cost.get(usize::from(*o)).copied().unwrap_or(0.0);
            }
        }
        let discount = discount.clamp(0.0, 0.95);
        let value_factor = self.effect_sum(VALUE_EFFECTS, c, &ctx).exp() * (1.0 - discount);
        Stages {
            reachable: self.reachable(c, d.channel),
            open: has_opens(d.channel).then(|| self.stage_p(Stage::Open, c, &ctx)),
            click: has_clicks(d.channel).then(|| self.stage_p(Stage::Click, c, &ctx)),
            convert: self.stage_p(Stage::Convert, c, &ctx),
            unsubscribe: has_unsubscribes(d.channel).then(|| self.stage_p(Stage::Unsubscribe, c, &ctx)),
            value_factor,
            cost,
        }
    }

    /// P(organic conversion) on `day` and the value multiplier of such a conversion.
    fn organic_day(&self, c: usize, day: Date) -> (f64, f64) {
        let ctx = self.organic_context(c, day);
        let p = self.stage_p(Stage::Organic, c, &ctx);
        (p, self.effect_sum(VALUE_EFFECTS, c, &ctx).exp())
    }

    /// The oracle: the expected outcome of `delivery` for `customer` under the true model (same
    /// drift, fatigue and local time as [`World::respond`]). `convert` and `revenue` include the
    /// customer's organic conversions on the `horizon_days` UTC days starting with the delivery's day
    /// (what [`World::organic`] samples on those days). An out-of-range customer gets the default.
    pub fn expected(&self, customer: usize, delivery: &Delivery) -> Expectation {
        if customer >= self.len() {
            return Expectation::default();
        }
        let mean_value = self.model().conversion.value.mean();
        let mut no_organic = 1.0;
        let mut organic_revenue = 0.0;
        let mut day = utc_date(delivery.at);
        for _ in 0..self.scenario.horizon_days {
            let (q, factor) = self.organic_day(customer, day);
            no_organic *= 1.0 - q;
            organic_revenue += q * mean_value * factor;
            day = day.tomorrow().unwrap_or(day);
        }
        let s = self.stages(customer, delivery);
        if !s.reachable {
            return Expectation {
                reachable: false,
                convert: 1.0 - no_organic,
                revenue: organic_revenue,
                ..Expectation::default()
            };
        }
        let engaged = s.open.unwrap_or(1.0) * s.click.unwrap_or(1.0);
        let caused = engaged * s.convert;
        Expectation {
            reachable: true,
            open: s.open.unwrap_or(0.0),
            click: if s.click.is_some() { engaged } else { 0.0 },
            convert: 1.0 - (1.0 - caused) * no_organic,
            revenue: caused * mean_value * s.value_factor + organic_revenue,
            cost: caused * s.cost,
            unsubscribe: s.unsubscribe.unwrap_or(0.0),
        }
    }

    /// The part of [`World::expected`] that the delivery itself causes, organic conversions left out:
    /// `convert` is P(a conversion caused by the delivery) and `revenue` its expected value (0 when
    /// the channel cannot reach the customer); `open`, `click`, `cost` and `unsubscribe` are as in
    /// `expected`. With the organic days of [`World::expected_organic`] it rebuilds `expected`
    /// (`convert = 1 - (1 - caused) × Π (1 - organic)`, revenues add), and it combines several
    /// deliveries at once (a campaign or canvas step on several channels), whose caused conversions
    /// are independent, without counting the organic part twice.
    pub fn expected_caused(&self, customer: usize, delivery: &Delivery) -> Expectation {
        if customer >= self.len() {
            return Expectation::default();
        }
        let s = self.stages(customer, delivery);
        if !s.reachable {
            return Expectation::default();
        }
        let engaged = s.open.unwrap_or(1.0) * s.click.unwrap_or(1.0);
        let caused = engaged * s.convert;
        Expectation {
            reachable: true,
            open: s.open.unwrap_or(0.0),
            click: if s.click.is_some() { engaged } else { 0.0 },
            convert: caused,
            revenue: caused * self.model().conversion.value.mean() * s.value_factor,
            cost: caused * s.cost,
            unsubscribe: s.unsubscribe.unwrap_or(0.0),
        }
    }

    /// The expected outcome of a day without any message: `convert` is P(organic conversion) that UTC
    /// day and `revenue` its expected value.
    pub fn expected_organic(&self, customer: usize, day: Date) -> Expectation {
        if customer >= self.len() {
            return Expectation::default();
        }
        let (q, factor) = self.organic_day(customer, day);
        Expectation {
            reachable: true,
            convert: q,
            revenue: q * self.model().conversion.value.mean() * factor,
            ..Expectation::default()
        }
    }

    /// Samples what `delivery` causes for `customer`, in time order: `Bounced` alone when the channel
    /// cannot reach them; else `Delivered`, then possibly `Opened`, `Clicked`, a conversion (custom
    /// event or purchase) and `Unsubscribed`, all within the horizon. Organic conversions are not
    /// included (see [`World::organic`]). `stream` names the delivery: the same
    /// `(seed, customer, stream)` always gives the same outcomes, whatever else was sampled before.
    pub fn respond(&self, customer: usize, delivery: &Delivery, stream: u64) -> Vec<Outcome> {
        if customer >= self.len() {
            return Vec::new();
        }
        let at = delivery.at;
        let s = self.stages(customer, delivery);
        if !s.reachable {
            return vec![Outcome {
                at,
                kind: OutcomeKind::Bounced,
            }];
        }
        let mut rng = rng_for(self.scenario.seed, customer, stream, Purpose::Respond);
        // Every draw is taken in a fixed order, whatever happens, so one stage's outcome never
        // shifts the random numbers of another.
        let u: [f64; 8] = std::array::from_fn(|_| rng.random::<f64>());
        let z: f64 = rng.sample(StandardNormal);
        let delays = &self.model().delays;
        let horizon = f64::from(self.scenario.horizon_days) * 86_400.0;

        let mut out = vec![Outcome {
            at,
            kind: OutcomeKind::Delivered,
        }];
        let mut t = 0.0;
        let mut engaged = true;
        if let Some(p) = s.open {
            if u[0] < p {
                t += truncated_exponential(delays.open_hours * 3600.0, 48.0 * 3600.0, u[1]);
                out.push(Outcome {
                    at: plus_seconds(at, t),
                    kind: OutcomeKind::Opened,
                });
            } else {
                engaged = false;
            }
        }
        if engaged && let Some(p) = s.click {
            if u[2] < p {
                t += truncated_exponential(delays.click_hours * 3600.0, 24.0 * 3600.0, u[3]);
                out.push(Outcome {
                    at: plus_seconds(at, t),
                    kind: OutcomeKind::Clicked,
                });
            } else {
                engaged = false;
            }
        }
        if engaged && u[4] < s.convert {
            let left = (horizon - t - 1.0).max(0.0);
            let when = t + truncated_exponential(delays.convert_days * 86_400.0, left, u[5]);
            let base = self.model().conversion.value.at(z);
            let value = (base * s.value_factor * 100.0).round() / 100.0;
            out.push(Outcome {
                at: plus_seconds(at, when),
                kind: self.conversion(value),
            });
        }
        if let Some(p) = s.unsubscribe
            && u[6] < p
        {
            let when = truncated_exponential(delays.unsubscribe_days * 86_400.0, 7.0 * 86_400.0, u[7]);
            out.push(Outcome {
                at: plus_seconds(at, when),
                kind: OutcomeKind::Unsubscribed,
            });
        }
        out.sort_by_key(|o| o.at);
        out
    }

    /// Samples what `customer` does on UTC `day` without any message: at most one organic
    /// conversion, at a uniform time of the day. Reproducible per `(seed, customer, day)`.
    pub fn organic(&self, customer: usize, day: Date) -> Vec<Outcome> {
        if customer >= self.len() {
            return Vec::new();
        }
        let Ok(start) = day.to_zoned_datetime(TimeZone::UTC).map(|z| z.timestamp()) else {
            return Vec::new();
        };
        let ordinal = start.as_second().div_euclid(86_400) as u64;
        // The server asks this for every customer every day and almost every answer is "nothing":
        // the first uniform is a plain hash, and the RNG is only seeded for a conversion.
        let u = unit_hash(self.scenario.seed, customer, ordinal);
        let (q, factor) = self.organic_day(customer, day);
        if u >= q {
            return Vec::new();
        }
        let mut rng = rng_for(self.scenario.seed, customer, ordinal, Purpose::Organic);
        let second: f64 = rng.random::<f64>() * 86_399.0;
        let z: f64 = rng.sample(StandardNormal);
        let value = (self.model().conversion.value.at(z) * factor * 100.0).round() / 100.0;
        vec![Outcome {
            at: plus_seconds(start, second),
            kind: self.conversion(value),
        }]
    }

    fn conversion(&self, value: f64) -> OutcomeKind {
        let conv = &self.model().conversion;
        match conv.kind {
            ConversionKind::Purchase => OutcomeKind::Purchase {
                product_id: conv.product_id.clone(),
                price: value,
                currency: conv.currency.clone(),
                quantity: 1,
            },
            ConversionKind::CustomEvent => {
                let mut properties: Map<String, Value> = conv.properties.clone();
                if let Some(key) = &conv.value_property {
                    properties.insert(key.clone(), json!(value));
                }
                OutcomeKind::CustomEvent {
                    name: conv.name.clone(),
                    properties,
                }
            }
        }
    }
}
