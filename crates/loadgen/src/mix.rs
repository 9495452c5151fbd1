//! Operations and weighted mixes of them (`access=90,create=10`).

use std::fmt;
use std::str::FromStr;

/// One kind of request the load generator sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
pub enum Op {
    /// `AccessService/AccessCredential` (plaintext) of a random known credential.
    Access,
    /// `CredentialsService/GetCredential` of a random known credential.
    Get,
    /// `CredentialsService/ListCredentials`, one page per request.
    List,
    /// `CredentialsService/CreateCredential` with a fresh name and value.
    Create,
    /// `CredentialsService/UpdateCredential` of a random known credential with a new value.
    Update,
    /// `GetCredential` over the HTTP/JSON port (`GET /v1/workspaces/{ws}/credentials/{id}` on
    /// --http-target, HTTP/1.1 keep-alive): what the JSON mapping adds to `get`.
    #[value(name = "http-get")]
    HttpGet,
}

impl Op {
    /// Every operation, in report order.
    pub const ALL: [Op; 6] = [
        Op::Access,
        Op::Get,
        Op::List,
        Op::Create,
        Op::Update,
        Op::HttpGet,
    ];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Get => "get",
            Op::List => "list",
            Op::Update => "update",
            Op::Access => "access",
            Op::HttpGet => "http-get",
        }
    }

    /// Whether the operation needs existing credentials to pick from.
    pub fn needs_existing(self) -> bool {
        matches!(self, Op::Get | Op::Update | Op::Access | Op::HttpGet)
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Op {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Op::ALL
            .into_iter()
            .find(|op| op.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown operation {s:?}: use create, get, list, update, access or http-get"
                )
            })
    }
}

/// A weighted choice of operations; weights are relative (`access=9,create=1` is 90/10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mix {
    /// Operations with a weight above zero, and the running total of weights up to each.
    entries: Vec<(Op, u64)>,
    total: u64,
}

impl Mix {
    /// A mix of one operation.
    pub fn single(op: Op) -> Self {
        Self {
            entries: vec![(op, 1)],
            total: 1,
        }
    }

    /// Parses `op=weight[,op=weight...]`; a bare `op` counts as weight 1.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut entries: Vec<(Op, u64)> = Vec::new();
        let mut total: u64 = 0;
        for part in spec.split(',') {
            let part = part.trim();
            if part.is_empty() {
                return Err(format!(
                    "empty entry in mix {spec:?}: write e.g. access=90,create=10"
                ));
            }
            let (name, weight) = match part.split_once('=') {
                Some((name, weight)) => {
                    let weight = weight.trim().parse::<u64>().map_err(|_| {
                        format!(
                            "weight of {:?} is not a whole number: {weight:?}",
                            name.trim()
                        )
                    })?;
                    (name.trim(), weight)
                }
                None => (part, 1),
            };
            let op: Op = name.parse()?;
            if entries.iter().any(|(seen, _)| *seen == op) {
                return Err(format!("{op} appears twice in mix {spec:?}"));
            }
            // Bounded so that the running total cannot overflow.
            if weight > 1_000_000 {
                return Err(format!("weight of {op} is above 1000000"));
            }
            if weight > 0 {
                total += weight;
                entries.push((op, total));
            }
        }
        if total == 0 {
            return Err(format!(
                "mix {spec:?} has no operation with a weight above 0"
            ));
        }
        Ok(Self { entries, total })
    }

    /// The operation for a uniform random number `r` (any u64).
    pub fn pick(&self, r: u64) -> Op {
        let point = crate::rng::below(r, self.total);
        self.entries
            .iter()
            .find(|(_, upto)| point < *upto)
            .map_or(self.entries[self.entries.len() - 1].0, |(op, _)| *op)
    }

    /// The operations with their weights, in the order given.
    pub fn weights(&self) -> Vec<(Op, u64)> {
        let mut before = 0;
        self.entries
            .iter()
            .map(|(op, upto)| {
                let weight = upto - before;
                before = *upto;
                (*op, weight)
            })
            .collect()
    }

    /// Whether the mix contains `op`.
    pub fn contains(&self, op: Op) -> bool {
        self.entries.iter().any(|(o, _)| *o == op)
    }
}

impl fmt::Display for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .weights()
            .into_iter()
            .map(|(op, w)| format!("{op}={w}"))
            .collect();
        f.write_str(&parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_weights_and_picks_in_proportion() {
        let mix = Mix::parse("access=90, create=10").unwrap();
        assert_eq!(mix.weights(), vec![(Op::Access, 90), (Op::Create, 10)]);
        assert_eq!(mix.to_string(), "access=90,create=10");
        assert!(mix.contains(Op::Create) && !mix.contains(Op::Get));
        // pick maps r onto [0, total) by r * total / 2^64: the first 90% of the range is access.
        assert_eq!(mix.pick(0), Op::Access);
        let boundary = u64::MAX / 100 * 90;
        assert_eq!(mix.pick(boundary - (1 << 20)), Op::Access);
        assert_eq!(mix.pick(boundary + (1 << 60) / 100), Op::Create);
        assert_eq!(mix.pick(u64::MAX), Op::Create);

        let mut rng = crate::rng::Rng::new(7);
        let creates = (0..100_000)
            .filter(|_| mix.pick(rng.next_u64()) == Op::Create)
            .count();
        assert!((9_000..11_000).contains(&creates), "{creates}");
    }

    #[test]
    fn bare_names_zero_weights_and_single() {
        let mix = Mix::parse("get").unwrap();
        assert_eq!(mix, Mix::single(Op::Get));
        let mix = Mix::parse("list=0,update=3").unwrap();
        assert_eq!(mix.weights(), vec![(Op::Update, 3)]);
        assert!(!mix.contains(Op::List));
        assert_eq!(mix.pick(12345), Op::Update);
    }

    #[test]
    fn refuses_bad_mixes() {
        for (spec, needle) in [
            ("", "empty entry"),
            ("access=90,", "empty entry"),
            ("read=1", "unknown operation \"read\""),
            ("access=x", "not a whole number"),
            ("access=-1", "not a whole number"),
            ("access=1.5", "not a whole number"),
            ("access=1,access=2", "appears twice"),
            ("access=0,get=0", "no operation with a weight above 0"),
            ("access=2000000", "above 1000000"),
        ] {
            let err = Mix::parse(spec).unwrap_err();
            assert!(err.contains(needle), "{spec:?}: {err}");
        }
    }
}
