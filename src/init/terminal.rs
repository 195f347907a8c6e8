//! The terminal `init` asks on: the controlling terminal, `/dev/tty`, so
//! that prompts never reach stdout (which carries the snippets) and a
//! redirected stderr does not hide them.
//!
//! Answers are read a line at a time in the terminal's own canonical mode:
//! the kernel echoes and edits the line (backspace, ^U, ^W) and there is no
//! terminal state to restore when the user presses ^C. A prompting crate
//! would put the terminal into raw mode to do the same by itself; for lines
//! of text that buys nothing. The one hidden answer, a userpass password
//! that a login check needs, is read by `rpassword` with echo off.

use std::fs::File;
use std::io::{BufRead, BufReader, IsTerminal, Read, Write};

use anyhow::Result;
use secrecy::SecretString;

use crate::error::Failure;

/// Longer lines are not answers to these questions.
const MAX_LINE: u64 = 4096;

pub struct Terminal {
    out: File,
    input: BufReader<File>,
}

/// What a line typed on the terminal turned out to be.
pub enum Typed {
    Text(String),
    /// Not an answer (too long, not text, control characters): why.
    Unreadable(&'static str),
}

impl Terminal {
    /// The controlling terminal, when the helper runs interactively (its
    /// stdin is a terminal); `None` in scripts, CI jobs and pipes — there
    /// nothing is asked.
    pub fn open() -> Option<Terminal> {
        if !std::io::stdin().is_terminal() {
            return None;
        }
        let tty = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/tty")
            .ok()?;
        let input = BufReader::new(tty.try_clone().ok()?);
        Some(Terminal { out: tty, input })
    }

    /// A line of output.
    pub fn say(&mut self, text: &str) {
        let _ = writeln!(self.out, "{text}");
        let _ = self.out.flush();
    }

    /// Shows `prompt` and reads one line, trimmed. End of input (^D) ends
    /// `init` without writing anything.
    pub fn line(&mut self, prompt: &str) -> Result<Typed> {
        let _ = write!(self.out, "{prompt}");
        let _ = self.out.flush();
        let mut bytes = Vec::new();
        let read = (&mut self.input)
            .take(MAX_LINE + 1)
            .read_until(b'\n', &mut bytes)
            .map_err(|e| Failure::usage(format!("cannot read from the terminal: {e}")))?;
        if read == 0 {
            return Err(cancelled());
        }
        if bytes.last() != Some(&b'\n') {
            // Too long: drop the rest of the line, so it is not read as the
            // next answer.
            let mut rest = Vec::new();
            let _ = self.input.read_until(b'\n', &mut rest);
            return Ok(Typed::Unreadable("that line is too long"));
        }
        let Ok(text) = String::from_utf8(bytes) else {
            return Ok(Typed::Unreadable("that is not text (UTF-8)"));
        };
        let text = text.trim();
        if text.chars().any(char::is_control) {
            // Arrow keys and the like arrive as escape sequences.
            return Ok(Typed::Unreadable(
                "that holds control characters (arrow keys do not work here: type the answer)",
            ));
        }
        Ok(Typed::Text(text.to_string()))
    }

    /// Reads a secret with echo off; it is never shown nor kept beyond
    /// the returned value.
    pub fn hidden(&mut self, prompt: &str) -> Result<SecretString> {
        let value = rpassword::prompt_password(prompt).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                cancelled()
            } else {
                Failure::usage(format!("cannot read from the terminal: {e}")).into()
            }
        })?;
        Ok(SecretString::from(value))
    }
}

fn cancelled() -> anyhow::Error {
    Failure::usage("init ended at the end of the terminal's input (^D): nothing was written").into()
}
