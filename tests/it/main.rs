//! Integration tests: the helper binary against a real OpenBao dev server and
//! the SeaTable stand-in, on loopback only.

mod support;

mod attacks;
mod auth;
mod cache;
mod cache_auto;
mod cache_key;
mod completions;
mod contract;
mod doctor;
mod faults;
mod get;
mod hygiene;
mod init;
mod init_files;
mod kubectl;
mod messages;
mod process;
mod prompts;
mod readme_examples;
mod serve;
mod serve_files;
mod serve_sockets;
mod service_account;
mod shared;
mod shared_policy;
mod speed;
mod token;
mod tools;
mod vault_agent;
mod vault_index;
mod vault_tls;
