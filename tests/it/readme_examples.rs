//! README's examples run as README prints them — the lines are read from
//! README.md, so that a change there is tested here.

use crate::support::{Case, HELPER};

/// The first line of README.md that starts with `start`.
fn readme_line(start: &str) -> &'static str {
    include_str!("../../README.md")
        .lines()
        .find(|l| l.starts_with(start))
        .unwrap_or_else(|| panic!("README.md has no line starting with {start:?}"))
}

#[test]
fn the_use_sections_header_pipe_into_curl_works_in_a_shell() {
    let case = Case::new();
    // The Use section: the environment first, then the header through curl.
    let script = [
        readme_line("eval \"$(seatable-cred get -o env)\""),
        readme_line("seatable-cred get -o header | curl -H @- "),
    ]
    .join("\n");
    assert!(script.contains("SEATABLE_API_GATEWAY_URL"), "{script}");
    // `seatable-cred` on PATH, as after `cargo install`.
    let bin = std::path::Path::new(HELPER).parent().unwrap();
    let path = format!("{}:{}", bin.display(), case.env["PATH"]);
    let mut sh = case.tool("sh");
    sh.arg("-euc").arg(&script).env("PATH", path);
    let out = crate::support::run_with_input(sh, "");
    case.assert_no_secrets(&out);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v: serde_json::Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("not the base's metadata ({e}): {}", out.stdout));
    assert_eq!(
        v["metadata"]["base_name"], case.base.dtable_name,
        "{}",
        out.stdout
    );
    assert_eq!(
        case.standin.exchanges(),
        1,
        "the second call was a cache hit"
    );
}
