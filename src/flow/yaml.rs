//! Placeholder replaced by the spanned YAML tree.
