//! `[logs]`: how long the request log keeps its rows, how large its file may grow, and
//! whether it keeps bodies.

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
        /// Keep each request's body and its answer (a stream reassembled into the final
        /// message), for the detail view; never headers or keys.
        capture_bodies => logs_capture_bodies: bool = false;
        /// Each captured body at most; longer ones are cut with a mark saying how much.
        body_max_kb => logs_body_max_kb: u32 = 64, range(1, 4096);
        /// Captured bodies are deleted after this many days (their rows stay).
        body_retention_days => logs_body_retention_days: u32 = 7, range(1, 3650);
    }
}
