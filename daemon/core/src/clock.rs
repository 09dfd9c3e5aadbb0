//! The daemon's clock, passed in so tests and benchmarks can control it.

use std::sync::Arc;

use stagecoach_types::model::Millis;

/// Where "now" comes from.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> Millis + Send + Sync>);

impl Clock {
    /// The system's wall clock.
    pub fn system() -> Clock {
        Clock(Arc::new(Millis::now))
    }

    /// A clock that always says `at`.
    pub fn fixed(at: Millis) -> Clock {
        Clock(Arc::new(move || at))
    }

    /// The current time.
    pub fn now(&self) -> Millis {
        (self.0)()
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Clock({})", self.now())
    }
}
