use anyhow::Result;

use super::{to_data, Ctx, Output};
use crate::scaffold::eject::{eject, EjectOptions};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
The catalog (catalog/: groups and their Argo CD apps, layers and profiles, serving layers, \
runtime presets, Helm values files) is embedded in platform. A repository without a catalog/ \
folder uses the embedded one; a repository with one uses it entirely, never a mix of the two \
(its files refer to each other). Templates are different: a file under templates/ replaces the \
embedded template of the same name, one by one. `platform plan` and `platform lint` say which \
catalog and templates are in use.")]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Write the embedded catalog (and templates with --templates) into the repository to customise it.
    Eject(EjectArgs),
}

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Writes catalog/ (every file of the embedded catalog, values/ included), and templates/ with \
--templates. Refuses, before writing anything, when any of these files exists (exit 1 naming \
it): eject never overwrites, and offers no --force, because what is there is your customisation. \
To take the embedded files of a newer platform, move the folder aside, eject again and compare.

From then on the repository's catalog/ is used instead of the embedded one, as a whole: a newer \
platform's embedded catalog no longer applies. Argo CD reads the Helm values files
(catalog/values/) from this repository, so commit catalog/ before pushing what `root` renders. \
Keep only the templates you change: the others then follow platform's embedded ones.")]
pub struct EjectArgs {
    /// Also write the embedded templates into templates/.
    #[arg(long)]
    pub templates: bool,
    /// Only the templates (for a repository that ejected its catalog earlier).
    #[arg(long, conflicts_with = "templates")]
    pub templates_only: bool,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    match args.command {
        Command::Eject(a) => run_eject(ctx, a),
    }
}

fn run_eject(ctx: &Ctx, args: EjectArgs) -> Result<()> {
    let opts = EjectOptions {
        catalog: !args.templates_only,
        templates: args.templates || args.templates_only,
    };
    let outcome = eject(&ctx.repo, opts).map_err(super::init::unwrap_input)?;
    if ctx.output != Output::Table {
        ctx.printer.data(&to_data(ctx.output, &outcome)?);
    }
    let p = &ctx.printer;
    p.success(format!(
        "wrote {} file(s) of platform {}'s embedded {} into {}:",
        outcome.written.len(),
        outcome.version,
        match (opts.catalog, opts.templates) {
            (true, true) => "catalog and templates",
            (true, false) => "catalog",
            _ => "templates",
        },
        ctx.repo.display()
    ));
    for f in &outcome.written {
        p.info(format!("  {f}"));
    }
    p.info("next:");
    let mut steps = Vec::new();
    if opts.catalog {
        steps.push((
            "edit catalog/",
            "groups.yaml: apps and chart versions · presets.yaml: images · values/: Helm values",
        ));
    }
    if opts.templates {
        steps.push((
            "edit templates/",
            "delete the ones you keep as they are: they then follow platform's",
        ));
    }
    steps.push(("platform lint", "check your changes"));
    steps.push((
        "git add catalog templates && git commit",
        "Argo CD reads catalog/values/ from this repository",
    ));
    steps.push((
        "platform root --commit --push",
        "render with your catalog and templates, push",
    ));
    for (cmd, why) in steps {
        p.info(format!("  {cmd:<42} {why}"));
    }
    Ok(())
}
