//! The blob server's signed URLs (embedded backend): `SignedQuery::parse`
//! of the query string and `LocalFileStore::verify` of a request against it.
//!
//! Properties: nothing panics; a request keysrv did not sign is refused with
//! a 403 (arbitrary queries, methods, storage keys, lengths and types); a URL
//! keysrv issued verifies for exactly the request it was issued for, and
//! any change to it (method, storage key, `Content-Length`, `Content-Type`,
//! any bit, byte, insertion or deletion in the query) is refused, unless
//! the changed query still means the same file id, expiry and signature
//! (e.g. an unknown parameter added, `expires=+…`).

#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arbitrary::Arbitrary;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keysrv_fuzz::{flip_bit, pick, scratch_dir};
use keysrv_shared::adapters::local_files::{LocalFileStore, SignedQuery};
use keysrv_shared::adapters::local_key_file::LocalKeyFile;
use keysrv_shared::http::problem::status_of;
use keysrv_shared::ids::{FileId, StorageKey};
use keysrv_shared::media_type::MediaType;
use keysrv_shared::ports::{FileObject, FileStore};
use libfuzzer_sys::fuzz_target;

struct Fixture {
    store: LocalFileStore,
    rt: tokio::runtime::Runtime,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = scratch_dir("blobs");
        let keys = Arc::new(LocalKeyFile::open_or_create(&dir.join("master.key")).expect("master key"));
        let store =
            LocalFileStore::open(&dir, keys, Some("http://127.0.0.1:8080/".into()), 1 << 30).expect("file store");
        // Signing and verifying never touch the disk again.
        std::fs::remove_dir_all(&dir).expect("removing the scratch directory");
        let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        Fixture { store, rt }
    })
}

#[derive(Arbitrary, Debug)]
enum Input {
    /// A request with a query keysrv never issued.
    Forged { query: Option<String>, method: Method, storage_key: String, size: Option<u64>, media_type: Option<String> },
    /// A URL keysrv issued, then (perhaps) changed.
    Issued { upload: bool, file: [u8; 32], key: [u8; 16], media: Media, size: u64, ttl: u16, edit: Edit },
}

#[derive(Arbitrary, Debug)]
enum Method {
    Put,
    Get,
    Any(String),
}

impl Method {
    fn as_str(&self) -> &str {
        match self {
            Method::Put => "PUT",
            Method::Get => "GET",
            Method::Any(s) => s,
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Media {
    Known(u8),
    Any(String),
}

#[derive(Arbitrary, Debug)]
enum Edit {
    None,
    Method(Method),
    StorageKey(String),
    Size(Option<u64>),
    MediaType(Option<String>),
    Bit(u32),
    Byte { pos: u16, byte: u8 },
    Insert { pos: u16, text: String },
    Delete { pos: u16, len: u8 },
    Append(String),
    Replace(String),
}

const MEDIA: &[&str] = &["image/png", "text/plain; charset=utf-8", "application/octet-stream", "text/x;a=\"b c\""];

fn char_boundary(s: &str, pos: u16) -> usize {
    let mut p = usize::from(pos) % (s.len() + 1);
    while !s.is_char_boundary(p) {
        p -= 1;
    }
    p
}

fuzz_target!(|input: Input| {
    let f = fixture();
    match input {
        Input::Forged { query, method, storage_key, size, media_type } => {
            let Ok(q) = SignedQuery::parse(query.as_deref()) else { return };
            match f.store.verify(method.as_str(), &storage_key, &q, size, media_type.as_deref()) {
                Ok(k) => panic!("a forged URL verified for {k:?}: {query:?}"),
                Err(e) => assert_eq!(status_of(&e), 403, "{e:?}"),
            }
        }
        Input::Issued { upload, file, key, media, size, ttl, edit } => {
            issued(f, upload, &file, &key, &media, size, ttl, &edit);
        }
    }
});

#[allow(clippy::too_many_arguments)]
fn issued(f: &Fixture, upload: bool, file: &[u8; 32], key: &[u8; 16], media: &Media, size: u64, ttl: u16, edit: &Edit) {
    let file_id =
        FileId::parse(&format!("{}.{}", URL_SAFE_NO_PAD.encode(&file[..16]), URL_SAFE_NO_PAD.encode(&file[16..])))
            .expect("file id");
    let storage_key = StorageKey::parse(&URL_SAFE_NO_PAD.encode(key)).expect("storage key");
    let media_type = match media {
        Media::Known(i) => MediaType::parse(pick::<&str>(MEDIA, *i)).expect("media type"),
        Media::Any(s) => match MediaType::parse(s) {
            Ok(m) => m,
            Err(_) => return,
        },
    };
    let object = FileObject { file_id: &file_id, storage_key: &storage_key, media_type: &media_type, size };
    let ttl = Duration::from_secs(60 + u64::from(ttl));
    let presigned =
        f.rt.block_on(async {
            if upload { f.store.presign_upload(object, ttl).await } else { f.store.presign_download(object, ttl).await }
        })
        .expect("presigning");
    let (path, query) = presigned.url.split_once('?').expect("a query");
    let key_text = path.rsplit('/').next().expect("a path");
    assert_eq!(key_text, storage_key.as_str());
    let original = SignedQuery::parse(Some(query)).expect("an issued query parses");
    assert_eq!(original.file_id, file_id);

    let method = if upload { "PUT" } else { "GET" };
    let size_header = upload.then_some(size);
    let type_header = upload.then_some(media_type.as_str());
    assert_eq!(f.store.verify(method, key_text, &original, size_header, type_header).as_ref().ok(), Some(&storage_key));

    // The changed request.
    let (mut m, mut k, mut q) = (method.to_owned(), key_text.to_owned(), query.to_owned());
    let (mut len, mut ty) = (size_header, type_header.map(str::to_owned));
    match edit {
        Edit::None => {}
        Edit::Method(x) => m = x.as_str().to_owned(),
        Edit::StorageKey(x) => k = x.clone(),
        Edit::Size(x) => len = *x,
        Edit::MediaType(x) => ty = x.clone(),
        Edit::Bit(bit) => {
            let mut b = q.into_bytes();
            flip_bit(&mut b, (*bit).into());
            q = String::from_utf8_lossy(&b).into_owned();
        }
        Edit::Byte { pos, byte } => {
            let mut b = q.into_bytes();
            let i = usize::from(*pos) % b.len();
            b[i] = *byte;
            q = String::from_utf8_lossy(&b).into_owned();
        }
        Edit::Insert { pos, text } => q.insert_str(char_boundary(&q, *pos), text),
        Edit::Delete { pos, len } => {
            let start = char_boundary(&q, *pos);
            let end = char_boundary(&q, (start + usize::from(*len)).min(q.len()) as u16);
            q.replace_range(start..end.max(start), "");
        }
        Edit::Append(text) => q.push_str(text),
        Edit::Replace(text) => q = text.clone(),
    }
    let Ok(changed) = SignedQuery::parse(Some(&q)) else { return };
    // What the signature covers: method, storage key, file id, expiry, and
    // the length and type as the request states them.
    let same = m == method
        && k == key_text
        && format!("{changed:?}") == format!("{original:?}")
        && len.map(|l| l.to_string()).unwrap_or_default() == size_header.map(|l| l.to_string()).unwrap_or_default()
        && ty.as_deref().unwrap_or_default() == type_header.unwrap_or_default();
    match f.store.verify(&m, &k, &changed, len, ty.as_deref()) {
        Ok(got) => {
            assert!(same, "a changed URL verified: {m} {k} ?{q} {len:?} {ty:?} (issued {method} ?{query})");
            assert_eq!(got, storage_key);
        }
        Err(e) => {
            assert!(!same, "an unchanged request was refused: {e}");
            assert_eq!(status_of(&e), 403, "{e:?}");
        }
    }
}
