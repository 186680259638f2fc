//! Label and field selectors: parse, match, render.
