//! JID parsing and normalization (`keysrv-jid`, and the server's and the
//! client's entry points to it) on arbitrary text.
//!
//! Properties: nothing panics; `normalize` is idempotent and its output is
//! canonical; `canonical` accepts exactly the fixed points of `normalize`
//! (and names the canonical form when it refuses another spelling);
//! `bare_of` is idempotent, ignores the resource and agrees with
//! `normalize` on users; the server (`keysrv_shared::bare_jid::parse`) and
//! the client (`keysrv_client::wire::bare_jid`) agree with the crate.

#![no_main]

use keysrv_jid::{BareJid, JidError, MAX_LEN};
use keysrv_shared::http::problem::status_of;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let s = keysrv_fuzz::text(data);
    let s = s.as_ref();
    let normalized = BareJid::normalize(s);
    let bare = BareJid::bare_of(s);
    let canonical = BareJid::canonical(s);

    // The client's AAD and the server's membership use the same bytes.
    assert_eq!(
        keysrv_client::wire::bare_jid(s).ok().as_deref(),
        bare.as_ref().ok().map(BareJid::as_str),
        "client and keysrv-jid disagree on {s:?}"
    );
    let server = keysrv_shared::bare_jid::parse(s);
    assert_eq!(server.as_ref().ok(), normalized.as_ref().ok(), "server and keysrv-jid disagree on {s:?}");
    if let Err(e) = server {
        assert_eq!(status_of(&e), 400, "{e:?}");
    }

    if let Ok(n) = &normalized {
        well_formed(n);
        assert!(n.localpart().is_some(), "{s:?} -> {n:?} has no localpart");
        assert_eq!(BareJid::normalize(n.as_str()).as_ref(), Ok(n), "normalize is not idempotent on {s:?}");
        assert_eq!(BareJid::canonical(n.as_str()).as_ref(), Ok(n), "canonical refuses normalize({s:?})");
        assert_eq!(bare.as_ref(), Ok(n), "bare_of and normalize disagree on {s:?}");
    }

    // canonical accepts exactly the fixed points of normalize.
    match (&canonical, &normalized) {
        (Ok(c), Ok(n)) => {
            assert_eq!(c.as_str(), s);
            assert_eq!(c, n);
        }
        (Err(JidError::NotCanonical { canonical: want }), Ok(n)) => {
            assert_ne!(n.as_str(), s, "{s:?} is a fixed point but was refused");
            assert_eq!(want, n.as_str());
        }
        (Err(e), Err(f)) => assert_eq!(e, f, "canonical and normalize fail differently on {s:?}"),
        (c, n) => panic!("{s:?}: canonical {c:?} but normalize {n:?}"),
    }

    if let Ok(b) = &bare {
        well_formed(b);
        assert_eq!(BareJid::bare_of(b.as_str()).as_ref(), Ok(b), "bare_of is not idempotent on {s:?}");
        if let Some((without_resource, _)) = s.split_once('/') {
            assert_eq!(BareJid::bare_of(without_resource).as_ref(), Ok(b), "the resource changes bare_of({s:?})");
        }
        match b.localpart() {
            Some(_) => assert_eq!(BareJid::normalize(b.as_str()).as_ref(), Ok(b)),
            None => assert_eq!(BareJid::normalize(b.as_str()), Err(JidError::NoLocalpart)),
        }
    }
});

/// A normalized JID: short enough, one `@` at most, no resource, no part
/// empty, nothing that would re-split differently.
fn well_formed(j: &BareJid) {
    let s = j.as_str();
    assert!(!s.is_empty() && s.len() <= MAX_LEN, "{s:?}");
    assert!(!s.contains('/'), "{s:?} has a resource");
    assert!(s.matches('@').count() <= 1, "{s:?}");
    assert!(!j.domain().is_empty() && !j.domain().ends_with('.'), "{s:?}");
    assert!(j.localpart().is_none_or(|l| !l.is_empty()), "{s:?}");
    assert!(!s.chars().any(|c| c.is_whitespace() || c.is_control()), "{s:?}");
}
