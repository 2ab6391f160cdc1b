//! ocib: builds, tests and publishes container images from Bazel BUILD files.
//!
//! A thin wrapper: everything lives in the library (`src/lib.rs`).

fn main() {
    // glibc gives each thread's arena memory in small steps (one mprotect or brk per growth,
    // with 128 KiB of padding): decoding 5,000 cached packages on the load threads spent about
    // a fifth of its samples growing heaps. A larger pad reserves address space, not memory
    // (pages count only once touched).
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_TOP_PAD, 64 << 20);
    }
    let code = ocib::cli::run(std::env::args_os().skip(1).collect());
    std::process::exit(code);
}
