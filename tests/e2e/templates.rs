//! `offerloop templates sync` against the simulator.
//!
//! The winback example with a template on both subject-line options, its files in a temporary
//! directory, synced through the real `BrazeClient` wrapped in a decorator that counts every call: the
//! first sync creates both templates, the second sends no write request and says so, an edited HTML file
//! becomes an update of the body alone (its diff shown by `--dry-run`), and a dry run writes nothing.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use offerloop_braze::api::catalog::{
    CampaignDataSeriesRequest, CampaignDataSeriesResponse, CampaignDetailsRequest, CampaignDetailsResponse,
    CampaignListRequest, CampaignListResponse, CanvasDataSeriesRequest, CanvasDataSeriesResponse, CanvasDetailsRequest,
    CanvasDetailsResponse, CanvasListRequest, CanvasListResponse, SegmentDataSeriesRequest, SegmentDataSeriesResponse,
    SegmentDetailsRequest, SegmentDetailsResponse, SegmentListRequest, SegmentListResponse, SendDataSeriesRequest,
    SendDataSeriesResponse, SendIdCreateRequest, SendIdCreateResponse,
};
use offerloop_braze::api::messaging::{
    CampaignTriggerScheduleRequest, CampaignTriggerSendRequest, CanvasTriggerScheduleRequest, CanvasTriggerSendRequest,
    DispatchResponse, MessagesScheduleRequest, MessagesSendRequest, ScheduleResponse,
};
use offerloop_braze::api::templates::{
    EmailTemplateCreateRequest, EmailTemplateCreateResponse, EmailTemplateInfo, EmailTemplateInfoRequest,
    EmailTemplateListRequest, EmailTemplateListResponse, EmailTemplateUpdateRequest, EmailTemplateUpdateResponse,
};
use offerloop_braze::api::users::{
    ExportIdsRequest, ExportIdsResponse, ExportSegmentRequest, ExportSegmentResponse, TrackRequest, TrackResponse,
};
use offerloop_braze::export::{ExportPoll, ExportSource};
use offerloop_braze::{ApiKey, BrazeApi, BrazeClient, BrazeConfig};
use offerloop_cli::demo_cmd;
use offerloop_cli::templates_cmd::sync_with;
use offerloop_domain::UseCase;
use offerloop_sim::{Scenario, SimBraze, SimConfig, World};

/// A [`BrazeApi`] that records the name of every call before passing it on.
struct Counting {
    inner: Arc<dyn BrazeApi>,
    calls: Mutex<Vec<&'static str>>,
}

/// The calls that change Braze's state.
const WRITES: [&str; 11] = [
    "export_segment",
    "track",
    "send_messages",
    "schedule_messages",
    "trigger_campaign",
    "schedule_campaign",
    "trigger_canvas",
    "schedule_canvas",
    "create_send_id",
    "create_email_template",
    "update_email_template",
];

impl Counting {
    fn new(inner: Arc<dyn BrazeApi>) -> Self {
        Self {
            inner,
            calls: Mutex::new(Vec::new()),
        }
    }

    /// Takes the calls recorded so far.
    fn take(&self) -> Vec<&'static str> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }

    fn record(&self, name: &'static str) {
        self.calls.lock().unwrap().push(name);
    }
}

/// The write calls among `calls`.
fn writes(calls: &[&'static str]) -> Vec<&'static str> {
    calls.iter().copied().filter(|c| WRITES.contains(c)).collect()
}

macro_rules! counted {
    ($( $method:ident($req:ty) -> $resp:ty ),* $(,)?) => {
        #[async_trait]
        impl BrazeApi for Counting {
            $(
                async fn $method(&self, request: $req) -> offerloop_braze::Result<$resp> {
                    self.record(stringify!($method));
                    self.inner.$method(request).await
                }
            )*

            async fn fetch_export(
                &self,
                source: ExportSource,
                download_dir: PathBuf,
                poll: ExportPoll,
            ) -> offerloop_braze::Result<Vec<PathBuf>> {
                self.record("fetch_export");
                self.inner.fetch_export(source, download_dir, poll).await
            }

            async fn probe_permission(&self, endpoint: offerloop_braze::Endpoint) -> offerloop_braze::probe::PermissionStatus {
                self.record("probe_permission");
                self.inner.probe_permission(endpoint).await
            }
        }
    };
}

counted! {
    export_ids(ExportIdsRequest) -> ExportIdsResponse,
    export_segment(ExportSegmentRequest) -> ExportSegmentResponse,
    track(TrackRequest) -> TrackResponse,
    send_messages(MessagesSendRequest) -> DispatchResponse,
    schedule_messages(MessagesScheduleRequest) -> ScheduleResponse,
    trigger_campaign(CampaignTriggerSendRequest) -> DispatchResponse,
    schedule_campaign(CampaignTriggerScheduleRequest) -> ScheduleResponse,
    trigger_canvas(CanvasTriggerSendRequest) -> DispatchResponse,
    schedule_canvas(CanvasTriggerScheduleRequest) -> ScheduleResponse,
    list_campaigns(CampaignListRequest) -> CampaignListResponse,
    campaign_details(CampaignDetailsRequest) -> CampaignDetailsResponse,
    campaign_data_series(CampaignDataSeriesRequest) -> CampaignDataSeriesResponse,
    list_canvases(CanvasListRequest) -> CanvasListResponse,
    canvas_details(CanvasDetailsRequest) -> CanvasDetailsResponse,
    canvas_data_series(CanvasDataSeriesRequest) -> CanvasDataSeriesResponse,
    list_segments(SegmentListRequest) -> SegmentListResponse,
    segment_details(SegmentDetailsRequest) -> SegmentDetailsResponse,
    segment_data_series(SegmentDataSeriesRequest) -> SegmentDataSeriesResponse,
    send_data_series(SendDataSeriesRequest) -> SendDataSeriesResponse,
    create_send_id(SendIdCreateRequest) -> SendIdCreateResponse,
    create_email_template(EmailTemplateCreateRequest) -> EmailTemplateCreateResponse,
    update_email_template(EmailTemplateUpdateRequest) -> EmailTemplateUpdateResponse,
    email_template_info(EmailTemplateInfoRequest) -> EmailTemplateInfo,
    list_email_templates(EmailTemplateListRequest) -> EmailTemplateListResponse,
}

const MISS_YOU_HTML: &str =
    "<html>\n<body>\n<h1>We miss you</h1>\n<p>{{api_trigger_properties.${discount_pct}}} % off</p>\n</body>\n</html>\n";
const MISS_YOU_TEXT: &str = "We miss you: {{api_trigger_properties.${discount_pct}}} % off\n";
const NEW_ARRIVALS_HTML: &str = "<html>\n<body>\n<h1>New arrivals</h1>\n</body>\n</html>\n";

struct Harness {
    _sim: SimBraze,
    dir: tempfile::TempDir,
    api: Counting,
    use_case: UseCase,
}

impl Harness {
    async fn start() -> Self {
        let mut scenario = Scenario::from_toml_str(demo_cmd::SCENARIO, None).unwrap();
        scenario.customers = 20;
        let sim = SimBraze::start(World::new(scenario).unwrap(), SimConfig::default())
            .await
            .unwrap();
        let key = sim
            .api_keys()
            .into_iter()
            .find(|k| k.permissions.iter().any(|p| p == "*"))
            .unwrap()
            .key;
        let config = BrazeConfig::builder(sim.base_url(), ApiKey::new(key).unwrap())
            .build()
            .unwrap();
        let api = Counting::new(Arc::new(BrazeClient::new(config).unwrap()));

        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("templates")).unwrap();
        std::fs::write(dir.path().join("templates/miss_you.html"), MISS_YOU_HTML).unwrap();
        std::fs::write(dir.path().join("templates/miss_you.txt"), MISS_YOU_TEXT).unwrap();
        std::fs::write(dir.path().join("templates/new_arrivals.html"), NEW_ARRIVALS_HTML).unwrap();
        let text = with_templates(&demo_cmd::demo_use_case_text(&sim.base_url()));
        let use_case = offerloop_domain::config::parse_use_case(&text, "winback.toml").unwrap();
        Self {
            _sim: sim,
            dir,
            api,
            use_case,
        }
    }

    fn state_file(&self) -> PathBuf {
        self.dir.path().join(".offerloop/templates.json")
    }

    async fn sync(&self, dry_run: bool) -> String {
        sync_with(&self.api, &self.use_case, self.dir.path(), dry_run, &self.state_file())
            .await
            .unwrap()
    }

    /// Braze's templates, by name, with their id (every page of the listing).
    async fn listed(&self) -> Vec<(String, String)> {
        let response = self
            .api
            .inner
            .list_email_templates(EmailTemplateListRequest::new().limit(1000))
            .await
            .unwrap();
        response
            .templates
            .into_iter()
            .map(|t| (t.template_name, t.email_template_id))
            .collect()
    }

    async fn info(&self, id: &str) -> EmailTemplateInfo {
        self.api
            .inner
            .email_template_info(EmailTemplateInfoRequest::new(id))
            .await
            .unwrap()
    }
}

/// The winback example with a template on both subject-line options (the second with an explicit
/// name and preheader, no text file and no subject: its label is the subject).
fn with_templates(text: &str) -> String {
    let miss_you = "properties = { subject_text = \"We miss you, come see what's new\" }\n";
    let new_arrivals = "properties = { subject_text = \"New arrivals picked for you\" }\n";
    assert!(
        text.contains(miss_you) && text.contains(new_arrivals),
        "the example changed"
    );
    text.replacen(
        miss_you,
        &format!(
            "{miss_you}  template = {{ html = \"templates/miss_you.html\", text = \"templates/miss_you.txt\", subject = \"We miss you, come see what's new\" }}\n"
        ),
        1,
    )
    .replacen(
        new_arrivals,
        &format!(
            "{new_arrivals}  template = {{ name = \"winback-new-arrivals\", html = \"templates/new_arrivals.html\", preheader = \"Fresh picks\" }}\n"
        ),
        1,
    )
}

const MISS_YOU: &str = "winback-lapsed-90d-subject-miss_you";
const NEW_ARRIVALS: &str = "winback-new-arrivals";

fn id_of<'a>(listed: &'a [(String, String)], name: &str) -> &'a str {
    let matching: Vec<&(String, String)> = listed.iter().filter(|(n, _)| n == name).collect();
    assert_eq!(matching.len(), 1, "exactly one template `{name}` in {listed:?}");
    &matching[0].1
}

fn recorded(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test]
async fn sync_creates_then_changes_nothing_then_updates_only_what_changed() {
    let h = Harness::start().await;
    let before = h.listed().await;
    assert!(before.iter().all(|(n, _)| n != MISS_YOU && n != NEW_ARRIVALS));

    // First run: both templates are created.
    let first = h.sync(false).await;
    let calls = h.api.take();
    assert_eq!(
        writes(&calls),
        ["create_email_template", "create_email_template"],
        "{first}"
    );
    let listed = h.listed().await;
    assert_eq!(listed.len(), before.len() + 2);
    let (miss_you, new_arrivals) = (id_of(&listed, MISS_YOU), id_of(&listed, NEW_ARRIVALS));
    assert!(
        first.contains(&format!("subject.miss_you      created    `{MISS_YOU}` {miss_you}")),
        "{first}"
    );
    assert!(
        first.contains(&format!(
            "subject.new_arrivals  created    `{NEW_ARRIVALS}` {new_arrivals}"
        )),
        "{first}"
    );
    assert!(first.contains("2 created, 0 updated"), "{first}");
    assert!(!first.contains("nothing to change"), "{first}");

    let info = h.info(miss_you).await;
    assert_eq!(info.subject.as_deref(), Some("We miss you, come see what's new"));
    assert_eq!(info.body.as_deref(), Some(MISS_YOU_HTML));
    assert_eq!(info.plaintext_body.as_deref(), Some(MISS_YOU_TEXT));
    assert_eq!(info.preheader, None);
    let info = h.info(new_arrivals).await;
    assert_eq!(
        info.subject.as_deref(),
        Some("New arrivals"),
        "the label is the default subject"
    );
    assert_eq!(info.preheader.as_deref(), Some("Fresh picks"));
    assert_eq!(
        recorded(&h.state_file()),
        serde_json::json!({"winback-lapsed-90d": {"subject": {"miss_you": miss_you, "new_arrivals": new_arrivals}}})
    );

    // Second run: nothing to change, and no write request at all.
    let second = h.sync(false).await;
    let calls = h.api.take();
    assert_eq!(writes(&calls), Vec::<&str>::new(), "{calls:?}");
    assert!(calls.contains(&"list_email_templates") && calls.contains(&"email_template_info"));
    assert!(second.contains("nothing to change"), "{second}");
    assert!(
        second.contains(&format!("subject.miss_you      unchanged  `{MISS_YOU}` {miss_you}")),
        "{second}"
    );
    assert!(!second.contains("recorded"), "the ids file is already right: {second}");
    assert_eq!(h.listed().await, listed);

    // An edited HTML file: the dry run shows the body's diff and writes nothing...
    let edited = MISS_YOU_HTML.replace("<h1>We miss you</h1>", "<h1>We really miss you</h1>");
    std::fs::write(h.dir.path().join("templates/miss_you.html"), &edited).unwrap();
    let state_before = std::fs::read_to_string(h.state_file()).unwrap();
    let dry = h.sync(true).await;
    let calls = h.api.take();
    assert_eq!(writes(&calls), Vec::<&str>::new(), "{calls:?}");
    assert!(
        dry.contains(&format!("~ subject.miss_you: update `{MISS_YOU}` ({miss_you})")),
        "{dry}"
    );
    assert!(
        dry.contains("--- braze/body\n+++ local/body\n@@ -1,6 +1,6 @@\n <html>\n <body>\n-<h1>We miss you</h1>\n+<h1>We really miss you</h1>\n"),
        "{dry}"
    );
    assert!(
        dry.contains(&format!(
            "= subject.new_arrivals: unchanged `{NEW_ARRIVALS}` ({new_arrivals})"
        )),
        "{dry}"
    );
    assert!(
        !dry.contains("braze/subject") && !dry.contains("braze/plaintext_body"),
        "{dry}"
    );
    assert!(dry.contains("dry run: nothing was written"), "{dry}");
    assert_eq!(h.info(miss_you).await.body.as_deref(), Some(MISS_YOU_HTML));
    assert_eq!(std::fs::read_to_string(h.state_file()).unwrap(), state_before);

    // ...and the real run updates the body alone.
    let third = h.sync(false).await;
    let calls = h.api.take();
    assert_eq!(writes(&calls), ["update_email_template"], "{third}");
    assert!(
        third.contains(&format!(
            "subject.miss_you      updated    `{MISS_YOU}` {miss_you} (body)"
        )),
        "{third}"
    );
    assert!(third.contains("0 created, 1 updated"), "{third}");
    let info = h.info(miss_you).await;
    assert_eq!(info.body.as_deref(), Some(edited.as_str()));
    assert_eq!(info.plaintext_body.as_deref(), Some(MISS_YOU_TEXT));
    assert_eq!(h.listed().await.len(), listed.len(), "an update creates no template");

    let fourth = h.sync(false).await;
    assert_eq!(writes(&h.api.take()), Vec::<&str>::new());
    assert!(fourth.contains("nothing to change"), "{fourth}");
}

#[tokio::test]
async fn a_dry_run_before_the_first_sync_shows_the_creates_and_writes_nothing() {
    let h = Harness::start().await;
    let before = h.listed().await;
    let dry = h.sync(true).await;
    let calls = h.api.take();
    assert_eq!(writes(&calls), Vec::<&str>::new(), "{calls:?}");
    assert!(
        dry.contains(&format!("+ subject.miss_you: create `{MISS_YOU}`")),
        "{dry}"
    );
    assert!(
        dry.contains("--- braze/plaintext_body\n+++ local/plaintext_body\n@@ -0,0 +1 @@\n+We miss you"),
        "{dry}"
    );
    assert!(
        dry.contains(&format!("+ subject.new_arrivals: create `{NEW_ARRIVALS}`")),
        "{dry}"
    );
    assert!(dry.contains("dry run: nothing was written"), "{dry}");
    assert_eq!(h.listed().await, before);
    assert!(!h.state_file().exists());
}

#[tokio::test]
async fn a_missing_template_file_is_named_and_nothing_is_written() {
    let h = Harness::start().await;
    std::fs::remove_file(h.dir.path().join("templates/new_arrivals.html")).unwrap();
    let err = sync_with(&h.api, &h.use_case, h.dir.path(), false, &h.state_file())
        .await
        .unwrap_err();
    let message = format!("{err:#}");
    assert!(
        message.contains("option subject.new_arrivals: cannot read the template file")
            && message.contains("templates/new_arrivals.html"),
        "{message}"
    );
    assert_eq!(h.api.take(), Vec::<&str>::new(), "files are read before any request");
}
