//! The stdin Fibonacci handler of `fib_stdin`, fed lines through a socket pair and a file.

use std::cell::RefCell;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::Duration;

use examples::fib::{self, FibSession, Mode};
use loop_api::{EventLoop, ExceptionContext};
use loop_policy::Backend;

/// A session on a new loop whose answers are collected, and which stops the loop when done.
fn session(mode: Mode) -> (EventLoop, Rc<FibSession>, Rc<RefCell<Vec<String>>>) {
    let lp = Backend::Auto.new_event_loop().unwrap();
    let answers = Rc::new(RefCell::new(Vec::new()));
    let out = answers.clone();
    let stopper = lp.clone();
    let s = FibSession::new(
        &lp,
        mode,
        move |a| out.borrow_mut().push(a.to_string()),
        move || stopper.stop(),
    );
    (lp, s, answers)
}

fn position(answers: &[String], prefix: &str) -> usize {
    answers
        .iter()
        .position(|a| a.starts_with(prefix))
        .unwrap_or_else(|| panic!("no answer starting {prefix:?} in {answers:?}"))
}

#[test]
fn answers_lines_from_a_watched_fd_without_blocking() {
    let (lp, s, answers) = session(Mode::Chunked);
    let (reader, mut writer) = UnixStream::pair().unwrap();
    fib::watch_reader(&s, reader).unwrap();
    // The last line has no newline: it is answered at end of input.
    writer.write_all(b"30000\n10\n\nabc\n7").unwrap();
    drop(writer);
    lp.run_forever().unwrap();
    lp.close().unwrap();

    let answers = answers.borrow();
    assert_eq!(answers.len(), 4, "{answers:?}");
    assert!(answers.contains(&"fib(10) = 55".to_string()));
    assert!(answers.contains(&"fib(7) = 13".to_string()));
    assert!(answers[position(&answers, "not a number")].contains("\"abc\""));
    let big = &answers[position(&answers, "fib(30000)")];
    assert_eq!(
        big,
        "fib(30000) = 19042435673462438748...21810443367097960000 (6270 digits)"
    );
    // fib(10) was asked after fib(30000) but answered first: the big one gave way.
    assert!(position(&answers, "fib(10)") < position(&answers, "fib(30000)"));
}

#[test]
fn reads_a_regular_file_on_the_thread_pool() {
    let path = std::env::temp_dir().join(format!("fib-input-{}.txt", std::process::id()));
    std::fs::write(&path, "1\n2\n3\n90\n").unwrap();
    let file = std::fs::File::open(&path).unwrap();
    std::fs::remove_file(&path).unwrap();

    let (lp, s, answers) = session(Mode::Chunked);
    lp.create_task(fib::read_in_executor(s, file)).unwrap();
    lp.run_forever().unwrap();
    lp.close().unwrap();
    let mut answers = answers.borrow().clone();
    answers.sort();
    assert_eq!(
        answers,
        [
            "fib(1) = 1",
            "fib(2) = 1",
            "fib(3) = 2",
            "fib(90) = 2880067194370816120"
        ]
    );
}

#[test]
fn blocking_mode_answers_in_one_poll_and_is_reported_as_slow() {
    let (lp, s, answers) = session(Mode::Blocking);
    let reports = Rc::new(RefCell::new(Vec::<ExceptionContext>::new()));
    let r = reports.clone();
    lp.set_exception_handler(Some(Box::new(move |ctx| r.borrow_mut().push(ctx.clone()))));
    lp.set_debug(true);
    // Any callback is slower than this: the naive computation is reported for sure.
    lp.set_slow_callback_duration(Duration::from_nanos(1));
    let (reader, mut writer) = UnixStream::pair().unwrap();
    fib::watch_reader(&s, reader).unwrap();
    writer.write_all(b"25\n51\n").unwrap();
    drop(writer);
    lp.run_forever().unwrap();
    lp.close().unwrap();

    let answers = answers.borrow();
    // The complaint is given as the line is read; the number on its task's poll.
    assert_eq!(answers.len(), 2, "{answers:?}");
    assert!(answers[0].contains("at most 50"), "{answers:?}");
    assert_eq!(answers[1], "fib(25) = 75025");
    assert!(
        reports.borrow().iter().any(|ctx| ctx.duration.is_some()),
        "debug mode reported the slow callback: {:?}",
        reports.borrow()
    );
}
