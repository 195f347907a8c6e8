//! `seatable-standin [--tls] [--ca-out FILE] [--gateway-delay-ms N] [--lifetime-secs N]`:
//! starts the stand-in on a free loopback port, registers one base (whose
//! tokens live `--lifetime-secs` if given), prints one JSON line
//! `{"url":…,"api_token":…,"dtable_uuid":…,"ca_cert":…}` on stdout and serves
//! until it is killed. `--gateway-delay-ms` makes every gateway answer wait
//! that long, as a real server's work would (benchmarks of the agent).
//! Everything else — more bases, accounts, a team of 500 bases and 5,000
//! API tokens, faults, the switches to older servers' forms, the team-admin
//! budget — goes through its control interface (`/_standin/…`, described
//! in the library's `server` module).

use std::time::Duration;

use seatable_standin::{Base, Standin};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let tls = args.iter().any(|a| a == "--tls");
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
    };
    let ca_out = value("--ca-out");
    let number = |name: &str| {
        value(name).map(|v| {
            v.parse::<u64>()
                .unwrap_or_else(|_| panic!("{name} takes a number"))
        })
    };
    let standin = if tls {
        Standin::start_tls()
    } else {
        Standin::start()
    };
    if let Some(ms) = number("--gateway-delay-ms") {
        standin.set_gateway_delay(Duration::from_millis(ms));
    }
    let base = standin.add_base(Base {
        lifetime_secs: number("--lifetime-secs"),
        ..Base::default()
    });
    if let (Some(path), Some(pem)) = (ca_out, &standin.ca_pem) {
        std::fs::write(path, pem).expect("write CA file");
    }
    let line = serde_json::json!({
        "url": standin.url,
        "api_token": base.api_token,
        "dtable_uuid": base.dtable_uuid,
        "ca_cert": ca_out,
    });
    println!("{line}");
    let _keep = standin;
    loop {
        std::thread::park();
    }
}
