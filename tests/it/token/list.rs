//! `token list`: every token of the base, which one Vault holds — never a
//! value, in either format, at any verbosity.

use super::TokenCase;

#[test]
fn list_shows_the_tokens_and_which_one_vault_holds_never_a_value() {
    let t = TokenCase::new();
    let other = t.add_token("dashboard", "r");
    for verbosity in ["-q", "-v", "-vvvv"] {
        let out = t.run(&["token", "list", "-o", "json", verbosity]).ok();
        let doc = out.json();
        assert_eq!(doc["workspace_id"], 7);
        assert_eq!(doc["dtable_name"], "Demo base");
        let tokens = doc["api_tokens"].as_array().unwrap();
        assert_eq!(tokens.len(), 2, "{doc}");
        for token in tokens {
            let mut keys: Vec<&str> = token
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            keys.sort_unstable();
            assert_eq!(
                keys,
                [
                    "app_name",
                    "generated_at",
                    "generated_by",
                    "in_vault",
                    "last_access",
                    "permission"
                ]
            );
            let mine = token["app_name"] == "seatable-cred";
            assert_eq!(token["in_vault"], mine, "{token}");
            assert_eq!(token["permission"], if mine { "rw" } else { "r" });
            assert!(token["generated_at"].as_str().unwrap().ends_with("+00:00"));
        }

        let out = t.run(&["token", "list", verbosity]).ok();
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(lines.len(), 4, "{}", out.stdout);
        assert!(lines[0].contains("'Demo base' (workspace 7): 2 API token(s)"));
        assert!(lines[1].starts_with("APP NAME") && lines[1].ends_with("IN VAULT"));
        let row = |app: &str| {
            lines
                .iter()
                .find(|l| l.starts_with(app))
                .unwrap()
                .to_string()
        };
        assert!(row("seatable-cred").ends_with("yes"), "{}", out.stdout);
        assert!(row("dashboard").ends_with("no"), "{}", out.stdout);
        // The values went nowhere (TokenCase::run checks every token ever issued).
        assert!(!out.stdout.contains(&other.api_token));
        if verbosity == "-vvvv" {
            assert!(out.stderr.contains(": debug: "), "{}", out.stderr);
        }
    }
}

/// Issue 18, 4: `token list` cleaned app names but printed the permission
/// column as SeaTable sent it, escape sequences and all.
#[test]
fn escapes_in_listed_tokens_are_shown_escaped() {
    let t = TokenCase::new();
    t.add_token("dash\u{1b}[2Jboard", "r\u{1b}]0;PWNED\u{7}");
    let out = t.run(&["token", "list"]).ok();
    assert!(
        !out.stdout.contains(['\u{1b}', '\u{7}']),
        "raw escapes: {}",
        out.stdout
    );
    assert!(out.stdout.contains(r"r\x1b]0;PWNED\x07"), "{}", out.stdout);
    assert!(out.stdout.contains(r"dash\x1b[2Jboard"), "{}", out.stdout);
}
