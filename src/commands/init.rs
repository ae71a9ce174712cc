//! `init`: write a starter config (`config::Starter`) where the next run reads it, never over a
//! file that is there.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use serde::Serialize;

use crate::cli::{InitConfigArgs, OutputFormat};
use crate::commands::CommandError;
use crate::config::{Starter, LOCAL_CONFIG_FILE};
use crate::report::{self, Report, Text};

#[derive(Debug, Serialize)]
pub struct InitReport {
    /// The file written.
    pub path: String,
    pub name: String,
}

impl Report for InitReport {
    const COMMAND: &'static str = "init";

    fn render(&self, text: &mut Text) {
        text.line(format!("wrote {} (stack {}): every key, with its default and what it does", self.path, self.name));
        text.line("next: edit it, then `fargate-stack up --dry-run` to see the plan and `fargate-stack up`");
    }
}

/// Write the starter config to `config` (the `--config` path), else `./fargate-stack.toml`.
pub fn run(format: OutputFormat, config: Option<&Path>, args: &InitConfigArgs) -> Result<ExitCode, CommandError> {
    let path = config.unwrap_or(Path::new(LOCAL_CONFIG_FILE));
    let starter = Starter { name: args.name.as_deref(), image: args.image.as_deref(), domain: args.domain.as_deref() };
    let text = starter.render().map_err(CommandError::Usage)?;
    let shown = path.display();
    // create_new: a file that appears between a check and the write is not overwritten either.
    let mut file = match std::fs::OpenOptions::new().write(true).create_new(true).open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(CommandError::Refused(format!(
                "{shown} exists: not overwritten; move it away or pass --config with another path"
            )))
        }
        Err(e) => return Err(CommandError::Usage(format!("cannot write {shown}: {e}"))),
    };
    file.write_all(text.as_bytes()).map_err(|e| CommandError::Usage(format!("cannot write {shown}: {e}")))?;
    let name = crate::config::Config::parse(&shown.to_string(), &text)?.name;
    report::emit(format, &InitReport { path: shown.to_string(), name });
    Ok(ExitCode::SUCCESS)
}
