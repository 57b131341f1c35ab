//! Email templates of options, synced to Braze (`offerloop templates sync`).
//!
//! An option of a creative, subject-line or custom dimension may carry a
//! [`TemplateSpec`](offerloop_domain::dimension::TemplateSpec): local files (HTML body, plain-text body)
//! plus a subject and a preheader. Syncing is two steps, so `--dry-run` is the first one alone:
//!
//! 1. [`plan_sync`] reads the files, looks each template up **by name** in Braze
//!    (`/templates/email/list`, every page, then `/templates/email/info` for a match) and decides per
//!    option: [`SyncAction::Create`], [`SyncAction::Update`] with a field-by-field diff of the subject,
//!    HTML body, plain-text body and preheader, or [`SyncAction::Unchanged`]. It makes read calls only.
//! 2. [`apply`] sends the creates and updates — and nothing for unchanged templates, so a second sync
//!    sends no write request at all — and reports each option's `email_template_id`.
//!
//! The name is the identity: Braze has no external id for templates, and ids recorded on one machine
//! would not help another. Two Braze templates with the same name make the sync refuse
//! ([`Error::Template`]) rather than guess. An absent plain-text body or preheader compares equal to an
//! empty one (an update cannot unset a field, only empty it), so an option without them stays unchanged
//! whatever Braze returns for them.
//!
//! [`TemplateIds`] records the ids (use case → dimension → option → id) in a JSON file beside the store
//! ([`TEMPLATE_IDS_FILE`]), written atomically (a temporary file renamed over the old one).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use offerloop_braze::BrazeApi;
use offerloop_braze::api::PagedRequest as _;
use offerloop_braze::api::templates::{
    EmailTemplateCreateRequest, EmailTemplateInfo, EmailTemplateInfoRequest, EmailTemplateListRequest,
    EmailTemplateUpdateRequest,
};
use offerloop_braze::limits::TEMPLATE_LIST_MAX_LIMIT;
use offerloop_domain::UseCase;
use serde::{Deserialize, Serialize};
use similar::TextDiff;

use crate::{Error, Result};

/// Where the CLI records template ids, beside the store (relative to the working directory).
pub const TEMPLATE_IDS_FILE: &str = ".offerloop/templates.json";

/// A field of an email template that sync manages.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum TemplateField {
    /// The subject line.
    Subject,
    /// The HTML body.
    Body,
    /// The plain-text body.
    PlaintextBody,
    /// The preheader.
    Preheader,
}

impl TemplateField {
    /// Every managed field, in the order diffs show them.
    pub const ALL: [Self; 4] = [Self::Subject, Self::Body, Self::PlaintextBody, Self::Preheader];

    /// Braze's name of the field.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Subject => "subject",
            Self::Body => "body",
            Self::PlaintextBody => "plaintext_body",
            Self::Preheader => "preheader",
        }
    }
}

/// What an option's template should be in Braze, read from its files.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct TemplateContent {
    /// The template name (the lookup key).
    pub name: String,
    /// The subject line (the configured one, else the option's label).
    pub subject: String,
    /// The HTML body.
    pub body: String,
    /// The plain-text body, when the option has a text file.
    pub plaintext_body: Option<String>,
    /// The preheader, when configured.
    pub preheader: Option<String>,
}

impl TemplateContent {
    /// The value of `field` (an absent one is empty).
    pub fn field(&self, field: TemplateField) -> &str {
        match field {
            TemplateField::Subject => &self.subject,
            TemplateField::Body => &self.body,
            TemplateField::PlaintextBody => self.plaintext_body.as_deref().unwrap_or_default(),
            TemplateField::Preheader => self.preheader.as_deref().unwrap_or_default(),
        }
    }
}

/// The value of `field` in a template as Braze returned it (an absent one is empty).
fn remote_field(info: &EmailTemplateInfo, field: TemplateField) -> &str {
    let value = match field {
        TemplateField::Subject => &info.subject,
        TemplateField::Body => &info.body,
        TemplateField::PlaintextBody => &info.plaintext_body,
        TemplateField::Preheader => &info.preheader,
    };
    value.as_deref().unwrap_or_default()
}

/// One field whose Braze value differs from the local one.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct FieldChange {
    /// The field.
    pub field: TemplateField,
    /// Its value in Braze (empty for a template still to create).
    pub current: String,
    /// Its value from the local files.
    pub desired: String,
}

/// What sync does with one option's template.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum SyncAction {
    /// No Braze template has the name: create one.
    Create,
    /// The template exists and some fields differ: update them.
    Update {
        /// The existing template.
        email_template_id: String,
    },
    /// The template exists and matches: nothing to send.
    Unchanged {
        /// The existing template.
        email_template_id: String,
    },
}

/// One option's template and what sync does with it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PlannedTemplate {
    /// The option's dimension.
    pub dimension: String,
    /// The option.
    pub option: String,
    /// The local content.
    pub content: TemplateContent,
    /// Create, update or nothing.
    pub action: SyncAction,
    /// The fields that differ: every non-empty field for a create, the changed ones for an update,
    /// none when unchanged.
    pub changes: Vec<FieldChange>,
}

impl PlannedTemplate {
    /// `<dimension>.<option>`, as messages name the option.
    pub fn key(&self) -> String {
        format!("{}.{}", self.dimension, self.option)
    }
}

/// Every option template of a use case, each with its [`SyncAction`]. Built by [`plan_sync`].
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SyncPlan {
    /// The use case's name.
    pub use_case: String,
    /// One entry per option with a template, in dimension and option order.
    pub templates: Vec<PlannedTemplate>,
}

impl SyncPlan {
    /// Whether applying the plan would send any write request.
    pub fn has_changes(&self) -> bool {
        self.templates
            .iter()
            .any(|t| !matches!(t.action, SyncAction::Unchanged { .. }))
    }

    /// The plan for people (`templates sync --dry-run`): one line per option (`+` create, `~` update,
    /// `=` unchanged), each followed by a unified line diff of every field that changes, Braze's value
    /// as the old side.
    pub fn render_diff(&self) -> String {
        let mut out = String::new();
        if self.templates.is_empty() {
            let _ = writeln!(out, "use case {}: no option has a template", self.use_case);
            return out;
        }
        for t in &self.templates {
            let (sign, verb, id) = match &t.action {
                SyncAction::Create => ('+', "create", String::new()),
                SyncAction::Update { email_template_id } => ('~', "update", format!(" ({email_template_id})")),
                SyncAction::Unchanged { email_template_id } => ('=', "unchanged", format!(" ({email_template_id})")),
            };
            let _ = writeln!(out, "{sign} {}: {verb} `{}`{id}", t.key(), t.content.name);
            for change in &t.changes {
                let field = change.field.as_str();
                let diff = TextDiff::from_lines(change.current.as_str(), change.desired.as_str());
                let _ = write!(
                    out,
                    "{}",
                    diff.unified_diff()
                        .context_radius(3)
                        .missing_newline_hint(false)
                        .header(&format!("braze/{field}"), &format!("local/{field}"))
                );
            }
        }
        if !self.has_changes() {
            out.push_str("nothing to change\n");
        }
        out
    }
}

/// What [`apply`] did with one option's template.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SyncOutcome {
    /// Created.
    Created,
    /// Updated.
    Updated,
    /// Left as it was.
    Unchanged,
}

impl SyncOutcome {
    /// `created`, `updated` or `unchanged`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::Unchanged => "unchanged",
        }
    }
}

/// One option's template after [`apply`].
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SyncedTemplate {
    /// The option's dimension.
    pub dimension: String,
    /// The option.
    pub option: String,
    /// The template name.
    pub name: String,
    /// Braze's id of the template.
    pub email_template_id: String,
    /// What was done.
    pub outcome: SyncOutcome,
    /// The fields written (all non-empty ones for a create).
    pub fields: Vec<TemplateField>,
}

/// The result of [`apply`]: every option's template id.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SyncReport {
    /// The use case's name.
    pub use_case: String,
    /// One entry per option with a template, in plan order.
    pub templates: Vec<SyncedTemplate>,
}

impl SyncReport {
    /// How many write requests were sent.
    pub fn writes(&self) -> usize {
        self.templates
            .iter()
            .filter(|t| t.outcome != SyncOutcome::Unchanged)
            .count()
    }

    /// The template ids: dimension → option → `email_template_id`.
    pub fn ids(&self) -> BTreeMap<String, BTreeMap<String, String>> {
        let mut ids: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for t in &self.templates {
            ids.entry(t.dimension.clone())
                .or_default()
                .insert(t.option.clone(), t.email_template_id.clone());
        }
        ids
    }
}

/// Reads one template file, naming the option and the file when it cannot.
fn read_file(base_dir: &Path, path: &Path, option: &str) -> Result<String> {
    let path = base_dir.join(path);
    std::fs::read_to_string(&path).map_err(|source| Error::TemplateFile {
        option: option.to_owned(),
        path,
        source,
    })
}

/// Every option template of `use_case`, its files read (relative to `base_dir`).
fn local_templates(use_case: &UseCase, base_dir: &Path) -> Result<Vec<(String, String, TemplateContent)>> {
    let mut out = Vec::new();
    for dimension in use_case.actions.dimensions() {
        for option in &dimension.options {
            let Some(spec) = &option.template else { continue };
            let key = format!("{}.{}", dimension.name, option.id);
            let body = read_file(base_dir, &spec.html, &key)?;
            let plaintext_body = spec
                .text
                .as_deref()
                .map(|text| read_file(base_dir, text, &key))
                .transpose()?;
            out.push((
                dimension.name.to_string(),
                option.id.to_string(),
                TemplateContent {
                    name: spec.name.clone(),
                    subject: spec.subject.clone().unwrap_or_else(|| option.label.clone()),
                    body,
                    plaintext_body,
                    preheader: spec.preheader.clone(),
                },
            ));
        }
    }
    Ok(out)
}

/// The ids of Braze's templates named one of `names`, reading every page of `/templates/email/list`.
async fn ids_by_name(api: &dyn BrazeApi, names: &[&str]) -> Result<BTreeMap<String, Vec<String>>> {
    let request = EmailTemplateListRequest::new().limit(TEMPLATE_LIST_MAX_LIMIT);
    let mut found: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut page = 0u32;
    loop {
        let response = api.list_email_templates(request.with_page(page)).await?;
        let len = EmailTemplateListRequest::page_len(&response);
        for t in response.templates {
            if names.contains(&t.template_name.as_str()) {
                found.entry(t.template_name).or_default().push(t.email_template_id);
            }
        }
        if len < request.page_size() {
            return Ok(found);
        }
        page = page.saturating_add(1);
    }
}

/// Plans the sync of `use_case`'s option templates: reads their files (paths relative to `base_dir`,
/// the use-case file's directory) and compares each with the Braze template of the same name. Read
/// calls only; no request at all when no option has a template.
///
/// # Errors
/// [`Error::TemplateFile`] naming a file that cannot be read, [`Error::Template`] when several Braze
/// templates share a name, [`Error::Braze`] when a listing or info request fails.
pub async fn plan_sync(api: &dyn BrazeApi, use_case: &UseCase, base_dir: &Path) -> Result<SyncPlan> {
    let local = local_templates(use_case, base_dir)?;
    let mut plan = SyncPlan {
        use_case: use_case.name.to_string(),
        templates: Vec::with_capacity(local.len()),
    };
    if local.is_empty() {
        return Ok(plan);
    }
    let names: Vec<&str> = local.iter().map(|(_, _, c)| c.name.as_str()).collect();
    let existing = ids_by_name(api, &names).await?;
    for (dimension, option, content) in local {
        let (action, changes) = match existing.get(&content.name).map(Vec::as_slice) {
            None | Some([]) => {
                let changes = TemplateField::ALL
                    .iter()
                    .filter(|f| !content.field(**f).is_empty())
                    .map(|f| FieldChange {
                        field: *f,
                        current: String::new(),
                        desired: content.field(*f).to_owned(),
                    })
                    .collect();
                (SyncAction::Create, changes)
            }
            Some([id]) => {
                let info = api
                    .email_template_info(EmailTemplateInfoRequest::new(id.clone()))
                    .await?;
                let changes: Vec<FieldChange> = TemplateField::ALL
                    .iter()
                    .filter(|f| remote_field(&info, **f) != content.field(**f))
                    .map(|f| FieldChange {
                        field: *f,
                        current: remote_field(&info, *f).to_owned(),
                        desired: content.field(*f).to_owned(),
                    })
                    .collect();
                let email_template_id = id.clone();
                if changes.is_empty() {
                    (SyncAction::Unchanged { email_template_id }, changes)
                } else {
                    (SyncAction::Update { email_template_id }, changes)
                }
            }
            Some(ids) => {
                return Err(Error::Template {
                    name: content.name,
                    message: format!(
                        "{} Braze templates have this name ({}); rename all but one in Braze, or give the option another `template.name`",
                        ids.len(),
                        ids.join(", ")
                    ),
                });
            }
        };
        plan.templates.push(PlannedTemplate {
            dimension,
            option,
            content,
            action,
            changes,
        });
    }
    Ok(plan)
}

/// Carries out `plan`: creates the missing templates and updates the changed fields of the others,
/// one request each, and sends nothing for unchanged ones.
///
/// # Errors
/// [`Error::Braze`] at the first failed request (the templates before it were written; planning
/// again picks up from there).
pub async fn apply(api: &dyn BrazeApi, plan: &SyncPlan) -> Result<SyncReport> {
    let mut report = SyncReport {
        use_case: plan.use_case.clone(),
        templates: Vec::with_capacity(plan.templates.len()),
    };
    for t in &plan.templates {
        let c = &t.content;
        let (email_template_id, outcome) = match &t.action {
            SyncAction::Create => {
                let mut request = EmailTemplateCreateRequest::new(&c.name, &c.subject, &c.body);
                if let Some(text) = &c.plaintext_body {
                    request = request.plaintext_body(text);
                }
                if let Some(preheader) = &c.preheader {
                    request = request.preheader(preheader);
                }
                let response = api.create_email_template(request).await?;
                (response.email_template_id, SyncOutcome::Created)
            }
            SyncAction::Update { email_template_id } => {
                let mut request = EmailTemplateUpdateRequest::new(email_template_id);
                for change in &t.changes {
                    let value = change.desired.clone();
                    request = match change.field {
                        TemplateField::Subject => request.subject(value),
                        TemplateField::Body => request.body(value),
                        TemplateField::PlaintextBody => request.plaintext_body(value),
                        TemplateField::Preheader => request.preheader(value),
                    };
                }
                api.update_email_template(request).await?;
                (email_template_id.clone(), SyncOutcome::Updated)
            }
            SyncAction::Unchanged { email_template_id } => (email_template_id.clone(), SyncOutcome::Unchanged),
        };
        report.templates.push(SyncedTemplate {
            dimension: t.dimension.clone(),
            option: t.option.clone(),
            name: c.name.clone(),
            email_template_id,
            outcome,
            fields: t.changes.iter().map(|change| change.field).collect(),
        });
    }
    Ok(report)
}

/// The recorded template ids of every synced use case: use case → dimension → option →
/// `email_template_id`, as JSON.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TemplateIds(pub BTreeMap<String, BTreeMap<String, BTreeMap<String, String>>>);

impl TemplateIds {
    /// Reads the file at `path`; a missing file is an empty record.
    ///
    /// # Errors
    /// [`Error::Io`] when the file exists but cannot be read, [`Error::BadFile`] when it is not such a
    /// record.
    pub fn load(path: &Path) -> Result<Self> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => {
                return Err(Error::Io {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        serde_json::from_str(&text).map_err(|e| Error::BadFile {
            path: path.to_owned(),
            message: format!("not a record of template ids ({e}); delete it and sync again"),
        })
    }

    /// The id recorded for `option` of `dimension` in `use_case`.
    pub fn get(&self, use_case: &str, dimension: &str, option: &str) -> Option<&str> {
        self.0.get(use_case)?.get(dimension)?.get(option).map(String::as_str)
    }

    /// Replaces the use case's ids with the report's; returns whether anything changed.
    pub fn record(&mut self, report: &SyncReport) -> bool {
        let ids = report.ids();
        if self.0.get(&report.use_case) == Some(&ids) {
            return false;
        }
        if ids.is_empty() {
            self.0.remove(&report.use_case);
        } else {
            self.0.insert(report.use_case.clone(), ids);
        }
        true
    }

    /// Writes the record to `path` atomically: to a temporary file beside it, then renamed over it
    /// (creating the directory).
    ///
    /// # Errors
    /// [`Error::Io`] when the directory, the temporary file or the rename fails.
    pub fn save(&self, path: &Path) -> Result<()> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| Error::Io { path, source }
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
        }
        let mut json = serde_json::to_string_pretty(self).map_err(|e| Error::BadFile {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        json.push('\n');
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".tmp-{}", std::process::id()));
        let tmp = PathBuf::from(tmp);
        std::fs::write(&tmp, json).map_err(io(&tmp))?;
        std::fs::rename(&tmp, path).map_err(|source| {
            let _ = std::fs::remove_file(&tmp);
            Error::Io {
                path: path.to_owned(),
                source,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use offerloop_braze::MockBrazeApi;
    use offerloop_braze::api::templates::{
        EmailTemplateCreateResponse, EmailTemplateListResponse, EmailTemplateSummary, EmailTemplateUpdateResponse,
    };

    use super::*;

    fn content(name: &str) -> TemplateContent {
        TemplateContent {
            name: name.into(),
            subject: "Hi".into(),
            body: "<p>a</p>\n<p>b</p>\n".into(),
            plaintext_body: None,
            preheader: Some("Pre".into()),
        }
    }

    fn summary(id: &str, name: &str) -> EmailTemplateSummary {
        EmailTemplateSummary {
            email_template_id: id.into(),
            template_name: name.into(),
            ..EmailTemplateSummary::default()
        }
    }

    #[tokio::test]
    async fn listing_reads_every_page_and_keeps_only_wanted_names() {
        let mut api = MockBrazeApi::new();
        let mut seq = mockall::Sequence::new();
        api.expect_list_email_templates()
            .withf(|r| r.offset == Some(0) && r.limit == Some(TEMPLATE_LIST_MAX_LIMIT))
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_| {
                let mut templates: Vec<_> = (0..999).map(|i| summary(&format!("x{i}"), "other")).collect();
                templates.push(summary("id-a", "a"));
                Ok(EmailTemplateListResponse {
                    count: 1001,
                    templates,
                    ..EmailTemplateListResponse::default()
                })
            });
        api.expect_list_email_templates()
            .withf(|r| r.offset == Some(1000))
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_| {
                Ok(EmailTemplateListResponse {
                    count: 1001,
                    templates: vec![summary("id-b", "b")],
                    ..EmailTemplateListResponse::default()
                })
            });
        let found = ids_by_name(&api, &["a", "b", "c"]).await.unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(found["a"], ["id-a"]);
        assert_eq!(found["b"], ["id-b"]);
    }

    #[tokio::test]
    async fn apply_sends_only_creates_and_changed_fields() {
        let plan = SyncPlan {
            use_case: "uc".into(),
            templates: vec![
                PlannedTemplate {
                    dimension: "subject".into(),
                    option: "a".into(),
                    content: content("uc-subject-a"),
                    action: SyncAction::Create,
                    changes: vec![],
                },
                PlannedTemplate {
                    dimension: "subject".into(),
                    option: "b".into(),
                    content: content("uc-subject-b"),
                    action: SyncAction::Update {
                        email_template_id: "id-b".into(),
                    },
                    changes: vec![FieldChange {
                        field: TemplateField::PlaintextBody,
                        current: "old".into(),
                        desired: String::new(),
                    }],
                },
                PlannedTemplate {
                    dimension: "subject".into(),
                    option: "c".into(),
                    content: content("uc-subject-c"),
                    action: SyncAction::Unchanged {
                        email_template_id: "id-c".into(),
                    },
                    changes: vec![],
                },
            ],
        };
        let mut api = MockBrazeApi::new();
        api.expect_create_email_template()
            .withf(|r| {
                r.template_name == "uc-subject-a"
                    && r.subject == "Hi"
                    && r.plaintext_body.is_none()
                    && r.preheader.as_deref() == Some("Pre")
            })
            .times(1)
            .returning(|_| {
                Ok(EmailTemplateCreateResponse {
                    email_template_id: "id-a".into(),
                    ..EmailTemplateCreateResponse::default()
                })
            });
        api.expect_update_email_template()
            .withf(|r| {
                r.email_template_id == "id-b"
                    && r.plaintext_body.as_deref() == Some("")
                    && r.subject.is_none()
                    && r.body.is_none()
                    && r.preheader.is_none()
            })
            .times(1)
            .returning(|_| Ok(EmailTemplateUpdateResponse::default()));
        let report = apply(&api, &plan).await.unwrap();
        assert_eq!(report.writes(), 2);
        let outcomes: Vec<_> = report
            .templates
            .iter()
            .map(|t| (t.email_template_id.as_str(), t.outcome))
            .collect();
        assert_eq!(
            outcomes,
            [
                ("id-a", SyncOutcome::Created),
                ("id-b", SyncOutcome::Updated),
                ("id-c", SyncOutcome::Unchanged)
            ]
        );
        assert_eq!(report.ids()["subject"]["b"], "id-b");
    }

    #[test]
    fn the_diff_shows_braze_as_old_and_local_as_new() {
        let plan = SyncPlan {
            use_case: "uc".into(),
            templates: vec![PlannedTemplate {
                dimension: "subject".into(),
                option: "a".into(),
                content: content("uc-subject-a"),
                action: SyncAction::Update {
                    email_template_id: "id-a".into(),
                },
                changes: vec![
                    FieldChange {
                        field: TemplateField::Subject,
                        current: "Hello".into(),
                        desired: "Hi".into(),
                    },
                    FieldChange {
                        field: TemplateField::Body,
                        current: "<p>a</p>\n<p>c</p>\n".into(),
                        desired: "<p>a</p>\n<p>b</p>\n".into(),
                    },
                ],
            }],
        };
        assert_eq!(
            plan.render_diff(),
            "~ subject.a: update `uc-subject-a` (id-a)\n\
             --- braze/subject\n+++ local/subject\n@@ -1 +1 @@\n-Hello\n+Hi\n\
             --- braze/body\n+++ local/body\n@@ -1,2 +1,2 @@\n <p>a</p>\n-<p>c</p>\n+<p>b</p>\n"
        );
        assert!(plan.has_changes());
    }

    #[test]
    fn ids_are_recorded_per_use_case_and_saved_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state").join("templates.json");
        let mut ids = TemplateIds::load(&path).unwrap();
        assert_eq!(ids, TemplateIds::default(), "a missing file is an empty record");
        let report = SyncReport {
            use_case: "uc".into(),
            templates: vec![SyncedTemplate {
                dimension: "subject".into(),
                option: "a".into(),
                name: "uc-subject-a".into(),
                email_template_id: "id-a".into(),
                outcome: SyncOutcome::Created,
                fields: vec![],
            }],
        };
        assert!(ids.record(&report));
        assert!(!ids.record(&report), "the same ids change nothing");
        ids.save(&path).unwrap();
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["templates.json"], "no temporary file is left behind");
        let loaded = TemplateIds::load(&path).unwrap();
        assert_eq!(loaded.get("uc", "subject", "a"), Some("id-a"));
        let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(json, serde_json::json!({"uc": {"subject": {"a": "id-a"}}}));

        std::fs::write(&path, "[1, 2]").unwrap();
        let err = TemplateIds::load(&path).unwrap_err();
        assert!(matches!(err, Error::BadFile { .. }), "{err}");
    }
}
