fn main() -> std::process::ExitCode {
    platform::alloc::limit_malloc_arenas();
    platform::cli::run()
}
