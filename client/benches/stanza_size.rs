//! The bytes a sender puts in its `<message/>` for one 256-byte text message
//! as the recipient's device count grows (1, 2, 4, 16): keysrv's children
//! ([`stanza::message_children`]: `<encrypted>` + XEP-0380 marker + fallback
//! body + store hint) are measured; an OMEMO 0.3 per-device header is a
//! computed estimate from the XEP-0384 (0.3) element shape, not a
//! measurement.
//!
//! `cargo bench -p keysrv-client --bench stanza_size`
//!
//! keysrv seals once per message under the conversation key, whatever the
//! devices: nothing in [`wire::seal_envelope`] takes a device list. To make
//! the comparison byte-exact, every row seals the same envelope (fixed
//! padding and time; the nonce is fresh each time) and the sizes are
//! asserted equal. Random padding (0–200 characters, `docs/PROTOCOL.md`)
//! changes the size per message, not per device; its range is printed too.

use keysrv_client::envelope::MAX_RPAD;
use keysrv_client::stanza::message_children;
use keysrv_client::{Content, Envelope, Key, wire};
use time::OffsetDateTime;

const SENDER: &str = "romeo@montague.lit";
const RECIPIENT: &str = "juliet@capulet.lit";
/// A real objectid's shape (43 characters, as keysrv issues them).
const OBJECTID: &str = "Yq3hV8dK2mTzR0pLxW7bNg.c9Fh2LqP0sVxB4mKzT1aRw";
const BODY_LEN: usize = 256;
const DEVICES: [usize; 4] = [1, 2, 4, 16];

fn base64_len(bytes: usize) -> usize {
    bytes.div_ceil(3) * 4
}

/// One OMEMO 0.3 (`eu.siacs.conversations.axolotl`) per-device header
/// element, `<key rid='…'>BASE64</key>`, with a 10-digit device id (ids are
/// random 31-bit integers, so most have 9–10 digits) around `payload` bytes.
fn omemo_key_element(payload: usize) -> usize {
    format!("<key rid='{}'>{}</key>", 2_147_483_647u32, "A".repeat(base64_len(payload))).len()
}

fn envelope(rpad: usize) -> Envelope {
    let body: String = "But soft, what light through yonder window breaks? ".chars().cycle().take(BODY_LEN).collect();
    Envelope {
        content: Content::text(body),
        rpad: "r".repeat(rpad),
        from: SENDER.into(),
        to: RECIPIENT.into(),
        // 2025-01-31T09:30:00Z
        time: OffsetDateTime::from_unix_timestamp(1_738_315_800).expect("time"),
    }
}

fn children_len(key: &Key, env: &Envelope) -> usize {
    let element = wire::seal_envelope(key, OBJECTID, env).expect("seal");
    message_children(&element).len()
}

fn main() {
    let key = Key::from_bytes([7u8; 32]);
    let fixed = envelope(100);

    // OMEMO 0.3 per-device key element, two computed estimates:
    // - lower bound: the 16-byte AES key + 16-byte GCM tag alone, base64
    //   (32 bytes → 44 characters);
    // - with the Signal framing every real OMEMO 0.3 header carries: the 32
    //   bytes travel inside a SignalMessage = version byte + protobuf
    //   {ratchet key 33 B (2+33), counter (2), previous counter (2),
    //   AES-256-CBC ciphertext of 32 B → 48 B (2+48)} + 8-byte MAC = 98 bytes
    //   (a first message to a device is a larger PreKeySignalMessage, ≈ 184
    //   bytes; not counted here).
    let omemo_min = omemo_key_element(16 + 16);
    let signal_message = 1 + (2 + 33) + 2 + 2 + (2 + 48) + 8;
    let omemo_signal = omemo_key_element(signal_message);

    println!("Message children a sender emits for one {BODY_LEN}-byte text message (bytes)");
    println!("keysrv: measured (`<encrypted>` + EME marker + fallback body + store hint, rpad 100)");
    println!("OMEMO 0.3 header: computed estimate of the per-device `<key rid='…'>` elements only");
    println!();
    println!(
        "{:>8} {:>10} {:>26} {:>30}",
        "devices", "keysrv", "+OMEMO keys (32 B each)", "+OMEMO keys (SignalMessage)"
    );
    let mut sizes = Vec::new();
    for n in DEVICES {
        let size = children_len(&key, &fixed);
        sizes.push(size);
        println!("{n:>8} {size:>10} {:>26} {:>30}", n * omemo_min, n * omemo_signal);
    }
    assert!(sizes.windows(2).all(|w| w[0] == w[1]), "keysrv's stanza size changed with the device count: {sizes:?}");

    let smallest = children_len(&key, &envelope(0));
    let largest = children_len(&key, &envelope(MAX_RPAD));
    println!();
    println!("keysrv size is constant across device counts: {} bytes (asserted)", sizes[0]);
    println!("keysrv size range over the random padding (rpad 0–{}): {smallest}–{largest} bytes", MAX_RPAD);
    println!(
        "OMEMO 0.3 per device: {omemo_min} bytes (key+tag only) / {omemo_signal} bytes (with SignalMessage, {signal_message} B \
         → {} base64 chars) — computed estimates",
        base64_len(signal_message)
    );
}
