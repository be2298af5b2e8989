//! The XML reader of keysrv-client on untrusted text: received `<message/>`
//! stanzas (direct, carbons, MAM results), `<encrypted>` elements with their
//! base64 payload, and decrypted SCE envelopes.
//!
//! Properties: no parser panics; whatever parses serializes to a canonical
//! form that parses back to the same value (`parse(to_xml(x)) == x`) and is
//! a fixed point (`to_xml(parse(to_xml(x))) == to_xml(x)`).

#![no_main]

use keysrv_client::envelope::Envelope;
use keysrv_client::stanza::ReceivedMessage;
use keysrv_client::wire::{EncryptedElement, MAX_OBJECTID_LEN, NONCE_LEN, VERSION_AES_256_GCM};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = keysrv_fuzz::text(data);

    if let Ok(m) = ReceivedMessage::parse(&text) {
        let _ = m.parties();
        let _ = m.check_carbon("romeo@montague.lit/phone");
        if let Some(e) = &m.encrypted {
            element_round_trips(e);
        }
    }

    if let Ok(e) = EncryptedElement::parse(&text) {
        element_round_trips(&e);
    }

    if let Ok(env) = Envelope::parse(&text) {
        // Parsing is liberal; the canonical form refuses some of what it
        // accepts (e.g. an extra element in no namespace, a year past 9999).
        if let Ok(xml) = env.to_xml() {
            let again = Envelope::parse(&xml).unwrap_or_else(|e| panic!("canonical envelope {xml:?} fails: {e}"));
            assert_eq!(again, env, "envelope changes through {xml:?}");
            assert_eq!(again.to_xml().as_deref(), Ok(xml.as_str()), "the canonical form is not a fixed point");
        }
    }
});

fn element_round_trips(e: &EncryptedElement) {
    assert!(!e.objectid.is_empty() && e.objectid.len() <= MAX_OBJECTID_LEN, "objectid {:?}", e.objectid);
    assert!(e.objectid.bytes().all(|b| (0x21..=0x7e).contains(&b)), "objectid {:?}", e.objectid);
    assert!(!e.payload.is_empty());
    match e.nonce() {
        Some(n) => {
            assert_eq!(e.payload[0], VERSION_AES_256_GCM);
            assert_eq!(&e.payload[1..1 + NONCE_LEN], &n);
        }
        None => assert!(e.payload[0] != VERSION_AES_256_GCM || e.payload.len() < 1 + NONCE_LEN),
    }
    let xml = e.to_xml();
    let back = EncryptedElement::parse(&xml).unwrap_or_else(|err| panic!("canonical element {xml:?} fails: {err}"));
    assert_eq!(&back, e);
    assert_eq!(back.to_xml(), xml);
}
