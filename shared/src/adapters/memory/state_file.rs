//! The local server's state file (`webhooks-local --state FILE`): the embedded store and
//! the jobs not done yet, saved whole and atomically, loaded at start.
//!
//! The records are the items the DynamoDB adapter writes (same keys, same attributes),
//! in DynamoDB's JSON notation, so one mapping serves both and the file reads like a
//! table scan. It holds the endpoints' signing secrets (API keys only as hashes): it is
//! written readable by its owner only.

use super::StoreContents;
use super::queue::OutstandingJob;
use crate::adapters::dynamo::items::deliveries::DeliveryItem;
use crate::adapters::dynamo::items::endpoints::EndpointItem;
use crate::adapters::dynamo::items::events::EventItem;
use crate::adapters::dynamo::items::keys::ApiKeyItem;
use crate::adapters::dynamo::items::recoveries::RecoveryItem;
use crate::adapters::dynamo::items::schedule::ScheduledItem;
use crate::adapters::dynamo::items::stats::{stats_item, stats_of};
use crate::adapters::private_file;
use crate::domain::{ApiKey, DeliveryKey, Endpoint, Job};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Names the file's kind, so a file of something else is refused rather than read.
const FORMAT: &str = "agentvista-webhooks-local-state";
const VERSION: u32 = 1;

#[derive(Debug, Error)]
pub enum StateFileError {
    #[error("state file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("state file {path} is not one this version can read: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// What the file holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SavedState {
    pub store: StoreContents,
    pub jobs: Vec<OutstandingJob>,
}

#[derive(Serialize, Deserialize)]
struct File {
    format: String,
    version: u32,
    saved_at: DateTime<Utc>,
    endpoint_numbers: u32,
    scheduled_through: Option<DateTime<Utc>>,
    endpoints: Vec<serde_dynamo::Item>,
    keys: Vec<serde_dynamo::Item>,
    events: Vec<serde_dynamo::Item>,
    deliveries: Vec<serde_dynamo::Item>,
    scheduled: Vec<serde_dynamo::Item>,
    /// Absent from files saved before the console's statistics and recoveries.
    #[serde(default)]
    attempt_counts: Vec<serde_dynamo::Item>,
    #[serde(default)]
    recoveries: Vec<serde_dynamo::Item>,
    jobs: Vec<SavedJob>,
}

#[derive(Serialize, Deserialize)]
struct SavedJob {
    due: DateTime<Utc>,
    job: Job,
}

/// The embedded store keeps everything until it is deleted: no expiry is written.
const NO_EXPIRY: i64 = 0;

fn item<T: Serialize>(shape: T) -> Result<serde_dynamo::Item, String> {
    serde_dynamo::to_item(shape).map_err(|e| e.to_string())
}

fn shape<T: for<'de> Deserialize<'de>>(item: serde_dynamo::Item) -> Result<T, String> {
    serde_dynamo::from_item(item).map_err(|e| e.to_string())
}

fn encode(state: &SavedState) -> Result<Vec<u8>, String> {
    let s = &state.store;
    let file = File {
        format: FORMAT.to_owned(),
        version: VERSION,
        saved_at: Utc::now(),
        endpoint_numbers: s.endpoint_numbers,
        scheduled_through: s.scheduled_through,
        endpoints: s
            .endpoints
            .iter()
            .map(|e| item(EndpointItem::from(e)))
            .collect::<Result<_, _>>()?,
        keys: s
            .keys
            .iter()
            .map(|k| item(ApiKeyItem::from(k)))
            .collect::<Result<_, _>>()?,
        events: s
            .events
            .iter()
            .map(|e| item(EventItem::new(e, NO_EXPIRY)))
            .collect::<Result<_, _>>()?,
        deliveries: s
            .deliveries
            .iter()
            .map(|d| item(DeliveryItem::new(d, NO_EXPIRY)))
            .collect::<Result<_, _>>()?,
        scheduled: s
            .schedule
            .iter()
            .map(|a| {
                let key = DeliveryKey::from_id(a.job.delivery_id)
                    .ok_or_else(|| format!("scheduled attempt of {}", a.job.delivery_id))?;
                item(ScheduledItem::new(a, key, NO_EXPIRY))
            })
            .collect::<Result<_, _>>()?,
        attempt_counts: s
            .attempt_counts
            .iter()
            .map(|c| serde_dynamo::Item::from(stats_item(c)))
            .collect(),
        recoveries: s
            .recoveries
            .iter()
            .map(|r| item(RecoveryItem::new(r, NO_EXPIRY)))
            .collect::<Result<_, _>>()?,
        jobs: state
            .jobs
            .iter()
            .map(|o| SavedJob {
                due: o.due,
                job: o.job.clone(),
            })
            .collect(),
    };
    serde_json::to_vec(&file).map_err(|e| e.to_string())
}

fn decode(bytes: &[u8]) -> Result<SavedState, String> {
    let file: File = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if file.format != FORMAT || file.version != VERSION {
        return Err(format!(
            "format {} version {} (this version reads {FORMAT} version {VERSION})",
            file.format, file.version
        ));
    }
    let store = StoreContents {
        endpoints: file
            .endpoints
            .into_iter()
            .map(|i| shape::<EndpointItem>(i).map(Endpoint::from))
            .collect::<Result<_, _>>()?,
        endpoint_numbers: file.endpoint_numbers,
        keys: file
            .keys
            .into_iter()
            .map(|i| shape::<ApiKeyItem>(i).and_then(ApiKey::try_from))
            .collect::<Result<_, _>>()?,
        events: file
            .events
            .into_iter()
            .map(|i| shape::<EventItem>(i).and_then(TryFrom::try_from))
            .collect::<Result<_, _>>()?,
        deliveries: file
            .deliveries
            .into_iter()
            .map(|i| shape::<DeliveryItem>(i).and_then(TryFrom::try_from))
            .collect::<Result<_, _>>()?,
        schedule: file
            .scheduled
            .into_iter()
            .map(|i| shape::<ScheduledItem>(i).and_then(TryFrom::try_from))
            .collect::<Result<_, _>>()?,
        scheduled_through: file.scheduled_through,
        attempt_counts: file
            .attempt_counts
            .into_iter()
            .map(|i| stats_of(&i.into()))
            .collect::<Result<_, _>>()?,
        recoveries: file
            .recoveries
            .into_iter()
            .map(|i| shape::<RecoveryItem>(i).and_then(TryFrom::try_from))
            .collect::<Result<_, _>>()?,
    };
    let jobs = file
        .jobs
        .into_iter()
        .map(|j| OutstandingJob {
            job: j.job,
            due: j.due,
        })
        .collect();
    Ok(SavedState { store, jobs })
}

/// The state saved at `path`; `None` if there is no file yet.
pub fn load(path: &Path) -> Result<Option<SavedState>, StateFileError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(StateFileError::Io {
                path: path.to_owned(),
                source,
            });
        }
    };
    decode(&bytes)
        .map(Some)
        .map_err(|message| StateFileError::Invalid {
            path: path.to_owned(),
            message,
        })
}

/// Replace the file at `path` with `state`: written beside it, flushed to disk, then
/// renamed over it, so the file is always one whole save, the last or the one before.
pub fn save(path: &Path, state: &SavedState) -> Result<(), StateFileError> {
    use std::io::Write;
    let io = |source| StateFileError::Io {
        path: path.to_owned(),
        source,
    };
    let bytes = encode(state).map_err(|message| StateFileError::Invalid {
        path: path.to_owned(),
        message,
    })?;
    // This process's own staging file, created afresh (never through a link someone
    // left there) and readable by its owner only.
    let mut staging = path.as_os_str().to_owned();
    staging.push(format!(".saving-{}", std::process::id()));
    let staging = PathBuf::from(staging);
    let _ = std::fs::remove_file(&staging);
    let mut file = private_file::create(&staging).map_err(io)?;
    file.write_all(&bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    drop(file);
    std::fs::rename(&staging, path).map_err(io)?;
    // The rename itself is durable once the directory is flushed.
    if let Some(Ok(dir)) = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .map(std::fs::File::open)
    {
        let _ = dir.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::MemoryStore;
    use super::super::queue::MemoryQueue;
    use super::*;
    use crate::domain::org::acme;
    use crate::domain::{DeliveryJob, EventRef, Role};
    use crate::domain::{DeliverySeq, EndpointNumber};
    use crate::ports::{EndpointStore, KeyStore};

    #[tokio::test]
    async fn a_saved_store_loads_equal_and_a_foreign_file_is_refused() {
        let store = MemoryStore::new();
        let (key, admin) = crate::key_admin::mint(
            &store,
            &acme(),
            Role::Admin,
            None,
            crate::domain::KeyStrength::Deployed,
        )
        .await
        .expect("key");
        // Ends are kept to the second, as DynamoDB's TTL attribute holds them.
        let ends = DateTime::from_timestamp(Utc::now().timestamp() + 600, 0).expect("a time");
        let (_, session) = crate::key_admin::mint_session(&store, &admin, Role::Member, ends)
            .await
            .expect("session");
        let number = store.allocate_endpoint_number().await.expect("number");
        assert!(!key.is_empty() && number == EndpointNumber(1));
        let (queue, _rx) = MemoryQueue::kept();
        let id = uuid::Uuid::now_v7();
        // Jobs carry times to the millisecond.
        let created_at =
            DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).expect("a time");
        let event = EventRef {
            id: "evt_1".into(),
            event_type: "a.b".into(),
            created_at,
        };
        let job = DeliveryJob::new(&acme(), id, id, event, Some("{}")).automatic(2);
        crate::ports::JobQueue::enqueue(&queue, vec![(job, std::time::Duration::from_secs(60))])
            .await
            .expect("enqueue");
        // The console's hourly counts and a recovery's record.
        let hour = crate::domain::stats::hour_of(created_at);
        let tally = crate::domain::stats::HourlyTally::default();
        tally.attempt(&acme(), number, created_at, true);
        tally.attempt(&acme(), number, created_at, false);
        crate::ports::AttemptStats::add_attempt_counts(&store, &tally.take())
            .await
            .expect("counts");
        let recovery = crate::domain::recovery::Recovery {
            id,
            org: acme(),
            endpoint_id: id,
            endpoint_number: number,
            since: created_at,
            until: created_at,
            status: crate::domain::recovery::RecoveryStatus::Running,
            queued: 3,
            created_at,
            updated_at: created_at + chrono::Duration::seconds(1),
            finished_at: None,
            position: Some(crate::domain::recovery::FailedPosition {
                created_at,
                seq: DeliverySeq(7),
            }),
        };
        crate::ports::RecoveryStore::insert_recovery(&store, &recovery, None)
            .await
            .expect("recovery");
        let state = SavedState {
            store: store.contents(),
            jobs: queue.outstanding(),
        };

        let dir = std::env::temp_dir().join(format!("avw-state-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("state.json");
        assert_eq!(load(&path).expect("no file yet"), None);
        save(&path, &state).expect("save");
        let loaded = load(&path).expect("load").expect("a file");
        // Times are kept to the millisecond, as in DynamoDB.
        assert_eq!(loaded.store.keys.len(), 2);
        assert_eq!(loaded.store.keys[0].hash, state.store.keys[0].hash);
        let saved_session = loaded.store.keys.iter().find(|k| k.id == session.id);
        assert_eq!(
            saved_session.map(|k| (k.parent_id, k.expires_at)),
            Some((Some(admin.id), Some(ends))),
            "a session keeps its parent and end"
        );
        assert_eq!(loaded.store.endpoint_numbers, 1);
        assert_eq!(loaded.jobs[0].job, state.jobs[0].job);
        assert_eq!(loaded.store.attempt_counts, state.store.attempt_counts);
        assert_eq!(loaded.store.attempt_counts[0].hour, hour);
        assert_eq!(loaded.store.recoveries, vec![recovery]);
        let restored = MemoryStore::with_contents(loaded.store).expect("store");
        assert_eq!(
            restored.list_keys(&acme()).await.expect("keys")[0].role,
            Role::Admin
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("file").permissions().mode();
            assert_eq!(mode & 0o077, 0, "owner only: {mode:o}");
        }

        // A file saved before sessions recorded their parent loads, without one.
        let mut old: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("JSON");
        for key in old["keys"].as_array_mut().expect("keys") {
            key.as_object_mut().expect("an item").remove("parent_id");
        }
        assert!(!old.to_string().contains("parent_id"));
        std::fs::write(&path, old.to_string()).expect("write");
        let loaded = load(&path).expect("load").expect("a file");
        assert!(loaded.store.keys.iter().all(|k| k.parent_id.is_none()));
        assert_eq!(loaded.store.keys.len(), 2);

        std::fs::write(&path, br#"{"format":"something else"}"#).expect("write");
        let err = load(&path).expect_err("refused");
        assert!(err.to_string().contains("state.json"), "{err}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
