//! Reports of a run: the console lines and summary table, `--json`, `--junit` and `--html`.

mod console;
mod html;
mod json;
mod junit;

pub use console::{
    accept_command, console_line, failure_details, informative, rerun_command, summary_table,
};
pub use html::html;
pub use json::json;
pub use junit::junit;

// One escape for the JUnit XML and the HTML report: `&<>"'` as entities, valid in both.
use fake_provider::escape_html as escape;
