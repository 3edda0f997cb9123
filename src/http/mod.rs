//! HTTP and gRPC vocabulary shared by the layers above: pure parsing of what
//! protocol stacks put on the wire, with no policy of its own.

pub mod grpc;
