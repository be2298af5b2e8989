//! `keysrv file`.

use std::path::{Path, PathBuf};

use keysrv::cli::{FileCommand, FileDownloadArgs, FileUploadArgs};
use keysrv_client::FileRef;
use serde_json::json;

use super::messages::{file_ref_json, parse_file_ref};
use super::{Ctx, Failure, Output, Session, rfc3339, table, write_stdout};

pub async fn file(ctx: &Ctx, command: FileCommand) -> Result<Output, Failure> {
    let session = ctx.session()?;
    match command {
        FileCommand::Upload(args) => upload(&session, args).await,
        FileCommand::Download(args) => download(ctx, &session, args).await,
        FileCommand::Show(args) => {
            let f = session.client.file(&args.file_id).await?;
            // Not the download URL: it is a capability, and short-lived.
            let json = json!({
                "file_id": f.file_id,
                "conversation_id": f.conversation_id,
                "content_type": f.content_type,
                "size": f.size,
                "uploader": f.uploader,
                "created_at": rfc3339(f.created_at),
            });
            let text = table(&[
                ("file_id", f.file_id.clone()),
                ("conversation_id", f.conversation_id.clone()),
                ("content_type", f.content_type.clone()),
                ("size", f.size.to_string()),
                ("uploader", f.uploader.clone()),
                ("created_at", rfc3339(f.created_at)),
            ]);
            Ok(Output::new(json, text))
        }
        FileCommand::Delete(args) => {
            session.client.delete_file(&args.file_id).await?;
            Ok(Output::new(
                json!({ "file_id": args.file_id, "deleted": true }),
                format!("Deleted file {}", args.file_id),
            ))
        }
    }
}

/// The media type for a file name's extension, for the common kinds of file
/// people share; anything else is application/octet-stream.
fn guess_media_type(path: &Path) -> &'static str {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or_default().to_ascii_lowercase();
    match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "heic" => "image/heic",
        "svg" => "image/svg+xml",
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        "md" => "text/markdown",
        "csv" => "text/csv",
        "json" => "application/json",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        "tar" => "application/x-tar",
        "mp3" => "audio/mpeg",
        "m4a" => "audio/mp4",
        "ogg" | "oga" => "audio/ogg",
        "opus" => "audio/opus",
        "wav" => "audio/wav",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "mov" => "video/quicktime",
        _ => "application/octet-stream",
    }
}

async fn upload(session: &Session, args: FileUploadArgs) -> Result<Output, Failure> {
    let shown = args.path.display();
    let meta = tokio::fs::metadata(&args.path).await.map_err(|e| Failure::io(&shown, &e))?;
    if !meta.is_file() {
        return Err(Failure::usage(format!("{shown} is not a file")));
    }
    let file = tokio::fs::File::open(&args.path).await.map_err(|e| Failure::io(&shown, &e))?;
    let content_type = args.content_type.clone().unwrap_or_else(|| guess_media_type(&args.path).to_owned());
    let mut file_ref = session.client.upload_file_from(&args.conversation_id, &content_type, meta.len(), file).await?;
    file_ref.name = args.name.clone().or_else(|| args.path.file_name().map(|n| n.to_string_lossy().into_owned()));
    let reference = file_ref_json(&file_ref);
    let text = table(&[("file_id", file_ref.id.clone()), ("file_ref", reference.to_string())]);
    let json = json!({
        "file_id": file_ref.id,
        "conversation_id": args.conversation_id,
        "file_ref": reference,
    });
    Ok(Output::new(json, text))
}

/// A name from a message, made safe to create in the current directory:
/// only its last component, and not a hidden or special file.
fn safe_name(name: &str) -> Option<String> {
    let base = Path::new(name).file_name()?.to_str()?;
    let ok = !base.starts_with('.') && !base.contains('\\') && !base.chars().any(char::is_control);
    ok.then(|| base.to_owned())
}

/// Sets `slot` from an option unless the reference already says otherwise.
fn merge<T: PartialEq + std::fmt::Display>(slot: &mut Option<T>, given: Option<T>, what: &str) -> Result<(), Failure> {
    match (slot.as_ref(), given) {
        (Some(a), Some(b)) if *a != b => {
            Err(Failure::usage(format!("--{what} {b} contradicts the file reference's {what} {a}")))
        }
        (_, Some(b)) => {
            *slot = Some(b);
            Ok(())
        }
        (_, None) => Ok(()),
    }
}

async fn download(ctx: &Ctx, session: &Session, args: FileDownloadArgs) -> Result<Output, Failure> {
    let mut file_ref = match (&args.file_ref, &args.file_id) {
        (Some(json), _) => parse_file_ref(json)?,
        (None, Some(id)) => FileRef::new(id.clone()),
        (None, None) => return Err(Failure::usage("give a FILE_ID or --file-ref")),
    };
    merge(&mut file_ref.sha256, args.sha256.clone(), "sha256")?;
    merge(&mut file_ref.size, args.size, "size")?;
    let checked = file_ref.sha256.is_some();

    if args.output.as_deref() == Some(Path::new("-")) {
        if ctx.json {
            return Err(Failure::usage("--json prints its object on stdout: save the file with -o PATH"));
        }
        // Held until checked, so nothing unchecked reaches the pipe.
        let bytes = session.client.download_file(&file_ref).await?;
        write_stdout(&bytes)?;
        if !checked {
            ctx.warn("no SHA-256 given: only the size was checked");
        }
        return Ok(Output::none());
    }

    let path = match &args.output {
        Some(p) => p.clone(),
        None => PathBuf::from(file_ref.name.as_deref().and_then(safe_name).unwrap_or_else(|| file_ref.id.clone())),
    };
    let shown = path.display();
    if !args.force && tokio::fs::symlink_metadata(&path).await.is_ok() {
        return Err(Failure::usage(format!("{shown} exists: --force replaces it")));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let leaf = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    // Written beside the target and moved into place only once checked.
    let partial = dir.join(format!(".{leaf}.{}.partial", std::process::id()));
    let mut out = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&partial)
        .await
        .map_err(|e| Failure::io(partial.display(), &e))?;
    let result = async {
        let n = session.client.download_file_to(&file_ref, &mut out).await?;
        out.sync_all().await.map_err(|e| Failure::io(partial.display(), &e))?;
        drop(out);
        tokio::fs::rename(&partial, &path).await.map_err(|e| Failure::io(&shown, &e))?;
        Ok::<u64, Failure>(n)
    }
    .await;
    let size = match result {
        Ok(n) => n,
        Err(f) => {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(f);
        }
    };
    if !checked {
        ctx.warn("no SHA-256 given: only the size was checked");
    }
    let json = json!({
        "file_id": file_ref.id,
        "path": path.display().to_string(),
        "size": size,
        "sha256_checked": checked,
    });
    let text = format!(
        "Saved {size} bytes to {shown}{}",
        if checked { " (SHA-256 checked)" } else { " (size checked; no SHA-256 given)" }
    );
    Ok(Output::new(json, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_messages_stay_in_the_directory() {
        assert_eq!(safe_name("orchard map.png").as_deref(), Some("orchard map.png"));
        assert_eq!(safe_name("../../etc/passwd").as_deref(), Some("passwd"));
        assert_eq!(safe_name("/tmp/x.txt").as_deref(), Some("x.txt"));
        for bad in ["", "..", ".", ".bashrc", "a\\..\\b", "bell\u{7}", "dir/"] {
            assert_ne!(safe_name(bad).as_deref(), Some(bad), "{bad:?}");
        }
        assert_eq!(safe_name(".."), None);
        assert_eq!(safe_name(".bashrc"), None);
    }

    #[test]
    fn media_types_by_extension() {
        assert_eq!(guess_media_type(Path::new("a/b.PNG")), "image/png");
        assert_eq!(guess_media_type(Path::new("notes.txt")), "text/plain");
        assert_eq!(guess_media_type(Path::new("Makefile")), "application/octet-stream");
        assert_eq!(guess_media_type(Path::new("x.exe")), "application/octet-stream");
    }
}
