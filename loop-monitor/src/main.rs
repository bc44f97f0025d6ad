//! `loop-monitor HOST:PORT` (or `unix:PATH`): talk to a program's loop monitor.

use std::io::IsTerminal;
use std::process::ExitCode;

const USAGE: &str = "usage: loop-monitor HOST:PORT | PORT | unix:PATH
  connects to the loop monitor of a program started with LOOP_MONITOR=ADDRESS;
  type help for its commands; history, !! and !N repeat earlier commands";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let addr = match args.as_slice() {
        [h] if h == "-h" || h == "--help" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        [addr] => addr,
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let (mut conn, greeting) = match loop_monitor::Connection::connect(addr) {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "loop-monitor: cannot connect to {e} (is the program running with LOOP_MONITOR={addr}?)"
            );
            return ExitCode::FAILURE;
        }
    };
    print!("{greeting}");
    let stdin = std::io::stdin();
    let prompt = stdin.is_terminal().then_some("monitor> ");
    match loop_monitor::repl(&mut conn, stdin.lock(), std::io::stdout(), prompt) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loop-monitor: {e}");
            ExitCode::FAILURE
        }
    }
}
