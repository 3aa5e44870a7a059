use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = gigmcp::cli::Cli::parse();
    match gigmcp::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
