//! `unlock LOCK_ID`: remove the lock a run that died left on an S3 state, after saying who held it.
//! Only the lock with that ID is removed, conditionally on its ETag, so a lock taken in between by
//! another run is never removed by mistake.

use std::process::ExitCode;

use serde::Serialize;

use crate::cli::UnlockArgs;
use crate::commands::{CommandError, Setup};
use crate::report::{self, Report, Text};
use crate::state::s3::{self, LockInfo};
use crate::state::StateLocation;

#[derive(Debug, Serialize)]
pub struct UnlockReport {
    pub state: String,
    pub removed: bool,
    /// Who held the lock that was removed.
    pub lock: LockInfo,
}

impl Report for UnlockReport {
    const COMMAND: &'static str = "unlock";

    fn render(&self, text: &mut Text) {
        text.line(format!("removed lock {} on {}", self.lock.lock_id, self.state));
        text.line(format!("  it was held by: {}", self.lock.describe()));
        text.line("  the next run continues from the state as that run left it");
    }
}

pub async fn run(setup: &Setup, args: &UnlockArgs) -> Result<ExitCode, CommandError> {
    let StateLocation::S3 { bucket, key } = &setup.state else {
        return Err(CommandError::Usage(format!(
            "the state {} is a local file: its lock is an OS lock that ends with the run holding it, so there is \
             nothing to unlock (pass --state s3://... for a state in S3)",
            setup.location()
        )));
    };
    let lock = s3::unlock(&setup.bucket(bucket).await?, key, &args.lock_id).await?;
    report::emit(setup.format, &UnlockReport { state: setup.location(), removed: true, lock });
    Ok(ExitCode::SUCCESS)
}
