// Reviews allocate and free many small syntax-tree nodes; mimalloc does that markedly faster than the
// system allocator (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    migagent::cli::main()
}
