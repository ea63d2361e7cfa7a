//! Reads a CSV written by bench/compare and prints, in Markdown, the machine
//! it ran on and a table of the medians. Given a folder too, it draws the
//! three pictures of book/src/bench.md there (bench/plot does that):
//! round trips per second, p99 latency and peak memory, by number of clients.
//!
//!     cargo run --release -p seesaw-checks --example bench-plot -- CSV [FOLDER]
//!
//! The pictures follow the book's others: drawn dark on a light card, 480
//! units wide, text at 14 to 16. In the dark themes the book's style
//! (book/theme/seesaw.css) inverts them and turns the hues back, so each
//! server keeps its colour.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

/// The servers in the order of the legend and the table, each with its
/// colour and the shape of its marks (told apart without colour too).
const SERVERS: [Server; 3] = [
    Server {
        key: "lesson-06",
        name: "lesson 6: threads",
        short: "lesson 6",
        colour: "#c2571a",
        mark: Mark::Circle,
    },
    Server {
        key: "lesson-09",
        name: "lesson 9: tasks",
        short: "lesson 9",
        colour: "#2f6db5",
        mark: Mark::Square,
    },
    Server {
        key: "go",
        name: "Go: goroutines",
        short: "Go",
        colour: "#2e8b57",
        mark: Mark::Triangle,
    },
];

struct Server {
    /// Its name in the CSV, in the pictures, and in the table.
    key: &'static str,
    name: &'static str,
    short: &'static str,
    colour: &'static str,
    mark: Mark,
}

#[derive(Clone, Copy)]
enum Mark {
    Circle,
    Square,
    Triangle,
}

/// The medians of one server at one number of clients.
#[derive(Clone, Copy, Default)]
struct Medians {
    round_trips_per_second: f64,
    p99_ms: f64,
    p50_ms: f64,
    fewest: f64,
    peak_mib: f64,
    /// How many measurements succeeded, and how many were tried.
    ok: usize,
    tried: usize,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (csv, folder) = match args.as_slice() {
        [csv] => (csv, None),
        [csv, folder] => (csv, Some(Path::new(folder))),
        _ => {
            eprintln!("usage: bench-plot CSV [FOLDER]");
            return ExitCode::FAILURE;
        }
    };
    match run(Path::new(csv), folder) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bench-plot: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run(csv: &Path, folder: Option<&Path>) -> Result<(), String> {
    let text = std::fs::read_to_string(csv).map_err(|e| format!("{}: {e}", csv.display()))?;
    let (machine, table) = read_csv(&text)?;
    print!("{}", markdown(&machine, &table));
    if let Some(folder) = folder {
        for (file, svg) in pictures(&table) {
            let path = folder.join(file);
            std::fs::write(&path, svg).map_err(|e| format!("{}: {e}", path.display()))?;
            eprintln!("bench-plot: wrote {}", path.display());
        }
    }
    Ok(())
}

/// Medians by number of clients, then by server.
type Table = BTreeMap<u64, BTreeMap<&'static str, Medians>>;

/// The columns the medians are taken of, by their names in the CSV's header.
const MEASURED: [&str; 6] = [
    "round_trips_per_s",
    "p99_ms",
    "p50_ms",
    "fewest_round_trips",
    "peak_memory_kib",
    "other_work_percent",
];

/// The machine's `# key: value` lines, and the medians of the rows.
fn read_csv(text: &str) -> Result<(Vec<String>, Table), String> {
    let mut machine = Vec::new();
    let mut header: Vec<&str> = Vec::new();
    // Every measurement of one server at one number of clients.
    let mut samples: BTreeMap<(u64, &'static str), Vec<[f64; 6]>> = BTreeMap::new();
    let mut tried: BTreeMap<(u64, &'static str), usize> = BTreeMap::new();
    let mut left_out = 0;
    for (number, line) in text.lines().enumerate() {
        if let Some(comment) = line.strip_prefix("# ") {
            machine.push(comment.to_string());
            continue;
        }
        if line.starts_with("clients,") {
            header = line.split(',').collect();
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        let bad = || format!("line {}: not a row of bench/compare: {line}", number + 1);
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() != header.len() {
            return Err(bad());
        }
        let field = |name: &str| {
            let column = header.iter().position(|&known| known == name);
            column.map_or("", |column| fields[column])
        };
        let clients: u64 = field("clients").parse().map_err(|_| bad())?;
        let server = SERVERS
            .iter()
            .find(|known| known.key == field("server"))
            .ok_or_else(bad)?
            .key;
        // Measured while other programs were busy: left out (bench/compare
        // measured again).
        if field("status") == "busy" {
            left_out += 1;
            continue;
        }
        *tried.entry((clients, server)).or_default() += 1;
        if field("status") != "ok" {
            continue;
        }
        // A column missing from an older CSV (other_work_percent) is NaN.
        let numbers = MEASURED.map(|name| field(name).parse().unwrap_or(f64::NAN));
        if numbers[..5].iter().any(|n| n.is_nan()) {
            return Err(bad());
        }
        samples.entry((clients, server)).or_default().push(numbers);
    }
    let mut table = Table::new();
    let mut other_work = Vec::new();
    for ((clients, server), count) in tried {
        let rows = samples.remove(&(clients, server)).unwrap_or_default();
        let column = |i: usize| median(rows.iter().map(|row| row[i]).collect());
        let medians = Medians {
            round_trips_per_second: column(0),
            p99_ms: column(1),
            p50_ms: column(2),
            fewest: column(3),
            peak_mib: column(4) / 1024.0,
            ok: rows.len(),
            tried: count,
        };
        other_work.extend(rows.iter().map(|row| row[5]).filter(|n| !n.is_nan()));
        table.entry(clients).or_default().insert(server, medians);
    }
    if table.is_empty() {
        return Err("no measurements in the file".into());
    }
    if !other_work.is_empty() {
        let most = other_work.iter().copied().fold(0.0, f64::max);
        machine.push(format!(
            "other work during a measurement: median {:.0}%, at most {most:.0}% of one core",
            median(other_work)
        ));
    }
    if left_out > 0 {
        machine.push(format!(
            "left out: {left_out} measurements made while the machine was busy"
        ));
    }
    Ok((machine, table))
}

/// The middle value (the mean of the two middle ones for an even count);
/// NaN for none.
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[middle],
        _ => (values[middle - 1] + values[middle]) / 2.0,
    }
}

/// The machine, then two tables of the medians, one row per server and
/// number of clients: the work done, then the waiting and the memory. (Two
/// narrow tables rather than one wide one, so that each fits a phone.)
fn markdown(machine: &[String], table: &Table) -> String {
    let mut out = String::new();
    for line in machine {
        writeln!(out, "- {line}").unwrap();
    }
    out.push('\n');
    out.push_str("| clients | server | round trips/s | vs Go | fewest by one client |\n");
    out.push_str("| ---: | --- | ---: | ---: | ---: |\n");
    write_rows(&mut out, table, |m, go| {
        let versus = match go {
            Some(go) if go > 0.0 => format!("{:.2}", m.round_trips_per_second / go),
            _ => String::new(),
        };
        let failures = if m.ok < m.tried {
            format!(" ({} of {} failed)", m.tried - m.ok, m.tried)
        } else {
            String::new()
        };
        format!(
            "{}{failures} | {versus} | {}",
            thousands(m.round_trips_per_second),
            thousands(m.fewest),
        )
    });
    out.push('\n');
    out.push_str("| clients | server | p99 | p50 | peak memory |\n");
    out.push_str("| ---: | --- | ---: | ---: | ---: |\n");
    write_rows(&mut out, table, |m, _| {
        format!(
            "{} ms | {} ms | {:.1} MiB",
            short(m.p99_ms),
            short(m.p50_ms),
            m.peak_mib
        )
    });
    out
}

/// One row per number of clients and server: `| clients | server | ` and
/// then the cells `cells` makes from the server's medians and Go's round
/// trips per second at that number of clients.
fn write_rows(out: &mut String, table: &Table, cells: impl Fn(&Medians, Option<f64>) -> String) {
    for (clients, by_server) in table {
        let go = by_server.get("go").map(|go| go.round_trips_per_second);
        for server in &SERVERS {
            let Some(m) = by_server.get(server.key) else {
                continue;
            };
            let name = server.short;
            let clients = thousands(*clients as f64);
            if m.ok == 0 {
                writeln!(
                    out,
                    "| {clients} | {name} | failed {} of {} |",
                    m.tried, m.tried
                )
                .unwrap();
            } else {
                writeln!(out, "| {clients} | {name} | {} |", cells(m, go)).unwrap();
            }
        }
    }
}

/// 12345.6 as "12,346".
fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value);
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// A latency with two or three significant digits: 0.052, 1.4, 38, 1,250.
fn short(ms: f64) -> String {
    match ms {
        ms if ms < 0.1 => format!("{ms:.3}"),
        ms if ms < 1.0 => format!("{ms:.2}"),
        ms if ms < 10.0 => format!("{ms:.1}"),
        ms => thousands(ms),
    }
}

/// The three pictures: (file name, SVG).
fn pictures(table: &Table) -> Vec<(&'static str, String)> {
    let clients: Vec<u64> = table.keys().copied().collect();
    let series = |value: fn(&Medians) -> f64| -> Vec<Vec<Option<f64>>> {
        SERVERS
            .iter()
            .map(|server| {
                clients
                    .iter()
                    .map(|n| table[n].get(server.key).filter(|m| m.ok > 0).map(value))
                    .collect()
            })
            .collect()
    };
    vec![
        (
            "bench-round-trips.svg",
            chart(
                "Round trips per second (more is better)",
                Scale::Linear,
                "",
                &clients,
                &series(|m| m.round_trips_per_second),
            ),
        ),
        (
            "bench-p99.svg",
            chart(
                "p99 latency (less is better; log scale)",
                Scale::Log,
                " ms",
                &clients,
                &series(|m| m.p99_ms),
            ),
        ),
        (
            "bench-memory.svg",
            chart(
                "Server's peak memory (log scale)",
                Scale::Log,
                " MiB",
                &clients,
                &series(|m| m.peak_mib),
            ),
        ),
    ]
}

#[derive(Clone, Copy, PartialEq)]
enum Scale {
    Linear,
    Log,
}

// The picture's frame, in SVG units: the plot area inside the card.
const WIDTH: f64 = 480.0;
const HEIGHT: f64 = 330.0;
const LEFT: f64 = 76.0;
const RIGHT: f64 = 462.0;
const TOP: f64 = 84.0;
const BOTTOM: f64 = 272.0;
const INK: &str = "#333";
const GRID: &str = "#e2ded2";

/// One chart: a line a server across the numbers of clients (evenly spaced:
/// each is ten or a hundred times the one before).
fn chart(
    title: &str,
    scale: Scale,
    unit: &str,
    clients: &[u64],
    series: &[Vec<Option<f64>>],
) -> String {
    let values: Vec<f64> = series.iter().flatten().flatten().copied().collect();
    let ticks = ticks(scale, &values);
    let (low, high) = (ticks[0], ticks[ticks.len() - 1]);
    let y = |value: f64| match scale {
        Scale::Linear => BOTTOM - (value - low) / (high - low) * (BOTTOM - TOP),
        Scale::Log => BOTTOM - (value / low).log10() / (high / low).log10() * (BOTTOM - TOP),
    };
    let step = (RIGHT - LEFT) / clients.len() as f64;
    let x = |i: usize| LEFT + step * (i as f64 + 0.5);

    let mut svg = String::new();
    let description = describe(title, unit, clients, series);
    writeln!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" aria-labelledby="title desc" font-family="sans-serif" font-size="14">
  <title id="title">{title}</title>
  <desc id="desc">{description}</desc>
  <!-- Drawn by tests/examples/bench-plot.rs from a CSV of bench/compare: do not edit by hand. -->
  <rect x="1" y="1" width="{}" height="{}" rx="12" fill="#fbfaf6" stroke="#d8d4c8"/>
  <text x="{}" y="28" text-anchor="middle" font-size="16" font-weight="bold" fill="{INK}">{title}</text>"##,
        WIDTH - 2.0,
        HEIGHT - 2.0,
        WIDTH / 2.0,
    )
    .unwrap();
    legend(&mut svg);
    // On a log scale, fainter lines at 2 and 5 times each power of ten help
    // to read a value between two labels.
    if scale == Scale::Log {
        for &tick in &ticks[..ticks.len() - 1] {
            for between in [2.0 * tick, 5.0 * tick] {
                let ty = y(between);
                writeln!(
                    svg,
                    r##"  <line x1="{LEFT}" y1="{ty:.1}" x2="{RIGHT}" y2="{ty:.1}" stroke="{GRID}" stroke-dasharray="2 4"/>"##
                )
                .unwrap();
            }
        }
    }
    // The grid and the y axis' labels.
    for &tick in &ticks {
        let ty = y(tick);
        writeln!(
            svg,
            r##"  <line x1="{LEFT}" y1="{ty:.1}" x2="{RIGHT}" y2="{ty:.1}" stroke="{GRID}"/>
  <text x="{}" y="{:.1}" text-anchor="end" fill="{INK}">{}{unit}</text>"##,
            LEFT - 6.0,
            ty + 5.0,
            tick_label(tick),
        )
        .unwrap();
    }
    // The x axis: the numbers of clients.
    writeln!(
        svg,
        r##"  <line x1="{LEFT}" y1="{BOTTOM}" x2="{RIGHT}" y2="{BOTTOM}" stroke="{INK}"/>"##
    )
    .unwrap();
    for (i, &n) in clients.iter().enumerate() {
        writeln!(
            svg,
            r##"  <text x="{:.1}" y="{}" text-anchor="middle" fill="{INK}">{}</text>"##,
            x(i),
            BOTTOM + 20.0,
            thousands(n as f64)
        )
        .unwrap();
    }
    writeln!(
        svg,
        r##"  <text x="{:.1}" y="{}" text-anchor="middle" fill="{INK}">clients at once</text>"##,
        (LEFT + RIGHT) / 2.0,
        BOTTOM + 44.0
    )
    .unwrap();
    // The lines, then their marks on top.
    for (server, points) in SERVERS.iter().zip(series) {
        let placed: Vec<(f64, f64)> = points
            .iter()
            .enumerate()
            .filter_map(|(i, value)| value.map(|v| (x(i), y(v))))
            .collect();
        let path: Vec<String> = placed
            .iter()
            .map(|(px, py)| format!("{px:.1},{py:.1}"))
            .collect();
        writeln!(
            svg,
            r##"  <polyline points="{}" fill="none" stroke="{}" stroke-width="2.5"/>"##,
            path.join(" "),
            server.colour
        )
        .unwrap();
        for (px, py) in placed {
            svg.push_str(&mark(server, px, py));
        }
    }
    svg.push_str("</svg>\n");
    svg
}

/// The three servers, side by side under the title.
fn legend(svg: &mut String) {
    let places = [24.0, 180.0, 326.0];
    for (server, left) in SERVERS.iter().zip(places) {
        writeln!(
            svg,
            r##"  <line x1="{left}" y1="52" x2="{}" y2="52" stroke="{}" stroke-width="2.5"/>"##,
            left + 24.0,
            server.colour
        )
        .unwrap();
        svg.push_str(&mark(server, left + 12.0, 52.0));
        writeln!(
            svg,
            r##"  <text x="{}" y="57" fill="{INK}">{}</text>"##,
            left + 30.0,
            server.name
        )
        .unwrap();
    }
}

/// A server's mark at (x, y): a circle, a square or a triangle.
fn mark(server: &Server, x: f64, y: f64) -> String {
    let colour = server.colour;
    match server.mark {
        Mark::Circle => {
            format!(r##"  <circle cx="{x:.1}" cy="{y:.1}" r="5" fill="{colour}"/>"##) + "\n"
        }
        Mark::Square => {
            format!(
                r##"  <rect x="{:.1}" y="{:.1}" width="9" height="9" fill="{colour}"/>"##,
                x - 4.5,
                y - 4.5
            ) + "\n"
        }
        Mark::Triangle => {
            format!(
                r##"  <path d="M {:.1} {:.1} L {:.1} {:.1} L {:.1} {:.1} z" fill="{colour}"/>"##,
                x,
                y - 6.0,
                x + 6.0,
                y + 4.5,
                x - 6.0,
                y + 4.5
            ) + "\n"
        }
    }
}

/// Where the y axis has its lines: from zero in even steps (linear), or a
/// line at each power of ten (log), covering every value.
fn ticks(scale: Scale, values: &[f64]) -> Vec<f64> {
    let highest = values.iter().copied().fold(f64::MIN_POSITIVE, f64::max);
    match scale {
        Scale::Linear => {
            // A step of 1, 2, 2.5 or 5 times a power of ten, three to six
            // steps: the one whose top line is closest above the highest value.
            let power = 10f64.powf(highest.log10().floor() - 1.0);
            let step = [1.0, 2.0, 2.5, 5.0, 10.0, 20.0, 25.0, 50.0]
                .into_iter()
                .map(|m| m * power)
                .filter(|&step| (3.0..=6.0).contains(&(highest / step).ceil()))
                .min_by(|a, b| {
                    let top = |step: f64| (highest / step).ceil() * step;
                    top(*a).total_cmp(&top(*b))
                })
                .unwrap_or(power * 10.0);
            let steps = (highest / step).ceil() as usize;
            (0..=steps).map(|i| i as f64 * step).collect()
        }
        Scale::Log => {
            let lowest = values.iter().copied().fold(f64::MAX, f64::min);
            let from = lowest.log10().floor() as i32;
            let to = (highest.log10().ceil() as i32).max(from + 1);
            (from..=to).map(|power| 10f64.powi(power)).collect()
        }
    }
}

/// 20000 as "20k", 0.01 as "0.01", 1000 as "1,000".
fn tick_label(value: f64) -> String {
    if value >= 10_000.0 {
        format!("{}k", thousands(value / 1000.0))
    } else if value >= 1.0 {
        thousands(value)
    } else {
        format!("{value}")
    }
}

/// The numbers in words, for a screen reader (the SVG's <desc>).
fn describe(title: &str, unit: &str, clients: &[u64], series: &[Vec<Option<f64>>]) -> String {
    let mut out = format!("{title}, by number of clients at once.");
    for (server, points) in SERVERS.iter().zip(series) {
        let said: Vec<String> = clients
            .iter()
            .zip(points)
            .map(|(n, value)| match value {
                Some(v) if *v >= 100.0 => {
                    format!("{}: {}{unit}", thousands(*n as f64), thousands(*v))
                }
                Some(v) => format!("{}: {}{unit}", thousands(*n as f64), short(*v)),
                None => format!("{}: failed", thousands(*n as f64)),
            })
            .collect();
        write!(out, " {}: {}.", server.name, said.join(", ")).unwrap();
    }
    out
}
