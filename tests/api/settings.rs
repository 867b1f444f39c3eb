//! Settings out of range stop `deltran serve` at start with exit code 2 and a message
//! naming the flag, the value and the range, whether the value came from a flag, an
//! environment variable or the config file. No database is needed,
//! since the settings are checked before anything starts.

use std::process::{Command, Output};

fn deltran() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_deltran"));
    // Only what each test sets: no setting leaks in from the caller's environment.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        if name.starts_with("DELTRAN_") || name == "DATABASE_URL" {
            command.env_remove(name);
        }
    }
    command
}

/// Exit code 2, nothing on stdout, and stderr naming the flag, the value and the range.
fn assert_refused(output: &Output, flag: &str, value: &str, range: &str) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    assert!(output.stdout.is_empty(), "stdout: {:?}", output.stdout);
    for part in [flag, &format!("'{value}'"), range] {
        assert!(
            stderr.contains(part),
            "{part} missing from stderr: {stderr}"
        );
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

#[test]
fn a_zero_batch_size_flag_stops_serve_with_exit_code_2() {
    let output = deltran()
        .args(["serve", "--batch-size-max", "0"])
        .output()
        .unwrap();
    let stderr = assert_refused(&output, "--batch-size-max", "0", "1..=100000");
    assert!(
        stderr.contains("invalid value '0' for '--batch-size-max"),
        "{stderr}"
    );
}

#[test]
fn a_zero_batch_size_variable_is_refused_the_same_way() {
    let output = deltran()
        .arg("serve")
        .env("DELTRAN_BATCH_SIZE_MAX", "0")
        .output()
        .unwrap();
    let stderr = assert_refused(&output, "--batch-size-max", "0", "1..=100000");
    assert!(stderr.contains("DELTRAN_BATCH_SIZE_MAX"), "{stderr}");
}

#[test]
fn a_config_file_value_out_of_range_names_the_file_and_line() {
    let dir = std::env::temp_dir().join(format!("deltran-settings-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("deltran.conf");
    std::fs::write(
        &path,
        "# a window of one millisecond\nDELTRAN_WINDOW_DURATION_MS=1\n",
    )
    .unwrap();
    let output = deltran()
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = assert_refused(&output, "--window-duration-ms", "1", "10..=86400000");
    assert!(
        stderr.contains(&format!("line 2 of {}", path.display())),
        "{stderr}"
    );

    std::fs::write(&path, "DELTRAN_HTTP_WORKERS=2\nDELTRAN_WORKERS=4\n").unwrap();
    let output = deltran()
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("{}:2: `DELTRAN_WORKERS`", path.display())),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(dir);
}
