use std::time::Duration;

use anyhow::Result;
use serde::Serialize;

use super::cluster::{connect, runtime, TargetArgs};
use super::signals::Interrupt;
use super::{to_data, Ctx, Output};
use crate::actions::argocd_ui::{self, Password, INITIAL_ADMIN_SECRET};
use crate::actions::smoke::forward::PortForward;
use crate::actions::smoke::SmokeError;
use crate::error::Classified;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Sub,
}

#[derive(Debug, clap::Subcommand)]
pub enum Sub {
    /// Port-forward to argocd-server and print the UI's URL (and, on request, the initial admin password).
    Ui(UiArgs),
}

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Finds argocd-server (a ready pod behind the Service labelled \
app.kubernetes.io/name=argocd-server, in the catalog's Argo CD namespace, else any), forwards \
127.0.0.1:PORT to it through the API server (no kubectl) and prints the URL on stderr: \
https://127.0.0.1:PORT (http:// when argocd-cmd-params-cm sets server.insecure: \"true\"; the \
certificate is Argo CD's self-signed one unless you configured another). The user is admin. The \
initial admin password (Secret argocd-initial-admin-secret, key password) is printed on stdout \
ONLY with --show-password, and nowhere else; without it the Secret's data is not even read. Once \
you changed the password, delete that Secret as Argo CD advises: the command then says it no \
longer exists. Runs until Ctrl-C (exit 130) or the server pod ends (exit 1). -o json|yaml prints \
{namespace, pod, url, username, password (with --show-password), initialSecret: \
present|gone}.

Examples:
  platform argocd ui
  platform argocd ui --port 9443 --show-password")]
pub struct UiArgs {
    /// Local port (0: any free one).
    #[arg(long, value_name = "P", default_value_t = 8080)]
    pub port: u16,
    /// Print the initial admin password on stdout.
    #[arg(long)]
    pub show_password: bool,
    #[command(flatten)]
    pub target: TargetArgs,
}

/// `argocd ui -o json|yaml`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Report<'a> {
    namespace: &'a str,
    pod: &'a str,
    url: &'a str,
    username: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    password: Option<&'a str>,
    initial_secret: &'static str,
}

/// How often the server pod is looked at while forwarding.
const CHECK_EVERY: Duration = Duration::from_secs(5);

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    match args.command {
        Sub::Ui(a) => ui(ctx, a),
    }
}

fn ui(ctx: &Ctx, args: UiArgs) -> Result<()> {
    let inputs = ctx.load()?;
    let namespace = inputs.catalog.argocd.namespace.clone();
    runtime()?.block_on(async {
        let interrupt = Interrupt::listen()?;
        let target = connect(ctx, &inputs, &args.target, super::cluster::Access::ReadOnly).await?;
        let client = target.client.clone();
        let server = argocd_ui::find_server(&client, &namespace)
            .await
            .map_err(Classified::of)?;
        let password =
            argocd_ui::initial_password(&client, &server.namespace, args.show_password).await?;
        let pf = PortForward::start_on(&client, &server.namespace, &server.pod, server.port, args.port)
            .await
            .map_err(|e| match e {
                SmokeError::Listen { source } => anyhow::anyhow!(crate::error::InputError(format!(
                    "cannot listen on 127.0.0.1:{}: {source}; pass another --port (0: any free one)",
                    args.port
                ))),
                e => Classified::of(e).into(),
            })?;
        let url = format!("{}://{}", server.scheme, pf.local_addr());
        let line = format!(
            "Argo CD UI: {url} (user admin) -> pod {}/{} port {} (Ctrl-C to stop)",
            server.namespace, server.pod, server.port
        );
        // The URL is the data asked for: under -q (no progress) it still reaches stdout.
        if ctx.printer.quiet && ctx.output == Output::Table {
            ctx.printer.data(&format!("Argo CD UI: {url} (user admin)"));
        } else {
            ctx.printer.info(line);
        }
        let secret = format!("Secret {}/{INITIAL_ADMIN_SECRET}", server.namespace);
        match (&password, args.show_password) {
            (Password::Gone, _) => ctx.printer.info(format!(
                "the initial admin password is no longer available ({secret} does not exist: it is \
                 deleted once the password is changed); log in with the password you set"
            )),
            (_, false) => ctx.printer.info(format!(
                "initial admin password: `platform argocd ui --show-password` prints it ({secret})"
            )),
            (_, true) => {}
        }
        let shown = match &password {
            Password::Value(p) if args.show_password => Some(p.as_str()),
            _ => None,
        };
        match ctx.output {
            Output::Table => {
                if let Some(p) = shown {
                    ctx.printer.data(p);
                }
            }
            o => {
                let r = Report {
                    namespace: &server.namespace,
                    pod: &server.pod,
                    url: &url,
                    username: "admin",
                    password: shown,
                    initial_secret: if password == Password::Gone {
                        "gone"
                    } else {
                        "present"
                    },
                };
                ctx.printer.data(&to_data(o, &r)?);
            }
        }
        drop(password);
        let errors = pf.last_error_handle();
        let watched = interrupt
            .guard(async {
                loop {
                    tokio::time::sleep(CHECK_EVERY).await;
                    if let Some(why) = errors.refused() {
                        return Err(Classified::of(why.error()).into());
                    }
                    if let Some(why) = pod_gone(&client, &server).await? {
                        return Err(crate::error::CheckFailed(format!(
                            "{why}: the port-forward ended; `platform argocd ui` reaches the new server pod"
                        ))
                        .into());
                    }
                }
            })
            .await;
        pf.close().await;
        watched
    })
}

/// None while the server pod runs, else why not.
async fn pod_gone(
    client: &crate::cluster::Client,
    server: &argocd_ui::Server,
) -> Result<Option<String>> {
    let api = crate::cluster::kinds::POD.api(client, &server.namespace);
    let got = client
        .retry(|| api.get_opt(&server.pod))
        .await
        .map_err(|e| {
            crate::cluster::ClusterError::api(
                format!("reading pod {}/{}", server.namespace, server.pod),
                e,
            )
        })?;
    Ok(match got {
        None => Some(format!("pod {}/{} is gone", server.namespace, server.pod)),
        Some(p) if p.metadata.deletion_timestamp.is_some() => Some(format!(
            "pod {}/{} is terminating",
            server.namespace, server.pod
        )),
        Some(_) => None,
    })
}
