//! The bpf(2) calls a cgroup v2 device filter needs, and nothing else: load a
//! `BPF_PROG_TYPE_CGROUP_DEVICE` program from raw instructions, attach it to a cgroup directory,
//! list what is attached, detach. This is the one file of the agent that calls `SYS_bpf`; every
//! `unsafe` block is scoped to one call with its SAFETY argument. The attribute structs are the
//! prefixes of `union bpf_attr` (linux/bpf.h) each command reads, padded with zeros (the kernel
//! requires the bytes past what it knows to be zero, and accepts a shorter struct).

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// `BPF_PROG_TYPE_CGROUP_DEVICE`.
const PROG_TYPE_CGROUP_DEVICE: u32 = 15;
/// `BPF_CGROUP_DEVICE` attach type.
const ATTACH_CGROUP_DEVICE: u32 = 6;
/// `BPF_F_ALLOW_MULTI`: several programs on one cgroup, all must allow.
pub const F_ALLOW_MULTI: u32 = 1 << 1;

const CMD_PROG_LOAD: libc::c_long = 5;
const CMD_PROG_ATTACH: libc::c_long = 8;
const CMD_PROG_DETACH: libc::c_long = 9;
const CMD_PROG_GET_FD_BY_ID: libc::c_long = 13;
const CMD_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
const CMD_PROG_QUERY: libc::c_long = 16;

/// Verifier log size: enough for the few hundred instructions a filter has.
const LOG_SIZE: usize = 64 * 1024;

/// One eBPF instruction (`struct bpf_insn`): opcode, `dst | src << 4`, offset, immediate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Insn {
    pub code: u8,
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

impl Insn {
    pub fn dst(&self) -> u8 {
        self.regs & 0x0f
    }
    pub fn src(&self) -> u8 {
        self.regs >> 4
    }
}

/// A failed bpf(2) call, with the verifier's log when loading failed.
#[derive(Debug, thiserror::Error)]
#[error("bpf({what}): {source}{}", if log.is_empty() { String::new() } else { format!("; verifier: {log}") })]
pub struct BpfError {
    pub what: &'static str,
    #[source]
    pub source: std::io::Error,
    pub log: String,
}

fn fail(what: &'static str) -> BpfError {
    BpfError {
        what,
        source: std::io::Error::last_os_error(),
        log: String::new(),
    }
}

#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

#[repr(C)]
#[derive(Default)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

#[repr(C)]
#[derive(Default)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
}

#[repr(C)]
#[derive(Default)]
struct GetFdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

#[repr(C)]
#[derive(Default)]
struct InfoAttr {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}

/// `bpf(cmd, attr, sizeof attr)`.
#[allow(unsafe_code)]
fn sys_bpf<T>(cmd: libc::c_long, attr: &mut T) -> libc::c_long {
    // SAFETY: `attr` is a live, exclusively borrowed `#[repr(C)]` prefix of `union bpf_attr` for
    // `cmd`, and the size passed is its own; every pointer inside it (instructions, license, log,
    // id arrays) is set by the callers below to a buffer that outlives this call, with its length.
    unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    }
}

#[allow(unsafe_code)]
fn owned(fd: libc::c_long) -> OwnedFd {
    // SAFETY: `fd` is a new descriptor the kernel just returned to us (checked >= 0 by callers)
    // and owned by nothing else.
    unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) }
}

/// Loads a `BPF_PROG_TYPE_CGROUP_DEVICE` program; on failure the error carries the verifier log.
pub fn load_device_program(insns: &[Insn]) -> Result<OwnedFd, BpfError> {
    let license = b"Apache-2.0\0";
    let mut log = vec![0u8; LOG_SIZE];
    let mut name = [0u8; 16];
    name[..13].copy_from_slice(b"gantry_devcg\0");
    let mut attr = ProgLoadAttr {
        prog_type: PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        prog_name: name,
        ..Default::default()
    };
    let fd = sys_bpf(CMD_PROG_LOAD, &mut attr);
    if fd >= 0 {
        return Ok(owned(fd));
    }
    let first = fail("BPF_PROG_LOAD");
    // Load again with the log on, for the verifier's reason (log_level 1 costs only on failure).
    attr.log_level = 1;
    attr.log_size = LOG_SIZE as u32;
    attr.log_buf = log.as_mut_ptr() as u64;
    let fd = sys_bpf(CMD_PROG_LOAD, &mut attr);
    if fd >= 0 {
        return Ok(owned(fd));
    }
    let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
    Err(BpfError {
        log: String::from_utf8_lossy(&log[..end]).trim().to_string(),
        ..first
    })
}

/// `BPF_PROG_ATTACH` of `prog` to the cgroup directory `cgroup` as a device filter.
pub fn attach(cgroup: BorrowedFd<'_>, prog: BorrowedFd<'_>, flags: u32) -> Result<(), BpfError> {
    let mut attr = AttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: ATTACH_CGROUP_DEVICE,
        attach_flags: flags,
        ..Default::default()
    };
    if sys_bpf(CMD_PROG_ATTACH, &mut attr) < 0 {
        return Err(fail("BPF_PROG_ATTACH"));
    }
    Ok(())
}

/// `BPF_PROG_DETACH` of `prog` from `cgroup`.
pub fn detach(cgroup: BorrowedFd<'_>, prog: BorrowedFd<'_>) -> Result<(), BpfError> {
    let mut attr = AttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: ATTACH_CGROUP_DEVICE,
        ..Default::default()
    };
    if sys_bpf(CMD_PROG_DETACH, &mut attr) < 0 {
        return Err(fail("BPF_PROG_DETACH"));
    }
    Ok(())
}

/// Ids of the device programs attached directly to `cgroup` (`BPF_PROG_QUERY`).
pub fn query(cgroup: BorrowedFd<'_>) -> Result<Vec<u32>, BpfError> {
    let mut ids = vec![0u32; 64];
    loop {
        let mut attr = QueryAttr {
            target_fd: cgroup.as_raw_fd() as u32,
            attach_type: ATTACH_CGROUP_DEVICE,
            prog_ids: ids.as_mut_ptr() as u64,
            prog_cnt: ids.len() as u32,
            ..Default::default()
        };
        if sys_bpf(CMD_PROG_QUERY, &mut attr) >= 0 {
            ids.truncate(attr.prog_cnt as usize);
            return Ok(ids);
        }
        let e = fail("BPF_PROG_QUERY");
        // ENOSPC: more programs than room; prog_cnt says how many.
        if e.source.raw_os_error() == Some(libc::ENOSPC) && attr.prog_cnt as usize > ids.len() {
            ids = vec![0u32; attr.prog_cnt as usize];
            continue;
        }
        return Err(e);
    }
}

/// An fd for the program with id `id` (`BPF_PROG_GET_FD_BY_ID`).
pub fn prog_fd_by_id(id: u32) -> Result<OwnedFd, BpfError> {
    let mut attr = GetFdAttr {
        prog_id: id,
        ..Default::default()
    };
    let fd = sys_bpf(CMD_PROG_GET_FD_BY_ID, &mut attr);
    if fd < 0 {
        return Err(fail("BPF_PROG_GET_FD_BY_ID"));
    }
    Ok(owned(fd))
}

/// The kernel's id of a loaded program (`BPF_OBJ_GET_INFO_BY_FD`, first two fields of
/// `struct bpf_prog_info`: type, id).
pub fn prog_id(prog: BorrowedFd<'_>) -> Result<u32, BpfError> {
    let mut info = [0u32; 2];
    let mut attr = InfoAttr {
        bpf_fd: prog.as_raw_fd() as u32,
        info_len: std::mem::size_of_val(&info) as u32,
        info: info.as_mut_ptr() as u64,
    };
    if sys_bpf(CMD_OBJ_GET_INFO_BY_FD, &mut attr) < 0 {
        return Err(fail("BPF_OBJ_GET_INFO_BY_FD"));
    }
    Ok(info[1])
}
