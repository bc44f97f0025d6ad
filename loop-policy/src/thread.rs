//! Facts about the current thread the policy needs: is it the main thread, and its name.

/// True on the process's main thread (the one that ran `main`).
///
/// Linux/Android: the thread id equals the process id. macOS and the BSDs: `pthread_main_np`.
/// Elsewhere: the thread is named `"main"` (what std names the main thread).
pub(crate) fn is_main_thread() -> bool {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        // SAFETY: gettid and getpid take no arguments, touch no memory and cannot fail.
        unsafe { libc::gettid() == libc::getpid() }
    }
    #[cfg(any(
        target_os = "macos",
        target_os = "ios",
        target_os = "freebsd",
        target_os = "dragonfly",
        target_os = "openbsd"
    ))]
    {
        // SAFETY: pthread_main_np takes no arguments, touches no memory and cannot fail.
        unsafe { libc::pthread_main_np() == 1 }
    }
    #[cfg(not(any(
        target_os = "linux",
        target_os = "android",
        target_os = "macos",
        target_os = "ios",
        target_os = "freebsd",
        target_os = "dragonfly",
        target_os = "openbsd"
    )))]
    {
        std::thread::current().name() == Some("main")
    }
}

/// The current thread's name for messages: its name, or `Thread-N` (N from its `ThreadId`)
/// when it has none.
pub(crate) fn current_thread_name() -> String {
    let t = std::thread::current();
    if let Some(name) = t.name() {
        return name.to_string();
    }
    // `ThreadId`'s number is only reachable through `Debug` ("ThreadId(7)") on stable Rust.
    let id = format!("{:?}", t.id());
    let digits: String = id.chars().filter(char::is_ascii_digit).collect();
    format!("Thread-{digits}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_threads_are_not_the_main_thread() {
        assert!(!is_main_thread());
        let other = std::thread::spawn(is_main_thread).join().unwrap();
        assert!(!other);
    }

    #[test]
    fn names_named_and_unnamed_threads() {
        let named = std::thread::Builder::new()
            .name("worker-7".into())
            .spawn(current_thread_name)
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(named, "worker-7");
        let unnamed = std::thread::spawn(current_thread_name).join().unwrap();
        assert!(unnamed.starts_with("Thread-"), "{unnamed}");
        assert!(unnamed.len() > "Thread-".len(), "{unnamed}");
    }
}
