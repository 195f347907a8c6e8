//! `completions SHELL`: completion scripts generated from the CLI definition.

use crate::cli::CompletionsArgs;
use anyhow::Result;

const BIN: &str = "seatable-cred";

pub fn run(args: &CompletionsArgs) -> Result<u8> {
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut crate::cli::command(), BIN, &mut out);
    let mut script = String::from_utf8_lossy(&out).into_owned();
    if args.shell == clap_complete::Shell::Bash {
        script = bash_states_as_the_loop_names_them(&script, BIN);
    }
    crate::process::print(&script)?;
    Ok(0)
}

/// clap_complete's bash script (4.6.12 and before, clap-rs/clap#6421)
/// names the state of `seatable-cred get` one way where it walks the words
/// (`seatable__cred__subcmd__get`: the binary's `-` as `__`) and another in
/// the case arms that complete it (`seatable__subcmd__cred__subcmd__get`:
/// every `-` of the path as `__subcmd__`), so no arm ever matched and only
/// the first word completed. The arms are renamed as the loop names them;
/// once clap_complete agrees with itself there is nothing to rename.
fn bash_states_as_the_loop_names_them(script: &str, bin: &str) -> String {
    const SEP: &str = "__subcmd__";
    let arms = format!("{}{SEP}", bin.replace('-', SEP));
    let walked = format!("{}{SEP}", bin.replace('-', "__"));
    script.replace(&arms, &walked)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every state the loop over the words can reach (`cmd="…"`) has the
    /// arm that completes it (`…)`), and no arm is left unreachable.
    #[test]
    fn every_state_the_bash_script_reaches_has_its_arm() {
        let mut out = Vec::new();
        clap_complete::generate(
            clap_complete::Shell::Bash,
            &mut crate::cli::command(),
            BIN,
            &mut out,
        );
        let script = bash_states_as_the_loop_names_them(&String::from_utf8(out).unwrap(), BIN);
        let states: std::collections::BTreeSet<&str> = script
            .lines()
            .filter_map(|l| l.trim().strip_prefix("cmd=\""))
            .filter_map(|l| l.strip_suffix('"'))
            .filter(|state| !state.is_empty())
            .collect();
        let arms: std::collections::BTreeSet<&str> = script
            .lines()
            .filter_map(|l| l.strip_prefix("        ")?.strip_suffix(')'))
            .filter(|l| !l.contains(['"', ' ', '*']))
            .collect();
        assert!(states.contains("seatable__cred__subcmd__get"), "{states:?}");
        assert!(
            states.contains("seatable__cred__subcmd__token__subcmd__audit"),
            "{states:?}"
        );
        assert_eq!(states, arms);
    }
}
