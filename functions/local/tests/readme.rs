//! The README's walk-through ("Your first webhook, on your laptop"), run as written.
//!
//! Between `<!-- walk:start -->` and `<!-- walk:end -->`, each `<!-- walk: ... -->` comment
//! is a cue for the shell block that follows it, or a check on its own:
//!
//! - `background NAME until "TEXT"`: the next block runs as a process of its own (a
//!   terminal), until its output (stdout and stderr) shows TEXT;
//! - `run` (optionally `, expect "TEXT"`): the next block runs in one shell that every
//!   `run` shares (so variables carry over), and must exit 0 (and print TEXT);
//! - `expect NAME "TEXT"` (optionally `times N`): NAME's output shows TEXT (N times);
//! - `stop NAME`: Ctrl-C (SIGINT to its process group), and it must exit.
//!
//! One substitution: `cargo run --release --bin webhooks-local` runs the binary this test
//! was built with, so the test neither builds again nor measures a release build.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(30);

#[derive(Debug, PartialEq)]
enum Step {
    Background {
        name: String,
        until: String,
        script: String,
    },
    Run {
        expect: Option<String>,
        script: String,
    },
    Expect {
        name: String,
        text: String,
        times: usize,
    },
    Stop {
        name: String,
    },
}

/// The quoted strings in a cue, unescaped (`\"` and `\\`).
fn quoted(cue: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut chars = cue.chars();
    while let Some(c) = chars.next() {
        if c != '"' {
            continue;
        }
        let mut text = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => text.extend(chars.next()),
                '"' => break,
                other => text.push(other),
            }
        }
        found.push(text);
    }
    found
}

fn steps(readme: &str) -> Vec<Step> {
    let start = readme.find("<!-- walk:start -->").expect("walk:start");
    let end = readme.find("<!-- walk:end -->").expect("walk:end");
    let mut lines = readme[start..end].lines();
    let mut steps = Vec::new();
    let next_block = |lines: &mut std::str::Lines<'_>| -> String {
        lines
            .by_ref()
            .find(|l| l.trim() == "```sh")
            .expect("a sh block after the cue");
        lines
            .by_ref()
            .take_while(|l| l.trim() != "```")
            .collect::<Vec<_>>()
            .join("\n")
    };
    while let Some(line) = lines.next() {
        let Some(cue) = line
            .trim()
            .strip_prefix("<!-- walk: ")
            .and_then(|c| c.strip_suffix(" -->"))
        else {
            continue;
        };
        let words: Vec<&str> = cue.split_whitespace().collect();
        let texts = quoted(cue);
        let step = match words.first().copied() {
            Some("background") => Step::Background {
                name: words[1].to_owned(),
                until: texts[0].clone(),
                script: next_block(&mut lines),
            },
            Some("run") | Some("run,") => Step::Run {
                expect: texts.first().cloned(),
                script: next_block(&mut lines),
            },
            Some("expect") => Step::Expect {
                name: words[1].to_owned(),
                text: texts[0].clone(),
                times: cue
                    .rsplit_once(" times ")
                    .and_then(|(_, n)| n.trim().parse().ok())
                    .unwrap_or(1),
            },
            Some("stop") => Step::Stop {
                name: words[1].to_owned(),
            },
            _ => panic!("unknown cue: {cue}"),
        };
        steps.push(step);
    }
    steps
}

/// The README's command, pointed at the binary under test.
fn as_run_here(script: &str) -> String {
    let binary = env!("CARGO_BIN_EXE_webhooks-local");
    script
        .replace("cargo run --release --bin webhooks-local --", binary)
        .replace("cargo run --release --bin webhooks-local", binary)
}

fn shell() -> Command {
    let mut command = Command::new("bash");
    command
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .env("XDG_CACHE_HOME", support::cache_dir());
    // Only what the README's commands set applies.
    for name in support::SETTINGS {
        command.env_remove(name);
    }
    command
}

/// A terminal: a process group running one block, its output collected.
struct Terminal {
    child: Child,
    output: Arc<Mutex<String>>,
}

impl Terminal {
    fn start(script: &str) -> Self {
        let mut child = shell()
            .args(["-c", &as_run_here(script)])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("spawn bash");
        let output = Arc::new(Mutex::new(String::new()));
        for stream in [
            Box::new(child.stdout.take().expect("stdout")) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().expect("stderr")),
        ] {
            let output = output.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let mut all = output.lock().unwrap_or_else(|e| e.into_inner());
                    all.push_str(&line);
                    all.push('\n');
                }
            });
        }
        Self { child, output }
    }

    fn output(&self) -> String {
        self.output
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn wait_for(&self, name: &str, text: &str, times: usize) {
        let deadline = Instant::now() + WAIT;
        while self.output().matches(text).count() < times {
            assert!(
                Instant::now() < deadline,
                "{name} never showed {text:?} {times} time(s); it printed:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Ctrl-C: SIGINT to the group, then the exit status.
    fn interrupt(&mut self, name: &str) -> std::process::ExitStatus {
        let group = format!("-{}", self.child.id());
        let sent = Command::new("kill")
            .args(["-INT", "--", &group])
            .status()
            .expect("kill");
        assert!(sent.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{name} did not stop on Ctrl-C (SIGINT ignored: {}); it printed:\n{}",
                ignores_sigint(self.child.id()).map_or("unknown".into(), |i| i.to_string()),
                self.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Whether process `pid` ignores SIGINT (from Linux's `/proc`). A program started with
/// SIGINT ignored, as a background job of a non-interactive shell is, may keep it so
/// (Python does), and Ctrl-C then does nothing to it.
fn ignores_sigint(pid: u32) -> Option<bool> {
    const SIGINT_BIT: u64 = 1 << (2 - 1);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let mask = status.lines().find_map(|l| l.strip_prefix("SigIgn:"))?;
    let mask = u64::from_str_radix(mask.trim(), 16).ok()?;
    Some(mask & SIGINT_BIT != 0)
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
    }
}

/// The shell every `run` block shares.
struct Foreground {
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    _child: Child,
}

const DONE: &str = "__walk_done__";

impl Foreground {
    fn start() -> Self {
        let mut child = shell()
            .arg("-s")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn bash");
        let lines = support::line_channel(child.stdout.take().expect("stdout"));
        Self {
            stdin: child.stdin.take().expect("stdin"),
            lines,
            _child: child,
        }
    }

    /// Run a block; its output, once it exited 0.
    fn run(&mut self, script: &str) -> String {
        writeln!(
            self.stdin,
            "{}\necho; echo \"{DONE} $?\"",
            as_run_here(script)
        )
        .expect("write to bash");
        let mut output = String::new();
        loop {
            let line = self
                .lines
                .recv_timeout(WAIT)
                .unwrap_or_else(|_| panic!("block did not finish:\n{script}\n{output}"));
            if let Some(code) = line.strip_prefix(DONE) {
                assert_eq!(code.trim(), "0", "block failed:\n{script}\n{output}");
                return output;
            }
            output.push_str(&line);
            output.push('\n');
        }
    }
}

/// The README's commands use fixed ports (3000, 8000): one walk at a time on a machine,
/// whichever checkout runs it, and a clear failure if something else holds them.
fn machine_wide_turn() -> std::fs::File {
    let lock = std::fs::File::create(std::env::temp_dir().join("avw-readme-walk.lock"))
        .expect("lock file");
    lock.lock().expect("wait for another walk-through to end");
    for port in [3000, 8000] {
        assert!(
            std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(),
            "port {port} is in use (a local server or app?): the README's walk-through needs it"
        );
    }
    lock
}

#[test]
fn the_walk_through_works_as_written() {
    let _turn = machine_wide_turn();
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README.md");
    let steps = steps(&readme);
    assert!(steps.len() >= 8, "{steps:?}");

    let mut terminals: Vec<(String, Terminal)> = Vec::new();
    let mut foreground = Foreground::start();
    let find = |terminals: &[(String, Terminal)], name: &str| {
        terminals
            .iter()
            .rposition(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no terminal {name}"))
    };
    for step in &steps {
        match step {
            Step::Background {
                name,
                until,
                script,
            } => {
                let terminal = Terminal::start(script);
                terminal.wait_for(name, until, 1);
                terminals.push((name.clone(), terminal));
            }
            Step::Run { expect, script } => {
                let output = foreground.run(script);
                if let Some(text) = expect {
                    assert!(output.contains(text.as_str()), "{text:?} not in:\n{output}");
                }
            }
            Step::Expect { name, text, times } => {
                terminals[find(&terminals, name)]
                    .1
                    .wait_for(name, text, *times);
            }
            Step::Stop { name } => {
                let at = find(&terminals, name);
                let (name, mut terminal) = terminals.remove(at);
                let status = terminal.interrupt(&name);
                assert!(
                    status.success(),
                    "{name} exited {status}:\n{}",
                    terminal.output()
                );
            }
        }
    }
    // The listener deleted its endpoint on the way out.
    let left = foreground.run("curl -s \"$API/endpoints\" -H \"$AUTH\"");
    assert!(left.contains("\"endpoints\":[]"), "{left}");
}

#[test]
fn cues_parse() {
    let readme = "<!-- walk:start -->\n<!-- walk: background a until \"x \\\"y\\\"\" -->\n```sh\necho 1\n```\n<!-- walk: expect a \"q\" times 3 -->\n<!-- walk: run, expect \"z\" -->\n```sh\nA=1\necho $A\n```\n<!-- walk: stop a -->\n<!-- walk:end -->";
    assert_eq!(
        steps(readme),
        vec![
            Step::Background {
                name: "a".into(),
                until: "x \"y\"".into(),
                script: "echo 1".into()
            },
            Step::Expect {
                name: "a".into(),
                text: "q".into(),
                times: 3
            },
            Step::Run {
                expect: Some("z".into()),
                script: "A=1\necho $A".into()
            },
            Step::Stop { name: "a".into() },
        ]
    );
}
