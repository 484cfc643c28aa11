//! What the server prints on stdout once it is ready. Scripts and tests read these
//! lines: the first is always `listening on http://ADDR`.

use crate::persistence::SAVE_EVERY;
use crate::server::LocalServer;
use std::io::Write;
use std::net::SocketAddr;

/// Print the banner. Best effort: a closed stdout must not stop the server.
pub fn print(addr: SocketAddr, server: &LocalServer) {
    let mut out = std::io::stdout().lock();
    let _ = write_banner(&mut out, addr, server);
    let _ = out.flush();
}

fn write_banner(
    out: &mut impl Write,
    addr: SocketAddr,
    server: &LocalServer,
) -> std::io::Result<()> {
    writeln!(out, "listening on http://{addr}")?;
    match &server.state {
        None => writeln!(
            out,
            "store: in memory (everything is lost when this process exits)"
        )?,
        Some((path, loaded)) => writeln!(
            out,
            "store: in memory, kept in {} ({}; saved within {} ms of each change and at exit)",
            path.display(),
            match loaded {
                Some(n) => format!(
                    "loaded {} endpoints, {} deliveries, {} jobs to do",
                    n.endpoints, n.deliveries, n.jobs
                ),
                None => "a new file".to_owned(),
            },
            SAVE_EVERY.as_millis()
        )?,
    }
    writeln!(out, "sender may reach: {}", allowed_targets(server))?;
    for cert in &server.root_certs {
        writeln!(out, "extra root certificate: {}", cert.display())?;
    }
    if let Some(key) = &server.demo_admin_key {
        writeln!(out, "org demo, admin key: {key}")?;
    }
    writeln!(
        out,
        "console: http://{addr}{} (sign in with an API key)",
        console::CONSOLE_PATH
    )?;
    let settings = &server.sender.settings;
    let retry: Vec<String> = settings
        .retry
        .delays
        .iter()
        .map(|d| d.as_secs().to_string())
        .collect();
    writeln!(
        out,
        "sender: in process; retry schedule {}s; circuit breaker after {} failures",
        retry.join(","),
        settings.breaker_threshold
    )?;
    match &server.dev_ca {
        Ok(path) => writeln!(
            out,
            "trusts the local development CA (webhooks-local listen): {}",
            path.display()
        ),
        Err(why) => writeln!(out, "no local development CA: {why}"),
    }
}

fn allowed_targets(server: &LocalServer) -> String {
    if server.allowed_targets.is_empty() {
        return "none".to_owned();
    }
    let list: Vec<String> = server
        .allowed_targets
        .iter()
        .map(ToString::to_string)
        .collect();
    list.join(", ")
}
