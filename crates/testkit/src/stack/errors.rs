//! Unexpected ERROR log lines fail the test: ERROR means a human must look, so a process that
//! logged one is a failure unless the test named the message it provokes on purpose.

use std::{
    fs,
    path::Path,
    sync::{Mutex, PoisonError},
};

/// The ERROR lines of a process's JSON log that no [`ErrorCheck::expect`] call allowed.
#[derive(Debug, Default)]
pub struct ErrorCheck {
    /// Messages the test expects at ERROR level (substrings of the line).
    expected: Mutex<Vec<String>>,
    /// Set once the check ran, so it runs once per process.
    done: bool,
}

impl ErrorCheck {
    /// Allows ERROR lines containing `message`.
    pub fn expect(&self, message: &str) {
        self.expected
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(message.to_owned());
    }

    fn unexpected(&self, logs: &str) -> Vec<String> {
        let expected = self.expected.lock().unwrap_or_else(PoisonError::into_inner);
        error_lines(logs)
            .into_iter()
            .filter(|line| !expected.iter().any(|m| line.contains(m.as_str())))
            .collect()
    }

    /// The unexpected ERROR lines of `log`, prefixed with `what`, the first time it is called.
    pub fn take(&mut self, what: &str, log: &Path) -> Vec<String> {
        if std::mem::replace(&mut self.done, true) {
            return Vec::new();
        }
        let logs = fs::read_to_string(log).unwrap_or_default();
        self.unexpected(&logs)
            .into_iter()
            .map(|line| format!("{what} ({}): {line}", log.display()))
            .collect()
    }
}

/// Panics with `lines` unless they are empty or the thread is already panicking (a second
/// panic would abort the test binary and hide the first failure).
pub fn fail_on_unexpected_errors(lines: &[String]) {
    if lines.is_empty() || std::thread::panicking() {
        return;
    }
    panic!(
        "unexpected ERROR log lines (if the test provokes them, name each with \
         expect_error(message) on the process handle):\n{}",
        lines.join("\n")
    );
}

/// Lines of a JSON log at ERROR level.
pub fn error_lines(logs: &str) -> Vec<String> {
    logs.lines()
        .filter(|l| l.contains("\"level\":\"ERROR\""))
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = concat!(
        r#"{"level":"INFO","fields":{"message":"listening"}}"#,
        "\n",
        r#"{"level":"ERROR","fields":{"message":"keyring reload failed; still serving"}}"#,
        "\n",
        r#"{"level":"ERROR","fields":{"message":"internal error"}}"#,
        "\n",
    );

    #[test]
    fn only_error_lines_no_expectation_names_are_reported_and_only_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("kms-1.log");
        fs::write(&log, LOG).expect("write log");
        let mut check = ErrorCheck::default();
        check.expect("keyring reload failed");
        let lines = check.take("kms", &log);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].starts_with("kms ("), "{}", lines[0]);
        assert!(lines[0].contains("internal error"), "{}", lines[0]);
        assert!(check.take("kms", &log).is_empty());
    }

    #[test]
    #[should_panic(expected = "unexpected ERROR log lines")]
    fn unexpected_lines_fail_the_test() {
        fail_on_unexpected_errors(&["kms: an ERROR".to_owned()]);
    }

    #[test]
    fn nothing_is_raised_while_already_panicking() {
        struct FailsInDrop;
        impl Drop for FailsInDrop {
            fn drop(&mut self) {
                fail_on_unexpected_errors(&["kms: an ERROR".to_owned()]);
            }
        }
        let result = std::panic::catch_unwind(|| {
            let _guard = FailsInDrop;
            panic!("the test's own failure");
        });
        let payload = result.expect_err("the first panic propagates");
        assert_eq!(
            payload.downcast_ref::<&str>(),
            Some(&"the test's own failure")
        );
    }
}
