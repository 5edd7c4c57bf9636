//! `[logs]`: how long the request log keeps its rows, and how large its file may grow.

section! {
    /// `[logs]`
    "logs" => Logs, LogsPatch {
        /// Keep a row per request in `logs.db` (the access lines on stderr are apart from it).
        enabled => logs_enabled: bool = true;
        /// On an OpenAI chat stream whose client did not ask for usage, ask the upstream for it
        /// (`stream_options.include_usage`) and take it out of what the client receives; off
        /// for a relay that refuses the option (its streams are then estimated).
        ask_usage => logs_ask_usage: bool = true;
        /// Requests older than this are rolled up per day, then their rows are deleted.
        retention_days => logs_retention_days: u32 = 30, range(1, 3650);
        /// The request log's file at most; past it the oldest rows go first (rolled up too).
        max_size_mb => logs_max_size_mb: u64 = 1024, range(16, 1_048_576);
    }
}
