use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Shell to generate for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `platform completions bash > /etc/bash_completion.d/platform`
pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let mut cmd = super::command();
    // Into memory, then through the printer: clap_complete panics when stdout is a closed pipe.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "platform", &mut script);
    ctx.printer.data(&String::from_utf8_lossy(&script));
    Ok(())
}
