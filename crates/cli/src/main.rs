//! The `vrata-mirror` binary: arguments in, one command run, its output on
//! standard output; a failure is one line on standard error and exit 1.

use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match vrata_mirror_cli::parse_args(std::env::args_os()) {
        Ok(cli) => cli,
        Err(err) => return usage(&err),
    };
    match vrata_mirror_cli::run(&cli) {
        Ok(output) => {
            let mut stdout = std::io::stdout().lock();
            if stdout
                .write_all(output.as_bytes())
                .and_then(|()| stdout.flush())
                .is_err()
            {
                return ExitCode::from(1);
            }
            ExitCode::SUCCESS
        }
        Err(failure) => {
            if failure.message.starts_with("vrata-mirror: ") {
                eprintln!("{}", failure.message);
            } else {
                eprintln!("vrata-mirror: error: {}", failure.message);
            }
            ExitCode::from(u8::try_from(failure.code).unwrap_or(1))
        }
    }
}

/// `--help` and `--version` as clap prints them; a usage error as one line
/// (exit 2).
fn usage(err: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = err.print();
        return ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(0));
    }
    // clap's message, up to its usage block, on one line.
    let rendered = err.render().to_string();
    let words: Vec<&str> = rendered
        .lines()
        .take_while(|l| !l.is_empty() && !l.starts_with("Usage:"))
        .map(str::trim)
        .collect();
    let line = words.join(" ");
    let line = line.strip_prefix("error: ").unwrap_or(&line);
    eprintln!("vrata-mirror: error: {line} (see --help)");
    ExitCode::from(2)
}
