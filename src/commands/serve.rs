//! `serve`: the local agent of SPEC §13 (it lives in [`crate::serve`]).

use anyhow::Result;

use crate::cli::ServeArgs;
use crate::config::GlobalArgs;

pub fn run(global: &GlobalArgs, args: &ServeArgs) -> Result<u8> {
    crate::serve::run(global, args)
}
