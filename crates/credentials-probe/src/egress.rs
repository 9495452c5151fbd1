//! The egress guard: validation and discovery connect to addresses chosen by users, from inside
//! the cluster. By default they may reach only global unicast addresses: the guard refuses every
//! range of the IANA IPv4 and IPv6 special-purpose registries that is not globally reachable
//! (loopback, private, shared, link-local, unique-local, site-local, documentation,
//! benchmarking, multicast, reserved, Teredo, ...), the cloud-metadata addresses, and IPv6
//! outside 2000::/3. Addresses that embed an IPv4 address (IPv4-mapped, NAT64 under the
//! well-known prefix or an operator's local prefix, 6to4) are judged as the embedded address,
//! so no wrapping reaches private space unseen. The table is [`refused_ranges`]; the
//! Kubernetes NetworkPolicy's `except:` lists mirror it (a test compares the two).
//!
//! The check is made on the resolved address that is actually dialled (callers connect to the
//! returned `SocketAddr`, never re-resolve), so DNS rebinding cannot slip past; redirects must
//! be checked again, hop by hop.
//!
//! An address the operator allowed (`--egress-allow`) may be reached in cleartext, since the
//! operator vouches for the network path; public addresses, and the ranges allowed with
//! `--egress-allow-verified`, get a credential only over verified TLS
//! ([`EgressPolicy::allows_cleartext`]).

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    str::FromStr,
    sync::{Arc, OnceLock},
};

/// An IP range in CIDR notation, e.g. `10.0.0.0/8` or `fd00::/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    network: IpAddr,
    prefix: u8,
}

impl IpRange {
    const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> Self {
        Self {
            network: IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
            prefix,
        }
    }

    const fn v6(segments: [u16; 8], prefix: u8) -> Self {
        let [a, b, c, d, e, f, g, h] = segments;
        Self {
            network: IpAddr::V6(Ipv6Addr::new(a, b, c, d, e, f, g, h)),
            prefix,
        }
    }

    /// The network address.
    pub fn network(&self) -> IpAddr {
        self.network
    }

    /// The prefix length in bits.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

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

    /// Whether every address of `other` lies in this range.
    pub fn covers(&self, other: &IpRange) -> bool {
        self.prefix <= other.prefix
            && self.network.is_ipv4() == other.network.is_ipv4()
            && self.contains(other.network)
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
        // An IPv4-mapped range is stored as the IPv4 range it maps, so that it matches the
        // canonical addresses `contains` compares; one wider than the mapped block stays IPv6.
        Ok(match (network, canonical(network)) {
            (IpAddr::V6(_), IpAddr::V4(v4)) if prefix >= 96 => Self {
                network: IpAddr::V4(v4),
                prefix: prefix - 96,
            },
            _ => Self { network, prefix },
        })
    }
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// An operator's local NAT64 prefix (RFC 6052: a /32, /40, /48, /56, /64 or /96), under which
/// the guard reads the embedded IPv4 address and judges that one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nat64Prefix(IpRange);

impl Nat64Prefix {
    /// The well-known prefix 64:ff9b::/96 (RFC 6052), always unwrapped.
    pub const WELL_KNOWN: Nat64Prefix =
        Nat64Prefix(IpRange::v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96));

    /// The range the prefix covers.
    pub fn range(&self) -> IpRange {
        self.0
    }

    /// The IPv4 address embedded in `ip`, if `ip` is under this prefix. RFC 6052 section 2.2:
    /// the address follows the prefix, skipping bits 64-71 (the "u" octet).
    pub fn embedded(&self, ip: Ipv6Addr) -> Option<Ipv4Addr> {
        if !self.0.contains(IpAddr::V6(ip)) {
            return None;
        }
        let octets = ip.octets();
        let mut v4 = [0u8; 4];
        let mut at = usize::from(self.0.prefix / 8);
        for byte in &mut v4 {
            if at == 8 {
                at += 1;
            }
            *byte = *octets.get(at)?;
            at += 1;
        }
        Some(Ipv4Addr::from(v4))
    }
}

impl FromStr for Nat64Prefix {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let range: IpRange = s.parse()?;
        match range.network {
            IpAddr::V6(_) if [32, 40, 48, 56, 64, 96].contains(&range.prefix) => Ok(Self(range)),
            _ => Err(format!(
                "{s:?} is not a NAT64 prefix: an IPv6 /32, /40, /48, /56, /64 or /96 (RFC 6052)"
            )),
        }
    }
}

impl fmt::Display for Nat64Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Why a destination is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EgressError {
    /// The address is in a range the policy refuses.
    #[error(
        "{addr} is refused by the egress policy ({class} range); an operator can allow it with --egress-allow {suggestion}"
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

/// Which destinations probes may connect to, and which certificate authorities their TLS trusts.
#[derive(Debug, Clone, Default)]
pub struct EgressPolicy {
    allowed: Vec<IpRange>,
    allowed_verified: Vec<IpRange>,
    nat64: Vec<Nat64Prefix>,
    trust: Option<Trust>,
}

/// The public roots plus an operator's CA certificates.
#[derive(Clone)]
struct Trust {
    roots: Arc<RootCertStore>,
    extra: Arc<[CertificateDer<'static>]>,
}

impl fmt::Debug for Trust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Trust {{ extra CAs: {} }}", self.extra.len())
    }
}

/// Mozilla's roots (webpki-roots), built once.
fn public_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            Arc::new(RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            })
        })
        .clone()
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

/// The IPv4 ranges refused by default, most specific first: the IANA IPv4 special-purpose
/// registry's ranges that are not globally reachable (AS112, AMT and the anycast services of
/// 192.0.0.0/24 are reachable but too odd to be a probe's target), plus cloud metadata.
const V4_REFUSED: &[(IpRange, &str)] = &[
    (IpRange::v4(169, 254, 169, 254, 32), "cloud-metadata"),
    (IpRange::v4(100, 100, 100, 200, 32), "cloud-metadata"),
    (IpRange::v4(0, 0, 0, 0, 8), "unspecified"),
    (IpRange::v4(10, 0, 0, 0, 8), "private"),
    (IpRange::v4(100, 64, 0, 0, 10), "shared (carrier-grade NAT)"),
    (IpRange::v4(127, 0, 0, 0, 8), "loopback"),
    (IpRange::v4(169, 254, 0, 0, 16), "link-local"),
    (IpRange::v4(172, 16, 0, 0, 12), "private"),
    (IpRange::v4(192, 0, 0, 0, 24), "IETF protocol"),
    (IpRange::v4(192, 0, 2, 0, 24), "documentation"),
    (IpRange::v4(192, 88, 99, 0, 24), "6to4 relay anycast"),
    (IpRange::v4(192, 168, 0, 0, 16), "private"),
    (IpRange::v4(198, 18, 0, 0, 15), "benchmarking"),
    (IpRange::v4(198, 51, 100, 0, 24), "documentation"),
    (IpRange::v4(203, 0, 113, 0, 24), "documentation"),
    (IpRange::v4(224, 0, 0, 0, 4), "multicast"),
    (IpRange::v4(240, 0, 0, 0, 4), "reserved"),
];

/// The IPv6 ranges refused by default, most specific first: the IANA IPv6 special-purpose
/// registry's ranges that are not globally reachable, the deprecated site-local and 6to4
/// spaces, and everything outside global unicast (2000::/3). NAT64 addresses under the
/// well-known or a configured prefix never get here: they are judged as their IPv4 address.
const V6_REFUSED: &[(IpRange, &str)] = &[
    (
        IpRange::v6([0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254], 128),
        "cloud-metadata",
    ),
    (IpRange::v6([0, 0, 0, 0, 0, 0, 0, 0], 128), "unspecified"),
    (IpRange::v6([0, 0, 0, 0, 0, 0, 0, 1], 128), "loopback"),
    (
        IpRange::v6([0, 0, 0, 0, 0, 0, 0, 0], 96),
        "IPv4-compatible (deprecated)",
    ),
    (
        IpRange::v6([0, 0, 0, 0, 0xffff, 0, 0, 0], 96),
        "IPv4-translated",
    ),
    (
        IpRange::v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48),
        "local-use NAT64 (see --egress-nat64-prefix)",
    ),
    (
        IpRange::v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64),
        "discard-only",
    ),
    (IpRange::v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 32), "Teredo"),
    (
        IpRange::v6([0x2001, 2, 0, 0, 0, 0, 0, 0], 48),
        "benchmarking",
    ),
    (
        IpRange::v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23),
        "IETF protocol",
    ),
    (
        IpRange::v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32),
        "documentation",
    ),
    (
        IpRange::v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16),
        "6to4 (deprecated)",
    ),
    (
        IpRange::v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20),
        "documentation",
    ),
    (
        IpRange::v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7),
        "unique-local",
    ),
    (IpRange::v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10), "link-local"),
    (
        IpRange::v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10),
        "site-local (deprecated)",
    ),
    (IpRange::v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8), "multicast"),
    (
        IpRange::v6([0, 0, 0, 0, 0, 0, 0, 0], 3),
        "reserved (not global unicast)",
    ),
    (
        IpRange::v6([0x4000, 0, 0, 0, 0, 0, 0, 0], 2),
        "reserved (not global unicast)",
    ),
    (
        IpRange::v6([0x8000, 0, 0, 0, 0, 0, 0, 0], 1),
        "reserved (not global unicast)",
    ),
];

/// Every range the default policy refuses, with its class, most specific first within each
/// family. IPv4-mapped (::ffff:0:0/96) and NAT64 (64:ff9b::/96) addresses are not listed:
/// they are judged as the IPv4 address they carry.
pub fn refused_ranges() -> impl Iterator<Item = (IpRange, &'static str)> {
    V4_REFUSED.iter().chain(V6_REFUSED).copied()
}

fn class_in(table: &[(IpRange, &'static str)], ip: IpAddr) -> Option<&'static str> {
    table
        .iter()
        .find(|(range, _)| range.contains(ip))
        .map(|(_, class)| *class)
}

impl EgressPolicy {
    /// The default policy: public addresses only.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also allows these ranges (operators' explicit exceptions; tests allow loopback). Probes
    /// may reach them in cleartext, as the operator vouches for the path.
    pub fn allow(mut self, ranges: impl IntoIterator<Item = IpRange>) -> Self {
        self.allowed.extend(ranges);
        self
    }

    /// Also allows these ranges, but only as public addresses are reached: a credential goes
    /// there over verified TLS only, never in cleartext.
    pub fn allow_verified(mut self, ranges: impl IntoIterator<Item = IpRange>) -> Self {
        self.allowed_verified.extend(ranges);
        self
    }

    /// Local NAT64 prefixes (besides the well-known 64:ff9b::/96): addresses under them are
    /// judged as the IPv4 address they embed.
    pub fn nat64_prefixes(mut self, prefixes: impl IntoIterator<Item = Nat64Prefix>) -> Self {
        self.nat64.extend(prefixes);
        // The longest prefix decides when one configured prefix lies inside another.
        self.nat64.sort_by_key(|p| std::cmp::Reverse(p.0.prefix));
        self
    }

    /// Also trusts the CA certificates of this PEM text for probes' TLS (a database whose
    /// certificate a private CA signs, such as Amazon RDS or Cloud SQL). Fails on text that holds
    /// no certificate or one that cannot be a trust anchor.
    pub fn trust_pem(mut self, pem: &[u8]) -> Result<Self, String> {
        let mut roots = RootCertStore::clone(&self.roots());
        let mut extra: Vec<CertificateDer<'static>> = self.extra_roots().to_vec();
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|_| "the CA file is not valid PEM".to_owned())?;
            roots
                .add(cert.clone())
                .map_err(|e| format!("a certificate of the CA file cannot be a root: {e}"))?;
            extra.push(cert);
            added += 1;
        }
        if added == 0 {
            return Err("the CA file holds no certificate".to_owned());
        }
        self.trust = Some(Trust {
            roots: Arc::new(roots),
            extra: extra.into(),
        });
        Ok(self)
    }

    /// The roots probes' TLS trusts: Mozilla's, plus any given to [`EgressPolicy::trust_pem`].
    pub fn roots(&self) -> Arc<RootCertStore> {
        self.trust
            .as_ref()
            .map_or_else(public_roots, |t| t.roots.clone())
    }

    /// The CA certificates trusted besides Mozilla's roots.
    pub fn extra_roots(&self) -> &[CertificateDer<'static>] {
        self.trust.as_ref().map_or(&[], |t| &t.extra)
    }

    /// The address the guard judges `ip` as: the IPv4 address inside an IPv4-mapped or NAT64
    /// address, `ip` itself otherwise.
    fn judged(&self, ip: IpAddr) -> IpAddr {
        match canonical(ip) {
            IpAddr::V6(v6) => self
                .nat64
                .iter()
                .chain([&Nat64Prefix::WELL_KNOWN])
                .find_map(|p| p.embedded(v6))
                .map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        }
    }

    /// The class of a non-public address (judged as the IPv4 address it embeds, if any), or
    /// `None` for a public one; whether it is allowed is not considered.
    pub fn class(&self, ip: IpAddr) -> Option<&'static str> {
        match self.judged(ip) {
            v4 @ IpAddr::V4(_) => class_in(V4_REFUSED, v4),
            v6 @ IpAddr::V6(_) => class_in(V6_REFUSED, v6),
        }
    }

    fn in_any(ranges: &[IpRange], ip: IpAddr, judged: IpAddr) -> bool {
        ranges.iter().any(|r| r.contains(ip) || r.contains(judged))
    }

    /// Whether a credential may be sent to `ip` without verified TLS: only to an address the
    /// default policy refuses and the operator allowed with [`EgressPolicy::allow`] (not
    /// [`EgressPolicy::allow_verified`]). Call it with an address [`EgressPolicy::check`]
    /// passed.
    pub fn allows_cleartext(&self, ip: IpAddr) -> bool {
        let judged = self.judged(ip);
        self.class(ip).is_some()
            && Self::in_any(&self.allowed, ip, judged)
            && !Self::in_any(&self.allowed_verified, ip, judged)
    }

    /// Checks one address that is about to be dialled.
    pub fn check(&self, ip: IpAddr) -> Result<(), EgressError> {
        let Some(class) = self.class(ip) else {
            return Ok(());
        };
        let judged = self.judged(ip);
        if Self::in_any(&self.allowed, ip, judged)
            || Self::in_any(&self.allowed_verified, ip, judged)
        {
            return Ok(());
        }
        let suggestion = match judged {
            IpAddr::V4(v4) => format!("{v4}/32"),
            IpAddr::V6(v6) => format!("{v6}/128"),
        };
        Err(EgressError::Refused {
            addr: canonical(ip),
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

    fn refused_class(policy: &EgressPolicy, addr: &str) -> Option<&'static str> {
        match policy.check(ip(addr)) {
            Err(EgressError::Refused { class, .. }) => Some(class),
            Ok(()) => None,
            Err(other) => panic!("{addr}: {other:?}"),
        }
    }

    /// One row per refused range (IANA IPv4/IPv6 special-purpose registries, cloud metadata,
    /// and the IPv6 forms that wrap an IPv4 address), with an address inside it.
    const REFUSED: &[(&str, &str)] = &[
        // IPv4.
        ("127.0.0.1", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "cloud-metadata"),
        ("100.100.100.200", "cloud-metadata"),
        ("169.254.1.1", "link-local"),
        ("100.64.0.1", "shared (carrier-grade NAT)"),
        ("100.127.255.254", "shared (carrier-grade NAT)"),
        ("0.0.0.0", "unspecified"),
        ("0.1.2.3", "unspecified"),
        ("192.0.0.8", "IETF protocol"),
        ("192.0.2.10", "documentation"),
        ("198.51.100.7", "documentation"),
        ("203.0.113.9", "documentation"),
        ("192.88.99.1", "6to4 relay anycast"),
        ("198.18.0.1", "benchmarking"),
        ("198.19.255.254", "benchmarking"),
        ("224.0.0.251", "multicast"),
        ("239.255.255.250", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        // IPv6.
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fd00::1", "unique-local"),
        ("fc00::1", "unique-local"),
        ("fe80::1", "link-local"),
        ("fec0::1", "site-local (deprecated)"),
        ("ff02::1", "multicast"),
        ("fd00:ec2::254", "cloud-metadata"),
        ("100::1", "discard-only"),
        ("2001:db8::1", "documentation"),
        ("3fff::1", "documentation"),
        ("2001:2::1", "benchmarking"),
        ("2001:10::1", "IETF protocol"),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"),
        ("5f00::1", "reserved (not global unicast)"),
        ("1::1", "reserved (not global unicast)"),
        ("c000::1", "reserved (not global unicast)"),
        // IPv4 inside IPv6: mapped and NAT64 judged as the embedded address, the rest refused.
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.1.2.3", "private"),
        ("64:ff9b::a00:1", "private"),
        ("64:ff9b::169.254.169.254", "cloud-metadata"),
        ("::127.0.0.1", "IPv4-compatible (deprecated)"),
        ("::8.8.8.8", "IPv4-compatible (deprecated)"),
        ("::ffff:0:10.0.0.1", "IPv4-translated"),
        ("::ffff:0:8.8.8.8", "IPv4-translated"),
        (
            "64:ff9b:1::a00:1",
            "local-use NAT64 (see --egress-nat64-prefix)",
        ),
        ("2002:a00:1::1", "6to4 (deprecated)"),
        ("2002:7f00:1::1", "6to4 (deprecated)"),
    ];

    #[test]
    fn default_policy_refuses_every_special_purpose_range() {
        let policy = EgressPolicy::new();
        let wrong: Vec<String> = REFUSED
            .iter()
            .filter_map(|(addr, class)| {
                let got = refused_class(&policy, addr);
                (got != Some(*class)).then(|| format!("{addr}: want {class:?}, got {got:?}"))
            })
            .collect();
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
        for public in [
            "8.8.8.8",
            "1.1.1.1",
            "100.63.255.255",
            "100.128.0.1",
            "192.0.1.1",
            "198.17.255.255",
            "198.20.0.1",
            "223.255.255.255",
            "2606:4700:4700::1111",
            "2a00:1450:4001::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert_eq!(policy.check(ip(public)), Ok(()), "{public}");
        }
    }

    #[test]
    fn every_table_row_is_exercised() {
        for (range, class) in refused_ranges() {
            assert!(
                REFUSED
                    .iter()
                    .any(|(addr, c)| c == &class && range.contains(ip(addr))),
                "no test address for {range} ({class})"
            );
        }
    }

    #[test]
    fn a_local_nat64_prefix_is_judged_by_the_embedded_address() {
        // RFC 6052 section 2.4's examples: 192.0.2.33 under each prefix length.
        for (prefix, addr) in [
            ("2001:db8::/32", "2001:db8:c000:221::"),
            ("2001:db8:100::/40", "2001:db8:1c0:2:21::"),
            ("2001:db8:122::/48", "2001:db8:122:c000:2:2100::"),
            ("2001:db8:122:300::/56", "2001:db8:122:3c0:0:221::"),
            ("2001:db8:122:344::/64", "2001:db8:122:344:c0:2:2100:0"),
            ("2001:db8:122:344::/96", "2001:db8:122:344::192.0.2.33"),
        ] {
            let p: Nat64Prefix = prefix.parse().unwrap();
            let v6: Ipv6Addr = addr.parse().unwrap();
            assert_eq!(
                p.embedded(v6),
                Some(Ipv4Addr::new(192, 0, 2, 33)),
                "{prefix}"
            );
        }
        let policy = EgressPolicy::new().nat64_prefixes(["64:ff9b:1:fffe::/96".parse().unwrap()]);
        assert_eq!(
            refused_class(&policy, "64:ff9b:1:fffe::a00:1"),
            Some("private")
        );
        assert_eq!(
            refused_class(&policy, "64:ff9b:1:fffe::169.254.169.254"),
            Some("cloud-metadata")
        );
        assert_eq!(refused_class(&policy, "64:ff9b:1:fffe::8.8.8.8"), None);
        // Outside the configured prefix the local-use block stays refused.
        assert_eq!(
            refused_class(&policy, "64:ff9b:1:1::8.8.8.8"),
            Some("local-use NAT64 (see --egress-nat64-prefix)")
        );
        // Allowing the IPv4 range allows it through NAT64 too.
        let allowed = policy.clone().allow(["10.0.0.0/8".parse().unwrap()]);
        assert!(allowed.check(ip("64:ff9b:1:fffe::a00:1")).is_ok());
        assert!(allowed.check(ip("64:ff9b::a00:1")).is_ok());
        for bad in ["10.0.0.0/8", "64:ff9b::/97", "64:ff9b::/33", "nope"] {
            assert!(bad.parse::<Nat64Prefix>().is_err(), "{bad}");
        }
    }

    #[test]
    fn cleartext_only_to_ranges_the_operator_allowed_for_it() {
        let policy = EgressPolicy::new()
            .allow(["10.0.0.0/8".parse().unwrap()])
            .allow_verified(["127.0.0.0/8".parse().unwrap()]);
        assert!(policy.allows_cleartext(ip("10.1.2.3")));
        assert!(policy.allows_cleartext(ip("64:ff9b::a01:203")));
        assert!(policy.check(ip("127.0.0.1")).is_ok());
        assert!(!policy.allows_cleartext(ip("127.0.0.1")));
        assert!(!policy.allows_cleartext(ip("8.8.8.8")));
        // A public address is public even inside an allowed range.
        let wide = EgressPolicy::new().allow(["0.0.0.0/0".parse().unwrap()]);
        assert!(!wide.allows_cleartext(ip("8.8.8.8")));
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
    fn a_ca_file_without_a_certificate_is_refused() {
        for bad in [
            &b""[..],
            b"not pem at all",
            b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
        ] {
            assert!(EgressPolicy::new().trust_pem(bad).is_err(), "{bad:?}");
        }
        assert!(EgressPolicy::new().extra_roots().is_empty());
        assert!(!EgressPolicy::new().roots().is_empty());
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
        assert_eq!(
            "::ffff:10.0.0.0/104"
                .parse::<IpRange>()
                .unwrap()
                .to_string(),
            "10.0.0.0/8"
        );
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
