//! Types of Switchboard's admin API (`/api`), shared by the engine and the Leptos admin UI so
//! both sides agree on the JSON. The admin endpoints arrive with the routing and desktop issues;
//! until then this crate only fixes the dependency direction (gateway -> api, ui -> api).
