//! The conversion-event row: each campaign's conversion behaviours against what the success metric
//! counts (a ⚠ when none matches: Braze's own reports would count something else).

use offerloop_braze::api::catalog::{CampaignDetailsResponse, ConversionBehavior};
use offerloop_domain::UseCase;
use offerloop_domain::metric::{ConversionOn, MetricKind};

use super::{CheckResult, names};

/// What the success metric counts, in conversion-behaviour terms.
enum Wanted {
    Event(String),
    Purchase(Option<String>),
    NotComparable(&'static str),
}

/// What `kind` counts.
fn wanted(kind: &MetricKind) -> Wanted {
    match kind {
        MetricKind::Conversion {
            on: ConversionOn::CustomEvent { event },
        }
        | MetricKind::Renewal { event }
        | MetricKind::EventValue { event, .. } => Wanted::Event(event.clone()),
        MetricKind::Retention {
            active_event: Some(event),
            ..
        } => Wanted::Event(event.clone()),
        MetricKind::Retention { .. } => Wanted::NotComparable("the metric counts customers who do not churn"),
        MetricKind::Conversion {
            on: ConversionOn::Purchase { product },
        }
        | MetricKind::Revenue { product, .. }
        | MetricKind::Arpu { product }
        | MetricKind::Npv { product, .. } => Wanted::Purchase(product.clone()),
    }
}

/// What the metric counts, for people.
fn wanted_text(wanted: &Wanted) -> String {
    match wanted {
        Wanted::Event(e) => format!("custom event `{e}`"),
        Wanted::Purchase(None) => "any purchase".to_owned(),
        Wanted::Purchase(Some(p)) => format!("a purchase of `{p}`"),
        Wanted::NotComparable(why) => (*why).to_owned(),
    }
}

/// What a conversion behaviour counts, for people.
fn behaviour_text(b: &ConversionBehavior) -> String {
    let kind = b.kind.to_ascii_lowercase();
    match (&b.custom_event_name, &b.product) {
        (Some(e), _) if kind.contains("custom event") => format!("custom event `{e}`"),
        (_, Some(p)) if kind.contains("purchase") => format!("a purchase of `{p}`"),
        _ if kind.contains("any purchase") => "any purchase".to_owned(),
        _ => format!("\"{}\"", b.kind),
    }
}

/// Whether a conversion behaviour counts what the metric counts.
fn behaviour_matches(b: &ConversionBehavior, wanted: &Wanted) -> bool {
    let kind = b.kind.to_ascii_lowercase();
    match wanted {
        Wanted::Event(e) => kind.contains("custom event") && b.custom_event_name.as_deref() == Some(e.as_str()),
        Wanted::Purchase(None) => kind.contains("any purchase"),
        Wanted::Purchase(Some(p)) => kind.contains("specific purchase") && b.product.as_deref() == Some(p.as_str()),
        Wanted::NotComparable(_) => true,
    }
}

/// ⚠ for each campaign that does not track what the success metric counts.
pub(super) fn conversion_checks(
    use_case: &UseCase,
    campaigns: &[(String, CampaignDetailsResponse)],
) -> Vec<CheckResult> {
    let wanted = wanted(&use_case.metric.kind);
    if let Wanted::NotComparable(why) = wanted {
        return vec![CheckResult::pass(
            names::CONVERSION,
            format!("{why}: Braze's conversion behaviours are not compared"),
        )];
    }
    let what = wanted_text(&wanted);
    let mut rows = Vec::new();
    for (id, details) in campaigns {
        if details
            .conversion_behaviors
            .iter()
            .any(|b| behaviour_matches(b, &wanted))
        {
            continue;
        }
        let tracks = if details.conversion_behaviors.is_empty() {
            "no conversion event".to_owned()
        } else {
            details
                .conversion_behaviors
                .iter()
                .map(behaviour_text)
                .collect::<Vec<_>>()
                .join(", ")
        };
        rows.push(CheckResult::warn(
            names::CONVERSION,
            format!("campaign `{id}` tracks {tracks}, but the success metric counts {what}: Braze's reports will disagree with offerloop's"),
            Some(format!("add {what} as the campaign's primary conversion event in Braze")),
        ));
    }
    if rows.is_empty() {
        let detail = if campaigns.is_empty() {
            format!("the metric counts {what}; no campaign to compare (canvas conversion events are not read)")
        } else {
            format!("every campaign tracks {what}, as the success metric does")
        };
        rows.push(CheckResult::pass(names::CONVERSION, detail));
    }
    rows
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::plan::tests::example;
    use crate::preflight::CheckStatus;
    use crate::preflight::tests::statuses;

    #[test]
    fn conversion_behaviours_are_compared_with_the_metric() {
        let behaviour = |value| serde_json::from_value::<ConversionBehavior>(value).unwrap();
        let any = behaviour(json!({"type": "Makes Any Purchase", "window": 259_200}));
        let sku = behaviour(json!({"type": "Makes Specific Purchase", "product": "sku-42"}));
        let event = behaviour(json!({"type": "Performs Custom Event", "custom_event_name": "trial_started"}));
        assert!(behaviour_matches(&any, &Wanted::Purchase(None)));
        assert!(!behaviour_matches(&sku, &Wanted::Purchase(None)));
        assert!(behaviour_matches(&sku, &Wanted::Purchase(Some("sku-42".into()))));
        assert!(!behaviour_matches(&any, &Wanted::Purchase(Some("sku-42".into()))));
        assert!(behaviour_matches(&event, &Wanted::Event("trial_started".into())));
        assert!(!behaviour_matches(&event, &Wanted::Event("signup".into())));

        let use_case = example("lead-nurture");
        let details = |b: Vec<ConversionBehavior>| CampaignDetailsResponse {
            conversion_behaviors: b,
            ..CampaignDetailsResponse::default()
        };
        let rows = conversion_checks(
            &use_case,
            &[
                ("a".into(), details(vec![any.clone(), event])),
                ("b".into(), details(vec![any])),
            ],
        );
        assert_eq!(statuses(&rows), [(names::CONVERSION, CheckStatus::Warn)]);
        assert!(
            rows[0].detail.contains("campaign `b` tracks any purchase"),
            "{}",
            rows[0].detail
        );
        assert!(rows[0].detail.contains("custom event `trial_started`"));
    }
}
