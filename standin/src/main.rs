//! `seatable-standin [--tls] [--ca-out FILE]`: starts the stand-in on a free
//! loopback port, registers one base, prints one JSON line
//! `{"url":…,"api_token":…,"dtable_uuid":…,"ca_cert":…}` on stdout and serves
//! until it is killed.

use seatable_standin::{Base, Standin};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let tls = args.iter().any(|a| a == "--tls");
    let ca_out = args
        .iter()
        .position(|a| a == "--ca-out")
        .and_then(|i| args.get(i + 1));
    let standin = if tls {
        Standin::start_tls()
    } else {
        Standin::start()
    };
    let base = standin.add_base(Base::default());
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
