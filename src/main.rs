fn main() -> std::process::ExitCode {
    platform::cli::run()
}
