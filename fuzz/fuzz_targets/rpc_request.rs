//! The agent RPC server's request decoding (crates/agent/src/server.rs): back-to-back msgpack objects
//! read with the server's `ObjectReader`, a request header, then the body its command takes,
//! and what the server parses from bodies before acting (event filters, log levels,
//! durations). Decoded once into typed bodies, once skipping bodies as the server does for a
//! client that has not authenticated.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serf_agent::filter::EventFilter;
use serf_agent::frame::ObjectReader;
use serf_proto::wire::rpc::{self, Command, RequestBody, RequestHeader};

/// Reads the body of `command` as the server does; false once the stream is unusable.
fn read_body(reader: &mut ObjectReader<&[u8]>, command: Command) -> bool {
    match command.request_body() {
        RequestBody::None => true,
        RequestBody::Handshake => reader.read::<rpc::HandshakeRequest>().is_ok(),
        RequestBody::Auth => reader.read::<rpc::AuthRequest>().is_ok(),
        RequestBody::Event => reader.read::<rpc::EventRequest>().is_ok(),
        RequestBody::ForceLeave => reader.read::<rpc::ForceLeaveRequest>().is_ok(),
        RequestBody::Join => reader.read::<rpc::JoinRequest>().is_ok(),
        RequestBody::MembersFiltered => reader.read::<rpc::MembersFilteredRequest>().is_ok(),
        RequestBody::Tags => reader.read::<rpc::TagsRequest>().is_ok(),
        RequestBody::Stream => match reader.read::<rpc::StreamRequest>() {
            Ok(req) => {
                let _ = EventFilter::parse(&req.event_type.to_string_lossy());
                true
            }
            Err(_) => false,
        },
        RequestBody::Monitor => match reader.read::<rpc::MonitorRequest>() {
            Ok(req) => {
                let level = req.log_level.to_string_lossy().to_ascii_uppercase();
                let _ = level.parse::<serf_agent::log::Level>();
                true
            }
            Err(_) => false,
        },
        RequestBody::Stop => reader.read::<rpc::StopRequest>().is_ok(),
        RequestBody::Query => reader.read::<rpc::QueryRequest>().is_ok(),
        RequestBody::Respond => reader.read::<rpc::RespondRequest>().is_ok(),
        RequestBody::Key => reader.read::<rpc::KeyRequest>().is_ok(),
        RequestBody::Coordinate => reader.read::<rpc::CoordinateRequest>().is_ok(),
    }
}

fuzz_target!(|data: &[u8]| {
    for typed in [true, false] {
        let mut reader = ObjectReader::new(data);
        while let Ok(header) = reader.read::<RequestHeader>() {
            // The server answers an unknown command and closes the connection.
            let Some(command) = Command::from_name(header.command.as_bytes()) else {
                break;
            };
            let ok = if typed {
                read_body(&mut reader, command)
            } else {
                command.request_body() == RequestBody::None || reader.skip().is_ok()
            };
            if !ok {
                break;
            }
        }
    }
});
