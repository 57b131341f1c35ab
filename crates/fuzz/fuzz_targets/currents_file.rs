//! Fuzz target `currents_file`: any bytes as a Currents Avro file, through `file::decode`.
//!
//! The first byte chooses the event type the file is read as (its key's `event_type=`), the rest is the
//! file. The seeds under `seeds/currents_file/` are files the simulator's Currents connector wrote
//! (one per event type, with the byte of their type in front). Every file must decode to events or to
//! one located error, never a panic, and every event must carry the event type it was read as.

#![no_main]

use libfuzzer_sys::fuzz_target;
use offerloop_currents::file::decode;
use offerloop_currents::{CurrentsKey, EventType};

/// The event types the simulator writes and the reader tells apart, by the first byte (modulo).
const EVENT_TYPES: [&str; 8] = [
    "users.behaviors.Purchase",
    "users.behaviors.CustomEvent",
    "users.messages.email.Send",
    "users.messages.email.Delivery",
    "users.messages.email.Bounce",
    "users.messages.email.Unsubscribe",
    "users.messages.sms.Delivery",
    "users.behaviors.subscriptiongroup.StateChange",
];

fuzz_target!(|data: &[u8]| {
    let Some((&control, bytes)) = data.split_first() else {
        return;
    };
    let event_type = EVENT_TYPES[usize::from(control) % EVENT_TYPES.len()];
    let key =
        format!("currents/dataexport.prod-01.S3.integration.abc/event_type={event_type}/date=2026-01-05-01/123/0.avro");
    // The key the file is read under is one the key parser accepts.
    assert!(matches!(CurrentsKey::parse(&key), Ok(Some(_))), "{key}");
    match decode(&key, event_type, bytes) {
        Ok(events) => {
            let kind = EventType::of(event_type);
            for event in &events {
                assert_eq!(event.event_type, kind);
                let _ = format!("{event:?}");
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
