//! Which job the model thread serves next: priorities, fairness between sessions, and which running
//! generations take part in the next batch. Pure bookkeeping (no model), so the policy is unit-tested.
//!
//! A keystroke (inline completion) comes before a code action, which comes before a design document, which
//! comes before background work. Queued jobs of one priority take turns by session (the daemon serves many
//! editor windows on one engine), and a session may run only so many long jobs at once; the rest wait.
//! Running generations are resumable: those that do not fit the next batch (fewer slots than jobs, the lowest
//! priorities first) simply skip a step, keeping their KV cells, and resume where they stopped.
use serde::Serialize;
use std::collections::{HashMap, VecDeque};

/// Most urgent first: the derived order is the serving order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Priority {
    /// Someone is typing and waits for the ghost text.
    Inline,
    /// A code action or an implement-this command: asked for, waited on, but seconds are expected.
    #[default]
    Action,
    /// A whole design document: many tokens, watched through progress reports.
    DesignDoc,
    /// Warm-ups, context blocks: nobody waits.
    Background,
}

impl Priority {
    /// Jobs counted against a session's limit of concurrent long jobs.
    pub fn is_long(self) -> bool {
        self != Priority::Inline
    }
}

/// The session a document key belongs to: the daemon prefixes every key with `s<N>:`, the team daemon with
/// `u<uid>:s<N>:` (server conv::doc_key); an in-process engine has one session, "".
pub fn session_of(key: &str) -> &str {
    let number = |s: &str, tag: u8| {
        let b = s.as_bytes();
        let digits = b.iter().skip(1).take_while(|c| c.is_ascii_digit()).count();
        (b.first() == Some(&tag) && digits > 0 && b.get(digits + 1) == Some(&b':')).then_some(digits + 2)
    };
    let user = number(key, b'u').unwrap_or(0);
    match number(&key[user..], b's') {
        Some(n) => &key[..user + n],
        None => "",
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    pub prio: Priority,
    pub session: String,
    /// The cache key: its KV sequence is the job's, so two jobs on one key never run at once.
    pub doc: String,
}

impl Meta {
    pub fn new(prio: Priority, doc: &str) -> Self {
        Meta { prio, session: session_of(doc).to_string(), doc: doc.to_string() }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Generations that advance in one decode (1: no batching, the most urgent one runs alone).
    pub batch: usize,
    /// Generations that may hold a KV sequence at once, running or suspended.
    pub running: usize,
    /// Long jobs one session may have running; more wait in the queue.
    pub long_per_session: usize,
    /// While a keystroke runs, long jobs sit out the steps (they resume after it) instead of riding along.
    pub long_yields: bool,
}

pub struct Sched<T> {
    limits: Limits,
    queue: VecDeque<(u64, Meta, T)>,
    /// Admitted jobs, in admission order.
    running: Vec<(u64, Meta)>,
    next_id: u64,
    /// Per session, when it was last admitted a job: the least recently served goes first.
    served: HashMap<String, u64>,
    tick: u64,
}

impl<T> Sched<T> {
    pub fn new(limits: Limits) -> Self {
        let limits = Limits {
            batch: limits.batch.max(1),
            running: limits.running.max(1),
            long_per_session: limits.long_per_session.max(1),
            long_yields: limits.long_yields,
        };
        Sched { limits, queue: VecDeque::new(), running: Vec::new(), next_id: 1, served: HashMap::new(), tick: 0 }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    pub fn push(&mut self, meta: Meta, item: T) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.queue.push_back((id, meta, item));
        id
    }

    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    pub fn running(&self) -> usize {
        self.running.len()
    }

    pub fn is_idle(&self) -> bool {
        self.queue.is_empty() && self.running.is_empty()
    }

    /// Whether a running job holds `doc`'s sequence.
    pub fn holds(&self, doc: &str) -> bool {
        self.running.iter().any(|(_, m)| m.doc == doc)
    }

    /// Take out queued jobs that match (cancelled ones, say), in queue order.
    pub fn remove_queued(&mut self, mut pred: impl FnMut(&T) -> bool) -> Vec<T> {
        let (out, keep): (Vec<_>, Vec<_>) = self.queue.drain(..).partition(|(_, _, t)| pred(t));
        self.queue = keep.into();
        out.into_iter().map(|(_, _, t)| t).collect()
    }

    /// All queued jobs, for a shutdown.
    pub fn drain_queued(&mut self) -> Vec<T> {
        self.queue.drain(..).map(|(_, _, t)| t).collect()
    }

    fn admissible(&self, m: &Meta) -> bool {
        if self.running.len() >= self.limits.running || self.holds(&m.doc) {
            return false;
        }
        if m.prio.is_long() {
            let mine = self.running.iter().filter(|(_, r)| r.prio.is_long() && r.session == m.session).count();
            // Long jobs never hold every sequence: a keystroke always finds one free.
            let long = self.running.iter().filter(|(_, r)| r.prio.is_long()).count();
            if mine >= self.limits.long_per_session || long + 1 >= self.limits.running {
                return false;
            }
        }
        // Admitted only to take part at once: a job that would sit suspended behind more urgent ones waits in
        // the queue instead, where it holds no sequence and a later, more urgent job still overtakes it.
        self.running.iter().filter(|(_, r)| r.prio <= m.prio).count() < self.limits.batch
    }

    /// The next job to start: the most urgent admissible one; within a priority, the session served least
    /// recently, then arrival order. `ok` adds the caller's own conditions (a free KV sequence, say).
    pub fn admit(&mut self, ok: impl Fn(&Meta) -> bool) -> Option<(u64, Meta, T)> {
        let pick = self
            .queue
            .iter()
            .enumerate()
            .filter(|(_, (_, m, _))| self.admissible(m) && ok(m))
            .min_by_key(|(i, (_, m, _))| (m.prio, self.served.get(&m.session).copied().unwrap_or(0), *i))
            .map(|(i, _)| i)?;
        let (id, meta, item) = self.queue.remove(pick).expect("picked from the queue");
        self.tick += 1;
        self.served.insert(meta.session.clone(), self.tick);
        self.running.push((id, meta.clone()));
        Some((id, meta, item))
    }

    pub fn finish(&mut self, id: u64) {
        self.running.retain(|(i, _)| *i != id);
    }

    /// The running jobs that take part in the next batch, most urgent first: up to `batch` of them, by
    /// priority, then admission order (so a long job keeps its turn against later ones of its priority).
    pub fn step(&self) -> Vec<u64> {
        let mut r: Vec<(usize, &(u64, Meta))> = self.running.iter().enumerate().collect();
        r.sort_by_key(|(i, (_, m))| (m.prio, *i));
        let typing = r.first().is_some_and(|(_, (_, m))| !m.prio.is_long());
        r.into_iter()
            .take_while(|(_, (_, m))| !(typing && self.limits.long_yields && m.prio.is_long()))
            .take(self.limits.batch)
            .map(|(_, (id, _))| *id)
            .collect()
    }
}

#[cfg(test)]
#[path = "sched_tests.rs"]
mod tests;
