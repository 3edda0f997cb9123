//! Per-request mirroring logic, free of host calls: which mirrors a request
//! goes to ([`decide`]), what its copy carries, and the bounded copy of its
//! body.

pub mod body;
pub mod decide;
pub mod request;
pub mod select;
