//! The ready-to-paste lines `init` prints for the tools that use the new
//! profile: kubectl (and every client-go tool), git, and Python's SeaTable
//! SDK through `plugins/python`. They name the profile (and a config file
//! other than the default), nothing else: every other setting is in it.

use std::fmt::Write as _;
use std::path::Path;

/// Whom the snippets are for.
pub struct Target<'a> {
    pub profile: &'a str,
    /// `Some` when the config file is not the default one.
    pub config: Option<&'a Path>,
    pub server_url: &'a str,
}

impl Target<'_> {
    /// The helper's arguments before the command: `--profile NAME`,
    /// `--config PATH` — only what differs from the defaults.
    fn selectors(&self) -> Vec<String> {
        let mut args = Vec::new();
        if self.profile != "default" {
            args.extend(["--profile".to_string(), self.profile.to_string()]);
        }
        if let Some(config) = self.config {
            args.extend(["--config".to_string(), config.display().to_string()]);
        }
        args
    }
}

/// All three snippets, each under a comment line saying where it goes.
pub fn render(t: &Target<'_>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}\n{}\n{}", kubeconfig(t), gitconfig(t), python(t));
    out.trim_end().to_string() + "\n"
}

/// A `users[]` entry of a kubeconfig.
pub fn kubeconfig(t: &Target<'_>) -> String {
    let mut args = vec!["get".to_string()];
    args.extend(t.selectors());
    // JSON strings are YAML double-quoted strings.
    let args: Vec<String> = args.iter().map(|a| json_string(a)).collect();
    let name = match t.profile {
        "default" => "seatable".to_string(),
        p => format!("seatable-{p}"),
    };
    format!(
        "# kubeconfig (~/.kube/config): kubectl and other client-go tools\n\
         users:\n\
         - name: {name}\n\
         \x20 user:\n\
         \x20   exec:\n\
         \x20     apiVersion: client.authentication.k8s.io/v1\n\
         \x20     command: seatable-cred\n\
         \x20     args: [{}]\n\
         \x20     interactiveMode: Never\n",
        args.join(", ")
    )
}

/// A `[credential "<server>"]` section of `~/.gitconfig`.
pub fn gitconfig(t: &Target<'_>) -> String {
    let mut command = vec!["!seatable-cred".to_string()];
    command.extend(t.selectors().iter().map(|a| shell_word(a)));
    command.push("git-credential".to_string());
    format!(
        "# ~/.gitconfig: git's credential helper, for this SeaTable server only\n\
         [credential \"{}\"]\n\
         \x20   helper = {}\n",
        git_escape(t.server_url),
        git_quoted(&command.join(" "))
    )
}

/// The Python lines, with `plugins/python` installed.
pub fn python(t: &Target<'_>) -> String {
    let mut out =
        String::from("# Python, with the seatable-api SDK (pip install ./plugins/python)\n");
    if let Some(config) = t.config {
        let _ = writeln!(
            out,
            "import os\nos.environ[\"SEATABLE_CRED_CONFIG\"] = {}",
            json_string(&config.display().to_string())
        );
    }
    let profile = match t.profile {
        "default" => String::new(),
        p => format!("profile={}", json_string(p)),
    };
    let _ = writeln!(
        out,
        "from seatable_cred import Base\nbase = Base({profile})\nbase.auth()\nprint(base.list_tables())"
    );
    out
}

/// A JSON string: also a YAML double-quoted string and a Python literal.
fn json_string(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

/// A word for the shell git runs `!` helpers with: plain when it is safe
/// as it is, else single-quoted.
fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:@%+".contains(c));
    if plain {
        word.to_string()
    } else {
        crate::protocol::env::quote(word)
    }
}

/// git-config's escapes inside a double-quoted value or subsection.
fn git_escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

fn git_quoted(text: &str) -> String {
    format!("\"{}\"", git_escape(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_profile_needs_no_selectors() {
        let t = Target {
            profile: "default",
            config: None,
            server_url: "https://cloud.seatable.io",
        };
        assert_eq!(
            render(&t),
            r#"# kubeconfig (~/.kube/config): kubectl and other client-go tools
users:
- name: seatable
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: seatable-cred
      args: ["get"]
      interactiveMode: Never

# ~/.gitconfig: git's credential helper, for this SeaTable server only
[credential "https://cloud.seatable.io"]
    helper = "!seatable-cred git-credential"

# Python, with the seatable-api SDK (pip install ./plugins/python)
from seatable_cred import Base
base = Base()
base.auth()
print(base.list_tables())
"#
        );
    }

    #[test]
    fn a_named_profile_in_another_file() {
        let t = Target {
            profile: "crm",
            config: Some(Path::new("/home/me/my \"cfg\"/it's.toml")),
            server_url: "https://seatable.example.com",
        };
        let k = kubeconfig(&t);
        assert!(
            k.contains(
                r#"args: ["get", "--profile", "crm", "--config", "/home/me/my \"cfg\"/it's.toml"]"#
            ),
            "{k}"
        );
        assert!(k.contains("- name: seatable-crm"), "{k}");
        let g = gitconfig(&t);
        assert!(
            g.contains(
                r#"helper = "!seatable-cred --profile crm --config '/home/me/my \"cfg\"/it'\\''s.toml' git-credential""#
            ),
            "{g}"
        );
        let p = python(&t);
        assert!(
            p.contains(
                "os.environ[\"SEATABLE_CRED_CONFIG\"] = \"/home/me/my \\\"cfg\\\"/it's.toml\""
            ) && p.contains("base = Base(profile=\"crm\")"),
            "{p}"
        );
    }
}
