//! `platform env list|use|current`: the environments of the repository and the one commands act
//! on without `--env` (see `crate::envs`).

use anyhow::Result;

use super::{to_data, Ctx, InputError, Output};
use crate::envs::{self, Chosen, EnvError};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Which environment a command acts on, first found: --env / PLATFORM_ENV; the repository's current \
environment (`platform env use NAME` records it in the repository's git config, key platform.env: \
local, never committed, like kubectl's current context); the only environment under environments/; \
ai-dev when it exists. Otherwise the command refuses and lists the environments. Every command \
prints the one it acts on (`environment: prod (the only one)`) on stderr.

Examples:
  platform env list
      the environments, * marks the one commands act on
  platform env use prod
      commands without --env act on prod in this repository
  platform env current
      prints prod (and why, on stderr)")]
pub struct Args {
    #[command(subcommand)]
    pub command: EnvCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum EnvCommand {
    /// List the environments (folders under environments/ with a config.yaml); `*` marks the one
    /// commands act on.
    List,
    /// Make NAME this repository's current environment (git config platform.env, never committed).
    Use {
        /// An environment under environments/.
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// Print the environment commands act on, and why (on stderr).
    Current,
}

#[derive(serde::Serialize)]
struct Listed<'a> {
    name: &'a str,
    current: bool,
}

#[derive(serde::Serialize)]
struct Current<'a> {
    name: &'a str,
    source: envs::Source,
}

/// `chosen`: how the invocation resolved its environment (an error when it could not).
pub fn run(ctx: &Ctx, args: Args, chosen: Result<Chosen, InputError>) -> Result<()> {
    match args.command {
        EnvCommand::List => {
            let all = envs::list(&ctx.repo);
            let current = chosen.as_ref().ok().map(|c| c.name.as_str());
            if ctx.output != Output::Table {
                let rows: Vec<Listed> = all
                    .iter()
                    .map(|n| Listed {
                        name: n,
                        current: Some(n.as_str()) == current,
                    })
                    .collect();
                ctx.printer.data(&to_data(ctx.output, &rows)?);
            } else {
                let mut out = String::new();
                for n in &all {
                    match &chosen {
                        Ok(c) if c.name == *n => out.push_str(&format!("* {n}  ({})\n", c.why())),
                        _ => out.push_str(&format!("  {n}\n")),
                    }
                }
                ctx.printer.data(&out);
            }
            match chosen {
                Err(e) if !all.is_empty() => ctx.printer.info(format!("note: {}", e.0)),
                Ok(c) if !all.contains(&c.name) => {
                    ctx.printer
                        .info(format!("note: {} ({}) is not among them", c.name, c.why()))
                }
                _ => {}
            }
            if all.is_empty() {
                return Err(InputError(
                    EnvError::NoEnvironment {
                        repo: ctx.repo.clone(),
                    }
                    .to_string(),
                )
                .into());
            }
            Ok(())
        }
        EnvCommand::Use { name } => {
            let path = envs::use_env(&ctx.repo, &name).map_err(|e| InputError(e.to_string()))?;
            ctx.printer.success(format!(
                "commands without --env now act on environment {name} ({} = {name} in {})",
                envs::CURRENT_KEY,
                path.display()
            ));
            if let Ok(c) = chosen {
                if c.name != name && c.source == envs::Source::Variable {
                    ctx.printer.info(format!(
                        "note: PLATFORM_ENV={} still wins in this shell (unset it to use {name})",
                        c.name
                    ));
                }
            }
            Ok(())
        }
        EnvCommand::Current => {
            let c = chosen?;
            if ctx.output == Output::Table {
                ctx.printer.data(&c.name);
                ctx.printer.info(format!("({})", c.why()));
            } else {
                ctx.printer.data(&to_data(
                    ctx.output,
                    &Current {
                        name: &c.name,
                        source: c.source,
                    },
                )?);
            }
            Ok(())
        }
    }
}
