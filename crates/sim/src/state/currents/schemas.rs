//! The Avro writer schemas of the Currents event types the simulator writes, with Braze's field
//! lists in Braze's order (braze-currents.md §3.3, taken from Braze's sample files), and the schema
//! JSON shaped as Braze writes it (§1.3): compact, `name` the event type's last segment, `namespace`
//! `dataexport.<conn>.inner.` + the rest, optional fields `["null", T]` with a null default, an
//! `owner` attribute.

/// A field's Avro type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldType {
    /// `string`.
    Str,
    /// `int` (32-bit).
    Int,
    /// `long` (64-bit).
    Long,
    /// `float` (32-bit).
    Float,
    /// `boolean`.
    Bool,
    /// `array<string>`.
    StrArray,
    /// `array<["null","string"]>`.
    NullableStrArray,
}

/// One field of a writer schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    /// Its name.
    pub name: &'static str,
    /// Its type.
    pub ty: FieldType,
    /// Optional: `["null", T]`, default null.
    pub optional: bool,
}

/// Field lists as braze-currents.md §3.3 writes them (`name type`, `?` for optional), by event type.
/// The four marked *common shape* have no field list there: they carry the identity and message
/// fields every message event of §3.2 has.
const FIELD_LISTS: &[(&str, &str)] = &[
    (
        "users.behaviors.Purchase",
        "id str, user_id str, external_user_id str?, app_id str?, time int, platform str?, os_version str?, device_model str?, device_id str?, product_id str, price float, currency str, properties str, ad_id str?, ad_id_type str?, ad_tracking_enabled bool?, app_group_id str?",
    ),
    (
        "users.behaviors.CustomEvent",
        "id str, user_id str, external_user_id str?, app_id str?, time int, timezone str?, platform str?, os_version str?, device_model str?, device_id str?, name str, properties str, ad_id str?, ad_id_type str?, ad_tracking_enabled bool?, app_group_id str?",
    ),
    (
        "users.messages.email.Send",
        "id str, user_id str, dispatch_id str?, external_user_id str?, time int, timezone str?, campaign_id str?, campaign_name str?, message_variation_id str?, message_variation_name str?, email_address str, canvas_id str?, canvas_name str?, canvas_variation_id str?, canvas_variation_name str?, canvas_step_id str?, canvas_step_name str?, send_id str?, ip_pool str?, message_extras str?, app_group_id str?, from_domain str?",
    ),
    (
        "users.messages.email.Delivery",
        "id str, user_id str, dispatch_id str?, external_user_id str?, time int, timezone str?, campaign_id str?, campaign_name str?, message_variation_id str?, message_variation_name str?, email_address str, canvas_id str?, canvas_name str?, canvas_variation_id str?, canvas_variation_name str?, canvas_step_id str?, canvas_step_name str?, send_id str?, sending_ip str?, ip_pool str?, esp str?, from_domain str?, app_group_id str?",
    ),
    (
        "users.messages.email.Open",
        "id str, user_id str, dispatch_id str?, external_user_id str?, time int, timezone str?, campaign_id str?, campaign_name str?, message_variation_id str?, message_variation_name str?, email_address str, canvas_id str?, canvas_name str?, canvas_variation_id str?, canvas_variation_name str?, canvas_step_id str?, canvas_step_name str?, send_id str?, user_agent str?, ip_pool str?, machine_open str?, esp str?, from_domain str?, is_amp bool?, app_group_id str?, device_class str?, device_os str?, device_model str?, browser str?, mailbox_provider str?",
    ),
    (
        "users.messages.email.Click",
        "id str, user_id str, dispatch_id str?, external_user_id str?, time int, timezone str?, campaign_id str?, campaign_name str?, message_variation_id str?, message_variation_name str?, email_address str, url str?, canvas_id str?, canvas_name str?, canvas_variation_id str?, canvas_variation_name str?, canvas_step_id str?, canvas_step_name str?, send_id str?, user_agent str?, ip_pool str?, link_id str?, link_alias str?, esp str?, from_domain str?, is_amp bool?, app_group_id str?, device_class str?, device_os str?, device_model str?, browser str?, mailbox_provider str?, is_suspected_bot_click bool?, suspected_bot_click_reason array<str>?",
    ),
    (
        "users.messages.email.Bounce",
        "id str, user_id str, dispatch_id str?, external_user_id str?, time int, timezone str?, campaign_id str?, campaign_name str?, message_variation_id str?, message_variation_name str?, email_address str, canvas_id str?, canvas_name str?, canvas_variation_id str?, canvas_variation_name str?, canvas_step_id str?, canvas_step_name str?, send_id str?, sending_ip str?, ip_pool str?, bounce_reason str?, esp str?, from_domain str?, is_drop bool?, app_group_id str?",
    ),
    (
        "users.messages.email.Unsubscribe",
        "id str, user_id str, dispatch_id str?, external_user_id str?, time int, timezone str?, campaign_id str?, campaign_name str?, message_variation_id str?, message_variation_name str?, email_address str, canvas_id str?, canvas_name str?, canvas_variation_id str?, canvas_variation_name str?, canvas_step_id str?, canvas_step_name str?, send_id str?, ip_pool str?, app_group_id str?",
    ),
    (
        "users.messages.sms.Send",
        "id str, user_id str, dispatch_id str?, external_user_id str?, time int, timezone str?, campaign_id str?, campaign_name str?, message_variation_id str?, message_variation_name str?, to_phone_number str?, subscription_group_id str?, canvas_id str?, canvas_name str?, canvas_variation_id str?, canvas_variation_name str?, canvas_step_id str?, canvas_step_name str?, send_id str?, category str?, message_extras str?, app_group_id str?",
    ),
    (
        "users.messages.sms.Delivery",
        "id str, user_id str, dispatch_id str?, external_user_id str?, time int, timezone str?, campaign_id str?, campaign_name str?, message_variation_id str?, message_variation_name str?, to_phone_number str?, subscription_group_id str?, from_phone_number str?, canvas_id str?, canvas_name str?, canvas_variation_id str?, canvas_variation_name str?, canvas_step_id str?, canvas_step_name str?, send_id str?, app_group_id str?, is_sms_fallback bool?",
    ),
    (
        "users.messages.sms.DeliveryFailure",
        "id str, user_id str, dispatch_id str?, external_user_id str?, time int, timezone str?, campaign_id str?, campaign_name str?, message_variation_id str?, message_variation_name str?, to_phone_number str?, subscription_group_id str?, error str?, provider_error_code str?, canvas_id str?, canvas_name str?, canvas_variation_id str?, canvas_variation_name str?, canvas_step_id str?, canvas_step_name str?, send_id str?, app_group_id str?, is_sms_fallback bool?",
    ),
    (
        "users.messages.sms.InboundReceive",
        "id str, user_id str?, external_user_id str?, app_group_id str, time int, user_phone_number str, subscription_group_id str?, inbound_phone_number str, action str, message_body str, media_urls array<str?>?, campaign_id str?, campaign_name str?, message_variation_id str?, message_variation_name str?, canvas_id str?, canvas_name str?, canvas_variation_id str?, canvas_variation_name str?, canvas_step_id str?, canvas_step_name str?",
    ),
    (
        // Common shape plus the link (no field list in braze-currents.md).
        "users.messages.sms.ShortLinkClick",
        "id str, user_id str, dispatch_id str?, external_user_id str?, time int, timezone str?, campaign_id str?, campaign_name str?, message_variation_id str?, message_variation_name str?, canvas_id str?, canvas_name str?, canvas_variation_id str?, canvas_variation_name str?, canvas_step_id str?, canvas_step_name str?, send_id str?, url str?, short_url str?, app_group_id str?",
    ),
    (
        "users.messages.pushnotification.Send",
        "id str, user_id str, external_user_id str?, app_id str, time int, timezone str?, platform str, campaign_id str?, campaign_name str?, message_variation_id str?, message_variation_name str?, canvas_id str?, canvas_name str?, canvas_variation_id str?, canvas_variation_name str?, canvas_step_id str?, canvas_step_name str?, send_id str?, dispatch_id str?, device_id str?, ad_id str?, ad_id_type str?, ad_tracking_enabled bool?, message_extras str?, push_token str?, app_group_id str?, locale_key str?",
    ),
    (
        "users.messages.pushnotification.Open",
        "id str, user_id str, external_user_id str?, time int, timezone str?, app_id str, campaign_id str?, campaign_name str?, message_variation_id str?, message_variation_name str?, canvas_id str?, canvas_name str?, canvas_variation_id str?, canvas_variation_name str?, canvas_step_id str?, canvas_step_name str?, canvas_step_message_variation_id str?, platform str?, os_version str?, device_model str?, send_id str?, dispatch_id str?, device_id str?, button_action_type str?, button_string str?, ad_id str?, ad_id_type str?, ad_tracking_enabled bool?, app_group_id str?",
    ),
    (
        "users.messages.pushnotification.Bounce",
        "id str, user_id str, external_user_id str?, app_id str, time int, timezone str?, platform str?, campaign_id str?, campaign_name str?, message_variation_id str?, message_variation_name str?, canvas_id str?, canvas_name str?, canvas_variation_id str?, canvas_variation_name str?, canvas_step_id str?, canvas_step_name str?, send_id str?, dispatch_id str?, device_id str?, ad_id str?, ad_id_type str?, ad_tracking_enabled bool?, push_token str?, app_group_id str?",
    ),
    (
        "users.messages.whatsapp.Send",
        "id str, time long, to_phone_number str?, user_id str, external_user_id str?, device_id str?, timezone str?, from_phone_number str, app_group_id str?, subscription_group_id str?, campaign_id str?, campaign_name str?, message_variation_id str?, message_variation_name str?, canvas_id str?, canvas_name str?, canvas_variation_id str?, canvas_step_id str?, canvas_step_name str?, canvas_step_message_variation_id str?, dispatch_id str?, message_extras str?, send_id str?, flow_id str?, template_name str?, message_id str?, bsuid str?",
    ),
    (
        "users.messages.whatsapp.Delivery",
        "id str, time long, to_phone_number str?, user_id str, external_user_id str?, device_id str?, timezone str?, from_phone_number str, app_group_id str?, subscription_group_id str?, campaign_id str?, campaign_name str?, message_variation_id str?, message_variation_name str?, canvas_id str?, canvas_name str?, canvas_variation_id str?, canvas_variation_name str?, canvas_step_id str?, canvas_step_name str?, canvas_step_message_variation_id str?, dispatch_id str?, send_id str?, flow_id str?, template_name str?, message_id str?, bsuid str?",
    ),
    (
        "users.messages.whatsapp.Read",
        "id str, time long, to_phone_number str?, user_id str, external_user_id str?, device_id str?, timezone str?, from_phone_number str, app_group_id str?, subscription_group_id str?, campaign_id str?, campaign_name str?, message_variation_id str?, message_variation_name str?, canvas_id str?, canvas_name str?, canvas_variation_id str?, canvas_variation_name str?, canvas_step_id str?, canvas_step_name str?, canvas_step_message_variation_id str?, dispatch_id str?, send_id str?, template_name str?, message_id str?, flow_id str?, bsuid str?",
    ),
    (
        "users.messages.whatsapp.Failure",
        "id str, time long, to_phone_number str?, user_id str, external_user_id str?, device_id str?, timezone str?, from_phone_number str, app_group_id str?, subscription_group_id str?, campaign_id str?, campaign_name str?, message_variation_id str?, message_variation_name str?, canvas_id str?, canvas_name str?, canvas_variation_id str?, canvas_variation_name str?, canvas_step_id str?, canvas_step_name str?, canvas_step_message_variation_id str?, dispatch_id str?, provider_error_code str, provider_error_title str, send_id str?, message_id str?, template_name str?, flow_id str?, bsuid str?",
    ),
    (
        "users.messages.whatsapp.InboundReceive",
        "id str, time long, user_phone_number str?, user_id str?, external_user_id str?, inbound_phone_number str, device_id str?, timezone str?, app_group_id str?, subscription_group_id str?, campaign_id str?, campaign_name str?, message_variation_id str?, message_variation_name str?, canvas_id str?, canvas_name str?, canvas_variation_id str?, canvas_variation_name str?, canvas_step_id str?, canvas_step_name str?, canvas_step_message_variation_id str?, message_body str?, quick_reply_text str?, media_urls array<str?>?, action str, catalog_id str?, product_id str?, flow_id str?, flow_response_json str?, message_id str?, in_reply_to str?, bsuid str?",
    ),
    (
        "users.messages.webhook.Send",
        "id str, user_id str, external_user_id str?, time int, timezone str?, campaign_id str?, campaign_name str?, message_variation_id str?, message_variation_name str?, canvas_id str?, canvas_name str?, canvas_variation_id str?, canvas_variation_name str?, canvas_step_id str?, canvas_step_name str?, send_id str?, message_extras str?, app_group_id str?, dispatch_id str?",
    ),
    (
        "users.messages.webhook.Failure",
        "http_status_code int?, endpoint_url str?, app_group_id str?, campaign_id str?, canvas_id str?, canvas_step_id str?, canvas_step_message_variation_id str?, canvas_variation_id str?, content_length int?, dispatch_id str?, external_user_id str?, host str?, id str, message_variation_id str?, raw_response str?, retry_count int?, send_id str?, time int, url_path str?, user_id str, webhook_duration int?, webhook_failure_source str?, is_terminal bool?, campaign_name str?, canvas_name str?, canvas_step_name str?, canvas_variation_name str?, message_variation_name str?",
    ),
    (
        // Common shape (no field list in braze-currents.md).
        "users.messages.contentcard.Send",
        "id str, user_id str, external_user_id str?, time int, timezone str?, campaign_id str?, campaign_name str?, message_variation_id str?, message_variation_name str?, canvas_id str?, canvas_name str?, canvas_variation_id str?, canvas_variation_name str?, canvas_step_id str?, canvas_step_name str?, send_id str?, dispatch_id str?, app_group_id str?",
    ),
    (
        // Common shape (no field list in braze-currents.md).
        "users.messages.contentcard.Impression",
        "id str, user_id str, external_user_id str?, time int, timezone str?, campaign_id str?, campaign_name str?, message_variation_id str?, message_variation_name str?, canvas_id str?, canvas_name str?, canvas_variation_id str?, canvas_variation_name str?, canvas_step_id str?, canvas_step_name str?, send_id str?, dispatch_id str?, app_group_id str?",
    ),
    (
        // Common shape (no field list in braze-currents.md).
        "users.messages.contentcard.Click",
        "id str, user_id str, external_user_id str?, time int, timezone str?, campaign_id str?, campaign_name str?, message_variation_id str?, message_variation_name str?, canvas_id str?, canvas_name str?, canvas_variation_id str?, canvas_variation_name str?, canvas_step_id str?, canvas_step_name str?, send_id str?, dispatch_id str?, app_group_id str?",
    ),
    (
        // Common shape (no field list in braze-currents.md).
        "users.messages.inappmessage.Impression",
        "id str, user_id str, external_user_id str?, time int, timezone str?, campaign_id str?, campaign_name str?, message_variation_id str?, message_variation_name str?, canvas_id str?, canvas_name str?, canvas_variation_id str?, canvas_variation_name str?, canvas_step_id str?, canvas_step_name str?, send_id str?, dispatch_id str?, app_group_id str?",
    ),
    (
        // Common shape (no field list in braze-currents.md).
        "users.messages.inappmessage.Click",
        "id str, user_id str, external_user_id str?, time int, timezone str?, campaign_id str?, campaign_name str?, message_variation_id str?, message_variation_name str?, canvas_id str?, canvas_name str?, canvas_variation_id str?, canvas_variation_name str?, canvas_step_id str?, canvas_step_name str?, send_id str?, dispatch_id str?, app_group_id str?",
    ),
    (
        "users.behaviors.subscription.GlobalStateChange",
        "id str, user_id str, external_user_id str?, email_address str?, state_change_source str?, subscription_status str, channel str?, time int, timezone str?, app_group_id str?, app_id str?, campaign_id str?, campaign_name str?, message_variation_id str?, canvas_id str?, canvas_name str?, canvas_variation_id str?, canvas_variation_name str?, canvas_step_id str?, canvas_step_name str?, send_id str?, channel_identifier str?",
    ),
    (
        "users.behaviors.subscriptiongroup.StateChange",
        "id str, user_id str, external_user_id str?, email_address str?, phone_number str?, app_id str?, campaign_id str?, campaign_name str?, message_variation_id str?, message_variation_name str?, canvas_id str?, canvas_name str?, canvas_variation_id str?, canvas_variation_name str?, canvas_step_id str?, canvas_step_name str?, subscription_group_id str, subscription_status str, channel str?, time int, timezone str?, send_id str?, state_change_source str?, app_group_id str?, dispatch_id str?, channel_identifier str?",
    ),
];

/// Every event type the simulator writes.
pub fn event_types() -> impl Iterator<Item = &'static str> {
    FIELD_LISTS.iter().map(|(t, _)| *t)
}

/// The fields of `event_type` in Braze's order, or `None` for a type the simulator does not write.
pub fn fields(event_type: &str) -> Option<Vec<Field>> {
    let (_, list) = FIELD_LISTS.iter().find(|(t, _)| *t == event_type)?;
    Some(list.split(", ").filter_map(parse_field).collect())
}

/// `"name type"` or `"name type?"`.
fn parse_field(text: &'static str) -> Option<Field> {
    let (name, ty) = text.split_once(' ')?;
    let (ty, optional) = match ty.strip_suffix('?') {
        Some(ty) => (ty, true),
        None => (ty, false),
    };
    let ty = match ty {
        "str" => FieldType::Str,
        "int" => FieldType::Int,
        "long" => FieldType::Long,
        "float" => FieldType::Float,
        "bool" => FieldType::Bool,
        "array<str>" => FieldType::StrArray,
        "array<str?>" => FieldType::NullableStrArray,
        _ => return None,
    };
    Some(Field { name, ty, optional })
}

/// The schema JSON of `event_type` as Braze writes it into a file's `avro.schema` (compact), for a
/// connector of kind `conn` (`S3`, `GCS`, `AzureBlob`).
pub fn schema_json(event_type: &str, fields: &[Field], conn: &str) -> String {
    let (namespace, name) = event_type.rsplit_once('.').unwrap_or(("", event_type));
    let fields: Vec<String> = fields.iter().map(field_json).collect();
    let owner = namespace.rsplit('.').next().unwrap_or("braze");
    format!(
        r#"{{"type":"record","name":"{name}","namespace":"dataexport.{conn}.inner.{namespace}","doc":"{event_type} event","fields":[{}],"owner":"@Appboy/{owner}"}}"#,
        fields.join(",")
    )
}

fn field_json(field: &Field) -> String {
    let ty = match field.ty {
        FieldType::Str => r#""string""#,
        FieldType::Int => r#""int""#,
        FieldType::Long => r#""long""#,
        FieldType::Float => r#""float""#,
        FieldType::Bool => r#""boolean""#,
        FieldType::StrArray => r#"{"type":"array","items":"string"}"#,
        FieldType::NullableStrArray => r#"{"type":"array","items":["null","string"]}"#,
    };
    let name = field.name;
    if field.optional {
        format!(r#"{{"name":"{name}","type":["null",{ty}],"doc":"{name}","default":null}}"#)
    } else {
        format!(r#"{{"name":"{name}","type":{ty},"doc":"{name}"}}"#)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_list_parses_and_every_schema_is_valid_avro() {
        for event_type in event_types() {
            let list = FIELD_LISTS.iter().find(|(t, _)| *t == event_type).unwrap().1;
            let fields = fields(event_type).unwrap();
            assert_eq!(
                fields.len(),
                list.split(", ").count(),
                "{event_type}: a field did not parse"
            );
            for required in ["id", "time"] {
                assert!(
                    fields.iter().any(|f| f.name == required && !f.optional),
                    "{event_type} lacks {required}"
                );
            }
            let json = schema_json(event_type, &fields, "S3");
            apache_avro::Schema::parse_str(&json).unwrap_or_else(|e| panic!("{event_type}: {e}"));
        }
    }

    #[test]
    fn whatsapp_times_are_long_and_the_rest_int() {
        let time = |t: &str| fields(t).unwrap().into_iter().find(|f| f.name == "time").unwrap().ty;
        assert_eq!(time("users.messages.whatsapp.Send"), FieldType::Long);
        assert_eq!(time("users.messages.email.Send"), FieldType::Int);
        assert_eq!(time("users.behaviors.Purchase"), FieldType::Int);
    }

    #[test]
    fn the_schema_json_has_brazes_shape() {
        let fields = fields("users.behaviors.Purchase").unwrap();
        let json = schema_json("users.behaviors.Purchase", &fields, "S3");
        assert!(
            json.starts_with(
                r#"{"type":"record","name":"Purchase","namespace":"dataexport.S3.inner.users.behaviors","#
            )
        );
        assert!(json.contains(
            r#"{"name":"external_user_id","type":["null","string"],"doc":"external_user_id","default":null}"#
        ));
        assert!(json.contains(r#"{"name":"price","type":"float","doc":"price"}"#));
        assert!(!json.contains("\": ") && !json.contains(", "), "compact JSON: {json}");
    }
}
