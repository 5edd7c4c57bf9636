//! `[logs]`: how long the request log keeps its rows, and how large its file may grow.

section! {
    /// `[logs]`
    "logs" => Logs, LogsPatch {
        /// Keep a row per request in `logs.db` (the access lines on stderr are apart from it).
        enabled => logs_enabled: bool = true;
        /// Requests older than this are rolled up per day, then their rows are deleted.
        retention_days => logs_retention_days: u32 = 30, range(1, 3650);
        /// The request log's file at most; past it the oldest rows go first (rolled up too).
        max_size_mb => logs_max_size_mb: u64 = 1024, range(16, 1_048_576);
    }
}
