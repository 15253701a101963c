//! Build script of the `gt` package: link gcc's unwinder into the binaries statically.
//!
//! Rust's standard library on `*-linux-gnu` unwinds panics with the shared `libgcc_s`.
//! Loading that library runs its constructor `__cpu_indicator_init`, which executes the CPUID
//! instruction dozens of times; under virtualization every CPUID traps to the hypervisor
//! (~11 µs each on our build machines), about 0.3 ms of every `gt` run, a sixth of a small
//! `gt keynote` query (keynote/README.md). Naming gcc's static unwinder, `libgcc_eh.a` (the one
//! a `+crt-static` build uses), ahead of std's `-lgcc_s` resolves the unwinding symbols from
//! it, and the linker's `--as-needed` (rustc's default) then leaves `libgcc_s` out. Panics
//! unwind as before. Where `libgcc_eh.a` cannot be found (another toolchain, a cross build),
//! nothing changes.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let static_crt = var("CARGO_CFG_TARGET_FEATURE")
        .split(',')
        .any(|f| f == "crt-static");
    if var("CARGO_CFG_TARGET_OS") != "linux"
        || var("CARGO_CFG_TARGET_ENV") != "gnu"
        || static_crt
        || var("TARGET") != var("HOST")
    {
        return;
    }
    // `cc` is the linker rustc drives on this target; it knows where its libgcc_eh.a is.
    let Some(archive) = Command::new("cc")
        .arg("-print-file-name=libgcc_eh.a")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        .filter(|p| p.is_absolute() && p.is_file())
    else {
        println!("cargo:warning=libgcc_eh.a not found: gt links the shared libgcc_s");
        return;
    };
    if let Some(dir) = archive.parent() {
        println!("cargo:rustc-link-search=native={}", dir.display());
        println!("cargo:rustc-link-lib=static=gcc_eh");
    }
}
