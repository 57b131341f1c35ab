//! Memory figures of a benchmark process, from `/proc/<pid>/status` (Linux), in MiB.

/// Peak resident set size of process `pid` (`self` for this one) so far (`VmHWM`).
pub fn peak_rss_mib(pid: &str) -> f64 {
    status_mib(pid, "VmHWM:")
}

/// Resident set size of this process now (`VmRSS`).
pub fn current_rss_mib() -> f64 {
    status_mib("self", "VmRSS:")
}

fn status_mib(pid: &str, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / 1024.0)
}
