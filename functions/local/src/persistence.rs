//! `--state FILE`: the store and the jobs to do, loaded at start and kept saved while
//! the server runs.

use shared::adapters::memory::MemoryStore;
use shared::adapters::memory::queue::MemoryQueue;
use shared::adapters::memory::state_file::{self, SavedState, StateFileError};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How often `--state` is saved when something changed.
pub const SAVE_EVERY: Duration = Duration::from_millis(200);

/// What `--state FILE` held at start (`None`: no file yet).
pub type Loaded = Option<LoadedCounts>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadedCounts {
    pub endpoints: usize,
    pub deliveries: usize,
    pub jobs: usize,
}

/// The saved state to start from (empty without `--state` or without a file yet), and
/// what the file held.
pub fn load(path: Option<&Path>) -> Result<(SavedState, Loaded), StateFileError> {
    let saved = match path {
        Some(path) => state_file::load(path)?,
        None => None,
    };
    let loaded = saved.as_ref().map(|s| LoadedCounts {
        endpoints: s.store.endpoints.len(),
        deliveries: s.store.deliveries.len(),
        jobs: s.jobs.len(),
    });
    Ok((saved.unwrap_or_default(), loaded))
}

/// The store and the jobs to do, copied at one moment.
pub fn saved_state(store: &MemoryStore, queue: &MemoryQueue) -> SavedState {
    let (jobs, store) = queue.outstanding_with(|| store.contents());
    SavedState { store, jobs }
}

/// Save the store and the jobs to do whenever either changed, at most every
/// [`SAVE_EVERY`], until `stop` turns true; then once more, the last word. One task does
/// every save, so two never write the file at once. A failed save is logged and tried
/// again at the next change (the last one's error is returned).
pub async fn keep_saving(
    path: PathBuf,
    store: Arc<MemoryStore>,
    queue: Arc<MemoryQueue>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(), StateFileError> {
    let mut every = tokio::time::interval(SAVE_EVERY);
    // The server saved just before this started.
    let mut saved = (store.changes(), queue.changes());
    loop {
        let last = tokio::select! {
            _ = every.tick() => false,
            _ = stop.changed() => true,
        };
        // Read before the copy is taken: a change made meanwhile shows at the next tick.
        let seen = (store.changes(), queue.changes());
        if seen == saved && !last {
            continue;
        }
        let state = saved_state(&store, &queue);
        let target = path.clone();
        let result = tokio::task::spawn_blocking(move || state_file::save(&target, &state))
            .await
            .unwrap_or_else(|e| {
                Err(StateFileError::Io {
                    path: path.clone(),
                    source: std::io::Error::other(e.to_string()),
                })
            });
        if last {
            return result;
        }
        if let Err(err) = result {
            tracing::warn!(error = %err, "saving the state failed; trying again at the next change");
        }
        saved = seen;
    }
}
