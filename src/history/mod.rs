//! History, in one place: how checks are kept over months and read back
//! fast. The day partitions of `checks` (made ahead of need, dropped whole
//! by `prune`), the rollups (per site, location and hour: counts and
//! latency sketches, written in chunks by each drain batch and folded once
//! their hours end) and the sketches themselves. Depends on the message
//! alone: `store`, `drain`, `report` and `prune` use it.

pub mod partitions;
pub mod retention;
pub mod rollup;
pub mod sketch;
