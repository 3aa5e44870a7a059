//! Host name patterns, in the one grammar the gateway uses too (a server's egress list, a credential's hosts):
//! `api.example.com` (exact), `*.example.com` (exactly one label before the domain) or `**.example.com` (one
//! label or more). The apex is never implied and a wildcard is only ever the whole first label. Comparison is
//! case-insensitive and ignores a trailing dot. The parser is the gateway's own (`gigmcp-hostpattern`), so a
//! pattern means the same hosts in a plugin's configuration as in `gigmcp server add --egress`.

pub use gigmcp_hostpattern::{Depth, HostPattern, PatternError, split_host_port};
