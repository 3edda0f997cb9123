//! Bookkeeping of copies between admission and the end of their call, per
//! worker VM: the in-flight cap, the back-off, and how a call ended.

pub mod destination;
pub mod outcome;
