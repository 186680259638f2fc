//! One storage watch per resource fanned out to every client, with a history window.
