//! Image verbs: `images`, `import`, `tag`, `rmi`, `history`, `inspect` and
//! their `image …` forms, with Docker's output.

use std::io::Read;

use berth_engine::time::{human_duration, rfc3339, wall_now};
use berth_engine::{Engine, ImageSummary, ImportOptions, Removed};
use serde_json::json;

use crate::cli::{HistoryArgs, ImagesArgs, ImportArgs, InspectArgs, RmiArgs, TagArgs};
use crate::exit::CliError;
use crate::output::{ellipsis, human_size, print_inspected, table};
use crate::template::Template;

/// One `berth images` row split into repository and tag.
struct Row<'a> {
    image: &'a ImageSummary,
    repository: String,
    tag: String,
}

fn rows(images: &[ImageSummary]) -> Vec<Row<'_>> {
    let mut out = Vec::new();
    for image in images {
        if image.repo_tags.is_empty() {
            out.push(Row {
                image,
                repository: "<none>".into(),
                tag: "<none>".into(),
            });
        }
        for name in &image.repo_tags {
            let (repository, tag) = match name.rsplit_once(':') {
                Some((r, t)) if !t.contains('/') => (r.to_string(), t.to_string()),
                _ => (name.clone(), "<none>".into()),
            };
            out.push(Row {
                image,
                repository,
                tag,
            });
        }
    }
    out
}

/// Matches a `reference=` filter: a glob against `repo` or `repo:tag`.
fn reference_matches(pattern: &str, row: &Row<'_>) -> bool {
    let full = format!("{}:{}", row.repository, row.tag);
    glob(pattern, &row.repository) || glob(pattern, &full)
}

/// `*` and `?` (not crossing `/`), as Go's `path.Match`.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // Iterative wildcard matching with one backtrack point.
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        match (p.get(pi), t.get(ti)) {
            (Some('*'), _) => {
                star = Some(pi);
                mark = ti;
                pi += 1;
            }
            (Some('?'), Some(c)) if *c != '/' => {
                pi += 1;
                ti += 1;
            }
            (Some(a), Some(b)) if a == b => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some(s) if t.get(mark) != Some(&'/') => {
                    pi = s + 1;
                    mark += 1;
                    ti = mark;
                }
                _ => return false,
            },
        }
    }
    p.get(pi..)
        .is_some_and(|rest| rest.iter().all(|c| *c == '*'))
}

pub fn images(engine: &Engine, args: &ImagesArgs) -> Result<(), CliError> {
    let images = engine.list_images().map_err(CliError::from_engine)?;
    let mut dangling: Option<bool> = None;
    let mut references: Vec<String> = args.reference.iter().cloned().collect();
    for f in &args.filter {
        match f.split_once('=') {
            Some(("dangling", v)) => {
                dangling = Some(match v {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => return Err(CliError::failure(format!("invalid filter 'dangling={v}'"))),
                })
            }
            Some(("reference", v)) => references.push(v.to_string()),
            _ => return Err(CliError::failure(format!("invalid filter '{f}'"))),
        }
    }
    let all_rows = rows(&images);
    let selected: Vec<&Row<'_>> = all_rows
        .iter()
        .filter(|r| match dangling {
            Some(d) => r.image.repo_tags.is_empty() == d,
            None => true,
        })
        .filter(|r| references.is_empty() || references.iter().any(|p| reference_matches(p, r)))
        .collect();
    let id_text = |r: &Row<'_>| {
        if args.no_trunc {
            r.image.id.to_string()
        } else {
            r.image.id.short().to_string()
        }
    };
    if args.quiet {
        let mut seen = Vec::new();
        for r in &selected {
            let id = id_text(r);
            if !seen.contains(&id) {
                println!("{id}");
                seen.push(id);
            }
        }
        return Ok(());
    }
    let secs = wall_now();
    if let Some(format) = &args.format {
        let template = if format == "json" {
            Template::parse("{{json .}}")
        } else {
            Template::parse(format)
        }
        .map_err(CliError::failure)?;
        if template.table {
            println!("{}", template.header());
        }
        for r in &selected {
            let value = json!({
                "Containers": "N/A",
                "CreatedAt": rfc3339(r.image.created, 0),
                "CreatedSince": format!("{} ago", human_duration(secs - r.image.created)),
                "Digest": "<none>",
                "ID": id_text(r),
                "Repository": r.repository,
                "SharedSize": "N/A",
                "Size": human_size(r.image.size),
                "Tag": r.tag,
                "UniqueSize": "N/A",
                "VirtualSize": human_size(r.image.size),
            });
            println!("{}", template.render(&value).map_err(CliError::failure)?);
        }
        return Ok(());
    }
    let mut header = vec!["REPOSITORY", "TAG"];
    if args.digests {
        header.push("DIGEST");
    }
    header.extend(["IMAGE ID", "CREATED", "SIZE"]);
    let table_rows: Vec<Vec<String>> = selected
        .iter()
        .map(|r| {
            let mut row = vec![r.repository.clone(), r.tag.clone()];
            if args.digests {
                row.push("<none>".into());
            }
            row.extend([
                id_text(r),
                format!("{} ago", human_duration(secs - r.image.created)),
                human_size(r.image.size),
            ]);
            row
        })
        .collect();
    print!("{}", table(&header, &table_rows));
    Ok(())
}

pub fn import(engine: &mut Engine, args: &ImportArgs) -> Result<(), CliError> {
    if let Some(p) = &args.platform {
        let host = format!("linux/{}", berth_oci::Platform::host().architecture);
        if p != &host && p != "linux" {
            return Err(CliError::failure(format!(
                "platform {p} is not supported (this machine imports {host})"
            )));
        }
    }
    let opts = ImportOptions {
        reference: args.reference.clone(),
        changes: args.change.clone(),
        message: args.message.clone(),
    };
    let reader: Box<dyn Read> = if args.file == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(
            std::fs::File::open(&args.file)
                .map_err(|e| CliError::failure(format!("{}: {e}", args.file)))?,
        )
    };
    let id = engine
        .import(std::io::BufReader::new(reader), &opts)
        .map_err(CliError::from_engine)?;
    println!("{id}");
    Ok(())
}

pub fn tag(engine: &mut Engine, args: &TagArgs) -> Result<(), CliError> {
    engine
        .tag(&args.source, &args.target)
        .map_err(CliError::from_engine)
}

pub fn rmi(engine: &mut Engine, args: &RmiArgs) -> Result<(), CliError> {
    let mut errors = Vec::new();
    for name in &args.images {
        match engine.remove_image(name, args.force) {
            Ok(events) => {
                for e in events {
                    match e {
                        Removed::Untagged(n) => println!("Untagged: {n}"),
                        Removed::Deleted(d) => println!("Deleted: {d}"),
                    }
                }
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(CliError::failure(errors.join("\n")))
    }
}

pub fn history(engine: &Engine, args: &HistoryArgs) -> Result<(), CliError> {
    let rows = engine.history(&args.image).map_err(CliError::from_engine)?;
    let id_text = |id: &Option<berth_oci::Digest>| match id {
        Some(d) if args.no_trunc => d.to_string(),
        Some(d) => d.short().to_string(),
        None => "<missing>".into(),
    };
    if args.quiet {
        for r in &rows {
            println!("{}", id_text(&r.id));
        }
        return Ok(());
    }
    let secs = wall_now();
    let table_rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let created = match (r.created, args.human) {
                (Some(c), true) => format!("{} ago", human_duration(secs - c)),
                (Some(c), false) => rfc3339(c, 0),
                (None, _) => "N/A".into(),
            };
            let by = if args.no_trunc {
                r.created_by.clone()
            } else {
                ellipsis(&r.created_by, 45)
            };
            let size = if args.human {
                human_size(r.size)
            } else {
                r.size.to_string()
            };
            vec![id_text(&r.id), created, by, size, r.comment.clone()]
        })
        .collect();
    print!(
        "{}",
        table(
            &["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"],
            &table_rows
        )
    );
    Ok(())
}

pub fn inspect(engine: &Engine, args: &InspectArgs) -> Result<(), CliError> {
    print_inspected(args.format.as_deref(), &args.names, |name| {
        engine.inspect_image(name).map_err(|e| e.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn reference_globs() {
        assert!(glob("busy*", "busybox"));
        assert!(glob("busybox:*", "busybox:latest"));
        assert!(!glob("*", "library/busybox"));
        assert!(glob("*/app", "team/app"));
        assert!(!glob("busy?", "busybox"));
    }
}
