// Loads the wasm bundle. A file of its own: the pages' Content-Security-Policy allows no inline
// script.
import init from "./switchboard-ui.js";
init();
