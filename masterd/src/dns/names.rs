//! Mesos-DNS's naming, exactly: labels mangled as `records/labels` does (RFC 1123 by default,
//! RFC 952 on request), Marathon task names from app ids, and the canonical
//! `<task>-<hash>-<agentIDtail>` label (hash: the first 5 characters of the z-base-32 SHA-1 of
//! the task id).

use sha1::{Digest, Sha1};

/// Mesos-DNS's `mapping`: ASCII letters lowercased, digits kept, `-`, `.` and `_` become `-`,
/// everything else is dropped.
fn mapping(c: char) -> Option<char> {
    match c {
        'A'..='Z' => Some(c.to_ascii_lowercase()),
        'a'..='z' | '0'..='9' => Some(c),
        '-' | '.' | '_' => Some('-'),
        _ => None,
    }
}

/// Mesos-DNS's `trimCut`: trims `left` from the front, cuts at `maxlen`, trims `right` from the
/// end of the cut and, when that shortened it, refills from what followed the cut.
fn trim_cut(label: &str, maxlen: usize, left: &[char], right: &[char]) -> String {
    let trim: Vec<char> = label.trim_start_matches(left).chars().collect();
    let size = trim.len().min(maxlen);
    let head: String = trim[..size].iter().collect();
    let head = head.trim_end_matches(right).to_owned();
    if head.chars().count() == size {
        return head;
    }
    let rest: String = trim[size..].iter().collect();
    let tail: Vec<char> = rest.trim_start_matches(right).chars().collect();
    if tail.is_empty() {
        return head;
    }
    let fill = (size - head.chars().count()).min(tail.len());
    head + &tail[..fill].iter().collect::<String>()
}

/// A DNS label under RFC 1123 (Mesos-DNS's default): at most 63 characters, no `-` at either end.
pub fn rfc1123(name: &str) -> String {
    let mapped: String = name.chars().filter_map(mapping).collect();
    trim_cut(&mapped, 63, &['-'], &['-'])
}

/// A DNS label under RFC 952 (Mesos-DNS's `EnforceRFC952`): at most 24 characters, starting with
/// a letter, not ending with `-`.
pub fn rfc952(name: &str) -> String {
    let mapped: String = name.chars().filter_map(mapping).collect();
    let digits: Vec<char> = "-0123456789".chars().collect();
    trim_cut(&mapped, 24, &digits, &['-'])
}

/// Which label rules names follow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LabelSpec {
    /// RFC 1123 (Mesos-DNS's default).
    #[default]
    Rfc1123,
    /// RFC 952 (`EnforceRFC952: true`).
    Rfc952,
}

impl LabelSpec {
    /// One label under these rules.
    pub fn label(self, name: &str) -> String {
        match self {
            LabelSpec::Rfc1123 => rfc1123(name),
            LabelSpec::Rfc952 => rfc952(name),
        }
    }

    /// Mesos-DNS's `DomainFrag`: each `.`-separated part a label, empty parts dropped (framework
    /// names keep their dots).
    pub fn domain_frag(self, name: &str) -> String {
        name.split('.')
            .map(|p| self.label(p))
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
            .join(".")
    }
}

/// The Mesos task name Marathon gives an app's tasks: the path segments of the app id in reverse,
/// joined by dots (`/group/web` -> `web.group`).
pub fn marathon_task_name(app_id: &str) -> String {
    app_id
        .split('/')
        .filter(|s| !s.is_empty())
        .rev()
        .collect::<Vec<_>>()
        .join(".")
}

/// The task label of an app's tasks in DNS (`/group/web` -> `web-group`).
pub fn task_label(spec: LabelSpec, app_id: &str) -> String {
    spec.label(&marathon_task_name(app_id))
}

const ZBASE32: &[u8; 32] = b"ybndrfg8ejkmcpqxot1uwisza345h769";

/// z-base-32 of `data` (5-bit groups, most significant bit first, no padding).
pub fn zbase32(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len() * 8 / 5 + 1);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in data {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ZBASE32[((acc >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ZBASE32[((acc << (5 - bits)) & 31) as usize]));
    }
    out
}

/// Mesos-DNS's `hashString`: the first 5 characters of the z-base-32 SHA-1 of `s`.
pub fn hash_string(s: &str) -> String {
    let digest = Sha1::digest(s.as_bytes());
    zbase32(&digest).chars().take(5).collect()
}

/// Mesos-DNS's `slaveIDTail`: the last `-` field of the agent id, lowercased.
pub fn agent_id_tail(agent_id: &str) -> String {
    agent_id
        .rsplit('-')
        .next()
        .unwrap_or_default()
        .to_lowercase()
}

/// The canonical label of one task: `<task>-<hash of task id>-<agent id tail>`.
pub fn canonical(task_label: &str, task_id: &str, agent_id: &str) -> String {
    format!(
        "{task_label}-{}-{}",
        hash_string(task_id),
        agent_id_tail(agent_id)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1123_labels_as_mesos_dns_makes_them() {
        // Cases from mesos-dns records/labels/labels_test.go.
        for (input, want) in [
            ("4abc123", "4abc123"),
            ("-abc123", "abc123"),
            ("abc123-", "abc123"),
            ("abc-123", "abc-123"),
            ("abc--123", "abc--123"),
            (
                "fd%gsf---gs7-f$gs--d7fddg-123",
                "fdgsf---gs7-fgs--d7fddg-123",
            ),
            ("4abc123", "4abc123"),
            (
                "89fdgsf---gs7-fgs--d7fddg-123",
                "89fdgsf---gs7-fgs--d7fddg-123",
            ),
            (
                "89fdgsf---gs7-fgs--d7fddg---123",
                "89fdgsf---gs7-fgs--d7fddg---123",
            ),
            ("89fdgsf---gs7-fgs--d7fddg-", "89fdgsf---gs7-fgs--d7fddg"),
            ("r29f.dev.angrypigs", "r29f-dev-angrypigs"),
            ("ABC", "abc"),
            ("a_b.c", "a-b-c"),
            (&"x".repeat(70), &"x".repeat(63)),
        ] {
            assert_eq!(rfc1123(input), want, "{input}");
        }
    }

    #[test]
    fn rfc952_labels_start_with_a_letter_and_stop_at_24() {
        for (input, want) in [
            ("4abc123", "abc123"),
            ("-4abc123", "abc123"),
            ("fd%gsf---gs7-f$gs--d7fddg-123", "fdgsf---gs7-fgs--d7fddg1"),
            ("89fdgsf---gs7-fgs--d7fddg-123", "fdgsf---gs7-fgs--d7fddg1"),
            (
                "89fdgsf---gs7-fgs--d7fddg---123",
                "fdgsf---gs7-fgs--d7fddg1",
            ),
            ("r29f.dev.angrypigs", "r29f-dev-angrypigs"),
        ] {
            assert_eq!(rfc952(input), want, "{input}");
        }
    }

    #[test]
    fn marathon_app_ids_become_task_labels() {
        let l = |id| task_label(LabelSpec::Rfc1123, id);
        assert_eq!(l("/web"), "web");
        assert_eq!(l("/group/web"), "web-group");
        assert_eq!(l("/a/b/c"), "c-b-a");
        assert_eq!(l("/Prod/API_v2"), "api-v2-prod");
        assert_eq!(l("/x/-web-"), "web--x");
        assert_eq!(marathon_task_name("/group/web"), "web.group");
    }

    #[test]
    fn framework_names_keep_their_dots() {
        assert_eq!(LabelSpec::Rfc1123.domain_frag("marathon"), "marathon");
        assert_eq!(
            LabelSpec::Rfc1123.domain_frag("Marathon.Prod_1..x"),
            "marathon.prod-1.x"
        );
    }

    #[test]
    fn canonical_names_hash_the_task_id() {
        // zbase32 test vectors (tv42/zbase32, RFC-free spec by Zooko): bit strings of whole bytes.
        assert_eq!(zbase32(&[0xf0, 0xbf, 0xc7]), "6n9hq");
        assert_eq!(zbase32(&[0xd4, 0x7a, 0x04]), "4t7ye");
        assert_eq!(zbase32(&[]), "");
        // Independently: Python's base32 of the SHA-1, translated to the z-base-32 alphabet.
        assert_eq!(hash_string("web.instance-1._app.1"), "mf7th");
        assert_eq!(hash_string("t1"), "hw4uo");
        assert_eq!(
            agent_id_tail("20160107-001256-134875658-5050-27524-S3"),
            "s3"
        );
        assert_eq!(agent_id_tail("abc"), "abc");
        assert_eq!(
            canonical("web", "t1", "x-S0"),
            format!("web-{}-s0", hash_string("t1"))
        );
    }
}
