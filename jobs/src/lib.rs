//! Schedules (ISO8601 repeating intervals, cron, time zones), dependency DAGs and retry policy: a pure library with no I/O. (Built by the jobs issue.)
