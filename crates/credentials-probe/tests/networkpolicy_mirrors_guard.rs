//! The Kubernetes NetworkPolicy is the egress guard's second wall: its `except:` lists in
//! `deploy/base/networkpolicy.yaml` must refuse exactly what the guard refuses by default. A
//! range added to one and not the other fails here.
//!
//! The mapping, block by block of the `credentials-api` policy's egress rules:
//! - `0.0.0.0/0` except: the guard's IPv4 ranges;
//! - `::/0` except: the guard's IPv6 ranges;
//! - `64:ff9b::/96` except: the guard's IPv4 ranges under the NAT64 prefix, since the guard
//!   judges a NAT64 address as the IPv4 address it carries (and `::/3` above refuses the
//!   prefix as a whole).
//!
//! Not expressible and so not compared: IPv4-mapped addresses (`::ffff:0:0/96`) never reach
//! the wire as IPv6, and an operator's local NAT64 prefix is per cluster (deploy/README.md says
//! to add a block like the NAT64 one for it).
//!
//! "Refuse exactly the same" is compared as coverage both ways, so a list may merge ranges
//! (169.254.169.254/32 lies in 169.254.0.0/16) but not widen or narrow them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use credentials_probe::IpRange;
use credentials_probe::egress::refused_ranges;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv6Addr};
use yaml_rust2::{Yaml, YamlLoader};

const MANIFEST: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../deploy/base/networkpolicy.yaml"
);

/// Every ipBlock of the API's egress rules: cidr -> except list.
fn api_ip_blocks() -> BTreeMap<String, Vec<IpRange>> {
    let text = std::fs::read_to_string(MANIFEST).unwrap();
    let docs = YamlLoader::load_from_str(&text).unwrap();
    let policy = docs
        .iter()
        .find(|d| {
            d["kind"].as_str() == Some("NetworkPolicy")
                && d["metadata"]["name"].as_str() == Some("credentials-api")
        })
        .expect("no NetworkPolicy credentials-api in deploy/base/networkpolicy.yaml");
    let mut blocks = BTreeMap::new();
    for rule in policy["spec"]["egress"].as_vec().unwrap() {
        for peer in rule["to"].as_vec().into_iter().flatten() {
            let block = &peer["ipBlock"];
            if block.is_badvalue() {
                continue;
            }
            let cidr = block["cidr"].as_str().unwrap().to_owned();
            let except = block["except"]
                .as_vec()
                .map(|v| v.as_slice())
                .unwrap_or_default()
                .iter()
                .map(|e| match e {
                    Yaml::String(s) => s.parse::<IpRange>().unwrap(),
                    other => panic!("{cidr}: except entry {other:?} is not a CIDR string"),
                })
                .collect();
            assert!(
                blocks.insert(cidr.clone(), except).is_none(),
                "{cidr} appears twice"
            );
        }
    }
    blocks
}

/// The guard's IPv4 range `r` as the NAT64 (64:ff9b::/96) addresses carrying it.
fn under_nat64(r: IpRange) -> IpRange {
    let IpAddr::V4(v4) = r.network() else {
        unreachable!()
    };
    let base = u128::from("64:ff9b::".parse::<Ipv6Addr>().unwrap()) | u128::from(u32::from(v4));
    format!("{}/{}", Ipv6Addr::from(base), u32::from(r.prefix()) + 96)
        .parse()
        .unwrap()
}

/// What `want` has that `got` does not cover, and the reverse, one line each.
fn differences(block: &str, want: &[IpRange], got: &[IpRange]) -> Vec<String> {
    let mut out = Vec::new();
    for w in want {
        if !got.iter().any(|g| g.covers(w)) {
            out.push(format!(
                "{block}: the guard refuses {w}, the NetworkPolicy's except list does not"
            ));
        }
    }
    for g in got {
        if !want.iter().any(|w| w.covers(g)) {
            out.push(format!(
                "{block}: the NetworkPolicy excepts {g}, which the guard does not refuse"
            ));
        }
    }
    out
}

#[test]
fn the_network_policy_refuses_what_the_guard_refuses() {
    let blocks = api_ip_blocks();
    let v4: Vec<IpRange> = refused_ranges()
        .map(|(r, _)| r)
        .filter(|r| r.network().is_ipv4())
        .collect();
    let v6: Vec<IpRange> = refused_ranges()
        .map(|(r, _)| r)
        .filter(|r| r.network().is_ipv6())
        .collect();
    let nat64: Vec<IpRange> = v4.iter().copied().map(under_nat64).collect();
    let expected = [("0.0.0.0/0", v4), ("::/0", v6), ("64:ff9b::/96", nat64)];

    let mut problems = Vec::new();
    for (cidr, want) in &expected {
        match blocks.get(*cidr) {
            Some(got) => problems.extend(differences(cidr, want, got)),
            None => problems.push(format!("no ipBlock {cidr} in the API's egress rules")),
        }
    }
    for cidr in blocks.keys() {
        if !expected.iter().any(|(c, _)| c == cidr) {
            problems.push(format!(
                "ipBlock {cidr} is not one the guard's mapping knows (see this test's header)"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_comparison_notices_a_one_sided_change() {
    // The check itself must see a range missing on either side.
    let guard: Vec<IpRange> = ["10.0.0.0/8", "169.254.169.254/32"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    let merged: Vec<IpRange> = ["10.0.0.0/8", "169.254.0.0/16"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(
        differences("t", &guard, &merged).len(),
        1,
        "169.254/16 widens"
    );
    let narrowed: Vec<IpRange> = ["10.0.0.0/9", "169.254.169.254/32"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(differences("t", &guard, &narrowed).len(), 1, "10/9 narrows");
    assert!(differences("t", &guard, &guard).is_empty());
}
