//! A client for the loop monitor (`loop_policy::monitor`, started with `LOOP_MONITOR`): sends
//! command lines, prints the replies, with a history (`history`, `!!`, `!N`), as
//! `python -m curio.monitor` does.
//!
//! ```text
//! $ LOOP_MONITOR=127.0.0.1:5000 my-program &
//! $ cargo run -p loop-monitor -- 127.0.0.1:5000
//! monitor> ps
//! ```
#![deny(missing_docs)]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;

/// A connection to a monitor.
#[derive(Debug)]
pub struct Connection {
    reader: BufReader<Box<dyn Stream>>,
    writer: Box<dyn Stream>,
}

/// A socket of either family.
trait Stream: Read + Write + Send + std::fmt::Debug {
    fn try_clone_box(&self) -> io::Result<Box<dyn Stream>>;
}

impl Stream for TcpStream {
    fn try_clone_box(&self) -> io::Result<Box<dyn Stream>> {
        Ok(Box::new(self.try_clone()?))
    }
}

impl Stream for UnixStream {
    fn try_clone_box(&self) -> io::Result<Box<dyn Stream>> {
        Ok(Box::new(self.try_clone()?))
    }
}

impl Connection {
    /// Connects to `addr` (`HOST:PORT`, a bare `PORT` on 127.0.0.1, or `unix:PATH`) and
    /// reads the monitor's greeting, which it returns.
    ///
    /// # Errors
    /// The connection's error, naming the address; `InvalidData` if the peer closes before
    /// greeting.
    pub fn connect(addr: &str) -> io::Result<(Connection, String)> {
        let named = |e: io::Error| io::Error::new(e.kind(), format!("{addr}: {e}"));
        let stream: Box<dyn Stream> = if let Some(path) = addr.strip_prefix("unix:") {
            Box::new(UnixStream::connect(path).map_err(named)?)
        } else if addr.parse::<u16>().is_ok() {
            Box::new(
                TcpStream::connect(("127.0.0.1", addr.parse::<u16>().unwrap_or(0)))
                    .map_err(named)?,
            )
        } else {
            Box::new(TcpStream::connect(addr).map_err(named)?)
        };
        let mut conn = Connection {
            reader: BufReader::new(stream.try_clone_box()?),
            writer: stream,
        };
        let greeting = conn.reply()?;
        Ok((conn, greeting))
    }

    /// Sends one command line and returns the reply (without its closing empty line).
    ///
    /// # Errors
    /// The socket's; `UnexpectedEof` if the monitor closed the connection.
    pub fn ask(&mut self, line: &str) -> io::Result<String> {
        self.writer
            .write_all(format!("{}\n", line.trim_end()).as_bytes())?;
        self.reply()
    }

    /// Reads a reply: lines up to an empty one.
    fn reply(&mut self) -> io::Result<String> {
        let mut text = String::new();
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line)? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the monitor closed the connection",
                ));
            }
            if line.trim_end_matches(['\n', '\r']).is_empty() {
                return Ok(text);
            }
            text.push_str(&line);
        }
    }
}

/// The lines typed so far, and what `!!`, `!N` and `history` mean.
#[derive(Debug, Default)]
pub struct History {
    lines: Vec<String>,
}

/// What a typed line turns into.
#[derive(Debug, PartialEq, Eq)]
pub enum Input {
    /// A command to send (after history expansion).
    Command(String),
    /// Text to show without asking the monitor (the history, or why an expansion failed).
    Local(String),
    /// Nothing to do (an empty line).
    Nothing,
}

impl History {
    /// Expands `line` (`!!`: the last command, `!N`: command N of `history`) and records
    /// the command sent.
    pub fn expand(&mut self, line: &str) -> Input {
        let line = line.trim();
        let command = match line {
            "" => return Input::Nothing,
            "history" => {
                let listed: Vec<String> = self
                    .lines
                    .iter()
                    .enumerate()
                    .map(|(i, l)| format!("{:>4}  {l}", i + 1))
                    .collect();
                return Input::Local(listed.join("\n"));
            }
            "!!" => match self.lines.last() {
                Some(last) => last.clone(),
                None => return Input::Local("no command yet".into()),
            },
            _ => match line.strip_prefix('!').map(str::parse::<usize>) {
                Some(Ok(n)) if n >= 1 && n <= self.lines.len() => self.lines[n - 1].clone(),
                Some(_) => return Input::Local(format!("{line}: no such command in history")),
                None => line.to_string(),
            },
        };
        self.lines.push(command.clone());
        Input::Command(command)
    }
}

/// Reads command lines from `input` until its end or `quit`, asks `conn`, and writes the
/// replies to `out` (with `prompt` before each line, if given).
///
/// # Errors
/// The connection's or `out`'s.
pub fn repl(
    conn: &mut Connection,
    input: impl BufRead,
    mut out: impl Write,
    prompt: Option<&str>,
) -> io::Result<()> {
    let mut history = History::default();
    if let Some(p) = prompt {
        write!(out, "{p}")?;
        out.flush()?;
    }
    for line in input.lines() {
        match history.expand(&line?) {
            Input::Nothing => {}
            Input::Local(text) => writeln!(out, "{text}")?,
            Input::Command(command) => {
                if prompt.is_none() {
                    writeln!(out, "> {command}")?;
                }
                let reply = conn.ask(&command)?;
                write!(out, "{reply}")?;
                if matches!(command.as_str(), "quit" | "exit") {
                    return Ok(());
                }
            }
        }
        if let Some(p) = prompt {
            write!(out, "{p}")?;
            out.flush()?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_expands_bang_bang_and_numbers() {
        let mut h = History::default();
        assert_eq!(h.expand("!!"), Input::Local("no command yet".into()));
        assert_eq!(h.expand("ps"), Input::Command("ps".into()));
        assert_eq!(h.expand("  "), Input::Nothing);
        assert_eq!(h.expand("where 3"), Input::Command("where 3".into()));
        assert_eq!(h.expand("!!"), Input::Command("where 3".into()));
        assert_eq!(h.expand("!1"), Input::Command("ps".into()));
        assert!(matches!(h.expand("!9"), Input::Local(m) if m.contains("no such")));
        assert_eq!(
            h.expand("history"),
            Input::Local("   1  ps\n   2  where 3\n   3  where 3\n   4  ps".into())
        );
    }
}
