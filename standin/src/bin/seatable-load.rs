//! `seatable-load`: a small HTTP/1.1 load generator for the benchmarks of
//! `seatable-cred serve` — keep-alive connections (or a fresh one per
//! request), each sending requests one after another, every latency kept.
//!
//! ```text
//! seatable-load URL [-H 'Name: value']… [-c CONNECTIONS] [-n REQUESTS | -d SECONDS] [--fresh]
//! ```
//!
//! Prints one JSON line: `requests`, `errors` (transport failures), `seconds`,
//! `rps`, `median_us`, `p90_us`, `p99_us`, `statuses` (count per status code).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::rt::TokioIo;

struct Options {
    url: hyper::Uri,
    headers: Vec<(String, String)>,
    connections: usize,
    requests: Option<i64>,
    duration: Option<Duration>,
    fresh: bool,
}

fn options() -> Options {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut o = Options {
        url: hyper::Uri::from_static("http://127.0.0.1/"),
        headers: Vec::new(),
        connections: 1,
        requests: None,
        duration: None,
        fresh: false,
    };
    let mut i = 0;
    let mut url = None;
    while i < args.len() {
        let next = |i: &mut usize| {
            *i += 1;
            args.get(*i).cloned().expect("option needs a value")
        };
        match args[i].as_str() {
            "-H" => {
                let h = next(&mut i);
                let (k, v) = h.split_once(':').expect("-H 'Name: value'");
                o.headers.push((k.trim().to_string(), v.trim().to_string()));
            }
            "-c" => o.connections = next(&mut i).parse().expect("-c N"),
            "-n" => o.requests = Some(next(&mut i).parse().expect("-n N")),
            "-d" => {
                o.duration = Some(Duration::from_secs_f64(
                    next(&mut i).parse().expect("-d SECONDS"),
                ))
            }
            "--fresh" => o.fresh = true,
            other => url = Some(other.to_string()),
        }
        i += 1;
    }
    o.url = url.expect("URL").parse().expect("a valid URL");
    if o.requests.is_none() && o.duration.is_none() {
        o.requests = Some(1000);
    }
    o
}

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    statuses: BTreeMap<u16, u64>,
    errors: u64,
}

type Sender = hyper::client::conn::http1::SendRequest<Empty<Bytes>>;

async fn connect(url: &hyper::Uri) -> std::io::Result<Sender> {
    let host = url.host().unwrap_or("127.0.0.1");
    let port = url.port_u16().unwrap_or(80);
    let stream = tokio::net::TcpStream::connect((host, port)).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

async fn worker(o: Arc<Options>, budget: Arc<AtomicI64>, until: Option<Instant>) -> Tally {
    let mut tally = Tally::default();
    let mut sender: Option<Sender> = None;
    let authority = o.url.authority().map(|a| a.to_string()).unwrap_or_default();
    loop {
        if until.is_some_and(|u| Instant::now() >= u) || budget.fetch_sub(1, Ordering::SeqCst) <= 0
        {
            break;
        }
        let started = Instant::now();
        if sender.is_none() || o.fresh {
            match connect(&o.url).await {
                Ok(s) => sender = Some(s),
                Err(_) => {
                    tally.errors += 1;
                    continue;
                }
            }
        }
        let s = sender.as_mut().expect("connected");
        let mut req = Request::get(o.url.path_and_query().map_or("/", |p| p.as_str()))
            .header("host", &authority);
        for (k, v) in &o.headers {
            req = req.header(k, v);
        }
        let req = req.body(Empty::new()).expect("request");
        let outcome = async {
            s.ready().await?;
            let response = s.send_request(req).await?;
            let status = response.status().as_u16();
            response.into_body().collect().await?;
            Ok::<u16, hyper::Error>(status)
        }
        .await;
        match outcome {
            Ok(status) => {
                tally
                    .latencies_us
                    .push(started.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                *tally.statuses.entry(status).or_default() += 1;
            }
            Err(_) => {
                tally.errors += 1;
                sender = None;
            }
        }
    }
    tally
}

fn main() {
    let o = Arc::new(options());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let budget = Arc::new(AtomicI64::new(o.requests.unwrap_or(i64::MAX)));
    let started = Instant::now();
    let until = o.duration.map(|d| started + d);
    let tallies: Vec<Tally> = runtime.block_on(async {
        let tasks: Vec<_> = (0..o.connections)
            .map(|_| tokio::spawn(worker(o.clone(), budget.clone(), until)))
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.expect("worker"));
        }
        out
    });
    let seconds = started.elapsed().as_secs_f64();
    let mut all = Tally::default();
    for t in tallies {
        all.latencies_us.extend(t.latencies_us);
        all.errors += t.errors;
        for (k, v) in t.statuses {
            *all.statuses.entry(k).or_default() += v;
        }
    }
    all.latencies_us.sort_unstable();
    let pct = |p: f64| {
        let l = &all.latencies_us;
        if l.is_empty() {
            0
        } else {
            l[((l.len() - 1) as f64 * p).round() as usize]
        }
    };
    let n = all.latencies_us.len();
    let line = serde_json::json!({
        "requests": n,
        "errors": all.errors,
        "seconds": seconds,
        "rps": n as f64 / seconds,
        "median_us": pct(0.5),
        "p90_us": pct(0.9),
        "p99_us": pct(0.99),
        "statuses": all.statuses.iter().map(|(k, v)| (k.to_string(), *v)).collect::<BTreeMap<_, _>>(),
    });
    println!("{line}");
}
