//! Test networks made of Linux network namespaces: a "switch" namespace holding a bridge, and
//! one namespace per host joined to it by a veth pair, on 10.99.0.0/24. Traffic stays between
//! these namespaces. A host's link can be cut and restored. Dropping the [`Network`] deletes
//! every namespace it made (and with them their interfaces), also when a test fails.

use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// One host of a [`Network`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// Its name in the test.
    pub name: String,
    /// Its network namespace.
    pub ns: String,
    /// Its address on the test network.
    pub ip: String,
}

/// A set of namespaces joined by a bridge.
#[derive(Debug)]
pub struct Network {
    prefix: String,
    switch: String,
    hosts: Vec<Host>,
}

/// Runs `ip` with `args`; panics with its error output when it fails.
fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run ip {}: {e} (install iproute2)", args.join(" ")));
    assert!(
        out.status.success(),
        "ip {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Network {
    /// A new network with no host. Needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN).
    pub fn new() -> Network {
        // SAFETY: getuid has no preconditions
        assert_eq!(
            unsafe { libc::getuid() },
            0,
            "network namespace tests must run as root (CI does)"
        );
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let prefix = format!("pgaf{}n{n}", std::process::id());
        let switch = format!("{prefix}-sw");
        let network = Network {
            prefix,
            switch: switch.clone(),
            hosts: Vec::new(),
        };
        ip(&["netns", "add", &switch]);
        ip(&["-n", &switch, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &switch, "link", "set", "br0", "up"]);
        network
    }

    /// Adds a host named `name` (its namespace, loopback up, an address on the bridge).
    pub fn add_host(&mut self, name: &str) -> Host {
        let index = self.hosts.len() + 1;
        let ns = format!("{}-{name}", self.prefix);
        let ip_addr = format!("10.99.0.{}", index + 10);
        let port = format!("s{index}");
        ip(&["netns", "add", &ns]);
        let host = Host {
            name: name.to_string(),
            ns: ns.clone(),
            ip: ip_addr.clone(),
        };
        // registered before configuring, so that a failure still deletes it
        self.hosts.push(host.clone());
        ip(&["-n", &ns, "link", "set", "lo", "up"]);
        ip(&[
            "-n",
            &self.switch,
            "link",
            "add",
            &port,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            &ns,
        ]);
        ip(&["-n", &self.switch, "link", "set", &port, "master", "br0"]);
        ip(&["-n", &self.switch, "link", "set", &port, "up"]);
        ip(&[
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{ip_addr}/24"),
            "dev",
            "eth0",
        ]);
        ip(&["-n", &ns, "link", "set", "eth0", "up"]);
        host
    }

    /// The host named `name`.
    pub fn host(&self, name: &str) -> &Host {
        self.hosts
            .iter()
            .find(|h| h.name == name)
            .unwrap_or_else(|| panic!("no host {name}"))
    }

    /// Cuts `name` off the network (its link goes down).
    pub fn cut(&self, name: &str) {
        ip(&["-n", &self.host(name).ns, "link", "set", "eth0", "down"]);
    }

    /// Puts `name` back on the network.
    pub fn restore(&self, name: &str) {
        ip(&["-n", &self.host(name).ns, "link", "set", "eth0", "up"]);
    }
}

impl Default for Network {
    fn default() -> Self {
        Network::new()
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for host in &self.hosts {
            let _ = Command::new("ip").args(["netns", "del", &host.ns]).output();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.switch])
            .output();
    }
}

/// Runs `f` on a thread that lives in namespace `ns` (sockets it opens stay in `ns`).
pub fn in_ns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                enter(ns);
                f()
            })
            .join()
            .unwrap_or_else(|_| panic!("thread in namespace {ns} panicked"))
    })
}

/// Moves the calling thread into network namespace `ns`.
pub fn enter(ns: &str) {
    let file = std::fs::File::open(format!("/var/run/netns/{ns}"))
        .unwrap_or_else(|e| panic!("open namespace {ns}: {e}"));
    // SAFETY: setns on a valid namespace file descriptor affects only this thread
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns {ns}: {}", std::io::Error::last_os_error());
}
