//! `seatable-cred-mangen --date YYYY-MM-DD OUT_DIR`: writes one man page per
//! command and subcommand of `seatable-cred` (`seatable-cred.1`,
//! `seatable-cred-get.1`, `seatable-cred-token-create.1`, …) from the same
//! clap definitions `--help` prints, so the pages cannot drift from it.
//!
//! A binary of its own rather than a hidden subcommand: the pages cost the
//! shipped binary nothing — no code, no parsing on the cache-hit path of
//! `get`. `scripts/package.sh` runs it with the date of the commit, so the
//! pages are the same bytes on every build of that commit.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{CommandFactory, Parser};
use roff::{Roff, bold, roman};

#[derive(Parser)]
#[command(about = "Writes seatable-cred's man pages (section 1) from its clap definitions.")]
struct Args {
    /// The date in each page's title line (the commit's, for reproducible pages).
    #[arg(long, value_name = "YYYY-MM-DD")]
    date: String,
    /// Where the pages go (created when missing).
    out_dir: PathBuf,
}

fn main() -> Result<()> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.out_dir)
        .with_context(|| format!("cannot create {}", args.out_dir.display()))?;
    for page in pages(&args.date)? {
        let path = args.out_dir.join(&page.file);
        std::fs::write(&path, &page.text)
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("{}", path.display());
    }
    Ok(())
}

/// One rendered page and its file name.
struct Page {
    file: String,
    text: Vec<u8>,
}

/// Every page: the command itself, then each visible subcommand, depth first.
fn pages(date: &str) -> Result<Vec<Page>> {
    // Built as clap builds it to parse: global options copied into each
    // subcommand (so each page lists what that command accepts) and the
    // display names `seatable-cred-get`, `seatable-cred-token-create`.
    let mut cmd = seatable_cred::cli::Cli::command().disable_help_subcommand(true);
    cmd.build();
    let source = format!("seatable-cred {}", cmd.get_version().unwrap_or_default());
    let mut out = Vec::new();
    walk(&cmd, None, date, &source, &mut out)?;
    Ok(out)
}

fn walk(
    cmd: &clap::Command,
    parent: Option<&str>,
    date: &str,
    source: &str,
    out: &mut Vec<Page>,
) -> Result<()> {
    let name = page_name(cmd);
    let man = clap_mangen::Man::new(cmd.clone())
        .date(date)
        .source(source)
        .manual("seatable-cred manual");
    let mut text = Vec::new();
    man.render(&mut text)?;
    // Raw roff: the page's start already set up the apostrophe handling.
    text.extend(see_also(cmd, parent).to_roff().into_bytes());
    out.push(Page {
        file: man.get_filename(),
        text: ascii_where_groff_needs_it(&text),
    });
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        walk(sub, Some(&name), date, source, out)?;
    }
    Ok(())
}

/// The page with `…` (in `--fail-on FINDING,…`) spelled `...`: groff has
/// no glyph for it on a terminal without UTF-8 (`man -E ascii` warns and
/// drops it), while the other character beyond ASCII the pages hold, `—`,
/// has one (`--`).
fn ascii_where_groff_needs_it(text: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(text)
        .replace('\u{2026}', "...")
        .into_bytes()
}

fn page_name(cmd: &clap::Command) -> String {
    cmd.get_display_name().unwrap_or(cmd.get_name()).to_owned()
}

/// SEE ALSO: the page one level up, the pages one level down, and the
/// README installed with the package.
fn see_also(cmd: &clap::Command, parent: Option<&str>) -> Roff {
    let mut refs: Vec<String> = parent.map(str::to_owned).into_iter().collect();
    refs.extend(
        cmd.get_subcommands()
            .filter(|s| !s.is_hide_set())
            .map(page_name),
    );
    let mut inlines = Vec::new();
    for (i, name) in refs.iter().enumerate() {
        if i > 0 {
            inlines.push(roman(", "));
        }
        inlines.push(bold(name.as_str()));
        inlines.push(roman("(1)"));
    }
    let mut roff = Roff::new();
    roff.control("SH", ["SEE ALSO"]);
    if !inlines.is_empty() {
        roff.text(inlines);
    }
    roff.control("PP", []);
    roff.text([
        roman("The README, with examples for kubectl, git, Python and the agent: "),
        bold(README),
        roman(" (under /usr/local from the tarball)."),
    ]);
    roff
}

/// Where the Debian package puts the README; the tarball's tree is the
/// same under its prefix.
const README: &str = "/usr/share/doc/seatable-cred/README.md.gz";

#[cfg(test)]
mod tests {
    use super::*;

    fn page<'a>(pages: &'a [Page], file: &str) -> &'a str {
        let p = pages
            .iter()
            .find(|p| p.file == file)
            .unwrap_or_else(|| panic!("no page {file}"));
        std::str::from_utf8(&p.text).unwrap()
    }

    /// Nothing beyond ASCII that groff's ascii device cannot show: `—`
    /// only (`--` there). `man -E ascii` in package-test.sh checks the
    /// rendering; this names the page at once.
    #[test]
    fn only_characters_groff_can_show_in_ascii() {
        for page in pages("2026-01-02").unwrap() {
            let text = std::str::from_utf8(&page.text).unwrap();
            let beyond: Vec<char> = text
                .chars()
                .filter(|c| !c.is_ascii() && *c != '\u{2014}')
                .collect();
            assert!(beyond.is_empty(), "{}: {beyond:?}", page.file);
        }
        let audit = page(&pages("2026-01-02").unwrap(), "seatable-cred-token-audit.1").to_owned();
        assert!(audit.contains("<FINDING,...>"), "{audit}");
    }

    /// A page per command and subcommand, named as man looks them up.
    #[test]
    fn one_page_per_command() {
        let pages = pages("2026-01-02").unwrap();
        let mut files: Vec<&str> = pages.iter().map(|p| p.file.as_str()).collect();
        files.sort_unstable();
        assert_eq!(
            files,
            [
                "seatable-cred-completions.1",
                "seatable-cred-doctor.1",
                "seatable-cred-erase.1",
                "seatable-cred-exec.1",
                "seatable-cred-get.1",
                "seatable-cred-git-credential.1",
                "seatable-cred-init.1",
                "seatable-cred-serve.1",
                "seatable-cred-status.1",
                "seatable-cred-token-audit.1",
                "seatable-cred-token-create.1",
                "seatable-cred-token-list.1",
                "seatable-cred-token-prune.1",
                "seatable-cred-token-revoke.1",
                "seatable-cred-token-rotate.1",
                "seatable-cred-token.1",
                "seatable-cred.1",
            ]
        );
    }

    /// Each page has the date it was given and the version; a subcommand's
    /// page lists its own options and the global ones, each with its
    /// environment variable, and points up and down the tree.
    #[test]
    fn pages_carry_options_environment_and_links() {
        let pages = pages("2026-01-02").unwrap();
        let get = page(&pages, "seatable-cred-get.1");
        let cli = seatable_cred::cli::Cli::command();
        let version = cli.get_version().unwrap();
        let title = format!(
            ".TH seatable-cred-get 1 2026-01-02 \"seatable-cred {version}\" \"seatable-cred manual\""
        );
        assert!(get.lines().any(|l| l == title), "{get}");
        for needle in [
            r"\-\-refresh",
            r"\-\-vault\-addr",
            "VAULT_ADDR",
            "SEATABLE_CRED_CACHE",
        ] {
            assert!(get.contains(needle), "{needle} missing from the get page");
        }
        assert!(get.contains(".SH \"SEE ALSO\""), "{get}");
        assert_eq!(
            get.matches(".ds Aq").count(),
            2,
            "one apostrophe set-up: {get}"
        );
        assert!(get.contains("\\fBseatable\\-cred\\fR(1)"), "{get}");
        let token = page(&pages, "seatable-cred-token.1");
        assert!(token.contains("\\fBseatable\\-cred\\-token\\-rotate\\fR(1)"));
        assert!(page(&pages, "seatable-cred-serve.1").contains(r"\-\-listen"));
    }
}
