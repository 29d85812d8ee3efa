//! What people and tools read: the [`diff`] as text, JUnit and GitHub commands, the HTML
//! report ([`html`]), the CI job [`summary`] (Markdown), the text [`timeline`], and the [`text`] helpers (tables, times, sizes)
//! they share with the binary's other commands.

pub mod diff;
pub mod html;
pub mod summary;
pub mod text;
pub mod timeline;
