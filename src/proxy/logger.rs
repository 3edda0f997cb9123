//! `log` records to the host's log, at or above the host's level, and a panic
//! hook that reports a panic before the VM aborts (none is expected: this is
//! for the post-mortem).

use super::host;

struct HostLogger;

static LOGGER: HostLogger = HostLogger;

impl log::Log for HostLogger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record) {
        if self.enabled(record.metadata()) {
            host::log(proxy_level(record.level()), &record.args().to_string());
        }
    }

    fn flush(&self) {}
}

/// proxy-wasm log levels (`proxy_log`, `proxy_get_log_level`).
mod level {
    pub const TRACE: u32 = 0;
    pub const DEBUG: u32 = 1;
    pub const INFO: u32 = 2;
    pub const WARN: u32 = 3;
    pub const ERROR: u32 = 4;
    pub const CRITICAL: u32 = 5;
}

fn proxy_level(level: log::Level) -> u32 {
    match level {
        log::Level::Trace => level::TRACE,
        log::Level::Debug => level::DEBUG,
        log::Level::Info => level::INFO,
        log::Level::Warn => level::WARN,
        log::Level::Error => level::ERROR,
    }
}

/// Installs the logger (once per VM) and follows the host's current level,
/// so disabled `debug!` lines cost no formatting.
pub fn install() {
    if log::set_logger(&LOGGER).is_ok() {
        std::panic::set_hook(Box::new(|info| {
            host::log(level::CRITICAL, &format!("vrata-mirror panicked: {info}"))
        }));
    }
    let filter = match host::log_level() {
        Ok(level::TRACE) => log::LevelFilter::Trace,
        Ok(level::DEBUG) => log::LevelFilter::Debug,
        Ok(level::INFO) => log::LevelFilter::Info,
        Ok(level::WARN) => log::LevelFilter::Warn,
        Ok(level::ERROR) => log::LevelFilter::Error,
        Ok(_) => log::LevelFilter::Off,
        Err(_) => log::LevelFilter::Info,
    };
    log::set_max_level(filter);
}
