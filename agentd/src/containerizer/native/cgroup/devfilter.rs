//! cgroup v2 device control: the task's device rules as a `BPF_PROG_TYPE_CGROUP_DEVICE` program,
//! assembled here as raw eBPF instructions (as youki and runc do; no ELF, no bpf-linker), loaded
//! and attached through [`super::bpf`].
//!
//! The rules are the v1 ones, taken from [`super::v1::devices::plan`] line by line, so both
//! hierarchies enforce the same thing: `devices.deny a` (deny by default), `b *:* rwm`, every host
//! char major but NVIDIA's, then the task's NVIDIA devices. A request is allowed when a rule matches
//! its type (`a` matches both), major and minor (`*` any) and the rule's access letters include
//! every requested one (`r`, `w`, `m`) — v1's exception match. Later lines take precedence, so the
//! program tests them last-first and the first match decides; no match gives the default.
//!
//! Replacing a cgroup's program never leaves it unfiltered: the new one is attached with
//! `BPF_F_ALLOW_MULTI` first (both then apply, a request must pass both), then the old ones are
//! detached. An attached program stays attached while the cgroup exists: the agent keeps no fd.

use super::bpf::{self, BpfError, Insn};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

/// `BPF_DEVCG_DEV_BLOCK` / `BPF_DEVCG_DEV_CHAR`: the low 16 bits of `access_type`.
pub const DEV_BLOCK: u32 = 1;
pub const DEV_CHAR: u32 = 2;
/// `BPF_DEVCG_ACC_*`: the high 16 bits of `access_type`.
pub const ACC_MKNOD: u32 = 1;
pub const ACC_READ: u32 = 2;
pub const ACC_WRITE: u32 = 4;
const ACC_ALL: u32 = ACC_MKNOD | ACC_READ | ACC_WRITE;

/// One rule: `kind` `None` is `a` (block and char); `None` major/minor is `*`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterRule {
    pub allow: bool,
    pub kind: Option<u32>,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    /// `ACC_*` bits.
    pub access: u32,
}

/// A whole filter: rules in decreasing precedence, and the verdict when none matches.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct DeviceFilter {
    pub default_allow: bool,
    pub rules: Vec<FilterRule>,
}

/// Why a filter could not be built or installed.
#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    #[error("device rule {line:?}: {why}")]
    Rule { line: String, why: &'static str },
    #[error("device filter for {path}: {source}")]
    Bpf {
        path: String,
        #[source]
        source: BpfError,
    },
    #[error("device filter for {path}: open the cgroup: {source}")]
    Open {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

fn rule_err(line: &str, why: &'static str) -> FilterError {
    FilterError::Rule {
        line: line.to_string(),
        why,
    }
}

fn number(s: &str, line: &str) -> Result<Option<u32>, FilterError> {
    if s == "*" {
        return Ok(None);
    }
    let n: u32 = s.parse().map_err(|_| rule_err(line, "bad number"))?;
    // The program compares against a sign-extended 32-bit immediate; real majors are 12 bits,
    // minors 20.
    if n > i32::MAX as u32 {
        return Err(rule_err(line, "number out of range"));
    }
    Ok(Some(n))
}

/// Parses one v1 rule, `a` or `TYPE MAJOR:MINOR ACCESS` (`c 195:* rwm`).
pub fn parse_rule(line: &str, allow: bool) -> Result<FilterRule, FilterError> {
    let mut parts = line.split_whitespace();
    let kind = match parts.next() {
        Some("a") => {
            return Ok(FilterRule {
                allow,
                kind: None,
                major: None,
                minor: None,
                access: ACC_ALL,
            })
        }
        Some("b") => DEV_BLOCK,
        Some("c") => DEV_CHAR,
        _ => return Err(rule_err(line, "type is not a, b or c")),
    };
    let (maj, min) = parts
        .next()
        .and_then(|d| d.split_once(':'))
        .ok_or_else(|| rule_err(line, "no MAJOR:MINOR"))?;
    let mut access = 0;
    for ch in parts.next().unwrap_or("rwm").chars() {
        access |= match ch {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            'm' => ACC_MKNOD,
            _ => return Err(rule_err(line, "access is not r, w, m")),
        };
    }
    Ok(FilterRule {
        allow,
        kind: Some(kind),
        major: number(maj, line)?,
        minor: number(min, line)?,
        access,
    })
}

impl DeviceFilter {
    /// The filter for v1 writes `(file, rule)` in order: `devices.deny a` / `devices.allow a`
    /// reset to deny / allow everything; any other line takes precedence over those before it.
    pub fn from_v1_plan(plan: &[(&str, String)]) -> Result<Self, FilterError> {
        let mut f = DeviceFilter {
            default_allow: true,
            rules: Vec::new(),
        };
        for (file, line) in plan {
            let allow = match *file {
                "devices.allow" => true,
                "devices.deny" => false,
                _ => return Err(rule_err(line, "not a devices.allow/deny write")),
            };
            let rule = parse_rule(line, allow)?;
            if rule.kind.is_none() {
                f.default_allow = allow;
                f.rules.clear();
            } else {
                f.rules.insert(0, rule);
            }
        }
        Ok(f)
    }

    /// The filter for a container's limits (the same rules as v1 writes).
    pub fn for_limits(limits: &super::Limits) -> Result<Self, FilterError> {
        Self::from_v1_plan(&super::v1::devices::plan(limits))
    }

    /// The eBPF program. Registers: r2 = type, r3 = access, r4 = major, r5 = minor; each rule is a
    /// block of tests that jump past it on mismatch, then `r0 = verdict; exit`.
    pub fn assemble(&self) -> Vec<Insn> {
        let mut p = vec![
            ldx_w(2, 1, 0),
            alu32_k(AND, 2, 0xffff),
            ldx_w(3, 1, 0),
            alu32_k(RSH, 3, 16),
            ldx_w(4, 1, 4),
            ldx_w(5, 1, 8),
        ];
        for r in &self.rules {
            let mut tests: Vec<Insn> = Vec::new();
            if let Some(k) = r.kind {
                tests.push(jne_k(2, k, 0));
            }
            let extra = !r.access & ACC_ALL;
            if extra != 0 {
                tests.push(mov64_x(1, 3));
                tests.push(alu32_k(AND, 1, extra));
                tests.push(jne_k(1, 0, 0));
            }
            if let Some(m) = r.major {
                tests.push(jne_k(4, m, 0));
            }
            if let Some(m) = r.minor {
                tests.push(jne_k(5, m, 0));
            }
            let n = tests.len();
            for (i, t) in tests.iter_mut().enumerate() {
                if t.code == JNE_K {
                    // Skip the rest of the tests and the two-instruction verdict.
                    t.off = (n - i - 1 + 2) as i16;
                }
            }
            p.extend(tests);
            p.push(mov64_k(0, r.allow as u32));
            p.push(exit());
        }
        p.push(mov64_k(0, self.default_allow as u32));
        p.push(exit());
        p
    }

    /// The verdict by the rules themselves (what the program must compute).
    pub fn verdict(&self, kind: u32, major: u32, minor: u32, access: u32) -> bool {
        self.rules
            .iter()
            .find(|r| {
                r.kind.is_none_or(|k| k == kind)
                    && r.major.is_none_or(|m| m == major)
                    && r.minor.is_none_or(|m| m == minor)
                    && access & !r.access == 0
            })
            .map_or(self.default_allow, |r| r.allow)
    }
}

const LDX_W: u8 = 0x61;
const MOV64_K: u8 = 0xb7;
const MOV64_X: u8 = 0xbf;
const AND: u8 = 0x50;
const RSH: u8 = 0x70;
const ALU32_K: u8 = 0x04;
const JNE_K: u8 = 0x55;
const EXIT: u8 = 0x95;

fn ldx_w(dst: u8, src: u8, off: i16) -> Insn {
    Insn {
        code: LDX_W,
        regs: dst | src << 4,
        off,
        imm: 0,
    }
}
fn alu32_k(op: u8, dst: u8, imm: u32) -> Insn {
    Insn {
        code: ALU32_K | op,
        regs: dst,
        off: 0,
        imm: imm as i32,
    }
}
fn mov64_k(dst: u8, imm: u32) -> Insn {
    Insn {
        code: MOV64_K,
        regs: dst,
        off: 0,
        imm: imm as i32,
    }
}
fn mov64_x(dst: u8, src: u8) -> Insn {
    Insn {
        code: MOV64_X,
        regs: dst | src << 4,
        off: 0,
        imm: 0,
    }
}
fn jne_k(dst: u8, imm: u32, off: i16) -> Insn {
    Insn {
        code: JNE_K,
        regs: dst,
        off,
        imm: imm as i32,
    }
}
fn exit() -> Insn {
    Insn {
        code: EXIT,
        regs: 0,
        off: 0,
        imm: 0,
    }
}

/// Runs `prog` on `struct bpf_cgroup_dev_ctx { access_type, major, minor }`: an interpreter for
/// exactly the instructions [`DeviceFilter::assemble`] emits, to test programs without a kernel.
/// `None` for anything else (unknown opcode, bad register or offset, falling off the end).
pub fn interpret(prog: &[Insn], access_type: u32, major: u32, minor: u32) -> Option<u64> {
    let ctx = [access_type, major, minor];
    let mut r = [0u64; 11];
    let mut pc = 0usize;
    for _ in 0..=prog.len() {
        let i = prog.get(pc)?;
        let (d, s) = (i.dst() as usize, i.src() as usize);
        if d > 10 || s > 10 {
            return None;
        }
        pc += 1;
        match i.code {
            LDX_W if s == 1 && i.off >= 0 && i.off % 4 == 0 => {
                r[d] = u64::from(*ctx.get(i.off as usize / 4)?);
            }
            MOV64_K => r[d] = i.imm as i64 as u64,
            MOV64_X => r[d] = r[s],
            c if c == ALU32_K | AND => r[d] = u64::from(r[d] as u32 & i.imm as u32),
            c if c == ALU32_K | RSH => r[d] = u64::from((r[d] as u32) >> (i.imm as u32 & 31)),
            JNE_K => {
                if r[d] != i.imm as i64 as u64 {
                    pc = pc.checked_add_signed(isize::from(i.off))?;
                }
            }
            EXIT => return Some(r[0]),
            _ => return None,
        }
    }
    None
}

/// Builds, loads and attaches `filter` to the v2 cgroup directory `dir`, then detaches every
/// device program attached there before (so there is always at least one). Returns the program
/// fd, which callers may drop: the attachment keeps the program alive.
pub fn install(dir: &Path, filter: &DeviceFilter) -> Result<OwnedFd, FilterError> {
    let path = dir.display().to_string();
    let bpf_err = |source| FilterError::Bpf {
        path: path.clone(),
        source,
    };
    let cg = std::fs::File::open(dir).map_err(|source| FilterError::Open {
        path: path.clone(),
        source,
    })?;
    let old = bpf::query(cg.as_fd()).map_err(bpf_err)?;
    let prog = bpf::load_device_program(&filter.assemble()).map_err(bpf_err)?;
    bpf::attach(cg.as_fd(), prog.as_fd(), bpf::F_ALLOW_MULTI).map_err(bpf_err)?;
    let new_id = bpf::prog_id(prog.as_fd()).map_err(bpf_err)?;
    for id in old.into_iter().filter(|id| *id != new_id) {
        match bpf::prog_fd_by_id(id) {
            Ok(fd) => bpf::detach(cg.as_fd(), fd.as_fd()).map_err(bpf_err)?,
            // Gone since the query (its cgroup link was dropped): nothing to detach.
            Err(e) if e.source.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(bpf_err(e)),
        }
    }
    Ok(prog)
}

/// Ids of the device programs attached to the cgroup directory `dir`.
pub fn attached(dir: &Path) -> Result<Vec<u32>, FilterError> {
    let path = dir.display().to_string();
    let cg = std::fs::File::open(dir).map_err(|source| FilterError::Open {
        path: path.clone(),
        source,
    })?;
    bpf::query(cg.as_fd()).map_err(|source| FilterError::Bpf { path, source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn plan(lines: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
        lines.iter().map(|(f, l)| (*f, l.to_string())).collect()
    }

    #[test]
    fn parses_types_wildcards_and_access() {
        let r = parse_rule("c 195:* rw", true).expect("rule");
        assert_eq!(
            r,
            FilterRule {
                allow: true,
                kind: Some(DEV_CHAR),
                major: Some(195),
                minor: None,
                access: ACC_READ | ACC_WRITE
            }
        );
        let b = parse_rule("b *:* m", false).expect("rule");
        assert_eq!(
            (b.kind, b.major, b.access),
            (Some(DEV_BLOCK), None, ACC_MKNOD)
        );
        assert!(parse_rule("x 1:3 rwm", true).is_err());
        assert!(parse_rule("c 1 rwm", true).is_err());
        assert!(parse_rule("c 1:3 rwx", true).is_err());
        assert!(parse_rule("c 4294967295:3 rwm", true).is_err());
    }

    #[test]
    fn program_shape_for_a_small_rule_list() {
        let f = DeviceFilter::from_v1_plan(&plan(&[
            ("devices.deny", "a"),
            ("devices.allow", "c 1:3 rwm"),
            ("devices.allow", "b *:* r"),
        ]))
        .expect("filter");
        assert!(!f.default_allow);
        // Last line first.
        assert_eq!(f.rules[0].kind, Some(DEV_BLOCK));
        let p = f.assemble();
        let codes: Vec<u8> = p.iter().map(|i| i.code).collect();
        assert_eq!(
            codes,
            vec![
                LDX_W, 0x54, LDX_W, 0x74, LDX_W, LDX_W, // header
                JNE_K, MOV64_X, 0x54, JNE_K, MOV64_K, EXIT, // b *:* r
                JNE_K, JNE_K, JNE_K, MOV64_K, EXIT, // c 1:3 rwm
                MOV64_K, EXIT, // default deny
            ]
        );
        // Every jump lands on the next rule's first instruction.
        assert_eq!((p[6].off, p[9].off), (5, 2));
        assert_eq!((p[12].off, p[13].off, p[14].off), (4, 3, 2));
        assert_eq!(p[17].imm, 0);
        let at = |kind: u32, acc: u32| (acc << 16) | kind;
        assert_eq!(interpret(&p, at(DEV_CHAR, ACC_READ), 1, 3), Some(1));
        assert_eq!(interpret(&p, at(DEV_CHAR, ACC_READ), 1, 5), Some(0));
        assert_eq!(interpret(&p, at(DEV_BLOCK, ACC_READ), 8, 0), Some(1));
        assert_eq!(interpret(&p, at(DEV_BLOCK, ACC_WRITE), 8, 0), Some(0));
    }

    #[test]
    fn allow_all_then_denies_and_later_lines_win() {
        let f = DeviceFilter::from_v1_plan(&plan(&[
            ("devices.allow", "a"),
            ("devices.deny", "c 195:* rwm"),
            ("devices.allow", "c 195:3 rwm"),
        ]))
        .expect("filter");
        let p = f.assemble();
        let run = |maj, min| interpret(&p, (ACC_READ << 16) | DEV_CHAR, maj, min);
        assert_eq!(run(195, 3), Some(1));
        assert_eq!(run(195, 4), Some(0));
        assert_eq!(run(1, 3), Some(1));
    }

    #[test]
    fn interpreter_rejects_what_it_does_not_know() {
        assert_eq!(interpret(&[], 0, 0, 0), None);
        let bad = Insn {
            code: 0x07,
            regs: 0,
            off: 0,
            imm: 0,
        };
        assert_eq!(interpret(&[bad, exit()], 0, 0, 0), None);
    }

    /// v1's own check (security/device_cgroup.c, whitelist after `devices.deny a`): allowed iff
    /// some allow exception matches type, major, minor and includes every requested access bit.
    fn v1_allows(plan: &[(&str, String)], kind: u32, major: u32, minor: u32, acc: u32) -> bool {
        let mut allows: Vec<FilterRule> = Vec::new();
        for (file, line) in plan {
            let r = parse_rule(line, *file == "devices.allow").expect("rule");
            if r.kind.is_none() {
                assert_eq!(*file, "devices.deny", "v1 plans start with deny a");
                allows.clear();
            } else {
                assert!(r.allow, "v1 plans only allow after deny a");
                allows.push(r);
            }
        }
        allows.iter().any(|r| {
            r.kind == Some(kind)
                && r.major.is_none_or(|m| m == major)
                && r.minor.is_none_or(|m| m == minor)
                && (acc & r.access) == acc
        })
    }

    fn limits(minors: &[u32], host: &[u32]) -> super::super::Limits {
        let proc = "Character devices:\n  1 mem\n195 nvidia\n234 nvidia-caps\n510 nvidia-uvm\n";
        super::super::Limits {
            devices: Some(gantry_gpu::gpu_device_rules_for_minors(minors, proc)),
            host_char_majors: host.to_vec(),
            ..Default::default()
        }
    }

    proptest! {
        #[test]
        fn program_verdict_equals_v1_semantics(
            minors in proptest::collection::vec(0u32..8, 0..4),
            host in proptest::collection::vec(prop_oneof![Just(1u32), Just(4), Just(136), Just(195), Just(234), Just(510), 0u32..600], 0..6),
            kind in 1u32..=2,
            major in prop_oneof![Just(1u32), Just(136), Just(195), Just(234), Just(510), 0u32..1024],
            minor in prop_oneof![0u32..8, Just(254), Just(255), 0u32..(1 << 20)],
            acc in 1u32..=7,
        ) {
            let l = limits(&minors, &host);
            let plan = super::super::v1::devices::plan(&l);
            let f = DeviceFilter::from_v1_plan(&plan).expect("filter");
            let want = v1_allows(&plan, kind, major, minor, acc);
            prop_assert_eq!(f.verdict(kind, major, minor, acc), want);
            let got = interpret(&f.assemble(), (acc << 16) | kind, major, minor);
            prop_assert_eq!(got, Some(u64::from(want)));
        }

        #[test]
        fn program_verdict_equals_rule_verdict_for_any_rules(
            default_allow: bool,
            rules in proptest::collection::vec(
                (any::<bool>(), proptest::option::of(1u32..=2), proptest::option::of(0u32..4),
                 proptest::option::of(0u32..4), 0u32..=7), 0..8),
            kind in 1u32..=2, major in 0u32..4, minor in 0u32..4, acc in 1u32..=7,
        ) {
            let f = DeviceFilter {
                default_allow,
                rules: rules.into_iter().map(|(allow, kind, major, minor, access)| FilterRule {
                    allow, kind, major, minor, access }).collect(),
            };
            let got = interpret(&f.assemble(), (acc << 16) | kind, major, minor);
            prop_assert_eq!(got, Some(u64::from(f.verdict(kind, major, minor, acc))));
        }
    }
}
