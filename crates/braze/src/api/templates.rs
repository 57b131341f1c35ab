//! Email templates: `POST /templates/email/create` and `/update`, `GET /templates/email/info` and
//! `/list`.
//!
//! The listing pages by `limit` (default 100, at most [`TEMPLATE_LIST_MAX_LIMIT`]) and `offset` and
//! returns a total `count`; it implements [`PagedRequest`] by turning page `n` into offset `n × limit`,
//! so the client pages it like the numbered listings. Templates made in the drag-and-drop editor are
//! not returned by Braze.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::catalog::PagedRequest;
use crate::endpoint::{Endpoint, Request};
use crate::limits::{TEMPLATE_LIST_DEFAULT_LIMIT, TEMPLATE_LIST_MAX_LIMIT};

/// `POST /templates/email/create`.
///
/// Every tag must already exist in the workspace; `should_inline_css` is a JSON boolean.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct EmailTemplateCreateRequest {
    /// The template's name.
    pub template_name: String,
    /// The subject line.
    pub subject: String,
    /// The HTML body.
    pub body: String,
    /// The plain-text body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plaintext_body: Option<String>,
    /// The preheader.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preheader: Option<String>,
    /// Existing workspace tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Whether Braze inlines the CSS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub should_inline_css: Option<bool>,
}

impl EmailTemplateCreateRequest {
    /// A template `template_name` with `subject` and HTML `body`.
    pub fn new(template_name: impl Into<String>, subject: impl Into<String>, body: impl Into<String>) -> Self {
        Self {
            template_name: template_name.into(),
            subject: subject.into(),
            body: body.into(),
            plaintext_body: None,
            preheader: None,
            tags: Vec::new(),
            should_inline_css: None,
        }
    }

    /// Sets the plain-text body.
    pub fn plaintext_body(mut self, body: impl Into<String>) -> Self {
        self.plaintext_body = Some(body.into());
        self
    }

    /// Sets the preheader.
    pub fn preheader(mut self, preheader: impl Into<String>) -> Self {
        self.preheader = Some(preheader.into());
        self
    }

    /// Sets the tags.
    pub fn tags(mut self, tags: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.tags = tags.into_iter().map(Into::into).collect();
        self
    }

    /// Sets `should_inline_css`.
    pub fn should_inline_css(mut self, inline: bool) -> Self {
        self.should_inline_css = Some(inline);
        self
    }
}

impl Request for EmailTemplateCreateRequest {
    const ENDPOINT: Endpoint = Endpoint::TemplatesEmailCreate;
    type Response = EmailTemplateCreateResponse;
}

/// The response of `POST /templates/email/create`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct EmailTemplateCreateResponse {
    /// `success` (empty if Braze omitted it).
    #[serde(default)]
    pub message: String,
    /// The new template's id.
    pub email_template_id: String,
    /// Braze's non-fatal errors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<Value>,
}

/// `POST /templates/email/update`: changes the fields that are set (at least one), leaves the others.
///
/// `tags` is an `Option` here: `Some(vec![])` clears the tags, `None` leaves them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct EmailTemplateUpdateRequest {
    /// The template.
    pub email_template_id: String,
    /// A new name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template_name: Option<String>,
    /// A new subject line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// A new HTML body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// A new plain-text body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plaintext_body: Option<String>,
    /// A new preheader.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preheader: Option<String>,
    /// New tags (existing workspace tags).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// Whether Braze inlines the CSS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub should_inline_css: Option<bool>,
}

impl EmailTemplateUpdateRequest {
    /// An update of `email_template_id`; set the fields to change with the setters.
    pub fn new(email_template_id: impl Into<String>) -> Self {
        Self {
            email_template_id: email_template_id.into(),
            template_name: None,
            subject: None,
            body: None,
            plaintext_body: None,
            preheader: None,
            tags: None,
            should_inline_css: None,
        }
    }

    /// Sets a new name.
    pub fn template_name(mut self, name: impl Into<String>) -> Self {
        self.template_name = Some(name.into());
        self
    }

    /// Sets a new subject line.
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// Sets a new HTML body.
    pub fn body(mut self, body: impl Into<String>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// Sets a new plain-text body.
    pub fn plaintext_body(mut self, body: impl Into<String>) -> Self {
        self.plaintext_body = Some(body.into());
        self
    }

    /// Sets a new preheader.
    pub fn preheader(mut self, preheader: impl Into<String>) -> Self {
        self.preheader = Some(preheader.into());
        self
    }

    /// Sets new tags (an empty list clears them).
    pub fn tags(mut self, tags: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.tags = Some(tags.into_iter().map(Into::into).collect());
        self
    }

    /// Sets `should_inline_css`.
    pub fn should_inline_css(mut self, inline: bool) -> Self {
        self.should_inline_css = Some(inline);
        self
    }
}

impl Request for EmailTemplateUpdateRequest {
    const ENDPOINT: Endpoint = Endpoint::TemplatesEmailUpdate;
    type Response = EmailTemplateUpdateResponse;
}

/// The response of `POST /templates/email/update`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct EmailTemplateUpdateResponse {
    /// `success` (empty if Braze omitted it).
    #[serde(default)]
    pub message: String,
    /// Braze's non-fatal errors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<Value>,
}

/// `GET /templates/email/info`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct EmailTemplateInfoRequest {
    /// The template.
    pub email_template_id: String,
}

impl EmailTemplateInfoRequest {
    /// The template `email_template_id`.
    pub fn new(email_template_id: impl Into<String>) -> Self {
        Self {
            email_template_id: email_template_id.into(),
        }
    }
}

impl Request for EmailTemplateInfoRequest {
    const ENDPOINT: Endpoint = Endpoint::TemplatesEmailInfo;
    type Response = EmailTemplateInfo;
}

/// The response of `GET /templates/email/info`: one template.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct EmailTemplateInfo {
    /// `success` when Braze sends it (its documentation does not show one here).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// The template's id.
    pub email_template_id: String,
    /// Its name.
    #[serde(default)]
    pub template_name: String,
    /// Its description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The subject line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The preheader.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preheader: Option<String>,
    /// The HTML body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// The plain-text body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plaintext_body: Option<String>,
    /// Whether Braze inlines the CSS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub should_inline_css: Option<bool>,
    /// Its tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// When it was created (ISO-8601).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// When it was last updated (ISO-8601).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    /// Braze's non-fatal errors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<Value>,
}

/// `GET /templates/email/list`: one page of templates, optionally only those modified in a window.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct EmailTemplateListRequest {
    /// Only templates modified at or after this time (ISO-8601).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub modified_after: Option<String>,
    /// Only templates modified at or before this time (ISO-8601).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub modified_before: Option<String>,
    /// Templates per page (Braze's default 100, at most [`TEMPLATE_LIST_MAX_LIMIT`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// Templates to skip.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u32>,
}

impl EmailTemplateListRequest {
    /// The first page, with Braze's defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `modified_after` (ISO-8601, inclusive).
    pub fn modified_after(mut self, time: impl Into<String>) -> Self {
        self.modified_after = Some(time.into());
        self
    }

    /// Sets `modified_before` (ISO-8601, inclusive).
    pub fn modified_before(mut self, time: impl Into<String>) -> Self {
        self.modified_before = Some(time.into());
        self
    }

    /// Sets the page size, clamped to `1..=`[`TEMPLATE_LIST_MAX_LIMIT`].
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit.clamp(1, TEMPLATE_LIST_MAX_LIMIT));
        self
    }

    /// Sets the number of templates to skip.
    pub fn offset(mut self, offset: u32) -> Self {
        self.offset = Some(offset);
        self
    }

    /// This request, starting `offset` templates in.
    pub fn with_offset(&self, offset: u32) -> Self {
        self.clone().offset(offset)
    }

    /// The page size Braze applies: `limit`, or its default, within `1..=`[`TEMPLATE_LIST_MAX_LIMIT`].
    pub fn effective_limit(&self) -> u32 {
        self.limit
            .unwrap_or(TEMPLATE_LIST_DEFAULT_LIMIT)
            .clamp(1, TEMPLATE_LIST_MAX_LIMIT)
    }
}

impl Request for EmailTemplateListRequest {
    const ENDPOINT: Endpoint = Endpoint::TemplatesEmailList;
    type Response = EmailTemplateListResponse;
}

impl PagedRequest for EmailTemplateListRequest {
    type Item = EmailTemplateSummary;

    /// Page `page` of [`EmailTemplateListRequest::effective_limit`] templates: offset `page × limit`
    /// (replacing any offset of `self`), with `limit` made explicit.
    fn with_page(&self, page: u32) -> Self {
        let limit = self.effective_limit();
        let mut request = self.with_offset(page.saturating_mul(limit));
        request.limit = Some(limit);
        request
    }

    fn page_size(&self) -> usize {
        self.effective_limit() as usize
    }

    fn page_len(response: &EmailTemplateListResponse) -> usize {
        response.templates.len()
    }

    fn into_items(response: EmailTemplateListResponse) -> Vec<EmailTemplateSummary> {
        response.templates
    }
}

/// One page of `GET /templates/email/list`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct EmailTemplateListResponse {
    /// `success` when Braze sends it (its documentation does not show one here).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// How many templates match in total (all pages).
    #[serde(default)]
    pub count: u64,
    /// This page's templates.
    #[serde(default)]
    pub templates: Vec<EmailTemplateSummary>,
    /// Braze's non-fatal errors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<Value>,
}

/// A template in a listing.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EmailTemplateSummary {
    /// The template's id.
    pub email_template_id: String,
    /// Its name.
    #[serde(default)]
    pub template_name: String,
    /// When it was created (ISO-8601).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// When it was last updated (ISO-8601).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    /// Its tags.
    #[serde(default)]
    pub tags: Vec<String>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::api::test_support::{check_body, check_query, check_response};

    #[test]
    fn create_request_omits_what_is_absent() {
        check_body(
            &EmailTemplateCreateRequest::new("offer-a", "Your offer", "<p>{{api_trigger_properties.${offer}}}</p>"),
            json!({
                "template_name": "offer-a",
                "subject": "Your offer",
                "body": "<p>{{api_trigger_properties.${offer}}}</p>",
            }),
        );
        check_body(
            &EmailTemplateCreateRequest::new("offer-a", "Your offer", "<p>Hi</p>")
                .plaintext_body("Hi")
                .preheader("Just for you")
                .tags(["offerloop"])
                .should_inline_css(true),
            json!({
                "template_name": "offer-a",
                "subject": "Your offer",
                "body": "<p>Hi</p>",
                "plaintext_body": "Hi",
                "preheader": "Just for you",
                "tags": ["offerloop"],
                "should_inline_css": true,
            }),
        );
    }

    #[test]
    fn create_response_parses() {
        let response: EmailTemplateCreateResponse =
            check_response("templates_email_create.json", |r: &EmailTemplateCreateResponse| {
                &r.errors
            });
        assert_eq!(response.email_template_id, "232b6d29-7e41-4106-a0ab-1c4fe915d701");
    }

    #[test]
    fn update_request_sends_only_what_changes() {
        check_body(
            &EmailTemplateUpdateRequest::new("tpl-1").subject("New subject"),
            json!({"email_template_id": "tpl-1", "subject": "New subject"}),
        );
        check_body(
            &EmailTemplateUpdateRequest::new("tpl-1")
                .template_name("offer-b")
                .body("<p>B</p>")
                .plaintext_body("B")
                .preheader("P")
                .tags(Vec::<String>::new())
                .should_inline_css(false),
            json!({
                "email_template_id": "tpl-1",
                "template_name": "offer-b",
                "body": "<p>B</p>",
                "plaintext_body": "B",
                "preheader": "P",
                "tags": [],
                "should_inline_css": false,
            }),
        );
    }

    #[test]
    fn update_response_parses() {
        let response: EmailTemplateUpdateResponse =
            check_response("templates_email_update.json", |r: &EmailTemplateUpdateResponse| {
                &r.errors
            });
        assert_eq!(response.message, "success");
    }

    #[test]
    fn info_request_is_a_query() {
        check_query(
            &EmailTemplateInfoRequest::new("tpl-1"),
            &[("email_template_id", "tpl-1")],
        );
    }

    #[test]
    fn info_response_parses() {
        let info: EmailTemplateInfo = check_response("templates_email_info.json", |r: &EmailTemplateInfo| &r.errors);
        assert_eq!(info.template_name, "offer-a");
        assert_eq!(info.subject.as_deref(), Some("Your offer"));
        assert_eq!(info.should_inline_css, Some(true));
        assert_eq!(info.tags, ["offerloop"]);
        assert_eq!(info.plaintext_body, None);
    }

    #[test]
    fn list_request_is_a_query() {
        check_query(&EmailTemplateListRequest::new(), &[]);
        check_query(
            &EmailTemplateListRequest::new()
                .modified_after("2024-01-01T00:00:00Z")
                .modified_before("2024-06-01T00:00:00Z")
                .limit(50)
                .offset(100),
            &[
                ("modified_after", "2024-01-01T00:00:00Z"),
                ("modified_before", "2024-06-01T00:00:00Z"),
                ("limit", "50"),
                ("offset", "100"),
            ],
        );
    }

    #[test]
    fn list_response_parses() {
        let response: EmailTemplateListResponse =
            check_response("templates_email_list.json", |r: &EmailTemplateListResponse| &r.errors);
        assert_eq!(response.count, 2);
        assert_eq!(response.templates.len(), 2);
        assert_eq!(response.templates[1].template_name, "offer-b");
        assert_eq!(EmailTemplateListRequest::page_len(&response), 2);
    }

    #[test]
    fn list_pages_by_offset() {
        let request = EmailTemplateListRequest::new().modified_after("2024-01-01T00:00:00Z");
        assert_eq!(request.page_size(), 100);
        let third = request.with_page(2);
        assert_eq!((third.limit, third.offset), (Some(100), Some(200)));
        assert_eq!(third.modified_after.as_deref(), Some("2024-01-01T00:00:00Z"));

        let big = EmailTemplateListRequest::new().limit(5000);
        assert_eq!(big.limit, Some(TEMPLATE_LIST_MAX_LIMIT));
        assert_eq!(big.page_size(), 1000);
        assert_eq!(big.with_page(1).offset, Some(1000));
        assert_eq!(big.with_page(u32::MAX).offset, Some(u32::MAX), "saturates");
        assert_eq!(EmailTemplateListRequest::new().limit(0).effective_limit(), 1);

        assert_eq!(request.with_offset(7).offset, Some(7));
        assert!(EmailTemplateListRequest::into_items(EmailTemplateListResponse::default()).is_empty());
    }
}
