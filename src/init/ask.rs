//! Where each answer of `init` comes from. A flag answers its question
//! (nothing is asked); the environment's value, or the built-in default, is
//! proposed — taken as it is without a terminal or with `--yes`. Without a
//! terminal nothing is asked: a question nothing answers is a usage error
//! naming the flag. A check that fails sends the question back to the
//! terminal with the reason — or, without one, ends `init` with the check's
//! own error.

use anyhow::Result;
use secrecy::SecretString;

use super::terminal::{Terminal, Typed};
use crate::checks::{Mark, format_line};
use crate::error::Failure;

/// One question.
pub struct Question {
    /// What is asked, e.g. "SeaTable server URL".
    pub prompt: String,
    /// The value a flag gave: the answer, unless its check fails.
    pub given: Option<(String, String)>,
    /// A proposed value and where it comes from (`VAULT_ADDR`, "default").
    pub proposed: Option<(String, String)>,
    /// An example shown when nothing is proposed.
    pub example: Option<&'static str>,
    /// `Some`: an empty answer is fine, and means this.
    pub empty_means: Option<String>,
    /// How to give the answer without a terminal: "--server-url or SEATABLE_SERVER_URL".
    pub set_with: String,
    /// How an answer is shown: addresses without what may be credentials
    /// ([`crate::address::redact_url`]), which are refused only after.
    shown: fn(&str) -> String,
}

impl Question {
    pub fn new(prompt: impl Into<String>, set_with: impl Into<String>) -> Question {
        Question {
            prompt: prompt.into(),
            given: None,
            proposed: None,
            example: None,
            empty_means: None,
            set_with: set_with.into(),
            shown: str::to_string,
        }
    }

    /// The answer is a secret's MOUNT/PATH: anything else (an API token
    /// pasted at the wrong prompt) is not shown.
    pub fn secret_path(mut self) -> Question {
        self.shown = |value| match crate::config::SecretRef::parse(value) {
            Some(_) => value.to_string(),
            None => "(not MOUNT/PATH, not shown)".to_string(),
        };
        self
    }

    /// The answer is an address: shown without user, password or query.
    pub fn url(mut self) -> Question {
        self.shown = crate::address::redact_url;
        self
    }

    /// The answer a flag gave (`from`: the flag's name).
    pub fn given(mut self, value: Option<String>, from: &str) -> Question {
        self.given = value.map(|v| (v, from.to_string()));
        self
    }

    pub fn proposed(mut self, value: Option<String>, from: &str) -> Question {
        if self.proposed.is_none() {
            self.proposed = value.map(|v| (v, from.to_string()));
        }
        self
    }

    pub fn example(mut self, example: &'static str) -> Question {
        self.example = Some(example);
        self
    }

    pub fn optional(mut self, empty_means: impl Into<String>) -> Question {
        self.empty_means = Some(empty_means.into());
        self
    }
}

/// An answer, and where it came from: the flag or variable that gave it,
/// or the question it was typed for — what a message about it names.
pub struct Answer {
    pub value: String,
    pub from: String,
}

impl Answer {
    pub fn origin(&self) -> crate::config::Origin {
        crate::config::Origin::Flag(self.from.clone())
    }
}

/// Whether a question is asked for the first time, or again after its
/// check failed (with the answer that failed, proposed again).
#[derive(Clone, Copy)]
pub enum Round<'a> {
    First,
    Again(Option<&'a str>),
}

pub struct Asker {
    terminal: Option<Terminal>,
    /// `--yes`: proposals are taken without asking.
    yes: bool,
}

impl Asker {
    pub fn new(terminal: Option<Terminal>, yes: bool) -> Asker {
        Asker { terminal, yes }
    }

    pub fn interactive(&self) -> bool {
        self.terminal.is_some()
    }

    /// A line for the user: on the terminal, else a diagnostic at `-v`.
    pub fn say(&mut self, text: &str) {
        match &mut self.terminal {
            Some(t) => t.say(text),
            None => tracing::info!("{text}"),
        }
    }

    /// Lines for the terminal only: how to answer.
    pub fn tell(&mut self, text: &str) {
        if let Some(t) = &mut self.terminal {
            t.say(text);
        }
    }

    /// A passed check, in `doctor`'s words.
    pub fn passed(&mut self, step: &str, text: &str) {
        self.say(&format_line(Mark::Ok, step, text));
    }

    /// A failed check: shown, so the question can be asked again — or,
    /// without a terminal to ask on, the error that ends `init`.
    pub fn failed(&mut self, step: &str, err: anyhow::Error) -> Result<()> {
        if !self.interactive() {
            return Err(err);
        }
        let text = crate::error::one_line(&err);
        self.say(&format_line(Mark::Fail, step, &text));
        Ok(())
    }

    /// The answer to `q`; `None` only when an empty answer is allowed.
    pub fn answer(&mut self, q: &Question, round: Round<'_>) -> Result<Option<Answer>> {
        let typed = |value: String| Answer {
            value,
            from: q.prompt.clone(),
        };
        let mut default = q.proposed.as_ref().map(|(v, _)| v.clone());
        match round {
            Round::First => {
                if let Some((value, from)) = &q.given {
                    self.say(&format!("{}: {} (from {from})", q.prompt, (q.shown)(value)));
                    return Ok(Some(Answer {
                        value: value.clone(),
                        from: from.clone(),
                    }));
                }
                if let Some((value, from)) = &q.proposed
                    && (self.yes || !self.interactive())
                {
                    self.say(&format!("{}: {} ({from})", q.prompt, (q.shown)(value)));
                    return Ok(Some(Answer {
                        value: value.clone(),
                        from: from.clone(),
                    }));
                }
            }
            Round::Again(previous) => {
                if previous.is_some() {
                    default = previous.map(str::to_string);
                }
            }
        }
        let Some(terminal) = &mut self.terminal else {
            return match (&q.empty_means, round) {
                (Some(_), Round::First) => Ok(None),
                _ => Err(Failure::usage(format!(
                    "init has no answer for '{}': set {} (there is no terminal to ask on)",
                    q.prompt, q.set_with
                ))
                .into()),
            };
        };
        let mut prompt = q.prompt.clone();
        match (&default, q.example) {
            (Some(d), _) => prompt.push_str(&format!(" [{}]", (q.shown)(d))),
            (None, Some(e)) => prompt.push_str(&format!(" (e.g. {e})")),
            (None, None) => {}
        }
        if let Some(means) = &q.empty_means
            && default.is_none()
        {
            prompt.push_str(&format!(" (empty: {means})"));
        }
        prompt.push_str(": ");
        loop {
            match terminal.line(&prompt)? {
                Typed::Text(text) if !text.is_empty() => return Ok(Some(typed(text))),
                Typed::Text(_) => match (&default, &q.empty_means) {
                    (Some(d), _) => return Ok(Some(typed(d.clone()))),
                    (None, Some(_)) => return Ok(None),
                    (None, None) => terminal.say("  an answer is needed here"),
                },
                Typed::Unreadable(why) => terminal.say(&format!("  {why}: type it again")),
            }
        }
    }

    /// A secret a check needs (a userpass password): from the terminal,
    /// never echoed, never written anywhere.
    pub fn hidden(&mut self, prompt: &str, set_with: &str) -> Result<SecretString> {
        match &mut self.terminal {
            Some(t) => t.hidden(prompt),
            None => Err(Failure::usage(format!(
                "init needs {set_with} to check the login (there is no terminal to ask on); it is never written"
            ))
            .into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_terminal(yes: bool) -> Asker {
        Asker::new(None, yes)
    }

    fn q() -> Question {
        Question::new("Vault address", "--vault-addr, VAULT_ADDR or BAO_ADDR")
    }

    /// Without a terminal: a flag answers, else the proposal, else an
    /// optional question stays empty, else the flag is named.
    #[test]
    fn without_a_terminal_nothing_is_asked() {
        let mut a = no_terminal(false);
        let given = q()
            .given(Some("https://flag".into()), "--vault-addr")
            .proposed(Some("https://env".into()), "VAULT_ADDR");
        let answer = a.answer(&given, Round::First).unwrap().unwrap();
        assert_eq!(
            (answer.value.as_str(), answer.from.as_str()),
            ("https://flag", "--vault-addr")
        );
        let proposed = q().proposed(Some("https://env".into()), "VAULT_ADDR");
        let answer = a.answer(&proposed, Round::First).unwrap().unwrap();
        assert_eq!(
            (answer.value.as_str(), answer.from.as_str()),
            ("https://env", "VAULT_ADDR")
        );
        assert!(
            a.answer(&q().optional("none"), Round::First)
                .unwrap()
                .is_none()
        );
        let err = a.answer(&q(), Round::First).err().unwrap();
        assert_eq!(crate::error::kind_of(&err), crate::error::Kind::Usage);
        assert_eq!(
            crate::error::one_line(&err),
            "init has no answer for 'Vault address': set --vault-addr, VAULT_ADDR or BAO_ADDR (there is no terminal to ask on)"
        );
        // A failed check is the error that ends init; a hidden answer cannot be had.
        let failed = a
            .failed("vault", Failure::vault("denied").into())
            .unwrap_err();
        assert_eq!(crate::error::one_line(&failed), "denied");
        let hidden = a
            .hidden("Password: ", "the password in SEATABLE_CRED_PASSWORD")
            .err()
            .unwrap();
        assert!(crate::error::one_line(&hidden).contains("SEATABLE_CRED_PASSWORD"));
    }

    /// The first proposal wins: the environment's over the built-in default.
    #[test]
    fn the_environment_is_proposed_before_the_default() {
        let q = q()
            .proposed(None, "VAULT_ADDR")
            .proposed(Some("https://bao".into()), "BAO_ADDR")
            .proposed(Some("https://default".into()), "default");
        let answer = no_terminal(true).answer(&q, Round::First).unwrap().unwrap();
        assert_eq!(answer.value, "https://bao");
    }
}
