//! Test peers for seatable-cred: the SeaTable stand-in of SPEC §5 and the
//! account API of §12 (also the bits of a Kubernetes API that kubectl and
//! Vault's kubernetes auth need), JWT signing and a throwaway PKI. Used
//! in-process by the Rust tests and as the `seatable-standin` binary by the
//! demo, benchmarks and Python tests.

mod account;
pub mod jwt;
pub mod pki;
mod server;

pub use account::{AccountStats, iso};
pub use server::{Base, Fault, Standin, Stats, random_hex};
