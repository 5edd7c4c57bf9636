//! Switchboard's admin UI: Leptos, rendered in the browser (wasm). It talks only to the admin
//! API; in the desktop window it gets the address and a token from the shell, in a browser it
//! logs in.

mod api;
mod app;
mod form;
mod i18n;
mod pages;
mod util;

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(app::App);
}
