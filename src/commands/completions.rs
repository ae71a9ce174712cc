//! `completions SHELL`: the shell completion script, generated from the command line's own
//! definition (clap_complete), so it always knows every subcommand and flag.

use std::process::ExitCode;

use clap::CommandFactory;
use serde::Serialize;

use crate::cli::{Cli, CompletionsArgs, OutputFormat};
use crate::commands::CommandError;
use crate::report::{self, Report, Text};

#[derive(Debug, Serialize)]
pub struct CompletionsReport {
    pub shell: String,
    pub script: String,
}

impl Report for CompletionsReport {
    const COMMAND: &'static str = "completions";

    fn render(&self, text: &mut Text) {
        for line in self.script.lines() {
            text.line(line);
        }
    }
}

/// The completion script for `shell`.
pub fn script(shell: clap_complete::Shell) -> String {
    let mut command = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command, "fargate-stack", &mut out);
    String::from_utf8(out).expect("completion scripts are UTF-8")
}

pub fn run(format: OutputFormat, args: &CompletionsArgs) -> Result<ExitCode, CommandError> {
    let report = CompletionsReport { shell: args.shell.to_string(), script: script(args.shell) };
    report::emit(format, &report);
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shell_gets_a_script_that_knows_the_subcommands() {
        for shell in [clap_complete::Shell::Bash, clap_complete::Shell::Zsh, clap_complete::Shell::Fish] {
            let script = script(shell);
            // Flags as each shell spells them (fish: `-l follow`).
            for word in ["deploy", "rollback", "logs", "follow", "image", "events", "since"] {
                assert!(script.contains(word), "{shell}: no {word}");
            }
        }
    }
}
