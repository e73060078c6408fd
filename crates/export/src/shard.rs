//! `--shard K/N`: a stable split of a selection between N machines.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// Share `k` (1-based) of `n`.
///
/// A video belongs to share `u64::from_be_bytes(SHA-256(uid)[0..8]) % n + 1`:
/// the split depends on nothing but the id, so N machines, each with its own
/// directory, cover a library exactly once with no coordination, whatever
/// order they list it in, and a video keeps its share from run to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This share, `1..=n`.
    pub k: u32,
    /// Number of shares.
    pub n: u32,
}

impl Shard {
    /// The whole selection.
    pub const ALL: Shard = Shard { k: 1, n: 1 };

    /// The share `uid` belongs to, `1..=n`.
    pub fn share_of(uid: &str, n: u32) -> u32 {
        let digest = Sha256::digest(uid.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        (u64::from_be_bytes(first) % u64::from(n.max(1))) as u32 + 1
    }

    /// Whether `uid` is in this share.
    pub fn contains(&self, uid: &str) -> bool {
        self.n <= 1 || Self::share_of(uid, self.n) == self.k
    }
}

impl FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?}: expected K/N with 1 <= K <= N, e.g. 2/3");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let (k, n): (u32, u32) = (
            k.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if k == 0 || n == 0 || k > n {
            return Err(bad());
        }
        Ok(Shard { k, n })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.k, self.n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        assert_eq!("2/3".parse(), Ok(Shard { k: 2, n: 3 }));
        for bad in ["0/3", "4/3", "1/0", "3", "a/b", "1/-1", ""] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    #[test]
    fn every_id_is_in_exactly_one_share() {
        for i in 0..2000 {
            let uid = format!("{i:032x}");
            let n = 1 + (i % 7) as u32;
            let owners = (1..=n)
                .filter(|k| Shard { k: *k, n }.contains(&uid))
                .count();
            assert_eq!(owners, 1, "{uid} in {owners} of {n} shares");
        }
    }

    #[test]
    fn the_hash_is_pinned() {
        // The documented function (first 8 bytes of SHA-256, big-endian,
        // modulo N, plus one), computed independently (Python hashlib): a
        // change here would reshuffle every sharded export in flight.
        let uid = "ea95132c15732412d22c1476fa83f27a";
        assert_eq!(Shard::share_of(uid, 1000), 784);
        assert_eq!(Shard::share_of(uid, 3), 3);
        assert_eq!(Shard::share_of(uid, 2), 2);
    }
}

/// The batch engines `--shard auto` reads, in this order: (index variable,
/// count variable, whether the index is 0-based).
pub const BATCH_ENGINES: &[(&str, &str, &str)] = &[
    ("Kubernetes Indexed Job", "JOB_COMPLETION_INDEX", ""),
    (
        "AWS Batch array job",
        "AWS_BATCH_JOB_ARRAY_INDEX",
        "AWS_BATCH_JOB_ARRAY_SIZE",
    ),
    (
        "Cloud Run job",
        "CLOUD_RUN_TASK_INDEX",
        "CLOUD_RUN_TASK_COUNT",
    ),
    ("Google Batch", "BATCH_TASK_INDEX", "BATCH_TASK_COUNT"),
];

impl Shard {
    /// `--shard auto`: this task's share from the batch engine's
    /// environment (`var` reads a variable). Each engine gives a 0-based
    /// index (share `index + 1`) and, but for Kubernetes, the count;
    /// `shards` (`--shards N`) gives the count for Kubernetes and, when
    /// given elsewhere, must agree. No engine's variables, two engines'
    /// that disagree, or an index out of range: an error naming them.
    pub fn from_batch_env(
        var: impl Fn(&str) -> Option<String>,
        shards: Option<u32>,
    ) -> Result<Shard, String> {
        let number = |name: &str| -> Result<Option<u32>, String> {
            match var(name) {
                None => Ok(None),
                Some(v) => v
                    .trim()
                    .parse::<u32>()
                    .map(Some)
                    .map_err(|_| format!("{name}={v:?} is not a number")),
            }
        };
        let mut found: Vec<(&str, Shard)> = Vec::new();
        for (engine, index_var, count_var) in BATCH_ENGINES {
            let Some(index) = number(index_var)? else {
                continue;
            };
            let count = if count_var.is_empty() {
                None
            } else {
                number(count_var)?
            };
            let n = match (count, shards) {
                (Some(c), Some(s)) if c != s => {
                    return Err(format!(
                        "{count_var}={c} and --shards {s} disagree ({engine})"
                    ));
                }
                (Some(c), _) => c,
                (None, Some(s)) => s,
                (None, None) => {
                    return Err(format!(
                        "{engine}: {index_var} is set but the number of shards is not: give --shards N (the Job's completions)"
                    ));
                }
            };
            if n == 0 || index >= n {
                return Err(format!(
                    "{engine}: {index_var}={index} is not below the number of shards {n}"
                ));
            }
            found.push((engine, Shard { k: index + 1, n }));
        }
        match found.as_slice() {
            [] => Err(format!(
                "--shard auto: no batch engine's variables ({})",
                BATCH_ENGINES
                    .iter()
                    .map(|(_, i, _)| *i)
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            [(_, shard)] => Ok(*shard),
            [(a, first), rest @ ..] => match rest.iter().find(|(_, s)| s != first) {
                None => Ok(*first),
                Some((b, other)) => {
                    Err(format!("--shard auto: {a} says {first}, {b} says {other}"))
                }
            },
        }
    }
}

#[cfg(test)]
mod batch_tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    #[test]
    fn each_engine_gives_its_share() {
        type Case<'a> = (&'a [(&'a str, &'a str)], Option<u32>, Shard);
        let cases: &[Case] = &[
            (
                &[("JOB_COMPLETION_INDEX", "0")],
                Some(3),
                Shard { k: 1, n: 3 },
            ),
            (
                &[("JOB_COMPLETION_INDEX", "2")],
                Some(3),
                Shard { k: 3, n: 3 },
            ),
            (
                &[
                    ("AWS_BATCH_JOB_ARRAY_INDEX", "4"),
                    ("AWS_BATCH_JOB_ARRAY_SIZE", "5"),
                ],
                None,
                Shard { k: 5, n: 5 },
            ),
            (
                &[("CLOUD_RUN_TASK_INDEX", "1"), ("CLOUD_RUN_TASK_COUNT", "2")],
                None,
                Shard { k: 2, n: 2 },
            ),
            (
                &[("BATCH_TASK_INDEX", "0"), ("BATCH_TASK_COUNT", "4")],
                Some(4),
                Shard { k: 1, n: 4 },
            ),
        ];
        for (vars, shards, want) in cases {
            assert_eq!(
                Shard::from_batch_env(env(vars), *shards),
                Ok(*want),
                "{vars:?}"
            );
        }
    }

    #[test]
    fn missing_or_contradictory_variables_are_named() {
        let err =
            |vars: &[(&str, &str)], shards| Shard::from_batch_env(env(vars), shards).unwrap_err();
        assert!(err(&[], None).contains("JOB_COMPLETION_INDEX"));
        assert!(err(&[("JOB_COMPLETION_INDEX", "0")], None).contains("--shards"));
        assert!(err(&[("JOB_COMPLETION_INDEX", "3")], Some(3)).contains("not below"));
        assert!(
            err(
                &[("CLOUD_RUN_TASK_INDEX", "x"), ("CLOUD_RUN_TASK_COUNT", "2")],
                None
            )
            .contains("not a number")
        );
        assert!(
            err(
                &[("CLOUD_RUN_TASK_INDEX", "0"), ("CLOUD_RUN_TASK_COUNT", "2")],
                Some(3)
            )
            .contains("disagree")
        );
        let two = err(
            &[
                ("CLOUD_RUN_TASK_INDEX", "0"),
                ("CLOUD_RUN_TASK_COUNT", "2"),
                ("BATCH_TASK_INDEX", "1"),
                ("BATCH_TASK_COUNT", "2"),
            ],
            None,
        );
        assert!(
            two.contains("Cloud Run job says 1/2") && two.contains("Google Batch says 2/2"),
            "{two}"
        );
    }
}
