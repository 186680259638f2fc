//! The infra container's whole program: a static ELF executable, hand-assembled per CPU, that
//! waits for signals forever and exits 0 on SIGTERM or SIGINT.
//!
//! It has no libc, no dynamic loader and no data: one loadable segment of machine code. On
//! start it installs one handler for SIGTERM and SIGINT (as PID 1 of its container it would
//! otherwise ignore both, and `docker stop` would wait for the SIGKILL), then sleeps in
//! `pause()` in a loop. The handler calls `exit_group(0)` and never returns, so no signal
//! return trampoline is ever used. The code is position independent (`lea rip` / `adr`), so
//! [`executable`] only has to put the ELF and program headers in front of it.

/// Where the segment is mapped: the traditional base of non-PIE executables.
const LOAD_ADDRESS: u64 = 0x40_0000;
/// Size of the ELF64 file header.
const ELF_HEADER_SIZE: u16 = 64;
/// Size of one ELF64 program header.
const PROGRAM_HEADER_SIZE: u16 = 56;
/// Program headers: the code segment and the non-executable stack marker.
const PROGRAM_HEADERS: u16 = 2;
/// `e_machine` of x86_64.
const EM_X86_64: u16 = 62;
/// `e_machine` of AArch64.
const EM_AARCH64: u16 = 183;
/// `p_type` of a loadable segment.
const PT_LOAD: u32 = 1;
/// `p_type` that sets the stack's permissions (here: not executable).
const PT_GNU_STACK: u32 = 0x6474_e551;
/// Segment permission bits.
const PF_X: u32 = 1;
/// Segment permission bits.
const PF_W: u32 = 2;
/// Segment permission bits.
const PF_R: u32 = 4;

/// The CPUs the agent ships a pause program for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cpu {
    /// x86-64 (Docker reports `x86_64`; images say `amd64`).
    X86_64,
    /// 64-bit ARM (Docker reports `aarch64`; images say `arm64`).
    Aarch64,
}

impl Cpu {
    /// The CPU of an engine that reports `architecture` (`docker info`'s, i.e. `uname -m`;
    /// the image-platform spelling is accepted too); `None` for CPUs without a pause program.
    pub fn from_engine_architecture(architecture: &str) -> Option<Cpu> {
        match architecture {
            "x86_64" | "amd64" => Some(Cpu::X86_64),
            "aarch64" | "arm64" => Some(Cpu::Aarch64),
            _ => None,
        }
    }

    /// The image config's `architecture` (the OCI / Go spelling).
    pub fn image_architecture(self) -> &'static str {
        match self {
            Cpu::X86_64 => "amd64",
            Cpu::Aarch64 => "arm64",
        }
    }

    /// `e_machine` in the ELF header.
    fn elf_machine(self) -> u16 {
        match self {
            Cpu::X86_64 => EM_X86_64,
            Cpu::Aarch64 => EM_AARCH64,
        }
    }

    /// The machine code of the pause program for this CPU.
    fn code(self) -> Vec<u8> {
        match self {
            Cpu::X86_64 => X86_64_CODE.to_vec(),
            Cpu::Aarch64 => AARCH64_CODE.iter().flat_map(|i| i.to_le_bytes()).collect(),
        }
    }
}

/// x86-64 machine code (Linux syscall ABI: number in eax, arguments in rdi, rsi, rdx, r10;
/// `syscall` clobbers only rax, rcx and r11). Offsets are from the entry point.
#[rustfmt::skip]
const X86_64_CODE: &[u8] = &[
    // 0x00 sub rsp, 32: room on the stack for a struct kernel_sigaction
    //      { handler, flags, restorer, mask }, 8 bytes each.
    0x48, 0x83, 0xec, 0x20,
    // 0x04 lea rax, [rip + 0x47]: the handler's address (0x0b + 0x47 = 0x52).
    0x48, 0x8d, 0x05, 0x47, 0x00, 0x00, 0x00,
    // 0x0b mov [rsp], rax: sa_handler = handler.
    0x48, 0x89, 0x04, 0x24,
    // 0x0f mov qword [rsp + 8], 0x04000000: sa_flags = SA_RESTORER (x86-64 refuses to
    //      deliver a signal to a handler without a restorer).
    0x48, 0xc7, 0x44, 0x24, 0x08, 0x00, 0x00, 0x00, 0x04,
    // 0x18 mov [rsp + 16], rax: sa_restorer = handler too; it is never reached because the
    //      handler exits instead of returning.
    0x48, 0x89, 0x44, 0x24, 0x10,
    // 0x1d mov qword [rsp + 24], 0: sa_mask = no extra signals blocked in the handler.
    0x48, 0xc7, 0x44, 0x24, 0x18, 0x00, 0x00, 0x00, 0x00,
    // 0x26 mov rsi, rsp: argument 2, the new action.
    0x48, 0x89, 0xe6,
    // 0x29 xor edx, edx: argument 3, no old action wanted.
    0x31, 0xd2,
    // 0x2b mov r10d, 8: argument 4, sizeof(sigset_t) as the kernel knows it.
    0x41, 0xba, 0x08, 0x00, 0x00, 0x00,
    // 0x31 mov edi, 15: argument 1, SIGTERM.
    0xbf, 0x0f, 0x00, 0x00, 0x00,
    // 0x36 mov eax, 13: rt_sigaction.
    0xb8, 0x0d, 0x00, 0x00, 0x00,
    // 0x3b syscall: rt_sigaction(SIGTERM, &action, NULL, 8).
    0x0f, 0x05,
    // 0x3d mov edi, 2: argument 1, SIGINT (rsi, rdx and r10 survived the syscall).
    0xbf, 0x02, 0x00, 0x00, 0x00,
    // 0x42 mov eax, 13: rt_sigaction.
    0xb8, 0x0d, 0x00, 0x00, 0x00,
    // 0x47 syscall: rt_sigaction(SIGINT, &action, NULL, 8).
    0x0f, 0x05,
    // 0x49 loop: mov eax, 34: pause.
    0xb8, 0x22, 0x00, 0x00, 0x00,
    // 0x4e syscall: pause() sleeps until a signal arrives.
    0x0f, 0x05,
    // 0x50 jmp loop (0x52 - 9 = 0x49): whatever woke us, sleep again.
    0xeb, 0xf7,
    // 0x52 handler: xor edi, edi: exit status 0.
    0x31, 0xff,
    // 0x54 mov eax, 231: exit_group.
    0xb8, 0xe7, 0x00, 0x00, 0x00,
    // 0x59 syscall: exit_group(0); does not return.
    0x0f, 0x05,
];

/// AArch64 machine code, one 32-bit instruction per entry (Linux syscall ABI: number in x8,
/// arguments in x0..x5, `svc #0`; only x0 is changed by the kernel). Offsets are from the
/// entry point. AArch64 Linux has no `pause` syscall: `ppoll(NULL, 0, NULL, NULL)` is what
/// libc's `pause()` does there.
#[rustfmt::skip]
const AARCH64_CODE: &[u32] = &[
    // 0x00 sub sp, sp, #32: room for a struct kernel_sigaction { handler, flags, restorer,
    //      mask }, 8 bytes each (sp stays 16-byte aligned).
    0xd100_83ff,
    // 0x04 adr x0, #0x50: the handler's address (0x04 + 0x50 = 0x54).
    0x1000_0280,
    // 0x08 str x0, [sp]: sa_handler = handler.
    0xf900_03e0,
    // 0x0c str xzr, [sp, #8]: sa_flags = 0 (the kernel's own return trampoline would be used;
    //      the handler never returns anyway).
    0xf900_07ff,
    // 0x10 str xzr, [sp, #16]: sa_restorer = none.
    0xf900_0bff,
    // 0x14 str xzr, [sp, #24]: sa_mask = no extra signals blocked in the handler.
    0xf900_0fff,
    // 0x18 mov x1, sp: argument 2, the new action.
    0x9100_03e1,
    // 0x1c mov x2, #0: argument 3, no old action wanted.
    0xd280_0002,
    // 0x20 mov x3, #8: argument 4, sizeof(sigset_t) as the kernel knows it.
    0xd280_0103,
    // 0x24 mov x8, #134: rt_sigaction.
    0xd280_10c8,
    // 0x28 mov x0, #15: argument 1, SIGTERM.
    0xd280_01e0,
    // 0x2c svc #0: rt_sigaction(SIGTERM, &action, NULL, 8).
    0xd400_0001,
    // 0x30 mov x0, #2: argument 1, SIGINT (x1, x2, x3 and x8 survived the call).
    0xd280_0040,
    // 0x34 svc #0: rt_sigaction(SIGINT, &action, NULL, 8).
    0xd400_0001,
    // 0x38 loop: mov x0, #0: no file descriptors.
    0xd280_0000,
    // 0x3c mov x1, #0: zero of them.
    0xd280_0001,
    // 0x40 mov x2, #0: no timeout, wait forever.
    0xd280_0002,
    // 0x44 mov x3, #0: keep the signal mask.
    0xd280_0003,
    // 0x48 mov x8, #73: ppoll.
    0xd280_0928,
    // 0x4c svc #0: ppoll(NULL, 0, NULL, NULL) sleeps until a signal arrives.
    0xd400_0001,
    // 0x50 b #-0x18: back to loop (0x38); whatever woke us, sleep again.
    0x17ff_fffa,
    // 0x54 handler: mov x0, #0: exit status 0.
    0xd280_0000,
    // 0x58 mov x8, #94: exit_group.
    0xd280_0bc8,
    // 0x5c svc #0: exit_group(0); does not return.
    0xd400_0001,
];

/// The complete static executable for `cpu`: ELF header, program headers, machine code.
pub fn executable(cpu: Cpu) -> Vec<u8> {
    let code = cpu.code();
    let headers = u64::from(ELF_HEADER_SIZE + PROGRAM_HEADERS * PROGRAM_HEADER_SIZE);
    let file_size = headers + code.len() as u64;
    let mut elf = Vec::with_capacity(file_size as usize);

    // ELF header.
    elf.extend_from_slice(b"\x7fELF");
    elf.push(2); // EI_CLASS: 64-bit
    elf.push(1); // EI_DATA: little endian
    elf.push(1); // EI_VERSION: current
    elf.push(0); // EI_OSABI: System V
    elf.extend_from_slice(&[0; 8]); // EI_ABIVERSION and padding
    elf.extend_from_slice(&2u16.to_le_bytes()); // e_type: ET_EXEC
    elf.extend_from_slice(&cpu.elf_machine().to_le_bytes()); // e_machine
    elf.extend_from_slice(&1u32.to_le_bytes()); // e_version
    elf.extend_from_slice(&(LOAD_ADDRESS + headers).to_le_bytes()); // e_entry: first instruction
    elf.extend_from_slice(&u64::from(ELF_HEADER_SIZE).to_le_bytes()); // e_phoff
    elf.extend_from_slice(&0u64.to_le_bytes()); // e_shoff: no sections
    elf.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    elf.extend_from_slice(&ELF_HEADER_SIZE.to_le_bytes()); // e_ehsize
    elf.extend_from_slice(&PROGRAM_HEADER_SIZE.to_le_bytes()); // e_phentsize
    elf.extend_from_slice(&PROGRAM_HEADERS.to_le_bytes()); // e_phnum
    elf.extend_from_slice(&64u16.to_le_bytes()); // e_shentsize
    elf.extend_from_slice(&0u16.to_le_bytes()); // e_shnum
    elf.extend_from_slice(&0u16.to_le_bytes()); // e_shstrndx

    // The whole file, headers included, mapped read + execute at LOAD_ADDRESS.
    program_header(
        &mut elf,
        PT_LOAD,
        PF_R | PF_X,
        LOAD_ADDRESS,
        file_size,
        0x1000,
    );
    // A stack that is readable and writable but not executable.
    program_header(&mut elf, PT_GNU_STACK, PF_R | PF_W, 0, 0, 16);

    elf.extend_from_slice(&code);
    elf
}

/// Appends one ELF64 program header for a segment at file offset 0.
fn program_header(elf: &mut Vec<u8>, kind: u32, flags: u32, address: u64, size: u64, align: u64) {
    elf.extend_from_slice(&kind.to_le_bytes()); // p_type
    elf.extend_from_slice(&flags.to_le_bytes()); // p_flags
    elf.extend_from_slice(&0u64.to_le_bytes()); // p_offset
    elf.extend_from_slice(&address.to_le_bytes()); // p_vaddr
    elf.extend_from_slice(&address.to_le_bytes()); // p_paddr
    elf.extend_from_slice(&size.to_le_bytes()); // p_filesz
    elf.extend_from_slice(&size.to_le_bytes()); // p_memsz
    elf.extend_from_slice(&align.to_le_bytes()); // p_align
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_architectures_map_to_cpus() {
        assert_eq!(Cpu::from_engine_architecture("x86_64"), Some(Cpu::X86_64));
        assert_eq!(Cpu::from_engine_architecture("amd64"), Some(Cpu::X86_64));
        assert_eq!(Cpu::from_engine_architecture("aarch64"), Some(Cpu::Aarch64));
        assert_eq!(Cpu::from_engine_architecture("arm64"), Some(Cpu::Aarch64));
        for other in ["armv7l", "s390x", "ppc64le", "riscv64", "", "X86_64"] {
            assert_eq!(Cpu::from_engine_architecture(other), None, "{other}");
        }
        assert_eq!(Cpu::X86_64.image_architecture(), "amd64");
        assert_eq!(Cpu::Aarch64.image_architecture(), "arm64");
    }

    #[test]
    fn headers_describe_one_static_segment_for_the_right_machine() {
        for (cpu, machine) in [(Cpu::X86_64, EM_X86_64), (Cpu::Aarch64, EM_AARCH64)] {
            let elf = executable(cpu);
            let u16_at = |at: usize| u16::from_le_bytes([elf[at], elf[at + 1]]);
            let u64_at = |at: usize| u64::from_le_bytes(elf[at..at + 8].try_into().unwrap());
            assert_eq!(&elf[..4], b"\x7fELF");
            assert_eq!(u16_at(16), 2, "ET_EXEC");
            assert_eq!(u16_at(18), machine);
            assert_eq!(
                u64_at(24),
                LOAD_ADDRESS + 176,
                "entry right after the headers"
            );
            assert_eq!(u16_at(56), 2, "two program headers");
            // The load segment covers the whole file.
            assert_eq!(u64_at(64 + 32), elf.len() as u64);
            assert_eq!(elf.len(), 176 + cpu.code().len());
        }
        assert_eq!(X86_64_CODE.len(), 0x5b);
        assert_eq!(AARCH64_CODE.len() * 4, 0x60);
    }

    /// Runs the x86-64 program on this machine: it installs its handlers, sleeps, and exits 0
    /// on SIGTERM and on SIGINT.
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    #[test]
    fn the_x86_64_program_sleeps_until_sigterm_or_sigint_then_exits_zero() {
        use std::os::unix::fs::PermissionsExt;
        use std::time::{Duration, Instant};

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pause");
        std::fs::write(&path, executable(Cpu::X86_64)).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        for signal in ["TERM", "INT"] {
            let mut child = std::process::Command::new(&path).spawn().unwrap();
            // Both handlers installed (bits 2 and 15 of SigCgt) and asleep: then signal it.
            let status = format!("/proc/{}/status", child.id());
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let text = std::fs::read_to_string(&status).unwrap();
                let field = |name: &str| {
                    text.lines()
                        .find_map(|l| l.strip_prefix(name))
                        .map(str::trim)
                        .unwrap()
                        .to_string()
                };
                let caught = u64::from_str_radix(&field("SigCgt:"), 16).unwrap();
                let handlers = (1 << (15 - 1)) | (1 << (2 - 1));
                if caught == handlers && field("State:").starts_with('S') {
                    break;
                }
                assert!(Instant::now() < deadline, "never settled:\n{text}");
                assert!(child.try_wait().unwrap().is_none(), "exited early");
                std::thread::sleep(Duration::from_millis(10));
            }
            let sent = std::process::Command::new("kill")
                .args([format!("-{signal}"), child.id().to_string()])
                .status()
                .unwrap();
            assert!(sent.success());
            let exit = child.wait().unwrap();
            assert_eq!(exit.code(), Some(0), "SIG{signal}: {exit:?}");
        }
    }
}
