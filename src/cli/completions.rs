use clap::CommandFactory;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Shell to generate for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `platform completions bash > /etc/bash_completion.d/platform`
pub fn run(args: Args) -> anyhow::Result<()> {
    let mut cmd = super::Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "platform", &mut std::io::stdout());
    Ok(())
}
