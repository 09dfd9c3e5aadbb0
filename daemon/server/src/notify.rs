//! systemd's readiness protocol, for `Type=notify` units: `READY=1` once
//! the socket accepts, `STOPPING=1` when shutting down, `RELOADING=1` then
//! `READY=1` around a reload of the process file, `WATCHDOG=1` every half
//! `WatchdogSec` while it is set; `STATUS=` says which process version is
//! in force. Without `NOTIFY_SOCKET` (not under systemd) nothing is sent.

use std::time::Duration;

use sd_notify::NotifyState;

fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(false, states) {
        tracing::debug!(error = %e, "cannot notify systemd");
    }
}

/// Ready: serving `process` at `version`.
pub fn ready(process: &str, version: u64) {
    let status = format!("serving {process} (version {version})");
    send(&[NotifyState::Ready, NotifyState::Status(&status)]);
}

/// Reloading the process file.
pub fn reloading() {
    let mut states = vec![NotifyState::Reloading];
    // `Type=notify-reload` wants to know when the reload began.
    if let Ok(now) = NotifyState::monotonic_usec_now() {
        states.push(now);
    }
    send(&states);
}

/// Shutting down.
pub fn stopping() {
    send(&[
        NotifyState::Stopping,
        NotifyState::Status("stopping: finishing requests in flight"),
    ]);
}

/// How often to ping the watchdog: half of `WatchdogSec`, when it is set.
/// As `sd_watchdog_enabled(3)` reads it: `WATCHDOG_USEC`, for this process
/// unless `WATCHDOG_PID` names another (the crate's own check also refuses
/// an unset `WATCHDOG_PID`).
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID")
        && pid.parse::<u32>().ok() != Some(std::process::id())
    {
        return None;
    }
    (usec > 0).then(|| Duration::from_micros(usec) / 2)
}

/// Still alive.
pub fn watchdog() {
    send(&[NotifyState::Watchdog]);
}
