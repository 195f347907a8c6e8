//! Regression tests for attacks (SECURITY.md's threat model, issue 9): each
//! reproduces what an attacker did against an earlier version and asserts
//! that it no longer works.
//!
//! * `shared` — another team's Vault identity against the shared tier.
//! * `local` — another local user against the cache directory, its locks
//!   and the config file (run as throwaway users; needs root, as CI has).
//! * `input` — hostile servers and hostile input: tokens that are not
//!   JWTs, absurd expiries, URLs carrying credentials, git requests for
//!   other hosts, what `exec`'s child inherits.
//! * `agent` — other local users, and key holders, against `serve`'s
//!   port: floods, a squatted port, stolen keys, the sidecar's volume.
//! * `files` — key holders against the agent's file forwarding, which
//!   puts the real API token on a request: wrong keys, path tricks, logs.
//! * `network` — plain HTTP, a Vault that streams without end, redirects to
//!   another origin.

mod agent;
mod files;
mod input;
mod local;
mod network;
mod shared;
