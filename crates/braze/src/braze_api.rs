//! [`BrazeApi`]: the seam other layers depend on — one async method per Braze operation.
//!
//! [`crate::BrazeClient`] implements it over HTTP; with the `mocks` feature, `MockBrazeApi` (mockall)
//! implements it for the activation and engine layers' unit tests. Requests are taken by value so mocks
//! can match on them without lifetimes.

use std::path::PathBuf;

use async_trait::async_trait;

use crate::api::catalog::{
    CampaignDataSeriesRequest, CampaignDataSeriesResponse, CampaignDetailsRequest, CampaignDetailsResponse,
    CampaignListRequest, CampaignListResponse, CanvasDataSeriesRequest, CanvasDataSeriesResponse, CanvasDetailsRequest,
    CanvasDetailsResponse, CanvasListRequest, CanvasListResponse, SegmentDataSeriesRequest, SegmentDataSeriesResponse,
    SegmentDetailsRequest, SegmentDetailsResponse, SegmentListRequest, SegmentListResponse, SendDataSeriesRequest,
    SendDataSeriesResponse, SendIdCreateRequest, SendIdCreateResponse,
};
use crate::api::messaging::{
    CampaignTriggerScheduleRequest, CampaignTriggerSendRequest, CanvasTriggerScheduleRequest, CanvasTriggerSendRequest,
    DispatchResponse, MessagesScheduleRequest, MessagesSendRequest, ScheduleResponse,
};
use crate::api::templates::{
    EmailTemplateCreateRequest, EmailTemplateCreateResponse, EmailTemplateInfo, EmailTemplateInfoRequest,
    EmailTemplateListRequest, EmailTemplateListResponse, EmailTemplateUpdateRequest, EmailTemplateUpdateResponse,
};
use crate::api::users::{
    ExportIdsRequest, ExportIdsResponse, ExportSegmentRequest, ExportSegmentResponse, TrackRequest, TrackResponse,
};
use crate::client::BrazeClient;
use crate::error::Result;
use crate::export::{ExportPoll, ExportSource};

/// Every Braze operation offerloop uses. Object-safe: hold it as `Arc<dyn BrazeApi>`.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait BrazeApi: Send + Sync {
    /// `POST /users/export/ids` (at most 50 identifiers; see [`crate::limits::MAX_EXPORT_IDS`]).
    async fn export_ids(&self, request: ExportIdsRequest) -> Result<ExportIdsResponse>;
    /// `POST /users/export/segment`: starts an asynchronous export.
    async fn export_segment(&self, request: ExportSegmentRequest) -> Result<ExportSegmentResponse>;
    /// `POST /users/track` (at most 75 objects per array).
    async fn track(&self, request: TrackRequest) -> Result<TrackResponse>;
    /// `POST /messages/send`. Never retried after it may have been received.
    async fn send_messages(&self, request: MessagesSendRequest) -> Result<DispatchResponse>;
    /// `POST /messages/schedule/create`. Never retried after it may have been received.
    async fn schedule_messages(&self, request: MessagesScheduleRequest) -> Result<ScheduleResponse>;
    /// `POST /campaigns/trigger/send`. Never retried after it may have been received.
    async fn trigger_campaign(&self, request: CampaignTriggerSendRequest) -> Result<DispatchResponse>;
    /// `POST /campaigns/trigger/schedule/create`. Never retried after it may have been received.
    async fn schedule_campaign(&self, request: CampaignTriggerScheduleRequest) -> Result<ScheduleResponse>;
    /// `POST /canvas/trigger/send`. Never retried after it may have been received.
    async fn trigger_canvas(&self, request: CanvasTriggerSendRequest) -> Result<DispatchResponse>;
    /// `POST /canvas/trigger/schedule/create`. Never retried after it may have been received.
    async fn schedule_canvas(&self, request: CanvasTriggerScheduleRequest) -> Result<ScheduleResponse>;
    /// `GET /campaigns/list` (one page).
    async fn list_campaigns(&self, request: CampaignListRequest) -> Result<CampaignListResponse>;
    /// `GET /campaigns/details`.
    async fn campaign_details(&self, request: CampaignDetailsRequest) -> Result<CampaignDetailsResponse>;
    /// `GET /campaigns/data_series`.
    async fn campaign_data_series(&self, request: CampaignDataSeriesRequest) -> Result<CampaignDataSeriesResponse>;
    /// `GET /canvas/list` (one page).
    async fn list_canvases(&self, request: CanvasListRequest) -> Result<CanvasListResponse>;
    /// `GET /canvas/details`.
    async fn canvas_details(&self, request: CanvasDetailsRequest) -> Result<CanvasDetailsResponse>;
    /// `GET /canvas/data_series`.
    async fn canvas_data_series(&self, request: CanvasDataSeriesRequest) -> Result<CanvasDataSeriesResponse>;
    /// `GET /segments/list` (one page).
    async fn list_segments(&self, request: SegmentListRequest) -> Result<SegmentListResponse>;
    /// `GET /segments/details`.
    async fn segment_details(&self, request: SegmentDetailsRequest) -> Result<SegmentDetailsResponse>;
    /// `GET /segments/data_series`.
    async fn segment_data_series(&self, request: SegmentDataSeriesRequest) -> Result<SegmentDataSeriesResponse>;
    /// `GET /sends/data_series`.
    async fn send_data_series(&self, request: SendDataSeriesRequest) -> Result<SendDataSeriesResponse>;
    /// `POST /sends/id/create`.
    async fn create_send_id(&self, request: SendIdCreateRequest) -> Result<SendIdCreateResponse>;
    /// `POST /templates/email/create`.
    async fn create_email_template(&self, request: EmailTemplateCreateRequest) -> Result<EmailTemplateCreateResponse>;
    /// `POST /templates/email/update`.
    async fn update_email_template(&self, request: EmailTemplateUpdateRequest) -> Result<EmailTemplateUpdateResponse>;
    /// `GET /templates/email/info`.
    async fn email_template_info(&self, request: EmailTemplateInfoRequest) -> Result<EmailTemplateInfo>;
    /// `GET /templates/email/list` (one page).
    async fn list_email_templates(&self, request: EmailTemplateListRequest) -> Result<EmailTemplateListResponse>;

    /// Waits until a started segment export's result is available from `source` (polling per `poll`)
    /// and returns its local files in reading order; a Braze-hosted ZIP is downloaded into
    /// `download_dir`. See [`ExportSource::wait_until_ready`].
    async fn fetch_export(&self, source: ExportSource, download_dir: PathBuf, poll: ExportPoll)
    -> Result<Vec<PathBuf>>;
    /// Whether the key holds `endpoint`'s permission, found with a request that changes nothing
    /// ([`crate::probe`]).
    async fn probe_permission(&self, endpoint: crate::Endpoint) -> crate::probe::PermissionStatus;
}

macro_rules! delegate {
    ($( $method:ident($req:ty) -> $resp:ty ),* $(,)?) => {
        #[async_trait]
        impl BrazeApi for BrazeClient {
            $( async fn $method(&self, request: $req) -> Result<$resp> { self.execute(&request).await } )*

            async fn fetch_export(
                &self,
                source: ExportSource,
                download_dir: PathBuf,
                poll: ExportPoll,
            ) -> Result<Vec<PathBuf>> {
                Ok(source.wait_until_ready(self.http(), &download_dir, &poll).await?)
            }

            async fn probe_permission(&self, endpoint: crate::Endpoint) -> crate::probe::PermissionStatus {
                crate::probe::probe(self, endpoint).await
            }
        }
    };
}

delegate! {
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
