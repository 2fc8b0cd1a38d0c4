//! The gRPC server's settings: where it listens (`--grpc ADDR` or `off`)
//! and its limits beyond the HTTP server's connection limits.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::state::SharedState;

/// Where the gRPC server listens: an address, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrpcListen {
    /// No gRPC server.
    Off,
    /// Listen on this address.
    On(SocketAddr),
}

impl Default for GrpcListen {
    fn default() -> Self {
        GrpcListen::On(SocketAddr::from(([127, 0, 0, 1], 8081)))
    }
}

impl FromStr for GrpcListen {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s.trim().eq_ignore_ascii_case("off") {
            return Ok(GrpcListen::Off);
        }
        s.trim().parse().map(GrpcListen::On).map_err(|_| {
            format!("gRPC address must be HOST:PORT (e.g. 127.0.0.1:8081) or off, got {s:?}")
        })
    }
}

impl fmt::Display for GrpcListen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GrpcListen::Off => f.write_str("off"),
            GrpcListen::On(address) => address.fmt(f),
        }
    }
}

/// Limits of the gRPC server beyond the HTTP server's connection limits.
#[derive(Debug, Clone)]
pub struct GrpcOptions {
    /// Largest message accepted, in bytes; a larger one is refused with
    /// `RESOURCE_EXHAUSTED` before it is read into memory.
    pub max_message_bytes: usize,
    /// Calls (streams) at once on one connection.
    pub max_concurrent_streams: u32,
    /// Requests of one `ModelStreamInfer` stream served at once.
    pub stream_in_flight: usize,
    /// How often an idle connection is pinged.
    pub keepalive_interval: Duration,
    /// How long a ping may go unanswered before the connection is closed.
    pub keepalive_timeout: Duration,
}

impl GrpcOptions {
    /// The defaults for `state`: messages up to its largest HTTP body.
    pub fn for_state(state: &SharedState) -> Self {
        GrpcOptions {
            max_message_bytes: state.config.max_body_bytes,
            max_concurrent_streams: 1024,
            stream_in_flight: 128,
            keepalive_interval: Duration::from_secs(60),
            keepalive_timeout: Duration::from_secs(20),
        }
    }
}

impl Serialize for GrpcListen {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for GrpcListen {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_parses_addresses_and_off() {
        assert_eq!("off".parse::<GrpcListen>(), Ok(GrpcListen::Off));
        assert_eq!(
            "0.0.0.0:9000".parse::<GrpcListen>(),
            Ok(GrpcListen::On(SocketAddr::from(([0, 0, 0, 0], 9000))))
        );
        let e = "nowhere".parse::<GrpcListen>().expect_err("not an address");
        assert!(e.contains("HOST:PORT"), "{e}");
        assert_eq!(GrpcListen::default().to_string(), "127.0.0.1:8081");
    }
}
