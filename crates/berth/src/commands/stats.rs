//! `berth stats`: Docker's live resource table (CPU %, memory, network and
//! block I/O, pids) from the containers' cgroups. `--no-stream` prints one
//! table (two samples half a second apart, for CPU %); otherwise the table
//! is redrawn every second until interrupted.

use std::time::Duration;

use berth_engine::containers::stats::{sample, Sample, Usage};
use berth_engine::containers::{Container, Status};
use berth_engine::Engine;
use serde_json::{json, Value};

use crate::cli::StatsArgs;
use crate::exit::CliError;
use crate::output::{human_size, table};
use crate::template::Template;

const DEFAULT_FORMAT: &str =
    "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";

/// Docker's `units.BytesSize`: binary units, Go's `%.4g`.
pub fn bytes_size(bytes: u64) -> String {
    const UNITS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1024.0 && unit + 1 < UNITS.len() {
        size /= 1024.0;
        unit += 1;
    }
    let digits_before = if size < 1.0 {
        1
    } else {
        size.log10().floor() as i32 + 1
    };
    let decimals = usize::try_from((4 - digits_before).max(0)).unwrap_or(0);
    let mut text = format!("{size:.decimals$}");
    if text.contains('.') {
        text = text.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{text}{}", UNITS.get(unit).copied().unwrap_or("B"))
}

/// One row's fields, as Docker's `--format` names them.
fn fields(container: &Container, given: &str, usage: &Usage, no_trunc: bool) -> Value {
    let id = if no_trunc {
        container.record.id.clone()
    } else {
        container.short_id().to_string()
    };
    json!({
        "Container": if given.is_empty() { id.clone() } else { given.to_string() },
        "ID": id,
        "Name": container.record.name,
        "CPUPerc": format!("{:.2}%", usage.cpu_percent),
        "MemUsage": format!("{} / {}", bytes_size(usage.memory_usage), bytes_size(usage.memory_limit)),
        "MemPerc": format!("{:.2}%", usage.memory_percent),
        "NetIO": format!("{} / {}", human_size(usage.net_rx), human_size(usage.net_tx)),
        "BlockIO": format!("{} / {}", human_size(usage.block_read), human_size(usage.block_write)),
        "PIDs": usage.pids.to_string(),
    })
}

fn header_fields() -> Value {
    json!({
        "Container": "CONTAINER",
        "ID": "CONTAINER ID",
        "Name": "NAME",
        "CPUPerc": "CPU %",
        "MemUsage": "MEM USAGE / LIMIT",
        "MemPerc": "MEM %",
        "NetIO": "NET I/O",
        "BlockIO": "BLOCK I/O",
        "PIDs": "PIDS",
    })
}

fn running(c: &Container) -> bool {
    matches!(c.state.status, Status::Running | Status::Paused)
}

/// The containers to show, with the name each was asked by.
fn selected(engine: &Engine, args: &StatsArgs) -> Result<Vec<(Container, String)>, CliError> {
    if args.containers.is_empty() {
        let all = engine
            .list_containers()
            .map_err(|e| CliError::failure(e.to_string()))?;
        return Ok(all
            .into_iter()
            .filter(|c| args.all || running(c))
            .map(|c| (c, String::new()))
            .collect());
    }
    let mut out = Vec::new();
    for name in &args.containers {
        let c = engine
            .container(name)
            .map_err(|e| CliError::failure(format!("Error response from daemon: {e}")))?;
        out.push((c, name.clone()));
    }
    Ok(out)
}

fn samples(containers: &[(Container, String)]) -> Vec<Option<Sample>> {
    containers
        .iter()
        .map(|(c, _)| running(c).then(|| sample(&c.record.id, c.state.pid)))
        .collect()
}

/// Renders one table for `containers` between two sets of samples.
fn render(
    template: &Template,
    containers: &[(Container, String)],
    before: &[Option<Sample>],
    after: &[Option<Sample>],
    no_trunc: bool,
    json_lines: bool,
) -> Result<String, CliError> {
    let mut lines = Vec::new();
    if template.table && !json_lines {
        lines.push(
            template
                .render(&header_fields())
                .map_err(CliError::failure)?,
        );
    }
    for (i, (c, given)) in containers.iter().enumerate() {
        let usage = match (before.get(i), after.get(i)) {
            (Some(Some(b)), Some(Some(a))) => Usage::between(b, a),
            _ => Usage::default(),
        };
        let row = fields(c, given, &usage, no_trunc);
        if json_lines {
            lines.push(row.to_string());
        } else {
            lines.push(template.render(&row).map_err(CliError::failure)?);
        }
    }
    if !template.table || json_lines {
        return Ok(lines.iter().map(|l| format!("{l}\n")).collect());
    }
    let mut cells: Vec<Vec<String>> = lines
        .iter()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect();
    if cells.is_empty() {
        return Ok(String::new());
    }
    let header = cells.remove(0);
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    Ok(table(&header, &cells))
}

/// `berth stats`.
pub fn stats(engine: &mut Engine, args: &StatsArgs) -> Result<(), CliError> {
    let format = match args.format.as_deref() {
        None | Some("") | Some("table") => DEFAULT_FORMAT,
        Some(f) => f,
    };
    let json_lines = format == "json";
    let template = Template::parse(format).map_err(CliError::failure)?;
    let interval = if args.no_stream {
        Duration::from_millis(500)
    } else {
        Duration::from_secs(1)
    };
    let mut containers = selected(engine, args)?;
    let mut before = samples(&containers);
    loop {
        std::thread::sleep(interval);
        let after = samples(&containers);
        let text = render(
            &template,
            &containers,
            &before,
            &after,
            args.no_trunc,
            json_lines,
        )?;
        if args.no_stream {
            print!("{text}");
            return Ok(());
        }
        // Docker's streaming view: clear the screen, redraw.
        print!("\x1b[2J\x1b[H{text}");
        use std::io::Write;
        let _ = std::io::stdout().flush();
        // New and stopped containers show up on the next round.
        let refreshed = selected(engine, args)?;
        let ids: Vec<&str> = containers
            .iter()
            .map(|(c, _)| c.record.id.as_str())
            .collect();
        let same = refreshed.len() == ids.len()
            && refreshed
                .iter()
                .zip(&ids)
                .all(|((c, _), id)| c.record.id == *id);
        before = if same { after } else { samples(&refreshed) };
        containers = refreshed;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_sizes_like_go_units() {
        assert_eq!(bytes_size(0), "0B");
        assert_eq!(bytes_size(512), "512B");
        assert_eq!(bytes_size(1536), "1.5KiB");
        assert_eq!(bytes_size(1_618_000), "1.543MiB");
        assert_eq!(bytes_size(8 * 1024 * 1024 * 1024), "8GiB");
    }
}
