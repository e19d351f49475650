fn main() -> std::process::ExitCode {
    migagent::cli::main()
}
