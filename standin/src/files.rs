//! Files and images of a base (file_operations.yaml), with the API token as
//! `Authorization: Token …` — what the Python SDK's `Base.upload_bytes_file`,
//! `upload_local_file`, `download_file` and the custom-folder calls use:
//!
//! * `GET /api/v2.1/dtable/app-upload-link/` (`getUploadLink`) →
//!   `{upload_link, workspace_id, parent_path, img_relative_path,
//!   file_relative_path}`; the link points at this stand-in's
//!   `/seafhttp/upload-api/{id}`;
//! * `POST /seafhttp/upload-api/{id}?ret-json=1` (`uploadFile`), multipart
//!   `file`, `parent_dir`, `relative_path`, `replace` → `[{name, id,
//!   size}]`; the bytes are stored (a name taken without `replace` becomes
//!   `name(1).ext`, as the spec says);
//! * `GET /api/v2.1/dtable/app-download-link/?path=/files/…`
//!   (`getFileDownloadLink`; the SDK sends the path without its leading
//!   slash, also accepted) → `{download_link}` pointing at
//!   `/seafhttp/files/{token}/{name}`, which returns the bytes; an unknown
//!   path 404 `path … not found.`;
//! * the custom folder: `custom/app-upload-link/?path` → `{"dirent":
//!   {upload_link, workspace_id, parent_path, relative_path}}`,
//!   `custom/app-download-link/?path` → `{"dirent": {download_link}}` (both
//!   flat, as the Python SDK reads them, with
//!   [`crate::Compat::custom_links_flat`]), `custom/app-asset-file/?path&name`
//!   → `{"dirent": {is_file, obj_name, file_size, last_update, uuid}}`
//!   (`DELETE` with `?path=/folder/name` removes the file: `{"success":
//!   true}`, 404 `File not found.` for none — the 404 is the stand-in's
//!   choice),
//!   `custom/app-asset-dir/?path` → `{"dir": [{name}], "file": [{name}]}`;
//! * `GET /api/v2.1/dtable/app-user-info/?username` — in the SDKs, not in
//!   the spec: `{email, name, contact_email, avatar_url}` of a known user.
//!
//! An unknown API token gets the exchange's 403 `Permission denied.`.
//! Links do not expire here (SeaTable's live minutes to hours).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;

use crate::account::{iso, percent_decode};
use crate::server::{Base, Standin, State, header, hyphenated, json_response, now, random_hex};

const API: &str = "/api/v2.1/dtable/";
/// The largest upload taken.
const MAX_UPLOAD: usize = 16 * 1024 * 1024;

struct Stored {
    bytes: Bytes,
    mtime: u64,
    uuid: String,
}

#[derive(Default)]
pub(crate) struct FileState {
    /// Upload link id → the directory it may write under.
    uploads: Mutex<HashMap<String, String>>,
    /// Download token → the file's full path.
    downloads: Mutex<HashMap<String, String>>,
    /// Full path (`/asset/{base uuid}/files/2025-01/a.txt`) → the file.
    stored: Mutex<BTreeMap<String, Stored>>,
}

impl Standin {
    /// The bytes stored at `path` of base `uuid`, e.g.
    /// `files/2025-01/report.pdf`, or `custom/folder/b.pdf`.
    pub fn file(&self, uuid: &str, path: &str) -> Option<Vec<u8>> {
        let full = format!("{}/{}", asset_root(uuid), path.trim_start_matches('/'));
        let stored = self.state.files.stored.lock().unwrap();
        stored.get(&full).map(|f| f.bytes.to_vec())
    }
}

fn asset_root(uuid: &str) -> String {
    format!(
        "/asset/{}",
        hyphenated(uuid).unwrap_or_else(|| uuid.to_string())
    )
}

pub(crate) fn serves(path: &str) -> bool {
    path.starts_with("/seafhttp/")
        || path.strip_prefix(API).is_some_and(|rest| {
            matches!(
                rest,
                "app-upload-link/"
                    | "app-download-link/"
                    | "app-user-info/"
                    | "custom/app-upload-link/"
                    | "custom/app-download-link/"
                    | "custom/app-asset-file/"
                    | "custom/app-asset-dir/"
            )
        })
}

/// A query parameter, decoded as `requests` encodes it.
fn query(req: &Request<Incoming>, name: &str) -> Option<String> {
    req.uri().query()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == name).then(|| percent_decode(&v.replace('+', " ")))
    })
}

fn error_msg(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    json_response(status, &json!({ "error_msg": text }))
}

pub(crate) async fn handle(
    req: Request<Incoming>,
    state: &State,
    https: bool,
) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let origin = format!(
        "{}://{}",
        if https { "https" } else { "http" },
        header(&req, "host").unwrap_or_default()
    );
    if let Some(id) = path.strip_prefix("/seafhttp/upload-api/") {
        return match *req.method() {
            Method::POST => upload(req, state, id.trim_end_matches('/').to_string()).await,
            _ => error_msg(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed."),
        };
    }
    if let Some(rest) = path.strip_prefix("/seafhttp/files/") {
        let token = rest.split('/').next().unwrap_or_default();
        let full = state.files.downloads.lock().unwrap().get(token).cloned();
        let stored = state.files.stored.lock().unwrap();
        return match full.and_then(|f| stored.get(&f)) {
            Some(file) if req.method() == Method::GET => Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "application/octet-stream")
                .body(Full::new(file.bytes.clone()))
                .unwrap(),
            _ => error_msg(StatusCode::NOT_FOUND, "File not found."),
        };
    }
    let deleting = req.method() == Method::DELETE && path == format!("{API}custom/app-asset-file/");
    if req.method() != Method::GET && !deleting {
        return error_msg(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed.");
    }
    let token = header(&req, "authorization")
        .and_then(|a| {
            a.strip_prefix("Token ")
                .or_else(|| a.strip_prefix("Bearer "))
                .map(|t| t.trim().to_string())
        })
        .unwrap_or_default();
    let base = state.bases.lock().unwrap().get(&token).cloned();
    let Some(base) = base.filter(|b| !b.gone) else {
        return error_msg(StatusCode::FORBIDDEN, "Permission denied.");
    };
    let root = asset_root(&base.dtable_uuid);
    let flat = state.compat.lock().unwrap().custom_links_flat;
    let dirent = |v: serde_json::Value| if flat { v } else { json!({ "dirent": v }) };
    if deleting {
        // deleteBaseCustomFolderAsset: `?path` names the folder and the file.
        let asked = query(&req, "path").unwrap_or_default();
        let full = join(&format!("{root}/custom"), &asked, "");
        return match state.files.stored.lock().unwrap().remove(&full) {
            Some(_) => json_response(StatusCode::OK, &json!({ "success": true })),
            None => error_msg(StatusCode::NOT_FOUND, "File not found."),
        };
    }
    match &path[API.len()..] {
        "app-upload-link/" => {
            let month = &iso(now())[..7];
            json_response(
                StatusCode::OK,
                &json!({
                    "upload_link": upload_link(state, &origin, &root),
                    "workspace_id": base.workspace_id,
                    "parent_path": root,
                    "img_relative_path": format!("images/{month}"),
                    "file_relative_path": format!("files/{month}"),
                }),
            )
        }
        "app-download-link/" => {
            let asked = query(&req, "path").unwrap_or_default();
            match download_link(state, &origin, &root, &asked) {
                Some(link) => json_response(StatusCode::OK, &json!({ "download_link": link })),
                None => error_msg(StatusCode::NOT_FOUND, &format!("path {asked} not found.")),
            }
        }
        "custom/app-upload-link/" => {
            let folder = query(&req, "path").unwrap_or_else(|| "/".into());
            let custom = format!("{root}/custom");
            json_response(
                StatusCode::OK,
                &dirent(json!({
                    "upload_link": upload_link(state, &origin, &custom),
                    "workspace_id": base.workspace_id,
                    "parent_path": custom,
                    "relative_path": folder,
                })),
            )
        }
        "custom/app-download-link/" => {
            let asked = query(&req, "path").unwrap_or_default();
            match download_link(state, &origin, &format!("{root}/custom"), &asked) {
                Some(link) => {
                    json_response(StatusCode::OK, &dirent(json!({ "download_link": link })))
                }
                None => error_msg(StatusCode::NOT_FOUND, &format!("path {asked} not found.")),
            }
        }
        "custom/app-asset-file/" => {
            let folder = query(&req, "path").unwrap_or_else(|| "/".into());
            let name = query(&req, "name").unwrap_or_default();
            let full = join(&format!("{root}/custom"), &folder, &name);
            let stored = state.files.stored.lock().unwrap();
            match stored.get(&full) {
                Some(file) => json_response(
                    StatusCode::OK,
                    &json!({"dirent": {
                        "is_file": true,
                        "obj_name": name,
                        "file_size": file.bytes.len(),
                        "last_update": iso(file.mtime),
                        "uuid": file.uuid,
                    }}),
                ),
                None => error_msg(StatusCode::NOT_FOUND, "File not found."),
            }
        }
        "custom/app-asset-dir/" => {
            let folder = query(&req, "path").unwrap_or_else(|| "/".into());
            let dir = join(&format!("{root}/custom"), &folder, "");
            let prefix = format!("{}/", dir.trim_end_matches('/'));
            let stored = state.files.stored.lock().unwrap();
            let mut dirs = Vec::new();
            let mut files = Vec::new();
            for path in stored.keys().filter_map(|p| p.strip_prefix(&prefix)) {
                match path.split_once('/') {
                    Some((sub, _)) if !dirs.contains(&sub) => dirs.push(sub),
                    Some(_) => {}
                    None => files.push(path),
                }
            }
            let names = |v: Vec<&str>| v.iter().map(|n| json!({ "name": n })).collect::<Vec<_>>();
            json_response(
                StatusCode::OK,
                &json!({"dir": names(dirs), "file": names(files)}),
            )
        }
        "app-user-info/" => {
            let username = query(&req, "username").unwrap_or_default();
            let known = state.account.team_of(&username).is_some()
                || state
                    .bases
                    .lock()
                    .unwrap()
                    .values()
                    .any(|b: &Base| b.generated_by == username);
            if known {
                json_response(
                    StatusCode::OK,
                    &json!({
                        "email": username,
                        "name": username.split('@').next().unwrap_or_default(),
                        "contact_email": username,
                        "avatar_url": "/media/avatars/default.png",
                    }),
                )
            } else {
                error_msg(
                    StatusCode::NOT_FOUND,
                    &format!("User {username} not found."),
                )
            }
        }
        _ => error_msg(StatusCode::NOT_FOUND, "Not found."),
    }
}

/// `dir` + `sub` + `name`, single slashes, no trailing one.
fn join(dir: &str, sub: &str, name: &str) -> String {
    let mut out = dir.trim_end_matches('/').to_string();
    for part in [sub, name] {
        let part = part.trim_matches('/');
        if !part.is_empty() {
            out.push('/');
            out.push_str(part);
        }
    }
    out
}

fn upload_link(state: &State, origin: &str, dir: &str) -> String {
    let id = hyphenated(&random_hex(16)).expect("uuid");
    state
        .files
        .uploads
        .lock()
        .unwrap()
        .insert(id.clone(), dir.to_string());
    format!("{origin}/seafhttp/upload-api/{id}")
}

fn download_link(state: &State, origin: &str, dir: &str, asked: &str) -> Option<String> {
    let full = join(dir, asked, "");
    if !state.files.stored.lock().unwrap().contains_key(&full) {
        return None;
    }
    let token = hyphenated(&random_hex(16)).expect("uuid");
    let name = full.rsplit('/').next().unwrap_or_default().to_string();
    state
        .files
        .downloads
        .lock()
        .unwrap()
        .insert(token.clone(), full);
    Some(format!("{origin}/seafhttp/files/{token}/{name}"))
}

/// `name(1).ext`, `name(2).ext`, … for a name already taken in `dir`.
fn free_name(stored: &BTreeMap<String, Stored>, dir: &str, name: &str) -> String {
    if !stored.contains_key(&join(dir, "", name)) {
        return name.to_string();
    }
    let (stem, ext) = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => (stem, format!(".{ext}")),
        _ => (name, String::new()),
    };
    (1..)
        .map(|n| format!("{stem}({n}){ext}"))
        .find(|candidate| !stored.contains_key(&join(dir, "", candidate)))
        .expect("a free name")
}

async fn upload(req: Request<Incoming>, state: &State, id: String) -> Response<Full<Bytes>> {
    let denied = || error_msg(StatusCode::FORBIDDEN, "Access denied.");
    let Some(allowed) = state.files.uploads.lock().unwrap().get(&id).cloned() else {
        return denied();
    };
    let Some(boundary) =
        header(&req, "content-type").and_then(|ct| multer::parse_boundary(ct).ok())
    else {
        return error_msg(
            StatusCode::BAD_REQUEST,
            "Content-Type must be multipart/form-data.",
        );
    };
    let Ok(body) = Limited::new(req.into_body(), MAX_UPLOAD).collect().await else {
        return error_msg(StatusCode::BAD_REQUEST, "The upload is too large.");
    };
    let body = body.to_bytes();
    let stream =
        futures_util::stream::once(async move { Ok::<Bytes, std::convert::Infallible>(body) });
    let mut form = multer::Multipart::new(stream, boundary);
    let mut fields: HashMap<String, String> = HashMap::new();
    let mut files: Vec<(String, Bytes)> = Vec::new();
    loop {
        match form.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().unwrap_or_default().to_string();
                let file_name = field.file_name().map(str::to_string);
                let Ok(bytes) = field.bytes().await else {
                    return error_msg(StatusCode::BAD_REQUEST, "Bad multipart body.");
                };
                match file_name {
                    Some(file_name) if name == "file" => files.push((file_name, bytes)),
                    _ => {
                        fields.insert(name, String::from_utf8_lossy(&bytes).into_owned());
                    }
                }
            }
            Ok(None) => break,
            Err(_) => return error_msg(StatusCode::BAD_REQUEST, "Bad multipart body."),
        }
    }
    let parent = fields.get("parent_dir").cloned().unwrap_or_default();
    let parent = parent.trim_end_matches('/');
    if parent.is_empty() || !(parent == allowed || parent.starts_with(&format!("{allowed}/"))) {
        return error_msg(StatusCode::BAD_REQUEST, "Parent dir doesn't exist.");
    }
    if files.is_empty() {
        return error_msg(StatusCode::BAD_REQUEST, "No file uploaded.");
    }
    let dir = join(
        parent,
        fields.get("relative_path").map_or("", String::as_str),
        "",
    );
    let replace = fields.get("replace").is_some_and(|r| r == "1");
    let mut stored = state.files.stored.lock().unwrap();
    let mut answer = Vec::new();
    for (name, bytes) in files {
        let name = name.rsplit('/').next().unwrap_or_default().to_string();
        if name.is_empty() || name == "." || name == ".." {
            return error_msg(StatusCode::BAD_REQUEST, "Invalid file name.");
        }
        let name = if replace {
            name
        } else {
            free_name(&stored, &dir, &name)
        };
        let size = bytes.len();
        stored.insert(
            join(&dir, "", &name),
            Stored {
                bytes,
                mtime: now(),
                uuid: hyphenated(&random_hex(16)).expect("uuid"),
            },
        );
        answer.push(json!({"name": name, "id": random_hex(20), "size": size}));
    }
    json_response(StatusCode::OK, &json!(answer))
}
