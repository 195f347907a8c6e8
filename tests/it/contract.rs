//! The stand-in's contract: for every SeaTable endpoint the helper and the
//! agent use, its answers — fields, types, status codes, error bodies — as
//! SeaTable's official API spec gives them (OpenAPI 6.2, public repository
//! `seatable/seatable-api-php`, folder `openapi_input/`; each test names the
//! file and the operation). Written from the spec as read; its files are
//! not needed here. Where older servers answer otherwise, the stand-in's
//! switch to that form ([`Compat`]) is checked too. What the spec does not
//! say (ping, the two-factor challenge, the exchange's answer to an `exp`
//! in other units, `app-user-info`) is marked as the stand-in's choice.

use std::time::Duration;

use base64::Engine;
use reqwest::blocking::{Client, RequestBuilder, Response};
use seatable_standin::{Base, Compat, Standin, TeamBudget, TeamSeed};
use serde_json::{Value, json};

use crate::support::{now, sdk};

fn client() -> Client {
    crate::support::install_crypto();
    Client::builder()
        .tls_certs_only(Vec::new())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Status, `Retry-After`-style headers and the JSON body of an answer.
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

fn send(request: RequestBuilder) -> Answer {
    let response: Response = request.send().expect("the stand-in answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Answer {
        status,
        headers,
        body,
    }
}

fn get(url: String, auth: Option<&str>) -> Answer {
    let mut request = client().get(url);
    if let Some(auth) = auth {
        request = request.header("Authorization", auth);
    }
    send(request)
}

/// JSON types as the spec's schemas name them.
#[derive(Clone, Copy, Debug)]
enum T {
    Str,
    Int,
    Bool,
    Arr,
    Obj,
    Null,
    /// A string of format `date-time` (`2021-03-02T09:47:41+00:00`).
    DateTime,
    /// A hyphenated UUID, as the spec's examples (format `uuid`).
    Uuid,
}

fn is_datetime(s: &str) -> bool {
    s.len() == 25
        && s.as_bytes()[4] == b'-'
        && s.as_bytes()[10] == b'T'
        && (s.ends_with("+00:00") || s.as_bytes()[19] == b'+' || s.as_bytes()[19] == b'-')
}

fn is_hyphenated_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                c == '-'
            } else {
                c.is_ascii_hexdigit() && !c.is_ascii_uppercase()
            }
        })
}

fn has_type(v: &Value, t: T) -> bool {
    match t {
        T::Str => v.is_string(),
        T::Int => v.is_i64() || v.is_u64(),
        T::Bool => v.is_boolean(),
        T::Arr => v.is_array(),
        T::Obj => v.is_object(),
        T::Null => v.is_null(),
        T::DateTime => v.as_str().is_some_and(is_datetime),
        T::Uuid => v.as_str().is_some_and(is_hyphenated_uuid),
    }
}

/// `v` has each field, of its type.
#[track_caller]
fn fields(v: &Value, want: &[(&str, T)]) {
    for (name, t) in want {
        assert!(
            has_type(&v[name], *t),
            "field {name} should be {t:?}, is {}: {v}",
            v[name]
        );
    }
}

/// `v` has exactly these fields, of their types.
#[track_caller]
fn exactly(v: &Value, want: &[(&str, T)]) {
    fields(v, want);
    let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    let mut named: Vec<&str> = want.iter().map(|(n, _)| *n).collect();
    named.sort();
    assert_eq!(keys, named, "{v}");
}

/// The payload of a JWT.
fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn exchange(standin: &Standin, query: &str, api_token: &str) -> Answer {
    get(
        format!("{}/api/v2.1/dtable/app-access-token/{query}", standin.url),
        Some(&format!("Token {api_token}")),
    )
}

// ---------------------------------------------------------------------------
// authentication.yaml

/// getBaseTokenWithApiToken: 200 with app_name, access_token, dtable_uuid
/// (hyphenated in the example), dtable_server (`…/api-gateway/`),
/// workspace_id (integer), use_api_gateway (boolean), dtable_name; `exp`
/// (parameter `expiration_time`): a string such as `5h` or `3d`, default
/// `3d`; 403 `{"error_msg": "Permission denied."}`.
#[test]
fn exchange_answers_as_the_spec() {
    let standin = Standin::start();
    let base = standin.add_base(Base::default());
    let a = exchange(&standin, "", &base.api_token);
    assert_eq!(a.status, 200);
    exactly(
        &a.body,
        &[
            ("app_name", T::Str),
            ("access_token", T::Str),
            ("dtable_uuid", T::Uuid),
            ("dtable_server", T::Str),
            ("workspace_id", T::Int),
            ("use_api_gateway", T::Bool),
            ("dtable_name", T::Str),
        ],
    );
    assert_eq!(a.body["dtable_uuid"], base.dtable_uuid.as_str());
    assert!(
        a.body["dtable_server"]
            .as_str()
            .unwrap()
            .ends_with("/api-gateway/")
    );
    // The base token: exp (default 3d), dtable_uuid, permission, app_name,
    // as the spec's example token carries them.
    let c = claims(a.body["access_token"].as_str().unwrap());
    fields(
        &c,
        &[
            ("exp", T::Int),
            ("dtable_uuid", T::Uuid),
            ("permission", T::Str),
            ("app_name", T::Str),
        ],
    );
    let exp = c["exp"].as_u64().unwrap();
    assert!(exp.abs_diff(now() + 3 * 86_400) < 60, "default 3d: {exp}");

    for (query, secs) in [
        ("?exp=5h", 5 * 3600),
        ("?exp=3d", 3 * 86_400),
        ("?exp=1h", 3600),
    ] {
        let a = exchange(&standin, query, &base.api_token);
        assert_eq!(a.status, 200, "{query}");
        let exp = claims(a.body["access_token"].as_str().unwrap())["exp"]
            .as_u64()
            .unwrap();
        assert!(exp.abs_diff(now() + secs) < 60, "{query}: {exp}");
    }
    // Not the spec's units: the stand-in refuses them (SeaTable's answer to
    // them is not documented).
    for query in ["?exp=90m", "?exp=61s", "?exp=3600", "?exp=0h", "?exp=h"] {
        let a = exchange(&standin, query, &base.api_token);
        assert_eq!(a.status, 400, "{query}");
        assert_eq!(a.body, json!({"error_msg": "exp invalid."}), "{query}");
    }

    let a = exchange(&standin, "", "0123456789abcdef0123456789abcdef01234567");
    assert_eq!(a.status, 403);
    assert_eq!(a.body, json!({"error_msg": "Permission denied."}));
    assert_eq!(
        get(
            format!("{}/api/v2.1/dtable/app-access-token/", standin.url),
            None
        )
        .body,
        json!({"error_msg": "Permission denied."})
    );
    // The spec's security scheme is `bearer`; SeaTable takes `Token` too.
    let a = get(
        format!("{}/api/v2.1/dtable/app-access-token/", standin.url),
        Some(&format!("Bearer {}", base.api_token)),
    );
    assert_eq!(a.status, 200);
}

/// Older servers: the exchange's dtable_uuid (and the token's claim) as 32
/// hex digits while the workspace list stays hyphenated; a bad API token
/// 404 `api token not found.`.
#[test]
fn exchange_in_older_forms() {
    let standin = Standin::start();
    let account = standin.add_account("old@example.com", "pw", None);
    let base = standin.add_base(Base::default());
    standin.set_compat(Compat {
        hex_uuid_in_exchange: true,
        bad_token_404: true,
        ..Compat::default()
    });
    let a = exchange(&standin, "", &base.api_token);
    assert_eq!(a.status, 200);
    let hex = base.dtable_uuid.replace('-', "");
    assert_eq!(a.body["dtable_uuid"], hex.as_str());
    let token = a.body["access_token"].as_str().unwrap();
    assert_eq!(claims(token)["dtable_uuid"], hex.as_str());
    let listed = get(
        format!("{}/api/v2.1/workspaces/", standin.url),
        Some(&format!("Token {account}")),
    );
    let uuids: Vec<&str> = listed.body["workspace_list"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|w| w["table_list"].as_array().into_iter().flatten())
        .map(|t| t["uuid"].as_str().unwrap())
        .collect();
    assert!(uuids.contains(&base.dtable_uuid.as_str()), "{uuids:?}");
    // The gateway takes the base in either form.
    for uuid in [&hex, &base.dtable_uuid] {
        let a = get(
            format!(
                "{}/api-gateway/api/v2/dtables/{uuid}/metadata/",
                standin.url
            ),
            Some(&format!("Token {token}")),
        );
        assert_eq!(a.status, 200, "{uuid}");
    }
    let a = exchange(&standin, "", "0123456789abcdef0123456789abcdef01234567");
    assert_eq!(a.status, 404);
    assert_eq!(a.body, json!({"error_msg": "api token not found."}));
    // And back to the spec's form.
    standin.set_compat(Compat::default());
    assert_eq!(
        exchange(&standin, "", &base.api_token).body["dtable_uuid"],
        base.dtable_uuid.as_str()
    );
}

/// getAccountTokenfromUsername: form username, password, header
/// X-SEAFILE-OTP (six digits) when two-factor is on → 200 `{"token"}` (40
/// characters); 400 `{"non_field_errors": ["Unable to login with provided
/// credentials."]}`. The challenge without the header (400 with
/// `X-Seafile-OTP: required`) is seahub's, not in the spec.
#[test]
fn login_with_and_without_two_factor() {
    let standin = Standin::start();
    standin.add_account("plain@example.com", "pw-1", None);
    standin.add_account("otp@example.com", "pw-2", Some("123456"));
    let login = |user: &str, password: &str, otp: Option<&str>| {
        let mut request = client()
            .post(format!("{}/api2/auth-token/", standin.url))
            .form(&[("username", user), ("password", password)]);
        if let Some(otp) = otp {
            request = request.header("X-SEAFILE-OTP", otp);
        }
        send(request)
    };
    let a = login("plain@example.com", "pw-1", None);
    assert_eq!(a.status, 200);
    exactly(&a.body, &[("token", T::Str)]);
    assert_eq!(a.body["token"].as_str().unwrap().len(), 40);
    let a = login("plain@example.com", "wrong", None);
    assert_eq!(a.status, 400);
    assert_eq!(
        a.body,
        json!({"non_field_errors": ["Unable to login with provided credentials."]})
    );
    let a = login("otp@example.com", "pw-2", None);
    assert_eq!(a.status, 400);
    assert_eq!(a.headers["x-seafile-otp"], "required");
    let a = login("otp@example.com", "pw-2", Some("123456"));
    assert_eq!(a.status, 200);
    assert_eq!(a.body["token"].as_str().unwrap().len(), 40);
}

/// listApiTokens, createApiToken, deleteApiToken: ApiToken is app_name,
/// api_token (40 characters), generated_by (email), generated_at and
/// last_access (date-time), permission (`""`, `rw`, `r`); create answers
/// 201, a bad app_name 400 `{"error_msg": …}`, delete `{"success": true}`;
/// 401 `{"detail": "Invalid token"}`, 403 `{"detail": "Authentication
/// credentials were not provided."}`. A name taken (400 `api token already
/// exist.`) and an unknown app (404 `api token not found.`) are seahub's.
#[test]
fn api_tokens_of_a_base() {
    let standin = Standin::start();
    let account = standin.add_account("owner@example.com", "pw", None);
    let auth = format!("Token {account}");
    let base = standin.add_base(Base {
        dtable_name: "My Projects".into(),
        workspace_id: 127,
        ..Base::default()
    });
    let url = format!(
        "{}/api/v2.1/workspace/127/dtable/My%20Projects/api-tokens/",
        standin.url
    );
    let api_token = [
        ("app_name", T::Str),
        ("api_token", T::Str),
        ("generated_by", T::Str),
        ("generated_at", T::DateTime),
        ("last_access", T::DateTime),
        ("permission", T::Str),
    ];
    let a = get(url.clone(), Some(&auth));
    assert_eq!(a.status, 200);
    exactly(&a.body, &[("api_tokens", T::Arr)]);
    let listed = &a.body["api_tokens"][0];
    exactly(listed, &api_token);
    assert_eq!(listed["api_token"], base.api_token.as_str());
    assert_eq!(listed["api_token"].as_str().unwrap().len(), 40);
    assert!(listed["generated_by"].as_str().unwrap().contains('@'));

    let create = |app: &str, permission: &str| {
        send(
            client()
                .post(&url)
                .header("Authorization", &auth)
                .form(&[("app_name", app), ("permission", permission)]),
        )
    };
    let a = create("My App", "r");
    assert_eq!(a.status, 201);
    exactly(&a.body, &api_token);
    assert_eq!(a.body["permission"], "r");
    let a = create("My App", "r");
    assert_eq!(a.status, 400);
    assert_eq!(a.body, json!({"error_msg": "api token already exist."}));
    let a = create("", "r");
    assert_eq!(a.status, 400);
    assert_eq!(a.body, json!({"error_msg": "app_name invalid."}));

    let delete = |app: &str| {
        send(
            client()
                .delete(format!("{url}{app}/"))
                .header("Authorization", &auth),
        )
    };
    let a = delete("My%20App");
    assert_eq!(a.status, 200);
    assert_eq!(a.body, json!({"success": true}));
    let a = delete("My%20App");
    assert_eq!(a.status, 404);
    assert_eq!(a.body, json!({"error_msg": "api token not found."}));

    let a = get(
        url.clone(),
        Some("Token 0000000000000000000000000000000000000000"),
    );
    assert_eq!(a.status, 401);
    assert_eq!(a.body, json!({"detail": "Invalid token"}));
    let a = get(url, None);
    assert_eq!(a.status, 403);
    assert_eq!(
        a.body,
        json!({"detail": "Authentication credentials were not provided."})
    );
}

// ---------------------------------------------------------------------------
// user_account_operations.yaml

/// getAccountInfo: org_id (integer), is_org_staff (integer), space_usage,
/// total, usage, … in the schema's types; 401/403 `{"detail": …}`.
#[test]
fn account_info() {
    let standin = Standin::start();
    let member = standin.add_account("user@example.com", "pw", None);
    let admin = standin.add_team_account("admin@team.local", "pw", 4, true);
    let info = |token: &str| {
        get(
            format!("{}/api2/account/info/", standin.url),
            Some(&format!("Token {token}")),
        )
    };
    let a = info(&member);
    assert_eq!(a.status, 200);
    exactly(
        &a.body,
        &[
            ("org_id", T::Int),
            ("is_org_staff", T::Int),
            ("space_usage", T::Str),
            ("total", T::Int),
            ("usage", T::Int),
            ("row_usage_rate", T::Str),
            ("row_total", T::Int),
            ("row_usage", T::Int),
            ("avatar_url", T::Str),
            ("email", T::Str),
            ("name", T::Str),
            ("login_id", T::Str),
            ("contact_email", T::Str),
            ("institution", T::Str),
            ("is_staff", T::Bool),
            ("enable_chargebee", T::Bool),
            ("enable_subscription", T::Bool),
            ("dtable_updates_email_interval", T::Int),
            ("dtable_collaborate_email_interval", T::Int),
        ],
    );
    assert_eq!(a.body["is_org_staff"], 0);
    assert_eq!(a.body["org_id"], -1, "outside a team");
    let a = info(&admin);
    assert_eq!(
        (a.body["org_id"].as_i64(), a.body["is_org_staff"].as_i64()),
        (Some(4), Some(1))
    );
    let a = info("0000000000000000000000000000000000000000");
    assert_eq!(a.status, 401);
    assert_eq!(a.body, json!({"detail": "Invalid token"}));
    let a = get(format!("{}/api2/account/info/", standin.url), None);
    assert_eq!(a.status, 403);
    assert_eq!(
        a.body,
        json!({"detail": "Authentication credentials were not provided."})
    );
}

/// listWorkspaces (detail=true): `workspace_list` of workspaces with id
/// (integer, or "" for the starred pseudo-workspace), name, type and
/// `table_list` entries with id, workspace_id, uuid (hyphenated), name,
/// creator, modifier, created_at, updated_at, color, text_color, icon,
/// starred.
#[test]
fn workspaces() {
    let standin = Standin::start();
    let account = standin.add_account("owner@example.com", "pw", None);
    let base = standin.add_base(Base::default());
    let a = get(
        format!("{}/api/v2.1/workspaces/", standin.url),
        Some(&format!("Token {account}")),
    );
    assert_eq!(a.status, 200);
    let list = a.body["workspace_list"].as_array().unwrap();
    assert_eq!(list[0]["id"], "");
    assert_eq!(list[0]["type"], "starred");
    let mine = list.iter().find(|w| w["id"].is_i64()).unwrap();
    fields(
        mine,
        &[
            ("id", T::Int),
            ("name", T::Str),
            ("type", T::Str),
            ("table_list", T::Arr),
        ],
    );
    let table = &mine["table_list"][0];
    exactly(
        table,
        &[
            ("id", T::Int),
            ("workspace_id", T::Int),
            ("uuid", T::Uuid),
            ("name", T::Str),
            ("creator", T::Str),
            ("modifier", T::Str),
            ("created_at", T::DateTime),
            ("updated_at", T::DateTime),
            ("color", T::Null),
            ("text_color", T::Null),
            ("icon", T::Null),
            ("starred", T::Bool),
        ],
    );
    assert_eq!(table["uuid"], base.dtable_uuid.as_str());
}

// ---------------------------------------------------------------------------
// base_operations.yaml

/// getMetadata → `{"metadata": {"tables": [{_id, name, columns, views}]}}`,
/// 403 `{"error_message": "invalid token"}` for a missing or invalid base
/// token; listRows → `{"rows": [...]}`; appendRows → inserted_row_count
/// (integer), row_ids (array of objects), first_row (object). An expired
/// base token: 403 `{"error_msg": "Token expired."}`, as the Python SDK
/// expects (not in the spec); 401 with the switch.
#[test]
fn gateway_rows_and_metadata() {
    let standin = Standin::start();
    let base = standin.add_base(Base::default());
    let token = exchange(&standin, "", &base.api_token).body["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let at = |what: &str| {
        format!(
            "{}/api-gateway/api/v2/dtables/{}/{what}",
            standin.url, base.dtable_uuid
        )
    };
    let auth = format!("Token {token}");
    let a = get(at("metadata/"), Some(&auth));
    assert_eq!(a.status, 200);
    let table = &a.body["metadata"]["tables"][0];
    fields(
        table,
        &[
            ("_id", T::Str),
            ("name", T::Str),
            ("columns", T::Arr),
            ("views", T::Arr),
        ],
    );
    fields(
        &table["columns"][0],
        &[("key", T::Str), ("name", T::Str), ("type", T::Str)],
    );
    let a = get(format!("{}?table_name=Table1", at("rows/")), Some(&auth));
    assert_eq!(a.status, 200);
    fields(&a.body, &[("rows", T::Arr)]);
    fields(&a.body["rows"][0], &[("_id", T::Str)]);
    let a = send(
        client()
            .post(at("rows/"))
            .header("Authorization", &auth)
            .json(&json!({"table_name": "Table1", "rows": [{"Name": "Bo"}]})),
    );
    assert_eq!(a.status, 200);
    exactly(
        &a.body,
        &[
            ("inserted_row_count", T::Int),
            ("row_ids", T::Arr),
            ("first_row", T::Obj),
        ],
    );
    fields(&a.body["row_ids"][0], &[("_id", T::Str)]);

    let a = get(at("metadata/"), Some("Token not.a.jwt"));
    assert_eq!(a.status, 403);
    assert_eq!(a.body, json!({"error_message": "invalid token"}));
    let a = get(at("metadata/"), None);
    assert_eq!(a.status, 403);

    standin.expire_issued();
    let a = get(at("metadata/"), Some(&auth));
    assert_eq!(a.status, 403);
    assert_eq!(a.body, json!({"error_msg": "Token expired."}));
    standin.set_compat(Compat {
        expired_401: true,
        ..Compat::default()
    });
    let a = get(at("metadata/"), Some(&auth));
    assert_eq!(a.status, 401);
    assert_eq!(a.body, json!({"error_msg": "Token expired."}));
}

// ---------------------------------------------------------------------------
// file_operations.yaml

/// getUploadLink → upload_link, workspace_id (integer), parent_path,
/// img_relative_path, file_relative_path; uploadFile (multipart file,
/// parent_dir, relative_path, replace; `?ret-json=1`) → `[{name, id,
/// size}]`, a name taken becoming `name(1).ext`; getFileDownloadLink →
/// `{download_link}`, 404 `{"error_msg": …}` for an unknown path. The API
/// token goes as `Authorization: Token …`; an unknown one is refused.
#[test]
fn file_upload_and_download() {
    let standin = Standin::start();
    let base = standin.add_base(Base::default());
    let auth = format!("Token {}", base.api_token);
    let a = get(
        format!("{}/api/v2.1/dtable/app-upload-link/", standin.url),
        Some(&auth),
    );
    assert_eq!(a.status, 200);
    exactly(
        &a.body,
        &[
            ("upload_link", T::Str),
            ("workspace_id", T::Int),
            ("parent_path", T::Str),
            ("img_relative_path", T::Str),
            ("file_relative_path", T::Str),
        ],
    );
    let link = a.body["upload_link"].as_str().unwrap();
    assert!(
        link.starts_with(&format!("{}/seafhttp/upload-api/", standin.url)),
        "{link}"
    );
    let relative = a.body["file_relative_path"].as_str().unwrap().to_string();
    assert!(relative.starts_with("files/") && relative.len() == "files/2021-08".len());
    let parent = a.body["parent_path"].as_str().unwrap().to_string();
    assert_eq!(parent, format!("/asset/{}", base.dtable_uuid));
    let upload = |bytes: &[u8]| {
        let form = reqwest::blocking::multipart::Form::new()
            .text("parent_dir", parent.clone())
            .text("relative_path", relative.clone())
            .text("replace", "0")
            .part(
                "file",
                reqwest::blocking::multipart::Part::bytes(bytes.to_vec()).file_name("report.pdf"),
            );
        send(client().post(format!("{link}?ret-json=1")).multipart(form))
    };
    let content: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let a = upload(&content);
    assert_eq!(a.status, 200);
    exactly(
        &a.body[0],
        &[("name", T::Str), ("id", T::Str), ("size", T::Int)],
    );
    assert_eq!(a.body[0]["name"], "report.pdf");
    assert_eq!(a.body[0]["size"], content.len());
    assert_eq!(upload(b"again").body[0]["name"], "report(1).pdf");

    for path in [
        format!("/{relative}/report.pdf"),
        format!("{relative}/report.pdf"),
    ] {
        let a = send(
            client()
                .get(format!(
                    "{}/api/v2.1/dtable/app-download-link/",
                    standin.url
                ))
                .query(&[("path", &path)])
                .header("Authorization", &auth),
        );
        assert_eq!(a.status, 200, "{path}");
        exactly(&a.body, &[("download_link", T::Str)]);
        let link = a.body["download_link"].as_str().unwrap();
        assert!(link.starts_with(&format!("{}/seafhttp/files/", standin.url)));
        let got = client().get(link).send().unwrap().bytes().unwrap();
        assert_eq!(got.as_ref(), content.as_slice(), "the bytes uploaded");
    }
    let a = send(
        client()
            .get(format!(
                "{}/api/v2.1/dtable/app-download-link/",
                standin.url
            ))
            .query(&[("path", "/files/2020-01/nonexistent.txt")])
            .header("Authorization", &auth),
    );
    assert_eq!(a.status, 404);
    assert_eq!(
        a.body,
        json!({"error_msg": "path /files/2020-01/nonexistent.txt not found."})
    );
    let a = get(
        format!("{}/api/v2.1/dtable/app-upload-link/", standin.url),
        Some("Token 0000000000000000000000000000000000000000"),
    );
    assert_eq!(a.status, 403);
    assert_eq!(a.body, json!({"error_msg": "Permission denied."}));
}

/// getCustomUploadLink → `{"dirent": {upload_link, workspace_id,
/// parent_path, relative_path}}`; getCustomDownloadLink → `{"dirent":
/// {download_link}}` (flat, as the Python SDK reads them, with the
/// switch); getCustomFileMetadata → `{"dirent": {is_file, obj_name,
/// file_size, last_update, uuid}}`; getCustomFiles → `{"dir": [{name}],
/// "file": [{name}]}`; deleteBaseCustomFolderAsset → `{"success": true}`.
/// `app-user-info` is the SDKs', not the spec's.
#[test]
fn custom_folder_and_user_info() {
    let standin = Standin::start();
    let base = standin.add_base(Base::default());
    let auth = format!("Token {}", base.api_token);
    let call = |what: &str, query: &[(&str, &str)]| {
        send(
            client()
                .get(format!("{}/api/v2.1/dtable/{what}", standin.url))
                .query(query)
                .header("Authorization", &auth),
        )
    };
    let a = call("custom/app-upload-link/", &[("path", "/supplierOne")]);
    assert_eq!(a.status, 200);
    exactly(&a.body, &[("dirent", T::Obj)]);
    let d = &a.body["dirent"];
    exactly(
        d,
        &[
            ("upload_link", T::Str),
            ("workspace_id", T::Int),
            ("parent_path", T::Str),
            ("relative_path", T::Str),
        ],
    );
    let form = reqwest::blocking::multipart::Form::new()
        .text("parent_dir", d["parent_path"].as_str().unwrap().to_string())
        .text(
            "relative_path",
            d["relative_path"].as_str().unwrap().to_string(),
        )
        .part(
            "file",
            reqwest::blocking::multipart::Part::bytes(b"invoice".to_vec()).file_name("b374.pdf"),
        );
    let up = send(
        client()
            .post(format!("{}?ret-json=1", d["upload_link"].as_str().unwrap()))
            .multipart(form),
    );
    assert_eq!(up.status, 200);

    let a = call(
        "custom/app-download-link/",
        &[("path", "/supplierOne/b374.pdf")],
    );
    assert_eq!(a.status, 200);
    exactly(&a.body, &[("dirent", T::Obj)]);
    exactly(&a.body["dirent"], &[("download_link", T::Str)]);
    let link = a.body["dirent"]["download_link"].as_str().unwrap();
    assert_eq!(
        client().get(link).send().unwrap().bytes().unwrap().as_ref(),
        b"invoice"
    );

    let a = call(
        "custom/app-asset-file/",
        &[("path", "/supplierOne"), ("name", "b374.pdf")],
    );
    assert_eq!(a.status, 200);
    exactly(
        &a.body["dirent"],
        &[
            ("is_file", T::Bool),
            ("obj_name", T::Str),
            ("file_size", T::Int),
            ("last_update", T::DateTime),
            ("uuid", T::Uuid),
        ],
    );
    assert_eq!(a.body["dirent"]["file_size"], 7);
    let a = call("custom/app-asset-dir/", &[("path", "/")]);
    assert_eq!(a.status, 200);
    assert_eq!(
        a.body,
        json!({"dir": [{"name": "supplierOne"}], "file": []})
    );
    let a = call("custom/app-asset-dir/", &[("path", "/supplierOne")]);
    assert_eq!(a.body, json!({"dir": [], "file": [{"name": "b374.pdf"}]}));

    standin.set_compat(Compat {
        custom_links_flat: true,
        ..Compat::default()
    });
    let a = call("custom/app-upload-link/", &[("path", "/")]);
    fields(&a.body, &[("upload_link", T::Str), ("parent_path", T::Str)]);
    let a = call(
        "custom/app-download-link/",
        &[("path", "/supplierOne/b374.pdf")],
    );
    exactly(&a.body, &[("download_link", T::Str)]);

    let a = call("app-user-info/", &[("username", &base.generated_by)]);
    assert_eq!(a.status, 200);
    fields(&a.body, &[("email", T::Str), ("name", T::Str)]);
    let a = call("app-user-info/", &[("username", "nobody@auth.local")]);
    assert_eq!(a.status, 404);

    // deleteBaseCustomFolderAsset: `?path` names folder and file → `{"success": true}`.
    let delete = || {
        send(
            client()
                .delete(format!(
                    "{}/api/v2.1/dtable/custom/app-asset-file/",
                    standin.url
                ))
                .query(&[("path", "/supplierOne/b374.pdf")])
                .header("Authorization", &auth),
        )
    };
    let a = delete();
    assert_eq!(a.status, 200);
    assert_eq!(a.body, json!({"success": true}));
    let a = call(
        "custom/app-asset-file/",
        &[("path", "/supplierOne"), ("name", "b374.pdf")],
    );
    assert_eq!(a.status, 404);
    // The stand-in's choice: a file that is not there is 404.
    assert_eq!(delete().status, 404);
}

/// The unmodified Python SDK (seatable-api 4.0.0) uploads and downloads a
/// file against the stand-in directly: `Base.upload_bytes_file` (the
/// upload link, the multipart upload) and `Base.download_file` (the
/// download link, the download).
#[test]
fn python_sdk_uploads_and_downloads_a_file() {
    let standin = Standin::start();
    let base = standin.add_base(Base::default());
    let dir = tempfile::tempdir().unwrap();
    let script = r#"
import os, sys
from seatable_api import Base
base = Base(os.environ["API_TOKEN"], os.environ["SERVER_URL"])
base.auth()
content = bytes(range(256)) * 300
info = base.upload_bytes_file("notes.bin", content)
assert info["size"] == len(content), info
out = os.path.join(os.environ["OUT_DIR"], "back.bin")
base.download_file(info["url"], out)
print(info["name"], open(out, "rb").read() == content)
"#;
    let out = sdk::script(
        sdk::Lang::Python,
        script,
        &[
            ("API_TOKEN", &base.api_token),
            ("SERVER_URL", &standin.url),
            ("OUT_DIR", dir.path().to_str().unwrap()),
        ],
    )
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "notes.bin True"
    );
    let month = &seatable_standin::iso(now())[..7];
    let stored = standin
        .file(&base.dtable_uuid, &format!("files/{month}/notes.bin"))
        .expect("the stand-in stored the upload");
    assert_eq!(stored.len(), 256 * 300);
}

// ---------------------------------------------------------------------------
// team_admin_account_operations.yaml

fn team_url(standin: &Standin, org: i64, rest: &str) -> String {
    format!("{}/api/v2.1/org/{org}/admin/{rest}", standin.url)
}

/// listApiTokensOfAllBases → `api_tokens` (app_name, api_token,
/// generated_by, creator, avatar_url, generated_at, last_access,
/// permission, dtable_uuid, dtable_name, dtable_icon, dtable_color) and
/// `total_count`, paged by `page` (from 1) and `per_page` (default 25, no
/// largest size in the spec); listBases → `dtable_list` (id, workspace_id,
/// uuid, name, …) and `count`; listApiTokens of one base; deleteApiToken →
/// `{"success": true}`; a member who is no team admin 403 `{"detail": "You
/// do not have permission to perform this action."}`.
#[test]
fn team_admin_lists_and_deletes() {
    let standin = Standin::start();
    let seeded = standin.seed_team(&TeamSeed {
        org_id: 3,
        bases: 7,
        tokens: 60,
        workspaces: 3,
        ..TeamSeed::default()
    });
    // A base outside the team is not the admin's.
    standin.add_base(Base::default());
    let admin = format!(
        "Token {}",
        standin.add_team_account("admin@team.local", "pw", 3, true)
    );
    let member = format!(
        "Token {}",
        standin.add_team_account("alice@team.local", "pw", 3, false)
    );
    let other = format!(
        "Token {}",
        standin.add_team_account("admin@other.local", "pw", 9, true)
    );

    let a = get(team_url(&standin, 3, "api-tokens/"), Some(&admin));
    assert_eq!(a.status, 200);
    exactly(&a.body, &[("api_tokens", T::Arr), ("total_count", T::Int)]);
    assert_eq!(a.body["total_count"], 60);
    assert_eq!(
        a.body["api_tokens"].as_array().unwrap().len(),
        25,
        "default page"
    );
    exactly(
        &a.body["api_tokens"][0],
        &[
            ("app_name", T::Str),
            ("api_token", T::Str),
            ("generated_by", T::Str),
            ("creator", T::Str),
            ("avatar_url", T::Str),
            ("generated_at", T::DateTime),
            ("last_access", T::DateTime),
            ("permission", T::Str),
            ("dtable_uuid", T::Uuid),
            ("dtable_name", T::Str),
            ("dtable_icon", T::Str),
            ("dtable_color", T::Str),
        ],
    );
    // Paging: every token once, whatever the page size.
    let mut seen = Vec::new();
    for page in 1..=3 {
        let a = get(
            format!(
                "{}?page={page}&per_page=25",
                team_url(&standin, 3, "api-tokens/")
            ),
            Some(&admin),
        );
        for t in a.body["api_tokens"].as_array().unwrap() {
            seen.push(t["api_token"].as_str().unwrap().to_string());
        }
    }
    let a = get(
        format!(
            "{}?page=1&per_page=1000",
            team_url(&standin, 3, "api-tokens/")
        ),
        Some(&admin),
    );
    assert_eq!(a.body["api_tokens"].as_array().unwrap().len(), 60);
    seen.sort();
    seen.dedup();
    let mut made: Vec<String> = seeded.tokens.iter().map(|t| t.api_token.clone()).collect();
    made.sort();
    assert_eq!(seen, made);
    // Made by several users, in several workspaces.
    let creators: std::collections::BTreeSet<_> = a.body["api_tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["generated_by"].as_str().unwrap().to_string())
        .collect();
    assert!(creators.len() >= 3, "{creators:?}");

    let a = get(
        format!("{}?per_page=5", team_url(&standin, 3, "dtables/")),
        Some(&admin),
    );
    assert_eq!(a.status, 200);
    exactly(&a.body, &[("dtable_list", T::Arr), ("count", T::Int)]);
    assert_eq!(a.body["count"], 7);
    assert_eq!(a.body["dtable_list"].as_array().unwrap().len(), 5);
    fields(
        &a.body["dtable_list"][0],
        &[
            ("id", T::Int),
            ("workspace_id", T::Int),
            ("uuid", T::Uuid),
            ("name", T::Str),
            ("created_at", T::DateTime),
            ("updated_at", T::DateTime),
            ("org_id", T::Int),
            ("email", T::Str),
            ("owner", T::Str),
        ],
    );
    let all = get(
        format!("{}?per_page=100", team_url(&standin, 3, "dtables/")),
        Some(&admin),
    );
    let workspaces: std::collections::BTreeSet<i64> = all.body["dtable_list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["workspace_id"].as_i64().unwrap())
        .collect();
    assert_eq!(workspaces.len(), 3);

    // One base's tokens, by either form of its UUID; then one deleted.
    let (uuid, _, _) = &seeded.bases[0];
    for form in [uuid.clone(), uuid.replace('-', "")] {
        let a = get(
            team_url(&standin, 3, &format!("dtables/{form}/api-tokens/")),
            Some(&admin),
        );
        assert_eq!(a.status, 200, "{form}");
        exactly(&a.body, &[("api_tokens", T::Arr)]);
        assert_eq!(
            a.body["api_tokens"].as_array().unwrap().len(),
            9,
            "60 over 7 bases"
        );
        fields(
            &a.body["api_tokens"][0],
            &[
                ("app_name", T::Str),
                ("api_token", T::Str),
                ("creator", T::Str),
            ],
        );
    }
    let victim = seeded.tokens[0].clone();
    assert_eq!(victim.dtable_uuid, *uuid);
    let delete = |auth: &str| {
        send(
            client()
                .delete(team_url(
                    &standin,
                    3,
                    &format!("dtables/{uuid}/api-tokens/{}/", victim.app_name),
                ))
                .header("Authorization", auth),
        )
    };
    let a = delete(&member);
    assert_eq!(a.status, 403);
    let a = delete(&admin);
    assert_eq!(a.status, 200);
    assert_eq!(a.body, json!({"success": true}));
    assert_eq!(exchange(&standin, "", &victim.api_token).status, 403);
    let a = delete(&admin);
    assert_eq!(a.status, 404);

    // Refused: a member who is no admin, the admin of another team, no one.
    let denied = json!({"detail": "You do not have permission to perform this action."});
    for auth in [&member, &other] {
        let a = get(team_url(&standin, 3, "api-tokens/"), Some(auth));
        assert_eq!(a.status, 403);
        assert_eq!(a.body, denied);
    }
    let a = get(team_url(&standin, 3, "api-tokens/"), None);
    assert_eq!(a.status, 403);
    assert_eq!(
        a.body,
        json!({"detail": "Authentication credentials were not provided."})
    );
}

/// Team-admin calls are throttled (a daily budget, 1000 by default on
/// self-hosted servers): past it 429 with `Retry-After` until the window
/// ends; a server may clip `per_page`.
#[test]
fn team_admin_budget_and_page_size() {
    let standin = Standin::start();
    standin.seed_team(&TeamSeed {
        org_id: 5,
        bases: 2,
        tokens: 30,
        ..TeamSeed::default()
    });
    let admin = format!(
        "Token {}",
        standin.add_team_account("root@team.local", "pw", 5, true)
    );
    standin.set_team_budget(TeamBudget {
        limit: Some(2),
        window_secs: Some(2),
        max_per_page: Some(10),
    });
    let url = format!("{}?per_page=1000", team_url(&standin, 5, "api-tokens/"));
    for _ in 0..2 {
        let a = get(url.clone(), Some(&admin));
        assert_eq!(a.status, 200);
        assert_eq!(
            a.body["api_tokens"].as_array().unwrap().len(),
            10,
            "clipped"
        );
        assert_eq!(a.body["total_count"], 30);
    }
    let a = get(url.clone(), Some(&admin));
    assert_eq!(a.status, 429);
    let wait: u64 = a.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&wait), "{wait}");
    assert_eq!(
        a.body["detail"],
        format!("Request was throttled. Expected available in {wait} seconds.")
    );
    std::thread::sleep(Duration::from_secs(wait));
    assert_eq!(get(url, Some(&admin)).status, 200, "a new window");
    assert_eq!(standin.team_requests(), (4, 1));
}

/// A big team is made in one call (benchmarks and audit tests): 500
/// bases, 5,000 tokens, through the in-process API and the HTTP control
/// interface alike.
#[test]
fn a_big_team_is_seeded_at_once() {
    let standin = Standin::start();
    let seed = TeamSeed {
        org_id: 8,
        bases: 500,
        tokens: 5_000,
        workspaces: 20,
        ..TeamSeed::default()
    };
    let seeded = standin.seed_team(&seed);
    assert_eq!((seeded.bases.len(), seeded.tokens.len()), (500, 5_000));
    let over_http = send(
        client()
            .post(format!("{}/_standin/team", standin.url))
            .json(&json!({"org_id": 9, "bases": 500, "tokens": 5000})),
    );
    assert_eq!(over_http.status, 200);
    assert_eq!(over_http.body["tokens"].as_array().unwrap().len(), 5_000);
    let admin = send(
        client()
            .post(format!("{}/_standin/accounts", standin.url))
            .json(
                &json!({"email": "a@t.local", "password": "pw", "org_id": 9, "is_org_staff": true}),
            ),
    );
    let auth = format!("Token {}", admin.body["token"].as_str().unwrap());
    let a = get(
        format!("{}?per_page=1", team_url(&standin, 9, "api-tokens/")),
        Some(&auth),
    );
    assert_eq!(a.body["total_count"], 5_000);
    let a = get(
        format!("{}?per_page=1", team_url(&standin, 8, "dtables/")),
        Some(&auth),
    );
    assert_eq!(a.status, 403, "team 8 is not the admin's");
}

/// `GET /api2/ping/` is not in the spec files; seahub answers `"pong"`
/// without credentials, with its `Date` (what `doctor` reads the clock from).
#[test]
fn ping() {
    let standin = Standin::start();
    let a = get(format!("{}/api2/ping/", standin.url), None);
    assert_eq!(a.status, 200);
    assert_eq!(a.body, json!("pong"));
    assert!(a.headers.contains_key("date"));
}
