//! What the copy onto the volume tells the user, as [`Reporter`] events: one transfer (bytes sent
//! to the pod) and a note per verified batch. Drawing is `ui::report`'s job.

use std::sync::Arc;

use super::StagedFile;
use crate::report::{size, Event, Reporter, Silent};

/// Id of the copy's transfer.
const COPY: &str = "copy";

/// Progress of one model's copy. `sent` is called from blocking threads: it only forwards.
pub struct CopyProgress {
    r: Arc<dyn Reporter>,
}

impl CopyProgress {
    /// A copy of `total` bytes to `target` (`PVC ns/name`) starts.
    pub fn new(r: Arc<dyn Reporter>, total: u64, target: &str) -> CopyProgress {
        r.event(Event::TransferStarted {
            id: COPY,
            label: &format!("copy to {target}"),
            total,
            done: 0,
        });
        CopyProgress { r }
    }

    /// Reports nothing.
    pub fn silent() -> CopyProgress {
        CopyProgress {
            r: Arc::new(Silent),
        }
    }

    /// `n` more bytes of file data went to the pod.
    pub fn sent(&self, n: u64) {
        self.r.event(Event::Bytes { id: COPY, n });
    }

    /// These files are on the volume and their sha256 checked in the pod.
    pub fn verified(&self, files: &[StagedFile]) {
        let bytes: u64 = files.iter().map(|f| f.size).sum();
        let names: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        let shown = if names.len() > 3 {
            format!("{}, … ({} files)", names[..3].join(", "), names.len())
        } else {
            names.join(", ")
        };
        self.r.note(&format!(
            "verified on the volume: {shown} ({})",
            size(bytes)
        ));
    }

    /// The copy ended (the command prints its own summary).
    pub fn finish(&self) {
        self.r.event(Event::TransferFinished { id: COPY });
    }
}
