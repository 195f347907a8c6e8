//! `init`: write a working profile (it lives in [`crate::init`]).

use anyhow::Result;

use crate::cli::InitArgs;
use crate::config::GlobalArgs;

pub fn run(global: &GlobalArgs, args: &InitArgs) -> Result<u8> {
    crate::init::run(global, args)
}
