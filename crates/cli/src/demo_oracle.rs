//! The demo's oracle: what the simulator's true model says the AI's decisions were worth, in the use
//! case's own success metric, against business as usual, uniform random, the best single action and
//! the best action per customer.
//!
//! Only the demo and the loop benchmark may read the oracle (the engine never does). Two things make
//! it honest:
//! - **The metric is the use case's own** ([`Valuation`]): a conversion, renewal or retention metric is
//!   valued as the probability of the conversion event within the window, a revenue, ARPU or event-value
//!   metric as its expected value (minus the options' cost when the metric subtracts it), an NPV as the
//!   discounted value. A metric the world cannot value (a product or event the scenario does not
//!   produce) is refused with the reason, never approximated by another.
//! - **A joint action is valued as the activator sends it** ([`Oracle::score`]): the channel's campaign
//!   or canvas (or the use case's default target) on every channel the simulator's catalog gives it, the
//!   other dimensions as properties, at the instant activation's own rule places it
//!   ([`offerloop_activation::Scheduler::slot`], with the engine's default scheduling margin: a local
//!   send time that has passed moves to its next occurrence; without a send time or weekday the message
//!   goes out at the run's instant). A frequency "skip" sends nothing: it is valued as no message (the
//!   organic conversions only), while the metric still charges the options' cost.
//!
//! Several deliveries of one action (a canvas step on two channels) combine exactly: the world's
//! caused conversions are independent per delivery ([`World::expected_caused`]) and the organic days
//! ([`World::expected_organic`]) count once.

use std::collections::HashMap;
use std::sync::Arc;

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use offerloop_domain::dimension::OptionPayload;
use offerloop_domain::metric::{ConversionOn, MetricKind};
use offerloop_domain::{ActionId, Decision, FeatureValue, JointAction, MessageTarget, SuccessMetric, UseCase};
use offerloop_sim::World;
use offerloop_sim::state::Workspace;
use offerloop_sim::state::sends::{SendPlan, Source, message_refs};
use offerloop_sim::world::{Channel, ConversionEvent, Delivery};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::demo_cmd::Estimate;

/// How the oracle values one customer's outcome in the use case's success metric.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Valuation {
    /// P(the conversion happens within the window): conversion, renewal, retention by activity.
    Converted,
    /// P(the conversion does not happen within the window): retention measured by a churn event.
    NotConverted,
    /// The expected value of the conversions within the window (revenue, ARPU, an event's value), each
    /// discounted back to the decision at `annual_discount_rate` (NPV), minus the options' cost when
    /// `subtract_cost`.
    Value {
        /// Subtract the chosen options' cost (the metric's `subtract_option_cost`).
        subtract_cost: bool,
        /// NPV's annual discount rate; `None` for undiscounted metrics.
        annual_discount_rate: Option<f64>,
    },
}

impl Valuation {
    /// How `metric` is valued in a world whose conversion is `conversion`.
    ///
    /// # Errors
    /// Why the oracle cannot value the metric: it counts a product or an event that the world never
    /// produces, or reads a value property the world's conversion does not carry.
    pub fn of(metric: &SuccessMetric, conversion: &ConversionEvent) -> Result<Self, String> {
        let purchase = |product: &Option<String>| match conversion {
            ConversionEvent::Purchase { product_id } => match product {
                Some(p) if p != product_id => Err(format!(
                    "the metric counts purchases of `{p}`, the simulated world only `{product_id}`"
                )),
                _ => Ok(()),
            },
            ConversionEvent::CustomEvent { name, .. } => Err(format!(
                "the metric counts purchases, the simulated world converts with the custom event `{name}`"
            )),
        };
        let event = |wanted: &str| match conversion {
            ConversionEvent::CustomEvent { name, .. } if name == wanted => Ok(()),
            ConversionEvent::CustomEvent { name, .. } => Err(format!(
                "the metric counts the event `{wanted}`, the simulated world converts with `{name}`"
            )),
            ConversionEvent::Purchase { product_id } => Err(format!(
                "the metric counts the event `{wanted}`, the simulated world converts with a purchase of `{product_id}`"
            )),
        };
        let value = |subtract_cost: bool, annual_discount_rate: Option<f64>| Self::Value {
            subtract_cost,
            annual_discount_rate,
        };
        match &metric.kind {
            MetricKind::Conversion {
                on: ConversionOn::Purchase { product },
            } => purchase(product).map(|()| Self::Converted),
            MetricKind::Conversion {
                on: ConversionOn::CustomEvent { event: e },
            }
            | MetricKind::Renewal { event: e } => event(e).map(|()| Self::Converted),
            MetricKind::Retention {
                active_event: Some(e), ..
            } => event(e).map(|()| Self::Converted),
            MetricKind::Retention {
                churn_event: Some(e), ..
            } => event(e).map(|()| Self::NotConverted),
            MetricKind::Retention { .. } => Err("a retention metric without an event".to_owned()),
            MetricKind::Revenue {
                product,
                subtract_option_cost,
            } => purchase(product).map(|()| value(*subtract_option_cost, None)),
            MetricKind::Arpu { product } => purchase(product).map(|()| value(false, None)),
            MetricKind::Npv {
                product,
                annual_discount_rate,
                subtract_option_cost,
            } => purchase(product).map(|()| value(*subtract_option_cost, Some(*annual_discount_rate))),
            MetricKind::EventValue {
                event: e,
                property,
                subtract_option_cost,
            } => {
                event(e)?;
                match conversion {
                    ConversionEvent::CustomEvent {
                        value_property: Some(p),
                        ..
                    } if p == property => Ok(value(*subtract_option_cost, None)),
                    _ => Err(format!(
                        "the metric reads the event property `{property}`, which the simulated world's `{e}` does not carry"
                    )),
                }
            }
        }
    }

    /// The value of one outcome: `none` is P(no organic conversion over the window), `caused` the
    /// deliveries' caused conversion probabilities, `value` the expected (discounted) value of all
    /// conversions, `cost` the options' cost.
    fn of_parts(self, none: f64, caused: impl IntoIterator<Item = f64>, value: f64, cost: f64) -> f64 {
        let no_conversion = none * caused.into_iter().map(|c| 1.0 - c).product::<f64>();
        match self {
            Self::Converted => 1.0 - no_conversion,
            Self::NotConverted => no_conversion,
            Self::Value { subtract_cost, .. } => value - if subtract_cost { cost } else { 0.0 },
        }
    }
}

/// A short description of the use case's success metric, for the demo's labels.
pub fn metric_label(metric: &SuccessMetric) -> String {
    let days = metric.attribution_window_days;
    let minus = |subtract: bool| if subtract { " − option cost" } else { "" };
    let of = |product: &Option<String>| product.as_ref().map(|p| format!(" of {p}")).unwrap_or_default();
    match &metric.kind {
        MetricKind::Conversion {
            on: ConversionOn::CustomEvent { event },
        } => format!("conversion: 1 if `{event}` within {days} days"),
        MetricKind::Conversion {
            on: ConversionOn::Purchase { product },
        } => format!("conversion: 1 if a purchase{} within {days} days", of(product)),
        MetricKind::Revenue {
            product,
            subtract_option_cost,
        } => format!("revenue{} in {days} days{}", of(product), minus(*subtract_option_cost)),
        MetricKind::Arpu { product } => format!("revenue{} per customer in {days} days", of(product)),
        MetricKind::Retention {
            active_event: Some(e), ..
        } => format!("retention: 1 if `{e}` within {days} days"),
        MetricKind::Retention {
            churn_event: Some(e), ..
        } => format!("retention: 1 if no `{e}` within {days} days"),
        MetricKind::Retention { .. } => format!("retention within {days} days"),
        MetricKind::Renewal { event } => format!("renewal: 1 if `{event}` within {days} days"),
        MetricKind::EventValue {
            event,
            property,
            subtract_option_cost,
        } => format!(
            "`{property}` of `{event}` in {days} days{}",
            minus(*subtract_option_cost)
        ),
        MetricKind::Npv {
            product,
            annual_discount_rate,
            subtract_option_cost,
        } => format!(
            "NPV of purchases{} in {days} days at {:.0} %/year{}",
            of(product),
            annual_discount_rate * 100.0,
            minus(*subtract_option_cost)
        ),
    }
}

/// The oracle's values for one set of AI decisions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OracleSummary {
    /// The AI's actions.
    pub ai: Estimate,
    /// Business as usual for the same customers (no message where it is not eligible).
    pub business_as_usual: Estimate,
    /// A uniformly random eligible action (the A/B test's exploration arm).
    pub uniform: Estimate,
    /// The best eligible action per customer: the ceiling.
    pub ceiling: Estimate,
    /// The best single joint action for everyone (business as usual where it is not eligible): what
    /// an ideal A/B test would roll out.
    pub single_best: f64,
    /// That action, as `dimension=option` pairs.
    pub single_best_action: String,
}

impl OracleSummary {
    /// How far the AI got from uniform random to the ceiling, in % (`None` when the ceiling does not
    /// beat uniform random).
    pub fn score(&self) -> Option<f64> {
        normalised(self.ai.mean, self.uniform.mean, self.ceiling.mean)
    }
}

/// `(value − uniform) / (ceiling − uniform)` in %, `None` when the ceiling does not beat uniform.
pub fn normalised(value: f64, uniform: f64, ceiling: f64) -> Option<f64> {
    let gap = ceiling - uniform;
    (gap > 1e-12 && value.is_finite()).then(|| 100.0 * (value - uniform) / gap)
}

/// One simulated day of the learning curve: the oracle's values of that day's AI decisions (a sample)
/// and of the alternatives for the same customers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DayOracle {
    /// 1 for the first simulated day.
    pub day: u32,
    /// The run's date in the use case's time zone.
    pub date: String,
    /// AI decisions valued.
    pub n: usize,
    /// Mean value of the AI's actions.
    pub ai: f64,
    /// Mean value of business as usual.
    pub business_as_usual: f64,
    /// Mean value of a uniformly random eligible action.
    pub uniform: f64,
    /// Mean value of the best eligible action per customer.
    pub ceiling: f64,
}

impl DayOracle {
    /// The day's normalised score in % (see [`normalised`]).
    pub fn score(&self) -> Option<f64> {
        normalised(self.ai, self.uniform, self.ceiling)
    }
}

/// One AI decision valued: the action taken, business as usual, and every eligible action.
#[derive(Debug, Clone)]
pub struct Scored {
    /// The customer's features at decision time (for the segment tables).
    pub features: Vec<FeatureValue>,
    /// The value of the action taken.
    pub taken: f64,
    /// The value of business as usual (of no message where it is not eligible).
    pub business_as_usual: f64,
    /// Every eligible action: id, value, P(conversion within the window).
    pub actions: Vec<(u64, f64, f64)>,
}

/// What the oracle needs besides the decisions, gathered once.
#[derive(Debug)]
pub struct Oracle<'a> {
    use_case: &'a UseCase,
    setup: offerloop_policy::Setup,
    world: Arc<World>,
    valuation: Valuation,
    /// Per target key: the messages the target sends, one per channel.
    channels: HashMap<String, Vec<Message>>,
    /// `<date>:<customer>` → features and time zone at decision time.
    audience: &'a HashMap<String, (Vec<FeatureValue>, Option<String>)>,
    /// Activation's rule for when a send goes out.
    scheduler: offerloop_activation::Scheduler<'a>,
    /// How far ahead of the decision a scheduled send must be (the engine's default margin).
    margin: jiff::SignedDuration,
    horizon_days: u32,
}

/// One message of a campaign or canvas: its channel, campaign id and canvas id.
type Message = (Channel, Option<String>, Option<String>);

/// The key of a campaign or canvas.
fn target_key(target: &MessageTarget) -> String {
    match target {
        MessageTarget::Campaign(id) => format!("campaign:{id}"),
        MessageTarget::Canvas(id) => format!("canvas:{id}"),
    }
}

impl<'a> Oracle<'a> {
    /// Gathers the oracle of `use_case` on the simulator's workspace.
    ///
    /// # Errors
    /// The use case's policy setup cannot be built.
    pub fn new(
        use_case: &'a UseCase,
        workspace: &Workspace,
        valuation: Valuation,
        audience: &'a HashMap<String, (Vec<FeatureValue>, Option<String>)>,
    ) -> anyhow::Result<Self> {
        let setup = offerloop_policy::Setup::from_use_case(use_case)?;
        let mut targets: Vec<MessageTarget> = use_case.activation.default_target.iter().cloned().collect();
        for dim in use_case.actions.dimensions() {
            for option in &dim.options {
                if let OptionPayload::Channel { target, .. } = &option.payload {
                    targets.push(target.clone());
                }
            }
        }
        // A campaign's channels do not depend on the customer unless it has a control variant, which
        // `offerloop check` refuses: customer 0 stands for all.
        let channels = targets
            .into_iter()
            .map(|target| {
                let source = match &target {
                    MessageTarget::Campaign(id) => Source::Campaign {
                        campaign_id: id.clone(),
                    },
                    MessageTarget::Canvas(id) => Source::Canvas { canvas_id: id.clone() },
                };
                let plan = SendPlan {
                    source,
                    dispatch_id: "oracle".to_owned(),
                    send_id: None,
                };
                let refs = message_refs(workspace, &plan, 0)
                    .into_iter()
                    .map(|r| (r.channel, r.campaign_id, r.canvas_id))
                    .collect();
                (target_key(&target), refs)
            })
            .collect();
        let margin = jiff::SignedDuration::try_from(offerloop_engine::RunOptions::default().schedule_margin)?;
        Ok(Self {
            use_case,
            setup,
            world: Arc::clone(&workspace.world),
            valuation,
            channels,
            audience,
            scheduler: offerloop_activation::Scheduler::new(use_case)?,
            margin,
            horizon_days: workspace.world.scenario().horizon_days,
        })
    }

    /// Values many decisions (in parallel; the order of the result is the order of `decisions`,
    /// decisions the oracle cannot place left out).
    pub fn score_all(&self, decisions: &[&Decision]) -> Vec<Scored> {
        decisions.par_iter().filter_map(|d| self.score(d)).collect()
    }

    /// Values one AI decision, or `None` when its customer, features or date are unknown.
    pub fn score(&self, d: &Decision) -> Option<Scored> {
        let use_case = self.use_case;
        let space = &use_case.actions;
        let date = crate::run_cmd::today(use_case, d.decided_at).ok()?;
        let (features, zone) = self.audience.get(&format!("{date}:{}", d.customer_id))?;
        let index = self.world.index_of(d.customer_id.as_str())?;
        let zone = zone.as_deref();
        let mut organic: Vec<(Date, Organic)> = Vec::new();
        let mask = space.eligibility_mask(features);
        let mut actions = Vec::new();
        let mut bau = None;
        let bau_action = self.setup.business_as_usual();
        for (id, action) in space.iter_for(mask) {
            let (value, conversion) = self.value(index, &action, d.decided_at, date, zone, &mut organic);
            if bau_action == Some(&action) {
                bau = Some(value);
            }
            actions.push((id.0, value, conversion));
        }
        let taken = actions.iter().find(|(id, _, _)| *id == d.action.0).map(|a| a.1);
        let taken = match taken {
            Some(v) => v,
            None => {
                self.value(
                    index,
                    &space.decode(d.action).ok()?,
                    d.decided_at,
                    date,
                    zone,
                    &mut organic,
                )
                .0
            }
        };
        let business_as_usual = match bau {
            Some(v) => v,
            None => self.no_message(index, d.decided_at, 0.0, &mut organic).0,
        };
        Some(Scored {
            features: features.clone(),
            taken,
            business_as_usual,
            actions,
        })
    }

    /// The organic conversions of customer `index` over the window starting on UTC `day`.
    fn organic(&self, index: usize, day: Date, decided_at: Timestamp, cache: &mut Vec<(Date, Organic)>) -> Organic {
        if let Some((_, o)) = cache.iter().find(|(d, _)| *d == day) {
            return *o;
        }
        let rate = match self.valuation {
            Valuation::Value {
                annual_discount_rate: Some(r),
                ..
            } => Some(r),
            _ => None,
        };
        let mut o = Organic { none: 1.0, value: 0.0 };
        let mut d = day;
        for _ in 0..self.horizon_days {
            let e = self.world.expected_organic(index, d);
            o.none *= 1.0 - e.convert;
            // An organic conversion happens some time that UTC day: discounted from its noon.
            let noon = TimeZone::UTC.to_timestamp(d.at(12, 0, 0, 0)).unwrap_or(decided_at);
            o.value += e.revenue * discount(rate, decided_at, noon);
            d = d.tomorrow().unwrap_or(d);
        }
        cache.push((day, o));
        o
    }

    /// The value and P(conversion) of sending nothing (the options' `cost` still charged).
    fn no_message(
        &self,
        index: usize,
        decided_at: Timestamp,
        cost: f64,
        cache: &mut Vec<(Date, Organic)>,
    ) -> (f64, f64) {
        let day = TimeZone::UTC.to_datetime(decided_at).date();
        let o = self.organic(index, day, decided_at, cache);
        (
            self.valuation.of_parts(o.none, [], o.value, cost),
            Valuation::Converted.of_parts(o.none, [], 0.0, 0.0),
        )
    }

    /// The value and P(conversion) of `action` for customer `index`, decided at `decided_at` in a run
    /// of `date`.
    fn value(
        &self,
        index: usize,
        action: &JointAction,
        decided_at: Timestamp,
        date: Date,
        zone: Option<&str>,
        cache: &mut Vec<(Date, Organic)>,
    ) -> (f64, f64) {
        let cost = self.setup.cost(action);
        let Some((at, target, properties)) = self.delivery_plan(action, decided_at, date, zone) else {
            return self.no_message(index, decided_at, cost, cache);
        };
        let Some(channels) = self.channels.get(&target).filter(|c| !c.is_empty()) else {
            return self.no_message(index, decided_at, cost, cache);
        };
        let rate = match self.valuation {
            Valuation::Value {
                annual_discount_rate, ..
            } => annual_discount_rate,
            _ => None,
        };
        let o = self.organic(index, TimeZone::UTC.to_datetime(at).date(), decided_at, cache);
        let mut caused = Vec::with_capacity(channels.len());
        let mut value = o.value;
        for (channel, campaign_id, canvas_id) in channels {
            let delivery = Delivery {
                channel: *channel,
                campaign_id: campaign_id.clone(),
                canvas_id: canvas_id.clone(),
                properties: properties.clone(),
                at,
                recent_sends: 0,
            };
            let e = self.world.expected_caused(index, &delivery);
            caused.push(e.convert);
            // A caused conversion follows the send by a day or two: discounted from the send.
            value += e.revenue * discount(rate, decided_at, at);
        }
        (
            self.valuation.of_parts(o.none, caused.iter().copied(), value, cost),
            Valuation::Converted.of_parts(o.none, caused, 0.0, 0.0),
        )
    }

    /// When and through what `action` is delivered, as the activator plans it, with its properties;
    /// `None` when it sends nothing (a frequency "skip").
    fn delivery_plan(
        &self,
        action: &JointAction,
        decided_at: Timestamp,
        date: Date,
        zone: Option<&str>,
    ) -> Option<(Timestamp, String, serde_json::Map<String, serde_json::Value>)> {
        let mut properties = serde_json::Map::new();
        let mut target = self.use_case.activation.default_target.as_ref().map(target_key);
        for (dim, &o) in self.use_case.actions.dimensions().iter().zip(&action.0) {
            let option = dim.options.get(o as usize)?;
            match &option.payload {
                OptionPayload::Channel { target: t, .. } => {
                    target = Some(target_key(t));
                    continue;
                }
                OptionPayload::Frequency { skip: true, .. } => return None,
                _ => {}
            }
            for (k, v) in &option.properties {
                properties.insert(k.clone(), v.clone());
            }
            properties.insert(dim.name.to_string(), serde_json::Value::String(option.id.to_string()));
        }
        // Activation's rule, with the engine's margin: the first occurrence of the send time (on the
        // weekday, if any) at least the margin after the decision; without either, at once.
        let slot = self
            .scheduler
            .slot(
                &action.0,
                date,
                zone,
                Some(decided_at.saturating_add(self.margin).ok()?),
            )
            .ok()?;
        Some((slot.at().unwrap_or(decided_at), target?, properties))
    }

    /// Summarises scored decisions: means of the AI, business as usual, uniform random and the
    /// ceiling, and the best single joint action over the same customers.
    pub fn summarise(&self, scored: &[Scored]) -> OracleSummary {
        summarise(scored, |id| self.describe(id))
    }

    /// `dimension=option` pairs of an action id.
    pub fn describe(&self, id: u64) -> String {
        let space = &self.use_case.actions;
        space.decode(ActionId(id)).map_or_else(
            |_| format!("action {id}"),
            |a| {
                space
                    .dimensions()
                    .iter()
                    .zip(&a.0)
                    .map(|(d, &o)| {
                        let option = d.options.get(o as usize).map(|x| x.id.to_string()).unwrap_or_default();
                        format!("{}={option}", d.name)
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            },
        )
    }
}

/// The organic conversions over one window: P(none) and their expected (discounted) value.
#[derive(Debug, Clone, Copy)]
struct Organic {
    none: f64,
    value: f64,
}

/// The NPV discount factor of a value at `at` for a decision at `decided_at` (1 without a rate).
fn discount(rate: Option<f64>, decided_at: Timestamp, at: Timestamp) -> f64 {
    rate.map_or(1.0, |r| {
        let days = (at - decided_at).as_secs_f64().max(0.0) / 86_400.0;
        (1.0 + r).powf(-days / 365.0)
    })
}

/// See [`Oracle::summarise`]; `describe` names an action id.
pub fn summarise(scored: &[Scored], describe: impl Fn(u64) -> String) -> OracleSummary {
    let mut single: HashMap<u64, f64> = HashMap::new();
    for s in scored {
        for (id, _, _) in &s.actions {
            single.entry(*id).or_insert(0.0);
        }
    }
    for s in scored {
        let by_id: HashMap<u64, f64> = s.actions.iter().map(|(id, v, _)| (*id, *v)).collect();
        for (id, total) in &mut single {
            *total += by_id.get(id).copied().unwrap_or(s.business_as_usual);
        }
    }
    let n = scored.len().max(1) as f64;
    let best = single
        .iter()
        .map(|(id, total)| (*id, total / n))
        .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)));
    let column = |f: &dyn Fn(&Scored) -> f64| Estimate::of(&scored.iter().map(f).collect::<Vec<_>>());
    OracleSummary {
        ai: column(&|s| s.taken),
        business_as_usual: column(&|s| s.business_as_usual),
        uniform: column(&|s| {
            if s.actions.is_empty() {
                s.business_as_usual
            } else {
                s.actions.iter().map(|a| a.1).sum::<f64>() / s.actions.len() as f64
            }
        }),
        ceiling: column(&|s| {
            s.actions
                .iter()
                .map(|a| a.1)
                .fold(f64::NEG_INFINITY, f64::max)
                .max(if s.actions.is_empty() {
                    s.business_as_usual
                } else {
                    f64::NEG_INFINITY
                })
        }),
        single_best: best.map_or(f64::NAN, |b| b.1),
        single_best_action: best.map(|b| describe(b.0)).unwrap_or_default(),
    }
}

/// Up to `n` of `items`, evenly spread over them (all of them when there are at most `n`).
pub fn spread<T: Copy>(items: &[T], n: usize) -> Vec<T> {
    if items.len() <= n {
        return items.to_vec();
    }
    (0..n).map(|k| items[k * items.len() / n]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use offerloop_domain::metric::MetricKind;

    fn metric(kind: MetricKind) -> SuccessMetric {
        SuccessMetric {
            kind,
            attribution_window_days: 14,
        }
    }

    #[test]
    fn each_metric_is_valued_as_itself_or_refused() {
        let purchase = ConversionEvent::Purchase {
            product_id: "order".into(),
        };
        let signup = ConversionEvent::CustomEvent {
            name: "signup".into(),
            value_property: Some("amount".into()),
        };
        let revenue = metric(MetricKind::Revenue {
            product: None,
            subtract_option_cost: true,
        });
        assert_eq!(
            Valuation::of(&revenue, &purchase),
            Ok(Valuation::Value {
                subtract_cost: true,
                annual_discount_rate: None
            })
        );
        assert!(Valuation::of(&revenue, &signup).is_err_and(|e| e.contains("signup")));
        let other_product = metric(MetricKind::Arpu {
            product: Some("gift".into()),
        });
        assert!(Valuation::of(&other_product, &purchase).is_err_and(|e| e.contains("gift")));
        let renewal = metric(MetricKind::Renewal { event: "signup".into() });
        assert_eq!(Valuation::of(&renewal, &signup), Ok(Valuation::Converted));
        let churn = metric(MetricKind::Retention {
            active_event: None,
            churn_event: Some("signup".into()),
        });
        assert_eq!(Valuation::of(&churn, &signup), Ok(Valuation::NotConverted));
        let wrong_property = metric(MetricKind::EventValue {
            event: "signup".into(),
            property: "points".into(),
            subtract_option_cost: false,
        });
        assert!(Valuation::of(&wrong_property, &signup).is_err_and(|e| e.contains("points")));
        let npv = metric(MetricKind::Npv {
            product: None,
            annual_discount_rate: 0.12,
            subtract_option_cost: true,
        });
        assert_eq!(
            Valuation::of(&npv, &purchase),
            Ok(Valuation::Value {
                subtract_cost: true,
                annual_discount_rate: Some(0.12)
            })
        );
        assert_eq!(metric_label(&revenue), "revenue in 14 days − option cost");
        assert_eq!(metric_label(&renewal), "renewal: 1 if `signup` within 14 days");
    }

    #[test]
    fn parts_combine_into_the_metric() {
        // No organic conversion with probability 0.8; two deliveries causing 0.1 and 0.5.
        let p = 1.0 - 0.8 * 0.9 * 0.5;
        assert!((Valuation::Converted.of_parts(0.8, [0.1, 0.5], 0.0, 0.0) - p).abs() < 1e-12);
        assert!((Valuation::NotConverted.of_parts(0.8, [0.1, 0.5], 0.0, 0.0) - (1.0 - p)).abs() < 1e-12);
        let value = Valuation::Value {
            subtract_cost: true,
            annual_discount_rate: None,
        };
        assert_eq!(value.of_parts(0.8, [0.1], 30.0, 4.0), 26.0);
        let one_year = Timestamp::UNIX_EPOCH + jiff::SignedDuration::from_hours(24 * 365);
        assert!((discount(Some(0.1), Timestamp::UNIX_EPOCH, one_year) - 1.0 / 1.1).abs() < 1e-12);
        assert_eq!(discount(None, Timestamp::UNIX_EPOCH, one_year), 1.0);
    }

    fn scored(taken: f64, bau: f64, actions: &[(u64, f64)]) -> Scored {
        Scored {
            features: Vec::new(),
            taken,
            business_as_usual: bau,
            actions: actions.iter().map(|&(id, v)| (id, v, 0.0)).collect(),
        }
    }

    #[test]
    fn summaries_find_the_single_best_action_and_the_score() {
        // Action 2 is best for the first customer, action 1 for the second; action 2 is not eligible
        // for the second, who gets business as usual (0.0) under it.
        let s = [scored(3.0, 1.0, &[(1, 2.0), (2, 4.0)]), scored(2.0, 0.0, &[(1, 3.0)])];
        let summary = summarise(&s, |id| format!("a{id}"));
        assert_eq!(summary.ai.mean, 2.5);
        assert_eq!(summary.business_as_usual.mean, 0.5);
        assert_eq!(summary.uniform.mean, 3.0);
        assert_eq!(summary.ceiling.mean, 3.5);
        assert_eq!((summary.single_best, summary.single_best_action.as_str()), (2.5, "a1"));
        assert_eq!(summary.score(), Some(-100.0));
        assert_eq!(normalised(1.0, 1.0, 1.0), None);
        assert_eq!(spread(&[1, 2, 3, 4, 5, 6], 3), vec![1, 3, 5]);
        assert_eq!(spread(&[1, 2], 3), vec![1, 2]);
    }
}
