//! The email-template row: the Braze email templates the options' `template`s name (synced by
//! `offerloop templates sync`) exist, once each, and their Liquid is handed to the Liquid row.

use std::collections::BTreeMap;

use offerloop_braze::api::catalog::PagedRequest;
use offerloop_braze::api::templates::{EmailTemplateInfoRequest, EmailTemplateListRequest};
use offerloop_braze::limits::TEMPLATE_LIST_MAX_LIMIT;
use offerloop_braze::{BrazeApi, BrazeError};
use offerloop_domain::UseCase;

use super::liquid::{LiquidSource, SourceKind};
use super::{CheckResult, ReadFailure, classify, names, not_checked};

/// The options' email templates (`template.name` → `dimension.option`), in use-case order.
fn option_templates(use_case: &UseCase) -> Vec<(String, String)> {
    use_case
        .actions
        .dimensions()
        .iter()
        .flat_map(|d| {
            d.options.iter().filter_map(move |o| {
                o.template
                    .as_ref()
                    .map(|t| (t.name.clone(), format!("{}.{}", d.name, o.id)))
            })
        })
        .collect()
}

/// The template rows, and the Liquid sources of the templates found in Braze (looked up by name
/// through every page of `/templates/email/list`, then read with `/templates/email/info`). Templates
/// that could not be read are added to `unread`. No request when no option has a template.
pub(super) async fn template_checks(
    api: &dyn BrazeApi,
    use_case: &UseCase,
    unread: &mut Vec<String>,
) -> (Vec<CheckResult>, Vec<LiquidSource>) {
    let wanted = option_templates(use_case);
    if wanted.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let ids = match template_ids(api, &wanted).await {
        Ok(ids) => ids,
        Err(e) => {
            unread.extend(wanted.iter().map(|(name, _)| format!("template `{name}`")));
            let row = match classify(&e) {
                ReadFailure::NoPermission(p) => not_checked(names::TEMPLATE, "the options' email templates", p),
                ReadFailure::Missing | ReadFailure::Other(_) => CheckResult::warn(
                    names::TEMPLATE,
                    format!("the email templates could not be listed: {e}"),
                    None,
                ),
            };
            return (vec![row], Vec::new());
        }
    };
    let mut rows = Vec::new();
    let mut sources = Vec::new();
    for (name, option) in &wanted {
        let found = ids.get(name.as_str()).map_or(&[][..], Vec::as_slice);
        match read_template(api, name, option, found).await {
            Ok(source) => sources.push(source),
            Err(row) => {
                unread.push(format!("template `{name}`"));
                rows.push(row);
            }
        }
    }
    if rows.is_empty() {
        rows.push(CheckResult::pass(
            names::TEMPLATE,
            format!("all {} option template(s) are in Braze", wanted.len()),
        ));
    }
    (rows, sources)
}

/// The Braze ids of the `wanted` templates, by name, from every page of `/templates/email/list`.
async fn template_ids<'w>(
    api: &dyn BrazeApi,
    wanted: &'w [(String, String)],
) -> Result<BTreeMap<&'w str, Vec<String>>, BrazeError> {
    let mut ids: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let request = EmailTemplateListRequest::new().limit(TEMPLATE_LIST_MAX_LIMIT);
    let mut page = 0u32;
    loop {
        let response = api.list_email_templates(request.with_page(page)).await?;
        let len = EmailTemplateListRequest::page_len(&response);
        for template in response.templates {
            if let Some((name, _)) = wanted.iter().find(|(name, _)| *name == template.template_name) {
                ids.entry(name.as_str()).or_default().push(template.email_template_id);
            }
        }
        if len < request.page_size() {
            return Ok(ids);
        }
        page = page.saturating_add(1);
    }
}

/// The Liquid source of template `name` (used by `option`) when exactly one Braze template has that
/// name (`ids`) and it could be read, else the row that says why not.
async fn read_template(
    api: &dyn BrazeApi,
    name: &str,
    option: &str,
    ids: &[String],
) -> Result<LiquidSource, CheckResult> {
    let label = format!("template `{name}` (option `{option}`)");
    match ids {
        [] => Err(CheckResult::warn(
            names::TEMPLATE,
            format!("{label} is not in Braze yet"),
            Some("run `offerloop templates sync --use-case FILE`".to_owned()),
        )),
        [id] => match api.email_template_info(EmailTemplateInfoRequest::new(id.clone())).await {
            Ok(info) => {
                let fields = [
                    ("subject", info.subject),
                    ("preheader", info.preheader),
                    ("body", info.body),
                    ("plaintext_body", info.plaintext_body),
                ]
                .into_iter()
                .filter_map(|(field, text)| text.map(|t| (field.to_owned(), t)))
                .collect();
                Ok(LiquidSource {
                    label,
                    kind: SourceKind::Template,
                    fields,
                })
            }
            Err(e) => Err(match classify(&e) {
                ReadFailure::NoPermission(p) => not_checked(names::TEMPLATE, &label, p),
                ReadFailure::Missing | ReadFailure::Other(_) => {
                    CheckResult::warn(names::TEMPLATE, format!("{label} could not be read: {e}"), None)
                }
            }),
        },
        several => Err(CheckResult::warn(
            names::TEMPLATE,
            format!(
                "{label}: {} Braze templates have this name ({})",
                several.len(),
                several.join(", ")
            ),
            Some("rename all but one in Braze, or give the option another `template.name`".to_owned()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use offerloop_braze::MockBrazeApi;
    use offerloop_braze::api::templates::{EmailTemplateListResponse, EmailTemplateSummary};

    use super::*;
    use crate::preflight::CheckStatus;
    use crate::preflight::tests::{statuses, winback_with_template};

    #[test]
    fn option_templates_name_their_option() {
        assert_eq!(
            option_templates(&winback_with_template()),
            [("wb-miss-you".to_owned(), "subject.miss_you".to_owned())]
        );
        assert!(option_templates(&crate::plan::tests::example("winback")).is_empty());
    }

    #[tokio::test]
    async fn no_template_no_request() {
        // Any call on the mock panics.
        let api = MockBrazeApi::new();
        let mut unread = Vec::new();
        let (rows, sources) = template_checks(&api, &crate::plan::tests::example("winback"), &mut unread).await;
        assert!(rows.is_empty() && sources.is_empty() && unread.is_empty());
    }

    #[tokio::test]
    async fn a_template_not_synced_yet_is_a_warning_and_stops_the_unused_judgement() {
        let use_case = winback_with_template();
        let mut api = MockBrazeApi::new();
        api.expect_list_email_templates()
            .times(1)
            .returning(|_| Ok(EmailTemplateListResponse::default()));
        let mut unread = Vec::new();
        let (rows, sources) = template_checks(&api, &use_case, &mut unread).await;
        assert!(sources.is_empty());
        assert_eq!(statuses(&rows), [(names::TEMPLATE, CheckStatus::Warn)]);
        assert!(rows[0].fix.as_deref().unwrap().contains("templates sync"));
        assert_eq!(unread, ["template `wb-miss-you`"]);
    }

    #[tokio::test]
    async fn every_page_is_listed_and_a_name_held_twice_is_a_warning() {
        let use_case = winback_with_template();
        let mut api = MockBrazeApi::new();
        // A full first page, then a short one: the template's name is on both.
        api.expect_list_email_templates().times(2).returning(|r| {
            let summary = |id: String, name: &str| EmailTemplateSummary {
                email_template_id: id,
                template_name: name.to_owned(),
                ..EmailTemplateSummary::default()
            };
            let templates = if r.offset == Some(0) {
                let mut page: Vec<_> = (1..TEMPLATE_LIST_MAX_LIMIT)
                    .map(|i| summary(format!("t-{i}"), "other"))
                    .collect();
                page.push(summary("t-a".to_owned(), "wb-miss-you"));
                page
            } else {
                assert_eq!(r.offset, Some(TEMPLATE_LIST_MAX_LIMIT));
                vec![summary("t-b".to_owned(), "wb-miss-you")]
            };
            Ok(EmailTemplateListResponse {
                templates,
                ..EmailTemplateListResponse::default()
            })
        });
        let mut unread = Vec::new();
        let (rows, sources) = template_checks(&api, &use_case, &mut unread).await;
        assert!(sources.is_empty());
        assert_eq!(statuses(&rows), [(names::TEMPLATE, CheckStatus::Warn)]);
        assert!(
            rows[0].detail.contains("2 Braze templates have this name (t-a, t-b)"),
            "{}",
            rows[0].detail
        );
        assert_eq!(unread, ["template `wb-miss-you`"]);
    }
}
