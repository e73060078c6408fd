//! `cfstream keys` and `--signing-key`: Stream signing keys, for videos
//! that require signed URLs.

use std::io::Write;
use std::path::Path;

use cloudflare_stream_downloads::{Client, Error, SigningKey};

use crate::cli::{Global, KeysCommand};
use crate::output::Output;

/// The signing key of `--signing-key FILE`, else of
/// `CLOUDFLARE_STREAM_SIGNING_KEY_ID` + `_PEM`, else none.
pub fn signing_key(global: &Global) -> Result<Option<SigningKey>, Error> {
    match &global.signing_key {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| Error::InvalidInput {
                what: "--signing-key",
                reason: format!("{}: {e}", path.display()),
            })?;
            SigningKey::from_json(&text)
                .map(Some)
                .map_err(|e| Error::InvalidInput {
                    what: "--signing-key",
                    reason: format!("{}: {e}", path.display()),
                })
        }
        None => SigningKey::from_lookup(|name| std::env::var(name).ok()),
    }
}

pub async fn run(client: &Client, command: KeysCommand, out: &Output) -> Result<(), Error> {
    match command {
        KeysCommand::Create { save } => create(client, save.as_deref(), out).await,
        KeysCommand::List => {
            let keys = client.signing_keys().await?;
            if out.is_json() {
                println!("{}", serde_json::to_value(&keys).unwrap_or_default());
                return Ok(());
            }
            if keys.is_empty() {
                println!("no signing keys");
            }
            for key in keys {
                let id = key.id.as_deref().map_or("?", |id| id.as_str());
                let created = key.created.map(|c| c.to_rfc3339()).unwrap_or_default();
                println!("{id}  created {created}");
            }
            Ok(())
        }
        KeysCommand::Delete { key_id } => {
            client.delete_signing_key(&key_id).await?;
            if out.is_json() {
                println!("\"ok\"");
            } else {
                println!(
                    "deleted signing key {key_id}: every token signed with it no longer works \
                     (transfers in flight that use one fail)"
                );
            }
            Ok(())
        }
    }
}

async fn create(client: &Client, save: Option<&Path>, out: &Output) -> Result<(), Error> {
    // Refuse an existing file before a key is made that could not be kept.
    if let Some(path) = save
        && std::fs::symlink_metadata(path).is_ok()
    {
        return Err(Error::InvalidInput {
            what: "--save",
            reason: format!(
                "{} exists; refusing to overwrite a key file (delete it, or choose another)",
                path.display()
            ),
        });
    }
    let key = client.create_signing_key().await?;
    // Usable for signing: a key that cannot be loaded is reported now.
    key.signing_key()?;
    let created = key.created.map(|c| c.to_rfc3339()).unwrap_or_default();
    if let Some(path) = save {
        let doc = serde_json::json!({
            "id": key.id,
            "pem": key.pem.expose(),
            "jwk": key.jwk.as_ref().map(|j| j.expose()),
            "created": key.created,
        });
        write_private(path, &serde_json::to_vec_pretty(&doc).unwrap_or_default()).map_err(
            |source| Error::Io {
                path: path.to_owned(),
                source,
            },
        )?;
        if out.is_json() {
            println!(
                "{}",
                serde_json::json!({"id": key.id, "created": key.created, "saved": path})
            );
        } else {
            println!("created signing key {}  created {created}", key.id);
            println!(
                "saved to {} (mode 0600); use it with --signing-key {}",
                path.display(),
                path.display()
            );
        }
        return Ok(());
    }
    eprintln!(
        "warning: the private key below is shown this once and never again; keep it \
         (or use `cfstream keys create --save FILE`)"
    );
    if out.is_json() {
        println!("{}", key.raw.expose());
    } else {
        println!("id       {}", key.id);
        println!("created  {created}");
        println!("pem      {}", key.pem.expose());
    }
    Ok(())
}

/// Creates `path` (never overwriting), readable by its owner only, and
/// writes `bytes` durably.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    let written = file
        .write_all(bytes)
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all());
    if written.is_err() {
        // Nothing half-written is left with the key's name.
        let _ = std::fs::remove_file(path);
    }
    written
}
