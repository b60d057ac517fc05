//! Producing simulated records to a real broker (`flowwatch simulate`): placeholder.
