//! The state store from outside: crash safety under `kill -9` (`torture`) and full or
//! read-only devices (`space`, on a small tmpfs, which needs root as in CI). The behaviour every
//! backend shares is tested in the library (`store::tests`).

mod space;
mod torture;
