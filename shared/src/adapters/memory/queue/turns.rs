//! The jobs ready to be handed out, taken in turns: round-robin across organisations,
//! and within an organisation round-robin across its lanes (one per endpoint), each lane
//! first in, first out. So an organisation with a long backlog delays another's next job
//! by one turn, not by its backlog; and the same holds between the endpoints of one
//! organisation. Turns order handouts, not deliveries: jobs handed out together run
//! concurrently and finish in any order.

use crate::domain::{Job, OrgSlug};
use std::collections::{HashMap, VecDeque};
use uuid::Uuid;

/// Where a job waits its turn: its organisation, and the endpoint it is for. A recovery's
/// job names no endpoint (only the recovery): its recovery stands for one, so a recovery
/// takes turns beside the endpoints' deliveries instead of behind them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Lane {
    pub org: OrgSlug,
    pub key: Uuid,
}

impl Lane {
    pub fn of(job: &Job) -> Self {
        let (org, key) = match job {
            Job::Deliver {
                org, endpoint_id, ..
            }
            | Job::ResumeEndpoint {
                org, endpoint_id, ..
            }
            | Job::PurgeEndpoint {
                org, endpoint_id, ..
            } => (org, *endpoint_id),
            Job::RecoverEndpoint {
                org, recovery_id, ..
            } => (org, *recovery_id),
        };
        Self {
            org: org.clone(),
            key,
        }
    }
}

/// The ready jobs and the turn order; and, per lane, the jobs handed out with a cap and
/// not finished yet.
#[derive(Default)]
pub struct Turns {
    /// Organisations with ready jobs, next turn first.
    orgs: VecDeque<OrgSlug>,
    /// Per organisation, its lanes with ready jobs, next turn first.
    lanes: HashMap<OrgSlug, VecDeque<Uuid>>,
    jobs: HashMap<Lane, VecDeque<Job>>,
    busy: HashMap<Lane, usize>,
    len: usize,
}

impl Turns {
    /// Jobs ready.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn push(&mut self, job: Job) {
        let lane = Lane::of(&job);
        let fifo = self.jobs.entry(lane.clone()).or_default();
        if fifo.is_empty() {
            let lanes = self.lanes.entry(lane.org.clone()).or_default();
            if lanes.is_empty() {
                self.orgs.push_back(lane.org.clone());
            }
            lanes.push_back(lane.key);
        }
        fifo.push_back(job);
        self.len += 1;
    }

    /// The next job in turn, whatever is handed out.
    pub fn pop(&mut self) -> Option<Job> {
        self.next(usize::MAX)
    }

    /// The next job in turn whose lane has fewer than `cap` jobs handed out (lanes at
    /// their cap are passed over and keep their place), counted handed out until
    /// [`Self::finished`].
    pub fn take(&mut self, cap: usize) -> Option<Job> {
        let job = self.next(cap)?;
        *self.busy.entry(Lane::of(&job)).or_default() += 1;
        Some(job)
    }

    /// A job [`Self::take`] handed out is finished.
    pub fn finished(&mut self, job: &Job) {
        let lane = Lane::of(job);
        if let Some(n) = self.busy.get_mut(&lane) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.busy.remove(&lane);
            }
        }
    }

    fn next(&mut self, cap: usize) -> Option<Job> {
        let (o, l) = self.orgs.iter().enumerate().find_map(|(o, org)| {
            let lanes = self.lanes.get(org)?;
            let l = lanes.iter().position(|key| {
                let lane = Lane {
                    org: org.clone(),
                    key: *key,
                };
                self.busy.get(&lane).copied().unwrap_or(0) < cap
            })?;
            Some((o, l))
        })?;
        let org = self.orgs.remove(o)?;
        let lanes = self.lanes.get_mut(&org)?;
        let key = lanes.remove(l)?;
        let lane = Lane { org, key };
        let fifo = self.jobs.get_mut(&lane)?;
        let job = fifo.pop_front()?;
        self.len -= 1;
        // A lane or organisation with more goes to the back of its turn order.
        if fifo.is_empty() {
            self.jobs.remove(&lane);
        } else {
            lanes.push_back(lane.key);
        }
        if lanes.is_empty() {
            self.lanes.remove(&lane.org);
        } else {
            self.orgs.push_back(lane.org);
        }
        Some(job)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::job::JOB_VERSION;

    fn org(name: &str) -> OrgSlug {
        OrgSlug::parse(name).expect("slug")
    }

    /// A resume job: its lane is (org, endpoint).
    fn job(o: &str, endpoint: u128) -> Job {
        Job::ResumeEndpoint {
            v: JOB_VERSION,
            org: org(o),
            endpoint_id: Uuid::from_u128(endpoint),
        }
    }

    /// Turns holding a job for each (org, endpoint), in this order.
    fn turns_of(jobs: &[(&str, u128)]) -> Turns {
        let mut turns = Turns::default();
        for (o, e) in jobs {
            turns.push(job(o, *e));
        }
        turns
    }

    fn lanes(jobs: &[Job]) -> Vec<(String, u128)> {
        jobs.iter()
            .map(|j| {
                let lane = Lane::of(j);
                (lane.org.to_string(), lane.key.as_u128())
            })
            .collect()
    }

    fn pairs(list: &[(&str, u128)]) -> Vec<(String, u128)> {
        list.iter().map(|(o, e)| ((*o).to_owned(), *e)).collect()
    }

    #[test]
    fn organisations_then_their_endpoints_take_turns() {
        // Org a: a backlog on endpoint 1, then a job on 2; org b arrives last.
        let mut turns = turns_of(&[
            ("a", 1),
            ("a", 1),
            ("a", 1),
            ("a", 1),
            ("a", 2),
            ("b", 3),
            ("b", 3),
        ]);
        assert_eq!(turns.len(), 7);
        let order: Vec<Job> = std::iter::from_fn(|| turns.pop()).collect();
        assert_eq!(
            lanes(&order),
            pairs(&[
                ("a", 1),
                ("b", 3),
                ("a", 2),
                ("b", 3),
                ("a", 1),
                ("a", 1),
                ("a", 1),
            ])
        );
        assert_eq!(turns.len(), 0);
    }

    #[test]
    fn a_lane_keeps_its_jobs_in_order() {
        let mut turns = Turns::default();
        let jobs: Vec<Job> = (0..3)
            .map(|n| Job::PurgeEndpoint {
                v: JOB_VERSION,
                org: org("a"),
                endpoint_id: Uuid::from_u128(1),
                endpoint_number: crate::domain::EndpointNumber(n),
            })
            .collect();
        for j in &jobs {
            turns.push(j.clone());
        }
        let out: Vec<Job> = std::iter::from_fn(|| turns.pop()).collect();
        assert_eq!(out, jobs);
    }

    #[test]
    fn lanes_at_their_cap_are_passed_over_until_a_job_finishes() {
        let mut turns = turns_of(&[("a", 1), ("a", 1), ("a", 1), ("a", 1), ("a", 1), ("b", 2)]);
        let first = turns.take(2).expect("a");
        let second = turns.take(2).expect("b");
        let third = turns.take(2).expect("a again");
        assert_eq!(
            lanes(&[first.clone(), second, third]),
            pairs(&[("a", 1), ("b", 2), ("a", 1)])
        );
        assert_eq!(
            turns.take(2),
            None,
            "a's endpoint has 2 out; nothing else is ready"
        );
        assert_eq!(turns.len(), 3);
        turns.finished(&first);
        assert!(turns.take(2).is_some(), "a slot came free");
        assert_eq!(turns.take(2), None);
        // A job without a cap is always handed out, and not counted.
        assert!(turns.pop().is_some());
        assert_eq!(turns.len(), 1);
    }

    #[test]
    fn a_recovery_takes_turns_of_its_own() {
        let recovery = Job::RecoverEndpoint {
            v: JOB_VERSION,
            org: org("a"),
            recovery_id: Uuid::from_u128(9),
        };
        let mut turns = turns_of(&[("a", 1), ("a", 1)]);
        turns.push(recovery.clone());
        turns.pop();
        assert_eq!(turns.pop(), Some(recovery));
    }
}
