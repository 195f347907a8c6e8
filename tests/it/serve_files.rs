//! `serve` and SeaTable's file endpoints, which take the API token itself
//! (`Authorization: Token …`): through the agent a client holds only the
//! local key, and the agent forwards those requests — those paths only —
//! with the profile's API token in its place. The upload and download go
//! to the links SeaTable answers, at SeaTable. Also scripts written for
//! SeaTable's own Python runner (`seatable_api.context`), run unchanged
//! with the agent's env file.

use serde_json::Value;

use crate::support::Case;
use crate::support::agent::Agent;
use crate::support::sdk::{self, Lang};

/// The file endpoints the agent forwards with the API token.
pub const FILE_PATHS: [&str; 7] = [
    "/api/v2.1/dtable/app-upload-link/",
    "/api/v2.1/dtable/app-download-link/",
    "/api/v2.1/dtable/custom/app-upload-link/",
    "/api/v2.1/dtable/custom/app-download-link/",
    "/api/v2.1/dtable/custom/app-asset-file/",
    "/api/v2.1/dtable/custom/app-asset-dir/",
    "/api/v2.1/dtable/app-user-info/",
];

/// Where the stand-in saw the API token: every request that carried it
/// went to the exchange or to one of [`FILE_PATHS`], by GET (DELETE only
/// for a custom folder's file, as the spec gives it).
pub fn api_token_went_only_where_it_may(case: &Case) {
    for seen in case.standin.api_token_requests() {
        let (method, target) = seen.split_once(' ').unwrap();
        let path = target.split('?').next().unwrap();
        let allowed = (method == "GET"
            && (path == "/api/v2.1/dtable/app-access-token/" || FILE_PATHS.contains(&path)))
            || (method == "DELETE" && path == "/api/v2.1/dtable/custom/app-asset-file/");
        assert!(allowed, "the API token went to {seen}");
    }
}

/// The requests at the file endpoints that carried the API token.
pub fn file_requests(case: &Case) -> Vec<String> {
    case.standin
        .api_token_requests()
        .into_iter()
        .filter(|r| !r.contains("/app-access-token/"))
        .collect()
}

const PYTHON_FILES: &str = r#"
import json, os
from seatable_api import Base
base = Base(os.environ["KEY"], os.environ["AGENT"])
base.auth()
out_dir = os.environ["OUT_DIR"]
content = bytes(range(256)) * 300
info = base.upload_bytes_file("notes.bin", content)
back = os.path.join(out_dir, "back.bin")
base.download_file(info["url"], back)
local = os.path.join(out_dir, "invoice.pdf")
with open(local, "wb") as f:
    f.write(b"%PDF invoice 42")
custom = base.upload_local_file_to_custom_folder(local, "/supplierOne")
listing = base.list_custom_assets("/supplierOne")
custom_back = os.path.join(out_dir, "invoice-back.pdf")
base.download_custom_file("/supplierOne/invoice.pdf", custom_back)
user = base.get_user_info(os.environ["USER_NAME"])
print(json.dumps({
    "name": info["name"], "size": info["size"], "url": info["url"],
    "same": open(back, "rb").read() == content,
    "custom": custom, "listing": listing,
    "custom_same": open(custom_back, "rb").read() == b"%PDF invoice 42",
    "user": user,
}))
"#;

/// The unmodified Python SDK, holding only the local key, uploads and
/// downloads through the agent — the base's files (`upload_bytes_file`,
/// `download_file`) and its custom folder — and reads a user's info. The
/// API token went only to the file endpoints (and the exchange), and
/// neither the client's output nor the agent's log at -vvvv holds it.
#[test]
fn python_sdk_uploads_and_downloads_through_the_agent() {
    let case = Case::new();
    // The Python SDK reads the custom folder's links flat, as servers
    // before the spec's `dirent` answer them.
    case.standin.set_compat(seatable_standin::Compat {
        custom_links_flat: true,
        ..Default::default()
    });
    let agent = Agent::start(&case, &[]);
    let out_dir = case.dir.path().join("sdk-out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let out = sdk::script(
        Lang::Python,
        PYTHON_FILES,
        &[
            ("KEY", &agent.key),
            ("AGENT", &agent.url),
            ("OUT_DIR", out_dir.to_str().unwrap()),
            ("USER_NAME", &case.base.generated_by),
        ],
    )
    .output()
    .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}{stderr}");
    let got: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(got["name"], "notes.bin", "{got}");
    assert_eq!(got["size"], 256 * 300, "{got}");
    assert_eq!(got["same"], true, "the bytes downloaded are those uploaded");
    assert!(
        got["url"].as_str().unwrap().starts_with(&agent.url),
        "{got}"
    );
    assert_eq!(got["custom"]["name"], "invoice.pdf", "{got}");
    assert_eq!(
        got["listing"],
        serde_json::json!({"dir": [], "file": [{"name": "invoice.pdf"}]})
    );
    assert_eq!(got["custom_same"], true, "{got}");
    assert_eq!(got["user"]["email"], case.base.generated_by.as_str());

    // SeaTable stored the bytes.
    let month = &seatable_standin::iso(crate::support::now())[..7];
    let stored = case
        .standin
        .file(&case.base.dtable_uuid, &format!("files/{month}/notes.bin"))
        .expect("the upload reached SeaTable");
    assert_eq!(stored.len(), 256 * 300);

    // The API token went to the file endpoints, with the SDK's queries.
    let files = file_requests(&case);
    for path in [
        "GET /api/v2.1/dtable/app-upload-link/",
        "GET /api/v2.1/dtable/app-download-link/?path=",
        "GET /api/v2.1/dtable/custom/app-upload-link/?path=",
        "GET /api/v2.1/dtable/custom/app-asset-file/?path=",
        "GET /api/v2.1/dtable/custom/app-asset-dir/?path=",
        "GET /api/v2.1/dtable/custom/app-download-link/?path=",
        "GET /api/v2.1/dtable/app-user-info/?username=",
    ] {
        assert!(
            files.iter().any(|r| r.starts_with(path)),
            "{path} not forwarded: {files:?}"
        );
    }
    api_token_went_only_where_it_may(&case);

    // Nobody but SeaTable saw the API token.
    let api_token = &case.base.api_token;
    assert!(!stdout.contains(api_token.as_str()) && !stderr.contains(api_token.as_str()));
    case.assert_no_secrets(&crate::support::Out {
        code: 0,
        stdout: String::new(),
        stderr: agent.stderr(),
    });
    assert!(agent.stderr().contains(": debug: "), "-vvvv said a lot");
}

/// A custom folder's file deleted through the agent (the spec's
/// deleteBaseCustomFolderAsset, `DELETE custom/app-asset-file/`), the
/// other methods the spec does not give these paths refused, and SeaTable's
/// own refusals (a 404) passed on as they are.
#[test]
fn a_custom_file_is_deleted_through_the_agent_and_other_methods_are_refused() {
    let case = Case::new();
    let agent = Agent::start(&case, &[]);
    let http = &agent.http;
    let url = |path: &str| format!("{}{path}", agent.url);
    let auth = format!("Token {}", agent.key);
    // A file in the custom folder, uploaded through the agent's link.
    let link: Value = http
        .get(url("/api/v2.1/dtable/custom/app-upload-link/"))
        .query(&[("path", "/drafts")])
        .header("Authorization", &auth)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let d = &link["dirent"];
    let form = reqwest::blocking::multipart::Form::new()
        .text("parent_dir", d["parent_path"].as_str().unwrap().to_string())
        .text(
            "relative_path",
            d["relative_path"].as_str().unwrap().to_string(),
        )
        .part(
            "file",
            reqwest::blocking::multipart::Part::bytes(b"draft".to_vec()).file_name("a.txt"),
        );
    let up = http
        .post(format!("{}?ret-json=1", d["upload_link"].as_str().unwrap()))
        .multipart(form)
        .send()
        .unwrap();
    assert_eq!(up.status(), 200);
    assert!(
        case.standin
            .file(&case.base.dtable_uuid, "custom/drafts/a.txt")
            .is_some()
    );

    let delete = || {
        let r = http
            .delete(url("/api/v2.1/dtable/custom/app-asset-file/"))
            .query(&[("path", "/drafts/a.txt")])
            .header("Authorization", &auth)
            .send()
            .unwrap();
        (r.status().as_u16(), r.text().unwrap())
    };
    assert_eq!(delete(), (200, r#"{"success":true}"#.to_string()));
    assert!(
        case.standin
            .file(&case.base.dtable_uuid, "custom/drafts/a.txt")
            .is_none()
    );
    // SeaTable's own 404, passed on.
    assert_eq!(
        delete(),
        (404, r#"{"error_msg":"File not found."}"#.to_string())
    );

    // Methods the spec does not give these paths stop at the agent.
    let before = file_requests(&case).len();
    for (method, path) in [
        ("POST", "/api/v2.1/dtable/app-upload-link/"),
        ("PUT", "/api/v2.1/dtable/app-download-link/"),
        ("DELETE", "/api/v2.1/dtable/app-upload-link/"),
        ("DELETE", "/api/v2.1/dtable/custom/app-asset-dir/"),
        ("PATCH", "/api/v2.1/dtable/custom/app-asset-file/"),
        ("TRACE", "/api/v2.1/dtable/app-user-info/"),
        ("OPTIONS", "/api/v2.1/dtable/custom/app-upload-link/"),
        ("HEAD", "/api/v2.1/dtable/app-upload-link/"),
    ] {
        let r = http
            .request(method.parse().unwrap(), url(path))
            .header("Authorization", &auth)
            .send()
            .unwrap();
        assert_eq!(r.status(), 405, "{method} {path}");
        assert!(r.headers().contains_key("allow"), "{method} {path}");
    }
    assert_eq!(
        file_requests(&case).len(),
        before,
        "{:?}",
        file_requests(&case)
    );
    api_token_went_only_where_it_may(&case);
}

/// Each profile's key opens its own base's files: the agent forwards the
/// API token of the profile whose key it was shown, never another's.
#[test]
fn each_key_forwards_its_own_profiles_api_token() {
    let mut case = Case::new();
    let shared = crate::support::shared();
    let other = case.standin.add_base(seatable_standin::Base::default());
    let other_path = format!("it/{}", seatable_standin::random_hex(6));
    shared.bao.kv2_put(
        "secret",
        &other_path,
        serde_json::json!({"api_token": other.api_token}),
    );
    let config = case.dir.path().join("profiles.toml");
    std::fs::write(
        &config,
        format!(
            "[profiles.crm]\nserver_url = \"{url}\"\nsecret = \"{}\"\n\n[profiles.billing]\nserver_url = \"{url}\"\nsecret = \"secret/{other_path}\"\n",
            case.secret,
            url = case.standin.url
        ),
    )
    .unwrap();
    case.unset("SEATABLE_SERVER_URL")
        .unset("SEATABLE_CRED_SECRET")
        .set("SEATABLE_CRED_CONFIG", config.display().to_string());
    let agent = Agent::start_profiles(&case, &["crm", "billing"], "crm");
    let parent_of = |key: &str| -> String {
        let r: Value = agent
            .http
            .get(format!("{}/api/v2.1/dtable/app-upload-link/", agent.url))
            .header("Authorization", format!("Token {key}"))
            .send()
            .unwrap()
            .json()
            .unwrap();
        r["parent_path"].as_str().unwrap().to_string()
    };
    assert_eq!(
        parent_of(&agent.key),
        format!("/asset/{}", case.base.dtable_uuid)
    );
    assert_eq!(
        parent_of(&agent.key_of("billing")),
        format!("/asset/{}", other.dtable_uuid)
    );
}

/// A script written for SeaTable's own Python runner reads the server and
/// the API token from `seatable_api.context` (`dtable_web_url`,
/// `api_token` in its environment). Run unchanged in a shell that loaded
/// the agent's env file — docs/serve.md's example, and more — it works through
/// the agent, holding the local key.
#[test]
fn a_script_for_seatables_runner_runs_unchanged_with_the_env_file() {
    let case = Case::new();
    let agent = Agent::start(&case, &[]);
    let env_text = std::fs::read_to_string(&agent.env_file).unwrap();
    assert!(
        env_text
            .lines()
            .any(|l| l == format!("dtable_web_url={}", agent.url)),
        "{env_text}"
    );
    assert!(
        env_text
            .lines()
            .any(|l| l == format!("api_token={}", agent.key)),
        "the key in the runner's name"
    );
    // docs/serve.md's example as the page prints it, then a little more.
    let page = include_str!("../../docs/serve.md");
    let start = page
        .find("from seatable_api import Base, context\n")
        .expect("docs/serve.md shows a script for SeaTable's runner");
    let example = &page[start..start + page[start..].find("```").unwrap()];
    let script = format!(
        r#"{example}
import json
base.append_row("Table1", {{"Name": "from the runner"}})
rows = base.list_rows("Table1")
info = base.upload_bytes_file("runner.txt", b"ran")
print(json.dumps({{"names": [r.get("Name") for r in rows], "file": info["name"]}}))
"#
    );
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg("set -a; . \"$1\"; set +a; exec \"$2\" -c \"$3\"")
        .arg("sh")
        .arg(&agent.env_file)
        .arg(sdk::python())
        .arg(&script)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Value = serde_json::from_str(&stdout).unwrap();
    assert!(
        got["names"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == "from the runner"),
        "{got}"
    );
    assert_eq!(got["file"], "runner.txt");
    let month = &seatable_standin::iso(crate::support::now())[..7];
    assert_eq!(
        case.standin
            .file(&case.base.dtable_uuid, &format!("files/{month}/report.csv"))
            .as_deref(),
        Some(&b"a,b\n1,2\n"[..]),
        "docs/serve.md's upload reached SeaTable"
    );
    let stored = case.standin.rows(&case.base.dtable_uuid, "Table1");
    assert!(stored.iter().any(|r| r["Name"] == "from the runner"));
    api_token_went_only_where_it_may(&case);
}
