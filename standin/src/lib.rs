//! Test peers for seatable-cred: the SeaTable stand-in of SPEC §5 and the
//! account and team-admin APIs of §12, answering as SeaTable's official API
//! spec (OpenAPI 6.2) says, with switches to older servers' forms; also the
//! bits of a Kubernetes API that kubectl and Vault's kubernetes auth need,
//! JWT signing and a throwaway PKI. Used in-process by the Rust tests and as
//! the `seatable-standin` binary by the demo, benchmarks and Python tests.
//! The endpoints, the switches and the control interface are described in
//! [`Standin`]'s module (`server.rs`).

mod account;
mod files;
pub mod jwt;
pub mod pki;
mod server;
mod team;

pub use account::{AccountStats, iso};
pub use server::{Base, Compat, Fault, Standin, Stats, hyphenated, random_hex, same_uuid};
pub use team::{TeamBudget, TeamSeed, TeamSeeded};
