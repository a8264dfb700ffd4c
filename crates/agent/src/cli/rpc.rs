//! The `-rpc-addr` and `-rpc-auth` flags every client command takes, and connecting with them.

use std::env;

use crate::client::{RpcClient, DEFAULT_ADDR};
use crate::flags::{FlagSet, Value};

/// Where the agent is and how to authenticate; defaults come from `SERF_RPC_ADDR` and
/// `SERF_RPC_AUTH`, so scripts can set them once.
pub struct RpcFlags {
    addr: Value<String>,
    auth: Value<String>,
}

impl RpcFlags {
    pub fn new(fs: &mut FlagSet) -> Self {
        let addr = env::var("SERF_RPC_ADDR")
            .ok()
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| DEFAULT_ADDR.to_string());
        let auth = env::var("SERF_RPC_AUTH").unwrap_or_default();
        RpcFlags {
            addr: fs.string("rpc-addr", &addr),
            auth: fs.string("rpc-auth", &auth),
        }
    }

    /// Connects, or prints why not (as HashiCorp's commands do) and returns `None`.
    pub fn connect(&self) -> Option<RpcClient> {
        let client = RpcClient::connect(&self.addr.get(), &self.auth.get());
        super::or_report(client, "Error connecting to Serf agent")
    }
}
