//! Echo results in human form and as one JSON line.

use std::fmt::Write as _;

use crate::cpu::CpuTimes;
use crate::echo::{Config, Outcome};
use crate::payload::Payload;

/// Figures derived from an outcome, shared by both report forms.
struct Figures {
    secs: f64,
    msgs_per_s: f64,
    /// Payload megabytes (10^6) per second in each direction.
    mb_per_s: f64,
    /// p50, p90, p99, p99.9, max, mean, in microseconds.
    lat_us: [f64; 6],
    client: Option<CpuFigures>,
    server: Option<CpuFigures>,
}

/// CPU accounting of one process over the window.
struct CpuFigures {
    /// CPU microseconds per completed message.
    us_per_msg: f64,
    /// Fraction of the window spent on a CPU (1.0 = one core fully busy).
    busy: f64,
    /// Fraction of the window spent runnable but waiting for a CPU.
    waiting: f64,
}

fn cpu_figures(t: Option<CpuTimes>, msgs: u64, secs: f64) -> Option<CpuFigures> {
    let t = t?;
    if msgs == 0 || secs <= 0.0 {
        return None;
    }
    let window_ns = secs * 1e9;
    Some(CpuFigures {
        us_per_msg: t.on_cpu_ns as f64 / 1000.0 / msgs as f64,
        busy: t.on_cpu_ns as f64 / window_ns,
        waiting: t.wait_ns as f64 / window_ns,
    })
}

fn figures(cfg: &Config, r: &Outcome) -> Figures {
    let secs = r.elapsed.as_secs_f64();
    let msgs_per_s = if secs > 0.0 {
        r.msgs as f64 / secs
    } else {
        0.0
    };
    let us = |ns: u64| ns as f64 / 1000.0;
    let h = &r.hist;
    let lat_us = if h.is_empty() {
        [0.0; 6]
    } else {
        [
            us(h.value_at_quantile(0.50)),
            us(h.value_at_quantile(0.90)),
            us(h.value_at_quantile(0.99)),
            us(h.value_at_quantile(0.999)),
            us(h.max()),
            h.mean() / 1000.0,
        ]
    };
    Figures {
        secs,
        msgs_per_s,
        mb_per_s: msgs_per_s * cfg.size as f64 / 1e6,
        lat_us,
        client: cpu_figures(r.client_cpu, r.msgs, secs),
        server: cpu_figures(r.server_cpu, r.msgs, secs),
    }
}

/// A multi-line human report.
pub(crate) fn human(cfg: &Config, r: &Outcome) -> String {
    let f = figures(cfg, r);
    let [p50, p90, p99, p999, max, mean] = f.lat_us;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "gale-load {} {}: {} conns x {} B, pipeline {}, {}, {:.2} s measured (warm-up {:.1} s)",
        cfg.mode,
        cfg.addr,
        cfg.conns,
        cfg.size,
        cfg.pipeline,
        match cfg.prepared {
            0 => "messages generated when sent".to_owned(),
            n => format!("{n} prepared messages"),
        },
        f.secs,
        cfg.warmup.as_secs_f64()
    );
    let _ = writeln!(
        s,
        "  throughput  {:.0} msgs/s, {:.2} MB/s each way",
        f.msgs_per_s, f.mb_per_s
    );
    let _ = writeln!(
        s,
        "  latency us  p50 {p50:.1}  p90 {p90:.1}  p99 {p99:.1}  p99.9 {p999:.1}  max {max:.1}  \
         mean {mean:.1}"
    );
    for (who, c) in [("client", &f.client), ("server", &f.server)] {
        if let Some(c) = c {
            let _ = writeln!(
                s,
                "  cpu {who}  {:.2} us/msg, {:.0}% busy, {:.0}% waiting for a CPU{}",
                c.us_per_msg,
                c.busy * 100.0,
                c.waiting * 100.0,
                if who == "client" && c.busy > SATURATED {
                    "  << client-bound?"
                } else {
                    ""
                }
            );
        }
    }
    let (out, inn) = wire_per_msg(r);
    let _ = writeln!(
        s,
        "  on the wire {out:.0} B/msg sent, {inn:.0} B/msg received (payload {} B {:?}{})",
        cfg.size,
        cfg.payload,
        cfg.deflate.map_or("", |o| if o.no_context_takeover {
            ", permessage-deflate, no context takeover"
        } else {
            ", permessage-deflate"
        })
    );
    let _ = writeln!(
        s,
        "  per conn    min {} max {} msgs in the window",
        r.per_conn.0, r.per_conn.1
    );
    let _ = writeln!(
        s,
        "  checked     {} reply bytes, {} mismatched, {} connection errors{}",
        r.checked,
        r.mismatched,
        r.conn_errors,
        if r.is_clean() { "" } else { "  << FAILED" }
    );
    for e in &r.errors {
        let _ = writeln!(s, "  error       {e}");
    }
    s
}

/// One JSON object on one line (no trailing newline). Field names are stable: `run.sh` and
/// `report.py` read them.
pub(crate) fn json(cfg: &Config, r: &Outcome) -> String {
    let f = figures(cfg, r);
    let [p50, p90, p99, p999, max, mean] = f.lat_us;
    let errors: Vec<String> = r.errors.iter().map(|e| json_string(e)).collect();
    format!(
        concat!(
            "{{\"mode\":\"{}\",\"addr\":\"{}\",\"conns\":{},\"size\":{},\"pipeline\":{},\"prepared\":{},",
            "\"duration_s\":{:.3},\"warmup_s\":{:.3},\"msgs\":{},\"msgs_per_s\":{:.1},",
            "\"mb_per_s\":{:.3},\"p50_us\":{:.2},\"p90_us\":{:.2},\"p99_us\":{:.2},",
            "\"p999_us\":{:.2},\"max_us\":{:.2},\"mean_us\":{:.2},\"per_conn_min\":{},",
            "\"per_conn_max\":{},\"checked_bytes\":{},\"mismatched_bytes\":{},",
            "\"conn_errors\":{},\"errors\":[{}],\"ok\":{},",
            "\"client_cpu_us_per_msg\":{},\"client_busy\":{},\"client_waiting\":{},",
            "\"server_cpu_us_per_msg\":{},\"server_busy\":{},\"server_waiting\":{},",
            "\"payload\":\"{}\",\"deflate\":{},\"wire_out_bytes\":{},\"wire_in_bytes\":{},",
            "\"wire_out_per_msg\":{:.1},\"wire_in_per_msg\":{:.1}}}"
        ),
        cfg.mode,
        cfg.addr,
        cfg.conns,
        cfg.size,
        cfg.pipeline,
        cfg.prepared,
        f.secs,
        cfg.warmup.as_secs_f64(),
        r.msgs,
        f.msgs_per_s,
        f.mb_per_s,
        p50,
        p90,
        p99,
        p999,
        max,
        mean,
        r.per_conn.0,
        r.per_conn.1,
        r.checked,
        r.mismatched,
        r.conn_errors,
        errors.join(","),
        r.is_clean(),
        opt(f.client.as_ref().map(|c| c.us_per_msg)),
        opt(f.client.as_ref().map(|c| c.busy)),
        opt(f.client.as_ref().map(|c| c.waiting)),
        opt(f.server.as_ref().map(|c| c.us_per_msg)),
        opt(f.server.as_ref().map(|c| c.busy)),
        opt(f.server.as_ref().map(|c| c.waiting)),
        match cfg.payload {
            Payload::Random => "random",
            Payload::Json => "json",
        },
        match cfg.deflate {
            None => "null",
            Some(o) if o.no_context_takeover => "\"no_context_takeover\"",
            Some(_) => "\"context_takeover\"",
        },
        r.wire_bytes.0,
        r.wire_bytes.1,
        wire_per_msg(r).0,
        wire_per_msg(r).1,
    )
}

/// Bytes on the wire per completed message in the window: (sent, received).
fn wire_per_msg(r: &Outcome) -> (f64, f64) {
    let n = r.msgs.max(1) as f64;
    (r.wire_bytes.0 as f64 / n, r.wire_bytes.1 as f64 / n)
}

/// A JSON number with 4 decimals, or `null`.
fn opt(v: Option<f64>) -> String {
    v.map_or_else(|| "null".to_owned(), |v| format!("{v:.4}"))
}

/// Client busier than this (fraction of a core) probably limits the throughput measured.
const SATURATED: f64 = 0.9;

/// `s` as a JSON string literal.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::json_string;

    #[test]
    fn json_string_escapes() {
        assert_eq!(json_string("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
    }
}
