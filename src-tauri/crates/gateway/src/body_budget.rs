//! Room for request bodies held at once across all requests (`server.body_budget_mb`), so many
//! large bodies at once cannot take the machine's memory: a body waits for room, in order, and
//! is refused as busy if none comes in time.

use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::error::GatewayError;

/// The budget is counted in KiB so that a large one fits a semaphore's permits.
const UNIT: usize = 1024;

pub(crate) struct BodyBudget {
    current: ArcSwap<Budget>,
}

struct Budget {
    mb: u64,
    permits: usize,
    sem: Arc<Semaphore>,
}

impl Budget {
    fn new(mb: u64) -> Self {
        let permits = usize::try_from(mb.saturating_mul(1024))
            .unwrap_or(usize::MAX)
            .clamp(1, Semaphore::MAX_PERMITS);
        Self {
            mb,
            permits,
            sem: Arc::new(Semaphore::new(permits)),
        }
    }
}

/// Room in the budget, given back when the request is done with its body.
pub(crate) struct Held(#[allow(dead_code)] Option<OwnedSemaphorePermit>);

impl BodyBudget {
    pub(crate) fn new(mb: u64) -> Self {
        Self {
            current: ArcSwap::from_pointee(Budget::new(mb)),
        }
    }

    /// The budget in force; a changed setting starts a new one (bodies already held count
    /// against the old one until they are done).
    fn budget(&self, mb: u64) -> Arc<Budget> {
        let b = self.current.load_full();
        if b.mb == mb {
            return b;
        }
        let fresh = Arc::new(Budget::new(mb));
        self.current.store(fresh.clone());
        fresh
    }

    /// Room for a body of `expected` bytes (at least one KiB, at most the whole budget),
    /// waited for until `deadline`.
    pub(crate) async fn reserve(
        &self,
        expected: usize,
        mb: u64,
        deadline: Instant,
    ) -> Result<Held, GatewayError> {
        if expected == 0 {
            return Ok(Held(None));
        }
        let budget = self.budget(mb);
        let want = expected.div_ceil(UNIT).clamp(1, budget.permits);
        let want = u32::try_from(want).unwrap_or(u32::MAX);
        match tokio::time::timeout_at(deadline, budget.sem.clone().acquire_many_owned(want)).await {
            Ok(Ok(p)) => Ok(Held(Some(p))),
            // Closed never happens: the semaphore is never closed.
            Ok(Err(_)) | Err(_) => Err(GatewayError::Busy(format!(
                "the gateway is holding {mb} MB of request bodies (server.body_budget_mb); try again shortly"
            ))),
        }
    }
}
