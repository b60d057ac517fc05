//! The HTTP surface: the JSON API (in the `api` branch) and the web page ([`page`]).

pub mod page;
