//! `doctor`: checks each step a `get` depends on, one line each, and says
//! what to fix (the checks live in [`crate::checks`]). Never prints a
//! secret. Exits with the code of the first failed step (SPEC §8), 0 when
//! all pass.

use anyhow::Result;

use crate::config::GlobalArgs;

pub fn run(global: &GlobalArgs) -> Result<u8> {
    let report = crate::checks::run(global);
    crate::process::print(&report.out)?;
    Ok(report.exit_code())
}
