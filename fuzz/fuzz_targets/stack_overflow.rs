//! Makes a stack overflow in a fuzz target a reported finding with a reproducer.
//!
//! libFuzzer's crash handler for SIGSEGV runs on the faulting thread's stack; after a stack
//! overflow there is none left, so without a sanitizer (ASan runs its handlers on an
//! alternate stack) the process dies silently and the input is lost. Rust's own overflow
//! handler is not there either: libFuzzer's C++ `main` starts the process, not Rust's
//! runtime. So: give the fuzzing thread an alternate signal stack and re-register
//! libFuzzer's SIGSEGV/SIGBUS handlers with `SA_ONSTACK`, once they are installed (they are
//! by the first input).

use std::sync::Once;

/// Call at the start of every input; does its work once.
pub fn report_stack_overflows() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        const SIZE: usize = 1 << 20;
        let stack: &'static mut [u8] = Box::leak(vec![0u8; SIZE].into_boxed_slice());
        // SAFETY: the alternate stack is leaked, so it outlives the thread; the sigaction
        // structs are initialised by the kernel before use and only re-registered with one
        // more flag.
        unsafe {
            let ss = libc::stack_t { ss_sp: stack.as_mut_ptr().cast(), ss_flags: 0, ss_size: SIZE };
            if libc::sigaltstack(&ss, std::ptr::null_mut()) != 0 {
                return;
            }
            for sig in [libc::SIGSEGV, libc::SIGBUS] {
                let mut act: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(sig, std::ptr::null(), &mut act) == 0
                    && act.sa_sigaction != libc::SIG_DFL
                    && act.sa_sigaction != libc::SIG_IGN
                {
                    act.sa_flags |= libc::SA_ONSTACK;
                    libc::sigaction(sig, &act, std::ptr::null_mut());
                }
            }
        }
    });
}
