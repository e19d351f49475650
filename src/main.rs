// Reviews allocate and free many small syntax-tree nodes; mimalloc does that markedly faster than the
// system allocator (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    // First, so that a Ctrl-C at any later point still stops the temporary PostgreSQL servers.
    if let Err(err) = migagent::shadow::signals::install_signal_teardown() {
        migagent::escape::eprint(&format!(
            "warning: {err}; an interrupted run may leave a temporary PostgreSQL server running until the \
             next run removes it"
        ));
    }
    migagent::cli::main()
}
