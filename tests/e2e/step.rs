//! `pipetape replay step` driven in a pseudo-terminal: the real binary, real keys, and the
//! screen read back through a terminal emulator (vt100).

use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pipetape_testkit::scenario::Variant;

use crate::Env;

struct Tui {
    child: Child,
    stdin: ChildStdin,
    screen: Arc<Mutex<vt100::Parser>>,
}

impl Tui {
    /// Runs `pipetape replay step ARGS` on an 80×24 pseudo-terminal (made by `script`).
    fn start(env: &Env, args: &str) -> Tui {
        let cmd = format!(
            "stty cols 80 rows 24; exec {} replay step {args}",
            env!("CARGO_BIN_EXE_pipetape")
        );
        let mut child = Command::new("script")
            .args(["-q", "-e", "-c", &cmd, "/dev/null"])
            .env("PIPETAPE_STORE", env.store())
            .env("TERM", "xterm-256color")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("`script` (util-linux) runs pipetape on a pseudo-terminal");
        let mut out = child.stdout.take().unwrap();
        let stdin = child.stdin.take().unwrap();
        let screen = Arc::new(Mutex::new(vt100::Parser::new(24, 80, 0)));
        let s = screen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                s.lock().unwrap().process(&buf[..n]);
            }
        });
        Tui {
            child,
            stdin,
            screen,
        }
    }

    fn text(&self) -> String {
        self.screen.lock().unwrap().screen().contents()
    }

    /// Waits until the screen shows `what` (panics with the screen after 10 s).
    #[track_caller]
    fn wait_for(&self, what: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let t = self.text();
            if t.contains(what) {
                return t;
            }
            if Instant::now() > deadline {
                panic!("the screen never showed {what:?}; it shows:\n{t}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn keys(&mut self, k: &str) {
        self.stdin.write_all(k.as_bytes()).unwrap();
        self.stdin.flush().unwrap();
    }
}

#[test]
fn stepping_through_the_red_run_in_a_terminal() {
    let env = Env::new();
    let p = env.path("red.ptape");
    Variant::red().write(&p).unwrap();
    let mut t = Tui::start(&env, &format!("{} --at 6m50s", p.display()));
    let first = t.wait_for("Timeline");
    assert!(first.contains("full-stack-integration"), "{first}");
    assert!(first.contains("FAILED"), "{first}");
    assert!(first.contains("at +6m5"), "cursor not at --at: {first}");

    // Next failure: keycloak's pod turning Failed (CrashLoopBackOff), with its diff.
    t.keys("f");
    let s = t.wait_for("Object change");
    assert!(s.contains("InProgress → Failed"), "{s}");
    assert!(s.contains("ContainerCrashLooping"), "{s}");

    // Next warning: an event, with the object's state at that time.
    t.keys("w");
    let s = t.wait_for(" Event ");
    assert!(s.contains("Warning"), "{s}");

    // Search.
    t.keys("/orders-db\r");
    let s = t.wait_for("orders-db-credentials");
    assert!(s.contains("ExternalSecret"), "{s}");

    // The state pane follows the cursor; Tab changes its kind.
    t.keys("\t");
    t.wait_for(" Deployment at ");

    // Help, then any key closes it.
    t.keys("?");
    t.wait_for(" Keys ");
    t.keys("x");
    let deadline = Instant::now() + Duration::from_secs(10);
    while t.text().contains(" Keys ") {
        assert!(Instant::now() < deadline, "help did not close");
        std::thread::sleep(Duration::from_millis(50));
    }

    // Filter to one namespace: only keycloak records remain.
    t.keys(":ns:keycloak\r");
    let s = t.wait_for("filter 'ns:keycloak'");
    assert!(!s.contains("registry-mirror"), "{s}");

    // Quit: the program ends and gives the screen back.
    t.keys("q");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(st) = t.child.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "pipetape did not quit on q");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    assert!(!t.screen.lock().unwrap().screen().alternate_screen());
}

#[test]
fn without_a_terminal_step_says_what_to_use_instead() {
    let env = Env::new();
    let p = env.path("red.ptape");
    Variant::red().write(&p).unwrap();
    let r = env.run(&["replay", "step", p.to_str().unwrap()]);
    assert_eq!(r.code(), 2);
    assert!(r.stderr().contains("needs a terminal"), "{}", r.stderr());
    assert!(r.stderr().contains("replay timeline"), "{}", r.stderr());
}
