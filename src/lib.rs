//! seatable-cred: a credential helper that reads a SeaTable API token from
//! Vault/OpenBao, trades it for a short-lived base token, caches that in
//! memory-backed storage and prints it in the protocol the caller speaks.
//!
//! The flow of SPEC §2, one module per box:
//! [`cli`] → [`config`] (profile) → [`broker`] ([`cache`], [`vault`],
//! [`seatable`]) → [`protocol`]. Beside it, [`lifecycle`]: the API tokens
//! themselves, minted into Vault, rotated and revoked (SPEC §12); [`init`]:
//! a working profile written after each answer was checked with [`checks`];
//! [`serve`]: the local agent (SPEC §13). [`commands`] is the top floor:
//! nothing here imports it. ARCHITECTURE.md draws the rooms and which way
//! the arrows between them run.

pub mod address;
pub mod broker;
pub mod cache;
pub mod checks;
pub mod cli;
pub mod commands;
pub mod config;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod init;
pub mod json;
pub mod lifecycle;
pub mod log;
pub mod process;
pub mod protocol;
pub mod retry;
pub mod seatable;
pub mod serve;
pub mod shown;
pub mod time;

pub mod vault;

pub use commands::run;
