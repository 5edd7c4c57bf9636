//! `[server]`: where the gateway listens, and what it accepts from clients.

use std::time::Duration;

pub const DEFAULT_HOST: &str = "127.0.0.1";
pub const DEFAULT_PORT: u16 = 7340;

section! {
    /// `[server]`
    "server" => Server, ServerPatch {
        /// The address to listen on; applies at the next start.
        host => host: String = DEFAULT_HOST.to_owned();
        /// Applies at the next start; 0 (from `--port 0`) is any free port.
        port => port: u16 = DEFAULT_PORT;
        request_timeout_s => request_timeout_s: u64 = 120, range(1, 86_400);
        max_body_mb => max_body_mb: u64 = 32, range(1, 1024);
        /// Web origins (`https://chat.example`, or `*`) whose pages may call the client API; any
        /// other foreign Origin or Host is refused.
        allowed_origins => allowed_origins: Vec<String> = Vec::new();
        /// How long a connection may wait for a request's headers, idle keep-alive included.
        header_timeout_s => header_timeout_s: u64 = 30, range(1, 3600);
        /// How long reading one request body may take.
        body_timeout_s => body_timeout_s: u64 = 60, range(1, 3600);
        /// Open client connections at once; more are refused (and logged).
        max_connections => max_connections: u32 = 1024, range(16, 1_000_000);
        /// Request-body bytes held at once across all requests; a body waits for room.
        body_budget_mb => body_budget_mb: u64 = 256, range(1, 65_536);
    }
}

impl Server {
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_s)
    }

    pub fn header_timeout(&self) -> Duration {
        Duration::from_secs(self.header_timeout_s.max(1))
    }

    pub fn body_timeout(&self) -> Duration {
        Duration::from_secs(self.body_timeout_s.max(1))
    }

    pub fn max_body_bytes(&self) -> usize {
        usize::try_from(self.max_body_mb.saturating_mul(1024 * 1024)).unwrap_or(usize::MAX)
    }
}
