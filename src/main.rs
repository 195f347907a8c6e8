use std::process::ExitCode;

use clap::Parser;
use seatable_cred::{cli::Cli, error, log, process};

fn main() -> ExitCode {
    process::harden();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    log::init(log::level(
        cli.global.verbose,
        cli.global.quiet,
        std::env::var("SEATABLE_CRED_LOG").ok().as_deref(),
    ));
    match seatable_cred::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("seatable-cred: {}", error::one_line(&err));
            ExitCode::from(error::kind_of(&err).exit_code())
        }
    }
}

/// clap's help and version go out as clap prints them; its errors become
/// the one-line report of SPEC §8, exit 2.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        _ => {
            // clap's paragraphs up to the usage, folded into one line.
            let text = e.to_string();
            let said: Vec<String> = text
                .split("\n\n")
                .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
                .take_while(|p| !p.starts_with("Usage:") && !p.starts_with("For more information"))
                .filter(|p| !p.is_empty())
                .collect();
            let said = said.join("; ");
            let said = said.strip_prefix("error: ").unwrap_or(&said);
            eprintln!("seatable-cred: {said}; see 'seatable-cred --help'");
            ExitCode::from(2)
        }
    }
}
