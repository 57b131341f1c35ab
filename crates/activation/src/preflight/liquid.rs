//! The Liquid row: a small scanner for the references a message makes to what offerloop sends
//! ([`scan_liquid`]), and the rows that judge each reference against what `plan` sends
//! (`sent_properties`, `always_sent_properties`, `written_attributes`) and the namespace the message's
//! campaign, canvas or template receives.

use std::collections::BTreeSet;

use offerloop_braze::api::catalog::{CampaignDetailsResponse, CampaignMessage, CanvasDetailsResponse};
use offerloop_domain::UseCase;
use serde::Serialize;
use serde_json::Value;

use super::{CheckResult, names};
use crate::plan;

/// Where a Liquid reference reads from.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LiquidNamespace {
    /// `api_trigger_properties.${…}`: an API-triggered campaign's per-recipient properties.
    ApiTriggerProperties,
    /// `canvas_entry_properties.${…}`: a canvas's entry properties (older name of `context`).
    CanvasEntryProperties,
    /// `context.${…}`: a canvas's context.
    Context,
    /// `custom_attribute.${…}`: a profile attribute.
    CustomAttribute,
}

impl LiquidNamespace {
    /// Every namespace.
    pub const ALL: [Self; 4] = [
        Self::ApiTriggerProperties,
        Self::CanvasEntryProperties,
        Self::Context,
        Self::CustomAttribute,
    ];

    /// The Liquid object name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ApiTriggerProperties => "api_trigger_properties",
            Self::CanvasEntryProperties => "canvas_entry_properties",
            Self::Context => "context",
            Self::CustomAttribute => "custom_attribute",
        }
    }

    /// Whether it carries the properties offerloop sends with a message (all but custom attributes).
    pub fn is_property(self) -> bool {
        !matches!(self, Self::CustomAttribute)
    }
}

/// One reference found by [`scan_liquid`].
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct LiquidRef {
    /// The namespace.
    pub namespace: LiquidNamespace,
    /// The name inside `${…}`.
    pub name: String,
    /// Followed, in the same tag, by a `default:` filter.
    pub has_default: bool,
    /// Part of an `{% if %}`, `{% elsif %}`, `{% unless %}` or `{% case %}` condition (a test, which
    /// is harmless when the property is absent).
    pub in_condition: bool,
    /// Property names (of any property namespace) whose presence the enclosing branches test: the
    /// reference renders only when each of them is present. For `a or b`, only names in every clause.
    pub guards: BTreeSet<String>,
}

impl LiquidRef {
    /// The reference as written: `namespace.${name}`.
    pub fn text(&self) -> String {
        format!("{}.${{{}}}", self.namespace.as_str(), self.name)
    }
}

/// One Liquid tag: `{{ … }}` (output) or `{% … %}` (logic), its inside and where it ends.
struct Tag<'t> {
    logic: bool,
    inner: &'t str,
    end: usize,
}

/// The next tag at or after byte `from`. Quoted strings and `${…}` inside a tag are skipped when
/// looking for its end, so `{{api_trigger_properties.${x}}}` ends after the third brace.
fn next_tag(text: &str, from: usize) -> Option<Tag<'_>> {
    let bytes = text.as_bytes();
    let mut start = from;
    let logic = loop {
        let at = text.get(start..)?.find('{')? + start;
        match bytes.get(at + 1) {
            Some(b'{') => {
                start = at;
                break false;
            }
            Some(b'%') => {
                start = at;
                break true;
            }
            Some(_) => start = at + 1,
            None => return None,
        }
    };
    let close = if logic { b'%' } else { b'}' };
    let mut i = start + 2;
    let mut quote: Option<u8> = None;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if b == b'\'' || b == b'"' => quote = Some(b),
            None if b == b'$' && bytes.get(i + 1) == Some(&b'{') => {
                match text.get(i..).and_then(|rest| rest.find('}')) {
                    Some(offset) => i += offset,
                    None => i = bytes.len(),
                }
            }
            None if b == close && bytes.get(i + 1) == Some(&b'}') => {
                return Some(Tag {
                    logic,
                    inner: text.get(start + 2..i).unwrap_or(""),
                    end: i + 2,
                });
            }
            None => {}
        }
        i += 1;
    }
    Some(Tag {
        logic,
        inner: text.get(start + 2..).unwrap_or(""),
        end: bytes.len(),
    })
}

/// Every `namespace.${name}` in `expr`, with its byte offset, in order.
fn find_refs(expr: &str) -> Vec<(usize, LiquidNamespace, String)> {
    let mut found = Vec::new();
    for namespace in LiquidNamespace::ALL {
        let needle = format!("{}.${{", namespace.as_str());
        let mut from = 0;
        while let Some(offset) = expr.get(from..).and_then(|rest| rest.find(&needle)) {
            let at = from + offset;
            from = at + needle.len();
            let standalone = expr[..at]
                .chars()
                .next_back()
                .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '.'));
            let Some(len) = expr[from..].find('}') else {
                break;
            };
            let name = expr[from..from + len].trim();
            if standalone && !name.is_empty() {
                found.push((at, namespace, name.to_owned()));
            }
            from += len;
        }
    }
    found.sort_by_key(|(at, _, _)| *at);
    found
}

/// The byte offset of the first `| default` filter in `expr`, if any.
fn default_filter_at(expr: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(offset) = expr.get(from..).and_then(|rest| rest.find('|')) {
        let at = from + offset;
        if expr[at + 1..].trim_start().starts_with("default") {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// The property names a condition guarantees present: those named in every `or` clause.
fn guard_set(condition: &str) -> BTreeSet<String> {
    let mut clauses = condition.split(" or ").map(|clause| {
        find_refs(clause)
            .into_iter()
            .filter(|(_, ns, _)| ns.is_property())
            .map(|(_, _, name)| name)
            .collect::<BTreeSet<String>>()
    });
    let first = clauses.next().unwrap_or_default();
    clauses.fold(first, |acc, clause| acc.intersection(&clause).cloned().collect())
}

/// Which block a frame of the scanner's stack is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Block {
    If,
    Unless,
    Case,
    For,
}

/// An open block and what its current branch guarantees.
#[derive(Debug)]
struct Frame {
    block: Block,
    /// What the block's own condition tests (an `unless`'s `else`, a `case`'s `when`).
    condition: BTreeSet<String>,
    /// What the current branch guarantees present.
    active: BTreeSet<String>,
}

/// Every `api_trigger_properties`, `canvas_entry_properties`, `context` and `custom_attribute`
/// reference inside the Liquid tags of `text`, in order, with what guards it.
///
/// A small scanner, not a Liquid parser: it follows `if`/`elsif`/`else`/`unless`/`case`/`when`/`for`
/// blocks to know which properties the current branch tests for, skips `raw` and `comment` blocks,
/// and treats a `| default` filter in a tag as covering the references before it. It does not
/// evaluate comparisons: `{% if x == nil %}` counts as a test of `x`, like `{% if x %}`.
pub fn scan_liquid(text: &str) -> Vec<LiquidRef> {
    let mut out = Vec::new();
    let mut frames: Vec<Frame> = Vec::new();
    let mut skip_until: Option<&str> = None;
    let mut at = 0;
    while let Some(tag) = next_tag(text, at) {
        at = tag.end;
        let inner = tag.inner.trim().trim_matches('-').trim();
        let (word, args) = inner
            .split_once(char::is_whitespace)
            .map_or((inner, ""), |(w, a)| (w, a.trim()));
        if let Some(end) = skip_until {
            if tag.logic && word == end {
                skip_until = None;
            }
            continue;
        }
        let guards =
            |frames: &[Frame]| -> BTreeSet<String> { frames.iter().flat_map(|f| f.active.iter().cloned()).collect() };
        let push_expression = |out: &mut Vec<LiquidRef>, expr: &str, guards: BTreeSet<String>| {
            let default_at = default_filter_at(expr);
            for (pos, namespace, name) in find_refs(expr) {
                out.push(LiquidRef {
                    namespace,
                    name,
                    has_default: default_at.is_some_and(|d| pos < d),
                    in_condition: false,
                    guards: guards.clone(),
                });
            }
        };
        let push_condition = |out: &mut Vec<LiquidRef>, expr: &str, guards: BTreeSet<String>| {
            for (_, namespace, name) in find_refs(expr) {
                out.push(LiquidRef {
                    namespace,
                    name,
                    has_default: false,
                    in_condition: true,
                    guards: guards.clone(),
                });
            }
        };
        if !tag.logic {
            push_expression(&mut out, inner, guards(&frames));
            continue;
        }
        match word {
            "raw" => skip_until = Some("endraw"),
            "comment" => skip_until = Some("endcomment"),
            "if" | "unless" | "case" => {
                push_condition(&mut out, args, guards(&frames));
                let condition = guard_set(args);
                let (block, active) = match word {
                    "if" => (Block::If, condition.clone()),
                    "unless" => (Block::Unless, BTreeSet::new()),
                    _ => (Block::Case, BTreeSet::new()),
                };
                frames.push(Frame {
                    block,
                    condition,
                    active,
                });
            }
            "elsif" => {
                let outer = guards(frames.split_last().map_or(&[][..], |(_, rest)| rest));
                push_condition(&mut out, args, outer);
                if let Some(frame) = frames.last_mut() {
                    frame.active = guard_set(args);
                }
            }
            "when" => {
                if let Some(frame) = frames.last_mut().filter(|f| f.block == Block::Case) {
                    frame.active = frame.condition.clone();
                }
            }
            "else" => {
                if let Some(frame) = frames.last_mut() {
                    frame.active = match frame.block {
                        Block::Unless => frame.condition.clone(),
                        Block::If | Block::Case | Block::For => BTreeSet::new(),
                    };
                }
            }
            "for" => {
                push_expression(&mut out, args, guards(&frames));
                frames.push(Frame {
                    block: Block::For,
                    condition: BTreeSet::new(),
                    active: BTreeSet::new(),
                });
            }
            "endif" | "endunless" | "endcase" | "endfor" => {
                let block = match word {
                    "endif" => Block::If,
                    "endunless" => Block::Unless,
                    "endcase" => Block::Case,
                    _ => Block::For,
                };
                if let Some(i) = frames.iter().rposition(|f| f.block == block) {
                    frames.truncate(i);
                }
            }
            _ => push_expression(&mut out, args, guards(&frames)),
        }
    }
    out
}

/// What kind of Braze object a scanned text belongs to, which decides the namespaces it may read.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum SourceKind {
    Campaign,
    Canvas,
    /// An email template: a campaign or a canvas may use it, so every property namespace is fine.
    Template,
}

impl SourceKind {
    fn accepts(self, namespace: LiquidNamespace) -> bool {
        match self {
            Self::Campaign => namespace == LiquidNamespace::ApiTriggerProperties,
            Self::Canvas => matches!(
                namespace,
                LiquidNamespace::CanvasEntryProperties | LiquidNamespace::Context
            ),
            Self::Template => namespace.is_property(),
        }
    }

    fn expected(self) -> &'static str {
        match self {
            Self::Campaign => "`api_trigger_properties` (an API-triggered campaign)",
            Self::Canvas => "`context` or `canvas_entry_properties` (a canvas)",
            Self::Template => "the properties of the campaign or canvas that uses it",
        }
    }
}

/// The Liquid-bearing fields of one message.
#[derive(Debug)]
pub(super) struct LiquidSource {
    /// "campaign `id` message `Variant 1` (email)".
    pub(super) label: String,
    /// Which namespaces it may read.
    pub(super) kind: SourceKind,
    /// (field path, text).
    pub(super) fields: Vec<(String, String)>,
}

/// Every string field of a message (nested objects and arrays included), by path.
fn message_fields(message: &CampaignMessage) -> Vec<(String, String)> {
    fn walk(path: String, value: &Value, out: &mut Vec<(String, String)>) {
        match value {
            Value::String(s) => out.push((path, s.clone())),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    walk(format!("{path}[{i}]"), item, out);
                }
            }
            Value::Object(map) => {
                for (k, v) in map {
                    walk(format!("{path}.{k}"), v, out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    for (key, value) in &message.fields {
        walk(key.clone(), value, &mut out);
    }
    out
}

fn message_source(kind: SourceKind, owner: &str, id: &str, message: &CampaignMessage) -> LiquidSource {
    let name = message.name.as_deref().unwrap_or(id);
    let channel = message.channel.as_deref().unwrap_or("?");
    LiquidSource {
        label: format!("{owner} message `{name}` ({channel})"),
        kind,
        fields: message_fields(message),
    }
}

/// The Liquid sources of a campaign's messages (its control variants have none).
pub(super) fn campaign_sources(id: &str, details: &CampaignDetailsResponse) -> Vec<LiquidSource> {
    let owner = format!("campaign `{id}`");
    details
        .messages
        .iter()
        .filter(|(_, m)| !m.is_control())
        .map(|(key, message)| message_source(SourceKind::Campaign, &owner, key, message))
        .collect()
}

/// The Liquid sources of every message of every step of a canvas.
pub(super) fn canvas_sources(id: &str, details: &CanvasDetailsResponse) -> Vec<LiquidSource> {
    let mut sources = Vec::new();
    for step in &details.steps {
        let owner = format!("canvas `{id}` step `{}`", step.name);
        for (key, message) in step.messages.iter().filter(|(_, m)| !m.is_control()) {
            sources.push(message_source(SourceKind::Canvas, &owner, key, message));
        }
    }
    sources
}

/// The Liquid rows for the scanned sources; `unread` names the targets whose messages could not be
/// read (their references are not checked, and "unused" is not judged).
pub(super) fn liquid_checks(use_case: &UseCase, sources: &[LiquidSource], unread: &[String]) -> Vec<CheckResult> {
    let sent = plan::sent_properties(use_case);
    let always = plan::always_sent_properties(use_case);
    let written = plan::written_attributes(use_case);
    let prefix = use_case.activation.attribute_prefix.as_str();
    let sent_list = || sent.keys().map(String::as_str).collect::<Vec<_>>().join(", ");
    let mut rows: Vec<CheckResult> = Vec::new();
    let mut push = |row: CheckResult| {
        if !rows.contains(&row) {
            rows.push(row);
        }
    };
    let mut used: BTreeSet<&str> = BTreeSet::new();
    let mut references = 0usize;
    for source in sources {
        for (field, text) in &source.fields {
            for r in scan_liquid(text) {
                references += 1;
                let place = format!("`{}` in {} {field}", r.text(), source.label);
                if r.namespace == LiquidNamespace::CustomAttribute {
                    let offerloops = !prefix.is_empty() && r.name.starts_with(prefix);
                    if offerloops && !written.contains(&r.name) {
                        let fix = if use_case.activation.write_profile_attributes {
                            let list = written.iter().map(String::as_str).collect::<Vec<_>>().join(", ");
                            format!("correct the name: offerloop writes {list}")
                        } else {
                            "set `activation.write_profile_attributes = true`, or stop reading the attribute".to_owned()
                        };
                        push(CheckResult::fail(
                            names::LIQUID_ATTRIBUTE,
                            format!("{place}: offerloop never writes custom attribute `{}`", r.name),
                            fix,
                        ));
                    }
                    continue;
                }
                let Some((name, senders)) = sent.get_key_value(&r.name) else {
                    push(CheckResult::fail(
                        names::LIQUID_UNKNOWN,
                        format!("{place}: offerloop never sends `{}`", r.name),
                        format!(
                            "correct the name, or add `{}` to an option's `properties`; offerloop sends: {}",
                            r.name,
                            sent_list()
                        ),
                    ));
                    continue;
                };
                used.insert(name.as_str());
                if !source.kind.accepts(r.namespace) {
                    push(CheckResult::fail(
                        names::LIQUID_NAMESPACE,
                        format!("{place}: this message receives {}", source.kind.expected()),
                        format!("write `{}` with the right namespace", r.name),
                    ));
                    continue;
                }
                let guarded = r.has_default
                    || r.in_condition
                    || always.contains(&r.name)
                    || r.guards
                        .iter()
                        .any(|g| sent.get(g).is_some_and(|gs| gs.is_subset(senders)));
                if !guarded {
                    let options = senders.iter().map(String::as_str).collect::<Vec<_>>().join(", ");
                    push(CheckResult::warn(
                        names::LIQUID_UNGUARDED,
                        format!(
                            "{place}: only options {options} send `{}`; it renders empty for the others",
                            r.name
                        ),
                        Some(format!("add `| default: '…'` or wrap it in `{{% if {} %}}`", r.text())),
                    ));
                }
            }
        }
    }
    if unread.is_empty() {
        let unused: Vec<&str> = sent.keys().map(String::as_str).filter(|k| !used.contains(k)).collect();
        if !unused.is_empty() {
            push(CheckResult::warn(
                names::LIQUID_UNUSED,
                format!(
                    "offerloop sends {} but no message uses {}",
                    unused.iter().map(|u| format!("`{u}`")).collect::<Vec<_>>().join(", "),
                    if unused.len() == 1 { "it" } else { "them" }
                ),
                Some(format!(
                    "use {} in a message, or drop {} from the options' `properties` (a dimension's own name is always sent)",
                    if unused.len() == 1 { "it" } else { "them" },
                    if unused.len() == 1 { "it" } else { "them" },
                )),
            ));
        }
    } else {
        push(CheckResult::warn(
            names::LIQUID,
            format!(
                "not checked for {}: their messages could not be read",
                unread.join(", ")
            ),
            None,
        ));
    }
    let clean = !rows
        .iter()
        .any(|r| r.name != names::LIQUID_UNUSED && r.name != names::LIQUID);
    if clean && !sources.is_empty() {
        let messages = sources.len();
        rows.insert(
            0,
            CheckResult::pass(
                names::LIQUID,
                format!("{references} reference(s) in {messages} message(s): every property is one offerloop sends"),
            ),
        );
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::tests::example;
    use crate::preflight::CheckStatus;
    use crate::preflight::tests::{EVERY_PROPERTY, statuses};

    /// `(namespace, name, has_default, in_condition, guards)` of each reference.
    fn check_scan(text: &str, expect: &[(LiquidNamespace, &str, bool, bool, &[&str])]) {
        let got: Vec<(LiquidNamespace, String, bool, bool, Vec<String>)> = scan_liquid(text)
            .into_iter()
            .map(|r| {
                (
                    r.namespace,
                    r.name,
                    r.has_default,
                    r.in_condition,
                    r.guards.into_iter().collect(),
                )
            })
            .collect();
        let want: Vec<(LiquidNamespace, String, bool, bool, Vec<String>)> = expect
            .iter()
            .map(|(ns, name, d, c, g)| {
                (
                    *ns,
                    (*name).to_owned(),
                    *d,
                    *c,
                    g.iter().map(|s| (*s).to_owned()).collect(),
                )
            })
            .collect();
        assert_eq!(got, want, "{text}");
    }

    use LiquidNamespace::{
        ApiTriggerProperties as Api, CanvasEntryProperties as Entry, Context, CustomAttribute as Attr,
    };

    #[test]
    fn scanner_finds_references_inside_tags_only() {
        check_scan(
            "api_trigger_properties.${plain} {{api_trigger_properties.${a}}} and {{ context.${b} | upcase }}",
            &[(Api, "a", false, false, &[]), (Context, "b", false, false, &[])],
        );
        // `}}}` closes the `${…}` first; quotes hide braces; other objects are not references.
        check_scan(
            "{{ '}}' }}{{custom_attribute.${offerloop_offer}}}{{${first_name}}}{{my_context.${x}}}{{event_properties.${y}}}",
            &[(Attr, "offerloop_offer", false, false, &[])],
        );
        check_scan(
            "{% raw %}{{api_trigger_properties.${hidden}}}{% endraw %}{% comment %}{{context.${gone}}}{% endcomment %}{{canvas_entry_properties.${seen}}}",
            &[(Entry, "seen", false, false, &[])],
        );
        // An unterminated tag still yields its references.
        check_scan("{{api_trigger_properties.${cut}", &[(Api, "cut", false, false, &[])]);
    }

    #[test]
    fn scanner_sees_default_filters_before_the_reference_only() {
        check_scan(
            "{{api_trigger_properties.${a} | default: 'x'}}{{api_trigger_properties.${b}|default:api_trigger_properties.${c}}}",
            &[
                (Api, "a", true, false, &[]),
                (Api, "b", true, false, &[]),
                (Api, "c", false, false, &[]),
            ],
        );
        check_scan(
            "{% assign t = api_trigger_properties.${t} | default: 'none' %}{{ api_trigger_properties.${u} | append: 'default' }}",
            &[(Api, "t", true, false, &[]), (Api, "u", false, false, &[])],
        );
    }

    #[test]
    fn scanner_follows_if_elsif_else_unless_and_case() {
        // The winback SMS body.
        check_scan(
            "{{${first_name} | default: 'Hi'}}, come back: {% if api_trigger_properties.${discount_pct} %}{{api_trigger_properties.${discount_pct}}}% off, code {{api_trigger_properties.${coupon_prefix}}}{% elsif api_trigger_properties.${free_shipping} %}free shipping{% else %}{{api_trigger_properties.${after}}}{% endif %}{{api_trigger_properties.${outside}}}",
            &[
                (Api, "discount_pct", false, true, &[]),
                (Api, "discount_pct", false, false, &["discount_pct"]),
                (Api, "coupon_prefix", false, false, &["discount_pct"]),
                (Api, "free_shipping", false, true, &[]),
                (Api, "after", false, false, &[]),
                (Api, "outside", false, false, &[]),
            ],
        );
        // Nested blocks add up; `unless` guards only its `else`; `or` keeps what every clause tests.
        check_scan(
            "{%- if context.${a} and context.${b} -%}{% if context.${c} or context.${a} %}{{context.${x}}}{% endif %}{% endif %}\
             {% unless context.${u} %}{{context.${y}}}{% else %}{{context.${z}}}{% endunless %}\
             {% case context.${k} %}{% when 'v' %}{{context.${w}}}{% else %}{{context.${e}}}{% endcase %}\
             {% for i in context.${list} %}{% else %}{{context.${f}}}{% endfor %}",
            &[
                (Context, "a", false, true, &[]),
                (Context, "b", false, true, &[]),
                (Context, "c", false, true, &["a", "b"]),
                (Context, "a", false, true, &["a", "b"]),
                (Context, "x", false, false, &["a", "b"]),
                (Context, "u", false, true, &[]),
                (Context, "y", false, false, &[]),
                (Context, "z", false, false, &["u"]),
                (Context, "k", false, true, &[]),
                (Context, "w", false, false, &["k"]),
                (Context, "e", false, false, &[]),
                (Context, "list", false, false, &[]),
                (Context, "f", false, false, &[]),
            ],
        );
    }

    #[test]
    fn sent_properties_mirror_the_plan() {
        let use_case = example("winback");
        let sent = plan::sent_properties(&use_case);
        let ids = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<BTreeSet<String>>();
        assert_eq!(sent["offer"], ids(&["none", "pct10", "pct20", "free_shipping"]));
        assert_eq!(sent["discount_pct"], ids(&["pct10", "pct20"]));
        assert_eq!(sent["free_shipping"], ids(&["free_shipping"]));
        assert_eq!(sent["subject_text"], ids(&["miss_you", "new_arrivals"]));
        assert_eq!(sent["send_time"], ids(&["morning", "lunch", "evening"]));
        assert!(!sent.contains_key("channel"), "the channel dimension sends nothing");
        assert_eq!(
            plan::always_sent_properties(&use_case),
            ids(&["offer", "send_time", "subject", "subject_text"])
        );
        assert_eq!(
            plan::written_attributes(&use_case),
            ids(&[
                "offerloop_channel",
                "offerloop_offer",
                "offerloop_send_time",
                "offerloop_subject"
            ])
        );
    }

    fn source(kind: SourceKind, body: &str) -> LiquidSource {
        LiquidSource {
            label: "campaign `c` message `m` (email)".to_owned(),
            kind,
            fields: vec![("body".to_owned(), body.to_owned())],
        }
    }

    #[test]
    fn liquid_rows_judge_each_reference() {
        let use_case = example("winback");
        let rows = liquid_checks(&use_case, &[source(SourceKind::Campaign, EVERY_PROPERTY)], &[]);
        assert_eq!(statuses(&rows), [(names::LIQUID, CheckStatus::Pass)], "{rows:#?}");

        let rows = liquid_checks(
            &use_case,
            &[
                source(SourceKind::Campaign, EVERY_PROPERTY),
                source(
                    SourceKind::Campaign,
                    "{{api_trigger_properties.${coupon_prefix}}}{{context.${offer}}}{{api_trigger_properties.${tier}}}\
                     {{custom_attribute.${offerloop_offer}}}{{custom_attribute.${offerloop_tier}}}{{custom_attribute.${membership}}}",
                ),
            ],
            &[],
        );
        assert_eq!(
            statuses(&rows),
            [
                (names::LIQUID_UNGUARDED, CheckStatus::Warn),
                (names::LIQUID_NAMESPACE, CheckStatus::Fail),
                (names::LIQUID_UNKNOWN, CheckStatus::Fail),
                (names::LIQUID_ATTRIBUTE, CheckStatus::Fail),
            ],
            "{rows:#?}"
        );
        assert!(rows[0].detail.contains("pct10, pct20"), "{rows:#?}");
        assert!(rows[1].detail.contains("api_trigger_properties"), "{rows:#?}");
        assert!(
            rows[3].detail.contains("offerloop_tier") && rows[3].fix.as_deref().unwrap().contains("offerloop_offer")
        );

        // A canvas reads `context`; unused properties are one warning; unread messages skip "unused".
        let rows = liquid_checks(
            &use_case,
            &[source(
                SourceKind::Canvas,
                "{{context.${subject_text}}}{{canvas_entry_properties.${offer}}}",
            )],
            &[],
        );
        assert_eq!(
            statuses(&rows),
            [
                (names::LIQUID, CheckStatus::Pass),
                (names::LIQUID_UNUSED, CheckStatus::Warn)
            ]
        );
        assert!(
            rows[1]
                .detail
                .contains("`coupon_prefix`, `discount_pct`, `free_shipping`, `send_time`, `subject`")
        );
        let rows = liquid_checks(&use_case, &[], &["campaign `x`".to_owned()]);
        assert_eq!(statuses(&rows), [(names::LIQUID, CheckStatus::Warn)]);
    }

    #[test]
    fn sources_skip_control_variants_and_name_each_message() {
        let details: CampaignDetailsResponse = serde_json::from_value(serde_json::json!({
            "messages": {
                "m-1": {"channel": "email", "name": "Variant 1", "subject": "Hi", "extras": [{"k": "v"}]},
                "m-2": {"type": "control", "name": "Control", "body": "never sent"},
            },
        }))
        .unwrap();
        let sources = campaign_sources("c-1", &details);
        assert_eq!(sources.len(), 1);
        assert_eq!(sources[0].label, "campaign `c-1` message `Variant 1` (email)");
        assert_eq!(sources[0].kind, SourceKind::Campaign);
        assert_eq!(
            sources[0].fields,
            [
                ("extras[0].k".to_owned(), "v".to_owned()),
                ("subject".to_owned(), "Hi".to_owned())
            ]
        );
        let canvas: CanvasDetailsResponse = serde_json::from_value(serde_json::json!({
            "steps": [{"id": "s-1", "name": "Email", "messages": {"v-1": {"channel": "email", "body": "x"}}}],
        }))
        .unwrap();
        let sources = canvas_sources("v", &canvas);
        assert_eq!(sources.len(), 1);
        assert_eq!(sources[0].label, "canvas `v` step `Email` message `v-1` (email)");
        assert_eq!(sources[0].kind, SourceKind::Canvas);
    }
}
