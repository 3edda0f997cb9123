//! The shadows' misbehaviour: each phase of `plan::Phase` applied to both
//! shadow upstreams, in a task of its own.

use crate::load::Shared;
use crate::plan::{self, Phase};
use crate::topology::Upstreams;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use vrata_mirror_testkit::upstream::{Behaviour, Upstream};

/// Sets the shadows' behaviour for `phase`.
pub async fn enter(phase: Phase, shadows: &[Upstream; 2]) {
    for shadow in shadows {
        if phase != Phase::Refusing {
            shadow.listen_again().await;
        }
        shadow.set_behaviour(match phase {
            Phase::Healthy | Phase::Refusing => Behaviour::GrpcStatus(0),
            Phase::Stuck => Behaviour::Stuck,
            Phase::Status500 => Behaviour::Status(500),
            Phase::Reset => Behaviour::Reset,
            Phase::Slow => Behaviour::SlowMs(plan::SLOW_MS),
            Phase::GrpcError => Behaviour::GrpcStatus(plan::GRPC_ERROR),
            Phase::BigAnswer => Behaviour::LargeAnswer(plan::BIG_ANSWER_BYTES),
        });
        if phase == Phase::Refusing {
            shadow.stop_listening();
        }
    }
}

/// Moves the shadows through their phases until the run stops. A task of
/// its own: a push keeps the main loop busy for a moment, and the phases
/// must change on time regardless.
pub fn spawn(up: Arc<Upstreams>, shared: Arc<Shared>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut phase = Phase::Healthy;
        while !shared.stop.load(Ordering::Relaxed) {
            let current = shared.phase();
            if current != phase {
                enter(current, &up.shadows).await;
                phase = current;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
}
