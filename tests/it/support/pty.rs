//! The helper driven through a pseudo-terminal (`rexpect`), as a person
//! answers its questions: `init`'s, and the password and code prompts of
//! `get` and the `token` commands.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::{Duration, Instant};

use rexpect::session::PtySession;

use super::Case;

/// The helper on a pseudo-terminal of its own (stdin and stderr; stdout to
/// a file), echoing what is typed as a terminal does — so the transcript
/// holds everything a person would see.
pub struct Pty {
    pub session: PtySession,
    pub transcript: String,
}

impl Pty {
    pub fn spawn(case: &Case, args: &[&str], stdout: &Path) -> Pty {
        let mut cmd = case.command(args);
        cmd.stdout(std::fs::File::create(stdout).unwrap());
        // rexpect turns echo off; a person's terminal echoes.
        // SAFETY: tcgetattr/tcsetattr are async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                let mut t: libc::termios = std::mem::zeroed();
                if libc::tcgetattr(0, &mut t) == 0 {
                    t.c_lflag |= libc::ECHO;
                    libc::tcsetattr(0, libc::TCSANOW, &t);
                }
                Ok(())
            });
        }
        let session = rexpect::session::spawn_command(cmd, Some(60_000)).expect("spawn on a pty");
        Pty {
            session,
            transcript: String::new(),
        }
    }

    /// Waits for `text` on the terminal.
    #[track_caller]
    pub fn expect(&mut self, text: &str) {
        match self.session.exp_string(text) {
            Ok(before) => {
                self.transcript.push_str(&before);
                self.transcript.push_str(text);
            }
            Err(e) => panic!(
                "no {text:?} on the terminal ({e}); so far:\n{}",
                self.transcript
            ),
        }
    }

    /// Waits for the question `prompt` (up to its `: `) and types `line`.
    #[track_caller]
    pub fn answer(&mut self, prompt: &str, line: &str) {
        self.expect(prompt);
        self.expect(": ");
        self.session.send_line(line).unwrap();
    }

    /// Waits for a hidden question: its prompt, then echo off (rpassword
    /// prints the prompt first) — and types `secret`.
    #[track_caller]
    pub fn answer_hidden(&mut self, prompt: &str, secret: &str) {
        self.expect(prompt);
        let master = self.session.process().get_file_handle().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            // On a pty's master, the termios are the terminal's (the slave's).
            // SAFETY: a plain ioctl on a descriptor we own.
            let echo = unsafe {
                let mut t: libc::termios = std::mem::zeroed();
                assert_eq!(
                    libc::tcgetattr(std::os::fd::AsRawFd::as_raw_fd(&master), &mut t),
                    0
                );
                t.c_lflag & libc::ECHO != 0
            };
            if !echo {
                break;
            }
            assert!(Instant::now() < deadline, "echo never went off");
            std::thread::sleep(Duration::from_millis(10));
        }
        self.session.send_line(secret).unwrap();
    }

    /// The rest of the transcript and the exit code.
    pub fn finish(mut self) -> (i32, String) {
        let rest = self.session.exp_eof().expect("the helper ends");
        self.transcript.push_str(&rest);
        let code = match self.session.process().wait().unwrap() {
            nix::sys::wait::WaitStatus::Exited(_, code) => code,
            other => panic!("the helper did not exit: {other:?}\n{}", self.transcript),
        };
        (code, self.transcript)
    }
}
