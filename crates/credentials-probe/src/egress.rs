//! The egress guard: validation and discovery connect to addresses chosen by users, from inside
//! the cluster. By default they may not reach loopback, private, link-local, unique-local,
//! shared, multicast or cloud-metadata addresses. The check is made on the resolved address that
//! is actually dialled (callers connect to the returned `SocketAddr`, never re-resolve), so DNS
//! rebinding cannot slip past; redirects must be checked again, hop by hop.

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    str::FromStr,
};

/// An IP range in CIDR notation, e.g. `10.0.0.0/8` or `fd00::/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    network: IpAddr,
    prefix: u8,
}

impl IpRange {
    /// Whether `ip` lies in the range (an IPv4-mapped IPv6 address counts as its IPv4 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for IpRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let network: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not an IP range like 10.0.0.0/8"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: the prefix must be 0-{max}"))?,
        };
        Ok(Self {
            network: canonical(network),
            prefix,
        })
    }
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// Why a destination is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EgressError {
    /// The address is in a range the policy refuses.
    #[error(
        "{addr} is a {class} address, which the egress policy refuses; an operator can allow it with --egress-allow {suggestion}"
    )]
    Refused {
        /// The refused address.
        addr: IpAddr,
        /// What kind of address it is, e.g. `loopback`.
        class: &'static str,
        /// A range that would allow it.
        suggestion: String,
    },
    /// The name did not resolve.
    #[error("{host} does not resolve")]
    Unresolvable {
        /// The host name.
        host: String,
    },
}

/// Which destinations probes may connect to.
#[derive(Debug, Clone, Default)]
pub struct EgressPolicy {
    allowed: Vec<IpRange>,
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// The class of a non-public address, or `None` for a public one.
pub fn special_class(ip: IpAddr) -> Option<&'static str> {
    match canonical(ip) {
        IpAddr::V4(v4) => v4_class(v4),
        IpAddr::V6(v6) => v6_class(v6),
    }
}

fn v4_class(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    Some(match () {
        _ if ip == Ipv4Addr::new(169, 254, 169, 254) || ip == Ipv4Addr::new(100, 100, 100, 200) => {
            "cloud-metadata"
        }
        _ if ip.is_loopback() => "loopback",
        _ if ip.is_private() => "private",
        _ if ip.is_link_local() => "link-local",
        _ if a == 100 && (64..128).contains(&b) => "shared (carrier-grade NAT)",
        _ if ip.is_unspecified() || a == 0 => "unspecified",
        _ if ip.is_broadcast() || ip.is_multicast() || a >= 240 => "multicast or reserved",
        _ if a == 192 && b == 0 && ip.octets()[2] == 0 => "IETF protocol",
        _ if (a == 198 && (b == 18 || b == 19)) => "benchmarking",
        _ if ip.is_documentation() => "documentation",
        _ => return None,
    })
}

fn v6_class(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    Some(match () {
        _ if ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) => "cloud-metadata",
        _ if ip.is_loopback() => "loopback",
        _ if ip.is_unspecified() => "unspecified",
        _ if first & 0xfe00 == 0xfc00 => "unique-local",
        _ if first & 0xffc0 == 0xfe80 => "link-local",
        _ if first & 0xff00 == 0xff00 => "multicast",
        _ if first == 0x2001 && ip.segments()[1] == 0x0db8 => "documentation",
        // 64:ff9b::/96 embeds an IPv4 address: judge that one.
        _ if first == 0x0064 && ip.segments()[1] == 0xff9b => {
            let [.., a, b, c, d] = ip.octets();
            return v4_class(Ipv4Addr::new(a, b, c, d));
        }
        _ => return None,
    })
}

impl EgressPolicy {
    /// The default policy: public addresses only.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also allows these ranges (operators' explicit exceptions; tests allow loopback).
    pub fn allow(mut self, ranges: impl IntoIterator<Item = IpRange>) -> Self {
        self.allowed.extend(ranges);
        self
    }

    /// Checks one address that is about to be dialled.
    pub fn check(&self, ip: IpAddr) -> Result<(), EgressError> {
        let Some(class) = special_class(ip) else {
            return Ok(());
        };
        if self.allowed.iter().any(|r| r.contains(ip)) {
            return Ok(());
        }
        let ip = canonical(ip);
        let suggestion = match ip {
            IpAddr::V4(v4) => format!("{v4}/32"),
            IpAddr::V6(v6) => format!("{v6}/128"),
        };
        Err(EgressError::Refused {
            addr: ip,
            class,
            suggestion,
        })
    }

    /// Resolves `host:port` and returns the addresses that may be dialled, in resolver order.
    /// Fails with the first refusal when every address is refused, so the message says why.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, EgressError> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((host, port))
                .await
                .map_err(|_| EgressError::Unresolvable {
                    host: host.to_owned(),
                })?
                .collect(),
        };
        let mut first_refusal = None;
        let allowed: Vec<SocketAddr> = addrs
            .into_iter()
            .filter(|a| match self.check(a.ip()) {
                Ok(()) => true,
                Err(e) => {
                    first_refusal.get_or_insert(e);
                    false
                }
            })
            .collect();
        match (allowed.is_empty(), first_refusal) {
            (true, Some(e)) => Err(e),
            (true, None) => Err(EgressError::Unresolvable {
                host: host.to_owned(),
            }),
            (false, _) => Ok(allowed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn default_policy_refuses_internal_addresses() {
        let policy = EgressPolicy::new();
        for (addr, class) in [
            ("127.0.0.1", "loopback"),
            ("10.0.0.1", "private"),
            ("172.16.5.4", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "cloud-metadata"),
            ("169.254.1.1", "link-local"),
            ("100.64.0.1", "shared (carrier-grade NAT)"),
            ("0.0.0.0", "unspecified"),
            ("::1", "loopback"),
            ("fd00::1", "unique-local"),
            ("fe80::1", "link-local"),
            ("fd00:ec2::254", "cloud-metadata"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:10.1.2.3", "private"),
            ("64:ff9b::a00:1", "private"),
        ] {
            match policy.check(ip(addr)) {
                Err(EgressError::Refused { class: c, .. }) => assert_eq!(c, class, "{addr}"),
                other => panic!("{addr}: {other:?}"),
            }
        }
        for public in [
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert_eq!(policy.check(ip(public)), Ok(()), "{public}");
        }
    }

    #[test]
    fn allowed_ranges_open_exactly_those_addresses() {
        let policy = EgressPolicy::new()
            .allow(["127.0.0.0/8".parse().unwrap(), "fd00::/8".parse().unwrap()]);
        assert!(policy.check(ip("127.0.0.1")).is_ok());
        assert!(policy.check(ip("::ffff:127.0.0.2")).is_ok());
        assert!(policy.check(ip("fd12::3")).is_ok());
        assert!(policy.check(ip("10.0.0.1")).is_err());
        assert!(policy.check(ip("::1")).is_err());
    }

    #[test]
    fn refusals_say_how_to_allow() {
        let err = EgressPolicy::new()
            .check(ip("169.254.169.254"))
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("cloud-metadata") && text.contains("--egress-allow 169.254.169.254/32"),
            "{text}"
        );
    }

    #[test]
    fn ranges_parse() {
        assert_eq!(
            "10.0.0.0/8".parse::<IpRange>().unwrap().to_string(),
            "10.0.0.0/8"
        );
        assert_eq!("::1".parse::<IpRange>().unwrap().to_string(), "::1/128");
        for bad in ["10.0.0.0/33", "nope", "10.0.0.0/x", "::/129"] {
            assert!(bad.parse::<IpRange>().is_err(), "{bad}");
        }
        let zero: IpRange = "0.0.0.0/0".parse().unwrap();
        assert!(zero.contains(ip("10.1.1.1")));
    }

    #[tokio::test]
    async fn names_are_checked_on_what_they_resolve_to() {
        let policy = EgressPolicy::new();
        let err = policy.resolve("localhost", 80).await.unwrap_err();
        assert!(
            matches!(
                err,
                EgressError::Refused {
                    class: "loopback",
                    ..
                }
            ),
            "{err:?}"
        );
        let open =
            EgressPolicy::new().allow(["127.0.0.0/8".parse().unwrap(), "::1".parse().unwrap()]);
        let addrs = open.resolve("localhost", 80).await.unwrap();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()));
        assert!(matches!(
            policy.resolve("no-such-host.invalid", 80).await,
            Err(EgressError::Unresolvable { .. })
        ));
    }
}
