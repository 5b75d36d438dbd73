//! The process's interrupt signals, for commands that clean up before they end (stage-model's pod,
//! `status --watch`): SIGINT and SIGTERM are caught and the command ends with exit 130 / 143, as a
//! command the signal killed outright would.

use tokio::sync::watch;

use crate::signal::Signal;

/// The first SIGINT or SIGTERM the process received, for any number of waiters. Listen (with
/// [`Interrupt::listen`]) before anything needs cleaning up.
#[derive(Clone)]
pub struct Interrupt {
    rx: watch::Receiver<Option<Signal>>,
}

impl Interrupt {
    /// Catch SIGINT and SIGTERM from now on (inside a tokio runtime).
    pub fn listen() -> std::io::Result<Interrupt> {
        let (tx, rx) = watch::channel(None);
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let mut int = signal(SignalKind::interrupt())?;
            let mut term = signal(SignalKind::terminate())?;
            tokio::spawn(async move {
                let s = tokio::select! {
                    _ = int.recv() => Signal::Interrupt,
                    _ = term.recv() => Signal::Terminate,
                };
                let _ = tx.send(Some(s));
            });
        }
        #[cfg(not(unix))]
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                let _ = tx.send(Some(Signal::Interrupt));
            }
        });
        Ok(Interrupt { rx })
    }

    /// Resolves with the signal once one arrived (at once if one did already).
    pub async fn fired(&self) -> Signal {
        let mut rx = self.rx.clone();
        let fired = rx.wait_for(Option::is_some).await.ok().and_then(|s| *s);
        match fired {
            Some(s) => s,
            // The listener is gone (the runtime is shutting down): never resolves.
            None => std::future::pending().await,
        }
    }

    /// Run `work` unless a signal comes first; then it is dropped and the signal is the error.
    pub async fn guard<T>(
        &self,
        work: impl std::future::Future<Output = anyhow::Result<T>>,
    ) -> anyhow::Result<T> {
        tokio::select! {
            r = work => r,
            s = self.fired() => Err(crate::error::Interrupted(s).into()),
        }
    }
}
