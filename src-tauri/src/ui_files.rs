//! The built admin UI (`ui/dist`), embedded by build.rs; empty when it was not built.

use switchboard_gateway::UiFile;

include!(concat!(env!("OUT_DIR"), "/ui_files.rs"));
